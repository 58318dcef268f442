//! Authentication without I/O: the SASL mechanisms (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER)
//! as exchanges of bytes in and bytes out, and OAUTHBEARER's JSON Web Tokens checked
//! against a JWKS file. The broker's connection session (`weir_broker::security::session`)
//! drives them; the fuzz targets and seeded tests call them directly.
//!
//! Layout:
//! - [`sasl`]: the mechanisms and the credential store they ask.
//! - [`oauthbearer`]: token parsing, signature, time, issuer, audience and subject checks.

pub mod oauthbearer;
pub mod sasl;
