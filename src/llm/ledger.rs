//! The cost ledger's write-behind buffer. A gateway request pushes its row into memory (one
//! short mutex section, no I/O) and the ledger loop writes batches in one transaction every
//! [`super::LEDGER_FLUSH_EVERY`]. Nothing is lost on a graceful shutdown: every gateway request
//! holds an [`InFlight`] guard, and the loop waits for them to finish before its last flush.
//! A failed write puts the batch back for the next tick.

use super::{Format, Nanos, ProviderId};
use crate::db::Db;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How a gateway request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Every provider failed.
    Failed,
    /// The provider refused the request as the caller's mistake.
    ClientError,
    /// A stream broke after its first byte reached the client.
    Cut,
    /// Refused by the gateway itself (budget spent).
    Refused,
    /// The client went away before the answer was complete.
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::ClientError => "client_error",
            Outcome::Cut => "cut",
            Outcome::Refused => "refused",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One ledger row.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub at: String,
    pub provider: Option<ProviderId>,
    pub model: String,
    pub requested_model: String,
    pub format: Format,
    pub caller_token_id: Option<i64>,
    pub caller: String,
    pub project: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_nanos: Nanos,
    pub estimated: bool,
    pub outcome: Outcome,
    pub status: u16,
    pub latency_ms: u64,
    pub stream: bool,
    pub failovers: u32,
    pub error: Option<String>,
}

/// One move from a failed provider to the next.
#[derive(Debug, Clone)]
pub struct FailoverEvent {
    pub at: String,
    pub from: ProviderId,
    pub to: Option<ProviderId>,
    pub kind: &'static str,
    pub reason: String,
    pub caller_token_id: Option<i64>,
    pub project: Option<String>,
}

#[derive(Default)]
struct Pending {
    rows: Vec<LedgerRow>,
    events: Vec<FailoverEvent>,
}

/// The buffer plus the count of gateway requests in flight.
#[derive(Default)]
pub struct Ledger {
    pending: Mutex<Pending>,
    /// Held by a flush from taking the buffer until its write committed (or was put back), so
    /// a reader that flushes before it sums (the summaries) also waits for a batch the ledger
    /// loop took a moment earlier: it never sums without rows recorded before it asked.
    flushing: tokio::sync::Mutex<()>,
    in_flight: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

/// Held by a gateway request until its row is recorded (streams: until the stream ends).
pub struct InFlight {
    count: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

impl Ledger {
    pub fn begin(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            count: self.in_flight.clone(),
            idle: self.idle.clone(),
        }
    }

    pub fn record(&self, row: LedgerRow, events: Vec<FailoverEvent>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.rows.push(row);
        p.events.extend(events);
    }

    pub fn is_empty(&self) -> bool {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.rows.is_empty() && p.events.is_empty()
    }

    /// Waits until no gateway request is in flight, at most `max`.
    pub async fn wait_idle(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            let notified = self.idle.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(
                    in_flight = self.in_flight.load(Ordering::SeqCst),
                    "llm ledger: gave up waiting for in-flight requests"
                );
                break;
            }
        }
    }

    /// Writes everything buffered in one transaction; returns the number of ledger rows.
    pub async fn flush(&self, db: &Db) -> Result<usize, sqlx::Error> {
        let _flushing = self.flushing.lock().await;
        let batch = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *p)
        };
        if batch.rows.is_empty() && batch.events.is_empty() {
            return Ok(0);
        }
        let n = batch.rows.len();
        match super::store::insert_batch(db, &batch.rows, &batch.events).await {
            Ok(()) => Ok(n),
            Err(e) => {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let mut rows = batch.rows;
                rows.append(&mut p.rows);
                p.rows = rows;
                let mut events = batch.events;
                events.append(&mut p.events);
                p.events = events;
                Err(e)
            }
        }
    }
}
