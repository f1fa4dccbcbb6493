//! `/api/claude/interactions*` and `/api/claude/patterns*` (SPEC.md "Claude Interactions"):
//! pending approvals, handling them by hand, turning one into a pattern, the pattern table,
//! a dry run, and the audit of every decision.
//!
//! Reading needs `Read`; deciding and editing patterns need `Write`.

use super::classify::{permission_request, AgentKind, PaneState};
use super::interactions;
use super::permission_store::{self as pstore, AuditEntry, Interaction, PatternFields};
use super::permissions::{self, Decision, Outcome, PermissionPattern, Request, Verdict};
use super::tmux::{CaptureMode, SessionName};
use super::AgentsError;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::validate::invalid;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/claude/interactions", get(list))
        .route("/api/claude/interactions/{id}", get(detail))
        .route("/api/claude/interactions/{id}/handle", post(handle))
        .route(
            "/api/claude/interactions/{id}/create-pattern",
            post(create_from),
        )
        .route("/api/claude/patterns", get(patterns).post(create_pattern))
        .route(
            "/api/claude/patterns/{id}",
            put(update_pattern).delete(delete_pattern),
        )
        .route("/api/claude/patterns/dry-run", post(dry_run))
        .route("/api/claude/audit", get(audit))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
}

fn limit(l: Option<i64>) -> Result<i64, ApiError> {
    match l {
        None => Ok(100),
        Some(l) if (1..=1000).contains(&l) => Ok(l),
        Some(_) => Err(ApiError::invalid("limit", "limit must be 1-1000")),
    }
}

