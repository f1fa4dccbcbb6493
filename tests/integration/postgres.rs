//! PostgreSQL foundations (issue 15): the migrations in migrations/postgres/ apply to a fresh
//! database and give the same tables, columns, indexes and triggers as migrations/sqlite/; the
//! completion trigger works there; concurrent task claims skip each other's locked rows;
//! `serve --database-url postgres://…` starts and serves the
//! tracking API; a database URL's password never shows in an error.
//!
//! They run on whichever backend the suite runs on, in databases of their own on the run's
//! private cluster (`support::PgCluster::shared`: `scripts/pg-cluster`, started once, a unix
//! socket in a temp dir, no TCP port). Without PostgreSQL's server binaries the tests fail
//! with the line that installs them.

use crate::support::{PgCluster, TestServer};
use architect::db::{self, Backend, DatabaseUrl};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Column name → (type class, not null), per table.
type Schema = BTreeMap<String, BTreeMap<String, (String, bool)>>;

fn type_class(declared: &str) -> String {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "integer",
        "text" => "text",
        "real" | "double precision" => "real",
        "blob" | "bytea" => "blob",
        other => panic!("a column type the schemas should not use: {other}"),
    }
    .to_string()
}

async fn sqlite_schema(
    db: &db::Db,
) -> (Schema, BTreeSet<(String, String, bool)>, BTreeSet<String>) {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for t in tables {
        let cols: Vec<(String, String, i64, i64)> =
            sqlx::query_as("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
                .bind(&t)
                .fetch_all(db)
                .await
                .unwrap();
        // A primary-key column is NOT NULL on PostgreSQL; on SQLite only an INTEGER one is
        // (the rowid), the others by the code that fills them.
        let cols = cols
            .into_iter()
            .map(|(name, ty, notnull, pk)| (name, (type_class(&ty), notnull != 0 || pk > 0)))
            .collect();
        schema.insert(t, cols);
    }
    // Explicit indexes only (automatic ones, for UNIQUE and PRIMARY KEY, have no SQL).
    let indexes: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let indexes = indexes
        .into_iter()
        .map(|(n, t, sql)| (n, t, sql.starts_with("CREATE UNIQUE")))
        .collect();
    let triggers: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            .fetch_all(db)
            .await
            .unwrap();
    (schema, indexes, triggers.into_iter().collect())
}

async fn postgres_schema(
    db: &db::Db,
) -> (Schema, BTreeSet<(String, String, bool)>, BTreeSet<String>) {
    // information_schema's and pg_catalog's own types (sql_identifier, name) are not among
    // the `Any` driver's: cast to text.
    let cols: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (t, c, ty, nullable) in cols {
        schema
            .entry(t)
            .or_default()
            .insert(c, (type_class(&ty), nullable == "NO"));
    }
    // Explicit indexes only: not those backing a PRIMARY KEY or UNIQUE constraint.
    let indexes: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT indexname::text, tablename::text, indexdef FROM pg_indexes
         WHERE schemaname = current_schema() AND tablename <> '_sqlx_migrations'
           AND indexname NOT IN (SELECT conname FROM pg_constraint)",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let indexes = indexes
        .into_iter()
        .map(|(n, t, def)| (n, t, def.starts_with("CREATE UNIQUE")))
        .collect();
    let triggers: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT trigger_name::text FROM information_schema.triggers
         WHERE trigger_schema = current_schema()",
    )
    .fetch_all(db)
    .await
    .unwrap();
    (schema, indexes, triggers.into_iter().collect())
}

fn migration_files(backend: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_apply_cleanly_and_match_the_sqlite_schema() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    // One file per SQLite file, under the same name.
    let files = migration_files("postgres");
    assert_eq!(files, migration_files("sqlite"));

    let url = pg.create_database("fresh").await;
    let pg_db = db::open(&url).await.expect("open postgres");
    assert_eq!(Backend::of_pool(&pg_db), Backend::Postgres);
    assert_eq!(db::migrate(&pg_db).await.expect("migrate"), files.len());
    assert_eq!(db::migrate(&pg_db).await.expect("migrate again"), 0);

    let dir = tempfile::tempdir().unwrap();
    let lite = db::open_sqlite(dir.path()).await.unwrap();
    assert_eq!(Backend::of_pool(&lite), Backend::Sqlite);
    assert_eq!(db::migrate(&lite).await.unwrap(), files.len());

    let (lite_schema, lite_idx, lite_trig) = sqlite_schema(&lite).await;
    let (pg_schema, pg_idx, pg_trig) = postgres_schema(&pg_db).await;
    assert!(lite_schema.len() > 30, "{:?}", lite_schema.keys());
    for (table, cols) in &lite_schema {
        assert_eq!(
            pg_schema.get(table),
            Some(cols),
            "table {table}: SQLite's columns (left) differ from PostgreSQL's"
        );
    }
    assert_eq!(
        pg_schema.keys().collect::<Vec<_>>(),
        lite_schema.keys().collect::<Vec<_>>()
    );
    assert_eq!(pg_idx, lite_idx, "explicit indexes (name, table, unique)");
    assert_eq!(pg_trig, lite_trig);
    assert!(pg_trig.contains("task_completed_attempt"));

    // The seeded price table came across whole.
    let count = |db: db::Db| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM llm_prices")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    assert_eq!(count(pg_db.clone()).await, count(lite.clone()).await);
    pg_db.close().await;
    lite.close().await;
}

