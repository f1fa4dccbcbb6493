//! Events across `serve` replicas on one PostgreSQL database (issue 15).
//!
//! Every event this process emits is also sent to the others with `pg_notify` on
//! [`CHANNEL`] (after its commit: `emit` runs after the commit, and the sender is a task that
//! drains the outbox), and one listener per process (`PgListener`, `LISTEN` on the same
//! database) re-emits the other replicas' events here: their topic versions move (the list
//! cache and the credential caches drop what they hold), watchers of `GET /api/events` see
//! them, and the [`Events::on_remote`] hooks wake this replica's long-polls.
//!
//! The protocol, and why nothing is missed:
//!
//! * A message is small JSON: `{"o": origin, "e": [[topic, action, id], ...], "r": true?}`,
//!   several events per message (whatever was queued meanwhile), at most [`MAX_PAYLOAD`]
//!   bytes (PostgreSQL refuses 8000). `o` is this process's random id: a replica skips its own
//!   messages, whose events it already published.
//! * Until the listener's first `LISTEN` is active, and from the moment its connection is lost
//!   until a new one listens, the event versions are *unsynced* (see `Events::version`): no
//!   cache serves or keeps anything. When a `LISTEN` becomes active every version moves, every
//!   open stream gets `resync` and every hook runs ([`Events::resync`]): whatever was missed
//!   before is covered, whatever commits after is heard. Reconnects back off
//!   (`backoff::Backoff`). A connection that hears nothing for [`CHECK_EVERY`] is asked a
//!   `SELECT 1`, so a dead peer is noticed even when nothing is sent.
//! * The outbox is bounded ([`OUTBOX`]). An event that does not fit, or a message that could
//!   not be sent (the database away), sets a flag, and the next message says `"r": true`: the
//!   others resync, as after a lost connection of their own.
//!
//! On SQLite there is one process per database and nothing here runs.

use super::{Event, Events, Topic};
use crate::backoff::Backoff;
use crate::db::{Backend, Db};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::ConnectOptions;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

/// The `LISTEN`/`NOTIFY` channel (per database: replicas of other databases never meet).
pub const CHANNEL: &str = "architect_events";
/// Largest message sent, in bytes (PostgreSQL's limit is 8000).
pub const MAX_PAYLOAD: usize = 7000;
/// Events queued for sending before an emit gives up on one (and the others resync).
pub const OUTBOX: usize = 8192;
/// A listener that heard nothing this long checks its connection.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);
/// How long that check, or a connect, may take before the connection counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnect and resend backoff (`backoff::Backoff`): from this...
const RETRY_BASE: Duration = Duration::from_millis(200);
/// ...to this.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// One message on the channel.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Message {
    /// The sending process.
    o: String,
    /// The sender lost some of its events: every receiver resyncs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    r: bool,
    /// `(topic, action, id)` per event.
    #[serde(default)]
    e: Vec<(String, String, Option<String>)>,
}

/// Starts the sender and the listener when `db` is PostgreSQL (a no-op on SQLite), and waits
/// (up to [`CHECK_TIMEOUT`]) for the first `LISTEN`, so a server starts with its caches on;
/// if that fails the listener goes on trying, and the versions are unsynced until it listens.
/// Both tasks end when `events` closes (server shutdown).
pub async fn start(events: &Events, db: &Db) {
    if Backend::of_pool(db) != Backend::Postgres {
        return;
    }
    let url = db.connect_options().database_url.clone();
    let options = match PgConnectOptions::from_url(&url) {
        Ok(o) => o.application_name("architect events"),
        Err(_) => {
            // Cannot happen (the pool was opened from this URL); the message could carry the
            // URL, so it is not logged. Without a listener, caches stay off: still correct.
            tracing::error!("events across replicas are off: the database URL did not parse");
            events.set_synced(false);
            return;
        }
    };
    // Its own small pool: the listener holds one connection, the sender one; neither waits
    // behind the server's requests for a connection of the main pool.
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(CHECK_TIMEOUT)
        .connect_lazy_with(options);
    let (tx, rx) = mpsc::channel(OUTBOX);
    let origin = crate::auth::random_secret(16);
    events.set_synced(false);
    if events.outbox.set(tx).is_err() {
        tracing::error!("events across replicas started twice; the second start is ignored");
        return;
    }
    tokio::spawn(send_loop(events.clone(), pool.clone(), rx, origin.clone()));
    let first = listen(&pool).await;
    if first.is_ok() {
        // Nothing was cached yet: no resync needed, only the caches switched on.
        events.set_synced(true);
    }
    tokio::spawn(listen_loop(events.clone(), pool, origin, first));
}

