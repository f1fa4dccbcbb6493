//! `POST /api/assign-to-tmux`: sends a feature or bug to an agent session as a prompt (its
//! details and a link back), recorded on the prompt (`source_kind`, `source_id`); when that
//! prompt completes, a feature moves to `review` (through `in_progress` when its workflow
//! requires it) with a comment naming the prompt. Bugs have no review status and keep theirs.

use super::assigner::api::enqueue;
use super::assigner::NewPrompt;
use crate::app::AppState;
use crate::auth::extract::{Authed, Write};
use crate::http::error::ApiError;
use crate::http::extract::Json;
use crate::tracking::{FeaturePatch, FeatureStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/assign-to-tmux", post(assign))
}

crate::text_enum! {
    /// What can be assigned.
    pub enum ItemKind ("item kind") {
        Feature = "feature",
        Bug = "bug",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignRequest {
    kind: ItemKind,
    id: i64,
    /// The session; absent: the assigner picks an idle one.
    session: Option<String>,
    /// Replaces the generated message.
    message: Option<String>,
    priority: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Assigned {
    pub prompt_id: i64,
    pub success: bool,
    pub content: String,
}

async fn assign(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(r): Json<AssignRequest>,
) -> Result<(StatusCode, Json<Assigned>), ApiError> {
    let base = s.tasks.local_url().unwrap_or("").to_string();
    let generated = match r.kind {
        ItemKind::Feature => {
            let f = crate::tracking::store::get_feature(&s.db, r.id)
                .await?
                .ok_or_else(|| ApiError::not_found("feature").with_field("id"))?;
            format!(
                "Implement feature #{} (priority {}): {}\n\n{}\n\nDetails: {base}/features/{}",
                f.id, f.priority, f.name, f.description, f.id
            )
        }
        ItemKind::Bug => {
            let b = crate::tracking::store::get_bug(&s.db, r.id)
                .await?
                .ok_or_else(|| ApiError::not_found("bug").with_field("id"))?;
            format!(
                "Fix bug #{} ({}): {}\n\n{}\n\nDetails: {base}/bugs/{}",
                b.id, b.severity, b.title, b.description, b.id
            )
        }
    };
    let content = r.message.unwrap_or(generated);
    let id = enqueue(
        &s,
        &who.identity().username,
        NewPrompt {
            content: content.clone(),
            priority: r.priority,
            target_session: r.session,
            ..Default::default()
        },
        Some((r.kind.as_str(), r.id)),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Assigned {
            prompt_id: id,
            success: true,
            content,
        }),
    ))
}

/// Runs the follow-ups of prompt `id`, which just completed.
pub async fn prompt_completed(state: &AppState, id: i64) -> Result<(), anyhow::Error> {
    let Some(p) = super::assigner::store::get(&state.db, id).await? else {
        return Ok(());
    };
    let (Some("feature"), Some(feature_id)) = (p.source_kind.as_deref(), p.source_id) else {
        return Ok(());
    };
    let Some(f) = crate::tracking::store::get_feature(&state.db, feature_id).await? else {
        return Ok(());
    };
    let now = state.clock.now_str();
    let ctx = crate::tracking::actions::Ctx {
        actor: "assigner",
        now: &now,
    };
    let mut steps = Vec::new();
    if !f.status.can_move_to(FeatureStatus::Review)
        && f.status.can_move_to(FeatureStatus::InProgress)
    {
        steps.push(FeatureStatus::InProgress);
    }
    steps.push(FeatureStatus::Review);
    let mut current = f.status;
    for step in steps {
        if !current.can_move_to(step) {
            break;
        }
        let patch = FeaturePatch {
            status: Some(step),
            comment: Some(format!(
                "assigner prompt #{id} completed in session {}",
                p.assigned_session.as_deref().unwrap_or("?")
            )),
            ..Default::default()
        };
        current = crate::tracking::actions::update_feature(&state.db, &ctx, feature_id, patch)
            .await
            .map_err(|e| anyhow::anyhow!("moving feature {feature_id}: {e}"))?
            .status;
    }
    Ok(())
}
