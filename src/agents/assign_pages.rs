//! The dashboard's Assign box: each item page (feature, bug, error group) includes
//! `templates/agents/assign_box.html` with an [`AssignBox`], which lists the prompts sent for
//! the item and, for people who may write, a plain form (works without JavaScript) posting to
//! `/{features|bugs|errors}/{id}/assign`. The form handler calls the same
//! [`assign::assign_item`] as `POST /api/assign-to-tmux` and redirects back to the item with
//! "Assigned as prompt #N." or the error.

use super::assign::{self, AssignRequest, ItemKind, DEFAULT_PRIORITY};
use super::assigner::store as prompts;
use super::route::NodeRef;
use super::SessionRole;
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

/// Prompts listed on an item's page (its newest).
const SHOWN_PROMPTS: i64 = 20;

/// One prompt sent for the item, as its page shows it.
pub struct Assignment {
    pub id: i64,
    pub status: String,
    /// The session that took it, or the one it waits for, or "".
    pub session: String,
    pub created_at: String,
    pub created_by: String,
}

/// What an item page needs for its Assign box.
pub struct AssignBox {
    /// Where the form posts.
    pub action: String,
    pub assignments: Vec<Assignment>,
    /// Live sessions on this server's node, by name.
    pub sessions: Vec<String>,
    pub roles: &'static [SessionRole],
    /// Groups of those sessions.
    pub groups: Vec<String>,
    pub default_priority: i64,
    /// What happens to the item when its prompt completes.
    pub on_done: &'static str,
}

impl AssignBox {
    pub async fn load(state: &AppState, kind: ItemKind, id: i64) -> Result<AssignBox, ApiError> {
        let assignments = prompts::of_source(&state.db, kind.as_str(), id, SHOWN_PROMPTS)
            .await?
            .into_iter()
            .map(|p| Assignment {
                id: p.id,
                status: p.status.to_string(),
                session: p.assigned_session.or(p.target_session).unwrap_or_default(),
                created_at: p.created_at,
                created_by: p.created_by,
            })
            .collect();
        let node = NodeRef::parse(None).map_err(|e| ApiError::invalid("node", e.message))?;
        let live: Vec<_> = super::store::sessions(&state.db)
            .await?
            .into_iter()
            .filter(|r| r.gone_at.is_none() && r.node == node.name())
            .collect();
        let mut groups: Vec<String> = live.iter().flat_map(|r| r.groups()).collect();
        groups.sort();
        groups.dedup();
        Ok(AssignBox {
            action: format!("{}/assign", kind.page(id)),
            assignments,
            sessions: live.into_iter().map(|r| r.name).collect(),
            roles: SessionRole::ALL,
            groups,
            default_priority: DEFAULT_PRIORITY,
            on_done: match kind {
                ItemKind::Feature | ItemKind::Bug => "moves to review",
                ItemKind::Error => "is marked in review until someone resolves it",
            },
        })
    }
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
    match assign::assign_item(&s, &who, r).await {
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
