//! The REST admin API under `/api/v1`: JSON in and out, served from the broker's own
//! services (the functions the Kafka handlers call, the group coordinator), with no state
//! of its own but the undo files of offset resets.
//!
//! Layout, one file per resource:
//! - [`cluster`]: `GET /cluster`.
//! - [`topics`]: list, describe, create, delete, alter configs, add partitions.
//! - [`messages`]: read a partition's records, produce one.
//! - [`groups`]: list, describe, rebalance history, lag history and status, delete a
//!   group, delete its offsets.
//! - [`offsets_reset`]: plan, execute and undo a reset of a group's offsets.
//! - [`extract`]: the request extractors, whose refusals are JSON like every error.
//! - [`authorize`]: the ACL checks each route makes for its caller, the ones the Kafka
//!   API doing the same work makes.
//!
//! The OpenAPI document (`GET /api/v1/openapi.json`) is built from the same annotations the
//! routes are registered from, so a route cannot be missing from it.

pub mod authorize;
pub mod cluster;
pub mod extract;
pub mod groups;
pub mod messages;
pub mod offsets_reset;
pub mod topics;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weir_broker::authz::Access;
use weir_broker::state::BrokerState;

use crate::errors::HttpError;
use crate::lag_history::LagHistory;
use crate::throughput_history::ThroughputHistory;

/// The most bytes a request body may have: far above any JSON the API takes (a produced
/// message is bounded by the topic's `max.message.bytes`, 1 MiB by default), and small
/// enough that a client cannot make the broker buffer much.
pub const API_BODY_BYTES_MAX: usize = 1 << 20;

/// What every handler is given: the broker's state, the console's history of groups' lag,
/// where the console listens (shown by `GET /cluster`), and what the caller may do.
#[derive(Clone)]
pub struct ApiContext {
    pub broker: Arc<BrokerState>,
    pub lag_history: Arc<LagHistory>,
    pub throughput: Arc<ThroughputHistory>,
    pub http_addr: SocketAddr,
    /// Whether that listener serves HTTPS (`--http-tls`).
    pub https: bool,
    /// The caller's access: anonymous in the router's state, the logged-in caller's once
    /// a handler takes the context as its extractor.
    pub access: Access,
    /// The caller's `Authorization` header, passed on when a route asks the controller
    /// for group data ([`crate::forward`]).
    pub authorization: Option<axum::http::HeaderValue>,
}

/// A handler's context is the router's, with the caller [`crate::login::authenticate`]
/// found.
impl FromRequestParts<ApiContext> for ApiContext {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiContext,
    ) -> Result<ApiContext, HttpError> {
        let access = parts.extensions.get::<Access>().cloned().ok_or_else(|| {
            HttpError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "The request reached a route without passing the login.",
            )
        })?;
        Ok(ApiContext {
            access,
            authorization: parts
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .cloned(),
            ..state.clone()
        })
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "weir admin API",
        description = "Topics, messages and consumer groups of a weir broker. Errors are JSON: {\"error\": \"<one sentence>\", \"code\": \"<snake_case>\"}.",
        license(name = "Apache-2.0")
    ),
    components(schemas(crate::errors::ErrorBody)),
    tags(
        (name = "cluster", description = "The broker and its listeners"),
        (name = "topics", description = "Topics, their partitions and configs"),
        (name = "messages", description = "Reading and producing records"),
        (name = "groups", description = "Consumer groups and their committed offsets"),
    )
)]
struct ApiDoc;

/// The routes and the document describing them, built together.
fn parts() -> (Router<ApiContext>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(cluster::get_cluster))
        .routes(routes!(cluster::get_throughput))
        .routes(routes!(topics::list_topics, topics::create_topic))
        .routes(routes!(topics::describe_topic, topics::delete_topic))
        .routes(routes!(topics::alter_topic_configs))
        .routes(routes!(topics::add_partitions))
        .routes(routes!(messages::read_messages))
        .routes(routes!(messages::produce_message))
        .routes(routes!(groups::list_groups))
        .routes(routes!(groups::describe_group, groups::delete_group))
        .routes(routes!(groups::group_rebalances))
        .routes(routes!(groups::group_lag_history))
        .routes(routes!(groups::delete_offsets))
        .routes(routes!(offsets_reset::reset_offsets))
        .routes(routes!(offsets_reset::undo_reset))
        .routes(routes!(openapi_json))
        .split_for_parts()
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "cluster",
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    /// Built once: the document never changes while the broker runs.
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(openapi).clone())
}

/// The OpenAPI 3 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The API's routes, its document at `/api/v1/openapi.json` among them, ready to merge
/// into the console's router.
pub fn router(ctx: ApiContext) -> Router {
    parts()
        .0
        .layer(DefaultBodyLimit::max(API_BODY_BYTES_MAX))
        .with_state(ctx)
}

/// Runs `f` on the blocking pool: reading logs takes partition locks, which an append may
/// hold during disk I/O, so it stays off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "an HTTP API task failed");
            Err(HttpError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "The request failed inside the broker; the broker log says why.",
            ))
        }
    }
}
