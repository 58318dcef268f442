//! HTTP errors: a status and a JSON body `{"error": "<one sentence>", "code": "<snake_case>"}`,
//! the sentence for a person and the code for a program.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "code": self.code });
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// The answer to any path no route serves.
pub async fn not_found(uri: Uri) -> HttpError {
    HttpError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: format!(
            "There is nothing at {}; metrics are at /metrics.",
            uri.path()
        ),
    }
}
