//! Autopilot operations: configure a project, move runs by hand (start, resume, pause, cancel),
//! the kill switches, a run's detail and the loop's health. Each change runs in one transaction
//! with its activity row (the run id in its details).

use super::*;
use crate::app::AppState;
use serde_json::json;
use sqlx::AnyConnection;

/// `POST /api/projects/{id}/autopilot`. Every field optional: what is given changes.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Configure {
    pub mode: Option<Mode>,
    pub goal: Option<String>,
    pub constraints: Option<Constraints>,
    /// The agent each work item's session runs (default: Claude Code through the gateway).
    pub agent: Option<AgentSpec>,
    /// The project's own kill switch.
    pub paused: Option<bool>,
}

/// What configuring answers: the setting and the project's active run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Configured {
    #[serde(flatten)]
    pub setting: ProjectAutopilot,
    pub run: Option<Run>,
}

const MAX_GOAL: usize = 2_000;

async fn log(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    entity: &str,
    id: i64,
    details: serde_json::Value,
    now: &str,
) -> RunResult<()> {
    crate::activity::store::record(conn, actor, action, entity, Some(id), &details, now).await?;
    Ok(())
}

fn announce(state: &AppState, run_id: i64) {
    state
        .events
        .emit(crate::events::Topic::Runs, "autopilot", run_id);
}

/// Sets a project's autopilot. A mode other than `off` starts a run unless one is active; `off`
/// cancels the active run; pausing pauses it.
pub async fn configure(
    state: &AppState,
    who: &crate::auth::Identity,
    project_id: i64,
    req: Configure,
) -> RunResult<Configured> {
    let actor = &who.actor();
    let project = crate::tracking::store::get_project(&state.db, project_id)
        .await?
        .ok_or(AutopilotError::NotFound("project"))?;
    if project.archived {
        return Err(crate::validate::invalid("project_id", "the project is archived").into());
    }
    if let Some(c) = &req.constraints {
        c.validate()?;
    }
    if let Some(g) = &req.goal {
        if g.chars().count() > MAX_GOAL {
            return Err(
                crate::validate::invalid("goal", format!("at most {MAX_GOAL} characters")).into(),
            );
        }
    }
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let before = super::store::setting(&mut *tx, project_id).await?;
    let mut s = before.clone().unwrap_or(ProjectAutopilot {
        project_id,
        mode: Mode::Off,
        goal: String::new(),
        constraints: Constraints::default(),
        agent: AgentSpec::default(),
        paused: false,
        updated_by: actor.to_string(),
        updated_at: now.clone(),
    });
    if let Some(m) = req.mode {
        s.mode = m;
    }
    if let Some(g) = req.goal {
        s.goal = g.trim().to_string();
    }
    if let Some(c) = req.constraints {
        s.constraints = c;
    }
    if let Some(a) = req.agent {
        a.allowed_for(who)?;
        s.agent = a;
    }
    s.agent.validate(s.constraints.budget_usd)?;
    if let Some(p) = req.paused {
        s.paused = p;
    }
    s.updated_by = actor.to_string();
    s.updated_at = now.clone();
    if s.mode != Mode::Off
        && project
            .source_path
            .as_deref()
            .is_none_or(|p| p.trim().is_empty())
    {
        return Err(crate::validate::invalid(
            "mode",
            format!(
                "project '{}' has no source_path: the autopilot works in a repository (set one with PUT /api/projects/{project_id})",
                project.name
            ),
        )
        .into());
    }
    if s.constraints.rollback_error_groups.is_some()
        && crate::tasks::store::get_commands(&mut *tx, project_id)
            .await?
            .and_then(|c| c.rollback_command)
            .is_none()
    {
        return Err(crate::validate::invalid(
            "constraints.rollback_error_groups",
            format!(
                "project '{}' has no rollback command to run: set rollback_command first (PUT /api/projects/{project_id}/commands)",
                project.name
            ),
        )
        .into());
    }
    super::store::save_setting(&mut tx, &s).await?;
    log(
        &mut tx,
        actor,
        "autopilot",
        "project",
        project_id,
        json!({"mode": s.mode, "goal": s.goal, "constraints": s.constraints, "paused": s.paused,
               "was": before.as_ref().map(|b| json!({"mode": b.mode, "paused": b.paused}))}),
        &now,
    )
    .await?;
    let mut active = super::store::active_run(&mut *tx, project_id).await?;
    let mut touched = None;
    match (&active, s.mode) {
        (Some(r), Mode::Off) => {
            super::store::transition(
                &mut tx,
                r.id,
                r.state,
                RunState::Cancelled,
                None,
                "the project's autopilot was turned off",
                actor,
                &now,
            )
            .await?;
            touched = Some(r.id);
        }
        (None, m) if m != Mode::Off => {
            let id = super::store::insert_run(&mut tx, &s, actor, Some(who.user_id), &now).await?;
            // Under a kill switch a new run waits, paused.
            if s.paused || super::store::globally_paused(&mut *tx).await? {
                super::store::transition(
                    &mut tx,
                    id,
                    RunState::Planning,
                    RunState::Paused,
                    Some(RunState::Planning),
                    "the autopilot is paused",
                    actor,
                    &now,
                )
                .await?;
            }
            log(
                &mut tx,
                actor,
                "start",
                "autopilot_run",
                id,
                json!({"run_id": id, "mode": s.mode}),
                &now,
            )
            .await?;
            touched = Some(id);
        }
        _ => {}
    }
    // The project's switch pauses its working run (and a resumed switch resumes it).
    if let (Some(r), Some(p)) = (&active, req.paused) {
        if p && r.state.is_working() {
            super::store::transition(
                &mut tx,
                r.id,
                r.state,
                RunState::Paused,
                Some(r.state),
                "the project's autopilot was paused",
                actor,
                &now,
            )
            .await?;
            touched = Some(r.id);
        } else if !p && r.state == RunState::Paused {
            let to = r.resume_to.unwrap_or(RunState::Planning);
            super::store::transition(
                &mut tx,
                r.id,
                r.state,
                to,
                None,
                "the project's autopilot was resumed",
                actor,
                &now,
            )
            .await?;
            touched = Some(r.id);
        }
    }
    if let Some(id) = touched {
        active = super::store::get_run(&mut *tx, id)
            .await?
            .filter(|r| !r.state.is_final());
    }
    tx.commit().await?;
    if let Some(id) = touched {
        announce(state, id);
        // Paused or turned off: its prompts not typed yet are held back.
        if active.as_ref().is_none_or(|r| r.state == RunState::Paused) {
            super::hold::hold(state, actor, &[id], false).await?;
        }
    }
    Ok(Configured {
        setting: s,
        run: active,
    })
}

