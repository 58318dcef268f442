//! The SASL mechanisms. Until the credential store lands, every exchange fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}
impl Mechanism {
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }
}
pub trait CredentialStore {
    fn plain_ok(&self, user: &str, pw: &str) -> bool;
}
pub struct Exchange {
    mechanism: Mechanism,
}
pub enum Step {
    Challenge(Vec<u8>),
    Done {
        principal_name: String,
        token: Vec<u8>,
    },
}
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    #[error("Authentication failed: Invalid username or password")]
    Failed,
}
impl SaslError {
    pub fn error_code(&self) -> weir_wire::ResponseError {
        weir_wire::ResponseError::SaslAuthenticationFailed
    }
    pub fn client_message(&self) -> String {
        self.to_string()
    }
}
impl Exchange {
    pub fn new(mechanism: Mechanism, _server_nonce: String) -> Exchange {
        Exchange { mechanism }
    }
    pub fn step(&mut self, token: &[u8], store: &dyn CredentialStore) -> Result<Step, SaslError> {
        let _ = self.mechanism;
        let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
        if parts.len() != 3 {
            return Err(SaslError::Failed);
        }
        let user = String::from_utf8_lossy(parts[1]).to_string();
        if store.plain_ok(&user, &String::from_utf8_lossy(parts[2])) {
            Ok(Step::Done {
                principal_name: user,
                token: vec![],
            })
        } else {
            Err(SaslError::Failed)
        }
    }
}
impl CredentialStore for crate::state::BrokerState {
    fn plain_ok(&self, user: &str, pw: &str) -> bool {
        let _ = (user, pw);
        false
    }
}
