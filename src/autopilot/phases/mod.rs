//! Implementing and testing: each work item gets a worktree, a branch and an agent session of
//! its own (`agents::launch::start`, the path of `session start`), a permission pattern that
//! approves edits inside its worktree only (the never-list stays on), a prompt through the
//! assigner, then the project's test command as a `test` task in the worktree. A failure goes
//! back to the agent with the output, [`MAX_ATTEMPTS`] times, then the run is `blocked`; a pass
//! is committed on the branch and proposed as a change request (a gate) in the review queue.
//!
//! Every side effect is found again after a restart before it is made again: the session by
//! its name, the prompt by its source (the item), the task by its creator text, the pattern by
//! its name, the commit by the worktree's state. The step that records it commits with the item
//! and the activity row ([`super::runner::finish`]).

use super::runner::finish;
use super::work::{self, Item, ItemState};
use super::*;
use crate::app::AppState;
use serde_json::json;

mod prompt;
mod session;
pub use session::session_name;
mod test;

/// Prompts an item gets before a failing test blocks the run (each resume gives as many more).
pub const MAX_ATTEMPTS: i64 = 3;
/// The tail of a test run's output kept on the item and typed back to the agent.
const OUTPUT_TAIL: usize = 4_000;
/// What the agent's prompt source says (assigner `source_kind`).
pub const PROMPT_SOURCE: &str = "autopilot_item";

pub(super) fn tail(s: &str) -> String {
    let s = s.trim();
    if s.len() <= OUTPUT_TAIL {
        return s.to_string();
    }
    let mut from = s.len() - OUTPUT_TAIL;
    while !s.is_char_boundary(from) {
        from += 1;
    }
    format!("…{}", &s[from..])
}

/// Blocks the run with `reason` (the item saved with it, when given).
pub(super) async fn block(
    state: &AppState,
    run: &Run,
    key: &str,
    item: Option<&Item>,
    reason: &str,
) -> RunResult<bool> {
    finish(
        state,
        run,
        key,
        json!({"blocked": reason}),
        item,
        Some((RunState::Blocked, reason)),
    )
    .await
}

/// One pass over a run in `implementing` or `testing`.
pub async fn work(state: &AppState, run: &Run) -> RunResult<bool> {
    let Some(who) = super::agent::run_identity(state, run.user_id).await? else {
        return block(
            state,
            run,
            "identity",
            None,
            "the person who configured this run is disabled or gone: configure the project's autopilot again",
        )
        .await;
    };
    let project = crate::tracking::store::get_project(&state.db, run.project_id)
        .await?
        .ok_or(AutopilotError::NotFound("project"))?;
    let Some(source) = project.source_path.clone().filter(|p| !p.trim().is_empty()) else {
        return block(state, run, "source", None, "the project has no source_path").await;
    };
    let items = work::items(&state.db, run.id).await?;
    let max_parallel = run.constraints.max_parallel_agents.unwrap_or(1).max(1) as usize;
    let mut active = items
        .iter()
        .filter(|i| matches!(i.state, ItemState::Implementing | ItemState::Testing))
        .count();
    for item in items {
        let moved = match item.state {
            ItemState::Pending if active < max_parallel => {
                active += 1;
                session::launch(state, run, &who, &source, item).await?
            }
            ItemState::Implementing => prompt::prompt(state, run, &who, item).await?,
            ItemState::Testing => test::test(state, run, item).await?,
            _ => false,
        };
        // A step that blocked the run ends this pass: the rest waits for a person.
        if moved {
            if let Some(r) = super::store::get_run(&state.db, run.id).await? {
                if r.state != run.state {
                    return Ok(true);
                }
            }
        }
    }
    settle(state, run).await
}

/// Moves the run when its items say so: all in review → `blocked` on the change requests; all
/// settled → the next phase; otherwise `implementing` or `testing` by what is going on.
async fn settle(state: &AppState, run: &Run) -> RunResult<bool> {
    let items = work::items(&state.db, run.id).await?;
    let working = |s: ItemState| items.iter().any(|i| i.state == s);
    let (to, reason) = if working(ItemState::Pending) || working(ItemState::Implementing) {
        (
            RunState::Implementing,
            "agents are working on the items".to_string(),
        )
    } else if working(ItemState::Testing) {
        (
            RunState::Testing,
            "the items' tests are running".to_string(),
        )
    } else if working(ItemState::Review) {
        let n = items
            .iter()
            .filter(|i| i.state == ItemState::Review)
            .count();
        (
            RunState::Blocked,
            format!("{n} change request(s) wait for review: approve to merge, reject to keep the branch"),
        )
    } else {
        after_review(run, &items)
    };
    if to == run.state {
        return Ok(false);
    }
    finish(
        state,
        run,
        &format!("settle:{}", run.state),
        json!({}),
        None,
        Some((to, &reason)),
    )
    .await
}

/// Where a run goes once none of its items is working or in review.
pub fn after_review(run: &Run, items: &[Item]) -> (RunState, String) {
    let merged = items
        .iter()
        .filter(|i| i.state == ItemState::Merged)
        .count();
    if merged == 0 {
        let why: Vec<String> = items
            .iter()
            .map(|i| format!("item {} {}: {}", i.seq, i.state, i.reason))
            .collect();
        return (
            RunState::Done,
            format!("nothing merged ({})", why.join("; ")),
        );
    }
    match run.mode {
        Mode::AutoStaging | Mode::AutoProd => (
            RunState::Deploying,
            format!("{merged} change(s) merged: deploying to staging"),
        ),
        _ => (
            RunState::Done,
            format!("{merged} of {} change request(s) merged", items.len()),
        ),
    }
}
