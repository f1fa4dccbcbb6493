//! Group commit: many small writes share one transaction, so one WAL commit.
//!
//! SQLite has one writer at a time, and with sqlx every statement is a round trip to the
//! connection's thread; a commit per request caps a busy queue at a few thousand writes a second
//! however fast the rest is. A [`GroupCommit`] runs every write job handed to it on one task:
//! it takes whatever jobs are waiting (up to [`MAX_BATCH`]), runs them one after another inside
//! a single transaction, commits, and only then answers each caller. Nobody waits for a batch to
//! fill: a lone job runs at once, and batches grow only while the previous commit is running,
//! so latency at low load is that of a plain transaction.
//!
//! Guarantees:
//! * A caller is answered after its writes are committed (or with the error that stopped them),
//!   never before: an acknowledged write survives a crash like any committed transaction.
//! * A job sees the writes of the jobs before it in the same batch (same connection), so jobs
//!   that each lease "the next pending row" never lease the same row.
//! * A database error in one job does not fail its neighbours: the batch is rolled back and
//!   every job of it runs again in a transaction of its own. That is why a job is `Fn`, not
//!   `FnOnce`, and why a job must write nothing when it decides not to write (return a value
//!   that says so instead of an error).
//! * All writers of a domain can share the batch's `gate` (a plain async mutex), so writes made
//!   outside the group commit are ordered with the batches instead of fighting over SQLite's
//!   lock in its busy handler.
//! * A panic in a job (a bug) costs that job, never the writer: the batch is rolled back, its
//!   jobs run again one by one, the one that panics is answered with an error, and the panic is
//!   logged as an error with the writer's name and counted in /metrics like a background loop's
//!   ([`catch_panic`]). The writer keeps serving.
//!
//! The other batched writers, and why they are not jobs of this one:
//! * `errors::ingest` folds its batch per error group into a few multi-row upserts: it writes
//!   the batch, not its events one after another, so a failing event cannot be re-run alone
//!   (the batch fails as a whole), and it keeps state between batches (what each group has
//!   sampled), refuses work past a bounded queue (503 rather than memory) and drains its queue
//!   on shutdown. What it shares with this writer is the protocol (take what is waiting, one
//!   transaction, answer after the commit) and [`catch_panic`].
//! * The LLM cost ledger (`llm::ledger`) is write-behind: nobody waits for its commit, so it is
//!   a buffer flushed by a background loop (under `background::guarded`), not a writer.

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use sqlx::{AnyConnection, Connection};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot, Mutex};

/// Runs one batch write of the writer `writer`, catching a panic. A panic is logged as an
/// error with the writer's name and counted as `background_loop_panics_total{loop=<writer>}`,
/// the same as a background loop's panicking tick; `Err` carries its message, for the caller
/// to answer the batch's waiters with an error and go on.
pub async fn catch_panic<F: Future>(writer: &'static str, write: F) -> Result<F::Output, String> {
    match std::panic::AssertUnwindSafe(write).catch_unwind().await {
        Ok(v) => Ok(v),
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            metrics::counter!("background_loop_panics_total", "loop" => writer).increment(1);
            tracing::error!(writer, panic = %message, "a batch write panicked; its callers get an error and the writer goes on");
            Err(message)
        }
    }
}

/// The message a panic carried (`panic!("...")` or a formatted one), for its log line.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Most jobs in one transaction; more waiting jobs go into the next batch.
pub const MAX_BATCH: usize = 256;

/// A write job: runs its statements on the batch's connection (inside its transaction).
pub type JobFn<T> =
    dyn for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, sqlx::Error>> + Send + Sync;

trait Job: Send {
    fn run<'a>(&'a mut self, conn: &'a mut AnyConnection)
        -> BoxFuture<'a, Result<(), sqlx::Error>>;
    fn answer(self: Box<Self>, outcome: Result<(), sqlx::Error>);
}

struct Typed<T> {
    work: Box<JobFn<T>>,
    out: Option<T>,
    reply: oneshot::Sender<Result<T, sqlx::Error>>,
}

