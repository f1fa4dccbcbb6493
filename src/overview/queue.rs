//! The review queue: everything across domains that waits on a person, in one list
//! (`GET /api/autopilot/queue`, the Autopilot page, the navigation count). It reads through the
//! overview's "needs you" queries (`overview::store::attention`), so the queue, the overview
//! and the badges count alike. Each entry links to its page and names the calls that handle
//! it; once handled it leaves the queue.

use super::store::{self as ov, Kind};
use crate::app::AppState;
use serde::Serialize;

/// What the queue holds, in the order it shows them.
pub const KINDS: &[(Kind, &str, &str)] = &[
    (
        Kind::AutopilotGate,
        "autopilot_gate",
        "Change requests and deploy gates",
    ),
    (Kind::PlanApproval, "milestone", "Milestones to approve"),
    (Kind::Suggestion, "suggestion", "Task suggestions"),
    (Kind::Permission, "permission", "Permission prompts"),
    (Kind::FeatureReview, "feature_review", "Features in review"),
    (Kind::BugReview, "bug_review", "Bugs in review"),
    (Kind::ErrorReview, "error_review", "Error groups in review"),
    (Kind::FailedPrompt, "failed_prompt", "Failed prompts"),
];

/// Entries listed per kind (the total counts all).
pub const PER_KIND: i64 = 200;

/// One thing to do: a call that handles the entry.
#[derive(Debug, Clone, Serialize)]
pub struct QueueAction {
    pub label: &'static str,
    pub method: &'static str,
    pub url: String,
    /// Fields the call's JSON body wants, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub body: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueEntry {
    pub kind: &'static str,
    pub id: i64,
    pub title: String,
    pub detail: Option<String>,
    pub since: String,
    /// The page that shows it.
    pub href: String,
    pub actions: Vec<QueueAction>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueGroup {
    pub kind: &'static str,
    pub label: &'static str,
    pub total: i64,
}

/// `GET /api/autopilot/queue`.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewQueue {
    pub total: i64,
    pub groups: Vec<QueueGroup>,
    pub items: Vec<QueueEntry>,
}

fn act(label: &'static str, url: String, body: Vec<&'static str>) -> QueueAction {
    QueueAction {
        label,
        method: "POST",
        url,
        body,
    }
}

fn entry(kind: &'static str, r: ov::AttentionRow) -> QueueEntry {
    let id = r.id;
    let (href, actions) = match kind {
        "milestone" => (
            format!("/autopilot/milestones/{id}"),
            vec![
                act(
                    "Approve",
                    format!("/api/autopilot/milestones/{id}/approve"),
                    vec![],
                ),
                act(
                    "Reject",
                    format!("/api/autopilot/milestones/{id}/reject"),
                    vec!["reason"],
                ),
            ],
        ),
        "autopilot_gate" => (
            format!("/autopilot/gates/{id}"),
            vec![
                act(
                    "Approve",
                    format!("/api/autopilot/gates/{id}/approve"),
                    vec![],
                ),
                act(
                    "Reject",
                    format!("/api/autopilot/gates/{id}/reject"),
                    vec!["reason"],
                ),
            ],
        ),
        "suggestion" => (
            format!("/autopilot#suggestion-{id}"),
            vec![
                act(
                    "Confirm",
                    format!("/api/tasks/suggest/{id}/confirm"),
                    vec!["target"],
                ),
                act(
                    "Skip",
                    format!("/api/tasks/suggest/{id}/skip"),
                    vec!["reason"],
                ),
            ],
        ),
        "permission" => (
            "/interactions".to_string(),
            vec![
                act(
                    "Approve",
                    format!("/api/claude/interactions/{id}/handle"),
                    vec!["action"],
                ),
                act(
                    "Deny",
                    format!("/api/claude/interactions/{id}/handle"),
                    vec!["action"],
                ),
            ],
        ),
        "feature_review" => (
            format!("/features/{id}"),
            vec![QueueAction {
                label: "Accept",
                method: "PUT",
                url: format!("/api/features/{id}"),
                body: vec!["status"],
            }],
        ),
        "bug_review" => (
            format!("/bugs/{id}"),
            vec![QueueAction {
                label: "Resolve",
                method: "PUT",
                url: format!("/api/bugs/{id}"),
                body: vec!["status"],
            }],
        ),
        "error_review" => (
            format!("/errors/{id}"),
            vec![act("Resolve", format!("/api/errors/{id}/resolve"), vec![])],
        ),
        _ => (
            format!("/assigner/prompts/{id}"),
            vec![act(
                "Retry",
                format!("/api/assigner/prompts/{id}/retry"),
                vec![],
            )],
        ),
    };
    QueueEntry {
        kind,
        id,
        title: r.title,
        detail: r.detail,
        since: r.since,
        href,
        actions,
    }
}

/// Everything waiting on a person now.
pub async fn gather(state: &AppState) -> Result<ReviewQueue, sqlx::Error> {
    let mut out = ReviewQueue {
        total: 0,
        groups: Vec::new(),
        items: Vec::new(),
    };
    for (kind, name, label) in KINDS {
        let total = ov::attention_count(&state.db, *kind).await?;
        out.total += total;
        out.groups.push(QueueGroup {
            kind: name,
            label,
            total,
        });
        if total > 0 {
            for r in ov::attention(&state.db, *kind, PER_KIND).await? {
                out.items.push(entry(name, r));
            }
        }
    }
    Ok(out)
}

/// The queue's length (the navigation count).
pub async fn count(state: &AppState) -> Result<i64, sqlx::Error> {
    let mut n = 0;
    for (kind, _, _) in KINDS {
        n += ov::attention_count(&state.db, *kind).await?;
    }
    Ok(n)
}