/// A run's state changed by a person: `start` (a paused or blocked run goes on), `resume` (a
/// blocked one), `pause`, `cancel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Start,
    Resume,
    Pause,
    Cancel,
}

pub async fn move_run(
    state: &AppState,
    actor: &str,
    id: i64,
    how: Move,
    reason: Option<&str>,
) -> RunResult<Run> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let run = super::store::lock_run(&mut tx, id)
        .await?
        .ok_or(AutopilotError::NotFound("run"))?;
    let refuse = |what: &str| {
        AutopilotError::Conflict(format!("run {id} is {}: it cannot be {what}", run.state))
    };
    let (to, resume_to, why) = match how {
        Move::Start | Move::Resume => {
            let allowed = match how {
                Move::Start => matches!(run.state, RunState::Paused | RunState::Blocked),
                _ => run.state == RunState::Blocked || run.state == RunState::Paused,
            };
            if !allowed {
                return Err(refuse(if how == Move::Start {
                    "started"
                } else {
                    "resumed"
                }));
            }
            if super::store::globally_paused(&mut *tx).await? {
                return Err(AutopilotError::Conflict(
                    "the autopilot is paused for every project (POST /api/autopilot/pause {\"paused\": false})".into(),
                ));
            }
            (
                run.resume_to.unwrap_or(RunState::Planning),
                None,
                reason.unwrap_or("resumed by a person").to_string(),
            )
        }
        Move::Pause => {
            if !run.state.is_working() {
                return Err(refuse("paused"));
            }
            (
                RunState::Paused,
                Some(run.state),
                reason.unwrap_or("paused by a person").to_string(),
            )
        }
        Move::Cancel => {
            if run.state.is_final() {
                return Err(refuse("cancelled"));
            }
            (
                RunState::Cancelled,
                None,
                reason.unwrap_or("cancelled by a person").to_string(),
            )
        }
    };
    super::store::transition(&mut tx, id, run.state, to, resume_to, &why, actor, &now).await?;
    log(
        &mut tx,
        actor,
        to.as_str(),
        "autopilot_run",
        id,
        json!({"run_id": id, "from": run.state, "to": to, "reason": why}),
        &now,
    )
    .await?;
    tx.commit().await?;
    announce(state, id);
    if matches!(to, RunState::Paused | RunState::Cancelled) {
        super::hold::hold(state, actor, &[id], false).await?;
    }
    super::store::get_run(&state.db, id)
        .await?
        .ok_or(AutopilotError::NotFound("run"))
}

