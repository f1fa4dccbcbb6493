//! The end of a run: counting what the slots did, and the graceful drain at shutdown.

use super::*;

/// Adds one slot's outcomes to `s`; a slot that panicked counts as one lost task.
pub(super) fn tally(s: &mut RunSummary, r: Result<Vec<Ran>, tokio::task::JoinError>) {
    let Ok(ran) = r else {
        s.lost += 1;
        return;
    };
    for r in ran {
        match r {
            Ran::Completed => s.completed += 1,
            Ran::Failed => s.failed += 1,
            Ran::Released => s.released += 1,
            Ran::Lost => s.lost += 1,
        }
    }
}

/// Counts the slots that already ended, without waiting.
pub(super) fn reap(running: &mut JoinSet<Vec<Ran>>, summary: &mut RunSummary) {
    while let Some(r) = running.try_join_next() {
        tally(summary, r);
    }
}

/// Shutdown, once the loop stopped claiming: `draining` tells the slots to lease no next task;
/// running tasks get `grace` to finish; then `stop` tells them to stop and release their leases,
/// and every slot is waited for. Each slot's outcomes are counted into `summary`. Returns
/// whether the grace ran out.
pub(super) async fn drain(
    running: &mut JoinSet<Vec<Ran>>,
    summary: &mut RunSummary,
    grace: Duration,
    draining: &watch::Sender<bool>,
    stop: &watch::Sender<bool>,
) -> bool {
    let _ = draining.send(true);
    // Count only tasks still running, not finished ones the loop has not reaped yet.
    reap(running, summary);
    tracing::info!(
        running = running.len(),
        grace_s = grace.as_secs(),
        "stopping: no new claims; letting running tasks finish"
    );
    let finish = async {
        while let Some(r) = running.join_next().await {
            tally(summary, r);
        }
    };
    if tokio::time::timeout(grace, finish).await.is_ok() {
        return false;
    }
    tracing::warn!("grace period over: stopping running tasks and releasing them");
    let _ = stop.send(true);
    while let Some(r) = running.join_next().await {
        tally(summary, r);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot that ends with `ran` once `stop` fires, or on its own after `after`.
    fn slot(
        running: &mut JoinSet<Vec<Ran>>,
        stop: &watch::Receiver<bool>,
        after: Option<Duration>,
        ran: fn() -> Vec<Ran>,
        stopped: fn() -> Vec<Ran>,
    ) {
        let stop = stop.clone();
        running.spawn(async move {
            match after {
                Some(d) => tokio::select! {
                    _ = tokio::time::sleep(d) => ran(),
                    _ = fired(stop) => stopped(),
                },
                None => {
                    fired(stop).await;
                    stopped()
                }
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_that_finish_within_the_grace_are_counted_and_never_stopped() {
        let (draining, draining_rx) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let mut running = JoinSet::new();
        let mut summary = RunSummary::default();
        let secs = Duration::from_secs;
        slot(
            &mut running,
            &stop_rx,
            Some(secs(1)),
            || vec![Ran::Completed, Ran::Completed],
            || vec![Ran::Released],
        );
        slot(
            &mut running,
            &stop_rx,
            Some(secs(5)),
            || vec![Ran::Failed],
            || vec![Ran::Released],
        );
        running.spawn(async { panic!("a slot that panics") });
        let over = drain(&mut running, &mut summary, secs(30), &draining, &stop).await;
        assert!(!over);
        assert!(
            *draining_rx.borrow(),
            "slots were told to lease no next task"
        );
        assert!(!*stop_rx.borrow());
        assert_eq!(
            summary,
            RunSummary {
                completed: 2,
                failed: 1,
                lost: 1,
                ..Default::default()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_still_running_after_the_grace_are_stopped_and_released() {
        let (draining, _draining_rx) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let mut running = JoinSet::new();
        let mut summary = RunSummary::default();
        let secs = Duration::from_secs;
        slot(
            &mut running,
            &stop_rx,
            Some(secs(1)),
            || vec![Ran::Completed],
            || vec![Ran::Released],
        );
        slot(&mut running, &stop_rx, None, Vec::new, || {
            vec![Ran::Completed, Ran::Released]
        });
        slot(&mut running, &stop_rx, Some(secs(3600)), Vec::new, || {
            vec![Ran::Lost]
        });
        let over = drain(&mut running, &mut summary, secs(10), &draining, &stop).await;
        assert!(over);
        assert!(*stop_rx.borrow());
        assert!(running.is_empty());
        assert_eq!(
            summary,
            RunSummary {
                completed: 2,
                released: 1,
                lost: 1,
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn slots_already_ended_are_reaped_without_waiting() {
        let mut running = JoinSet::new();
        let mut summary = RunSummary::default();
        running.spawn(async { vec![Ran::Completed] });
        running.spawn(std::future::pending::<Vec<Ran>>());
        for _ in 0..1000 {
            if summary.completed > 0 {
                break;
            }
            tokio::task::yield_now().await;
            reap(&mut running, &mut summary);
        }
        assert_eq!(summary.completed, 1);
        assert_eq!(running.len(), 1, "the pending slot is left running");
        running.abort_all();
    }
}
