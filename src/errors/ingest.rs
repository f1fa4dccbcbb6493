//! The ingest writer: one task owns every write of new occurrences.
//!
//! Requests put their validated [`ErrorEvent`] on a bounded queue with a oneshot for the
//! answer and wait. The writer takes everything queued (up to [`MAX_BATCH`]), folds it per
//! group (one count, node and hour update per group, at most [`SAMPLES_PER_BATCH`] raw samples
//! per group), writes it in ONE transaction and, only after the commit returned, answers every
//! request of the batch. So an acknowledged event is in the database (SQLite WAL: it survives
//! the process being killed), and under load the cost of a commit is shared by every event
//! that arrived while the previous one ran (group commit): no timer, no added latency when
//! idle. A failed batch answers all of its requests with an error and leaves nothing behind.
//!
//! Raw samples: every occurrence of a group is kept until the group has [`Ingest`]'s sample
//! size; after that, at most one per [`SAMPLE_INTERVAL`] per group, so a flood of one error
//! refreshes its sample without writing every event's text. In memory the writer keeps, per
//! group, how many samples it wrote and when, and prunes a group back to its sample size after
//! [`PRUNE_EVERY`] new ones. It holds one pooled connection for its whole life, so SQLite's page
//! cache for these tables stays warm.
//!
//! Why this is not a job of `db::group_commit` (the task queue's writer) is written there; it
//! shares that writer's protocol and its panic rule: a batch whose write panics is answered
//! with [`IngestError::WriteFailed`], the panic is logged and counted under the writer's name
//! ([`WRITER`]), and the writer goes on with the next batch.

use super::{hour_of, store, ErrorEvent, SAMPLES_PER_BATCH};
use crate::db::Db;
use crate::events::Topic;
use sqlx::pool::PoolConnection;
use sqlx::Any;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Events queued at most; past it new reports are refused (503) rather than buffered
/// without bound. Far above what the HTTP server keeps in flight.
pub const QUEUE: usize = 65_536;
/// Events per transaction at most, so one commit stays short for everyone else.
pub const MAX_BATCH: usize = 4_096;
/// A group is pruned back to its sample size after this many new samples.
pub const PRUNE_EVERY: u32 = 50;
/// Groups remembered for sampling and pruning; forgotten ones start over (and over-long
/// samples are caught by the retention loop).
const MAX_TRACKED: usize = 100_000;
/// Once a group's sample is full, a new raw occurrence is kept at most this often.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// A batch touching more groups than this is announced as one event for all of them.
const MAX_GROUP_EVENTS: usize = 64;

/// This writer's name in logs and metrics.
pub const WRITER: &str = "error_ingest_writer";

/// What the writer remembers about one group.
#[derive(Default)]
struct Tracked {
    /// Samples written since this writer started (saturating).
    written: u32,
    /// Samples written since the group was last pruned.
    since_prune: u32,
    last_sample: Option<Instant>,
}

/// The writer's state between batches.
struct Writer {
    db: Db,
    /// Where a committed batch is announced (one `errors` event per group it touched).
    events: crate::events::Events,
    /// Held across batches (warm page cache); dropped after an error and taken again.
    conn: Option<PoolConnection<Any>>,
    groups: HashMap<i64, Tracked>,
    keep: i64,
    /// Tests: a batch holding an event of this fingerprint panics.
    #[cfg(test)]
    panic_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    #[error("the error queue is full; retry shortly")]
    QueueFull,
    #[error("the server is shutting down")]
    Stopped,
    #[error("storing the error failed; retry shortly")]
    WriteFailed,
}

struct Submission {
    event: ErrorEvent,
    reply: oneshot::Sender<Result<i64, IngestError>>,
}

/// The queue in front of the writer.
pub struct Ingest {
    tx: mpsc::Sender<Submission>,
    /// Taken by the writer when `serve` spawns it.
    rx: Mutex<Option<mpsc::Receiver<Submission>>>,
    samples_per_group: i64,
}

impl Ingest {
    pub fn new(samples_per_group: u32) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Ingest {
            tx,
            rx: Mutex::new(Some(rx)),
            samples_per_group: i64::from(samples_per_group),
        }
    }

    /// Queues one event and waits until it is committed. Returns its group's id.
    pub async fn submit(&self, event: ErrorEvent) -> Result<i64, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Submission { event, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => IngestError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => IngestError::Stopped,
            })?;
        // A dropped reply means the writer stopped before this batch: not stored.
        answer.await.unwrap_or(Err(IngestError::Stopped))
    }

    /// Starts the writer (once; later calls return `None`). It stops on `shutdown` after
    /// writing what is queued.
    pub fn spawn_writer(
        &self,
        db: Db,
        events: crate::events::Events,
        shutdown: watch::Receiver<bool>,
    ) -> Option<JoinHandle<()>> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        let w = Writer {
            db,
            events,
            conn: None,
            groups: HashMap::new(),
            keep: self.samples_per_group,
            #[cfg(test)]
            panic_on: None,
        };
        Some(tokio::spawn(run_writer(w, rx, shutdown)))
    }
}

