//! The Interactions panel (`/interactions`): permission prompts waiting for a person (approve,
//! deny, approve always), recent decisions with who or what decided them, the permission
//! pattern editor (create, edit, enable / disable, delete), and dry runs — of one request, or
//! of a pattern draft replayed over the last recorded interactions.
//!
//! Every change goes through `permission_actions` (the code behind `/api/claude/*`), so the
//! page and the API validate and decide alike. Plain forms: each works without JavaScript.
//! The pattern editor's form posts are `pattern_pages.rs`.

use super::pattern_pages::{some, PatternForm};
use super::permission_actions::{self as actions, DryRun, HandleAction, PatternInput, Replayed};
use super::permission_store::{self as pstore, AuditedInteraction, Interaction};
use super::permissions::{self, Decision, PermissionPattern, Verdict};
use super::{AgentsError, SessionRole};
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::auth::Identity;
use crate::http::error::ApiError;
use crate::web::at;
use crate::web::{back_with_error, local_path, render, see_other, Layout, PageError};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

/// Decided interactions listed in the "pending" view (the "all" view lists up to 200).
const RECENT: i64 = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/interactions", get(page))
        .route("/interactions/{id}/handle", post(handle))
        .route("/interactions/dry-run", post(dry_run))
        .merge(super::pattern_pages::routes())
}

/// A flash for an error, naming the field when the message does not.
pub(super) fn error_text(e: &ApiError) -> String {
    match &e.field {
        Some(f) if !e.message.contains(f.as_str()) => format!("{f}: {}", e.message),
        _ => e.message.clone(),
    }
}

pub(super) fn back(path: &str, e: impl Into<ApiError>) -> Response {
    let mut e = e.into();
    e.message = error_text(&e);
    back_with_error(path, &e)
}

/// One interaction as the tables show it.
struct Row {
    i: Interaction,
    subject: String,
    age: crate::web::At,
    reason: String,
    /// Who or what decided, in words ("pattern #3", "alice", "gone from the screen").
    by: String,
    /// The deciding pattern, when one did.
    by_pattern: Option<i64>,
}

fn who_decided(by: &str) -> (String, Option<i64>) {
    if let Some(id) = by.strip_prefix("pattern:") {
        return (format!("pattern #{id}"), id.parse().ok());
    }
    if let Some(user) = by.strip_prefix("user:") {
        return (format!("{user} (by hand)"), None);
    }
    match by {
        "pane:closed" => ("gone from the screen".into(), None),
        "session:gone" => ("the session ended".into(), None),
        _ => (by.to_string(), None),
    }
}

fn row(now: time::OffsetDateTime, a: AuditedInteraction) -> Row {
    let i = a.interaction;
    let (by, by_pattern) = who_decided(i.decision_by.as_deref().unwrap_or(""));
    Row {
        subject: i.command.clone().or(i.path.clone()).unwrap_or_default(),
        age: at(now, &i.created_at),
        reason: a.reason.unwrap_or_default(),
        by,
        by_pattern,
        i,
    }
}

struct PatternRow {
    p: PermissionPattern,
    hits: i64,
    /// (rule, example tool, example subject) the never-auto-approve list keeps asking about.
    guarded: Vec<(&'static str, &'static str, &'static str)>,
}

/// The dry-run form: a request, an optional pattern draft, and what to run.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct DryForm {
    tool: String,
    subject: String,
    session: String,
    role: String,
    draft_tool_regex: String,
    draft_subject_regex: String,
    draft_decision: String,
    draft_override_guard: Option<String>,
    /// `request` (one request) or `replay` (the draft over the last `last_n` interactions).
    mode: String,
    last_n: String,
}

impl DryForm {
    fn draft(&self) -> Result<Option<PatternInput>, AgentsError> {
        if self.draft_tool_regex.trim().is_empty() && self.draft_subject_regex.trim().is_empty() {
            return Ok(None);
        }
        let decision: Decision = if self.draft_decision.is_empty() {
            Decision::Approve
        } else {
            self.draft_decision
                .parse()
                .map_err(|e| crate::validate::invalid("draft_decision", e))?
        };
        let input = PatternInput {
            name: "draft".into(),
            tool_regex: self.draft_tool_regex.clone(),
            subject_regex: self.draft_subject_regex.clone(),
            session_scope: None,
            role_scope: None,
            decision,
            enabled: Some(true),
            override_guard: self.draft_override_guard.is_some(),
        };
        // Checked here too, so an error names the form's field (`draft_tool_regex`).
        match actions::check_pattern(input.clone()) {
            Ok(_) => Ok(Some(input)),
            Err(AgentsError::Invalid(mut e)) => {
                e.message = e
                    .message
                    .replace(e.field.as_str(), &format!("draft_{}", e.field));
                e.field = format!("draft_{}", e.field);
                Err(e.into())
            }
            Err(e) => Err(e),
        }
    }
}

/// What a dry run showed.
enum DryResult {
    One {
        verdict: Verdict,
        guard: Option<String>,
    },
    Replay {
        rows: Vec<ReplayRow>,
        /// How many would be decided differently now.
        changed: usize,
    },
}

struct ReplayRow {
    r: Replayed,
    subject: String,
    age: crate::web::At,
}

#[derive(Template)]
#[template(path = "agents/interactions.html")]
struct InteractionsPage {
    layout: Layout,
    show_all: bool,
    session: String,
    sessions: Vec<String>,
    /// This view's address (forms come back here).
    here: String,
    pending: Vec<Row>,
    decided: Vec<Row>,
    patterns: Vec<PatternRow>,
    editing: Option<i64>,
    form: PatternForm,
    roles: Vec<&'static str>,
    decisions: Vec<&'static str>,
    dry: DryForm,
    dry_result: Option<DryResult>,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    /// `all`: every decided interaction, not only the recent ones.
    show: Option<String>,
    session: Option<String>,
    /// The pattern the form edits.
    edit: Option<i64>,
    notice: Option<String>,
    error: Option<String>,
}

