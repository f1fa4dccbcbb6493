//! The lease protocol: claim (with long-poll), heartbeat, complete, fail, release, and the
//! reaper's recovery of expired leases.

use super::*;
use crate::events::Topic;
use crate::tasks::store::ClaimSpec;

// ---- the lease protocol ----

/// The node, types and tags a claim leases for.
async fn claim_target(
    state: &TaskState,
    req: &ClaimRequest,
) -> Result<(String, Vec<String>, Vec<String>)> {
    // A claim that names its types and tags needs only the worker's node, which never changes
    // (see TaskRuntime::worker_node): skip the worker SELECT once it is known.
    let known = match (&req.types, &req.tags) {
        (Some(types), Some(tags)) => state
            .tasks
            .worker_node(req.worker_id)
            .map(|node| (node, types.clone(), tags.clone())),
        _ => None,
    };
    let (node, types, tags) = match known {
        Some(k) => k,
        None => {
            let worker = store::get_worker(&state.db, req.worker_id)
                .await?
                .ok_or_else(|| {
                    invalid(
                        "worker_id",
                        format!(
                            "worker {} is not registered (POST /api/workers/register)",
                            req.worker_id
                        ),
                    )
                })?
                .view(state.clock.now());
            state.tasks.remember_worker_node(worker.id, &worker.node);
            (
                worker.node,
                req.types.clone().unwrap_or(worker.types),
                req.tags.clone().unwrap_or(worker.tags),
            )
        }
    };
    Ok((node, types, tags))
}

/// Leases the best eligible task, waiting up to `wait_s` for one to become claimable.
pub async fn claim(state: &TaskState, mut req: ClaimRequest) -> Result<ClaimResponse> {
    req.validate()?;
    let (node, types, tags) = claim_target(state, &req).await?;
    let lease = std::time::Duration::from_secs(
        u64::try_from(req.lease_s.unwrap_or(DEFAULT_LEASE_S)).unwrap_or(60),
    );
    let wait = std::time::Duration::from_secs_f64(req.wait_s.unwrap_or(0.0));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Listen before looking, so a task enqueued between the look and the wait still wakes us.
        let woken = state.tasks.claimable();
        tokio::pin!(woken);
        woken.as_mut().enable();

        let now = state.clock.now();
        let now_s = crate::clock::format(now);
        let token = uuid::Uuid::new_v4().simple().to_string();
        let job = std::sync::Arc::new((
            req.worker_id,
            node.clone(),
            types.clone(),
            tags.clone(),
            token,
            later(now, lease),
            now_s.clone(),
            req.max_tasks.unwrap_or(1),
        ));
        let claimed = state
            .tasks
            .writer()
            .run(&state.db, move |conn| {
                let job = job.clone();
                Box::pin(async move {
                    let (worker_id, node, types, tags, token, expires, now_s, limit) = &*job;
                    store::claim_next(
                        conn,
                        &ClaimSpec {
                            worker_id: *worker_id,
                            node,
                            types,
                            tags,
                            lease_token: token,
                            lease_expires_at: expires,
                            now: now_s,
                            limit: *limit,
                        },
                    )
                    .await
                })
            })
            .await?;
        // Answer as soon as anything is leased; a batch is never held back to fill up.
        if !claimed.is_empty() {
            state.events.emit_many(Topic::Tasks, "running");
            let tasks: Vec<ClaimedTask> = claimed
                .into_iter()
                .map(|(task, lease_token)| ClaimedTask { task, lease_token })
                .collect();
            return Ok(ClaimResponse {
                task: tasks.first().cloned(),
                // Only a claim that asked for a batch gets the list (the answer to a plain
                // claim keeps its original shape).
                tasks: if req.max_tasks.is_some() {
                    tasks
                } else {
                    Vec::new()
                },
            });
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(ClaimResponse::default());
        }
        // Also wake when a delayed task or a backoff falls due.
        let mut until = left;
        if let Some(due) = store::next_due(&state.db, &now_s)
            .await?
            .as_deref()
            .and_then(crate::clock::parse)
        {
            let in_ms = (due - state.clock.now()).whole_milliseconds().max(1);
            until = until.min(std::time::Duration::from_millis(
                u64::try_from(in_ms).unwrap_or(1),
            ));
        }
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep(until) => {}
        }
    }
}

