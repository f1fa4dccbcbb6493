//! The runner: a leader-only background loop that advances every working run by one phase step per tick.
//! Each side effect is a step recorded under (run, step key) in the same transaction that moves
//! the run on, and a step already recorded is not made again, so a run resumed after a restart
//! picks up where it was.
//!
//! `planning` scans the project (`planning:scan`, the planning domain's scanner and plan) and
//! makes ranked suggestions (`planning:suggest`); `observe` is then `done` with the proposals
//! in the review queue. Every other mode turns the goal (or, without one, the approved
//! features of the project's plans) into work items (`planning:items`) and goes on to
//! [`super::phases`] (implementing, testing, change requests) and [`super::deploy`] (deploying,
//! monitoring, investigating). Budgets are checked before every step ([`over_budget`]).

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

/// Records a step's result (and the item it moved) and moves the run, in one transaction with
/// the activity row.
pub async fn finish(
    state: &AppState,
    run: &Run,
    key: &str,
    result: serde_json::Value,
    item: Option<&super::work::Item>,
    to: Option<(RunState, &str)>,
) -> RunResult<bool> {
    finish_with_gate(state, run, key, result, item, None, to).await
}

/// [`finish`], opening a gate in the same transaction.
pub async fn finish_with_gate(
    state: &AppState,
    run: &Run,
    key: &str,
    result: serde_json::Value,
    item: Option<&super::work::Item>,
    gate: Option<(Option<i64>, super::work::GateKind)>,
    to: Option<(RunState, &str)>,
) -> RunResult<bool> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let Some(current) = super::store::lock_run(&mut tx, run.id).await? else {
        return Ok(false);
    };
    // Cancelled or finished meanwhile: nothing more is recorded for it.
    if current.state.is_final() {
        return Ok(false);
    }
    if let Some(i) = item {
        super::work::save_item(&mut tx, i, &now).await?;
    }
    if let Some((item_id, kind)) = gate {
        super::work::open_gate(&mut tx, run.id, item_id, kind, &now).await?;
    }
    // Paused or cancelled meanwhile: the step's result is kept, the run stays where it is.
    let to = to.filter(|_| current.state == run.state);
    let moved = record(&mut tx, run, key, &result, to, &now).await? || item.is_some();
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Runs, "autopilot", run.id);
    Ok(moved)
}

/// The writes every step makes, in the caller's transaction (which holds the run's lock): its
/// result under (run, key) unless recorded before, the run's move from `run.state` (a blocked
/// run remembers where it was), and the activity row naming the run. True when the run moved.
pub(super) async fn record(
    tx: &mut sqlx::AnyConnection,
    run: &Run,
    key: &str,
    result: &serde_json::Value,
    to: Option<(RunState, &str)>,
    now: &str,
) -> RunResult<bool> {
    if super::store::step_done(&mut *tx, run.id, key)
        .await?
        .is_none()
    {
        super::store::record_step(tx, run.id, key, result, now).await?;
    }
    let mut moved = false;
    if let Some((to, reason)) = to {
        let resume_to = (to == RunState::Blocked).then_some(run.state);
        moved = super::store::transition(tx, run.id, run.state, to, resume_to, reason, ACTOR, now)
            .await?;
    }
    crate::activity::store::record(
        tx,
        ACTOR,
        key,
        "autopilot_run",
        Some(run.id),
        &json!({"run_id": run.id, "result": result, "to": to.map(|(s, _)| s)}),
        now,
    )
    .await?;
    Ok(moved)
}

async fn advance(state: &AppState, run: &Run) -> RunResult<bool> {
    if super::store::setting(&state.db, run.project_id)
        .await?
        .is_some_and(|s| s.paused)
    {
        return Ok(false);
    }
    if let Some(reason) = over_budget(state, run).await? {
        let key = format!("budget:{}", state.clock.now_str());
        return finish(
            state,
            run,
            &key,
            json!({"blocked": reason}),
            None,
            Some((RunState::Blocked, &reason)),
        )
        .await;
    }
    match run.state {
        RunState::Planning => plan(state, run).await,
        RunState::Implementing | RunState::Testing => super::phases::work(state, run).await,
        RunState::Deploying => super::deploy::deploy(state, run).await,
        RunState::Monitoring => super::deploy::monitor(state, run).await,
        RunState::Investigating => super::deploy::investigate(state, run).await,
        _ => Ok(false),
    }
}

