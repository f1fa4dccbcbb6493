//! The operations behind permission prompts that both the JSON API (`interactions_api.rs`) and
//! the dashboard (`interactions_pages.rs`) perform, written once: checking a pattern, handling
//! an interaction by hand (approve, deny, approve always), a dry run, and replaying a pattern
//! draft over recorded interactions.

use super::classify::AgentKind;
use super::interactions;
use super::permission_store::{self as pstore, Interaction, PatternFields};
use super::permissions::{self, Decision, Outcome, PermissionPattern, Request, Verdict};
use super::{store, AgentsError, SessionRole};
use crate::agents::AgentsState;
use crate::tmux::SessionName;
use crate::validate::invalid;
use serde::{Deserialize, Serialize};

crate::text_enum! {
    pub enum HandleAction ("action") {
        Approve = "approve",
        Deny = "deny",
        /// Approve, and add an approve pattern for this exact tool and command or path.
        ApproveAlways = "approve_always",
    }
}

/// A pattern as a person or client writes it (`POST`/`PUT /api/claude/patterns`, the
/// dashboard's pattern form).
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

impl From<&PermissionPattern> for PatternInput {
    fn from(p: &PermissionPattern) -> Self {
        PatternInput {
            name: p.name.clone(),
            tool_regex: p.tool_regex.clone(),
            subject_regex: p.subject_regex.clone(),
            session_scope: p.session_scope.clone(),
            role_scope: p.role_scope.clone(),
            decision: p.decision.parse().unwrap_or(Decision::Deny),
            enabled: Some(p.enabled != 0),
            override_guard: p.override_guard != 0,
        }
    }
}

/// The one validation of a pattern: name, both regexes (compiled as the engine compiles
/// them), scopes, and `override_guard` only on approve patterns.
pub fn check_pattern(p: PatternInput) -> Result<PatternFields, AgentsError> {
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
            .map_err(|e| invalid(field, format!("{field} is not a valid regex: {e}")))?;
    }
    if let Some(sess) = &p.session_scope {
        SessionName::parse(sess).map_err(|e| invalid("session_scope", e.message))?;
    }
    if let Some(role) = &p.role_scope {
        role.parse::<SessionRole>()
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

/// A checked pattern not saved yet (id 0), to evaluate beside the stored ones.
pub fn draft(f: PatternFields) -> PermissionPattern {
    PermissionPattern {
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
    }
}

/// `^<text>$` with the text escaped: a regex matching exactly `s`.
pub fn exact(s: &str) -> String {
    format!("^{}$", regex::escape(s))
}

/// Handles a pending interaction by hand: checks the prompt is still on screen (or the key
/// would be typed into the input box), presses the agent's key, adds the "always" pattern
/// when asked, and audits the decision as `user:<username>`.
pub async fn handle(
    state: &AgentsState,
    id: i64,
    action: HandleAction,
    username: &str,
) -> Result<Interaction, AgentsError> {
    let i = pstore::interaction(&state.db, id)
        .await?
        .ok_or_else(|| AgentsError::NotFound("interaction".into()))?;
    if i.status != "pending" {
        return Err(AgentsError::Conflict(format!(
            "interaction {id} is already {}",
            i.status
        )));
    }
    let agent: AgentKind = i.agent.parse().unwrap_or(AgentKind::Other);
    let approve = action != HandleAction::Deny;
    let by = format!("user:{username}");
    let subject = i.command.clone().or(i.path.clone()).unwrap_or_default();
    // Re-reads the pane: the key goes only to this very prompt, once.
    interactions::apply(state, &i, agent, approve, &by).await?;
    if action == HandleAction::ApproveAlways {
        pstore::insert_pattern(
            &state.db,
            &PatternFields {
                name: format!(
                    "always: {} {}",
                    i.tool,
                    subject.chars().take(60).collect::<String>()
                ),
                tool_regex: regex::escape(&i.tool),
                subject_regex: exact(&subject),
                session_scope: None,
                role_scope: None,
                decision: "approve".into(),
                enabled: true,
                override_guard: false,
            },
            username,
            &state.clock.now_str(),
        )
        .await?;
    }
    pstore::audit(
        &state.db,
        Some(id),
        &Request {
            session: &i.session,
            tool: &i.tool,
            subject: &subject,
            exact: i.source == "hook",
            ..Default::default()
        },
        &Verdict {
            outcome: if approve {
                Outcome::Approve
            } else {
                Outcome::Deny
            },
            decided_by: by,
            reason: format!("{action} by hand"),
        },
        false,
        &state.clock.now_str(),
    )
    .await?;
    pstore::interaction(&state.db, id)
        .await?
        .ok_or_else(|| AgentsError::NotFound("interaction".into()))
}

/// `POST /api/claude/patterns/dry-run` and the dashboard's dry-run form.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    pub tool: String,
    #[serde(default)]
    pub subject: String,
    pub session: Option<String>,
    pub role: Option<String>,
    pub workspace: Option<String>,
    /// A pattern not saved yet, evaluated together with the stored ones.
    pub candidate: Option<PatternInput>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct DryRunAnswer {
    pub verdict: Verdict,
    /// The never-auto-approve rule the request falls under, if any.
    pub guard: Option<String>,
}

/// What the stored patterns (plus the draft, if any) would decide; audited as a dry run.
pub async fn dry_run(state: &AgentsState, r: DryRun) -> Result<DryRunAnswer, AgentsError> {
    let mut ps = pstore::patterns(&state.db).await?;
    if let Some(c) = r.candidate {
        ps.push(draft(check_pattern(c)?));
    }
    let session = r.session.unwrap_or_default();
    let req = Request {
        session: &session,
        role: r.role.as_deref(),
        tool: &r.tool,
        subject: &r.subject,
        workspace: r.workspace.as_deref(),
        // The person states the exact subject.
        exact: true,
    };
    let verdict = permissions::decide(&ps, &req);
    pstore::audit(
        &state.db,
        None,
        &req,
        &verdict,
        true,
        &state.clock.now_str(),
    )
    .await?;
    Ok(DryRunAnswer {
        guard: permissions::guard(&req).map(|g| g.rule.to_string()),
        verdict,
    })
}

/// One recorded interaction and what the patterns, with a draft added, would have decided.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub interaction: Interaction,
    pub verdict: Verdict,
    /// The verdict differs from what happened then (approved / denied / left to a person).
    pub changed: bool,
}