async fn list(
    State(s): State<AppState>,
    _: Authed<Read>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Interaction>>, ApiError> {
    if let Some(st) = &q.status {
        if !["pending", "approved", "denied", "gone"].contains(&st.as_str()) {
            return Err(ApiError::invalid(
                "status",
                "status must be pending, approved, denied or gone",
            ));
        }
    }
    Ok(Json(
        pstore::interactions(&s.db, q.status.as_deref(), limit(q.limit)?).await?,
    ))
}

async fn get_interaction(s: &AppState, id: i64) -> Result<Interaction, ApiError> {
    pstore::interaction(&s.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("interaction"))
}

async fn detail(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> Result<Json<Interaction>, ApiError> {
    get_interaction(&s, id).await.map(Json)
}

crate::text_enum! {
    pub enum HandleAction ("action") {
        Approve = "approve",
        Deny = "deny",
        /// Approve, and add an approve pattern for this exact tool and command or path.
        ApproveAlways = "approve_always",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandleRequest {
    action: HandleAction,
}

fn regex_escape_exact(s: &str) -> String {
    format!("^{}$", regex::escape(s))
}

async fn handle(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(r): Json<HandleRequest>,
) -> Result<Json<Interaction>, ApiError> {
    let i = get_interaction(&s, id).await?;
    if i.status != "pending" {
        return Err(
            ApiError::conflict(format!("interaction {id} is already {}", i.status))
                .with_field("status"),
        );
    }
    let agent: AgentKind = i.agent.parse().unwrap_or(AgentKind::Other);
    let approve = r.action != HandleAction::Deny;
    // The prompt must still be on screen, or the key would be typed into the input box.
    let name =
        SessionName::parse(&i.session).map_err(|e| ApiError::invalid("session", e.message))?;
    let screen = s
        .agents
        .tmux()
        .capture(&name, 80, CaptureMode::Plain)
        .await
        .map_err(AgentsError::from)?;
    let classifier = s.agents.classifier(&s.db).await?;
    let c = classifier.classify(&super::classify::PaneView {
        screen: &screen,
        agent_hint: Some(agent),
        ..Default::default()
    });
    if c.state != PaneState::WaitingForPermission {
        pstore::decide_interaction(&s.db, id, "gone", "pane:closed", &s.clock.now_str()).await?;
        return Err(ApiError::conflict(
            "the session no longer shows this permission prompt",
        ));
    }
    if approve && permission_request(agent, &screen).is_some_and(|p| !p.numbered) {
        return Err(ApiError::conflict(
            "this dialog has unnumbered options with the focus on No; approve it in the terminal",
        ));
    }
    let by = format!("user:{}", who.identity().username);
    if r.action == HandleAction::ApproveAlways {
        let subject = i.command.clone().or(i.path.clone()).unwrap_or_default();
        pstore::insert_pattern(
            &s.db,
            &PatternFields {
                name: format!(
                    "always: {} {}",
                    i.tool,
                    subject.chars().take(60).collect::<String>()
                ),
                tool_regex: regex::escape(&i.tool),
                subject_regex: regex_escape_exact(&subject),
                session_scope: None,
                role_scope: None,
                decision: "approve".into(),
                enabled: true,
                override_guard: false,
            },
            &who.identity().username,
            &s.clock.now_str(),
        )
        .await?;
    }
    interactions::apply(&s, &i, agent, approve, &by).await?;
    let subject = i.command.clone().or(i.path.clone()).unwrap_or_default();
    pstore::audit(
        &s.db,
        Some(id),
        &Request {
            session: &i.session,
            tool: &i.tool,
            subject: &subject,
            ..Default::default()
        },
        &Verdict {
            outcome: if approve {
                Outcome::Approve
            } else {
                Outcome::Deny
            },
            decided_by: by,
            reason: format!("{} by hand", r.action),
        },
        false,
        &s.clock.now_str(),
    )
    .await?;
    get_interaction(&s, id).await.map(Json)
}

#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PatternInput {
    pub name: String,
    pub tool_regex: String,
    #[serde(default)]
    pub subject_regex: String,
    pub session_scope: Option<String>,
    pub role_scope: Option<String>,
    pub decision: Decision,
    pub enabled: Option<bool>,
    /// Lets an approve pattern approve what the never-auto-approve list blocks. Explicit only.
    #[serde(default)]
    pub override_guard: bool,
}

fn check(p: PatternInput) -> Result<PatternFields, AgentsError> {
    let name = p.name.trim().to_string();
    if name.is_empty() || name.len() > 200 {
        return Err(invalid("name", "name must be 1-200 characters").into());
    }
    for (field, re, whole) in [
        ("tool_regex", &p.tool_regex, true),
        ("subject_regex", &p.subject_regex, false),
    ] {
        if re.len() > 2000 || (field == "tool_regex" && re.is_empty()) {
            return Err(invalid(field, format!("{field} must be 1-2000 characters")).into());
        }
        permissions::compile(re, whole)
            .map_err(|e| invalid(field, format!("invalid regex: {e}")))?;
    }
    if let Some(sess) = &p.session_scope {
        SessionName::parse(sess).map_err(|e| invalid("session_scope", e.message))?;
    }
    if let Some(role) = &p.role_scope {
        role.parse::<super::SessionRole>()
            .map_err(|e| invalid("role_scope", e))?;
    }
    if p.override_guard && p.decision != Decision::Approve {
        return Err(invalid(
            "override_guard",
            "only an approve pattern can override the never-auto-approve list",
        )
        .into());
    }
    Ok(PatternFields {
        name,
        tool_regex: p.tool_regex,
        subject_regex: p.subject_regex,
        session_scope: p.session_scope,
        role_scope: p.role_scope,
        decision: p.decision.as_str().to_string(),
        enabled: p.enabled.unwrap_or(true),
        override_guard: p.override_guard,
    })
}

async fn patterns(
    State(s): State<AppState>,
    _: Authed<Read>,
) -> Result<Json<Vec<PermissionPattern>>, ApiError> {
    Ok(Json(pstore::patterns(&s.db).await?))
}

async fn create_pattern(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(p): Json<PatternInput>,
) -> Result<(StatusCode, Json<PermissionPattern>), ApiError> {
    let f = check(p)?;
    let p = pstore::insert_pattern(&s.db, &f, &who.identity().username, &s.clock.now_str()).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

async fn update_pattern(
    State(s): State<AppState>,
    _: Authed<Write>,
    Path(id): Path<i64>,
    Json(p): Json<PatternInput>,
) -> Result<Json<PermissionPattern>, ApiError> {
    let f = check(p)?;
    pstore::update_pattern(&s.db, id, &f, &s.clock.now_str())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("pattern"))
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Deleted {
    pub deleted: bool,
}

async fn delete_pattern(
    State(s): State<AppState>,
    _: Authed<Write>,
    Path(id): Path<i64>,
) -> Result<Json<Deleted>, ApiError> {
    if !pstore::delete_pattern(&s.db, id).await? {
        return Err(ApiError::not_found("pattern"));
    }
    Ok(Json(Deleted { deleted: true }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateFrom {
    decision: Option<Decision>,
    name: Option<String>,
    /// Default: exactly this interaction's command or path.
    subject_regex: Option<String>,
    /// Limit the pattern to this interaction's session.
    #[serde(default)]
    this_session_only: bool,
}

async fn create_from(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(r): Json<CreateFrom>,
) -> Result<(StatusCode, Json<PermissionPattern>), ApiError> {
    let i = get_interaction(&s, id).await?;
    let subject = i.command.clone().or(i.path.clone()).unwrap_or_default();
    let input = PatternInput {
        name: r.name.unwrap_or_else(|| {
            format!(
                "from interaction {id}: {} {}",
                i.tool,
                subject.chars().take(60).collect::<String>()
            )
        }),
        tool_regex: regex::escape(&i.tool),
        subject_regex: r
            .subject_regex
            .unwrap_or_else(|| regex_escape_exact(&subject)),
        session_scope: r.this_session_only.then(|| i.session.clone()),
        role_scope: None,
        decision: r.decision.unwrap_or(Decision::Approve),
        enabled: Some(true),
        override_guard: false,
    };
    let f = check(input)?;
    let p = pstore::insert_pattern(&s.db, &f, &who.identity().username, &s.clock.now_str()).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRun {
    tool: String,
    #[serde(default)]
    subject: String,
    session: Option<String>,
    role: Option<String>,
    workspace: Option<String>,
    /// A pattern not saved yet, evaluated together with the stored ones.
    candidate: Option<PatternInput>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct DryRunAnswer {
    pub verdict: Verdict,
    /// The never-auto-approve rule the request falls under, if any.
    pub guard: Option<String>,
}

async fn dry_run(
    State(s): State<AppState>,
    _: Authed<Write>,
    Json(r): Json<DryRun>,
) -> Result<Json<DryRunAnswer>, ApiError> {
    let mut ps = pstore::patterns(&s.db).await?;
    if let Some(c) = r.candidate {
        let f = check(c)?;
        ps.push(PermissionPattern {
            id: 0,
            name: f.name,
            tool_regex: f.tool_regex,
            subject_regex: f.subject_regex,
            session_scope: f.session_scope,
            role_scope: f.role_scope,
            decision: f.decision,
            enabled: i64::from(f.enabled),
            override_guard: i64::from(f.override_guard),
            created_by: String::new(),
            created_at: String::new(),
            updated_at: String::new(),
        });
    }
    let session = r.session.unwrap_or_default();
    let req = Request {
        session: &session,
        role: r.role.as_deref(),
        tool: &r.tool,
        subject: &r.subject,
        workspace: r.workspace.as_deref(),
    };
    let verdict = permissions::decide(&ps, &req);
    pstore::audit(&s.db, None, &req, &verdict, true, &s.clock.now_str()).await?;
    Ok(Json(DryRunAnswer {
        guard: permissions::guard(&req).map(str::to_string),
        verdict,
    }))
}

async fn audit(
    State(s): State<AppState>,
    _: Authed<Read>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(pstore::audit_log(&s.db, limit(q.limit)?).await?))
}
