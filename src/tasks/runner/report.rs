//! The worker's reporter: completions that finish together go to the control plane in one
//! request, which also leases the freed slots' next tasks; with retries while it is away.

use super::*;

/// A completed task waiting for the reporter.
pub(super) struct Finished {
    pub(super) done: CompletedTask,
    /// Lease a next task for this slot with the report.
    pub(super) want_next: bool,
    pub(super) reply: oneshot::Sender<(Ran, Option<ClaimedTask>)>,
}

/// The worker's reporter: takes whatever completions are waiting (up to
/// [`MAX_COMPLETE_BATCH`]), sends them in one `POST /api/tasks/complete` whose `next` leases a
/// task for each slot that wants one, and answers each slot. Nobody waits for a batch to fill:
/// a lone completion goes at once, and batches form only while a report is in flight.
pub(super) async fn report_completions(
    client: Client,
    next_claim: ClaimRequest,
    worker_id: Arc<std::sync::atomic::AtomicI64>,
    lease_s: i64,
    mut rx: mpsc::UnboundedReceiver<Finished>,
) {
    let mut batch: Vec<Finished> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_COMPLETE_BATCH {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let wanting = batch.iter().filter(|f| f.want_next).count();
        let req = CompleteBatch {
            results: batch.iter().map(|f| f.done.clone()).collect(),
            next: (wanting > 0).then(|| ClaimRequest {
                worker_id: worker_id.load(Ordering::SeqCst),
                max_tasks: Some(wanting as i64),
                ..next_claim.clone()
            }),
        };
        let what = format!("{} completion(s)", batch.len());
        let answer = with_retries(lease_s, &what, || client.complete_tasks(&req)).await;
        let Some(answer) = answer else {
            for f in batch.drain(..) {
                let _ = f.reply.send((Ran::Lost, None));
            }
            continue;
        };
        for r in &answer.refused {
            tracing::warn!(task_id = r.id, error = %r.error, "report refused");
        }
        let completed: std::collections::HashSet<i64> = answer.completed.into_iter().collect();
        let mut next = answer.next.into_iter();
        for f in batch.drain(..) {
            let ran = if completed.contains(&f.done.id) {
                tracing::info!(
                    task_id = f.done.id,
                    duration_ms = f.done.duration_ms,
                    "task completed"
                );
                Ran::Completed
            } else {
                Ran::Lost
            };
            let n = if f.want_next { next.next() } else { None };
            if let Some(n) = &n {
                tracing::info!(task_id = n.task.id, task_type = %n.task.task_type, attempt = n.task.attempts, "claimed");
            }
            let _ = f.reply.send((ran, n));
        }
    }
}

/// Sends a report, retrying transport errors while a lease of `lease_s` from now may still be
/// live; `None` when the server refused it (a 4xx: retrying cannot help) or time ran out.
pub(super) async fn with_retries<T, F, Fut>(lease_s: i64, what: &str, send: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now() + Duration::from_secs(u64::try_from(lease_s).unwrap_or(60));
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match send().await {
            Ok(v) => return Some(v),
            Err(e @ ClientError::Api { .. }) => {
                tracing::warn!(report = what, error = %e, "report refused");
                return None;
            }
            Err(e) if Instant::now() < deadline => {
                let wait = backoff.next_delay().min(deadline - Instant::now());
                tracing::warn!(report = what, error = %e, "report failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                tracing::warn!(report = what, error = %e, "report failed; giving up (the lease will run out)");
                return None;
            }
        }
    }
}
