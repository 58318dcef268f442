//! Schema migrations: each applied exactly once per database, even when several brokers
//! start at the same moment.

use tokio_postgres::Client;

use crate::error::ClusterError;

/// Every migration, in order; a migration's version is its index + 1 and never changes
/// once released (add a new file instead of editing one).
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("schema/0001_init.sql")),
    (2, include_str!("schema/0002_tombstones_since.sql")),
];

/// The key of the advisory lock that serializes migrations, as `hashtext` of a fixed
/// name so that it cannot collide with another application's small integer keys.
const MIGRATE_LOCK_NAME: &str = "weir-migrate";

/// What a call to [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The versions this call applied (empty when another broker had applied them).
    pub applied: Vec<i32>,
    /// The schema version after the call.
    pub version: i32,
}

/// Brings the database's schema up to [`MIGRATIONS`]' last version.
///
/// One transaction holds `pg_advisory_xact_lock` from before it even creates the
/// bookkeeping table: concurrent `CREATE TABLE IF NOT EXISTS` is not safe in PostgreSQL
/// (two sessions can both pass the check, and one fails on the catalog's unique index).
/// A broker that waits on the lock finds the versions applied when it gets it. The lock
/// goes with the transaction, so a broker killed mid-migration leaves nothing applied and
/// nothing locked.
pub async fn migrate(client: &mut Client) -> Result<Migrated, ClusterError> {
    let known = MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0);
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&MIGRATE_LOCK_NAME],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS weir_schema (
           version int PRIMARY KEY,
           applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let row = tx
        .query_one("SELECT coalesce(max(version), 0) FROM weir_schema", &[])
        .await?;
    let current: i32 = row.get(0);
    if current > known {
        return Err(ClusterError::SchemaTooNew {
            found: current,
            known,
        });
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO weir_schema (version) VALUES ($1)", &[version])
            .await?;
        applied.push(*version);
    }
    tx.commit().await?;
    if !applied.is_empty() {
        tracing::info!(
            ?applied,
            version = known,
            "applied cluster schema migrations"
        );
    }
    Ok(Migrated {
        applied,
        version: known,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_contiguous_from_one() {
        // Goal: a migration added out of order or with a reused number fails here, not
        // in a database.
        for (index, (version, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, index as i32 + 1);
            assert!(!sql.trim().is_empty());
        }
    }
}
