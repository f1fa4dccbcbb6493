//! HTTP plumbing that knows no domain: the error type, house extractors, observability
//! (request ids, tracing, metrics, /health) and the fallbacks.

pub mod cache;
pub mod error;
pub mod extract;
pub mod observe;
pub mod page;

use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use error::ApiError;

/// Unknown routes: JSON under /api and /v1, an HTML page elsewhere.
pub async fn not_found(uri: Uri) -> Response {
    let e = ApiError::not_found(&format!("route {}", uri.path()));
    if wants_json(&uri) {
        e.into_response()
    } else {
        page::PageError::Error(e).into_response()
    }
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
    .into_response()
}

fn wants_json(uri: &Uri) -> bool {
    let p = uri.path();
    p.starts_with("/api/") || p == "/api" || p.starts_with("/v1/")
}
