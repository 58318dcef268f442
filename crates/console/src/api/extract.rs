//! Request extractors whose refusals are the API's JSON errors: axum's own answer a bad
//! body, path or query string in plain text.
//!
//! - [`JsonBody`]: the body as JSON. Too large → 413 `body_too_large`; not JSON → 400
//!   `malformed_json`; JSON of the wrong shape (a missing field, a string for a number) →
//!   400 `invalid_body`.
//! - [`PathParams`]: the path's parameters; one that does not parse (a partition that is
//!   not a number) → 400 `invalid_path`.
//! - [`QueryParams`]: the query string; → 400 `invalid_query`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::errors::HttpError;

use super::API_BODY_BYTES_MAX;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, HttpError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                HttpError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("The request body is larger than the API takes ({API_BODY_BYTES_MAX} bytes)."),
                )
            } else {
                HttpError::bad_request(
                    "unreadable_body",
                    format!("The request body could not be read: {}.", rejection.body_text()),
                )
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses a body, telling JSON that is not JSON from JSON that is not what was asked.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    use serde_json::error::Category;
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        Category::Data => HttpError::bad_request(
            "invalid_body",
            format!("The request body does not have the expected fields: {e}."),
        ),
        Category::Syntax | Category::Eof | Category::Io => HttpError::bad_request(
            "malformed_json",
            if bytes.is_empty() {
                "The request needs a JSON body.".to_string()
            } else {
                format!("The request body is not valid JSON: {e}.")
            },
        ),
    })
}

pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| PathParams(t))
            .map_err(|rejection| {
                HttpError::bad_request(
                    "invalid_path",
                    format!(
                        "The path is not what this route takes: {}.",
                        rejection.body_text()
                    ),
                )
            })
    }
}

pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(t)| QueryParams(t))
            .map_err(|rejection| {
                HttpError::bad_request(
                    "invalid_query",
                    format!(
                        "The query string is not what this route takes: {}.",
                        rejection.body_text()
                    ),
                )
            })
    }
}
