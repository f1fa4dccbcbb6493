//! The disk guard of error ingest: reports are refused (507) while the data dir's file system
//! has less free space than `ARCHITECT_ERRORS_MIN_FREE_BYTES` or the database (with its WAL)
//! is larger than `ARCHITECT_ERRORS_MAX_DB_BYTES`. Anonymous callers must not be able to fill
//! the disk the rest of architect (and the host) needs; retention makes room again and the
//! guard lets reports in once it has.
//!
//! Measured at most once per [`CHECK_EVERY`] (one `statvfs` and two `stat`s; on PostgreSQL the
//! database's size is asked of the server, and the free-space floor still watches the data
//! dir's disk, which is not the database's), so a flood of reports costs no more than one
//! measurement a second; the answer in between is the last one.

use crate::db::{Backend, Db};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one measurement is trusted: a second of reports past the bound is a bounded
/// overshoot, and a measurement per report would cost a syscall on the hot path.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct DiskGuard {
    /// 0: no free-space check.
    min_free: u64,
    /// 0: no database-size check.
    max_db: u64,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl DiskGuard {
    pub fn new(min_free: u64, max_db: u64) -> Self {
        DiskGuard {
            min_free,
            max_db,
            last: Mutex::new(None),
        }
    }

    /// Ok while reports may be stored; else why not (for the 507's message).
    pub async fn check(&self, db: &Db, data_dir: &Path, now: Instant) -> Result<(), String> {
        if self.min_free == 0 && self.max_db == 0 {
            return Ok(());
        }
        {
            // Plain data behind the lock: a poisoned lock is still consistent.
            let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, answer)) = &*last {
                if now.saturating_duration_since(*at) < CHECK_EVERY {
                    return answer.clone();
                }
            }
        }
        // Measured without the lock (a PostgreSQL measurement is a query): reports arriving
        // meanwhile may measure too, each at most once a second.
        let answer = self.measure(db, data_dir).await;
        if let Err(why) = &answer {
            tracing::warn!(%why, "error reports refused by the disk guard");
        }
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, answer.clone()));
        answer
    }

    async fn measure(&self, db: &Db, data_dir: &Path) -> Result<(), String> {
        if self.max_db > 0 {
            let size = match Backend::of_pool(db) {
                Backend::Sqlite => ["architect.db", "architect.db-wal"]
                    .iter()
                    .filter_map(|f| std::fs::metadata(data_dir.join(f)).ok())
                    .map(|m| m.len())
                    .sum(),
                // The database's files live on the database server, not in the data dir: it
                // says how large they are. Unknown (a failed query) passes, as below.
                Backend::Postgres => crate::db::postgres_database_bytes(db).await.unwrap_or(0),
            };
            if size > self.max_db {
                return Err(format!(
                    "the database holds {size} bytes, more than ARCHITECT_ERRORS_MAX_DB_BYTES ({}); error reports are refused until retention makes room",
                    self.max_db
                ));
            }
        }
        if self.min_free > 0 {
            if let Some(free) = free_bytes(data_dir) {
                if free < self.min_free {
                    return Err(format!(
                        "the data dir's disk has {free} bytes free, less than ARCHITECT_ERRORS_MIN_FREE_BYTES ({}); error reports are refused until there is room",
                        self.min_free
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Bytes an unprivileged process may still write on the file system holding `dir`; none when
/// it cannot be told (the check then passes: it guards, it does not fail closed on a platform).
#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    #[allow(clippy::useless_conversion)] // the field types differ between platforms
    Some(u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size())))
}

#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_guard_measures_and_remembers_for_a_second() {
        // A SQLite pool elsewhere (the guard reads the sizes of the data dir's files).
        let db_dir = tempfile::tempdir().unwrap();
        let db = crate::db::open_sqlite(db_dir.path()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("architect.db"), vec![0u8; 4096]).unwrap();
        let t0 = Instant::now();
        assert!(DiskGuard::new(0, 0)
            .check(&db, dir.path(), t0)
            .await
            .is_ok());
        let g = DiskGuard::new(0, 1024);
        assert!(g
            .check(&db, dir.path(), t0)
            .await
            .unwrap_err()
            .contains("4096 bytes"));
        // Room made: still refused within the second, let in after it.
        std::fs::write(dir.path().join("architect.db"), b"x").unwrap();
        assert!(g
            .check(&db, dir.path(), t0 + Duration::from_millis(500))
            .await
            .is_err());
        assert!(g.check(&db, dir.path(), t0 + CHECK_EVERY).await.is_ok());
        let g = DiskGuard::new(u64::MAX, 0);
        assert!(g
            .check(&db, dir.path(), t0)
            .await
            .unwrap_err()
            .contains("free"));
    }
}
