//! Which database engine `serve` runs on, chosen by URL (`--database-url` / `DATABASE_URL`):
//! `sqlite://PATH` (the default: `<data-dir>/architect.db`) or `postgres://…`.
//!
//! A database URL is a secret when it carries a password: [`DatabaseUrl`] never shows it, in
//! `Debug`, `Display` or an error ([`DatabaseUrl::redacted`], [`DatabaseUrl::scrub`]). Prefer
//! `PGPASSWORD` or `~/.pgpass` (both read by the driver) to a password in the URL, and the env
//! var to the flag: a flag shows in the process list.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The database engines `serve` supports. Everything above `db` is the same on both: one SQL
/// dialect through sqlx `Any` (docs/decisions/0001, 0007); only DDL and a few statements
/// named here differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// How a write transaction starts. SQLite's plain `BEGIN` is deferred: a transaction that
    /// reads first and writes later fails at once with "database is locked" (no busy wait)
    /// when another connection committed in between, so it takes the write lock up front
    /// (`BEGIN IMMEDIATE`). PostgreSQL locks rows, not the database: a plain `BEGIN`, and
    /// read-modify-write takes its row lock by touching the row first (`store::lock_*`).
    pub fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// A claim's statement: `UPDATE table SET … WHERE id IN (<pick>) AND <re-check> RETURNING …`,
    /// where `pick` is a `SELECT id FROM table alias … ORDER BY … LIMIT n` of the rows to take.
    /// Returns what goes before `UPDATE` and what goes inside `IN (…)`.
    ///
    /// SQLite: the pick as it is (one writer at a time: claims never overlap). PostgreSQL: the
    /// pick locks its rows and skips rows another transaction holds (`FOR UPDATE OF alias SKIP
    /// LOCKED`), so concurrent claimers (other connections, other replicas) take different rows
    /// instead of the loser re-checking after the winner's commit, updating nothing and
    /// answering "nothing pending" while rows are; and it runs once, in a `MATERIALIZED` CTE: as
    /// a plain `IN (…)` subquery the planner may rescan it per updated row, and each rescan
    /// skips the rows this very statement already updated and returns the next ones, so a
    /// `LIMIT 1` claim took several rows. The ids come back through an array
    /// (`unnest(ARRAY(…))`, which the planner counts as 10 rows): with `IN (SELECT id FROM
    /// picked)`, the generic plan PostgreSQL caches for the prepared statement after five runs
    /// estimated the pick at a tenth of the pending rows (its `LIMIT $n` is unknown) and
    /// matched it to the table by a hash join over a sequential scan of the whole queue, one
    /// scan per claim (`tasks` bench with `TASKS_BENCH_PG_PROFILE=1`: the claim averaged
    /// 1.1–1.3 ms against 0.15–0.35 ms for a completion); now it is one primary-key lookup per
    /// picked id whatever the plan.
    pub fn claim(self, pick: &str, alias: &str) -> (String, String) {
        match self {
            Backend::Sqlite => (String::new(), pick.to_string()),
            Backend::Postgres => (
                format!("WITH picked AS MATERIALIZED ({pick} FOR UPDATE OF {alias} SKIP LOCKED) "),
                "SELECT unnest(ARRAY(SELECT id FROM picked))".to_string(),
            ),
        }
    }

    /// The backend a pool's connections talk to.
    pub fn of_pool(db: &super::Db) -> Backend {
        Backend::of_scheme(db.connect_options().database_url.scheme()).unwrap_or(Backend::Sqlite)
    }

    /// The backend of one connection (sqlx's name for its driver).
    pub fn of_connection(conn: &sqlx::AnyConnection) -> Backend {
        match conn.backend_name() {
            "PostgreSQL" => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    fn of_scheme(scheme: &str) -> Option<Backend> {
        match scheme {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// Where the database lives: a `sqlite://` or `postgres://` URL, as given. Parsing never
/// fails (clap would echo a refused value, password and all); [`DatabaseUrl::backend`] says
/// what is wrong, redacted, when the server opens it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl FromStr for DatabaseUrl {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(DatabaseUrl(s.trim().to_string()))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The URL names no backend `serve` supports (the message names the scheme, never the URL).
#[derive(Debug, thiserror::Error)]
#[error("unsupported database URL '{0}': expected sqlite://PATH or postgres://USER@HOST/DATABASE")]
pub struct UnsupportedUrl(String);

impl DatabaseUrl {
    /// The default: `<data_dir>/architect.db`.
    pub fn sqlite_in(data_dir: &Path) -> DatabaseUrl {
        DatabaseUrl(format!(
            "sqlite://{}",
            data_dir.join("architect.db").display()
        ))
    }

    /// The URL as given, for the driver only: never log or show it (see [`Self::redacted`]).
    pub(super) fn expose(&self) -> &str {
        &self.0
    }

    fn scheme(&self) -> &str {
        self.0.split_once(':').map(|(s, _)| s).unwrap_or("")
    }

    pub fn backend(&self) -> Result<Backend, UnsupportedUrl> {
        Backend::of_scheme(&self.scheme().to_ascii_lowercase())
            .ok_or_else(|| UnsupportedUrl(self.redacted()))
    }

    /// The SQLite file a `sqlite:` URL names (`sqlite://rel/path.db`, `sqlite:///abs.db`,
    /// `sqlite:path.db`; any `?…` options dropped: the server sets its own).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.0.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or("");
        (!path.is_empty()).then(|| PathBuf::from(path))
    }

    /// The password this URL carries, if any (userinfo `user:PASSWORD@`, or `password=` in
    /// the query).
    fn password(&self) -> Option<&str> {
        let (_, rest) = self.0.split_once("://")?;
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let from_userinfo = authority
            .rsplit_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, pw)| pw);
        let from_query = rest.split_once('?').and_then(|(_, q)| {
            q.split(['&', '#'])
                .find_map(|kv| kv.strip_prefix("password="))
        });
        from_userinfo.or(from_query).filter(|p| !p.is_empty())
    }

    /// The URL with its password replaced by `***`: safe for logs and answers.
    pub fn redacted(&self) -> String {
        self.scrub(&self.0)
    }

    /// `text` (e.g. a driver's error message) with this URL's password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        match self.password() {
            Some(pw) => text.replace(pw, "***"),
            None => text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> DatabaseUrl {
        s.parse().expect("infallible")
    }

    #[test]
    fn backends_are_chosen_by_scheme() {
        assert_eq!(
            url("sqlite:///var/a.db").backend().ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            url("postgres://u@h/db").backend().ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            url("postgresql://u@h/db").backend().ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            url("POSTGRES://u@h/db").backend().ok(),
            Some(Backend::Postgres)
        );
        let e = url("mysql://root:hunter2@h/db").backend().unwrap_err();
        assert!(e.to_string().contains("mysql://root:***@h/db"), "{e}");
        assert!(!e.to_string().contains("hunter2"));
        assert_eq!(Backend::Sqlite.begin_write(), "BEGIN IMMEDIATE");
        assert_eq!(Backend::Postgres.begin_write(), "BEGIN");
        let pick = "SELECT t.id FROM q t ORDER BY t.id LIMIT $1";
        assert_eq!(
            Backend::Sqlite.claim(pick, "t"),
            (String::new(), pick.to_string())
        );
        assert_eq!(
            Backend::Postgres.claim(pick, "t"),
            (
                format!("WITH picked AS MATERIALIZED ({pick} FOR UPDATE OF t SKIP LOCKED) "),
                "SELECT unnest(ARRAY(SELECT id FROM picked))".to_string()
            )
        );
    }

    #[test]
    fn passwords_never_show() {
        for (given, shown) in [
            (
                "postgres://architect:s3cret@db:5432/arch",
                "postgres://architect:***@db:5432/arch",
            ),
            (
                "postgres://architect@db/arch?password=s3cret&sslmode=require",
                "postgres://architect@db/arch?password=***&sslmode=require",
            ),
            (
                "postgres://architect@db/arch",
                "postgres://architect@db/arch",
            ),
            ("postgres://a:p%40ss@db/arch", "postgres://a:***@db/arch"),
        ] {
            let u = url(given);
            assert_eq!(u.redacted(), shown);
            assert_eq!(format!("{u}"), shown);
            assert_eq!(format!("{u:?}"), format!("DatabaseUrl({shown})"));
        }
        let u = url("postgres://architect:s3cret@db/arch");
        assert_eq!(
            u.scrub("password authentication failed: s3cret"),
            "password authentication failed: ***"
        );
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            url("sqlite:///var/lib/architect/a.db?mode=rwc").sqlite_path(),
            Some(PathBuf::from("/var/lib/architect/a.db"))
        );
        assert_eq!(
            url("sqlite://data/a.db").sqlite_path(),
            Some(PathBuf::from("data/a.db"))
        );
        assert_eq!(
            url("sqlite:a.db").sqlite_path(),
            Some(PathBuf::from("a.db"))
        );
        assert_eq!(url("sqlite://").sqlite_path(), None);
        assert_eq!(url("postgres://h/db").sqlite_path(), None);
        assert_eq!(
            DatabaseUrl::sqlite_in(Path::new("/srv/data")).sqlite_path(),
            Some(PathBuf::from("/srv/data/architect.db"))
        );
    }
}
