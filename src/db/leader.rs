//! Which replica leads: the one `serve` process that runs the loops deciding for the whole
//! database (reapers, retention, the assigner's dispatcher; `background.rs` lists them).
//!
//! Protocol (PostgreSQL). A replica leads while it holds the session-level advisory lock
//! [`LOCK_KEY`] on one connection of its own, opened outside the pool ([`super::connect_one`])
//! so the pool's churn never closes it and no pooled statement runs on it. Not leading, it
//! asks for the lock (`pg_try_advisory_lock`, never waiting) every [`RETRY_EVERY`]. Leading,
//! it checks the connection every [`CHECK_EVERY`] (a `SELECT 1` bounded by [`CHECK_WITHIN`]):
//! the moment a check fails it stops leading and drops the connection. When a leader dies
//! (`kill -9` included) its connection closes, PostgreSQL frees the lock, and another replica
//! takes it at its next try: a handover within [`RETRY_EVERY`] plus the time PostgreSQL needs
//! to see the connection gone (at once for a killed process on a live host: its socket is
//! closed by the kernel). A stopping leader unlocks before it closes, so a graceful handover
//! does not wait for anything.
//!
//! Two replicas may both believe they lead for a moment (the old leader's connection was cut
//! and it has not checked yet): everything a leader-only loop does must be safe twice. Their
//! writes are conditional (`UPDATE … WHERE status = …`), so the second does nothing; the
//! dispatcher's claim is one such UPDATE, made before any key is typed.
//!
//! SQLite: one process owns the file, so it always leads ([`Leadership::always`]).

use super::{Backend, Db};
use sqlx::AnyConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The advisory lock's key: the bytes of "architec" as a big-endian i64, fixed so every
/// version of `serve` on one database competes for the same lock.
pub const LOCK_KEY: i64 = 0x6172_6368_6974_6563;

/// How often a replica that does not lead asks for the lock: the upper bound of a handover
/// once PostgreSQL has freed the lock (issue 15 asks for 10 s).
pub const RETRY_EVERY: Duration = Duration::from_secs(2);

/// How often the leader checks its lock's connection. Until a check fails it may lead beside
/// a successor (see the module doc), so this is short.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A check that takes longer than this counts as failed: a connection that hangs is as good
/// as gone, and its lock may be freed under it at any moment.
pub const CHECK_WITHIN: Duration = Duration::from_secs(2);

/// This replica's view of leadership: a `watch` of "I lead now" and the replica's id. Cheap to
/// clone; one per server.
#[derive(Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    /// Kept so the channel never closes (a closed watch would end every waiter at once).
    _tx: Arc<watch::Sender<bool>>,
    replica: Arc<str>,
    /// False for a process that always leads (nothing is elected, nothing changes).
    elected: bool,
}

impl Leadership {
    /// A replica that leads from start to end (SQLite; a single process owns the file).
    /// Its id is random (unit tests); `serve` names its replica through [`elect`].
    pub fn always() -> Leadership {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Leadership::always_as(&id[..12])
    }

    fn always_as(replica: &str) -> Leadership {
        let (tx, rx) = watch::channel(true);
        Leadership::of(tx, rx, false, replica)
    }

    fn of(
        tx: watch::Sender<bool>,
        rx: watch::Receiver<bool>,
        elected: bool,
        replica: &str,
    ) -> Leadership {
        Leadership {
            rx,
            _tx: Arc::new(tx),
            replica: Arc::from(replica),
            elected,
        }
    }

