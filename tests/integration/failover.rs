//! Failover (issue 15): two real `architect serve` processes on one PostgreSQL database, a real
//! `architect worker` and a real `architect agent` given both URLs, task and error-ingest load
//! on both replicas, and the leader `kill -9`ed in the middle of it. Always on PostgreSQL (a
//! private cluster, `support::PgCluster`), whatever `ARCHITECT_TEST_BACKEND` says: replicas
//! exist only there.
//!
//! The dispatcher's "one prompt typed once" is checked at its claim, the step before any key:
//! two pools (two replicas' worth) race to claim one queued prompt; a real agent session in
//! tmux is not started here (the dispatcher's typing is covered by tests/integration/delivery.rs
//! on one server).

use crate::support::serve_proc::{ServeProc, BIN};
use crate::support::{until, PgCluster, Session, ADMIN, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Every replica signs sessions and tokens with the same key (as a deployment must).
const SECRET_KEY: &str = "failover-test-secret-key-0123456789abcdef";

/// A replica: a real `architect serve` child on the shared database.
async fn replica(database: &str, data_dir: &Path) -> ServeProc {
    ServeProc::start_on(
        database,
        data_dir,
        &[
            ("SECRET_KEY", SECRET_KEY.into()),
            // The test's node is the `architect agent` below; two in-process agents of one
            // host would be one node.
            ("ARCHITECT_LOCAL_NODE", "false".into()),
            ("ARCHITECT_ERRORS_RATE_PER_ADDRESS", "1000000".into()),
            ("ARCHITECT_ERRORS_ADDRESS_BURST", "1000000".into()),
            ("ARCHITECT_ERRORS_RATE_PER_SOURCE", "1000000".into()),
            ("ARCHITECT_ERRORS_BURST", "1000000".into()),
            ("RUST_LOG", "info".into()),
        ],
    )
    .await
}

async fn is_leader(r: &ServeProc) -> Option<bool> {
    r.health().await.and_then(|h| h["leader"].as_bool())
}

async fn loop_status(r: &ServeProc, name: &str) -> String {
    let h = r.health().await.expect("health answers");
    h["loops"][name]["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A real `architect worker` or `architect agent` child; killed when dropped.
struct Daemon {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Daemon {
    fn start(args: &[&str], token: &str, log: PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).expect("log file");
        let child = tokio::process::Command::new(BIN)
            .args(args)
            .env("ARCHITECT_TOKEN", token)
            .env("RUST_LOG", "info")
            .env_remove("ARCHITECT_URL")
            .env_remove("ARCHITECT_TMUX_SOCKET")
            .env_remove("ARCHITECT_DATA_DIR")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("daemon starts");
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self, what: &str) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{what} exited with {status}:\n{}", self.log());
        }
    }
}

/// What the load put in and got acknowledged.
#[derive(Default)]
struct Acked {
    /// (task id, its payload's marker).
    tasks: Vec<(i64, String)>,
    /// Error groups, one per acknowledged event (each event has a type of its own).
    groups: Vec<i64>,
    /// How many requests found no server (the killed replica).
    refused: usize,
}

/// Posts tasks and error events in turn to each replica until `stop`, recording what was
/// acknowledged. A request to a dead replica is counted and skipped: it was never acknowledged.
async fn load(urls: Vec<String>, token: String, stop: Arc<AtomicBool>, acked: Arc<Mutex<Acked>>) {
    let http = reqwest::Client::new();
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let url = &urls[(i % urls.len() as u64) as usize];
        let marker = format!("[task-{i}]");
        let task = http
            .post(format!("{url}/api/tasks"))
            .bearer_auth(&token)
            .json(&json!({"type": "shell", "max_retries": 5,
                          "payload": {"command": format!("echo '{marker}'")}}))
            .send()
            .await;
        let task = answer(url, task).await;
        let event = http
            .post(format!("{url}/api/errors"))
            .bearer_auth(&token)
            .json(
                &json!({"node_id": "web-1", "error_type": format!("FailoverError{i}"),
                          "message": format!("event {i}"), "source": "failover"}),
            )
            .send()
            .await;
        let event = answer(url, event).await;
        let mut a = acked.lock().unwrap();
        match task {
            Some(v) => a.tasks.push((v["id"].as_i64().expect("task id"), marker)),
            None => a.refused += 1,
        }
        match event {
            Some(v) => a.groups.push(v["group_id"].as_i64().expect("group id")),
            None => a.refused += 1,
        }
    }
}

/// A 201's body; `None` when the request or its answer was cut (the replica died). Any other
/// status fails the test: a surviving replica must accept the load.
async fn answer(url: &str, r: reqwest::Result<reqwest::Response>) -> Option<Value> {
    let r = r.ok()?;
    let status = r.status();
    let body = r.text().await.ok()?;
    assert_eq!(status, 201, "{url} answered {status}: {body}");
    Some(serde_json::from_str(&body).expect("JSON answer"))
}

