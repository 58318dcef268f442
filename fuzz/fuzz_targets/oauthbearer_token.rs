//! Any bytes as an OAUTHBEARER client message (framing, JWT parts, JSON claims, signature)
//! end in a result, never a panic; with no matching key nothing is ever accepted.
#![no_main]

use std::sync::OnceLock;

use weir_auth::oauthbearer::{validate_message, JwkSet, OAuthSettings};

fn keys() -> &'static JwkSet {
    static KEYS: OnceLock<JwkSet> = OnceLock::new();
    KEYS.get_or_init(|| {
        JwkSet::parse(
            r#"{"keys":[{"kty":"RSA","kid":"k1","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"},{"kty":"EC","crv":"P-256","kid":"k2","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
        )
        .expect("the fuzz key set parses")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let settings = OAuthSettings::new(std::path::PathBuf::from("unused"));
    // Nobody holds these keys' private halves, so a pass would be a forged token.
    assert!(validate_message(data, keys(), &settings, 1_800_000_000_000).is_err());
});