/// Extends a live lease.
pub async fn heartbeat(state: &TaskState, id: i64, req: LeaseRequest) -> Result<Lease> {
    let lease_s = req.lease_s.unwrap_or(DEFAULT_LEASE_S);
    if !(MIN_LEASE_S..=MAX_LEASE_S).contains(&lease_s) {
        return Err(invalid(
            "lease_s",
            format!("lease_s must be between {MIN_LEASE_S} and {MAX_LEASE_S}"),
        )
        .into());
    }
    let now = state.clock.now();
    let expires = crate::clock::format(now + time::Duration::seconds(lease_s));
    let job = std::sync::Arc::new((req.lease_token, expires, crate::clock::format(now)));
    let extended = state
        .tasks
        .writer()
        .run(&state.db, move |conn| {
            let job = job.clone();
            Box::pin(async move {
                let (token, expires, now) = &*job;
                store::extend_lease(conn, id, token, expires, now).await
            })
        })
        .await?;
    match extended {
        Some(lease_expires_at) => Ok(Lease {
            task_id: id,
            lease_expires_at,
        }),
        None => Err(lease_lost(state, id).await),
    }
}

pub async fn complete(state: &TaskState, id: i64, mut req: CompleteRequest) -> Result<TaskOutcome> {
    check_report(req.output.as_deref(), req.duration_ms, req.result.as_ref())?;
    let next = req.next.take();
    let one = CompletedTask {
        id,
        lease_token: req.lease_token,
        result: req.result,
        output: req.output,
        exit_code: req.exit_code,
        duration_ms: req.duration_ms,
    };
    let (done, leased) = complete_in_one_transaction(state, vec![one], next, false).await?;
    state.events.emit(Topic::Tasks, "completed", id);
    if !done.first().copied().unwrap_or(false) {
        return Err(lease_lost(state, id).await);
    }
    Ok(TaskOutcome {
        id,
        status: TaskStatus::Completed,
        run_after: None,
        next: leased,
    })
}

/// `POST /api/tasks/complete`: every result whose lease is live is completed, the others are
/// refused one by one (their tasks are unchanged), all in one transaction with the `next`
/// claim.
pub async fn complete_batch(state: &TaskState, batch: CompleteBatch) -> Result<BatchOutcome> {
    batch.validate()?;
    let ids: Vec<i64> = batch.results.iter().map(|r| r.id).collect();
    let (done, next) = complete_in_one_transaction(state, batch.results, batch.next, true).await?;
    state.events.emit_many(Topic::Tasks, "completed");
    let mut out = BatchOutcome {
        next,
        ..BatchOutcome::default()
    };
    for (id, ok) in ids.into_iter().zip(done) {
        if ok {
            out.completed.push(id);
        } else {
            let error = match lease_lost(state, id).await {
                TaskError::Db(e) => return Err(TaskError::Db(e)),
                e => e.to_string(),
            };
            out.refused.push(RefusedResult { id, error });
        }
    }
    Ok(out)
}

