//! The HTML error page: what a browser gets for a failed dashboard request (and for an unknown
//! route outside /api). Domain-free, like the rest of http/; the dashboard frame (web/)
//! re-exports it.

use super::error::ApiError;
use askama::Template;
use axum::response::{Html, IntoResponse, Redirect, Response};

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// A dashboard failure: a redirect (to /login) or an HTML error page.
#[derive(Debug)]
pub enum PageError {
    Redirect(String),
    Error(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Error(e)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        PageError::Error(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Redirect(to) => Redirect::to(&to).into_response(),
            PageError::Error(e) => {
                let page = ErrorPage {
                    status: e.status.as_u16(),
                    reason: e.status.canonical_reason().unwrap_or("Error"),
                    message: &e.message,
                };
                let html = page.render().unwrap_or_else(|_| e.message.clone());
                (e.status, Html(html)).into_response()
            }
        }
    }
}
