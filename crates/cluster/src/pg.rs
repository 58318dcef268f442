//! Connections to PostgreSQL: bounded connects, the connection task spawned, and a
//! session that reconnects when its connection is gone.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Connection, NoTls, Row, Socket};

use crate::config::redact;
use crate::error::ClusterError;

/// How long one connection attempt may take, TCP and startup together. A hung server
/// must not hold a broker's start or a lease renewal for longer.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// TCP keepalive idle time, so a connection to a vanished host is noticed by the kernel
/// even when no statement is waiting on it.
const KEEPALIVE_IDLE_MS: u64 = 10_000;
/// Shown in `pg_stat_activity`, so an operator can tell weir's connections apart.
const APPLICATION_NAME: &str = "weir";

/// How to reach the database: the parsed URL plus our bounds.
#[derive(Clone)]
pub struct Connector {
    config: Config,
    /// The URL without a password, for errors.
    endpoint: String,
    connect_timeout: Duration,
}

impl Connector {
    pub fn new(url: &str) -> Result<Connector, ClusterError> {
        let mut config = Config::from_str(url).map_err(|e| {
            ClusterError::Config(format!(
                "--cluster is not a valid PostgreSQL URL ({e}); write it as postgresql://user@host:5432/database"
            ))
        })?;
        let connect_timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
        config
            .connect_timeout(connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_millis(KEEPALIVE_IDLE_MS));
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        Ok(Connector {
            config,
            endpoint: redact(url),
            connect_timeout,
        })
    }

    /// One new connection, its driving task spawned. The task ends when the connection
    /// does; errors are logged, and the client reports `is_closed()`.
    pub async fn connect(&self) -> Result<Client, ClusterError> {
        let (client, connection) = self.connect_raw().await?;
        let endpoint = self.endpoint.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%endpoint, error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// One new connection whose driving is left to the caller (the LISTEN connection
    /// polls it for notifications).
    pub async fn connect_raw(
        &self,
    ) -> Result<(Client, Connection<Socket, NoTlsStream>), ClusterError> {
        // `connect_timeout` bounds each TCP attempt; this bounds the whole startup too
        // (a server that accepts but never answers, such as a SIGSTOPped one).
        match tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(ClusterError::ConnectTimeout {
                endpoint: self.endpoint.clone(),
                timeout: self.connect_timeout,
            }),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// One connection used by one task at a time, replaced by a new one when it closes.
/// Cheap to share; a caller that finds the connection broken gets a retriable error and
/// the next call connects again.
pub struct Session {
    connector: Connector,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl Session {
    pub fn new(connector: Connector) -> Session {
        Session {
            connector,
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// The open connection, or a new one if there is none or it has closed.
    pub async fn client(&self) -> Result<Arc<Client>, ClusterError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            if !client.is_closed() {
                return Ok(client.clone());
            }
        }
        *slot = None;
        let client = Arc::new(self.connector.connect().await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Runs `f` (which takes its connection from [`Session::client`]) within `timeout`;
    /// an error that leaves the connection unusable drops it, so the next call connects
    /// anew rather than failing the same way.
    pub async fn bounded<T>(
        &self,
        what: &'static str,
        timeout: Duration,
        f: impl std::future::Future<Output = Result<T, ClusterError>>,
    ) -> Result<T, ClusterError> {
        let result = bounded(what, timeout, f).await;
        if let Err(e) = &result {
            if e.connection_lost() {
                self.discard().await;
            }
        }
        result
    }

    /// One statement's rows, within `timeout` (as [`Session::bounded`]).
    pub async fn query(
        &self,
        what: &'static str,
        timeout: Duration,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, ClusterError> {
        self.bounded(what, timeout, async {
            Ok(self.client().await?.query(sql, params).await?)
        })
        .await
    }

    /// One statement's count of rows changed, within `timeout` (as [`Session::bounded`]).
    pub async fn execute(
        &self,
        what: &'static str,
        timeout: Duration,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, ClusterError> {
        self.bounded(what, timeout, async {
            Ok(self.client().await?.execute(sql, params).await?)
        })
        .await
    }

    /// Drops the connection (after a timeout: it may be stuck behind a statement that
    /// will never answer); the next call connects anew.
    pub async fn discard(&self) {
        *self.client.lock().await = None;
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }
}

/// Runs `f` with a bound: a hung server (SIGSTOP, a network partition) answers nothing,
/// and no caller may wait on it forever.
pub async fn bounded<T>(
    what: &'static str,
    timeout: Duration,
    f: impl std::future::Future<Output = Result<T, ClusterError>>,
) -> Result<T, ClusterError> {
    tokio::time::timeout(timeout, f)
        .await
        .unwrap_or(Err(ClusterError::StatementTimeout { what, timeout }))
}