/// The PL/pgSQL form of migration 0010: `running → completed` writes one attempt row inside
/// the UPDATE; other status changes write none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_completion_trigger_writes_the_attempt_row() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let pg_db = db::open(&pg.create_database("trigger").await)
        .await
        .unwrap();
    db::migrate(&pg_db).await.unwrap();
    let now = "2026-12-06T12:00:00.000000Z";
    let mut tx = db::begin_write(&pg_db).await.unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO task_queue (task_type, status, max_retries, timeout_s, run_after, created_by, created_at, updated_at, started_at)
         VALUES ('noop', 'running', 3, 60, $1, 'test', $1, $1, $1) RETURNING id",
    )
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let attempts = |status: &'static str| {
        let pg_db = pg_db.clone();
        async move {
            sqlx::query("UPDATE task_queue SET status = $1, finished_at = $2, exit_code = 0, duration_ms = 5 WHERE id = $3")
                .bind(status)
                .bind(now)
                .bind(id)
                .execute(&pg_db)
                .await
                .unwrap();
            sqlx::query_as::<_, (String, Option<i64>, Option<i64>)>(
                "SELECT outcome, exit_code, duration_ms FROM task_attempts WHERE task_id = $1",
            )
            .bind(id)
            .fetch_all(&pg_db)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        attempts("completed").await,
        [("completed".to_string(), Some(0), Some(5))]
    );
    // completed → completed is no completion: no second row.
    assert_eq!(attempts("completed").await.len(), 1);
    pg_db.close().await;
}