/// The global kill switch: paused, every working run is paused (and resumed when it is lifted).
pub async fn set_global_pause(
    state: &AppState,
    actor: &str,
    paused: bool,
    cancel_tasks: bool,
) -> RunResult<(usize, super::hold::Held)> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    super::store::set_global_pause(&mut tx, paused, actor, &now).await?;
    let mut moved = Vec::new();
    if paused {
        for r in super::store::working_runs(&mut *tx).await? {
            super::store::transition(
                &mut tx,
                r.id,
                r.state,
                RunState::Paused,
                Some(r.state),
                "the autopilot was paused for every project",
                actor,
                &now,
            )
            .await?;
            moved.push(r.id);
        }
    } else {
        for r in super::store::list_runs(
            &mut *tx,
            &super::store::RunFilter {
                project_id: None,
                state: Some(RunState::Paused),
            },
            10_000,
            0,
        )
        .await?
        {
            let project_paused = super::store::setting(&mut *tx, r.project_id)
                .await?
                .is_some_and(|s| s.paused);
            if !project_paused {
                let to = r.resume_to.unwrap_or(RunState::Planning);
                super::store::transition(
                    &mut tx,
                    r.id,
                    r.state,
                    to,
                    None,
                    "the autopilot was resumed for every project",
                    actor,
                    &now,
                )
                .await?;
                moved.push(r.id);
            }
        }
    }
    crate::activity::store::record(
        &mut tx,
        actor,
        if paused { "pause" } else { "resume" },
        "autopilot",
        None,
        &json!({"runs": moved}),
        &now,
    )
    .await?;
    tx.commit().await?;
    for id in &moved {
        announce(state, *id);
    }
    let held = if paused {
        super::hold::hold(state, actor, &moved, cancel_tasks).await?
    } else {
        super::hold::Held::default()
    };
    Ok((moved.len(), held))
}

/// Proposed milestones and suggestions of a project waiting on a person.
pub async fn proposals(state: &AppState, project_id: i64) -> RunResult<i64> {
    let (milestones, suggestions) =
        crate::planning::store::pending_counts(&state.db, Some(project_id)).await?;
    Ok(milestones + suggestions)
}

pub async fn detail(state: &AppState, id: i64) -> RunResult<RunDetail> {
    let run = super::store::get_run(&state.db, id)
        .await?
        .ok_or(AutopilotError::NotFound("run"))?;
    let project_name = crate::tracking::store::get_project(&state.db, run.project_id)
        .await?
        .map(|p| p.name)
        .unwrap_or_default();
    let (cost_usd, llm_requests) = super::runner::spent(state, &run).await?;
    Ok(RunDetail {
        items: super::work::items(&state.db, id).await?,
        gates: super::work::gates(&state.db, id).await?,
        cost_usd,
        llm_requests,
        transitions: super::store::transitions(&state.db, id).await?,
        steps: super::store::steps(&state.db, id).await?,
        proposals: proposals(state, run.project_id).await?,
        project_name,
        run,
    })
}

/// `GET /api/autopilot/health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// The runner loop is up (on this replica) and has ticked.
    pub loop_alive: bool,
    /// Its ticks since this server started.
    pub loop_ticks: u64,
    pub loop_panics: u64,
    pub paused_globally: bool,
    pub runs_by_state: std::collections::BTreeMap<String, i64>,
    /// Working runs not moved for [`STUCK_AFTER_MINUTES`].
    pub stuck_runs: Vec<i64>,
    /// When a run last moved (any run).
    pub last_move_at: Option<String>,
    /// Each unfinished run's LLM budget: spent and left (null: no budget).
    pub budgets: Vec<BudgetLeft>,
    /// Change requests and deploy gates waiting on a person.
    pub pending_gates: i64,
    pub projects: Vec<ProjectAutopilot>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BudgetLeft {
    pub run_id: i64,
    pub state: RunState,
    pub spent_usd: f64,
    pub budget_usd: Option<f64>,
    pub left_usd: Option<f64>,
}

pub const STUCK_AFTER_MINUTES: i64 = 30;

pub async fn health(state: &AppState) -> RunResult<Health> {
    let now = state.clock.now();
    let loop_state = state
        .loops
        .snapshot()
        .remove(super::runner::LOOP_NAME)
        .unwrap_or_default();
    let before = crate::clock::format(now - time::Duration::minutes(STUCK_AFTER_MINUTES));
    let mut budgets = Vec::new();
    let recent =
        super::store::list_runs(&state.db, &super::store::RunFilter::default(), 200, 0).await?;
    let last_move_at = recent.iter().map(|r| r.updated_at.clone()).max();
    for r in recent.into_iter().filter(|r| !r.state.is_final()) {
        let (spent, _) = super::runner::spent(state, &r).await?;
        budgets.push(BudgetLeft {
            run_id: r.id,
            state: r.state,
            spent_usd: spent,
            budget_usd: r.constraints.budget_usd,
            left_usd: r.constraints.budget_usd.map(|b| (b - spent).max(0.0)),
        });
    }
    Ok(Health {
        last_move_at,
        budgets,
        pending_gates: super::work::pending_gates(&state.db, 10_000).await?.len() as i64,
        loop_alive: loop_state.status == "up" && loop_state.ticks > 0,
        loop_ticks: loop_state.ticks,
        loop_panics: loop_state.panics,
        paused_globally: super::store::globally_paused(&state.db).await?,
        runs_by_state: super::store::state_counts(&state.db)
            .await?
            .into_iter()
            .collect(),
        stuck_runs: super::store::stuck_runs(&state.db, &before).await?,
        projects: super::store::settings(&state.db).await?,
    })
}
