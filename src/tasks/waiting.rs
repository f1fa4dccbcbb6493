//! Why a pending task is not being claimed, in words an operator can act on: no worker online
//! for its type, none of them with the `exec` capability a built-in type needs, none on the
//! task's node or offering its tags, every matching one busy, or the task is not due yet.
//!
//! The rules mirror the claim (`store::claim_next`: type, node, tags) and the worker's own
//! refusal of built-in types without `exec` (`payload::BuiltinType::needs_exec`). The reason is
//! computed on every read from the workers' current state, never stored, so it can never
//! disagree with the Workers page.

use super::payload::BuiltinType;
use super::{store, Task, TaskStatus, Worker, WorkerCapability, WorkerState};
use crate::tasks::TaskState;
use std::collections::HashMap;

/// Workers looked at per explanation; a fleet larger than this is not a first-hour problem.
const MAX_WORKERS: i64 = 1000;

/// Sets `waiting_reason` on every pending task of `tasks` (one workers read for all of them).
pub async fn annotate(state: &TaskState, tasks: &mut [Task]) -> Result<(), sqlx::Error> {
    if !tasks.iter().any(|t| t.status == TaskStatus::Pending) {
        return Ok(());
    }
    let now = state.clock.now();
    let workers: Vec<Worker> = store::list_workers(&state.db, MAX_WORKERS, 0)
        .await?
        .into_iter()
        .map(|r| r.view(now))
        .collect();
    let running: HashMap<i64, i64> = store::running_per_worker(&state.db)
        .await?
        .into_iter()
        .collect();
    for t in tasks.iter_mut() {
        t.waiting_reason = reason(t, &workers, &running, now);
    }
    Ok(())
}