    /// Moves leadership by hand (unit tests of the loops' gate).
    #[cfg(test)]
    pub(crate) fn set(&self, leading: bool) {
        self._tx.send_replace(leading);
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// A receiver of every change (for loops that start and stop with leadership).
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Whether leadership is elected (PostgreSQL) and so may change; false on SQLite.
    pub fn is_elected(&self) -> bool {
        self.elected
    }

    /// This replica's id, shown by /health and in the logs. `serve` keeps it in its data dir
    /// (`<data-dir>/replica-id`, [`replica_id`]): the same across restarts on that data dir,
    /// so what a replica owns (its supervised workers) stays its own.
    pub fn replica(&self) -> &str {
        &self.replica
    }
}

/// Starts the election on `db`'s backend for replica `replica` ([`replica_id`]): on SQLite the
/// process leads and nothing runs; on PostgreSQL a task runs the protocol above until
/// `shutdown` turns true, then gives the lock back. The handle ends after the lock is released.
pub fn elect(
    db: &Db,
    replica: &str,
    shutdown: watch::Receiver<bool>,
) -> (Leadership, Option<tokio::task::JoinHandle<()>>) {
    if Backend::of_pool(db) == Backend::Sqlite {
        return (Leadership::always_as(replica), None);
    }
    let (tx, rx) = watch::channel(false);
    let leadership = Leadership::of(tx, rx, true, replica);
    let sender = leadership._tx.clone();
    let replica = leadership.replica.clone();
    let task = tokio::spawn(campaign(db.clone(), sender, replica, shutdown));
    (leadership, Some(task))
}

/// The election loop (see the module doc).
async fn campaign(
    db: Db,
    leading: Arc<watch::Sender<bool>>,
    replica: Arc<str>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut held: Option<AnyConnection> = None;
    loop {
        let wait = match held.as_mut() {
            None => {
                if let Some(conn) = try_lead(&db, &replica).await {
                    held = Some(conn);
                    leading.send_replace(true);
                    tracing::info!(replica = %replica, "this replica now leads: it runs the leader-only loops");
                    CHECK_EVERY
                } else {
                    RETRY_EVERY
                }
            }
            Some(conn) => {
                if still_held(conn).await {
                    CHECK_EVERY
                } else {
                    held = None;
                    leading.send_replace(false);
                    tracing::warn!(replica = %replica, "leadership lost: the lock's connection failed its check; leader-only loops stop");
                    RETRY_EVERY
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    if let Some(mut conn) = held.take() {
        leading.send_replace(false);
        let _ = tokio::time::timeout(
            CHECK_WITHIN,
            sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut conn),
        )
        .await;
        let _ = tokio::time::timeout(CHECK_WITHIN, sqlx::Connection::close(conn)).await;
        tracing::info!(replica = %replica, "leadership given up at shutdown");
    }
}

/// One try for the lock on a fresh connection; the connection when the lock was taken.
async fn try_lead(db: &Db, replica: &str) -> Option<AnyConnection> {
    let attempt = async {
        let mut conn = super::connect_one(db).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        Ok::<_, sqlx::Error>(got.then_some(conn))
    };
    match tokio::time::timeout(CHECK_WITHIN, attempt).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::debug!(replica, error = %e, "asking for leadership failed; will retry");
            None
        }
        Err(_) => None,
    }
}

/// Whether the lock's connection still answers (and so still holds the lock), within
/// [`CHECK_WITHIN`].
async fn still_held(conn: &mut AnyConnection) -> bool {
    matches!(
        tokio::time::timeout(
            CHECK_WITHIN,
            sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(conn)
        )
        .await,
        Ok(Ok(1))
    )
}

/// The file in the data dir that names its replica.
pub const REPLICA_ID_FILE: &str = "replica-id";

/// This replica's id: read from `<data_dir>/replica-id`, made on the first start there (the
/// host name and 8 random hex digits, e.g. `build-2-3f9a1c2e`). A replica is its data dir: a
/// restart on the same data dir is the same replica, and replicas sharing one database each
/// need their own data dir (as they do for their logs). An operator may write the file
/// beforehand to choose the name (1-64 of `A-Z a-z 0-9 . _ -`).
pub fn replica_id(data_dir: &std::path::Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Write};
    let path = data_dir.join(REPLICA_ID_FILE);
    let read = |path: &std::path::Path| -> std::io::Result<String> {
        let s = std::fs::read_to_string(path)?;
        let id = s.trim();
        if valid_replica_id(id) {
            Ok(id.to_string())
        } else {
            Err(Error::new(
                ErrorKind::InvalidData,
                format!(
                    "{} must hold 1-64 of A-Z a-z 0-9 . _ - (delete it to make a new id)",
                    path.display()
                ),
            ))
        }
    };
    match read(&path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        other => return other,
    }
    let host: String = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(40)
        .collect();
    let random = uuid::Uuid::new_v4().simple().to_string();
    let id = if host.is_empty() {
        format!("replica-{}", &random[..8])
    } else {
        format!("{host}-{}", &random[..8])
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut f) => {
            f.write_all(format!("{id}\n").as_bytes())?;
            f.sync_all()?;
            Ok(id)
        }
        // Another process on this data dir made it first: that one is the id.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(e),
    }
}

fn valid_replica_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_id_is_made_once_per_data_dir_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = replica_id(dir.path()).unwrap();
        assert!(valid_replica_id(&first), "{first}");
        assert_eq!(replica_id(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(replica_id(other.path()).unwrap(), first);
        std::fs::write(dir.path().join(REPLICA_ID_FILE), "db-1\n").unwrap();
        assert_eq!(replica_id(dir.path()).unwrap(), "db-1");
        std::fs::write(dir.path().join(REPLICA_ID_FILE), "no spaces").unwrap();
        let e = replica_id(dir.path()).unwrap_err();
        assert!(e.to_string().contains("replica-id"), "{e}");
    }
}
