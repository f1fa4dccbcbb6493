//! What a kill switch does to the work already handed out: a paused or cancelled run's prompts
//! that no agent has been typed yet are cancelled (a resumed run types a fresh one), and — when
//! the person asks for it (`cancel_tasks`), or the run was cancelled — its queued test and
//! deploy tasks are cancelled; running ones are cancelled only when asked for, else they
//! finish and the runner reads their result after the resume.

use super::work::{self, ItemState};
use super::*;
use crate::app::AppState;

/// What holding the runs did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Held {
    pub prompts_cancelled: Vec<i64>,
    pub tasks_cancelled: Vec<i64>,
}

pub async fn hold(
    state: &AppState,
    actor: &str,
    runs: &[i64],
    cancel_tasks: bool,
) -> RunResult<Held> {
    let mut held = Held::default();
    for &run_id in runs {
        let Some(run) = super::store::get_run(&state.db, run_id).await? else {
            continue;
        };
        let cancelled = run.state == RunState::Cancelled;
        for mut item in work::items(&state.db, run_id).await? {
            if let Some(pid) = item.prompt_id {
                let waiting = crate::agents::assigner::store::get(&state.db, pid)
                    .await?
                    .is_some_and(|p| p.status == crate::agents::assigner::PromptStatus::Pending);
                let now = state.clock.now_str();
                if waiting
                    && crate::agents::assigner::store::cancel(&state.db, actor, pid, &now).await?
                {
                    held.prompts_cancelled.push(pid);
                    if item.state == ItemState::Implementing {
                        item.prompt_id = None;
                        let mut tx = crate::db::begin_write(&state.db).await?;
                        work::save_item(&mut tx, &item, &now).await?;
                        crate::activity::store::record(
                            &mut tx,
                            actor,
                            "hold_item",
                            "autopilot_run",
                            Some(run_id),
                            &serde_json::json!({"run_id": run_id, "item": item.id,
                                                "prompt_cancelled": pid}),
                            &now,
                        )
                        .await?;
                        tx.commit().await?;
                    }
                }
            }
            if let Some(tid) = item.task_id {
                let Some(task) = crate::tasks::store::get_task(&state.db, tid).await? else {
                    continue;
                };
                use crate::tasks::TaskStatus as T;
                let cancel = match task.status {
                    T::Pending => cancel_tasks || cancelled,
                    T::Running => cancel_tasks,
                    _ => false,
                };
                if cancel
                    && crate::tasks::actions::cancel(&state.task_state(), actor, tid)
                        .await
                        .is_ok()
                {
                    held.tasks_cancelled.push(tid);
                }
            }
        }
    }
    Ok(held)
}