/// Most recorded interactions a replay reads.
pub const MAX_REPLAY: i64 = 200;

/// Replays the last `n` recorded interactions against the stored patterns plus `candidate`
/// (role and workspace from the session as tracked now). Not audited: nothing was asked.
pub async fn replay(
    state: &AgentsState,
    candidate: Option<PatternInput>,
    n: i64,
) -> Result<Vec<Replayed>, AgentsError> {
    if !(1..=MAX_REPLAY).contains(&n) {
        return Err(invalid("last_n", format!("last_n must be 1-{MAX_REPLAY}")).into());
    }
    let mut ps = pstore::patterns(&state.db).await?;
    if let Some(c) = candidate {
        ps.push(draft(check_pattern(c)?));
    }
    let sessions = store::sessions(&state.db).await?;
    let recorded = pstore::interactions(&state.db, None, n).await?;
    Ok(recorded
        .into_iter()
        .map(|i| {
            let row = sessions
                .iter()
                .find(|s| s.node == i.node && s.name == i.session);
            let subject = i.command.clone().or(i.path.clone()).unwrap_or_default();
            let verdict = permissions::decide(
                &ps,
                &Request {
                    session: &i.session,
                    role: row.and_then(|r| r.role.as_deref()),
                    tool: &i.tool,
                    subject: &subject,
                    workspace: row.and_then(|r| r.cwd.as_deref()),
                    exact: i.source == "hook",
                },
            );
            let then = match i.status.as_str() {
                "approved" => Outcome::Approve,
                "denied" => Outcome::Deny,
                _ => Outcome::Ask,
            };
            Replayed {
                changed: then != verdict.outcome,
                interaction: i,
                verdict,
            }
        })
        .collect())
}
