//! The HTTP listener: [`Console::bind`] checks the address before the broker starts
//! serving, [`Console::run`] serves until shutdown. Routes: `/metrics`, the REST API under
//! `/api/v1` ([`crate::api`]), the web console's pages and assets ([`crate::ui`]), and a
//! JSON 404 or 405 for anything else.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use weir_broker::state::BrokerState;

use crate::{api, errors, scrape, ui};

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
        let http_addr = listener.local_addr()?;
        let router = Router::new()
            .route("/metrics", get(scrape::metrics))
            .with_state(Arc::clone(state))
            .merge(api::router(Arc::clone(state), http_addr))
            .merge(ui::router(api::ApiContext {
                broker: Arc::clone(state),
                http_addr,
            }))
            .fallback(errors::not_found)
            .method_not_allowed_fallback(errors::method_not_allowed);
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
