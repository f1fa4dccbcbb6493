//! `GET /api/termius/export` (the file) and `/api/termius/preview` (what it would hold, as
//! JSON). Reading needs `Read`; secret values need `Admin` and `?secrets=vault`.

use super::*;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read};
use crate::auth::Capability;
use crate::http::error::ApiError;
use crate::http::extract::{ClientAddr, Json, Query};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/termius/export", get(export))
        .route("/api/termius/preview", get(preview_json))
}

async fn export(
    State(s): State<AppState>,
    who: Authed<Read>,
    addr: ClientAddr,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let with_secrets = q
        .wants_secrets()
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    if with_secrets && !who.identity().can(Capability::Admin) {
        return Err(ApiError::forbidden(
            "secret values in the export are for admins (secrets=vault)",
        ));
    }
    let hosts = load(&s, &q).await?;
    let (body, kind, ext) = match q.format.unwrap_or(Format::Csv) {
        Format::Csv => {
            let secrets = if with_secrets {
                let now = s.clock.now_str();
                let caller = crate::vault::actions::Caller::new(who.identity(), addr.0, now);
                Some(resolve_secrets(&s, &caller.actor(), &hosts).await?)
            } else {
                None
            };
            (
                csv(&hosts, secrets.as_deref()),
                "text/csv; charset=utf-8",
                "csv",
            )
        }
        Format::SshConfig => (ssh_config(&hosts), "text/plain; charset=utf-8", "conf"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"architect-termius.{ext}\""),
            ),
            // It may hold secrets; never kept by a browser or a proxy.
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

async fn preview_json(
    State(s): State<AppState>,
    _: Authed<Read>,
    Query(q): Query<ExportQuery>,
) -> Result<Json<Preview>, ApiError> {
    q.wants_secrets()
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    let hosts = load(&s, &q).await?;
    Ok(Json(preview_of(hosts, &q)))
}
