//! The page extractors: `Path`, `Query` and `ForPage<E>` are the house ones, but a malformed
//! request answers a browser with the HTML error page (other clients still get JSON).

use crate::http::error::ApiError;
use crate::http::page::PageError;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Path parameters for dashboard pages: [`crate::http::extract::Path`], but a malformed one
/// (`/projects/abc`) answers a browser with the HTML error page, not the API's JSON body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

/// Query parameters for dashboard pages: [`crate::http::extract::Query`], with the error
/// answered like [`Path`]'s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

/// A page extractor's rejection: the error page when the request accepts HTML, else the JSON
/// error body every API client knows.
#[derive(Debug)]
pub struct PageRejection {
    error: ApiError,
    html: bool,
}

impl IntoResponse for PageRejection {
    fn into_response(self) -> Response {
        if self.html {
            PageError::Error(self.error).into_response()
        } else {
            self.error.into_response()
        }
    }
}

/// Does the request say it takes HTML (what every browser's navigation sends)?
fn accepts_html(parts: &axum::http::request::Parts) -> bool {
    parts
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let ForPage(crate::http::extract::Path(v)) =
            ForPage::<crate::http::extract::Path<T>>::from_request_parts(parts, state).await?;
        Ok(Path(v))
    }
}

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let ForPage(crate::http::extract::Query(v)) =
            ForPage::<crate::http::extract::Query<T>>::from_request_parts(parts, state).await?;
        Ok(Query(v))
    }
}

/// Any house extractor answering like [`Path`] when it fails: e.g. `ForPage<Pagination>`, so a
/// page's `?limit=abc` shows a browser the error page.
#[derive(Debug, Clone, Copy, Default)]
pub struct ForPage<E>(pub E);

impl<E, S> axum::extract::FromRequestParts<S> for ForPage<E>
where
    E: axum::extract::FromRequestParts<S, Rejection = ApiError>,
    S: Send + Sync,
{
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match E::from_request_parts(parts, state).await {
            Ok(v) => Ok(ForPage(v)),
            Err(error) => Err(PageRejection {
                error,
                html: accepts_html(parts),
            }),
        }
    }
}
