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

struct Candidate {
    source: SuggestionSource,
    source_id: i64,
    title: String,
    reason: String,
    score: i64,
    proposed: Target,
}

fn clip(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut t: String = flat.chars().take(max - 1).collect();
    t.push('…');
    t
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

async fn candidates(
    state: &AppState,
    project: &crate::tracking::Project,
) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    // Scan items (file notes): the open ones not yet in an approved plan.
    let mut conn = state.db.acquire().await?;
    for i in store::open_items(&mut conn, project.id)
        .await?
        .into_iter()
        .filter(|i| i.kind.is_file() && i.feature_id.is_none())
    {
        let (proposed, what) = match i.kind {
            Source::Fixme | Source::Xxx | Source::Hack => (Target::Prompt, "fix"),
            _ => (Target::Feature, "plan"),
        };
        out.push(Candidate {
            source: SuggestionSource::Item,
            source_id: i.id,
            title: clip(&i.text, 150),
            reason: format!(
                "{} at {}{}: {what} it",
                i.kind.as_str().to_uppercase(),
                i.location(),
                i.author
                    .as_deref()
                    .map(|a| format!(" (by {a})"))
                    .unwrap_or_default()
            ),
            score: i.weight,
            proposed,
        });
    }
    drop(conn);
    for status in [
        crate::tracking::BugStatus::Open,
        crate::tracking::BugStatus::InProgress,
    ] {
        for b in crate::tracking::store::list_bugs(
            &state.db,
            &crate::tracking::BugFilter {
                project_id: Some(project.id),
                status: Some(status),
                ..Default::default()
            },
            1000,
            0,
        )
        .await?
        {
            use crate::tracking::BugSeverity as S;
            let score = match b.severity {
                S::Critical => 70,
                S::High => 55,
                S::Medium => 35,
                S::Low => 15,
            };
            out.push(Candidate {
                source: SuggestionSource::Bug,
                source_id: b.id,
                title: clip(&format!("Fix bug #{}: {}", b.id, b.title), 150),
                reason: format!(
                    "{} bug #{} is {} since {}",
                    b.severity,
                    b.id,
                    b.status.as_str().replace('_', " "),
                    b.created_at.get(..10).unwrap_or(&b.created_at)
                ),
                score,
                proposed: Target::Prompt,
            });
        }
    }
    let mut conn = state.db.acquire().await?;
    for g in crate::errors::store::list_groups(
        &mut conn,
        &crate::errors::GroupFilter {
            status: Some(crate::errors::GroupStatus::Open),
            source: Some(project.name.clone()),
            ..Default::default()
        },
        1000,
        0,
    )
    .await?
    .into_iter()
    .filter(|g| g.bug_id.is_none())
    {
        let score = 30
            + ((g.count.max(1) as f64).log10() * 10.0).min(30.0) as i64
            + if g.regressed { 10 } else { 0 };
        out.push(Candidate {
            source: SuggestionSource::ErrorGroup,
            source_id: g.id,
            title: clip(&format!("File a bug for: {}", g.title), 150),
            reason: format!(
                "error group #{} seen {} time{} (last {}){}",
                g.id,
                g.count,
                if g.count == 1 { "" } else { "s" },
                g.last_seen,
                if g.regressed { ", regressed" } else { "" }
            ),
            score,
            proposed: Target::Bug,
        });
    }
    drop(conn);
    for t in crate::tasks::store::list_tasks(
        &state.db,
        &crate::tasks::TaskFilter {
            status: Some(crate::tasks::TaskStatus::Dead),
            project_id: Some(project.id),
            ..Default::default()
        },
        200,
        0,
    )
    .await?
    {
        out.push(Candidate {
            source: SuggestionSource::FailedTask,
            source_id: t.id,
            title: clip(
                &format!("Run failed task #{} ({}) again", t.id, t.task_type),
                150,
            ),
            reason: format!(
                "task #{} failed for good after {} attempt{}{}",
                t.id,
                t.attempts,
                if t.attempts == 1 { "" } else { "s" },
                t.error
                    .as_deref()
                    .map(|e| format!(": {}", clip(e, 120)))
                    .unwrap_or_default()
            ),
            score: 45,
            proposed: Target::Task,
        });
    }
    out.sort_by(|a, b| b.score.cmp(&a.score).then(a.source_id.cmp(&b.source_id)));
    Ok(out)
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
    let pending = store::list_suggestions(
        &state.db,
        &store::SuggestionFilter {
            project_id: req.project_id,
            status: None,
        },
        crate::http::extract::MAX_LIMIT,
        0,
    )
    .await?
    .len() as i64;
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

/// Confirms a pending suggestion into its target. Features and bugs are made in the same
/// transaction as the status change; a prompt or a task goes through its own domain first
/// (the assigner's and the task queue's checks apply), then the suggestion records it.
pub async fn confirm(
    state: &AppState,
    who: &Identity,
    id: i64,
    req: ConfirmRequest,
) -> Result<SuggestionStatusView> {
    let actor = who.actor();
    let note = check_note(&req.note)?;
    let s = store::get_suggestion(&state.db, id)
        .await?
        .ok_or(PlanningError::NotFound("suggestion"))?;
    if s.status != SuggestionStatus::Pending {
        return Err(wrong_state(&s, "pending"));
    }
    let target = req.target.unwrap_or(s.proposed);
    let project = crate::tracking::store::get_project(&state.db, s.project_id)
        .await?
        .ok_or(PlanningError::NotFound("project"))?;
    let item = match s.source {
        SuggestionSource::Item => store::get_item(&state.db, s.source_id).await?,
        _ => None,
    };
    let body = describe(&s, item.as_ref(), &project);
    // Made outside the suggestion's transaction: a prompt or a task.
    let made_outside = match target {
        Target::Prompt => {
            let source = match s.source {
                SuggestionSource::Bug => Some(("bug", s.source_id)),
                SuggestionSource::ErrorGroup => Some(("error", s.source_id)),
                _ => None,
            };
            let mut metadata = json!({"project": project.name, "suggestion_id": s.id});
            if let Some(path) = &project.source_path {
                metadata["cwd"] = json!(path);
            }
            let prompt = crate::agents::assigner::NewPrompt {
                content: body.clone(),
                priority: Some((s.score / 10).clamp(0, 10)),
                target_session: req.target_session.clone(),
                target_role: req.target_role.clone(),
                target_group: None,
                timeout_minutes: None,
                max_retries: None,
                metadata: Some(metadata),
                parent_id: None,
                from_session: None,
                node: req.node.clone(),
            };
            let pid = crate::agents::assigner::api::enqueue(state, who, prompt, source).await?;
            Some(pid)
        }
        Target::Task => {
            let t = match (s.source, &req.task_type) {
                (_, Some(task_type)) => {
                    crate::tasks::actions::create_task(
                        state,
                        &actor,
                        crate::tasks::NewTask {
                            task_type: task_type.clone(),
                            payload: req.payload.clone(),
                            priority: None,
                            max_retries: None,
                            timeout_s: None,
                            run_after: None,
                            tags: None,
                            node: req.node.clone(),
                            project_id: Some(project.id),
                        },
                    )
                    .await?
                }
                (SuggestionSource::FailedTask, None) => {
                    crate::tasks::actions::retry(state, &actor, s.source_id).await?
                }
                (_, None) => {
                    return Err(crate::validate::invalid(
                        "type",
                        "a task needs its type (and payload): {\"target\": \"task\", \"type\": \"shell\", \"payload\": {...}}",
                    )
                    .into())
                }
            };
            Some(t.id)
        }
        Target::Feature | Target::Bug => None,
    };
    let now = state.clock.now_str();
    let ctx = Ctx {
        actor: &actor,
        now: &now,
        events: &state.events,
    };
    let mut tx = crate::db::begin_write(&state.db).await?;
    let s = store::lock_suggestion(&mut tx, id, &now)
        .await?
        .ok_or(PlanningError::NotFound("suggestion"))?;
    if s.status != SuggestionStatus::Pending {
        return Err(wrong_state(&s, "pending"));
    }
    let mut announce = None;
    let result_id = match (target, made_outside) {
        (_, Some(id)) => id,
        (Target::Feature, None) => {
            let f = crate::tracking::actions::create_feature_in(
                &mut tx,
                &ctx,
                crate::tracking::NewFeature {
                    project_id: project.id,
                    name: s.title.clone(),
                    milestone_id: None,
                    description: Some(actions::clip_chars(&body, crate::tracking::MAX_DESCRIPTION)),
                    priority: Some((s.score / 10).clamp(0, crate::tracking::MAX_PRIORITY)),
                    assignee: None,
                },
            )
            .await?;
            if let Some(i) = &item {
                store::link_feature(&mut tx, &[i.id], f.id, &now).await?;
            }
            announce = Some(("feature", f.id));
            f.id
        }
        (_, None) => {
            let severity = match s.score {
                x if x >= 60 => crate::tracking::BugSeverity::High,
                x if x >= 30 => crate::tracking::BugSeverity::Medium,
                _ => crate::tracking::BugSeverity::Low,
            };
            let b = crate::tracking::actions::create_bug_in(
                &mut tx,
                &ctx,
                crate::tracking::NewBug {
                    project_id: project.id,
                    title: s.title.trim_start_matches("File a bug for: ").to_string(),
                    milestone_id: None,
                    description: Some(actions::clip_chars(&body, crate::tracking::MAX_DESCRIPTION)),
                    severity: Some(severity),
                    assignee: None,
                },
            )
            .await?;
            announce = Some(("bug", b.id));
            b.id
        }
    };
    store::set_suggestion_status(
        &mut tx,
        id,
        SuggestionStatus::Confirmed,
        Some((target, result_id)),
        &now,
    )
    .await?;
    store::record_history(
        &mut tx,
        id,
        SuggestionStatus::Confirmed,
        &actor,
        Some(&note.unwrap_or_else(|| format!("{target} #{result_id}"))),
        &now,
    )
    .await?;
    crate::activity::store::record(
        &mut tx,
        &actor,
        "confirm",
        "suggestion",
        Some(id),
        &json!({"target": target, "result_id": result_id}),
        &now,
    )
    .await?;
    tx.commit().await?;
    if let Some((entity, eid)) = announce {
        ctx.changed(entity, eid);
    }
    state
        .events
        .emit(crate::events::Topic::Work, "suggestion", id);
    status(state, id).await
}

/// The text a confirmed suggestion carries into its feature, bug or prompt.
fn describe(s: &Suggestion, item: Option<&PlanItem>, project: &crate::tracking::Project) -> String {
    let mut d = format!(
        "{}\n\nWhy: {}\nProject: {}",
        s.title, s.reason, project.name
    );
    if let Some(p) = &project.source_path {
        d.push_str(&format!(" ({p})"));
    }
    if let Some(i) = item {
        d.push_str(&format!("\nWhere: {} — {}", i.location(), i.text));
        if let Some(h) = &i.heading {
            d.push_str(&format!("\nUnder: {h}"));
        }
    }
    d.push_str(&format!("\n\nFrom task suggestion #{}.", s.id));
    d
}

/// Skips a pending suggestion (the reason is kept); it is not suggested again.
pub async fn skip(
    state: &AppState,
    actor: &str,
    id: i64,
    req: NoteRequest,
) -> Result<SuggestionStatusView> {
    change(
        state,
        actor,
        id,
        req,
        SuggestionStatus::Skipped,
        &[SuggestionStatus::Pending],
    )
    .await
}

/// Marks a suggestion done (pending or confirmed).
pub async fn complete(
    state: &AppState,
    actor: &str,
    id: i64,
    req: NoteRequest,
) -> Result<SuggestionStatusView> {
    change(
        state,
        actor,
        id,
        req,
        SuggestionStatus::Completed,
        &[SuggestionStatus::Pending, SuggestionStatus::Confirmed],
    )
    .await
}

async fn change(
    state: &AppState,
    actor: &str,
    id: i64,
    req: NoteRequest,
    to: SuggestionStatus,
    from: &[SuggestionStatus],
) -> Result<SuggestionStatusView> {
    let note = check_note(&req.note)?;
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let s = store::lock_suggestion(&mut tx, id, &now)
        .await?
        .ok_or(PlanningError::NotFound("suggestion"))?;
    if !from.contains(&s.status) {
        let names: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        return Err(wrong_state(&s, &names.join(" or ")));
    }
    store::set_suggestion_status(&mut tx, id, to, None, &now).await?;
    store::record_history(&mut tx, id, to, actor, note.as_deref(), &now).await?;
    crate::activity::store::record(
        &mut tx,
        actor,
        to.as_str(),
        "suggestion",
        Some(id),
        &json!({"note": note}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Work, "suggestion", id);
    status(state, id).await
}
