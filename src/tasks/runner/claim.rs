//! The claim loop's steps, each small enough to test alone: which request to send (one per
//! batch of free slots), and what an answer means (run the tasks, register again, or wait).

use super::*;
use crate::backoff::Backoff;
use tokio::sync::OwnedSemaphorePermit;

/// What every claim of this worker asks for; only the worker id and the batch vary.
#[derive(Debug, Clone)]
pub(super) struct ClaimPlan {
    pub(super) types: Vec<String>,
    pub(super) tags: Vec<String>,
    pub(super) lease_s: i64,
    /// Long-poll length of a claim.
    pub(super) wait_s: f64,
}

impl ClaimPlan {
    /// The claim for `slots` free slots. `max_tasks` is left out for a single slot, so the
    /// request stays the plain claim.
    pub(super) fn claim(&self, worker_id: i64, slots: usize) -> ClaimRequest {
        ClaimRequest {
            wait_s: Some(self.wait_s),
            max_tasks: (slots > 1).then_some(slots as i64),
            ..self.next_claim(worker_id)
        }
    }

    /// The `next` claim a completion carries (no long-poll: the reporter sets its size).
    pub(super) fn next_claim(&self, worker_id: i64) -> ClaimRequest {
        ClaimRequest {
            worker_id,
            types: Some(self.types.clone()),
            tags: Some(self.tags.clone()),
            wait_s: None,
            lease_s: Some(self.lease_s),
            max_tasks: None,
        }
    }
}

