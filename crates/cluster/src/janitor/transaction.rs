//! One janitor transaction on the janitor's own connection, bounded as a whole, rolled
//! back on any error.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio_postgres::Client;

use crate::error::ClusterError;
use crate::pg::Session;

/// Runs `body` between `BEGIN` and `COMMIT` on `session`'s connection within `timeout`.
/// On an error it rolls back and drops the connection (PostgreSQL rolls back whatever is
/// left when it sees it close), so the next transaction starts clean.
pub(super) async fn run<T>(
    session: &Session,
    what: &'static str,
    timeout: Duration,
    body: impl for<'c> FnOnce(&'c Client) -> BoxFuture<'c, Result<T, ClusterError>>,
) -> Result<T, ClusterError> {
    let result = session
        .bounded(what, timeout, async {
            let client = session.client().await?;
            client.batch_execute("BEGIN").await?;
            match body(&client).await {
                Ok(value) => {
                    client.batch_execute("COMMIT").await?;
                    Ok(value)
                }
                Err(e) => {
                    if !client.is_closed() && client.batch_execute("ROLLBACK").await.is_err() {
                        return Err(ClusterError::ConnectionClosed(
                            "the janitor's transaction connection",
                        ));
                    }
                    Err(e)
                }
            }
        })
        .await;
    if result.is_err() {
        // After a timeout the transaction may still be open on the connection; a fresh
        // connection costs little next to a pass, so any error drops it.
        session.discard().await;
    }
    result
}
