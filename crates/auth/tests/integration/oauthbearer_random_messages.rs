//! Random and mutated OAUTHBEARER messages never panic and are never accepted without a
//! signature by a key of the set (the stable-toolchain partner of the fuzz target).

use rand::{Rng, SeedableRng};
use weir_auth::oauthbearer::{validate_message, JwkSet, OAuthSettings};

const ROUNDS: usize = 20_000;

#[test]
fn random_oauthbearer_messages_are_refused_without_panicking() {
    // Goal: framing, base64, JSON and signature checks all fail cleanly on junk.
    let keys = JwkSet::parse(r#"{"keys":[{"kty":"RSA","kid":"k1","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}"#).unwrap();
    let settings = OAuthSettings::new(std::path::PathBuf::from("unused"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0a07);
    let header = b"n,,\x01auth=Bearer ";
    let jwt = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJl";
    for round in 0..ROUNDS {
        let mut message: Vec<u8> = if round % 2 == 0 {
            let mut m = header.to_vec();
            m.extend_from_slice(jwt);
            m.extend_from_slice(b"\x01\x01");
            m
        } else {
            (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect()
        };
        for _ in 0..rng.gen_range(0..4) {
            if message.is_empty() {
                break;
            }
            let i = rng.gen_range(0..message.len());
            message[i] = rng.gen();
        }
        assert!(validate_message(&message, &keys, &settings, 1_800_000_000_000).is_err());
    }
}
