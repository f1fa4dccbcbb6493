//! Live events: what changed, for the dashboard's open pages and any other watcher.
//!
//! Domains call [`Events::emit`] after a change is committed (never inside a transaction that
//! may still roll back). An event names a topic, an action and the id of what changed, nothing
//! more: a watcher that wants the new state reads it through the API with its own rights, so
//! an event can never show a principal more than its reads would. `GET /api/events` serves
//! them as server-sent events, filtered by the topics a page asks for.
//!
//! The bus is an in-process broadcast channel. A watcher that falls behind by more than
//! [`CAPACITY`] events gets one `resync` event instead of the ones it missed, and refetches.
//!
//! Each topic also has a version ([`Events::version`]), bumped by every emit of that topic
//! *before* the event is sent: a reader that took the version before it read the database
//! and finds it unchanged afterwards knows no committed change of that topic was announced
//! in between. The list cache (`http::cache`) keys its entries on it.

pub mod api;

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// Events buffered per watcher before a slow one is told to resync.
pub const CAPACITY: usize = 1024;

crate::text_enum! {
    /// What kind of thing changed.
    pub enum Topic ("topic") {
        Sessions = "sessions",
        Prompts = "prompts",
        Interactions = "interactions",
        Errors = "errors",
        Tasks = "tasks",
        Workers = "workers",
        Nodes = "nodes",
        /// A node's heartbeat with fresh metrics (frequent: only the Nodes panel wants it).
        Metrics = "metrics",
        Runs = "runs",
        Work = "work",
    }
}

/// One change: `topic`, what happened to it (`created`, `updated`, `deleted`, `dead`, ...)
/// and the id of the row (or the session's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub topic: Topic,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The broadcast side, one per server (in `AppState`). Cheap to clone.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
    /// Turns true when the server shuts down: open streams end, so a graceful shutdown is
    /// not held up by browsers that keep their pages open.
    closing: watch::Sender<bool>,
    /// One counter per topic (in `Topic::ALL` order), bumped by every emit of it.
    versions: Arc<[AtomicU64]>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Events {
            tx,
            closing: watch::Sender::new(false),
            versions: Topic::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Announces a committed change. Never blocks; with no watcher it is a no-op.
    pub fn emit(&self, topic: Topic, action: &'static str, id: impl ToString) {
        self.send(Event {
            topic,
            action,
            id: Some(id.to_string()),
        });
    }

    /// Announces a change of many rows of `topic` at once (a batch, a sweep).
    pub fn emit_many(&self, topic: Topic, action: &'static str) {
        self.send(Event {
            topic,
            action,
            id: None,
        });
    }

    /// How many changes of `topic` were announced so far (see the module's doc). Moves
    /// only forward; equal before and after a read means no change of `topic` was announced
    /// while it ran.
    pub fn version(&self, topic: Topic) -> u64 {
        self.versions[topic_index(topic)].load(Ordering::SeqCst)
    }

    fn send(&self, event: Event) {
        // Bumped before anyone hears of the change, and only after it committed (`emit`'s
        // contract): a cached answer read before the commit is never served after the bump.
        self.versions[topic_index(event.topic)].fetch_add(1, Ordering::SeqCst);
        // An error only means nobody is watching.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Ends every open stream (server shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Completes once [`close`](Self::close) was called (at once if it already was).
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Watchers connected now (for tests and metrics).
    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }
}

fn topic_index(topic: Topic) -> usize {
    // `Topic::ALL` lists every variant, so the position is always found.
    Topic::ALL.iter().position(|t| *t == topic).unwrap_or(0)
}

/// The topics a watcher asked for: a comma-separated list (`errors,tasks`); empty or absent
/// means all. An unknown topic is an error naming the valid ones.
pub fn parse_topics(list: Option<&str>) -> Result<Vec<Topic>, String> {
    let Some(list) = list.map(str::trim).filter(|l| !l.is_empty()) else {
        return Ok(Topic::ALL.to_vec());
    };
    let mut out = Vec::new();
    for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let topic: Topic = t.parse()?;
        if !out.contains(&topic) {
            out.push(topic);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_name_the_valid_ones() {
        assert_eq!(parse_topics(None).unwrap().len(), Topic::ALL.len());
        assert_eq!(
            parse_topics(Some("errors, tasks,errors")).unwrap(),
            vec![Topic::Errors, Topic::Tasks]
        );
        let e = parse_topics(Some("errors,bogus")).unwrap_err();
        assert!(e.contains("'bogus'") && e.contains("sessions"), "{e}");
    }

    #[tokio::test]
    async fn a_watcher_gets_what_is_emitted_after_it_subscribed() {
        let bus = Events::new();
        bus.emit(Topic::Errors, "created", 1); // nobody watching: dropped
        let mut rx = bus.subscribe();
        bus.emit(Topic::Tasks, "dead", 7);
        bus.emit_many(Topic::Nodes, "updated");
        let a = rx.recv().await.unwrap();
        assert_eq!(
            (a.topic, a.action, a.id.as_deref()),
            (Topic::Tasks, "dead", Some("7"))
        );
        let b = rx.recv().await.unwrap();
        assert_eq!((b.topic, b.id), (Topic::Nodes, None));
        assert_eq!(bus.watchers(), 1);
    }

    #[test]
    fn each_emit_moves_its_topics_version_only() {
        let bus = Events::new();
        let (work, errors) = (bus.version(Topic::Work), bus.version(Topic::Errors));
        bus.emit(Topic::Work, "project", 1); // nobody watching: still counted
        bus.emit_many(Topic::Work, "updated");
        assert_eq!(bus.version(Topic::Work), work + 2);
        assert_eq!(bus.version(Topic::Errors), errors);
        // Clones share the counters (handlers hold clones of the state).
        let clone = bus.clone();
        clone.emit(Topic::Errors, "created", 3);
        assert_eq!(bus.version(Topic::Errors), errors + 1);
    }
}
