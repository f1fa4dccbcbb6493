//! One claimed task on a worker slot: running its handler with heartbeats, and what it
//! hands the reporter when it ends.

use super::*;

/// What a slot needs to run its claimed tasks to their reports (a clone per slot).
#[derive(Clone)]
pub(super) struct Job {
    pub(super) client: Client,
    pub(super) registry: Arc<Registry>,
    pub(super) settings: Arc<HandlerSettings>,
    pub(super) lease_s: i64,
    /// Turns true when the worker's shutdown grace is over.
    pub(super) stop: watch::Receiver<bool>,
    /// Turns true when the worker stops claiming.
    pub(super) draining: watch::Receiver<bool>,
    /// Completions go to the worker's reporter (see [`report_completions`]).
    pub(super) reports: mpsc::UnboundedSender<Finished>,
}

impl Job {
    /// Runs one task to its report; also returns the task its completion leased, if any.
    pub(super) async fn run(&self, claimed: ClaimedTask) -> (Ran, Option<ClaimedTask>) {
        let id = claimed.task.id;
        let token = claimed.lease_token.clone();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let cancel_tx = Arc::new(cancel_tx);
        let lost = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let every = Duration::from_secs_f64(self.lease_s as f64 / 3.0).min(TASK_HEARTBEAT_MAX);
        let beat = {
            let (client, token, lost, cancel) = (
                self.client.clone(),
                token.clone(),
                lost.clone(),
                cancel_tx.clone(),
            );
            let lease_s = self.lease_s;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match client.heartbeat_task(id, &token, lease_s).await {
                        Ok(_) => {}
                        Err(e) if matches!(e.status(), Some(404 | 409)) => {
                            tracing::warn!(task_id = id, error = %e, "lease lost: stopping the task");
                            lost.store(true, Ordering::SeqCst);
                            let _ = cancel.send(true);
                            return;
                        }
                        Err(e) => tracing::warn!(task_id = id, error = %e, "task heartbeat failed"),
                    }
                }
            })
        };
        let stopper = {
            let (stop, stopped, cancel) = (self.stop.clone(), stopped.clone(), cancel_tx.clone());
            tokio::spawn(async move {
                fired(stop).await;
                stopped.store(true, Ordering::SeqCst);
                let _ = cancel.send(true);
            })
        };
        let started = Instant::now();
        let ctx = TaskContext::new(
            &claimed,
            self.client.clone(),
            self.settings.clone(),
            cancel_rx.clone(),
        );
        let handler = self.registry.handle(ctx);
        tokio::pin!(handler);
        let result = tokio::select! {
            r = &mut handler => Some(r),
            _ = fired(cancel_rx) => tokio::time::timeout(HANDLER_GRACE, &mut handler).await.ok(),
        };
        beat.abort();
        stopper.abort();
        let duration_ms = Some(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
        if lost.load(Ordering::SeqCst) {
            return (Ran::Lost, None);
        }
        if stopped.load(Ordering::SeqCst) {
            let ran = match self.client.release_task(id, &token).await {
                Ok(_) => {
                    tracing::info!(task_id = id, "released at shutdown");
                    Ran::Released
                }
                Err(e) => {
                    tracing::warn!(task_id = id, error = %e, "release failed; the lease will run out");
                    Ran::Lost
                }
            };
            return (ran, None);
        }
        let result = result.unwrap_or_else(|| {
            Err(TaskFailure::retry(
                "the handler did not stop after its cancel signal",
            ))
        });
        self.report(id, &token, result, duration_ms).await
    }

    /// Sends the outcome: a completion through the worker's reporter (which also leases the
    /// slot's next task unless the worker is draining), a failure directly; transport errors
    /// are retried while the lease may still be live.
    async fn report(
        &self,
        id: i64,
        token: &str,
        result: HandlerResult,
        duration_ms: Option<i64>,
    ) -> (Ran, Option<ClaimedTask>) {
        let cap = |s: Option<String>| s.map(|o| keep_tail(&o, MAX_OUTPUT_BYTES));
        // A result the server would refuse (e.g. too large) must not sink the other results of
        // its batch: it is reported as this task's failure instead.
        let result = result.and_then(|s| {
            match check_report(s.output.as_deref(), duration_ms, s.result.as_ref()) {
                Ok(()) => Ok(s),
                Err(e) if e.field == "output" => Ok(s), // capped below
                Err(e) => Err(TaskFailure::permanent(format!(
                    "the handler's report was refused: {}",
                    e.message
                ))),
            }
        });
        let f = match result {
            Ok(s) => {
                let (reply, answer) = oneshot::channel();
                let finished = Finished {
                    done: CompletedTask {
                        id,
                        lease_token: token.to_string(),
                        result: s.result,
                        output: cap(s.output),
                        exit_code: s.exit_code,
                        duration_ms,
                    },
                    want_next: !*self.draining.borrow(),
                    reply,
                };
                if self.reports.send(finished).is_err() {
                    return (Ran::Lost, None);
                }
                return answer.await.unwrap_or((Ran::Lost, None));
            }
            Err(f) => f,
        };
        let req = FailRequest {
            lease_token: token.to_string(),
            error: f.error.clone(),
            output: cap(f.output),
            exit_code: f.exit_code,
            duration_ms,
            retryable: Some(f.retryable),
        };
        let sent = with_retries(self.lease_s, &format!("task {id}"), || {
            self.client.fail_task(id, &req)
        })
        .await;
        match sent {
            Some(o) => {
                tracing::info!(task_id = id, error = %f.error, next = %o.status, "task failed");
                (Ran::Failed, None)
            }
            None => (Ran::Lost, None),
        }
    }
}