async fn pg(url: &str) -> sqlx::PgPool {
    sqlx::PgPool::connect(url)
        .await
        .expect("connect to the test database")
}

/// The test node's last heartbeat (text, UTC).
async fn heartbeat(db: &sqlx::PgPool) -> Option<String> {
    sqlx::query_scalar::<_, Option<String>>(
        "SELECT last_heartbeat_at FROM nodes WHERE name = 'failover-node'",
    )
    .fetch_optional(db)
    .await
    .expect("read node")
    .flatten()
}

async fn completed(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM task_queue WHERE status = 'completed'")
        .fetch_one(db)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_killed_under_load_hands_over_and_loses_nothing() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    let database = cluster.create_database("failover").await.to_string();
    let db = pg(&database).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut a = replica(&database, &dir.join("a")).await;
    until("replica a to lead", || async {
        is_leader(&a).await.filter(|l| *l)
    })
    .await;
    let b = replica(&database, &dir.join("b")).await;
    assert_eq!(is_leader(&b).await, Some(false), "one leader at a time");
    // The gate: leader-only loops run on a, wait on b; per-replica loops run on both.
    assert_eq!(loop_status(&a, "lease_reaper").await, "up");
    assert_eq!(loop_status(&b, "lease_reaper").await, "standby");
    assert_eq!(loop_status(&b, "error_retention").await, "standby");
    assert_eq!(loop_status(&b, "assigner_dispatch").await, "standby");
    assert_eq!(loop_status(&b, "llm_ledger").await, "up");

    let admin = architect::client::login_and_create_token(
        &a.url,
        ADMIN,
        ADMIN_PASSWORD,
        "failover-admin",
        "admin",
    )
    .await
    .expect("admin token");
    let worker_token =
        architect::client::login_and_create_token(&b.url, ADMIN, ADMIN_PASSWORD, "w", "worker")
            .await
            .expect("worker token");
    let agent_token =
        architect::client::login_and_create_token(&a.url, ADMIN, ADMIN_PASSWORD, "n", "agent")
            .await
            .expect("agent token");
    // Both daemons are given a first: they start on the replica that will die.
    let both = format!("{},{}", a.url, b.url);
    let mut worker = Daemon::start(
        &[
            "worker",
            "--dashboard",
            &both,
            "--allow-shell",
            "--concurrency",
            "4",
            "--lease-s",
            "5",
            "--wait-s",
            "2",
            "--name",
            "failover-worker",
        ],
        &worker_token,
        dir.join("worker.log"),
    );
    let agent_data = dir.join("agent-data");
    let mut agent = Daemon::start(
        &[
            "agent",
            "--dashboard",
            &a.url,
            "--dashboard",
            &b.url,
            "--node-id",
            "failover-node",
            "--interval",
            "1s",
            "--max-backoff",
            "1s",
            "--data-dir",
            agent_data.to_str().expect("utf-8 path"),
        ],
        &agent_token,
        dir.join("agent.log"),
    );
    until("the node agent's first heartbeat", || heartbeat(&db)).await;

    // Load on both replicas, before, through and after the kill.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let loader = tokio::spawn(load(
        vec![a.url.clone(), b.url.clone()],
        admin.clone(),
        stop.clone(),
        acked.clone(),
    ));
    until("the worker to complete tasks before the kill", || async {
        (completed(&db).await >= 10).then_some(())
    })
    .await;

    let killed = Instant::now();
    a.kill9().await;
    // Any later heartbeat came through b.
    let beat_at_kill = heartbeat(&db).await.expect("a heartbeat before the kill");
    let before_kill = acked.lock().unwrap().tasks.len();
    until("replica b to lead", || async {
        is_leader(&b).await.filter(|l| *l)
    })
    .await;
    let handover = killed.elapsed();
    eprintln!("handover: replica b leads {handover:?} after the leader's kill -9");
    assert_eq!(loop_status(&b, "lease_reaper").await, "up", "{}", b.log());
    assert_eq!(
        loop_status(&b, "assigner_dispatch").await,
        "up",
        "{}",
        b.log()
    );

    // The load goes on through b for a while.
    until("load acknowledged by b after the kill", || async {
        (acked.lock().unwrap().tasks.len() >= before_kill + 20).then_some(())
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    loader.await.expect("load task");
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.refused > 0, "some load went to the dead replica");
    let ids: Vec<i64> = acked.tasks.iter().map(|(id, _)| *id).collect();
    eprintln!(
        "load: {} tasks and {} error events acknowledged, {} requests refused by the dead replica",
        ids.len(),
        acked.groups.len(),
        acked.refused
    );

    // Every acknowledged task completes, exactly once, with its own payload's output.
    let n = ids.len() as i64;
    until("every acknowledged task to complete", || async {
        let done: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM task_queue WHERE id = ANY($1) AND status = 'completed'",
        )
        .bind(&ids)
        .fetch_one(&db)
        .await
        .expect("count");
        (done == n).then_some(())
    })
    .await;
    let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT task_id, COUNT(*), MAX(output) FROM task_attempts \
         WHERE task_id = ANY($1) AND outcome = 'completed' GROUP BY task_id",
    )
    .bind(&ids)
    .fetch_all(&db)
    .await
    .expect("attempts");
    assert_eq!(rows.len(), ids.len(), "one completed attempt per task");
    for (id, marker) in &acked.tasks {
        let (_, count, output) = rows.iter().find(|r| r.0 == *id).expect("attempt row");
        assert_eq!(*count, 1, "task {id} completed {count} times");
        let output = output.as_deref().unwrap_or_default();
        assert!(output.contains(marker.as_str()), "task {id}: {output}");
    }

    // Every acknowledged error event is stored (one group each, one occurrence each).
    let stored: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, occurrences FROM errors WHERE id = ANY($1)")
            .bind(&acked.groups)
            .fetch_all(&db)
            .await
            .expect("groups");
    assert_eq!(
        stored.len(),
        acked.groups.len(),
        "every acknowledged event's group"
    );
    assert!(stored.iter().all(|(_, n)| *n == 1), "{stored:?}");

    // The worker and the node agent went on through b, and said so.
    worker.assert_running("the worker");
    agent.assert_running("the node agent");
    assert!(
        worker.log().contains("switched to the next one"),
        "{}",
        worker.log()
    );
    until("a node heartbeat through b", || async {
        heartbeat(&db).await.filter(|t| *t > beat_at_kill)
    })
    .await;
    assert!(
        agent.log().contains("switched to the next one"),
        "{}",
        agent.log()
    );
    // The leadership changes are in the activity log.
    let leads: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM activity_log WHERE actor = 'system' AND action = 'lead' \
         AND entity_type = 'replica'",
    )
    .fetch_one(&db)
    .await
    .expect("activity");
    assert_eq!(leads, 2, "a led, then b");
    let session = Session::new(&b.url, Some(admin));
    assert_eq!(session.get("/api/tasks?limit=1").await.status, 200);
}