/// What the run has spent, from the gateway's ledger: the LLM cost and requests of the
/// sessions it started (their own tokens), and of its own goal split (its caller name, in the
/// project's rows since it started).
pub async fn spent(state: &AppState, run: &Run) -> RunResult<(f64, i64)> {
    let tokens: Vec<i64> = super::work::items(&state.db, run.id)
        .await?
        .iter()
        .filter_map(|i| i.token_id)
        .collect();
    let (mut nanos, mut requests) = crate::llm::store::usage_of_tokens(&state.db, &tokens).await?;
    let asked = |v: &serde_json::Value| v["split"]["asked"] == true;
    if super::store::steps(&state.db, run.id)
        .await?
        .iter()
        .any(|s| s.key.starts_with("planning:") && asked(&s.result))
    {
        if let Some(p) = crate::tracking::store::get_project(&state.db, run.project_id).await? {
            let (n, r) = crate::llm::store::usage_of_caller(
                &state.db,
                &p.name,
                &super::split::caller(run.id),
                &run.created_at,
            )
            .await?;
            nanos += n;
            requests += r;
        }
    }
    Ok((nanos as f64 / 1e9, requests))
}

/// Why the run must stop now, if a budget is spent: LLM cost, wall time (iterations are counted
/// where prompts are typed).
pub async fn over_budget(state: &AppState, run: &Run) -> RunResult<Option<String>> {
    let c = &run.constraints;
    if let Some(budget) = c.budget_usd {
        let (cost, _) = spent(state, run).await?;
        if cost >= budget {
            return Ok(Some(format!(
                "the LLM budget is spent: ${cost:.4} of ${budget:.4} (raise budget_usd and resume)"
            )));
        }
    }
    if let Some(minutes) = c.max_wall_minutes {
        let started = crate::clock::parse(&run.created_at);
        if let Some(started) = started {
            let ran = state.clock.now() - started;
            if ran.whole_minutes() >= minutes {
                return Ok(Some(format!(
                    "the wall-time budget is spent: {} of {minutes} minutes (raise max_wall_minutes and resume)",
                    ran.whole_minutes()
                )));
            }
        }
    }
    Ok(None)
}