impl<T: Send + 'static> Job for Typed<T> {
    fn run<'a>(
        &'a mut self,
        conn: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            self.out = None;
            let value = (self.work)(conn).await?;
            self.out = Some(value);
            Ok(())
        })
    }

    fn answer(self: Box<Self>, outcome: Result<(), sqlx::Error>) {
        let result = match (outcome, self.out) {
            (Ok(()), Some(v)) => Ok(v),
            (Ok(()), None) => Err(sqlx::Error::Protocol(
                "group commit: job produced no value".into(),
            )),
            (Err(e), _) => Err(e),
        };
        // The caller may have gone away (request cancelled); its write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// The group-commit writer of one database. Cheap to clone; started on first use.
#[derive(Clone)]
pub struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    /// For logs and metrics.
    name: &'static str,
    queue: OnceLock<mpsc::UnboundedSender<Box<dyn Job>>>,
    gate: Arc<Mutex<()>>,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit::new("group_commit")
    }
}

impl GroupCommit {
    /// A writer called `name` in logs and metrics.
    pub fn new(name: &'static str) -> GroupCommit {
        GroupCommit {
            inner: Arc::new(Inner {
                name,
                queue: OnceLock::new(),
                gate: Arc::default(),
            }),
        }
    }

    /// The lock every batch holds while it writes. Writers that do not go through
    /// [`run`](Self::run) take it too, so this process has one writer at a time.
    pub async fn gate(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.gate.lock().await
    }

    /// Runs `work` in the next batch on `db` and returns its value once the batch committed.
    pub async fn run<T, F>(&self, db: &super::Db, work: F) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + Sync
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Typed {
            work: Box::new(work),
            out: None,
            reply,
        });
        let queue = self.inner.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer(
                self.inner.name,
                db.clone(),
                self.inner.gate.clone(),
                rx,
            ));
            tx
        });
        queue.send(job).map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn writer(
    name: &'static str,
    db: super::Db,
    gate: Arc<Mutex<()>>,
    mut rx: mpsc::UnboundedReceiver<Box<dyn Job>>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut own: Option<AnyConnection> = None;
    while let Some(first) = rx.recv().await {
        batch.push(first);
        // Jobs that arrive while another writer holds the gate join this batch.
        let _gate = gate.lock().await;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // The writer keeps one connection of its own, outside the pool: its page cache stays
        // warm (no other connection writes these tables while it holds the gate), and a batch
        // costs no pool acquire and release.
        if own.is_none() {
            match super::connect_one(&db).await {
                Ok(c) => own = Some(c),
                Err(e) => {
                    let msg = e.to_string();
                    for job in batch.drain(..) {
                        job.answer(Err(sqlx::Error::Protocol(format!(
                            "no database connection: {msg}"
                        ))));
                    }
                    continue;
                }
            }
        }
        let Some(conn) = own.as_mut() else { continue };
        let mut broken = false;
        match catch_panic(name, run_batch(conn, &mut batch)).await {
            Ok(Ok(())) => {
                for job in batch.drain(..) {
                    job.answer(Ok(()));
                }
            }
            failed => {
                if batch.len() > 1 {
                    let error = match &failed {
                        Err(panic) => format!("a job panicked: {panic}"),
                        Ok(Err(e)) => e.to_string(),
                        Ok(Ok(())) => String::new(),
                    };
                    tracing::debug!(writer = name, %error, jobs = batch.len(), "group commit failed; running its jobs one by one");
                }
                for mut job in batch.drain(..) {
                    let outcome =
                        catch_panic(name, run_batch(conn, std::slice::from_mut(&mut job)))
                            .await
                            .unwrap_or_else(|panic| {
                                Err(sqlx::Error::Protocol(format!(
                                    "group commit: the job panicked: {panic}"
                                )))
                            });
                    broken |= outcome.as_ref().is_err_and(is_connection_error);
                    job.answer(outcome);
                }
            }
        }
        if broken {
            // Open a fresh one for the next batch rather than reuse a connection that failed.
            if let Some(c) = own.take() {
                let _ = c.close().await;
            }
        }
    }
}

