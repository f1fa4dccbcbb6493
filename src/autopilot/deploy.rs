//! Deploying, monitoring and investigating (`auto_staging`, `auto_prod`): after the change
//! requests are merged, the project's deploy command runs as a `deploy` task with
//! `target=staging`; then the project's error groups are watched for `monitor_minutes`. In
//! `auto_prod` the production deploy runs only after a `deploy_production` gate was approved by
//! a person — checked here, server-side, before the task is made, whatever state a run was
//! moved to. New or regressed error groups during a window → `investigating`: a bug from the
//! first group and a follow-up `fix_forward` run for it.

use super::runner::{finish, finish_with_gate, ACTOR};
use super::work::{self, GateKind, GateState};
use super::*;
use crate::app::AppState;
use serde_json::json;

/// How long errors are watched after a deploy unless the run says.
pub const DEFAULT_MONITOR_MINUTES: i64 = 10;

const STAGING: &str = "staging";
const PRODUCTION: &str = "production";

async fn done(state: &AppState, run: &Run, key: &str) -> RunResult<Option<String>> {
    Ok(super::store::step_at(&state.db, run.id, key).await?)
}

/// The target the run deploys to next: staging first, production (auto_prod) after it.
async fn next_target(state: &AppState, run: &Run) -> RunResult<Option<&'static str>> {
    if done(state, run, "deploy:staging:done").await?.is_none() {
        return Ok(Some(STAGING));
    }
    if run.mode == Mode::AutoProd && done(state, run, "deploy:production:done").await?.is_none() {
        return Ok(Some(PRODUCTION));
    }
    Ok(None)
}