/// Two dispatchers that both believe they lead (the moment before the old leader's check
/// fails) race to claim one queued prompt: the claim is a conditional UPDATE in the database,
/// made before any key, so exactly one wins and only it may type.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatchers_racing_for_one_prompt_claim_it_once() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    let url = cluster.create_database("claimrace").await;
    let one = architect::db::open(&url).await.expect("open");
    architect::db::migrate(&one).await.expect("migrate");
    let two = architect::db::open(&url).await.expect("open");
    let now = "2026-12-07T00:00:00.000000Z";
    for round in 0..20 {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO assigner_prompts (content, status, node, timeout_minutes, max_retries, \
             created_by, created_at, updated_at) \
             VALUES ($1, 'pending', 'local', 30, 3, 'test', $2, $2) RETURNING id",
        )
        .bind(format!("prompt {round}"))
        .bind(now)
        .fetch_one(&one)
        .await
        .expect("queue a prompt");
        let claims = (0..8).map(|k| {
            let db = if k % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                architect::agents::assigner::store::claim(
                    &db,
                    id,
                    "local",
                    &format!("agent-{round}-{k}"),
                    &format!("token-{k}"),
                    now,
                )
                .await
                .expect("claim")
            })
        });
        let mut won = 0;
        for c in claims {
            won += usize::from(c.await.expect("join"));
        }
        assert_eq!(won, 1, "round {round}: one claim wins");
    }
    // Two different prompts for one session, claimed at once by the two: the session takes
    // one (the claim's re-check cannot see the other's uncommitted claim; the index can).
    for round in 0..20 {
        let mut ids = Vec::new();
        for k in 0..2 {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO assigner_prompts (content, status, node, timeout_minutes, \
                 max_retries, created_by, created_at, updated_at) \
                 VALUES ($1, 'pending', 'local', 30, 3, 'test', $2, $2) RETURNING id",
            )
            .bind(format!("same session {round} {k}"))
            .bind(now)
            .fetch_one(&one)
            .await
            .expect("queue a prompt");
            ids.push(id);
        }
        let session = format!("shared-{round}");
        let claims = ids.iter().enumerate().map(|(k, &id)| {
            let db = if k == 0 { one.clone() } else { two.clone() };
            let session = session.clone();
            tokio::spawn(async move {
                architect::agents::assigner::store::claim(&db, id, "local", &session, "t", now)
                    .await
                    .expect("claim")
            })
        });
        let mut won = 0;
        for c in claims {
            won += usize::from(c.await.expect("join"));
        }
        assert_eq!(won, 1, "round {round}: the session takes one prompt");
    }
    let assigns: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM activity_log WHERE actor = 'assigner' AND action = 'assign'",
    )
    .fetch_one(&one)
    .await
    .expect("activity");
    assert_eq!(assigns, 40, "one activity row per claim that won");
}