async fn plan(state: &AppState, run: &Run) -> RunResult<bool> {
    if super::store::step_done(&state.db, run.id, "planning:scan")
        .await?
        .is_none()
    {
        return match crate::planning::actions::scan_project(state, ACTOR, run.project_id).await {
            Ok(r) => finish(
                state,
                run,
                "planning:scan",
                json!({"scan_id": r.scan.id, "items": r.scan.items, "proposed": r.pending.len()}),
                None,
                None,
            )
            .await,
            // Another scan of the project is running: next tick.
            Err(crate::planning::PlanningError::Conflict(_)) => Ok(false),
            Err(e) => {
                let reason = format!("planning: the scan failed: {e}");
                finish(
                    state,
                    run,
                    "planning:scan",
                    json!({"error": e.to_string()}),
                    None,
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
        return finish(
            state,
            run,
            "planning:suggest",
            json!({"suggestions": ids}),
            None,
            None,
        )
        .await;
    }
    let proposals = super::actions::proposals(state, run.project_id).await?;
    if run.mode == Mode::Observe {
        let reason = format!(
            "observe: {proposals} proposals wait in the review queue; nothing else was changed"
        );
        return finish(
            state,
            run,
            "planning:done",
            json!({"proposals": proposals}),
            None,
            Some((RunState::Done, &reason)),
        )
        .await;
    }
    let (work, split) = work_items(state, run).await?;
    if work.is_empty() {
        let reason = match split["why"].as_str() {
            Some(why) if split["by"] == "failed" => format!(
                "the goal could not be split (split_goal: on): {why}; fix the gateway and resume"
            ),
            _ => format!(
                "nothing to work on: give the run a goal, or approve a plan's milestones ({proposals} proposals wait in the review queue)"
            ),
        };
        // A key of its own per attempt (the run's moves so far): a resume plans again.
        let attempt = super::store::transitions(&state.db, run.id).await?.len();
        return finish(
            state,
            run,
            &format!("planning:empty:{attempt}"),
            json!({"items": 0, "split": split}),
            None,
            Some((RunState::Blocked, &reason)),
        )
        .await;
    }
    // The items, the step and the move to implementing in one transaction.
    in_step(state, run, "planning:items", async |tx, run, now| {
        for (n, (title, detail, source)) in work.iter().enumerate() {
            super::work::insert_item(tx, run.id, n as i64 + 1, title, detail, source, now).await?;
        }
        let reason = format!("{} work item(s) planned", work.len());
        Ok((
            json!({"items": work.len(), "split": split}),
            RunState::Implementing,
            reason,
        ))
    })
    .await
}

/// A step whose writes go with the run's move, in one transaction holding the run's lock:
/// `write` runs only when the run is still where `run` says and `key` is not recorded yet; its
/// result and move (to, reason) are recorded after it ([`record`]), then the pages are told.
/// False when the run moved on meanwhile (nothing written).
pub(super) async fn in_step(
    state: &AppState,
    run: &Run,
    key: &str,
    write: impl AsyncFnOnce(
        &mut sqlx::AnyConnection,
        &Run,
        &str,
    ) -> RunResult<(serde_json::Value, RunState, String)>,
) -> RunResult<bool> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let Some(current) = super::store::lock_run(&mut tx, run.id).await? else {
        return Ok(false);
    };
    if current.state != run.state
        || super::store::step_done(&mut *tx, run.id, key)
            .await?
            .is_some()
    {
        return Ok(false);
    }
    let (result, to, reason) = write(&mut tx, &current, &now).await?;
    record(&mut tx, &current, key, &result, Some((to, &reason)), &now).await?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Runs, "autopilot", run.id);
    Ok(true)
}

/// Longest list of approved features one run takes on.
const MAX_ITEMS: i64 = 20;

/// (title, detail, source) of each work item, and how they were made: the goal split through
/// the gateway ([`super::split`]), or the goal as one item, when the run has one; otherwise
/// the open features of the project's approved plans, highest priority first.
async fn work_items(
    state: &AppState,
    run: &Run,
) -> RunResult<(Vec<(String, String, String)>, serde_json::Value)> {
    let goal = run.goal.trim();
    if !goal.is_empty() {
        let project = crate::tracking::store::get_project(&state.db, run.project_id)
            .await?
            .ok_or(AutopilotError::NotFound("project"))?;
        return match super::split::split(state, run, &project.name).await {
            super::split::Outcome::Split(pieces, model) => {
                let n = pieces.len();
                let items = pieces
                    .into_iter()
                    .enumerate()
                    .map(|(i, (title, detail))| {
                        let detail =
                            format!("{detail}\n\n(Part {} of {n} of the goal: {goal})", i + 1);
                        (title, detail.trim().to_string(), "goal".to_string())
                    })
                    .collect();
                Ok((
                    items,
                    json!({"by": "llm", "model": model, "items": n, "asked": true}),
                ))
            }
            // Required: no items, and the run blocks with the reason.
            super::split::Outcome::Kept(why, asked)
                if run.constraints.split_goal == SplitGoal::On =>
            {
                Ok((
                    Vec::new(),
                    json!({"by": "failed", "why": why, "asked": asked}),
                ))
            }
            super::split::Outcome::Kept(why, asked) => {
                let title: String = crate::overview::one_line(goal, 120);
                Ok((
                    vec![(title, goal.to_string(), "goal".into())],
                    json!({"by": "goal", "why": why, "asked": asked}),
                ))
            }
        };
    }
    let plans = crate::planning::store::list_plans(
        &state.db,
        &crate::planning::store::PlanFilter {
            project_id: Some(run.project_id),
            status: Some(crate::planning::PlanStatus::Approved),
        },
        100,
        0,
    )
    .await?;
    let mut out = Vec::new();
    for plan in plans {
        let Some(mid) = plan.milestone_id else {
            continue;
        };
        let features = crate::tracking::features::store::list_features(
            &state.db,
            &crate::tracking::features::FeatureFilter {
                project_id: Some(run.project_id),
                milestone_id: Some(mid),
                ..Default::default()
            },
            MAX_ITEMS,
            0,
        )
        .await?;
        for f in features {
            use crate::tracking::features::FeatureStatus as F;
            if matches!(f.status, F::Draft | F::Spec | F::InProgress) {
                out.push((
                    f.name.clone(),
                    f.description.clone(),
                    format!("feature:{}", f.id),
                ));
            }
        }
        if out.len() as i64 >= MAX_ITEMS {
            break;
        }
    }
    out.truncate(MAX_ITEMS as usize);
    Ok((out, json!({"by": "plans"})))
}
