//! The overview: what the fleet looks like now and what waits on a person.
//!
//! One read model, [`Overview`], serves the dashboard's home page (`/`), `GET /api/overview`
//! and the navigation badges (`GET /api/overview/badges`, which live pages refetch on each
//! event). Every number is counted the way the owning domain's own list API counts it, so the
//! page and the API never disagree (a browser test checks this). Read only: no state here.
//!
//! Also the activity log's HTTP face (`activity_api.rs`: `GET /api/activity`, and `POST` for a
//! client's own entry, written by the log's store; `activity_pages.rs`: the Activity page): the
//! log is a leaf every domain writes, and reading it is a view across them.

pub mod activity_api;
pub mod activity_pages;
pub mod api;
pub mod pages;
pub mod queue;
pub mod store;

use crate::app::AppState;
use crate::nodes::NodeStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use store::{Counted, Kind};

/// Entries per kind shown in the "needs you" list (the count says how many there are).
pub const ATTENTION_PER_KIND: i64 = 5;

/// `GET /api/overview`.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub generated_at: String,
    pub bugs: BugCounts,
    /// Features by status.
    pub features: BTreeMap<String, i64>,
    pub errors: ErrorCounts,
    /// Tasks by status (every status present, zero included).
    pub tasks: BTreeMap<String, i64>,
    pub tasks_completed_24h: i64,
    pub tasks_dead_24h: i64,
    /// Nodes by state (online, stale, offline, waiting).
    pub nodes: BTreeMap<String, i64>,
    /// Live agent sessions by state (sessions tmux no longer lists are left out).
    pub sessions: BTreeMap<String, i64>,
    /// Assigner prompts by status.
    pub prompts: BTreeMap<String, i64>,
    pub llm: LlmToday,
    /// What waits on a person, newest first per kind.
    pub needs_you: Vec<AttentionGroup>,
    /// Counts for the navigation badges, by panel key (see [`badges`]).
    pub badges: BTreeMap<&'static str, i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BugCounts {
    /// Not resolved, closed or won't fix.
    pub open: i64,
    pub by_status: BTreeMap<String, i64>,
    pub opened_7d: i64,
    pub resolved_7d: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorCounts {
    pub unresolved: i64,
    pub regressed: i64,
    pub new_24h: i64,
    pub in_review: i64,
    pub occurrences_24h: i64,
    pub occurrences_prev_24h: i64,
    /// Unresolved groups that are regressed or new in 24 h.
    pub attention: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LlmToday {
    /// Since 00:00 UTC.
    pub since: String,
    pub requests: i64,
    pub spent_usd: f64,
    /// Daily budgets (any scope), with their spend.
    pub day_budgets: Vec<crate::llm::actions::BudgetStatus>,
    /// Budgets of any period at their warning level or over.
    pub budgets_warning: i64,
    pub budgets_exceeded: i64,
}

/// One kind of item waiting on a person.
#[derive(Debug, Clone, Serialize)]
pub struct AttentionGroup {
    /// permission | failed_prompt | dead_task | offline_node | regressed_error | review
    pub kind: &'static str,
    pub label: &'static str,
    /// The panel that handles them.
    pub href: &'static str,
    pub total: i64,
    pub items: Vec<AttentionItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttentionItem {
    pub id: i64,
    pub title: String,
    pub detail: Option<String>,
    pub since: String,
    pub href: String,
}

const BUG_DONE: &[&str] = &["resolved", "closed", "wont_fix"];

fn by_status(rows: Vec<(String, i64)>, all: &[&str]) -> BTreeMap<String, i64> {
    let mut m: BTreeMap<String, i64> = all.iter().map(|s| (s.to_string(), 0)).collect();
    for (s, n) in rows {
        *m.entry(s).or_insert(0) += n;
    }
    m
}

fn items(rows: Vec<store::AttentionRow>, href: impl Fn(i64) -> String) -> Vec<AttentionItem> {
    rows.into_iter()
        .map(|r| AttentionItem {
            href: href(r.id),
            id: r.id,
            title: one_line(&r.title, 120),
            detail: r.detail.map(|d| one_line(&d, 160)),
            since: r.since,
        })
        .collect()
}

async fn group(
    state: &AppState,
    kind: Kind,
    name: &'static str,
    label: &'static str,
    panel: &'static str,
    href: impl Fn(i64) -> String,
) -> Result<AttentionGroup, sqlx::Error> {
    let total = store::attention_count(&state.db, kind).await?;
    let rows = if total > 0 {
        store::attention(&state.db, kind, ATTENTION_PER_KIND).await?
    } else {
        Vec::new()
    };
    Ok(AttentionGroup {
        kind: name,
        label,
        href: panel,
        total,
        items: items(rows, href),
    })
}

/// Counts everything the overview shows, now.
pub async fn gather(state: &AppState) -> Result<Overview, crate::http::error::ApiError> {
    let now = state.clock.now();
    let fmt = crate::clock::format;
    let day_ago = fmt(now - time::Duration::hours(24));
    let two_days_ago = fmt(now - time::Duration::hours(48));
    let week_ago = fmt(now - time::Duration::days(7));
    let db = &state.db;

    let bug_rows = store::counts_by(db, Counted::Bugs).await?;
    let bug_statuses: Vec<&str> = crate::tracking::BugStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let bugs_by = by_status(bug_rows, &bug_statuses);
    let bugs = BugCounts {
        open: bugs_by
            .iter()
            .filter(|(s, _)| !BUG_DONE.contains(&s.as_str()))
            .map(|(_, n)| n)
            .sum(),
        by_status: bugs_by,
        opened_7d: store::bugs_opened_since(db, &week_ago).await?,
        resolved_7d: store::bugs_resolved_since(db, &week_ago).await?,
    };

    let e = store::error_counts(db, &day_ago).await?;
    let hour = |t: &str| crate::errors::hour_of(t).to_string();
    let errors = ErrorCounts {
        unresolved: e.unresolved,
        regressed: e.regressed,
        new_24h: e.new_since,
        in_review: e.in_review,
        attention: e.attention,
        // Hour buckets: the current partial hour counts in the last 24 h.
        occurrences_24h: store::occurrences_since(db, &hour(&day_ago)).await?,
        occurrences_prev_24h: store::occurrences_between(db, &hour(&two_days_ago), &hour(&day_ago))
            .await?,
    };

    let feature_statuses: Vec<&str> = crate::tracking::FeatureStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let features = by_status(
        store::counts_by(db, Counted::Features).await?,
        &feature_statuses,
    );

    let task_statuses: Vec<&str> = crate::tasks::TaskStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let tasks = by_status(store::counts_by(db, Counted::Tasks).await?, &task_statuses);

    let mut nodes: BTreeMap<String, i64> = BTreeMap::new();
    for (s, n) in crate::nodes::actions::status_counts(&state.nodes_state())
        .await
        .map_err(crate::http::error::ApiError::from)?
    {
        nodes.insert(s.as_str().to_string(), i64::try_from(n).unwrap_or(i64::MAX));
    }

    let sessions = by_status(store::counts_by(db, Counted::Sessions).await?, &[]);
    let prompt_statuses: Vec<&str> = crate::agents::assigner::PromptStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let prompts = by_status(
        store::counts_by(db, Counted::Prompts).await?,
        &prompt_statuses,
    );

    let midnight = now.replace_time(time::Time::MIDNIGHT);
    let since = fmt(midnight);
    let summary = crate::llm::actions::summary(&state.llm_state(), &since)
        .await
        .map_err(crate::http::error::ApiError::from)?;
    let budgets = state.llm.book.budget_status(now);
    let llm = LlmToday {
        since,
        requests: summary.total_requests,
        spent_usd: summary.total_cost,
        budgets_warning: budgets.iter().filter(|b| b.state == "warning").count() as i64,
        budgets_exceeded: budgets.iter().filter(|b| b.state == "exceeded").count() as i64,
        day_budgets: budgets.into_iter().filter(|b| b.period == "day").collect(),
    };

    let mut needs_you = vec![
        group(
            state,
            Kind::Permission,
            "permission",
            "Permission prompts",
            "/interactions",
            |_| "/interactions".to_string(),
        )
        .await?,
        group(
            state,
            Kind::FailedPrompt,
            "failed_prompt",
            "Failed prompts",
            "/assigner",
            |id| format!("/assigner/prompts/{id}"),
        )
        .await?,
        group(
            state,
            Kind::DeadTask,
            "dead_task",
            "Dead tasks",
            "/tasks?status=dead",
            |id| format!("/tasks/{id}"),
        )
        .await?,
    ];
    needs_you.push(offline_nodes(state).await?);
    needs_you.push(
        group(
            state,
            Kind::RegressedError,
            "regressed_error",
            "Regressed errors",
            "/errors",
            |id| format!("/errors/{id}"),
        )
        .await?,
    );
    let mut review = group(
        state,
        Kind::FeatureReview,
        "review",
        "In review",
        "/features?status=review",
        |id| format!("/features/{id}"),
    )
    .await?;
    for (kind, href) in [(Kind::BugReview, "/bugs/"), (Kind::ErrorReview, "/errors/")] {
        let g = group(state, kind, "review", "", "", |id| format!("{href}{id}")).await?;
        review.total += g.total;
        review.items.extend(g.items);
    }
    review.items.sort_by(|a, b| b.since.cmp(&a.since));
    review.items.truncate(ATTENTION_PER_KIND as usize * 2);
    needs_you.push(review);

    Ok(Overview {
        generated_at: fmt(now),
        bugs,
        features,
        errors,
        tasks,
        tasks_completed_24h: store::tasks_finished_since(db, "completed", &day_ago).await?,
        tasks_dead_24h: store::tasks_finished_since(db, "dead", &day_ago).await?,
        nodes,
        sessions,
        prompts,
        llm,
        needs_you,
        badges: badges(state).await?,
    })
}

/// `s` on one line, cut to `max` characters with an ellipsis.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The navigation badges: per panel, how many things there wait on a person.
/// Interactions: pending permission prompts. Assigner: failed prompts. Tasks: dead tasks.
/// Nodes: offline or stale. Errors: unresolved groups regressed or new in 24 h. Features and
/// bugs: in review. Panels with nothing waiting have no entry. The same queries as the
/// overview's, without the rest of it: live pages refetch this on every event.
pub async fn badges(
    state: &AppState,
) -> Result<BTreeMap<&'static str, i64>, crate::http::error::ApiError> {
    let db = &state.db;
    let day_ago = crate::clock::format(state.clock.now() - time::Duration::hours(24));
    let mut b = BTreeMap::new();
    for (panel, kind) in [
        ("interactions", Kind::Permission),
        ("assigner", Kind::FailedPrompt),
        ("tasks", Kind::DeadTask),
        ("bugs", Kind::BugReview),
        ("features", Kind::FeatureReview),
    ] {
        b.insert(panel, store::attention_count(db, kind).await?);
    }
    b.insert("errors", store::error_counts(db, &day_ago).await?.attention);
    // The Autopilot panel's count is its review queue's length.
    b.insert("autopilot", queue::count(state).await?);
    let mut down = 0i64;
    for (s, n) in crate::nodes::actions::status_counts(&state.nodes_state())
        .await
        .map_err(crate::http::error::ApiError::from)?
    {
        if matches!(s, NodeStatus::Offline | NodeStatus::Stale) {
            down += i64::try_from(n).unwrap_or(i64::MAX);
        }
    }
    b.insert("nodes", down);
    b.retain(|_, n| *n > 0);
    Ok(b)
}

async fn offline_nodes(state: &AppState) -> Result<AttentionGroup, crate::http::error::ApiError> {
    let nodes = crate::nodes::actions::list_nodes(&state.nodes_state(), 1000, 0)
        .await
        .map_err(crate::http::error::ApiError::from)?;
    let down: Vec<_> = nodes
        .into_iter()
        .filter(|n| matches!(n.status, NodeStatus::Offline | NodeStatus::Stale))
        .collect();
    Ok(AttentionGroup {
        kind: "offline_node",
        label: "Nodes offline or stale",
        href: "/nodes",
        total: down.len() as i64,
        items: down
            .into_iter()
            .take(ATTENTION_PER_KIND as usize)
            .map(|n| AttentionItem {
                id: n.id,
                detail: Some(format!("{} · {}", n.status.as_str(), n.hostname)),
                since: n.last_heartbeat_at.unwrap_or(n.created_at),
                title: n.name,
                href: format!("/nodes/{}", n.id),
            })
            .collect(),
    })
}