/// Why `task` waits, or `None` when it is not pending or a free matching worker exists (it
/// takes the task at its next claim).
pub fn reason(
    task: &Task,
    workers: &[Worker],
    running: &HashMap<i64, i64>,
    now: time::OffsetDateTime,
) -> Option<String> {
    if task.status != TaskStatus::Pending {
        return None;
    }
    if crate::clock::parse(&task.run_after).is_some_and(|due| due > now) {
        let why = if task.attempts > 0 {
            "a retry after a failure"
        } else {
            "run_after"
        };
        return Some(format!("not due until {} ({why})", task.run_after));
    }
    let ty = task.task_type.as_str();
    let needs_exec = ty.parse::<BuiltinType>().is_ok_and(BuiltinType::needs_exec);
    let start_hint = if needs_exec {
        "start one with `architect worker --allow-exec`".to_string()
    } else {
        format!("start a worker that handles '{ty}'")
    };
    let has_exec = |w: &&Worker| w.capabilities.contains(&WorkerCapability::Exec);
    let online: Vec<&Worker> = workers
        .iter()
        .filter(|w| w.state == WorkerState::Online)
        .collect();
    let of_type: Vec<&Worker> = online
        .iter()
        .copied()
        .filter(|w| w.types.is_empty() || w.types.iter().any(|t| t == ty))
        .collect();
    if of_type.is_empty() {
        if needs_exec && !online.is_empty() && !online.iter().any(has_exec) {
            return Some(format!(
                "no online worker has the exec capability a '{ty}' task needs ({start_hint})"
            ));
        }
        return Some(format!("no worker online for type '{ty}' ({start_hint})"));
    }
    let capable: Vec<&Worker> = if needs_exec {
        of_type.iter().copied().filter(has_exec).collect()
    } else {
        of_type
    };
    if capable.is_empty() {
        return Some(format!(
            "no online worker has the exec capability a '{ty}' task needs ({start_hint})"
        ));
    }
    let on_node: Vec<&Worker> = capable
        .into_iter()
        .filter(|w| task.node.as_deref().is_none_or(|n| n == w.node))
        .collect();
    if on_node.is_empty() {
        return Some(format!(
            "no online worker for type '{ty}' on node '{}'",
            task.node.as_deref().unwrap_or_default()
        ));
    }
    let tagged: Vec<&Worker> = on_node
        .into_iter()
        .filter(|w| task.tags.iter().all(|t| w.tags.contains(t)))
        .collect();
    if tagged.is_empty() {
        return Some(format!(
            "no online worker for type '{ty}' offers the tags {}",
            task.tags.join(", ")
        ));
    }
    let busy = tagged
        .iter()
        .filter(|w| running.get(&w.id).copied().unwrap_or(0) >= w.concurrency)
        .count();
    if busy == tagged.len() {
        return Some(format!(
            "all {busy} matching worker{} busy",
            if busy == 1 { " is" } else { "s are" }
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(ty: &str) -> Task {
        Task {
            id: 1,
            task_type: ty.into(),
            payload: serde_json::json!({}),
            priority: 0,
            status: TaskStatus::Pending,
            max_retries: 3,
            attempts: 0,
            timeout_s: 60,
            run_after: "2030-01-01T00:00:00.000000Z".into(),
            tags: Vec::new(),
            node: None,
            project_id: None,
            worker_id: None,
            lease_expires_at: None,
            started_at: None,
            finished_at: None,
            result: None,
            output: None,
            error: None,
            exit_code: None,
            duration_ms: None,
            created_by: "t".into(),
            created_at: String::new(),
            updated_at: String::new(),
            waiting_reason: None,
        }
    }

    fn worker(id: i64, types: &[&str], exec: bool) -> Worker {
        Worker {
            id,
            name: format!("w{id}"),
            node: "n1".into(),
            types: types.iter().map(|t| t.to_string()).collect(),
            tags: vec!["gpu".into()],
            capabilities: if exec {
                vec![WorkerCapability::Exec]
            } else {
                Vec::new()
            },
            concurrency: 1,
            pid: None,
            version: None,
            state: WorkerState::Online,
            registered_at: String::new(),
            last_heartbeat_at: String::new(),
            heartbeat_age_s: 0,
            stopped_at: None,
        }
    }

    fn now() -> time::OffsetDateTime {
        crate::clock::parse("2030-01-01T00:00:01.000000Z").unwrap()
    }

    fn why(t: &Task, ws: &[Worker], running: &[(i64, i64)]) -> String {
        reason(t, ws, &running.iter().copied().collect(), now()).unwrap_or_default()
    }

    #[test]
    fn each_reason_names_what_is_missing() {
        let shell = task("shell");
        assert!(why(&shell, &[], &[]).starts_with("no worker online for type 'shell'"));
        assert!(why(&shell, &[], &[]).contains("--allow-exec"));
        let custom_only = worker(1, &["report"], false);
        assert!(why(&shell, std::slice::from_ref(&custom_only), &[])
            .starts_with("no online worker has the exec"));
        let mut offline = worker(2, &["shell"], true);
        offline.state = WorkerState::Offline;
        assert!(why(&shell, &[offline], &[]).starts_with("no worker online for type 'shell'"));
        let execless_shell = worker(3, &["shell"], false);
        assert!(why(&shell, &[execless_shell], &[]).starts_with("no online worker has the exec"));
        let good = worker(4, &["shell"], true);
        assert_eq!(
            reason(&shell, std::slice::from_ref(&good), &HashMap::new(), now()),
            None
        );
        assert_eq!(
            why(&shell, std::slice::from_ref(&good), &[(4, 1)]),
            "all 1 matching worker is busy"
        );
        let mut elsewhere = shell.clone();
        elsewhere.node = Some("n2".into());
        assert_eq!(
            why(&elsewhere, std::slice::from_ref(&good), &[]),
            "no online worker for type 'shell' on node 'n2'"
        );
        let mut tagged = shell.clone();
        tagged.tags = vec!["arm".into()];
        assert_eq!(
            why(&tagged, std::slice::from_ref(&good), &[]),
            "no online worker for type 'shell' offers the tags arm"
        );
        let mut later = shell.clone();
        later.run_after = "2030-01-01T00:05:00.000000Z".into();
        assert!(why(&later, std::slice::from_ref(&good), &[]).starts_with("not due until"));
        let mut running = shell;
        running.status = TaskStatus::Running;
        assert_eq!(reason(&running, &[], &HashMap::new(), now()), None);
        // A custom type needs no exec; an any-type worker takes it.
        assert_eq!(
            reason(&task("report"), &[custom_only], &HashMap::new(), now()),
            None
        );
    }
}