/// Errors that say the connection itself is unusable (not a constraint or a bad statement), or
/// that a job panicked on it (its transaction was dropped mid-way).
fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_)
    )
}

/// One transaction over `jobs`; rolled back (by drop) on the first error.
async fn run_batch(conn: &mut AnyConnection, jobs: &mut [Box<dyn Job>]) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_write_on(conn).await?;
    for job in jobs.iter_mut() {
        job.run(&mut tx).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, super::super::Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = super::super::open_sqlite(dir.path()).await.expect("open");
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
            .execute(&db)
            .await
            .expect("create");
        (dir, db)
    }

    fn insert(
        v: &'static str,
    ) -> impl for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, Result<i64, sqlx::Error>>
           + Send
           + Sync
           + 'static {
        move |conn| {
            Box::pin(async move {
                sqlx::query_scalar("INSERT INTO t (v) VALUES ($1) RETURNING id")
                    .bind(v)
                    .fetch_one(conn)
                    .await
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_does_not_fail_its_batch_neighbours() {
        let (_dir, db) = db().await;
        let gc = GroupCommit::default();
        // Hold the gate so all jobs queue up and land in one batch.
        let gate = gc.gate().await;
        let jobs = ["a", "b", "a", "c"].map(|v| {
            let (gc, db) = (gc.clone(), db.clone());
            tokio::spawn(async move { gc.run(&db, insert(v)).await })
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        drop(gate);
        let mut ok = 0;
        let mut failed = 0;
        for j in jobs {
            match j.await.expect("join") {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        // The duplicate "a" fails alone; the other three are committed.
        assert_eq!((ok, failed), (3, 1));
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&db)
            .await
            .expect("count");
        assert_eq!(n, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_of_one_batch_see_each_others_writes() {
        let (_dir, db) = db().await;
        let gc = GroupCommit::default();
        let gate = gc.gate().await;
        let first = {
            let (gc, db) = (gc.clone(), db.clone());
            tokio::spawn(async move { gc.run(&db, insert("x")).await })
        };
        // Queued in this order while the gate is held, so both land in one batch, in order.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let second = {
            let (gc, db) = (gc.clone(), db.clone());
            tokio::spawn(async move {
                gc.run(&db, |conn| {
                    Box::pin(async move {
                        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM t WHERE v = 'x'")
                            .fetch_one(conn)
                            .await
                    })
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        drop(gate);
        assert!(first.await.expect("join").is_ok());
        // The second job of the batch sees the first one's uncommitted insert.
        assert_eq!(second.await.expect("join").expect("count"), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_gets_an_error_and_the_writer_goes_on() {
        let (_dir, db) = db().await;
        let gc = GroupCommit::new("test_writer");
        // One batch: a good job, a panicking one, another good one. Each `run` queues its job
        // on its first poll; the held gate keeps the writer from starting before all three.
        let gate = gc.gate().await;
        let mut a = Box::pin(gc.run(&db, insert("a")));
        let mut boom = Box::pin(
            gc.run(&db, |_conn| -> BoxFuture<'_, Result<i64, sqlx::Error>> {
                Box::pin(async { panic!("a bug in a job") })
            }),
        );
        let mut b = Box::pin(gc.run(&db, insert("b")));
        assert!(futures_util::poll!(a.as_mut()).is_pending());
        assert!(futures_util::poll!(boom.as_mut()).is_pending());
        assert!(futures_util::poll!(b.as_mut()).is_pending());
        drop(gate);
        assert!(a.await.is_ok());
        let err = boom.await.expect_err("the panicking job fails");
        assert!(err.to_string().contains("a bug in a job"), "{err}");
        assert!(b.await.is_ok());
        // The writer still serves.
        assert!(gc.run(&db, insert("c")).await.is_ok());
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&db)
            .await
            .expect("count");
        assert_eq!(n, 3);
    }
}