async fn build(
    s: &AppState,
    who: &Identity,
    q: PageQuery,
    dry: DryForm,
    dry_result: Option<DryResult>,
) -> Result<InteractionsPage, PageError> {
    let now = s.clock.now();
    let show_all = q.show.as_deref() == Some("all");
    let session = q.session.clone().unwrap_or_default();
    let filter = q.session.as_deref();
    let pending = pstore::audited_interactions(&s.db, true, filter, 200).await?;
    let limit = if show_all { 200 } else { RECENT };
    let decided = pstore::audited_interactions(&s.db, false, filter, limit).await?;
    let hits = pstore::pattern_hits(&s.db).await?;
    let stored = pstore::patterns(&s.db).await?;
    let form = q
        .edit
        .and_then(|id| stored.iter().find(|p| p.id == id))
        .map(PatternForm::of)
        .unwrap_or_else(|| PatternForm {
            decision: "approve".into(),
            enabled: Some("on".into()),
            ..Default::default()
        });
    let editing = q.edit.filter(|id| stored.iter().any(|p| p.id == *id));
    let patterns = stored
        .into_iter()
        .map(|p| PatternRow {
            hits: hits
                .iter()
                .find(|(by, _)| *by == format!("pattern:{}", p.id))
                .map_or(0, |h| h.1),
            guarded: permissions::guarded_matches(&p),
            p,
        })
        .collect();
    let mut here = String::from("/interactions");
    let params: Vec<(&str, &str)> = [("show", show_all.then_some("all")), ("session", filter)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    if !params.is_empty() {
        here.push('?');
        here.push_str(&serde_urlencoded::to_string(&params).unwrap_or_default());
    }
    let mut layout = Layout::new(s, who, "interactions", "Interactions");
    layout.notice = q.notice;
    layout.error = q.error;
    Ok(InteractionsPage {
        layout,
        show_all,
        session,
        sessions: pstore::interaction_sessions(&s.db).await?,
        here,
        pending: pending.into_iter().map(|a| row(now, a)).collect(),
        decided: decided.into_iter().map(|a| row(now, a)).collect(),
        patterns,
        editing,
        form,
        roles: SessionRole::names(),
        decisions: Decision::names(),
        dry,
        dry_result,
    })
}

async fn page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let dry = DryForm {
        last_n: "20".into(),
        ..Default::default()
    };
    Ok(render(&build(&s, &who, q, dry, None).await?))
}

#[derive(Deserialize)]
struct HandleForm {
    action: HandleAction,
    #[serde(default)]
    next: String,
}

/// Where a form goes back to: its `next` when that is a path of this panel.
fn back_to(next: &str) -> &str {
    local_path(next)
        .filter(|p| p.starts_with("/interactions"))
        .unwrap_or("/interactions")
}

async fn handle(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, HandleForm>,
) -> Response {
    let to = back_to(&f.next);
    match actions::handle(&s.agents_state(), id, f.action, &who.username).await {
        Ok(i) => {
            let extra = if f.action == HandleAction::ApproveAlways {
                format!(
                    "; approve pattern added for {} {}",
                    i.tool,
                    i.command.or(i.path).unwrap_or_default()
                )
            } else {
                String::new()
            };
            see_other(to, &format!("Interaction #{id} {}{extra}.", i.status))
        }
        Err(e) => back(to, e),
    }
}

/// Runs the dry-run form and shows the panel with its result (or the error, keeping what was
/// typed).
async fn dry_run(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, DryForm>,
) -> Result<Response, PageError> {
    let now = s.clock.now();
    let r = async {
        let draft = f.draft()?;
        if f.mode == "replay" {
            let n: i64 = f.last_n.trim().parse().map_err(|_| {
                crate::validate::invalid(
                    "last_n",
                    format!("last_n must be a number 1-{}", actions::MAX_REPLAY),
                )
            })?;
            let rows = actions::replay(&s.agents_state(), draft, n).await?;
            let changed = rows.iter().filter(|r| r.changed).count();
            return Ok(DryResult::Replay {
                changed,
                rows: rows
                    .into_iter()
                    .map(|r| ReplayRow {
                        subject: r
                            .interaction
                            .command
                            .clone()
                            .or(r.interaction.path.clone())
                            .unwrap_or_default(),
                        age: at(now, &r.interaction.created_at),
                        r,
                    })
                    .collect(),
            });
        }
        if f.tool.trim().is_empty() {
            return Err(crate::validate::invalid("tool", "tool must not be empty").into());
        }
        let a = actions::dry_run(
            &s.agents_state(),
            DryRun {
                tool: f.tool.trim().to_string(),
                subject: f.subject.clone(),
                session: some(&f.session),
                role: some(&f.role),
                workspace: None,
                candidate: draft,
            },
        )
        .await?;
        Ok::<_, AgentsError>(DryResult::One {
            verdict: a.verdict,
            guard: a.guard,
        })
    }
    .await;
    let (result, error, status) = match r {
        Ok(x) => (Some(x), None, StatusCode::OK),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status.is_server_error() {
                return Err(e.into());
            }
            (None, Some(error_text(&e)), e.status)
        }
    };
    let q = PageQuery {
        error,
        ..Default::default()
    };
    let page = build(&s, &who, q, f, result).await?;
    Ok((status, render(&page)).into_response())
}
