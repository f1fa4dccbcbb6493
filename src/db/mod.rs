//! The database: one pool, embedded migrations, and the few helpers every `store.rs` shares.
//!
//! Domains run portable SQL through sqlx's `Any` driver (see
//! docs/decisions/0001-portable-storage.md and 0007-storage-backends.md): `$1` placeholders,
//! integer ids, text times, JSON as text, `RETURNING`. Only the DDL differs per backend, one
//! migrations folder per backend with the same file names (`migrations/sqlite`,
//! `migrations/postgres`). SQLite is the embedded default; the backend is chosen by URL
//! ([`DatabaseUrl`], `--database-url`).

mod backend;
pub mod group_commit;
pub mod leader;

pub use backend::{Backend, DatabaseUrl, UnsupportedUrl};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Connection, Executor};
use std::path::Path;
use std::time::Duration;

pub type Db = AnyPool;
pub type Tx<'a> = sqlx::Transaction<'a, Any>;

/// A write transaction on `db` (see [`Backend::begin_write`]). Every domain's `actions` use
/// this, not `db.begin()`.
pub async fn begin_write(db: &Db) -> Result<Tx<'static>, sqlx::Error> {
    db.begin_with(Backend::of_pool(db).begin_write()).await
}

/// A write transaction on one connection held outside the pool (a long-lived writer).
pub async fn begin_write_on(conn: &mut AnyConnection) -> Result<Tx<'_>, sqlx::Error> {
    let begin = Backend::of_connection(conn).begin_write();
    conn.begin_with(begin).await
}
pub type Row = AnyRow;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a connection waits on a locked SQLite database before giving up (ms).
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// Connections per pool. SQLite: readers in parallel beside the one writer (WAL). PostgreSQL:
/// per replica; the server's `max_connections` (100 by default) bounds replicas × this.
const POOL_SIZE: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Unsupported(#[from] UnsupportedUrl),
    /// The message is the driver's, with the URL's password scrubbed out.
    #[error("cannot open database {url}: {message}")]
    Open { url: String, message: String },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Opens the database `url` names, without migrating (call [`migrate`]): SQLite (the file
/// and its directory created owner-only if missing; WAL, foreign keys, busy timeout on every
/// connection) or PostgreSQL (the database must exist; the server creates nothing else).
pub async fn open(url: &DatabaseUrl) -> Result<Db, DbError> {
    sqlx::any::install_default_drivers();
    match url.backend()? {
        Backend::Sqlite => open_sqlite_url(url).await,
        Backend::Postgres => open_postgres(url).await,
    }
}

/// Opens (creating if needed) `<data_dir>/architect.db`: [`open`] of the default URL.
pub async fn open_sqlite(data_dir: &Path) -> Result<Db, DbError> {
    open(&DatabaseUrl::sqlite_in(data_dir)).await
}

fn open_error(url: &DatabaseUrl, e: &sqlx::Error) -> DbError {
    DbError::Open {
        url: url.redacted(),
        message: url.scrub(&e.to_string()),
    }
}

async fn open_sqlite_url(url: &DatabaseUrl) -> Result<Db, DbError> {
    let path = url.sqlite_path().ok_or_else(|| DbError::Open {
        url: url.redacted(),
        message: "no file named (sqlite://PATH)".into(),
    })?;
    let data_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir_err = |source| DbError::DataDir {
        path: data_dir.display().to_string(),
        source,
    };
    create_private_dir(data_dir).map_err(dir_err)?;
    create_private_file(&path).map_err(dir_err)?;
    let abs = std::path::absolute(&path).unwrap_or(path);
    let driver_url = format!("sqlite://{}?mode=rwc", abs.display());
    let pool = AnyPoolOptions::new()
        .max_connections(POOL_SIZE)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every idle connection before handing it out (a round trip to the
        // connection's worker thread): that was one extra SQLite call per statement on hot
        // paths. An embedded SQLite connection cannot be dropped by a server or a network, so
        // the check buys nothing here; a genuinely broken connection still errors on use.
        .test_before_acquire(false)
        .after_connect(|conn, _meta| Box::pin(async move { set_up_connection(conn).await }))
        .connect(&driver_url)
        .await
        .map_err(|e| open_error(url, &e))?;
    // WAL is a property of the file; setting it once per open is enough and idempotent.
    pool.execute("PRAGMA journal_mode = WAL;")
        .await
        .map_err(|e| open_error(url, &e))?;
    Ok(pool)
}

/// A PostgreSQL pool. Connections are checked before use (`test_before_acquire`, the
/// default): a server or a network can drop them, unlike an embedded SQLite file.
async fn open_postgres(url: &DatabaseUrl) -> Result<Db, DbError> {
    AnyPoolOptions::new()
        .max_connections(POOL_SIZE)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _meta| Box::pin(async move { set_up_connection(conn).await }))
        .connect(url.expose())
        .await
        .map_err(|e| open_error(url, &e))
}

/// Creates the data directory (and missing parents) owner-only (0700 on Unix): it holds the
/// database and the key files. An existing directory keeps its mode.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Creates the database file empty and owner-only (0600 on Unix) before SQLite opens it, so it
/// is never world-readable, not even for a moment; SQLite gives its `-wal` and `-shm` files
/// the database file's mode. An existing file is left as it is.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            warn_if_others_can_read(path);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A database created before files were made private (or copied in) may be readable by
/// everyone on the host: say so at every start rather than change an operator's file.
#[cfg(unix)]
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the database file can be read by other users (sessions, tokens' hashes, every record); chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_read(_path: &Path) {}

/// What every connection runs once opened (the pool's and [`connect_one`]'s). SQLite: foreign
/// keys (off by default there), the busy wait, and `synchronous = NORMAL` (durable under WAL
/// but for the last commits at a power cut). PostgreSQL needs none of it.
async fn set_up_connection(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    if Backend::of_connection(conn) == Backend::Sqlite {
        conn.execute(
            format!(
                "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL;"
            )
            .as_str(),
        )
        .await?;
    }
    Ok(())
}

/// One connection to the pool's database, outside the pool and set up like the pool's (for a
/// long-lived writer such as [`group_commit`]).
pub async fn connect_one(db: &Db) -> Result<AnyConnection, sqlx::Error> {
    let mut conn = db.connect_options().connect().await?;
    set_up_connection(&mut conn).await?;
    Ok(conn)
}

/// Applies every embedded migration of the pool's backend not yet applied. Returns how many
/// were applied.
pub async fn migrate(db: &Db) -> Result<usize, DbError> {
    let migrator = match Backend::of_pool(db) {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    let before = applied_count(db).await;
    migrator.run(db).await?;
    Ok(applied_count(db).await.saturating_sub(before))
}

async fn applied_count(db: &Db) -> usize {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
        .fetch_one(db)
        .await
        .map(|n| usize::try_from(n).unwrap_or(0))
        .unwrap_or(0)
}

/// True when the error is a UNIQUE constraint violation (the caller maps it to 409).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// True when the error is a FOREIGN KEY violation (a referenced row does not exist).
pub fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// A list's `q` search as a `LIKE` pattern ([`like_pattern`] of the trimmed text), or `None`
/// when there is nothing to search for.
pub fn search_pattern(q: Option<&str>) -> Option<String> {
    q.map(str::trim).filter(|s| !s.is_empty()).map(like_pattern)
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern and wraps it in `%...%`.
pub fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `$from, $from+1, …`: `n` numbered placeholders, for an `IN (…)` list or a VALUES row; the
/// one way stores build a list whose length is known only at run time (bind the values in the
/// same order). Not `sqlx::QueryBuilder`: over the `Any` driver its `push_bind` writes `?`
/// (sqlx's default placeholder; only the PostgreSQL arguments write `$N`), and our SQL is
/// written with `$N` for both backends (decision 0001). The test below notices if that changes.
pub fn placeholders(from: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 4);
    for i in from..from + n {
        if i > from {
            out.push_str(", ");
        }
        out.push('$');
        out.push_str(&i.to_string());
    }
    out
}

/// The size of the pool's PostgreSQL database on the server's disk, in bytes (every table,
/// index and TOAST of it); `None` when the server does not answer.
pub async fn postgres_database_bytes(db: &Db) -> Option<u64> {
    sqlx::query_scalar::<_, i64>("SELECT pg_database_size(current_database())")
        .fetch_one(db)
        .await
        .ok()
        .and_then(|n| u64::try_from(n).ok())
}

/// Cheap liveness probe for /health.
pub async fn ping(db: &Db) -> bool {
    sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(db)
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn placeholder_lists_are_numbered_and_bind_in_order() {
        assert_eq!(placeholders(1, 3), "$1, $2, $3");
        assert_eq!(placeholders(7, 1), "$7");
        assert_eq!(placeholders(2, 0), "");
        // QueryBuilder over Any writes `?`, not `$N`: why stores use `placeholders`.
        let mut qb = sqlx::QueryBuilder::<Any>::new("SELECT ");
        qb.push_bind(1_i64);
        assert_eq!(qb.sql(), "SELECT ?");
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_sqlite(dir.path()).await.expect("open");
        let sql = format!(
            "SELECT CAST($1 AS TEXT) || '|' || (SELECT group_concat(value, ',') FROM (SELECT $2 AS value UNION ALL SELECT $3 UNION ALL SELECT $4)) WHERE $2 IN ({})",
            placeholders(2, 3)
        );
        let got: String = sqlx::query_scalar(&sql)
            .bind("head")
            .bind("a")
            .bind("b")
            .bind("c")
            .fetch_one(&db)
            .await
            .expect("query");
        assert_eq!(got, "head|a,b,c");
    }

    /// Two transactions that each read, then write: with a deferred `BEGIN` the second fails
    /// with "database is locked" once the first commits; `begin_write` makes it wait instead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn write_transactions_that_read_first_wait_instead_of_failing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_sqlite(dir.path()).await.expect("open");
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
            .execute(&db)
            .await
            .expect("create");
        let step = |db: Db, pause_ms: u64| async move {
            let mut tx = begin_write(&db).await?;
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
                .fetch_one(&mut *tx)
                .await?;
            tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(n)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        };
        let first = tokio::spawn(step(db.clone(), 200));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let second = tokio::spawn(step(db.clone(), 0));
        first.await.expect("join").expect("first writer");
        second
            .await
            .expect("join")
            .expect("second writer waits, then writes");
        // Serialized: the second saw the first's row.
        let vs: Vec<i64> = sqlx::query_scalar("SELECT v FROM t ORDER BY id")
            .fetch_all(&db)
            .await
            .expect("read");
        assert_eq!(vs, [0, 1]);
    }
}