pub async fn deploy(state: &AppState, run: &Run) -> RunResult<bool> {
    let Some(target) = next_target(state, run).await? else {
        return finish(
            state,
            run,
            "deploy:finished",
            json!({}),
            None,
            Some((RunState::Done, "deployed")),
        )
        .await;
    };
    if target == PRODUCTION {
        let gate = work::find_gate(&state.db, run.id, None, GateKind::DeployProduction).await?;
        match gate.map(|g| (g.id, g.state)) {
            Some((_, GateState::Approved)) => {}
            Some((id, GateState::Rejected)) => {
                let reason = format!(
                    "the production deploy was rejected (gate {id}); staging keeps the change"
                );
                return finish(
                    state,
                    run,
                    "deploy:production:rejected",
                    json!({"gate": id}),
                    None,
                    Some((RunState::Done, &reason)),
                )
                .await;
            }
            _ => {
                let reason = "staging is healthy: the production deploy waits for a person's approval (a gate in the review queue)";
                return finish_with_gate(
                    state,
                    run,
                    "deploy:production:gate",
                    json!({}),
                    None,
                    Some((None, GateKind::DeployProduction)),
                    Some((RunState::Blocked, reason)),
                )
                .await;
            }
        }
    }
    let key = format!("deploy:{target}");
    let creator = format!("autopilot (run {}, deploy {target})", run.id);
    let Some(step) = super::store::step_done(&state.db, run.id, &key).await? else {
        let commands = crate::tasks::actions::project_commands(&state.task_state(), run.project_id)
            .await
            .map_err(|e| AutopilotError::Conflict(e.to_string()))?;
        if commands.deploy_command.is_none() {
            let reason = "the project has no deploy command: set one (PUT /api/projects/{id}/commands) and resume";
            return finish(
                state,
                run,
                &format!("{key}:missing"),
                json!({}),
                None,
                Some((RunState::Blocked, reason)),
            )
            .await;
        }
        let task =
            match crate::tasks::store::by_creator(&state.db, run.project_id, &creator).await? {
                Some(t) => t,
                None => crate::tasks::actions::create_task(
                    &state.task_state(),
                    &creator,
                    crate::tasks::NewTask {
                        task_type: "deploy".into(),
                        payload: Some(json!({"target": target})),
                        max_retries: Some(0),
                        project_id: Some(run.project_id),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| AutopilotError::Conflict(format!("cannot queue the deploy: {e}")))?,
            };
        return finish(state, run, &key, json!({"task_id": task.id}), None, None).await;
    };
    let task_id = step["task_id"].as_i64().unwrap_or(0);
    let Some(task) = crate::tasks::store::get_task(&state.db, task_id).await? else {
        return Ok(false);
    };
    use crate::tasks::TaskStatus as T;
    match task.status {
        T::Completed => {
            let minutes = run
                .constraints
                .monitor_minutes
                .unwrap_or(DEFAULT_MONITOR_MINUTES);
            let reason = format!("deployed to {target} (task {task_id}); watching the project's errors for {minutes} min");
            finish(
                state,
                run,
                &format!("{key}:done"),
                json!({"task_id": task_id, "target": target}),
                None,
                Some((RunState::Monitoring, &reason)),
            )
            .await
        }
        T::Failed | T::Dead | T::Cancelled => {
            let why = task.error.clone().unwrap_or_default();
            let reason = format!("the deploy to {target} failed (task {task_id}): {why}");
            finish(
                state,
                run,
                &format!("{key}:failed"),
                json!({"task_id": task_id}),
                None,
                Some((RunState::Failed, &reason)),
            )
            .await
        }
        T::Pending | T::Running => Ok(false),
    }
}

/// Error groups of the project that are new, or regressed, since `since`.
async fn new_errors(
    state: &AppState,
    project: &crate::tracking::Project,
    since: &str,
) -> RunResult<Vec<crate::errors::ErrorGroup>> {
    let mut conn = state.db.acquire().await?;
    let groups = crate::errors::store::list_groups(
        &mut conn,
        &crate::errors::GroupFilter {
            status: Some(crate::errors::GroupStatus::Open),
            source: Some(project.name.clone()),
            ..Default::default()
        },
        1000,
        0,
    )
    .await?;
    Ok(groups
        .into_iter()
        .filter(|g| {
            g.first_seen.as_str() >= since || (g.regressed && g.last_seen.as_str() >= since)
        })
        .collect())
}

pub async fn monitor(state: &AppState, run: &Run) -> RunResult<bool> {
    let target = if done(state, run, "deploy:production:done").await?.is_some() {
        PRODUCTION
    } else {
        STAGING
    };
    let Some(since) = done(state, run, &format!("deploy:{target}:done")).await? else {
        return Ok(false);
    };
    let project = crate::tracking::store::get_project(&state.db, run.project_id)
        .await?
        .ok_or(AutopilotError::NotFound("project"))?;
    let found = new_errors(state, &project, &since).await?;
    if let Some(g) = found.first() {
        let mut reason = format!(
            "after the {target} deploy: {} new or regressed error group(s), first #{} {}",
            found.len(),
            g.id,
            g.title
        );
        if let Some(threshold) = run.constraints.rollback_error_groups {
            if found.len() as i64 >= threshold {
                match rollback(state, run, target).await? {
                    Rolled::Waiting(moved) => return Ok(moved),
                    Rolled::Ended(note) => reason = format!("{reason}; {note}"),
                }
            }
        }
        let ids: Vec<i64> = found.iter().map(|g| g.id).collect();
        return finish(
            state,
            run,
            &format!("monitor:{target}:errors"),
            json!({"groups": ids}),
            None,
            Some((RunState::Investigating, &reason)),
        )
        .await;
    }
    let minutes = run
        .constraints
        .monitor_minutes
        .unwrap_or(DEFAULT_MONITOR_MINUTES);
    let Some(start) = crate::clock::parse(&since) else {
        return Ok(false);
    };
    if (state.clock.now() - start).whole_seconds() < minutes * 60 {
        return Ok(false);
    }
    let key = format!("monitor:{target}:quiet");
    let reason = format!("no new errors {minutes} min after the {target} deploy");
    let to = if next_target(state, run).await?.is_some() {
        RunState::Deploying
    } else {
        RunState::Done
    };
    finish(state, run, &key, json!({}), None, Some((to, &reason))).await
}

enum Rolled {
    /// The rollback task is queued or running (true: a step was recorded).
    Waiting(bool),
    /// It ended, as said.
    Ended(String),
}

/// The project's rollback command as a `deploy` task (`rollback`, `DEPLOY_TARGET=<target>`),
/// made once per target and run; waits until it ends.
async fn rollback(state: &AppState, run: &Run, target: &str) -> RunResult<Rolled> {
    let key = format!("rollback:{target}");
    let Some(step) = super::store::step_done(&state.db, run.id, &key).await? else {
        let creator = format!("autopilot (run {}, rollback {target})", run.id);
        let task =
            match crate::tasks::store::by_creator(&state.db, run.project_id, &creator).await? {
                Some(t) => t,
                None => crate::tasks::actions::create_task(
                    &state.task_state(),
                    &creator,
                    crate::tasks::NewTask {
                        task_type: "deploy".into(),
                        payload: Some(json!({"target": target, "rollback": true})),
                        max_retries: Some(0),
                        project_id: Some(run.project_id),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| AutopilotError::Conflict(format!("cannot queue the rollback: {e}")))?,
            };
        let moved = finish(state, run, &key, json!({"task_id": task.id}), None, None).await?;
        return Ok(Rolled::Waiting(moved));
    };
    let task_id = step["task_id"].as_i64().unwrap_or(0);
    let Some(task) = crate::tasks::store::get_task(&state.db, task_id).await? else {
        return Ok(Rolled::Ended(format!(
            "the rollback task {task_id} is gone"
        )));
    };
    use crate::tasks::TaskStatus as T;
    Ok(match task.status {
        T::Completed => Rolled::Ended(format!("rolled {target} back (task {task_id})")),
        T::Failed | T::Dead | T::Cancelled => Rolled::Ended(format!(
            "the rollback of {target} failed (task {task_id}): {}",
            task.error.unwrap_or_default()
        )),
        T::Pending | T::Running => Rolled::Waiting(false),
    })
}

/// A bug from the first new group and a follow-up fix_forward run for it; this run is done.
pub async fn investigate(state: &AppState, run: &Run) -> RunResult<bool> {
    let Some(found) = super::store::step_done(&state.db, run.id, "monitor:staging:errors")
        .await?
        .or(super::store::step_done(&state.db, run.id, "monitor:production:errors").await?)
    else {
        return Ok(false);
    };
    let Some(gid) = found["groups"][0].as_i64() else {
        return Ok(false);
    };
    let now = state.clock.now_str();
    let actor = format!("autopilot (run {})", run.id);
    let bug_id = match crate::errors::actions::create_bug(
        &state.db,
        &actor,
        &now,
        gid,
        crate::errors::BugFromError {
            project_id: Some(run.project_id),
            ..Default::default()
        },
    )
    .await
    {
        Ok((bug, _)) => bug.id,
        Err(_) => {
            let (g, _) = crate::errors::actions::group_with_stack(&state.db, gid)
                .await
                .map_err(|e| AutopilotError::Conflict(e.to_string()))?;
            g.bug_id.unwrap_or(0)
        }
    };
    super::runner::in_step(state, run, "investigate", async |tx, current, now| {
        let follow = ProjectAutopilot {
            project_id: run.project_id,
            mode: Mode::FixForward,
            goal: format!(
            "Fix error group #{gid} (bug #{bug_id}), seen after the autopilot's deploy of run {}",
            run.id
        ),
            constraints: run.constraints.clone(),
            agent: run.agent.clone(),
            paused: false,
            updated_by: ACTOR.into(),
            updated_at: now.to_string(),
        };
        let reason = format!("bug #{bug_id} filed for error group #{gid}");
        let next = super::store::insert_run(tx, &follow, ACTOR, current.user_id, now).await?;
        Ok((
            json!({"bug_id": bug_id, "group": gid, "follow_up_run": next}),
            RunState::Done,
            reason,
        ))
    })
    .await
}