async fn run_writer(
    mut w: Writer,
    mut rx: mpsc::Receiver<Submission>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch: Vec<Submission> = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            biased;
            s = rx.recv() => s,
            _ = shutdown.changed() => None,
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        w.write_and_answer(&mut batch).await;
    }
    // Stopping: refuse new events, write the ones already queued.
    rx.close();
    while let Ok(s) = rx.try_recv() {
        batch.push(s);
        if batch.len() == MAX_BATCH {
            w.write_and_answer(&mut batch).await;
        }
    }
    w.write_and_answer(&mut batch).await;
    tracing::debug!("error ingest writer stopped");
}

/// One group's share of a batch.
struct Fold<'a> {
    first: usize,
    last: usize,
    count: i64,
    stack: Option<&'a str>,
    nodes: Vec<(&'a str, i64, &'a str, &'a str)>,
    hours: Vec<(&'a str, i64)>,
    samples: Vec<usize>,
}

impl Writer {
    async fn write_and_answer(&mut self, batch: &mut Vec<Submission>) {
        if batch.is_empty() {
            return;
        }
        let events: Vec<&ErrorEvent> = batch.iter().map(|s| &s.event).collect();
        let result = crate::db::group_commit::catch_panic(WRITER, self.write_batch(&events))
            .await
            .unwrap_or_else(|panic| {
                Err(sqlx::Error::Protocol(format!(
                    "the batch panicked: {panic}"
                )))
            });
        metrics::histogram!("errors_batch_events").record(batch.len() as f64);
        match result {
            Ok(ids) => {
                metrics::counter!("errors_ingested_total").increment(batch.len() as u64);
                let mut groups = ids.clone();
                groups.sort_unstable();
                groups.dedup();
                if groups.len() > MAX_GROUP_EVENTS {
                    self.events.emit_many(Topic::Errors, "occurred");
                } else {
                    for id in groups {
                        self.events.emit(Topic::Errors, "occurred", id);
                    }
                }
                for (s, id) in batch.drain(..).zip(ids) {
                    let _ = s.reply.send(Ok(id));
                }
            }
            Err(e) => {
                // A fresh connection next time, in case this one is the problem.
                self.conn = None;
                tracing::error!(error = %e, events = batch.len(), "writing a batch of errors failed");
                metrics::counter!("errors_rejected_total", "reason" => "write_failed")
                    .increment(batch.len() as u64);
                for s in batch.drain(..) {
                    let _ = s.reply.send(Err(IngestError::WriteFailed));
                }
            }
        }
    }

    /// Which of a group's batch samples to write now (the newest `n` of them).
    fn samples_to_write(&mut self, id: i64, offered: usize, now: Instant) -> usize {
        if self.groups.len() >= MAX_TRACKED && !self.groups.contains_key(&id) {
            self.groups.clear();
        }
        let keep = u32::try_from(self.keep).unwrap_or(u32::MAX);
        let t = self.groups.entry(id).or_default();
        let n = if t.written < keep {
            offered
        } else if t
            .last_sample
            .is_none_or(|l| now.saturating_duration_since(l) >= SAMPLE_INTERVAL)
        {
            offered.min(1)
        } else {
            0
        };
        if n > 0 {
            t.written = t.written.saturating_add(n as u32);
            t.since_prune += n as u32;
            t.last_sample = Some(now);
        }
        n
    }

    /// Writes a batch in one transaction; returns each event's group id, in order.
    async fn write_batch(&mut self, events: &[&ErrorEvent]) -> Result<Vec<i64>, sqlx::Error> {
        #[cfg(test)]
        if let Some(fp) = &self.panic_on {
            if events.iter().any(|e| &e.fingerprint == fp) {
                panic!("injected: a batch with {fp}");
            }
        }
        let mut order: Vec<&str> = Vec::new();
        let mut folds: HashMap<&str, Fold<'_>> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let f = folds.entry(e.fingerprint.as_str()).or_insert_with(|| {
                order.push(e.fingerprint.as_str());
                Fold {
                    first: i,
                    last: i,
                    count: 0,
                    stack: None,
                    nodes: Vec::new(),
                    hours: Vec::new(),
                    samples: Vec::new(),
                }
            });
            f.last = i;
            f.count += 1;
            if let Some(s) = e.stack_trace.as_deref() {
                f.stack = Some(s);
            }
            match f.nodes.iter_mut().find(|n| n.0 == e.node_id) {
                Some(n) => {
                    n.1 += 1;
                    n.3 = &e.received_at;
                }
                None => f
                    .nodes
                    .push((&e.node_id, 1, &e.received_at, &e.received_at)),
            }
            let hour = hour_of(&e.received_at);
            match f.hours.iter_mut().find(|h| h.0 == hour) {
                Some(h) => h.1 += 1,
                None => f.hours.push((hour, 1)),
            }
            if f.samples.len() == SAMPLES_PER_BATCH {
                f.samples.remove(0);
            }
            f.samples.push(i);
        }

        // Every writer (one per replica) takes the rows it locks in the same order, groups by
        // fingerprint and each group's node and hour rows by key: two replicas writing the same
        // groups at once then wait for each other instead of deadlocking.
        order.sort_unstable();
        for f in folds.values_mut() {
            f.nodes.sort_unstable_by(|a, b| a.0.cmp(b.0));
            f.hours.sort_unstable();
        }
        let deltas: Vec<store::GroupDelta<'_>> = order
            .iter()
            .map(|fp| {
                let f = &folds[fp];
                store::GroupDelta {
                    latest: events[f.last],
                    first_seen: &events[f.first].received_at,
                    count: f.count,
                    stack_trace: f.stack,
                }
            })
            .collect();
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self.db.acquire().await?,
        };
        let answer = self
            .write_folded(&mut conn, events, &order, &folds, &deltas)
            .await?;
        // Only a connection that just committed is kept; after an error it goes back to the pool.
        self.conn = Some(conn);
        Ok(answer)
    }

    async fn write_folded(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        events: &[&ErrorEvent],
        order: &[&str],
        folds: &HashMap<&str, Fold<'_>>,
        deltas: &[store::GroupDelta<'_>],
    ) -> Result<Vec<i64>, sqlx::Error> {
        let mut tx = crate::db::begin_write_on(conn).await?;
        let ids: HashMap<String, i64> = store::record_batch_groups(&mut tx, deltas)
            .await?
            .into_iter()
            .collect();
        let now = Instant::now();
        let mut nodes = Vec::new();
        let mut hours = Vec::new();
        let mut samples = Vec::new();
        let mut due = Vec::new();
        for fp in order {
            let f = &folds[fp];
            let Some(&id) = ids.get(*fp) else {
                continue;
            };
            nodes.extend(
                f.nodes
                    .iter()
                    .map(|(node_id, count, first_seen, last_seen)| store::NodeDelta {
                        error_id: id,
                        node_id,
                        count: *count,
                        first_seen,
                        last_seen,
                    }),
            );
            hours.extend(f.hours.iter().map(|(hour, n)| (id, *hour, *n)));
            let n = self.samples_to_write(id, f.samples.len(), now);
            samples.extend(
                f.samples[f.samples.len() - n..]
                    .iter()
                    .map(|&i| (id, events[i])),
            );
            if let Some(t) = self.groups.get_mut(&id) {
                if t.since_prune >= PRUNE_EVERY {
                    due.push(id);
                    t.since_prune = 0;
                }
            }
        }
        store::add_node_counts(&mut tx, &nodes).await?;
        store::add_hour_counts(&mut tx, &hours).await?;
        store::insert_occurrences(&mut tx, &samples).await?;
        if !due.is_empty() {
            store::prune_samples_of(&mut tx, &due, self.keep).await?;
        }
        // Every group of the batch came back from the upsert; anything else is a bug, and the
        // batch is rolled back and answered as failed rather than with a wrong id.
        let answer = events
            .iter()
            .map(|e| {
                ids.get(e.fingerprint.as_str())
                    .copied()
                    .ok_or(sqlx::Error::RowNotFound)
            })
            .collect::<Result<Vec<i64>, sqlx::Error>>()?;
        tx.commit().await?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str) -> ErrorEvent {
        super::super::NewErrorReport {
            node_id: "web-1".into(),
            error_type: "KeyError".into(),
            message: message.into(),
            source: "api".into(),
            ..Default::default()
        }
        .into_event("2026-11-26T13:00:00.000000Z")
        .expect("event")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_batch_is_answered_with_an_error_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::open_sqlite(dir.path()).await.expect("open");
        crate::db::migrate(&db).await.expect("migrate");
        let bad = event("boom");
        let (tx, rx) = mpsc::channel(QUEUE);
        let ingest = Ingest {
            tx,
            rx: Mutex::new(None),
            samples_per_group: 10,
        };
        let w = Writer {
            db: db.clone(),
            events: crate::events::Events::new(),
            conn: None,
            groups: HashMap::new(),
            keep: 10,
            panic_on: Some(bad.fingerprint.clone()),
        };
        let (stop, shutdown) = watch::channel(false);
        let writer = tokio::spawn(run_writer(w, rx, shutdown));
        assert_eq!(ingest.submit(bad).await, Err(IngestError::WriteFailed));
        let id = ingest
            .submit(event("fine"))
            .await
            .expect("the writer still serves");
        let n: i64 = sqlx::query_scalar("SELECT occurrences FROM errors WHERE id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .expect("group");
        assert_eq!(n, 1);
        let groups: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM errors")
            .fetch_one(&db)
            .await
            .expect("count");
        assert_eq!(groups, 1, "the panicking batch left nothing behind");
        stop.send(true).expect("stop");
        writer
            .await
            .expect("the writer ended on shutdown, not by a panic");
    }
}