/// Completes each result whose lease is live (true) and leaves the others alone (false), then
/// runs the `next` claim, in one group-committed transaction: several workers' completions
/// share it too (db::group_commit). Unless `lease_despite_refusals`, a refused result leases
/// nothing (a single completion's refusal is an error answer, which carries no `next`).
async fn complete_in_one_transaction(
    state: &TaskState,
    results: Vec<CompletedTask>,
    next: Option<ClaimRequest>,
    lease_despite_refusals: bool,
) -> Result<(Vec<bool>, Vec<ClaimedTask>)> {
    let now = state.clock.now();
    let now_s = crate::clock::format(now);
    let next = match next {
        Some(mut n) => {
            n.validate()
                .map_err(|e| invalid(format!("next.{}", e.field), e.message))?;
            if n.wait_s.is_some_and(|w| w > 0.0) {
                return Err(invalid(
                    "next.wait_s",
                    "a claim made with a completion never waits: leave wait_s out",
                )
                .into());
            }
            let (node, types, tags) = claim_target(state, &n).await?;
            let lease = std::time::Duration::from_secs(
                u64::try_from(n.lease_s.unwrap_or(DEFAULT_LEASE_S)).unwrap_or(60),
            );
            Some((
                n.worker_id,
                node,
                types,
                tags,
                uuid::Uuid::new_v4().simple().to_string(),
                later(now, lease),
                n.max_tasks.unwrap_or(1),
            ))
        }
        None => None,
    };
    let job = std::sync::Arc::new((results, now_s, next));
    let (done, leased) = state
        .tasks
        .writer()
        .run(&state.db, move |conn| {
            let job = job.clone();
            Box::pin(async move {
                let (results, now, next) = &*job;
                let mut done = Vec::with_capacity(results.len());
                for r in results {
                    let report = Report {
                        result: r.result.as_ref(),
                        output: r.output.as_deref(),
                        error: None,
                        exit_code: r.exit_code,
                        duration_ms: r.duration_ms,
                    };
                    // The attempt row comes with it (migration 0010's trigger).
                    done.push(
                        store::complete_leased(conn, r.id, &r.lease_token, &report, now).await?,
                    );
                }
                let refused = done.iter().any(|ok| !ok);
                let leased = match next {
                    Some((worker_id, node, types, tags, token, expires, limit))
                        if lease_despite_refusals || !refused =>
                    {
                        store::claim_next(
                            conn,
                            &ClaimSpec {
                                worker_id: *worker_id,
                                node,
                                types,
                                tags,
                                lease_token: token,
                                lease_expires_at: expires,
                                now,
                                limit: *limit,
                            },
                        )
                        .await?
                    }
                    _ => Vec::new(),
                };
                Ok((done, leased))
            })
        })
        .await?;
    Ok((
        done,
        leased
            .into_iter()
            .map(|(task, lease_token)| ClaimedTask { task, lease_token })
            .collect(),
    ))
}

/// Where a failed or expired attempt sends the task: back to the queue (with `delay`) while
/// retries remain, else `dead`; `failed` when the worker said retrying cannot help.
fn after_failure(
    taken: &Taken,
    retryable: bool,
    delay: std::time::Duration,
) -> (TaskStatus, Option<std::time::Duration>) {
    if !retryable {
        (TaskStatus::Failed, None)
    } else if taken.attempts <= taken.max_retries {
        (TaskStatus::Pending, Some(delay))
    } else {
        (TaskStatus::Dead, None)
    }
}

pub async fn fail(state: &TaskState, id: i64, req: FailRequest) -> Result<TaskOutcome> {
    check_report(req.output.as_deref(), req.duration_ms, None)?;
    let error = keep_tail(req.error.trim(), MAX_ERROR);
    if error.is_empty() {
        return Err(invalid("error", "error must say what went wrong").into());
    }
    let now = state.clock.now();
    let now_s = crate::clock::format(now);
    let report = Report {
        result: None,
        output: req.output.as_deref(),
        error: Some(&error),
        exit_code: req.exit_code,
        duration_ms: req.duration_ms,
    };
    let moved = {
        let _gate = state.tasks.write_gate().await;
        let mut tx = crate::db::begin_write(&state.db).await?;
        let Some(taken) = store::take_lease(&mut tx, id, Some(&req.lease_token), &now_s).await?
        else {
            drop(tx);
            return Err(lease_lost(state, id).await);
        };
        let delay = retry_delay(taken.attempts, rand::random::<f64>());
        let (status, delay) = after_failure(&taken, req.retryable.unwrap_or(true), delay);
        let run_after = delay.map(|d| later(now, d));
        store::insert_attempt(&mut tx, id, &taken, AttemptOutcome::Failed, &report, &now_s).await?;
        store::move_task(
            &mut tx,
            id,
            &Move {
                status,
                run_after: run_after.as_deref(),
                finished_at: status.is_final().then_some(now_s.as_str()),
                report: report.clone(),
                reset_attempts: false,
                uncount_attempt: false,
            },
            &now_s,
        )
        .await?;
        tx.commit().await?;
        TaskOutcome {
            id,
            status,
            run_after,
            next: Vec::new(),
        }
    };
    state.events.emit(Topic::Tasks, moved.status.as_str(), id);
    if moved.status == TaskStatus::Pending {
        // Waiters re-read when the retry falls due.
        state.tasks.wake_claimers();
    }
    Ok(moved)
}