/// A listener on [`CHANNEL`], within [`CHECK_TIMEOUT`].
async fn listen(pool: &PgPool) -> Result<PgListener, String> {
    let listening = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut l = PgListener::connect_with(pool).await?;
        l.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(l)
    })
    .await;
    match listening {
        Ok(Ok(l)) => Ok(l),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connecting timed out".into()),
    }
}

/// Drains the outbox into `pg_notify` messages until the server shuts down.
async fn send_loop(events: Events, pool: PgPool, mut rx: mpsc::Receiver<Event>, origin: String) {
    let mut backoff = Backoff::new(RETRY_BASE, RETRY_MAX);
    let mut batch = Vec::new();
    loop {
        if events.outbox_lost.load(Ordering::SeqCst) {
            // Something was not sent: say so now, with whatever is queued.
            while let Ok(ev) = rx.try_recv() {
                batch.push(ev);
            }
        } else {
            tokio::select! {
                _ = events.closed() => break,
                n = rx.recv_many(&mut batch, 512) => if n == 0 { break },
            }
        }
        let lost = events.outbox_lost.swap(false, Ordering::SeqCst);
        for payload in encode(&origin, lost, &batch) {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&payload)
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "events not sent to the other replicas; they will resync");
                events.outbox_lost.store(true, Ordering::SeqCst);
                tokio::select! {
                    _ = events.closed() => return pool.close().await,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
                break;
            }
            backoff.reset();
        }
        batch.clear();
    }
    pool.close().await;
}

/// Cuts `events` into messages of at most [`MAX_PAYLOAD`] bytes; `lost` marks the first.
/// An id too long to send is left out (the topic still moves everywhere). Nothing to say is
/// no message.
fn encode(origin: &str, lost: bool, events: &[Event]) -> Vec<String> {
    let to_json = |m: &Message| serde_json::to_string(m).unwrap_or_default();
    let empty = |r| Message {
        o: origin.to_string(),
        r,
        e: Vec::new(),
    };
    let base = to_json(&empty(true)).len();
    let mut out = Vec::new();
    let mut cur = empty(lost);
    let mut size = base;
    for ev in events {
        let mut item = (
            ev.topic.as_str().to_string(),
            ev.action.to_string(),
            ev.id.clone(),
        );
        let mut len = serde_json::to_string(&item).map_or(0, |s| s.len()) + 1;
        if base + len > MAX_PAYLOAD {
            item.2 = None;
            len = serde_json::to_string(&item).map_or(0, |s| s.len()) + 1;
        }
        if size + len > MAX_PAYLOAD && !cur.e.is_empty() {
            out.push(to_json(&cur));
            cur = empty(false);
            size = base;
        }
        cur.e.push(item);
        size += len;
    }
    if cur.r || !cur.e.is_empty() {
        out.push(to_json(&cur));
    }
    out
}

/// Listens until the server shuts down, reconnecting with backoff; see the module doc.
async fn listen_loop(
    events: Events,
    pool: PgPool,
    origin: String,
    first: Result<PgListener, String>,
) {
    let mut backoff = Backoff::new(RETRY_BASE, RETRY_MAX);
    let mut lost_before = false;
    let mut next = Some(first);
    loop {
        let (listening, reconnected) = match next.take() {
            Some(first) => (first, false), // `start` made it and switched the caches on
            None => (listen(&pool).await, true),
        };
        match listening {
            Ok(mut listener) => {
                if reconnected {
                    // From here every commit is heard; what came before, this covers.
                    events.resync();
                    events.set_synced(true);
                    if lost_before {
                        tracing::info!("events across replicas: listening again (resynced)");
                    }
                }
                backoff.reset();
                let ended = hear(&events, &mut listener, &origin).await;
                events.set_synced(false);
                events.resync();
                if ended {
                    break;
                }
                lost_before = true;
                tracing::warn!(
                    "events across replicas: connection lost; reconnecting (caches off meanwhile)"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "events across replicas: cannot listen; retrying (caches off meanwhile)")
            }
        }
        tokio::select! {
            _ = events.closed() => break,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
    pool.close().await;
}

/// Re-emits the other replicas' events until the connection is lost (false) or the server
/// shuts down (true).
async fn hear(events: &Events, listener: &mut PgListener, origin: &str) -> bool {
    loop {
        let got = tokio::select! {
            _ = events.closed() => return true,
            got = tokio::time::timeout(CHECK_EVERY, listener.try_recv()) => got,
        };
        match got {
            Ok(Ok(Some(n))) => receive(events, origin, n.payload()),
            Ok(Ok(None)) => return false,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "events listener failed");
                return false;
            }
            Err(_quiet) => {
                let alive = tokio::time::timeout(
                    CHECK_TIMEOUT,
                    sqlx::query("SELECT 1").execute(&mut *listener),
                )
                .await;
                if !matches!(alive, Ok(Ok(_))) {
                    return false;
                }
            }
        }
    }
}

