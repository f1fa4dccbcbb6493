//! The runner: a leader-only background loop that advances every working run by one phase step per tick.
//! Each side effect is a step recorded under (run, step key) in the same transaction that moves
//! the run on, and a step already recorded is not made again, so a run resumed after a restart
//! picks up where it was.
//!
//! Built: `planning` — scan the project (`planning:scan`, issue 16's scanner and plan) and make
//! ranked suggestions (`planning:suggest`); then `observe` is `done` with the proposals in the
//! review queue, and every other mode is `blocked`: its implementing phase is not built yet.

use super::*;
use crate::app::AppState;
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const LOOP_NAME: &str = "autopilot_runner";
/// How often working runs are looked at.
pub const EVERY: Duration = Duration::from_secs(2);
/// Who the activity log names for the runner's own moves.
pub const ACTOR: &str = "autopilot";

pub fn loops(state: &AppState, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let st = state.clone();
    vec![tokio::spawn(crate::background::run_every_on_leader(
        state.loops.clone(),
        LOOP_NAME,
        EVERY,
        shutdown.clone(),
        move || {
            let state = st.clone();
            async move {
                if let Err(e) = tick(&state).await {
                    tracing::warn!(error = %e, "autopilot tick failed");
                }
            }
        },
    ))]
}

/// One pass over the working runs. Returns how many moved.
pub async fn tick(state: &AppState) -> RunResult<usize> {
    if super::store::globally_paused(&state.db).await? {
        return Ok(0);
    }
    let mut moved = 0;
    for run in super::store::working_runs(&state.db).await? {
        match advance(state, &run).await {
            Ok(true) => moved += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(run = run.id, error = %e, "autopilot run step failed; retried next tick")
            }
        }
    }
    Ok(moved)
}

/// Records a step's result and moves the run, in one transaction with the activity row.
async fn finish_step(
    state: &AppState,
    run: &Run,
    key: &str,
    result: serde_json::Value,
    to: Option<(RunState, &str)>,
) -> RunResult<bool> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let Some(current) = super::store::lock_run(&mut tx, run.id).await? else {
        return Ok(false);
    };
    // Paused or cancelled meanwhile: the step's result is kept, the run stays where it is.
    if super::store::step_done(&mut *tx, run.id, key)
        .await?
        .is_none()
    {
        super::store::record_step(&mut tx, run.id, key, &result, &now).await?;
    }
    let mut moved = false;
    if let Some((to, reason)) = to {
        if current.state == run.state {
            let resume_to = (to == RunState::Blocked).then_some(run.state);
            moved = super::store::transition(
                &mut tx, run.id, run.state, to, resume_to, reason, ACTOR, &now,
            )
            .await?;
        }
    }
    crate::activity::store::record(
        &mut tx,
        ACTOR,
        key,
        "autopilot_run",
        Some(run.id),
        &json!({"run_id": run.id, "result": result, "to": to.map(|(s, _)| s)}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Runs, "autopilot", run.id);
    Ok(moved)
}

async fn advance(state: &AppState, run: &Run) -> RunResult<bool> {
    if super::store::setting(&state.db, run.project_id)
        .await?
        .is_some_and(|s| s.paused)
    {
        return Ok(false);
    }
    match run.state {
        RunState::Planning => plan(state, run).await,
        // Not built yet: a run never reaches these states today.
        _ => Ok(false),
    }
}

async fn plan(state: &AppState, run: &Run) -> RunResult<bool> {
    if super::store::step_done(&state.db, run.id, "planning:scan")
        .await?
        .is_none()
    {
        return match crate::planning::actions::scan_project(state, ACTOR, run.project_id).await {
            Ok(r) => finish_step(
                state,
                run,
                "planning:scan",
                json!({"scan_id": r.scan.id, "items": r.scan.items, "proposed": r.pending.len()}),
                None,
            )
            .await,
            // Another scan of the project is running: next tick.
            Err(crate::planning::PlanningError::Conflict(_)) => Ok(false),
            Err(e) => {
                let reason = format!("planning: the scan failed: {e}");
                finish_step(
                    state,
                    run,
                    "planning:scan",
                    json!({"error": e.to_string()}),
                    Some((RunState::Blocked, &reason)),
                )
                .await
            }
        };
    }
    if super::store::step_done(&state.db, run.id, "planning:suggest")
        .await?
        .is_none()
    {
        let made = crate::planning::suggest::generate(
            state,
            ACTOR,
            crate::planning::suggest::SuggestRequest {
                project_id: Some(run.project_id),
            },
        )
        .await
        .map_err(|e| AutopilotError::Conflict(e.to_string()))?;
        let ids: Vec<i64> = made.created.iter().map(|s| s.id).collect();
        return finish_step(
            state,
            run,
            "planning:suggest",
            json!({"suggestions": ids}),
            None,
        )
        .await;
    }
    let proposals = super::actions::proposals(state, run.project_id).await?;
    let (to, reason) = match run.mode {
        Mode::Observe => (
            RunState::Done,
            format!("observe: {proposals} proposals wait in the review queue; nothing else was changed"),
        ),
        _ => (
            RunState::Blocked,
            format!(
                "planned ({proposals} proposals in the review queue); the implementing phase of {} is not built yet",
                run.mode
            ),
        ),
    };
    finish_step(
        state,
        run,
        "planning:done",
        json!({"proposals": proposals}),
        Some((to, &reason)),
    )
    .await
}
