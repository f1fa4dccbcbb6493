//! Which database the tests' servers run on: SQLite (the default, a file in each server's data
//! dir) or PostgreSQL with `ARCHITECT_TEST_BACKEND=postgres` — the same tests, no copies.
//!
//! On PostgreSQL one private cluster (`scripts/pg-cluster`: a temp dir, a unix socket there,
//! no TCP port, C collation) is started once per test process, on first use, and every data dir
//! gets a database of its own, created on first use and named by the dir: a server restarted on
//! the same data dir finds its data again, as with SQLite's file. A watchdog process stops the
//! cluster and deletes its directory when the test process ends (however it ends short of a
//! `kill -9` of the whole process group), so nothing outlives the run. To debug, point the run
//! at a cluster of your own instead ([`PG_URL_ENV`]).
//!
//! Tests that need SQLite itself (they read the database file, or its mode, from the data dir)
//! call [`sqlite_only`] with their reason and return early on PostgreSQL, saying so.

use architect::db::DatabaseUrl;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The environment variable that picks the backend: `sqlite` (default) or `postgres`.
pub const BACKEND_ENV: &str = "ARCHITECT_TEST_BACKEND";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// The backend this test run uses ([`BACKEND_ENV`]); an unknown value fails the test.
pub fn backend() -> TestBackend {
    match std::env::var(BACKEND_ENV).as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => TestBackend::Sqlite,
        Ok("postgres") | Ok("postgresql") => TestBackend::Postgres,
        Ok(other) => panic!("{BACKEND_ENV}={other}: expected sqlite or postgres"),
    }
}

/// Whether a SQLite-only test may run: on PostgreSQL it prints that it is skipped and `why`
/// (what of SQLite it checks) and returns false.
pub fn sqlite_only(why: &str) -> bool {
    if backend() == TestBackend::Sqlite {
        return true;
    }
    eprintln!("SKIPPED on PostgreSQL (SQLite-only test): {why}");
    false
}

/// The database URL for a server on `data_dir`: `None` on SQLite (the server's default, the
/// file in its data dir); on PostgreSQL the data dir's own database in the run's cluster.
pub fn database_url_for(data_dir: &Path) -> Option<DatabaseUrl> {
    match backend() {
        TestBackend::Sqlite => None,
        TestBackend::Postgres => Some(database_for_dir(data_dir)),
    }
}

/// The arguments a `serve` or `migrate` child process needs to use this data dir's database
/// (`--database-url` is avoided: a URL in argv is the habit the server warns against; tests
/// pass it by environment).
pub fn database_env_for(data_dir: &Path) -> Vec<(&'static str, String)> {
    match database_url_for(data_dir) {
        None => Vec::new(),
        Some(url) => vec![("DATABASE_URL", url.to_string())],
    }
}

/// Each data dir's database (name), for the run.
fn databases() -> std::sync::MutexGuard<'static, (u64, HashMap<PathBuf, String>)> {
    static DATABASES: OnceLock<Mutex<(u64, HashMap<PathBuf, String>)>> = OnceLock::new();
    DATABASES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn database_for_dir(data_dir: &Path) -> DatabaseUrl {
    let Some(cluster) = PgCluster::shared() else {
        panic!("{BACKEND_ENV}=postgres needs PostgreSQL: apt-get install -y postgresql");
    };
    let mut known = databases();
    if let Some(name) = known.1.get(data_dir) {
        return cluster.url_of(name);
    }
    known.0 += 1;
    let name = format!("t{}_{}", std::process::id(), known.0);
    let url = cluster.create_database_blocking(&name);
    known.1.insert(data_dir.to_path_buf(), name);
    url
}

/// Drops the data dir's database, if it has one (a stopped server's: its data is not needed
/// again), so a long run does not keep hundreds of databases on disk.
pub async fn drop_database_of(data_dir: &Path) {
    let Some(name) = databases().1.remove(data_dir) else {
        return;
    };
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&cluster.url)
        .await
        .expect("connect to the cluster");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop database");
    admin.close().await.expect("close");
}

/// A private PostgreSQL cluster in a directory of its own, reachable only through a unix
/// socket there.
pub struct PgCluster {
    /// The admin database's URL (`…/postgres?host=<dir>`).
    pub url: String,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster");

/// A cluster the person started (its admin database's URL, e.g. what `scripts/pg-cluster
/// start` prints), used instead of starting one, and left running: for reading its server log
/// (`-c log_statement=all` in `PG_CLUSTER_OPTS`) after a failing test.
pub const PG_URL_ENV: &str = "ARCHITECT_TEST_PG_URL";

/// Connections the shared cluster accepts: every server of the run opens a pool (up to 8) plus
/// its writers' connections, and tests run in parallel.
const MAX_CONNECTIONS: u32 = 300;

impl PgCluster {
    /// The run's cluster, started on first use and stopped (its directory removed) when the
    /// test process exits. `None` only when PostgreSQL is missing and the person opted out of
    /// such tests (`support::prerequisite`); otherwise a missing PostgreSQL fails the test with
    /// the line that installs it.
    pub fn shared() -> Option<&'static PgCluster> {
        static CLUSTER: OnceLock<Option<PgCluster>> = OnceLock::new();
        CLUSTER.get_or_init(PgCluster::start_for_run).as_ref()
    }

    fn start_for_run() -> Option<PgCluster> {
        if let Ok(url) = std::env::var(PG_URL_ENV) {
            return Some(PgCluster { url });
        }
        let dir = tempfile::Builder::new()
            .prefix("architect-pg-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let out = Command::new(SCRIPT)
            .arg("start")
            .arg(&dir)
            .env(
                "PG_CLUSTER_OPTS",
                format!("-c max_connections={MAX_CONNECTIONS}"),
            )
            .output()
            .expect("run scripts/pg-cluster");
        let missing = out.status.code() == Some(3);
        if !super::prerequisite(
            !missing,
            "PostgreSQL (server binaries: initdb, pg_ctl)",
            "apt-get install -y postgresql",
        ) {
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "scripts/pg-cluster start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        watch_over(&dir);
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(PgCluster { url })
    }

    /// Creates an empty database `name` (an identifier the harness chose) and returns its URL.
    pub async fn create_database(&self, name: &str) -> DatabaseUrl {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect to the cluster");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.expect("close");
        self.url_of(name)
    }

    /// [`create_database`](Self::create_database) from synchronous code (a config builder):
    /// on a thread of its own, so it works inside or outside a runtime.
    fn create_database_blocking(&'static self, name: &str) -> DatabaseUrl {
        let name = name.to_string();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(self.create_database(&name))
        })
        .join()
        .expect("create database")
    }

    /// The URL of database `name` in this cluster (which need not exist).
    pub fn url_of(&self, name: &str) -> DatabaseUrl {
        self.url
            .replace("/postgres?", &format!("/{name}?"))
            .parse()
            .expect("infallible")
    }
}

/// Starts a process, in a process group of its own (Ctrl-C on the test run does not reach it),
/// that waits for this test process to end, then stops the cluster in `dir` and removes the
/// directory. A static is never dropped, so this is the run's teardown.
fn watch_over(dir: &Path) {
    use std::os::unix::process::CommandExt;
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \"$0\" stop \"$1\" >/dev/null 2>&1; rm -rf \"$1\"",
        pid = std::process::id()
    );
    // Never waited for: it outlives this process by design (it ends after it).
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(SCRIPT)
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the cluster's watchdog");
}
