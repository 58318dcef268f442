//! Thousands of random and mutated client tokens, from a fixed seed, through every SASL
//! mechanism: each ends in a result, never a panic, and no altered SCRAM final message or
//! PLAIN token authenticates. (The fuzz target `sasl_exchange` searches the same space
//! without end; this runs on stable in every test run.)

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_auth::sasl::{CredentialStore, Exchange, Mechanism, Step};
use weir_meta::scram::{ScramCredential, ScramMechanism};

const ROUNDS: usize = 3000;
const SEED: u64 = 0x5a51_7e57;

struct Store(Vec<(ScramMechanism, ScramCredential)>);

impl CredentialStore for Store {
    fn scram(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        (user == "user")
            .then(|| self.0.iter().find(|(m, _)| *m == mechanism))
            .flatten()
            .map(|(_, c)| c.clone())
    }
}

/// One random change to a token: flip a bit, cut it, insert or drop bytes, or repeat a
/// piece of it.
fn mutate(rng: &mut StdRng, token: &[u8]) -> Vec<u8> {
    let mut out = token.to_vec();
    let at = |rng: &mut StdRng, len: usize| if len == 0 { 0 } else { rng.gen_range(0..len) };
    match rng.gen_range(0..5) {
        0 if !out.is_empty() => {
            let i = at(rng, out.len());
            out[i] ^= 1 << rng.gen_range(0..8);
        }
        1 => out.truncate(at(rng, out.len())),
        2 => {
            let i = at(rng, out.len() + 1);
            let insert: Vec<u8> = (0..rng.gen_range(1..4))
                .map(|_| *b",=\0nrpcv2C3Dab\xff".get(rng.gen_range(0..15)).unwrap())
                .collect();
            out.splice(i..i, insert);
        }
        3 if !out.is_empty() => {
            let i = at(rng, out.len());
            let j = (i + rng.gen_range(1..4)).min(out.len());
            out.drain(i..j);
        }
        _ => {
            let i = at(rng, out.len());
            let piece = out[i..].to_vec();
            out.extend_from_slice(&piece);
        }
    }
    out
}

fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.gen_range(0..300);
    (0..len).map(|_| rng.gen()).collect()
}

#[test]
fn random_and_mutated_tokens_never_panic_or_authenticate() {
    // Goal: no token panics an exchange; a PLAIN token or SCRAM final message that differs
    // from a valid one never authenticates.
    let store = Store(
        ScramMechanism::ALL
            .iter()
            .map(|m| {
                (
                    *m,
                    ScramCredential::from_password(*m, "pencil", b"salt", 4096),
                )
            })
            .collect(),
    );
    let mut rng = StdRng::seed_from_u64(SEED);
    let valid_plain = b"\0user\0pencil".to_vec();
    let valid_first = b"n,,n=user,r=cnonce".to_vec();
    let mut finals = Vec::new();
    for m in ScramMechanism::ALL {
        let mut x = Exchange::new(mechanism_of(m), "snonce".into());
        let Ok(Step::Challenge(server_first)) = x.step(&valid_first, &store) else {
            panic!("valid client-first refused");
        };
        let nonce = "cnoncesnonce";
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!(
            "n=user,r=cnonce,{},{without_proof}",
            String::from_utf8(server_first).unwrap()
        );
        let salted = m.salted_password(b"pencil", b"salt", 4096);
        let proof = m.client_proof(&salted, auth.as_bytes());
        use base64::Engine as _;
        let proof = base64::engine::general_purpose::STANDARD.encode(proof);
        finals.push((m, format!("{without_proof},p={proof}").into_bytes()));
    }
    let (mut plain_ok, mut scram_ok) = (0, 0);
    for round in 0..ROUNDS {
        let kind = round % 4;
        match kind {
            // Random bytes as one or two tokens of any mechanism.
            0 => {
                let mechanism = Mechanism::ALL[rng.gen_range(0..Mechanism::ALL.len())];
                let mut x = Exchange::new(mechanism, "snonce".into());
                let _ = x.step(&random_bytes(&mut rng), &store);
                let _ = x.step(&random_bytes(&mut rng), &store);
            }
            // A mutated PLAIN token.
            1 => {
                let token = mutate(&mut rng, &valid_plain);
                let r = Exchange::new(Mechanism::Plain, String::new()).step(&token, &store);
                if matches!(r, Ok(Step::Done { .. })) {
                    // The same user and password in another shape (an authzid equal to
                    // the user) is the only other acceptable success.
                    assert!(
                        token == valid_plain || token == b"user\0user\0pencil",
                        "{token:?}"
                    );
                    plain_ok += 1;
                }
            }
            // A mutated client-first message.
            2 => {
                let m = ScramMechanism::ALL[rng.gen_range(0..2)];
                let mut x = Exchange::new(mechanism_of(m), "snonce".into());
                let first = mutate(&mut rng, &valid_first);
                if x.step(&first, &store).is_ok() {
                    let _ = x.step(&random_bytes(&mut rng), &store);
                }
            }
            // A valid client-first, then a mutated client-final message.
            _ => {
                let (m, valid_final) = &finals[rng.gen_range(0..2)];
                let mut x = Exchange::new(mechanism_of(*m), "snonce".into());
                x.step(&valid_first, &store).unwrap();
                let last = mutate(&mut rng, valid_final);
                if matches!(x.step(&last, &store), Ok(Step::Done { .. })) {
                    assert_eq!(&last, valid_final, "an altered proof message authenticated");
                    scram_ok += 1;
                }
            }
        }
    }
    // Unaltered tokens authenticate (a few mutations are no-ops), so the harness itself
    // is not refusing everything.
    for (m, valid_final) in &finals {
        let mut x = Exchange::new(mechanism_of(*m), "snonce".into());
        x.step(&valid_first, &store).unwrap();
        assert!(matches!(x.step(valid_final, &store), Ok(Step::Done { .. })));
    }
    println!("accepted: {plain_ok} PLAIN, {scram_ok} SCRAM of {ROUNDS} rounds");
}

fn mechanism_of(m: ScramMechanism) -> Mechanism {
    match m {
        ScramMechanism::Sha256 => Mechanism::ScramSha256,
        ScramMechanism::Sha512 => Mechanism::ScramSha512,
    }
}
