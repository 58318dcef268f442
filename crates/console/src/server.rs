//! The HTTP listener: [`Console::bind`] checks the address before the broker starts
//! serving, [`Console::run`] serves until shutdown, sampling the groups' lag
//! ([`crate::lag_history`]) and the broker's throughput ([`crate::throughput_history`])
//! meanwhile. Routes: `/metrics`, the REST API under `/api/v1` ([`crate::api`]), the web
//! console's pages and assets ([`crate::ui`]), and a JSON 404 or 405 for anything else,
//! every one behind the login ([`crate::login`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use weir_broker::authz::Access;
use weir_broker::security::principal::Principal;
use weir_broker::state::BrokerState;

use crate::https::{Peer, TlsListener};
use crate::lag_history::{LagHistory, LAG_SAMPLE_INTERVAL};
use crate::login::{self, Login};
use crate::throughput_history::{ThroughputHistory, THROUGHPUT_SAMPLE_INTERVAL};
use crate::{api, errors, forward, scrape, ui};

/// What every route may read: the broker, and the console's history of groups' lag.
#[derive(Clone)]
pub struct ConsoleState {
    pub broker: Arc<BrokerState>,
    pub lag_history: Arc<LagHistory>,
}

impl FromRef<ConsoleState> for Arc<BrokerState> {
    fn from_ref(s: &ConsoleState) -> Arc<BrokerState> {
        Arc::clone(&s.broker)
    }
}

impl FromRef<ConsoleState> for Arc<LagHistory> {
    fn from_ref(s: &ConsoleState) -> Arc<LagHistory> {
        Arc::clone(&s.lag_history)
    }
}

/// The address `weir serve` listens for HTTP on unless told otherwise.
pub const HTTP_LISTEN_DEFAULT: &str = "127.0.0.1:9644";

/// The HTTP listener, plain or TLS.
enum Bound {
    Plain(TcpListener),
    Tls(TlsListener),
}

pub struct Console {
    listener: Bound,
    local_addr: SocketAddr,
    router: Router,
    broker: Arc<BrokerState>,
    lag_history: Arc<LagHistory>,
    lag_sample_interval: Duration,
    throughput: Arc<ThroughputHistory>,
    throughput_sample_interval: Duration,
}

impl Console {
    pub async fn bind(listen: SocketAddr, state: &Arc<BrokerState>) -> anyhow::Result<Console> {
        Console::bind_with(listen, state, false).await
    }

    /// As [`Console::bind`], serving HTTPS with the broker's certificate when `https` is set
    /// (`--http-tls`).
    pub async fn bind_with(
        listen: SocketAddr,
        state: &Arc<BrokerState>,
        https: bool,
    ) -> anyhow::Result<Console> {
        let listener = TcpListener::bind(listen).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen for HTTP on {listen}: {e}; pick another address with --http-listen, or turn it off with --http-listen off"
            )
        })?;
        let http_addr = listener.local_addr()?;
        let listener = if https {
            let settings = state.config.security.tls.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "--http-tls serves the broker's certificate, but none is given: set --ssl-certificate-location and --ssl-key-location"
                )
            })?;
            Bound::Tls(TlsListener::new(listener, settings)?)
        } else {
            Bound::Plain(listener)
        };
        let lag_history = LagHistory::new();
        let throughput = Arc::new(ThroughputHistory::default());
        let login = Login::for_broker(state);
        let ctx = api::ApiContext {
            broker: Arc::clone(state),
            lag_history: Arc::clone(&lag_history),
            throughput: Arc::clone(&throughput),
            http_addr,
            https,
            access: Access::new(state, Principal::anonymous(), http_addr.ip()),
            authorization: None,
        };
        let router = Router::new()
            .route("/metrics", get(scrape::metrics))
            .with_state(ConsoleState {
                broker: Arc::clone(state),
                lag_history: Arc::clone(&lag_history),
            })
            .merge(api::router(ctx.clone()))
            .merge(ui::router(ctx.clone()))
            .fallback(errors::not_found)
            .method_not_allowed_fallback(errors::method_not_allowed)
            // Behind the login: a group route the controller answers (a cluster).
            .layer(axum::middleware::from_fn_with_state(
                ctx,
                forward::group_routes,
            ))
            .layer(axum::middleware::from_fn_with_state(
                login,
                login::authenticate,
            ));
        Ok(Console {
            listener,
            local_addr: http_addr,
            router,
            broker: Arc::clone(state),
            lag_history,
            lag_sample_interval: LAG_SAMPLE_INTERVAL,
            throughput,
            throughput_sample_interval: THROUGHPUT_SAMPLE_INTERVAL,
        })
    }

    /// The history of groups' lag this console samples while it runs.
    pub fn lag_history(&self) -> Arc<LagHistory> {
        Arc::clone(&self.lag_history)
    }

    /// Samples the groups' lag every `interval` instead of [`LAG_SAMPLE_INTERVAL`] (tests).
    pub fn set_lag_sample_interval(&mut self, interval: Duration) {
        self.lag_sample_interval = interval;
    }

    /// Reads the throughput every `interval` instead of [`THROUGHPUT_SAMPLE_INTERVAL`]
    /// (tests).
    pub fn set_throughput_sample_interval(&mut self, interval: Duration) {
        self.throughput_sample_interval = interval;
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, sampling the groups' lag and the throughput
    /// meanwhile.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let throughput = self
            .throughput
            .spawn_sampler(Arc::clone(&self.broker), self.throughput_sample_interval);
        let sampler = self
            .lag_history
            .spawn_sampler(self.broker, self.lag_sample_interval);
        let router = self.router;
        let served = match self.listener {
            Bound::Plain(listener) => {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<Peer>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
            }
            Bound::Tls(listener) => {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<Peer>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
            }
        };
        sampler.abort();
        throughput.abort();
        served?;
        Ok(())
    }
}
