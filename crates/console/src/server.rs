//! The HTTP listener: [`Console::bind`] checks the address before the broker starts
//! serving, [`Console::run`] serves until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use weir_broker::state::BrokerState;

use crate::{errors, scrape};

/// The address `weir serve` listens for HTTP on unless told otherwise.
pub const HTTP_LISTEN_DEFAULT: &str = "127.0.0.1:9644";

pub struct Console {
    listener: TcpListener,
    router: Router,
}

impl Console {
    pub async fn bind(listen: SocketAddr, state: &Arc<BrokerState>) -> anyhow::Result<Console> {
        let listener = TcpListener::bind(listen).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen for HTTP on {listen}: {e}; pick another address with --http-listen, or turn it off with --http-listen off"
            )
        })?;
        let router = Router::new()
            .route("/metrics", get(scrape::metrics))
            .with_state(Arc::clone(state))
            .fallback(errors::not_found);
        Ok(Console { listener, router })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
