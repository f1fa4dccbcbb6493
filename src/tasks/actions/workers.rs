//! Worker registration, heartbeats and status; project commands.

use super::*;

// ---- workers ----

pub async fn register_worker(
    state: &TaskState,
    actor: &str,
    mut input: RegisterWorker,
) -> Result<Worker> {
    input.validate()?;
    let now = state.clock.now_str();
    let _gate = state.tasks.write_gate().await;
    let mut tx = crate::db::begin_write(&state.db).await?;
    let row = store::upsert_worker(&mut tx, &input, actor, &now).await?;
    log(
        &mut tx,
        actor,
        "register",
        "worker",
        row.id,
        json!({"name": row.name, "node": row.node, "types": input.types, "capabilities": input.capabilities}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Workers, "registered", row.id);
    Ok(row.view(state.clock.now()))
}

pub async fn worker_heartbeat(state: &TaskState, id: i64, hb: WorkerHeartbeat) -> Result<Worker> {
    let now = state.clock.now_str();
    let found = {
        let _gate = state.tasks.write_gate().await;
        store::record_heartbeat(&state.db, id, hb.stopping, &now).await?
    };
    if !found {
        return Err(TaskError::NotFound("worker"));
    }
    if hb.stopping {
        state
            .events
            .emit(crate::events::Topic::Workers, "stopping", id);
    }
    store::get_worker(&state.db, id)
        .await?
        .map(|w| w.view(state.clock.now()))
        .ok_or(TaskError::NotFound("worker"))
}

pub async fn workers_overview(state: &TaskState) -> Result<WorkersOverview> {
    let now = state.clock.now();
    let since = crate::clock::format(now - time::Duration::minutes(THROUGHPUT_WINDOW_MIN));
    let rows = store::list_workers(&state.db, 1000, 0).await?;
    let counts = store::worker_counts(&state.db, &since).await?;
    let running = store::running_tasks(&state.db).await?;
    let workers = rows
        .into_iter()
        .map(|r| {
            let w = r.view(now);
            let (completed, failed, recent) = counts
                .iter()
                .find(|c| c.0 == w.id)
                .map(|c| (c.1, c.2, c.3))
                .unwrap_or((0, 0, 0));
            let current_tasks = running
                .iter()
                .filter(|(wid, _)| *wid == w.id)
                .map(|(_, t)| t.clone())
                .collect();
            WorkerStatus {
                worker: w,
                current_tasks,
                completed,
                failed,
                throughput_per_min: recent as f64 / THROUGHPUT_WINDOW_MIN as f64,
            }
        })
        .collect();
    Ok(WorkersOverview {
        workers,
        queue: store::status_counts(&state.db).await?,
        supervised: super::super::supervisor::statuses(state).await?,
    })
}

// ---- project commands ----

async fn project_source(state: &TaskState, project_id: i64) -> Result<Option<String>> {
    crate::tracking::store::get_project(&state.db, project_id)
        .await?
        .map(|p| p.source_path)
        .ok_or(TaskError::NotFound("project"))
}

pub async fn project_commands(state: &TaskState, project_id: i64) -> Result<ProjectCommands> {
    let source_path = project_source(state, project_id).await?;
    let mut c = store::get_commands(&state.db, project_id)
        .await?
        .unwrap_or(ProjectCommands {
            project_id,
            ..ProjectCommands::default()
        });
    c.source_path = source_path;
    Ok(c)
}

pub async fn set_project_commands(
    state: &TaskState,
    actor: &str,
    project_id: i64,
    mut input: SetProjectCommands,
) -> Result<ProjectCommands> {
    input.validate()?;
    let source_path = project_source(state, project_id).await?;
    let now = state.clock.now_str();
    let mut c = {
        let _gate = state.tasks.write_gate().await;
        let mut tx = crate::db::begin_write(&state.db).await?;
        let c = store::set_commands(&mut tx, project_id, &input, &now).await?;
        log(
            &mut tx,
            actor,
            "set_commands",
            "project",
            project_id,
            json!({"test": c.test_command, "build": c.build_command, "deploy": c.deploy_command,
                   "rollback": c.rollback_command}),
            &now,
        )
        .await?;
        tx.commit().await?;
        c
    };
    c.source_path = source_path;
    Ok(c)
}
