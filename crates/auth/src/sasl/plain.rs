//! SASL/PLAIN (RFC 4616): one client token, `[authzid] NUL authcid NUL passwd`.
//!
//! The password is checked against the user's SCRAM credential, SCRAM-SHA-512 if it has
//! one, else SCRAM-SHA-256: weir stores no password, only what SCRAM needs, and a SCRAM
//! credential answers "is this the password?" as well. Kafka's checks and sentences, in
//! Kafka's order: the shape of the token, an empty user name, an empty password, the
//! password, then the authorization id.

use weir_meta::scram::ScramMechanism;

use super::{CredentialStore, SaslError};

/// Kafka reads at most this many NUL-separated fields before deciding the count is wrong.
const FIELDS_COUNTED_MAX: usize = 4;

/// Checks a PLAIN token; the principal name is the authenticated user.
pub fn authenticate(token: &[u8], store: &dyn CredentialStore) -> Result<String, SaslError> {
    // 1. Three fields, separated by NUL.
    let fields: Vec<&[u8]> = token.splitn(FIELDS_COUNTED_MAX, |b| *b == 0).collect();
    let [authzid, user, password] = fields[..] else {
        return Err(SaslError::PlainTokenCount(fields.len()));
    };
    if user.is_empty() {
        return Err(SaslError::UsernameNotSpecified);
    }
    if password.is_empty() {
        return Err(SaslError::PasswordNotSpecified);
    }
    // 2. Names and passwords are UTF-8; bytes that are not cannot match any user.
    let (Ok(authzid), Ok(user), Ok(password)) = (
        std::str::from_utf8(authzid),
        std::str::from_utf8(user),
        std::str::from_utf8(password),
    ) else {
        return Err(SaslError::InvalidUsernameOrPassword);
    };
    // 3. The password, against the strongest credential the user has. An unknown user
    //    fails exactly as a wrong password does.
    let verified = [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .find_map(|m| store.scram(user, m).map(|c| (m, c)))
        .is_some_and(|(m, credential)| credential.verify_password(m, password));
    if !verified {
        return Err(SaslError::InvalidUsernameOrPassword);
    }
    // 4. Acting as someone else is not offered.
    if !authzid.is_empty() && authzid != user {
        return Err(SaslError::AuthorizationIdMismatch);
    }
    Ok(user.to_string())
}