/// Gives a task back without counting the attempt (a worker shutting down).
pub async fn release(state: &TaskState, id: i64, req: LeaseRequest) -> Result<TaskOutcome> {
    let now_s = state.clock.now_str();
    {
        let _gate = state.tasks.write_gate().await;
        let mut tx = crate::db::begin_write(&state.db).await?;
        let Some(taken) = store::take_lease(&mut tx, id, Some(&req.lease_token), &now_s).await?
        else {
            drop(tx);
            return Err(lease_lost(state, id).await);
        };
        let report = Report {
            error: Some("released by the worker (shutting down)"),
            ..Report::default()
        };
        store::insert_attempt(
            &mut tx,
            id,
            &taken,
            AttemptOutcome::Released,
            &report,
            &now_s,
        )
        .await?;
        store::move_task(
            &mut tx,
            id,
            &Move {
                status: TaskStatus::Pending,
                run_after: Some(&now_s),
                finished_at: None,
                report: Report::default(),
                reset_attempts: false,
                uncount_attempt: true,
            },
            &now_s,
        )
        .await?;
        tx.commit().await?;
    }
    state.tasks.wake_claimers();
    state.events.emit(Topic::Tasks, "pending", id);
    Ok(TaskOutcome {
        id,
        status: TaskStatus::Pending,
        run_after: Some(now_s),
        next: Vec::new(),
    })
}

/// The lease reaper's work: every running task whose lease ran out goes back to the queue at
/// once (its worker died or hung; the task itself may be fine) with an `expired` attempt, or to
/// `dead` when that was its last try. Safe to run anywhere, any number of times: each move is
/// guarded by `lease_expires_at < now`.
pub async fn reap_expired(state: &TaskState) -> Result<usize> {
    let now = state.clock.now_str();
    let ids = store::expired_leases(&state.db, &now, 500).await?;
    let mut requeued = 0;
    for id in ids {
        let _gate = state.tasks.write_gate().await;
        let mut tx = crate::db::begin_write(&state.db).await?;
        let Some(taken) = store::take_lease(&mut tx, id, None, &now).await? else {
            continue; // answered or reaped meanwhile
        };
        let error = format!(
            "lease expired: worker {} stopped answering",
            taken
                .worker_id
                .map(|w| w.to_string())
                .unwrap_or_else(|| "?".into())
        );
        let report = Report {
            error: Some(&error),
            ..Report::default()
        };
        let (status, _) = after_failure(&taken, true, std::time::Duration::ZERO);
        store::insert_attempt(&mut tx, id, &taken, AttemptOutcome::Expired, &report, &now).await?;
        store::move_task(
            &mut tx,
            id,
            &Move {
                status,
                run_after: Some(&now),
                finished_at: status.is_final().then_some(now.as_str()),
                report,
                reset_attempts: false,
                uncount_attempt: false,
            },
            &now,
        )
        .await?;
        tx.commit().await?;
        state.events.emit(Topic::Tasks, status.as_str(), id);
        requeued += 1;
    }
    // Also covers delayed tasks that fell due while the clock was moved by hand.
    if requeued > 0 || store::any_due(&state.db, &now).await? {
        state.tasks.wake_claimers();
    }
    Ok(requeued)
}