/// `serve` on PostgreSQL: it migrates, creates the admin, and the tracking API round-trips
/// (write transactions with their activity rows, the portable list query with its
/// `$N IS NULL` filters).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_tracking_api_on_postgres() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.create_database("served").await;
    let server = TestServer::start_with(|c| c.database_url = Some(url)).await;
    assert_eq!(Backend::of_pool(&server.state().db), Backend::Postgres);
    let health = server.anon().get("/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json["database"], "ok");

    let admin = server.admin().await;
    for name in ["shop", "ab", "a-c"] {
        let r = admin
            .post_json(
                "/api/projects",
                &json!({"name": name, "description": format!("the {name} service"), "tags": ["web"]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let reader = server.token("read").await;
    let all = reader.get("/api/projects").await;
    assert_eq!(all.status, 200, "{}", all.body);
    let names: Vec<&str> = all
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Byte order, as on SQLite (a database with C collation; en_US would put "ab" first).
    assert_eq!(names, ["a-c", "ab", "shop"]);
    let found = reader.get("/api/projects?q=sho").await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.json.as_array().unwrap().len(), 1);
    assert_eq!(found.json[0]["name"], "shop");
    // The change and its activity row committed together.
    let logged: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM activity_log WHERE entity_type = 'project'")
            .fetch_one(&server.state().db)
            .await
            .unwrap();
    assert_eq!(logged, 3);
    server.stop().await;
}

/// A password in the database URL never reaches an error message (nor the log line made of
/// it): the driver's message is scrubbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_url_password_never_shows_in_errors() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url: DatabaseUrl = pg
        .url
        .replace("architect@", "architect:hunter2-secret@")
        .replace("/postgres?", "/no_such_database?")
        .parse()
        .unwrap();
    let e = db::open(&url)
        .await
        .expect_err("no such database")
        .to_string();
    assert!(!e.contains("hunter2-secret"), "{e}");
    assert!(e.contains("architect:***@"), "{e}");
    assert!(e.contains("no_such_database"), "{e}");
    let shown = format!("{url} {url:?}");
    assert!(!shown.contains("hunter2-secret"), "{shown}");
}

/// Two claimers at once on PostgreSQL (two connections, as two replicas would be): while the
/// first holds its claim uncommitted, the second takes the *next* task at once instead of
/// waiting on the first one's row lock and then finding it taken (`FOR UPDATE SKIP LOCKED`,
/// `db::Backend::claim`); and a `LIMIT 1` claim takes exactly one task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_on_postgres_take_different_tasks_without_waiting() {
    use architect::tasks::store::{claim_next, ClaimSpec};
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let pg_db = db::open(&pg.create_database("claims").await).await.unwrap();
    db::migrate(&pg_db).await.unwrap();
    let now = "2026-12-06T12:00:00.000000Z";
    let worker: i64 = sqlx::query_scalar(
        "INSERT INTO workers (name, node, concurrency, registered_by, registered_at, last_heartbeat_at)
         VALUES ('w', 'n', 2, 'test', $1, $1) RETURNING id",
    )
    .bind(now)
    .fetch_one(&pg_db)
    .await
    .unwrap();
    for _ in 0..3 {
        sqlx::query(
            "INSERT INTO task_queue (task_type, status, max_retries, timeout_s, run_after, created_by, created_at, updated_at)
             VALUES ('noop', 'pending', 3, 60, $1, 'test', $1, $1)",
        )
        .bind(now)
        .execute(&pg_db)
        .await
        .unwrap();
    }
    let spec = |token: &'static str| ClaimSpec {
        worker_id: worker,
        node: "n",
        types: &[],
        tags: &[],
        lease_token: token,
        lease_expires_at: "2026-12-06T13:00:00.000000Z",
        now,
        limit: 1,
    };
    let mut a = db::connect_one(&pg_db).await.unwrap();
    let mut b = db::connect_one(&pg_db).await.unwrap();
    let mut tx_a = db::begin_write_on(&mut a).await.unwrap();
    let first = claim_next(&mut tx_a, &spec("a")).await.unwrap();
    let mut tx_b = db::begin_write_on(&mut b).await.unwrap();
    // Without SKIP LOCKED this waits for tx_a's commit (which comes after it): bounded here.
    let second = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        claim_next(&mut tx_b, &spec("b")),
    )
    .await
    .expect("the second claim does not wait on the first one's lock")
    .unwrap();
    tx_b.commit().await.unwrap();
    tx_a.commit().await.unwrap();
    let ids = |c: &[(architect::tasks::Task, String)]| c.iter().map(|t| t.0.id).collect::<Vec<_>>();
    assert_eq!(ids(&first), [1], "LIMIT 1 takes one task, the oldest");
    assert_eq!(ids(&second), [2], "the next one, not the locked one");
    let running: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM task_queue WHERE status = 'running'")
            .fetch_one(&pg_db)
            .await
            .unwrap();
    assert_eq!(running, 2);
    pg_db.close().await;
}

/// The list cache is on on PostgreSQL too, and still right across replicas: two servers on
/// one database; each list on the reading server is read twice and the second read is a
/// cache hit, yet a change through the other server is in the very next list (its
/// notification moved this server's version: `events::replicas`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_change_through_another_replica_is_in_the_next_list() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.create_database("replicas").await;
    let a = TestServer::start_with(|c| c.database_url = Some(url.clone())).await;
    let b = TestServer::start_with(|c| c.database_url = Some(url)).await;
    assert!(b.state().list_cache.enabled());
    assert!(b.state().events.in_sync(), "listening before it serves");
    let writer = a.token("admin").await;
    let reader = b.token("read").await;
    async fn list(s: &crate::support::Session) -> usize {
        let r = s.get("/api/projects").await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json.as_array().unwrap().len()
    }
    let hits = || b.state().list_cache.stats().hits;
    for n in 1..=3 {
        let version = b.state().events.version(architect::events::Topic::Work);
        let r = writer
            .post_json("/api/projects", &json!({"name": format!("p{n}")}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        // The notification arrives at b shortly after a's answer (it is sent after the
        // commit, and heard by b's own listener): wait for it, not for a time.
        crate::support::until("b hears a's change", || async {
            (b.state().events.version(architect::events::Topic::Work) > version).then_some(())
        })
        .await;
        assert_eq!(list(&reader).await, n, "the change is in the next list");
        let before = hits();
        assert_eq!(list(&reader).await, n);
        assert_eq!(hits(), before + 1, "the second read is a cache hit");
    }
    // Answers carry a validator, and it answers 304.
    let r = reader.get("/api/projects").await;
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let again = reader
        .send(
            reader
                .request(reqwest::Method::GET, "/api/projects")
                .header("If-None-Match", &etag),
        )
        .await;
    assert_eq!(again.status, 304);
    assert!(b.state().list_cache.stats().entries > 0);
    a.stop().await;
    b.stop().await;
}
