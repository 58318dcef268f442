//! The console's static files, compiled into the binary so nothing is fetched from a CDN
//! or built by a separate JavaScript tool. uPlot (MIT, `assets/uPlot.LICENSE`) draws the
//! charts; `console.css` and `console.js` are weir's own.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::errors::HttpError;

/// One embedded file: its name under `/assets/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/console.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../assets/favicon.svg"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/uPlot.min.css"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/uPlot.iife.min.js"),
    },
];

/// How long a browser may keep an asset: an hour, short enough that an upgraded binary's
/// files are picked up the same day without versioned names.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// `GET /assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, CACHE_CONTROL),
            ],
            a.body,
        )
            .into_response(),
        None => HttpError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("There is no console asset named {name}."),
        }
        .into_response(),
    }
}
