//! Any bytes as one or two client tokens of PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 end in a
//! result, never a panic; a SCRAM final message only succeeds with the right proof.
#![no_main]

use std::sync::OnceLock;

use weir_auth::sasl::{CredentialStore, Exchange, Mechanism};
use weir_meta::scram::{ScramCredential, ScramMechanism};

/// One user, "user" with password "pencil", for both SCRAM mechanisms.
struct Store([ScramCredential; 2]);

impl CredentialStore for Store {
    fn scram(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let index = match mechanism {
            ScramMechanism::Sha256 => 0,
            ScramMechanism::Sha512 => 1,
        };
        (user == "user").then(|| self.0[index].clone())
    }
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        Store(
            ScramMechanism::ALL.map(|m| ScramCredential::from_password(m, "pencil", b"salt", 4096)),
        )
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mechanism = Mechanism::ALL[usize::from(mode % 3)];
    let mut exchange = Exchange::new(mechanism, "snonce".to_string());
    match mode / 3 % 3 {
        // The bytes as the only token.
        0 => {
            let _ = exchange.step(rest, store());
        }
        // A valid client-first, then the bytes as the client-final message.
        1 => {
            if exchange.step(b"n,,n=user,r=cnonce", store()).is_ok() {
                let _ = exchange.step(rest, store());
            }
        }
        // The bytes cut in two, as two tokens.
        _ => {
            let cut = rest.first().map_or(0, |b| usize::from(*b)).min(rest.len());
            let (first, second) = rest.split_at(cut);
            let _ = exchange.step(first, store());
            let _ = exchange.step(second, store());
        }
    }
});
