//! The web console: server-rendered pages, one file per page, that read through the same
//! functions the HTTP admin API answers with (so a page shows exactly what `/api/v1` says)
//! and act through the API from a little JavaScript (`assets/console.js`). Nothing is
//! fetched from elsewhere: the stylesheet, the script and uPlot are compiled in ([`assets`]).
//!
//! - [`layout`]: the frame of every page and the number formats.
//! - [`overview`]: `/`, the cluster at a glance and the groups that need attention.
//! - [`topics`]: `/topics` and `/topics/{topic}`.
//! - [`messages`]: `/topics/{topic}/messages`, the message browser.
//! - [`groups`]: `/groups` and `/groups/{group}`, with the offset-reset dialog.

pub mod assets;
pub mod groups;
pub mod layout;
pub mod messages;
pub mod overview;
pub mod topics;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::html;

use crate::api::ApiContext;
use crate::errors::HttpError;
use layout::Section;

/// The console's routes, given the same context as the API's handlers.
pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/topics", get(topics::list_page))
        .route("/topics/{topic}", get(topics::topic_page))
        .route("/topics/{topic}/messages", get(messages::page))
        .route("/groups", get(groups::list_page))
        .route("/groups/{group}", get(groups::group_page))
        .route("/assets/{name}", get(assets::asset))
        .with_state(ctx)
}

/// A page that could not be drawn: the API's error sentence in the console's frame, with
/// the API's status (404 for an unknown topic or group, …).
pub fn error_page(ctx: &ApiContext, section: Section, error: HttpError) -> Response {
    let status = error.status;
    let title = if status == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Something went wrong"
    };
    let body = html! {
        h1 { (title) }
        p.notice.error { (error.message) }
    };
    (
        status,
        layout::page(title, section, &ctx.broker.cluster_id(), body),
    )
        .into_response()
}
