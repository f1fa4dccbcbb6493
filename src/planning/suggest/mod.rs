//! Task suggestions: the next things worth doing in a project, ranked with the reason shown,
//! each confirmed by a person into what it should become (a feature, a bug, a prompt queued
//! for an agent, or a task) or skipped. A source is suggested once: a skipped suggestion is
//! not offered again.
//!
//! Sources: the project's open scan items (FIXME-style notes → a prompt, TODOs and roadmap
//! boxes → a feature), open bugs (→ a prompt to fix), unresolved error groups without a bug
//! (→ a bug), and tasks of the project that failed for good (→ run it again as a task).

use super::PlanResult as Result;
use super::*;
use crate::auth::Identity;
use crate::tracking::actions::Ctx;
use serde_json::json;

mod confirm;
mod sources;
pub use confirm::*;
use sources::candidates;

/// Suggestions made per project and call (the best-ranked ones).
pub const PER_PROJECT: usize = 50;

/// `POST /api/tasks/suggest`: one project, or every active project.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestRequest {
    pub project_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// New suggestions made by this call.
    pub created: Vec<Suggestion>,
    /// Pending suggestions in all (of the project, or everywhere).
    pub pending: i64,
}

/// `POST /api/tasks/suggest/{id}/confirm`. Without `target` the suggestion's own proposal is
/// made. A prompt may name its target session, role or node; a task needs its type and payload
/// (unless it re-runs a failed task).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub target: Option<Target>,
    pub target_session: Option<String>,
    pub target_role: Option<String>,
    pub node: Option<String>,
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    pub payload: Option<serde_json::Value>,
    pub note: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    #[serde(alias = "reason")]
    pub note: Option<String>,
}

/// `GET /api/tasks/suggest/{id}/status`.
#[derive(Debug, Clone, Serialize)]
pub struct SuggestionStatusView {
    #[serde(flatten)]
    pub suggestion: Suggestion,
    pub history: Vec<SuggestionEvent>,
}

/// One line of at most `max` characters (the overview's rule for titles in lists).
fn clip(s: &str, max: usize) -> String {
    crate::overview::one_line(s, max)
}

fn check_note(note: &Option<String>) -> Result<Option<String>> {
    match note.as_deref().map(str::trim) {
        Some(n) if n.chars().count() > 2000 => {
            Err(crate::validate::invalid("note", "at most 2000 characters").into())
        }
        Some("") | None => Ok(None),
        Some(n) => Ok(Some(n.to_string())),
    }
}

/// Makes suggestions for one project or every active one; a source suggested before (pending,
/// confirmed, skipped or done) is left alone.
pub async fn generate(state: &AppState, actor: &str, req: SuggestRequest) -> Result<Generated> {
    let projects = match req.project_id {
        Some(id) => {
            let p = crate::tracking::store::get_project(&state.db, id)
                .await?
                .ok_or(PlanningError::NotFound("project"))?;
            if p.archived {
                return Err(crate::validate::invalid(
                    "project_id",
                    format!("project {id} is archived"),
                )
                .into());
            }
            vec![p]
        }
        None => {
            crate::tracking::store::list_projects(
                &state.db,
                &crate::tracking::ProjectFilter {
                    status: Some(crate::tracking::ProjectStatus::Active),
                    ..Default::default()
                },
                10_000,
                0,
            )
            .await?
        }
    };
    let mut created = Vec::new();
    for p in &projects {
        let found = candidates(state, p).await?;
        let now = state.clock.now_str();
        let mut tx = crate::db::begin_write(&state.db).await?;
        let mut ids = Vec::new();
        for c in found.into_iter().take(PER_PROJECT) {
            let new = store::NewSuggestion {
                project_id: p.id,
                source: c.source,
                source_id: c.source_id,
                title: c.title,
                reason: c.reason,
                score: c.score,
                proposed: c.proposed,
            };
            if let Some(id) = store::insert_suggestion(&mut tx, &new, &now).await? {
                store::record_history(&mut tx, id, SuggestionStatus::Pending, actor, None, &now)
                    .await?;
                ids.push(id);
            }
        }
        if !ids.is_empty() {
            crate::activity::store::record(
                &mut tx,
                actor,
                "suggest",
                "project",
                Some(p.id),
                &json!({"suggestions": ids}),
                &now,
            )
            .await?;
        }
        tx.commit().await?;
        for id in ids {
            if let Some(s) = store::get_suggestion(&state.db, id).await? {
                created.push(s);
            }
        }
    }
    if !created.is_empty() {
        state
            .events
            .emit(crate::events::Topic::Work, "suggestion", created[0].id);
    }
    let (_, pending) = store::pending_counts(&state.db, req.project_id).await?;
    Ok(Generated { created, pending })
}

pub async fn status(state: &AppState, id: i64) -> Result<SuggestionStatusView> {
    let suggestion = store::get_suggestion(&state.db, id)
        .await?
        .ok_or(PlanningError::NotFound("suggestion"))?;
    let history = store::history(&state.db, id).await?;
    Ok(SuggestionStatusView {
        suggestion,
        history,
    })
}

fn wrong_state(s: &Suggestion, want: &str) -> PlanningError {
    PlanningError::Conflict(format!(
        "suggestion {} is {}; only a {want} suggestion can be changed this way",
        s.id, s.status
    ))
}