/// One message heard: publishes its events here unless this process sent it.
fn receive(events: &Events, origin: &str, payload: &str) {
    let Ok(msg) = serde_json::from_str::<Message>(payload) else {
        tracing::warn!("events across replicas: an unreadable message; resyncing");
        events.resync();
        return;
    };
    if msg.o == origin {
        return;
    }
    if msg.r {
        events.resync();
    }
    for (topic, action, id) in msg.e {
        match topic.parse::<Topic>() {
            Ok(topic) => events.receive(Event {
                topic,
                action: Cow::Owned(action),
                id,
            }),
            // A replica of another version: whatever it changed, nothing here is trusted.
            Err(_) => events.resync(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(topic: Topic, action: &'static str, id: Option<String>) -> Event {
        Event {
            topic,
            action: Cow::Borrowed(action),
            id,
        }
    }

    #[test]
    fn messages_stay_under_the_limit_and_round_trip() {
        let many: Vec<Event> = (0..2000)
            .map(|i| ev(Topic::Tasks, "created", Some(i.to_string())))
            .collect();
        let out = encode("me", true, &many);
        assert!(out.len() > 1, "2000 events do not fit one message");
        let mut seen = 0;
        for (i, p) in out.iter().enumerate() {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            let m: Message = serde_json::from_str(p).unwrap();
            assert_eq!(m.o, "me");
            assert_eq!(m.r, i == 0, "only the first message carries the resync");
            for (t, a, id) in m.e {
                assert_eq!((t.as_str(), a.as_str()), ("tasks", "created"));
                assert_eq!(id, Some(seen.to_string()));
                seen += 1;
            }
        }
        assert_eq!(seen, 2000);
        // A huge id is dropped, the event is not.
        let out = encode(
            "me",
            false,
            &[ev(Topic::Work, "project", Some("x".repeat(9000)))],
        );
        let m: Message = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(m.e, vec![("work".into(), "project".into(), None)]);
        assert!(encode("me", false, &[]).is_empty());
        assert_eq!(encode("me", true, &[]).len(), 1, "a lone resync is said");
    }

    #[tokio::test]
    async fn another_replicas_message_is_published_here_and_its_own_is_not() {
        let bus = Events::new();
        let mut rx = bus.subscribe();
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w = woken.clone();
        bus.on_remote(std::sync::Arc::new(move |e: &Event| {
            if e.topic == Topic::Tasks {
                w.fetch_add(1, Ordering::SeqCst);
            }
        }));
        let (work, tasks) = (bus.version(Topic::Work), bus.version(Topic::Tasks));
        let own = encode("me", false, &[ev(Topic::Work, "project", Some("1".into()))]);
        receive(&bus, "me", &own[0]);
        assert_eq!(
            bus.version(Topic::Work),
            work,
            "its own message changes nothing"
        );
        let other = encode(
            "other",
            false,
            &[
                ev(Topic::Work, "project", Some("1".into())),
                ev(Topic::Tasks, "created", Some("9".into())),
            ],
        );
        receive(&bus, "me", &other[0]);
        assert_eq!(bus.version(Topic::Work), work + 1);
        assert_eq!(bus.version(Topic::Tasks), tasks + 1);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        let a = rx.recv().await.unwrap();
        assert_eq!((a.topic, a.action.as_ref()), (Topic::Work, "project"));
        // A lost sender, or garbage: everything moves and streams resync.
        let mut resyncs = bus.resyncs();
        let errors = bus.version(Topic::Errors);
        receive(&bus, "me", &encode("other", true, &[])[0]);
        assert!(bus.version(Topic::Errors) > errors);
        assert!(resyncs.has_changed().unwrap());
        resyncs.mark_unchanged();
        receive(&bus, "me", "{not json");
        assert!(resyncs.has_changed().unwrap());
    }
}
