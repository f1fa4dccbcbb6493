//! The pattern editor's form posts on the Interactions panel: create, edit, enable /
//! disable and delete a permission pattern, each through `permission_actions::check_pattern`
//! (the validation `/api/claude/patterns` uses), back to `/interactions` with a flash.

use super::interactions_pages::back;
use super::permission_actions::{self as actions, PatternInput};
use super::permission_store as pstore;
use super::permissions::{Decision, PermissionPattern};
use super::AgentsError;
use crate::app::AppState;
use crate::auth::extract::{PageForm, Write};
use crate::http::extract::Path;
use crate::web::see_other;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/interactions/patterns", post(create_pattern))
        .route("/interactions/patterns/{id}", post(update_pattern))
        .route("/interactions/patterns/{id}/enable", post(enable))
        .route("/interactions/patterns/{id}/disable", post(disable))
        .route("/interactions/patterns/{id}/delete", post(delete_pattern))
}

/// The pattern form's values (create, or edit of `id`).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(super) struct PatternForm {
    pub(super) name: String,
    pub(super) tool_regex: String,
    pub(super) subject_regex: String,
    pub(super) session_scope: String,
    pub(super) role_scope: String,
    pub(super) decision: String,
    pub(super) enabled: Option<String>,
    pub(super) override_guard: Option<String>,
}

/// A trimmed form value, or None when it is empty.
pub(super) fn some(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

impl PatternForm {
    fn input(&self) -> Result<PatternInput, AgentsError> {
        let decision: Decision = self
            .decision
            .parse()
            .map_err(|e| crate::validate::invalid("decision", e))?;
        Ok(PatternInput {
            name: self.name.clone(),
            tool_regex: self.tool_regex.clone(),
            subject_regex: self.subject_regex.clone(),
            session_scope: some(&self.session_scope),
            role_scope: some(&self.role_scope),
            decision,
            enabled: Some(self.enabled.is_some()),
            override_guard: self.override_guard.is_some(),
        })
    }

    pub(super) fn of(p: &PermissionPattern) -> PatternForm {
        PatternForm {
            name: p.name.clone(),
            tool_regex: p.tool_regex.clone(),
            subject_regex: p.subject_regex.clone(),
            session_scope: p.session_scope.clone().unwrap_or_default(),
            role_scope: p.role_scope.clone().unwrap_or_default(),
            decision: p.decision.clone(),
            enabled: (p.enabled != 0).then(|| "on".into()),
            override_guard: (p.override_guard != 0).then(|| "on".into()),
        }
    }
}

async fn create_pattern(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, PatternForm>,
) -> Response {
    let r = async {
        let fields = actions::check_pattern(f.input()?)?;
        Ok::<_, AgentsError>(
            pstore::insert_pattern(&s.db, &fields, &who.username, &s.clock.now_str()).await?,
        )
    }
    .await;
    match r {
        Ok(p) => see_other(
            "/interactions",
            &format!("Pattern #{} '{}' created.", p.id, p.name),
        ),
        Err(e) => back("/interactions", e),
    }
}

async fn update_pattern(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, PatternForm>,
) -> Response {
    let editing = format!("/interactions?edit={id}");
    let r = async {
        let fields = actions::check_pattern(f.input()?)?;
        pstore::update_pattern(&s.db, &who.actor(), id, &fields, &s.clock.now_str())
            .await?
            .ok_or_else(|| AgentsError::NotFound("pattern".into()))
    }
    .await;
    match r {
        Ok(p) => see_other(
            "/interactions",
            &format!("Pattern #{} '{}' saved.", p.id, p.name),
        ),
        Err(e) => back(&editing, e),
    }
}

#[derive(Deserialize)]
struct Empty {}

/// Enables or disables a stored pattern through the same check as an edit.
async fn set_enabled(s: &crate::agents::AgentsState, actor: &str, id: i64, on: bool) -> Response {
    let r = async {
        let p = pstore::pattern(&s.db, id)
            .await?
            .ok_or_else(|| AgentsError::NotFound("pattern".into()))?;
        let mut input = PatternInput::from(&p);
        input.enabled = Some(on);
        let fields = actions::check_pattern(input)?;
        pstore::update_pattern(&s.db, actor, id, &fields, &s.clock.now_str())
            .await?
            .ok_or_else(|| AgentsError::NotFound("pattern".into()))
    }
    .await;
    match r {
        Ok(p) => see_other(
            "/interactions",
            &format!(
                "Pattern #{id} '{}' {}.",
                p.name,
                if on { "enabled" } else { "disabled" }
            ),
        ),
        Err(e) => back("/interactions", e),
    }
}

async fn enable(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, ..): PageForm<Write, Empty>,
) -> Response {
    set_enabled(&s.agents_state(), &who.actor(), id, true).await
}

async fn disable(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, ..): PageForm<Write, Empty>,
) -> Response {
    set_enabled(&s.agents_state(), &who.actor(), id, false).await
}

async fn delete_pattern(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, ..): PageForm<Write, Empty>,
) -> Response {
    match pstore::delete_pattern(&s.db, &who.actor(), id, &s.clock.now_str()).await {
        Ok(true) => see_other("/interactions", &format!("Pattern #{id} deleted.")),
        Ok(false) => back("/interactions", AgentsError::NotFound("pattern".into())),
        Err(e) => back("/interactions", AgentsError::from(e)),
    }
}
