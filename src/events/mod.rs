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
//! in between. The list cache (`http::cache`) and the credential caches (`auth::token_cache`,
//! through [`Events::credential_changes`]) key their entries on it.
//!
//! On PostgreSQL several `serve` replicas may share one database: [`replicas`] sends every
//! emit to the others (`pg_notify`) and re-emits theirs here ([`Events::on_remote`] hooks wake
//! this replica's long-polls). While that channel is not known to be complete (before its first
//! `LISTEN`, after a lost connection) the versions are *unsynced*: every read of one moves it,
//! so no cache serves or keeps anything (see [`Events::version`]).

pub mod api;
pub mod replicas;

use serde::Serialize;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{broadcast, mpsc, watch};

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
        /// Internal, never streamed to watchers: a token, session or user changed, so cached
        /// credentials may be wrong (`auth::token_cache`).
        Access = "access",
        /// Internal: a node command was queued or finished (`nodes::runtime`: the agents'
        /// long-polls and result waiters of other replicas wake on it).
        NodeCommands = "node_commands",
    }
}

impl Topic {
    /// Whether `GET /api/events` may stream it: not the internal topics, which say nothing a
    /// page shows.
    pub fn watchable(self) -> bool {
        !matches!(self, Topic::Access | Topic::NodeCommands)
    }
}

/// One change: `topic`, what happened to it (`created`, `updated`, `deleted`, `dead`, ...)
/// and the id of the row (or the session's name). The action is text the code wrote
/// (`&'static str`), or the same text as another replica sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub topic: Topic,
    pub action: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Called with each event another replica announced (after its version was bumped here).
pub type RemoteHook = Arc<dyn Fn(&Event) + Send + Sync>;

