//! The janitor lease: the `janitor` row of `leases`, taken when free or expired and
//! renewed by its holder, timed by PostgreSQL's `now()`.
//!
//! As with broker registrations, the holder also keeps a local monotonic deadline that
//! ends before PostgreSQL's: a holder that cannot renew stops working before another
//! broker may take over, not after.

use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::LEASE_NAME;
use crate::error::ClusterError;
use crate::members::LEASE_SAFETY_DIVISOR;
use crate::pg::Session;

/// This broker's view of the janitor lease.
pub(super) struct Lease {
    node_id: i32,
    incarnation: Uuid,
    length: Duration,
    /// Until when this broker may work, by its own clock; `None` when not held.
    deadline: Option<Instant>,
    epoch: i64,
}

impl Lease {
    pub fn new(node_id: i32, incarnation: Uuid, length: Duration) -> Lease {
        Lease {
            node_id,
            incarnation,
            length,
            deadline: None,
            epoch: 0,
        }
    }

    /// Whether this broker may still work under the lease.
    pub fn held(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() < d)
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Takes the lease if it is free or expired, or renews it if it is ours. Returns
    /// whether this broker holds it now.
    pub async fn acquire(&mut self, session: &Session) -> Result<bool, ClusterError> {
        // Taken before the statement: PostgreSQL's now() is later, so the local deadline
        // ends before the expiry PostgreSQL records.
        let sent_at = Instant::now();
        let length_ms = i64::try_from(self.length.as_millis()).expect("lease fits in i64 ms");
        // The bound is the lease's local margin: a renewal answered later than that could
        // not be relied on anyway.
        let bound = self.length / LEASE_SAFETY_DIVISOR;
        let (node_id, incarnation) = (self.node_id, self.incarnation);
        let result = session
            .bounded("the janitor lease", bound, async {
                let client = session.client().await?;
                let row = client
                    .query_opt(
                        "INSERT INTO leases (name, owner_node, owner_incarnation, epoch, expires_at) \
                         VALUES ($1, $2, $3, 1, now() + $4::bigint * interval '1 millisecond') \
                         ON CONFLICT (name) DO UPDATE SET \
                           owner_node = EXCLUDED.owner_node, \
                           owner_incarnation = EXCLUDED.owner_incarnation, \
                           epoch = CASE WHEN leases.owner_node IS NOT DISTINCT FROM EXCLUDED.owner_node \
                                         AND leases.owner_incarnation IS NOT DISTINCT FROM EXCLUDED.owner_incarnation \
                                        THEN leases.epoch ELSE leases.epoch + 1 END, \
                           expires_at = EXCLUDED.expires_at \
                         WHERE leases.expires_at < now() \
                            OR (leases.owner_node = EXCLUDED.owner_node \
                                AND leases.owner_incarnation = EXCLUDED.owner_incarnation) \
                         RETURNING epoch",
                        &[&LEASE_NAME, &node_id, &incarnation, &length_ms],
                    )
                    .await?;
                Ok(row.map(|row| row.get::<_, i64>(0)))
            })
            .await;
        match result {
            Ok(Some(epoch)) => {
                if self.deadline.is_none() || epoch != self.epoch {
                    tracing::info!(node_id, epoch, "took the janitor lease");
                }
                self.epoch = epoch;
                self.deadline = Some(sent_at + self.length - self.length / LEASE_SAFETY_DIVISOR);
                Ok(true)
            }
            Ok(None) => {
                if self.deadline.take().is_some() {
                    tracing::info!(node_id, "another broker holds the janitor lease now");
                }
                Ok(false)
            }
            // Whether PostgreSQL renewed it is unknown; the old deadline still holds, so
            // work under it stops when it passes.
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up if this broker holds it, so another can take it at once.
    pub async fn release(&mut self, session: &Session) -> Result<(), ClusterError> {
        self.deadline = None;
        let (node_id, incarnation) = (self.node_id, self.incarnation);
        session
            .bounded(
                "giving up the janitor lease",
                self.length / LEASE_SAFETY_DIVISOR,
                async {
                    session
                        .client()
                        .await?
                        .execute(
                            "UPDATE leases SET expires_at = now() - interval '1 millisecond' \
                             WHERE name = $1 AND owner_node = $2 AND owner_incarnation = $3",
                            &[&LEASE_NAME, &node_id, &incarnation],
                        )
                        .await?;
                    Ok(())
                },
            )
            .await
    }
}
