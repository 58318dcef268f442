//! The users' SCRAM credentials on [`BrokerState`]: read by the SASL exchanges, changed by
//! AlterUserScramCredentials and `--add-scram`, and kept in the catalog, which is on disk
//! before a change is answered.

use weir_meta::scram::{ScramBootstrap, ScramCredential, ScramMechanism, BOOTSTRAP_SALT_BYTES};
use weir_meta::user_scram_credentials::{
    self, AlteredUser, DescribedUser, ScramDeletion, ScramUpsertion,
};

use super::{ApiError, BrokerState};
use crate::security::sasl::CredentialStore;

impl CredentialStore for BrokerState {
    fn scram(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.catalog
            .lock()
            .scram_credential(user, mechanism)
            .cloned()
    }
}

impl BrokerState {
    /// DescribeUserScramCredentials: `None` or no names describes every user.
    pub fn describe_scram_credentials(
        &self,
        users: Option<&[String]>,
    ) -> Vec<(String, DescribedUser)> {
        user_scram_credentials::describe(&self.catalog.lock(), users)
    }

    /// AlterUserScramCredentials: applies what passes Kafka's checks and persists the
    /// catalog before returning one result per user. If the catalog cannot be written,
    /// nothing changes and the error is returned for every user.
    pub fn alter_scram_credentials(
        &self,
        deletions: &[ScramDeletion],
        upsertions: &[ScramUpsertion],
    ) -> Result<Vec<(String, AlteredUser)>, ApiError> {
        let mut catalog = self.catalog.lock();
        let before = catalog.scram_credentials.clone();
        let results = user_scram_credentials::alter(&mut catalog, deletions, upsertions);
        if catalog.scram_credentials == before {
            return Ok(results);
        }
        if let Err(e) = self.persist_catalog(&mut catalog) {
            // Memory stays what the disk holds.
            catalog.scram_credentials = before;
            return Err(e);
        }
        let changed = results.iter().filter(|(_, r)| r.is_ok()).count();
        tracing::info!(users = changed, "altered SCRAM credentials");
        Ok(results)
    }

    /// Adds the `--add-scram` entries given at start, each only if its user has no
    /// credential for that mechanism yet (so a restart with the same flags keeps a
    /// password changed since), then persists the catalog.
    pub fn add_scram_bootstrap(&self, entries: &[ScramBootstrap]) -> anyhow::Result<()> {
        let mut catalog = self.catalog.lock();
        let before = catalog.scram_credentials.clone();
        for entry in entries {
            if catalog
                .scram_credential(&entry.user, entry.mechanism)
                .is_some()
            {
                continue;
            }
            let credential = entry.credential(&random_salt());
            if let Err(e) = catalog.set_scram_credential(&entry.user, entry.mechanism, credential) {
                catalog.scram_credentials = before;
                return Err(anyhow::anyhow!(
                    "--add-scram for user {} ({}): {e}",
                    entry.user,
                    entry.mechanism.name()
                ));
            }
            tracing::info!(user = %entry.user, mechanism = entry.mechanism.name(), "added SCRAM credential");
        }
        if catalog.scram_credentials != before {
            if let Err(e) = self.persist_catalog(&mut catalog) {
                catalog.scram_credentials = before;
                return Err(e.into());
            }
        }
        Ok(())
    }
}

/// A salt from the operating system's random source (through UUID v4, whose 122 random
/// bits per UUID come from it).
fn random_salt() -> Vec<u8> {
    let mut salt = Vec::with_capacity(BOOTSTRAP_SALT_BYTES);
    while salt.len() < BOOTSTRAP_SALT_BYTES {
        salt.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    salt.truncate(BOOTSTRAP_SALT_BYTES);
    salt
}