/// `first` and every other slot free right now, at most [`MAX_CLAIM_BATCH`]: one claim for all
/// of them is a round trip per batch instead of per task. Permits not used by the answer go
/// back when dropped.
pub(super) fn free_slots(
    slots: &Arc<Semaphore>,
    first: OwnedSemaphorePermit,
) -> Vec<OwnedSemaphorePermit> {
    let mut permits = vec![first];
    while permits.len() < MAX_CLAIM_BATCH as usize {
        match slots.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    permits
}

/// What the loop does after a claim's answer.
#[derive(Debug)]
pub(super) enum Step {
    /// Run these tasks (possibly none: the long-poll ended empty), one per slot.
    Run(Vec<ClaimedTask>),
    /// The server no longer knows this worker (e.g. a fresh database): register again.
    Register,
    /// The claim failed; wait this long before the next.
    Retry(ClientError, Duration),
}

/// Reads a claim's answer. Tasks reset the backoff (an empty long-poll is no sign the server
/// is well again, nor that it is not: it leaves the backoff as it was); a failure advances it.
pub(super) fn step(answer: Result<ClaimResponse, ClientError>, backoff: &mut Backoff) -> Step {
    match answer {
        Ok(claim) => {
            let claimed = claim.into_tasks();
            if !claimed.is_empty() {
                backoff.reset();
            }
            Step::Run(claimed)
        }
        Err(ClientError::Api {
            status: 422,
            field: Some(f),
            ..
        }) if f == "worker_id" => Step::Register,
        Err(e) => {
            let wait = backoff.next_delay();
            Step::Retry(e, wait)
        }
    }
}

/// A slot: runs its claimed task, then each task a completion leased for it, until none is
/// leased; the slot's permit is given back at the end.
pub(super) async fn run_slot(
    job: Job,
    claimed: ClaimedTask,
    permit: OwnedSemaphorePermit,
) -> Vec<Ran> {
    tracing::info!(task_id = claimed.task.id, task_type = %claimed.task.task_type, attempt = claimed.task.attempts, "claimed");
    let mut ran = Vec::new();
    let mut task = Some(claimed);
    while let Some(t) = task.take() {
        let (r, next) = job.run(t).await;
        ran.push(r);
        task = next;
    }
    drop(permit);
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ClaimPlan {
        ClaimPlan {
            types: vec!["shell".into()],
            tags: vec!["gpu".into()],
            lease_s: 60,
            wait_s: 20.0,
        }
    }

    fn task(id: i64) -> ClaimedTask {
        let task = serde_json::from_value(serde_json::json!({
            "id": id, "type": "shell", "payload": {}, "priority": 0, "status": "running",
            "max_retries": 3, "attempts": 1, "timeout_s": 60, "run_after": "t", "tags": [],
            "created_by": "test", "created_at": "t", "updated_at": "t"
        }))
        .expect("task");
        ClaimedTask {
            task,
            lease_token: format!("lease-{id}"),
        }
    }

    fn api(status: u16, field: Option<&str>) -> ClientError {
        ClientError::Api {
            status,
            code: "invalid".into(),
            message: "no".into(),
            field: field.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn one_claim_asks_for_every_free_slot() {
        let slots = Arc::new(Semaphore::new(5));
        let busy = slots.clone().try_acquire_many_owned(2).expect("two busy");
        let first = slots.clone().acquire_owned().await.expect("first");
        let permits = free_slots(&slots, first);
        assert_eq!(permits.len(), 3, "the first free slot and the two others");
        assert_eq!(slots.available_permits(), 0);
        let req = plan().claim(7, permits.len());
        assert_eq!(req.max_tasks, Some(3));
        assert_eq!(
            (req.worker_id, req.wait_s, req.lease_s),
            (7, Some(20.0), Some(60))
        );
        assert_eq!(req.types.as_deref(), Some(&["shell".to_string()][..]));
        // Unused permits go back.
        drop(permits);
        drop(busy);
        assert_eq!(slots.available_permits(), 5);
        // A lone slot sends the plain claim; the completion's next claim does not long-poll.
        assert_eq!(plan().claim(7, 1).max_tasks, None);
        let next = plan().next_claim(8);
        assert_eq!(
            (next.worker_id, next.wait_s, next.max_tasks),
            (8, None, None)
        );
        assert_eq!(next.tags.as_deref(), Some(&["gpu".to_string()][..]));
    }

    #[test]
    fn a_claim_batch_is_capped() {
        let slots = Arc::new(Semaphore::new(MAX_CLAIM_BATCH as usize + 10));
        let first = slots.clone().try_acquire_owned().expect("first");
        assert_eq!(free_slots(&slots, first).len(), MAX_CLAIM_BATCH as usize);
    }

    #[test]
    fn an_unknown_worker_id_registers_again_and_other_refusals_back_off() {
        let mut b = Backoff::new(Duration::from_millis(500), MAX_BACKOFF);
        assert!(matches!(
            step(Err(api(422, Some("worker_id"))), &mut b),
            Step::Register
        ));
        for other in [api(422, Some("types")), api(422, None), api(503, None)] {
            assert!(matches!(step(Err(other), &mut b), Step::Retry(..)));
        }
    }

    #[test]
    fn tasks_reset_the_backoff_and_an_empty_claim_does_not() {
        let mut b = Backoff::new(Duration::from_millis(500), MAX_BACKOFF);
        let retry = |b: &mut Backoff| match step(Err(api(503, None)), b) {
            Step::Retry(_, wait) => wait,
            other => panic!("{other:?}"),
        };
        // The jitter factor is in [0.5, 1]: the fourth failure waits at least 0.5 * 4 s.
        for _ in 0..3 {
            retry(&mut b);
        }
        assert!(retry(&mut b) >= Duration::from_millis(2000));
        match step(Ok(ClaimResponse::default()), &mut b) {
            Step::Run(tasks) => assert!(tasks.is_empty()),
            other => panic!("{other:?}"),
        }
        assert!(
            retry(&mut b) >= Duration::from_millis(4000),
            "an empty long-poll keeps the backoff"
        );
        let two = ClaimResponse {
            task: Some(task(1)),
            tasks: vec![task(1), task(2)],
        };
        match step(Ok(two), &mut b) {
            Step::Run(tasks) => {
                assert_eq!(tasks.iter().map(|t| t.task.id).collect::<Vec<_>>(), [1, 2])
            }
            other => panic!("{other:?}"),
        }
        assert!(
            retry(&mut b) <= Duration::from_millis(500),
            "tasks reset it"
        );
    }
}