/// The broadcast side, one per server (in `AppState`). Cheap to clone.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
    /// Turns true when the server shuts down: open streams end, so a graceful shutdown is
    /// not held up by browsers that keep their pages open.
    closing: watch::Sender<bool>,
    /// One counter per topic (in `Topic::ALL` order), bumped by every emit of it.
    versions: Arc<[AtomicU64]>,
    /// False while events of other replicas may be missed (see the module doc): then every
    /// [`version`](Events::version) read moves the counter. Always true without replicas.
    synced: Arc<AtomicBool>,
    /// Bumped by [`resync`](Events::resync): open streams tell their watcher to refetch.
    resyncs: watch::Sender<u64>,
    /// This process's events on their way to the other replicas (set by [`replicas::start`]).
    outbox: Arc<OnceLock<mpsc::Sender<Event>>>,
    /// Set when the outbox was full and an event was not sent: the next message tells the
    /// other replicas to resync.
    outbox_lost: Arc<AtomicBool>,
    /// Run for every event of another replica (the long-polls' wake-ups).
    remote_hooks: Arc<Mutex<Vec<RemoteHook>>>,
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
            synced: Arc::new(AtomicBool::new(true)),
            resyncs: watch::Sender::new(0),
            outbox: Arc::default(),
            outbox_lost: Arc::default(),
            remote_hooks: Arc::default(),
        }
    }

    /// Announces a committed change. Never blocks; with no watcher it is a no-op.
    pub fn emit(&self, topic: Topic, action: &'static str, id: impl ToString) {
        self.send(Event {
            topic,
            action: Cow::Borrowed(action),
            id: Some(id.to_string()),
        });
    }

    /// Announces a change of many rows of `topic` at once (a batch, a sweep).
    pub fn emit_many(&self, topic: Topic, action: &'static str) {
        self.send(Event {
            topic,
            action: Cow::Borrowed(action),
            id: None,
        });
    }

    /// How many changes of `topic` were announced so far (see the module's doc). Moves
    /// only forward; equal before and after a read means no change of `topic` was announced
    /// while it ran. While unsynced (another replica's events may be missed) every call moves
    /// it, so a reader never finds it unchanged and caches neither serve nor keep.
    pub fn version(&self, topic: Topic) -> u64 {
        let v = &self.versions[topic_index(topic)];
        if self.synced.load(Ordering::SeqCst) {
            v.load(Ordering::SeqCst)
        } else {
            v.fetch_add(1, Ordering::SeqCst) + 1
        }
    }

    fn send(&self, event: Event) {
        if let Some(outbox) = self.outbox.get() {
            if outbox.try_send(event.clone()).is_err() {
                // Full (the database is slow or away) or closed: the others must resync.
                self.outbox_lost.store(true, Ordering::SeqCst);
            }
        }
        self.publish(event);
    }

    /// Bumps the event's topic and tells this process's watchers.
    fn publish(&self, event: Event) {
        // Bumped before anyone hears of the change, and only after it committed (`emit`'s
        // contract): a cached answer read before the commit is never served after the bump.
        self.versions[topic_index(event.topic)].fetch_add(1, Ordering::SeqCst);
        // An error only means nobody is watching.
        let _ = self.tx.send(event);
    }

    /// An event another replica committed and announced: here as if emitted here, plus the
    /// [`on_remote`](Self::on_remote) hooks; never sent on.
    fn receive(&self, event: Event) {
        self.publish(event.clone());
        let hooks = self.remote_hooks.lock().unwrap_or_else(|p| p.into_inner());
        for hook in hooks.iter() {
            hook(&event);
        }
    }

    /// Runs `hook` for every event another replica announces (a long-poll's wake-up: this
    /// process's own changes wake their waiters directly).
    pub fn on_remote(&self, hook: RemoteHook) {
        self.remote_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// Events may have been missed: every topic's version moves (every cache entry is
    /// dropped), every open stream gets a `resync`, and every remote hook runs once per topic
    /// (waiters re-check).
    fn resync(&self) {
        for v in self.versions.iter() {
            v.fetch_add(1, Ordering::SeqCst);
        }
        self.resyncs.send_modify(|n| *n = n.wrapping_add(1));
        let hooks = self.remote_hooks.lock().unwrap_or_else(|p| p.into_inner());
        for topic in Topic::ALL {
            let ev = Event {
                topic: *topic,
                action: Cow::Borrowed("resync"),
                id: None,
            };
            for hook in hooks.iter() {
                hook(&ev);
            }
        }
    }

    /// See the module doc: while false, versions move on every read.
    fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::SeqCst);
    }

    /// False while events of other replicas may be missed (caches then answer nothing).
    pub fn in_sync(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// Changes whenever open streams must tell their watchers to refetch everything.
    pub fn resyncs(&self) -> watch::Receiver<u64> {
        self.resyncs.subscribe()
    }

    /// The version source and the announcement of the credential caches
    /// (`auth::token_cache`): the [`Topic::Access`] version, and an `access` emit, which
    /// reaches every replica.
    pub fn credential_changes(&self) -> crate::auth::token_cache::Changes {
        let (read, announce) = (self.clone(), self.clone());
        crate::auth::token_cache::Changes::new(
            Arc::new(move || read.version(Topic::Access)),
            Arc::new(move || announce.emit_many(Topic::Access, "changed")),
        )
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
    let watchable = || Topic::ALL.iter().copied().filter(|t| t.watchable());
    let Some(list) = list.map(str::trim).filter(|l| !l.is_empty()) else {
        return Ok(watchable().collect());
    };
    let mut out = Vec::new();
    for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let topic: Topic = t
            .parse()
            .ok()
            .filter(|t: &Topic| t.watchable())
            .ok_or_else(|| {
                let names: Vec<&str> = watchable().map(Topic::as_str).collect();
                format!("unknown topic '{t}'; expected one of: {}", names.join(", "))
            })?;
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
        assert_eq!(parse_topics(None).unwrap().len(), Topic::ALL.len() - 2);
        assert!(!parse_topics(None).unwrap().contains(&Topic::Access));
        assert!(parse_topics(Some("access")).is_err(), "internal");
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
            (a.topic, a.action.as_ref(), a.id.as_deref()),
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

    /// While another replica's events may be missed, no reader ever sees a version twice:
    /// a cache keyed on it neither serves nor keeps anything.
    #[test]
    fn unsynced_versions_move_on_every_read() {
        let bus = Events::new();
        let v = bus.version(Topic::Work);
        assert_eq!(bus.version(Topic::Work), v, "synced: stable");
        bus.set_synced(false);
        let a = bus.version(Topic::Work);
        assert_ne!(bus.version(Topic::Work), a);
        bus.set_synced(true);
        let b = bus.version(Topic::Work);
        assert!(b > a);
        assert_eq!(bus.version(Topic::Work), b);
        // A resync moves every topic and tells the streams.
        let resyncs = bus.resyncs();
        let errors = bus.version(Topic::Errors);
        bus.resync();
        assert_eq!(bus.version(Topic::Errors), errors + 1);
        assert!(resyncs.has_changed().unwrap());
    }
}
