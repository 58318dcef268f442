//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong in cluster mode. [`ClusterError::retriable`] says whether
/// the same call may succeed later (PostgreSQL restarting, a lost connection, a
/// serialization conflict) or never will (bad configuration, a node id that is taken).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A configuration value is wrong; the message names the flag and the fix.
    #[error("{0}")]
    Config(String),
    /// No connection within the bound (PostgreSQL down, hung or unreachable).
    #[error("could not connect to PostgreSQL at {endpoint} within {timeout:?}")]
    ConnectTimeout { endpoint: String, timeout: Duration },
    /// A statement did not answer within its bound.
    #[error("PostgreSQL did not answer {what} within {timeout:?}")]
    StatementTimeout {
        what: &'static str,
        timeout: Duration,
    },
    /// A connection ended under us (the server restarted, or an operator ended it).
    #[error("{0} to PostgreSQL closed")]
    ConnectionClosed(&'static str),
    #[error("PostgreSQL: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// Another broker that is alive holds the node id asked for.
    #[error("node id {node_id} is held by a live broker; give --node-id another value or omit it to take the lowest free id")]
    NodeIdTaken { node_id: i32 },
    /// The database holds a newer schema than this binary knows.
    #[error("the database's schema is at version {found}, newer than this broker's {known}; upgrade the broker")]
    SchemaTooNew { found: i32, known: i32 },
    /// Stored data does not decode (written by something else, or a bug).
    #[error("corrupt cluster data: {0}")]
    Corrupt(String),
    /// A call to the object store failed (after the client's own retries) or did not
    /// answer in time.
    #[error("the object store refused {what}: {message}")]
    ObjectStore {
        what: &'static str,
        /// The object does not exist: retrying will not make it appear.
        not_found: bool,
        message: String,
    },
}

impl ClusterError {
    /// Whether retrying the same operation later can succeed.
    pub fn retriable(&self) -> bool {
        match self {
            ClusterError::Config(_) => false,
            ClusterError::ConnectTimeout { .. } => true,
            ClusterError::StatementTimeout { .. } => true,
            ClusterError::ConnectionClosed(_) => true,
            ClusterError::Postgres(e) => postgres_retriable(e),
            ClusterError::NodeIdTaken { .. } => false,
            ClusterError::SchemaTooNew { .. } => false,
            ClusterError::Corrupt(_) => false,
            ClusterError::ObjectStore { not_found, .. } => !not_found,
        }
    }
}

impl ClusterError {
    /// Whether the connection this error came from is unusable: the caller must drop it
    /// and connect again. (tokio-postgres marks a client closed only once its connection
    /// task has seen the socket end, which can be just after the error arrives.)
    pub fn connection_lost(&self) -> bool {
        match self {
            ClusterError::ConnectTimeout { .. }
            | ClusterError::StatementTimeout { .. }
            | ClusterError::ConnectionClosed(_) => true,
            ClusterError::Postgres(e) => match e.as_db_error() {
                Some(db) => {
                    let code = db.code().code();
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
                }
                None => postgres_retriable(e),
            },
            ClusterError::Config(_)
            | ClusterError::NodeIdTaken { .. }
            | ClusterError::SchemaTooNew { .. }
            | ClusterError::Corrupt(_)
            | ClusterError::ObjectStore { .. } => false,
        }
    }
}

/// A closed connection or I/O failure is retriable; so are the SQLSTATE classes that mean
/// "try again": 08 (connection exception), 40 (serialization failure, deadlock), 53
/// (insufficient resources, e.g. too many connections), 57P01..57P03 (the server is
/// shutting down or starting), 55P03 (lock not available).
fn postgres_retriable(e: &tokio_postgres::Error) -> bool {
    let Some(db) = e.as_db_error() else {
        // No SQLSTATE: an I/O error, a closed connection, or a timeout.
        return e.is_closed()
            || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    };
    let code = db.code().code();
    code.starts_with("08")
        || code.starts_with("40")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "55P03")
}

/// tokio-postgres shows a server's error as "db error"; the message and SQLSTATE are what
/// an operator needs.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
