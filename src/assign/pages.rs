//! The Assign forms of the item pages (the box itself is `agents::assign_pages::AssignBox`):
//! a plain form (works without JavaScript) posting to `/{features|bugs|errors}/{id}/assign`.
//! The handler calls the same [`actions::assign_item`] as `POST /api/assign-to-tmux` and
//! redirects back to the item with "Assigned as prompt #N." or the error.

use super::{actions, AssignRequest};
use crate::agents::assigner::ItemKind;
use crate::app::AppState;
use crate::auth::extract::{PageForm, Write};
use crate::http::error::ApiError;
use crate::http::extract::Path;
use crate::web::{back_with_error, see_other, PageError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/features/{id}/assign", post(assign_feature))
        .route("/bugs/{id}/assign", post(assign_bug))
        .route("/errors/{id}/assign", post(assign_error))
}

#[derive(Deserialize)]
struct AssignForm {
    /// `auto` (or empty), `session:NAME`, `role:NAME` or `group:NAME`.
    #[serde(default)]
    target: String,
    #[serde(default)]
    priority: String,
    /// Empty: the generated prompt.
    #[serde(default)]
    message: String,
}

impl AssignForm {
    fn request(self, kind: ItemKind, id: i64) -> Result<AssignRequest, ApiError> {
        let mut r = AssignRequest {
            kind,
            id,
            session: None,
            role: None,
            group: None,
            message: (!self.message.trim().is_empty()).then_some(self.message),
            priority: None,
        };
        match self.target.trim().split_once(':') {
            _ if matches!(self.target.trim(), "" | "auto") => {}
            Some(("session", v)) => r.session = Some(v.to_string()),
            Some(("role", v)) => r.role = Some(v.to_string()),
            Some(("group", v)) => r.group = Some(v.to_string()),
            _ => {
                return Err(ApiError::invalid(
                    "target",
                    "target must be auto, session:NAME, role:NAME or group:NAME",
                ))
            }
        }
        r.priority = match self.priority.trim() {
            "" => None,
            p => Some(
                p.parse()
                    .map_err(|_| ApiError::invalid("priority", "priority must be 0-10"))?,
            ),
        };
        Ok(r)
    }
}

async fn assign_form(
    s: AppState,
    kind: ItemKind,
    id: i64,
    who: crate::auth::Identity,
    f: AssignForm,
) -> Response {
    let back = kind.page(id);
    let r = match f.request(kind, id) {
        Ok(r) => r,
        Err(e) => return back_with_error(&back, &e),
    };
    match actions::assign_item(&s.agents_state(), &who, r).await {
        Ok(a) => see_other(&back, &format!("Assigned as prompt #{}.", a.prompt_id)),
        // No page to go back to.
        Err(e) if e.status == StatusCode::NOT_FOUND => PageError::Error(e).into_response(),
        Err(e) => back_with_error(&back, &e),
    }
}

async fn assign_feature(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, AssignForm>,
) -> Response {
    assign_form(s, ItemKind::Feature, id, who, f).await
}

async fn assign_bug(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, AssignForm>,
) -> Response {
    assign_form(s, ItemKind::Bug, id, who, f).await
}

async fn assign_error(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, AssignForm>,
) -> Response {
    assign_form(s, ItemKind::Error, id, who, f).await
}
