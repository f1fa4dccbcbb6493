//! An item's tests: the project's test command as a `test` task in its worktree (found again by
//! its creator text), a failure back to the agent or blocking the run, a pass committed and
//! proposed as a change request.

use super::super::runner::{finish, finish_with_gate};
use super::super::work::{GateKind, Item, ItemState};
use super::super::*;
use super::{block, tail, MAX_ATTEMPTS};
use crate::app::AppState;
use serde_json::json;

/// Runs the project's test command in the item's worktree, or reads its result.
pub(super) async fn test(state: &AppState, run: &Run, mut item: Item) -> RunResult<bool> {
    let commands = crate::tasks::actions::project_commands(&state.task_state(), run.project_id)
        .await
        .map_err(|e| AutopilotError::Conflict(e.to_string()))?;
    let required = run.constraints.required_checks.iter().any(|c| c == "tests");
    if commands.test_command.is_none() {
        if required {
            let reason = "the project has no test command, and 'tests' is a required check: set one (PUT /api/projects/{id}/commands) and resume";
            return block(state, run, "tests:missing", None, reason).await;
        }
        return propose(
            state,
            run,
            item,
            "no test command: the change is untested".into(),
        )
        .await;
    }
    let n = item.attempts;
    let Some(task_id) = item.task_id else {
        let key = format!("item:{}:test:{n}", item.seq);
        let creator = format!("autopilot (run {}, item {}, test {n})", run.id, item.seq);
        let task = match crate::tasks::store::by_creator(&state.db, run.project_id, &creator)
            .await?
        {
            Some(t) => t,
            None => crate::tasks::actions::create_task(
                &state.task_state(),
                &creator,
                crate::tasks::NewTask {
                    task_type: "test".into(),
                    payload: Some(json!({"worktree": item.worktree})),
                    max_retries: Some(0),
                    project_id: Some(run.project_id),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| AutopilotError::Conflict(format!("cannot queue the test task: {e}")))?,
        };
        item.task_id = Some(task.id);
        return finish(
            state,
            run,
            &key,
            json!({"task_id": task.id}),
            Some(&item),
            None,
        )
        .await;
    };
    let Some(task) = crate::tasks::store::get_task(&state.db, task_id).await? else {
        item.task_id = None;
        return finish(
            state,
            run,
            &format!("item:{}:test-gone:{task_id}", item.seq),
            json!({}),
            Some(&item),
            None,
        )
        .await;
    };
    use crate::tasks::TaskStatus as T;
    let output = || {
        let mut o = task.output.clone().unwrap_or_default();
        if let Some(e) = &task.error {
            o.push('\n');
            o.push_str(e);
        }
        tail(&o)
    };
    match task.status {
        T::Completed => propose(state, run, item, output()).await,
        T::Failed | T::Dead | T::Cancelled => {
            item.test_output = output();
            let blocked_key = format!("item:{}:blocked:{n}", item.seq);
            let block_now = n % MAX_ATTEMPTS == 0
                && super::store::step_done(&state.db, run.id, &blocked_key)
                    .await?
                    .is_none();
            if block_now {
                let reason = format!(
                    "item {}: the tests still fail after {n} attempts (task {task_id}); resume to give the agent {MAX_ATTEMPTS} more",
                    item.seq
                );
                return block(state, run, &blocked_key, Some(&item), &reason).await;
            }
            // Back to the agent with the output.
            item.state = ItemState::Implementing;
            item.prompt_id = None;
            item.task_id = None;
            let key = format!("item:{}:test-failed:{n}", item.seq);
            finish(
                state,
                run,
                &key,
                json!({"task_id": task_id, "status": task.status}),
                Some(&item),
                None,
            )
            .await
        }
        T::Pending | T::Running => Ok(false),
    }
}

/// Commits the worktree on its branch and opens the change request.
async fn propose(
    state: &AppState,
    run: &Run,
    mut item: Item,
    test_output: String,
) -> RunResult<bool> {
    let key = format!("item:{}:proposed", item.seq);
    let wt = item.worktree.clone().unwrap_or_default();
    let message = format!("autopilot run {} item {}: {}", run.id, item.seq, item.title);
    let head = match super::git::commit_all(&wt, &message).await {
        Ok(h) => h,
        Err(e) => {
            let reason = format!("item {}: cannot commit its worktree: {e}", item.seq);
            return block(state, run, &key, Some(&item), &reason).await;
        }
    };
    item.test_output = test_output;
    let base = item.base_commit.clone().unwrap_or_default();
    if head == base {
        item.state = ItemState::Failed;
        item.reason = "the agent changed nothing: no change to propose".into();
        return finish(state, run, &key, json!({"head": head}), Some(&item), None).await;
    }
    item.diff_stat = super::git::diff_stat(&wt, &base, &head)
        .await
        .unwrap_or_default();
    item.head_commit = Some(head.clone());
    item.state = ItemState::Review;
    let result = json!({"head": head});
    let gate = Some((Some(item.id), GateKind::ChangeRequest));
    finish_with_gate(state, run, &key, result, Some(&item), gate, None).await
}
