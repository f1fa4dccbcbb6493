//! Local workers supervised by `serve` (`POST /api/workers/start/<type>`) belong to the replica
//! that started them: `supervised_workers.replica` (migration 0029) records it, a replica
//! restores only its own at start and stops only its own (409 naming the owner otherwise).
//! The two-replica test runs real `architect serve` processes on one PostgreSQL database
//! whatever `ARCHITECT_TEST_BACKEND` says (replicas exist only there); the adoption of a row
//! from before migration 0029 runs on the run's backend.

use crate::support::serve_proc::{ServeProc, BIN};
use crate::support::{until, PgCluster, Session, TestServer};
use serde_json::{json, Value};

/// Every replica signs sessions and tokens with the same key (as a deployment must).
const SECRET_KEY: &str = "supervised-replicas-secret-key-0123456789abcdef";

/// Whether `pid` runs (a zombie nobody reaped has ended).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // The state follows the command name in parentheses, which may hold spaces.
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
    })
}

/// Worker processes that a `kill -9`ed `serve` left behind (their own process group), and any
/// a failing test leaves: killed when the test ends, however it ends.
#[derive(Default)]
struct Orphans(Vec<i32>);

impl Orphans {
    fn kill(&mut self, pid: i32) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        self.0.retain(|p| *p != pid);
    }
}

impl Drop for Orphans {
    fn drop(&mut self) {
        for pid in std::mem::take(&mut self.0) {
            self.kill(pid);
        }
    }
}

async fn replica_of(url: &str) -> String {
    let h: Value = reqwest::get(format!("{url}/health"))
        .await
        .expect("health answers")
        .json()
        .await
        .expect("health is JSON");
    h["replica"]
        .as_str()
        .expect("health names its replica")
        .to_string()
}

async fn supervised(admin: &Session) -> Vec<Value> {
    let s = admin.get("/api/workers/status").await;
    assert_eq!(s.status, 200, "{}", s.body);
    s.json["supervised"].as_array().expect("a list").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_supervised_worker_is_restored_by_the_replica_that_started_it_and_by_no_other() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    let database = cluster
        .create_database("supervised_replicas")
        .await
        .to_string();
    let env = [
        ("DATABASE_URL", database),
        ("SECRET_KEY", SECRET_KEY.to_string()),
        ("ARCHITECT_WORKER_BIN", BIN.to_string()),
        // Every built-in type runs programs: serve starts local workers only when allowed to.
        ("ARCHITECT_WORKER_ALLOW_SHELL", "true".to_string()),
        // Two in-process agents of one host would be one node.
        ("ARCHITECT_LOCAL_NODE", "false".to_string()),
    ];
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut orphans = Orphans::default();
    let mut a = ServeProc::start(&tmp.path().join("a"), &env).await;
    let mut b = ServeProc::start(&tmp.path().join("b"), &env).await;
    let (id_a, id_b) = (replica_of(&a.url).await, replica_of(&b.url).await);
    assert_ne!(id_a, id_b, "each data dir names its own replica");
    let admin_a = a.token("admin").await;
    let admin_b = b.token("admin").await;

    // a starts the git worker: it is a's.
    let r = admin_a
        .post_json("/api/workers/start/git", &json!({}))
        .await;
    assert_eq!(
        (
            r.status,
            r.json["state"].as_str(),
            r.json["replica"].as_str()
        ),
        (200, Some("running"), Some(id_a.as_str())),
        "{}",
        r.body
    );
    let first_pid = r.json["pid"].as_i64().expect("a pid") as i32;
    orphans.0.push(first_pid);

    // b lists it as a's, and can neither start a second one nor stop a's.
    let listed = supervised(&admin_b).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0]["type"].as_str(),
            listed[0]["state"].as_str(),
            listed[0]["replica"].as_str(),
            listed[0]["pid"].as_i64()
        ),
        (Some("git"), Some("elsewhere"), Some(id_a.as_str()), None),
        "{listed:?}"
    );
    let page = b.admin().await.get("/workers").await;
    assert!(
        page.status == 200
            && page.body.contains(&format!("kept by replica {id_a}"))
            && page.body.contains(r#"name="forget" value="1""#),
        "b's Workers page names the owner and offers to forget its claim: {}",
        page.body
    );
    for action in ["start", "stop"] {
        let r = admin_b
            .post_json(&format!("/api/workers/{action}/git"), &json!({}))
            .await;
        if let Some(pid) = r.json["pid"].as_i64() {
            orphans.0.push(pid as i32);
        }
        assert_eq!(
            (r.status, r.json["code"].as_str()),
            (409, Some("conflict")),
            "{action}: {}",
            r.body
        );
        assert!(
            r.json["error"].as_str().unwrap_or("").contains(&id_a),
            "{action} names the owner: {}",
            r.body
        );
    }

    // b restarts (kill -9, then the same data dir): it is still b and starts nothing of a's.
    b.kill9().await;
    b.restart().await;
    assert_eq!(
        replica_of(&b.url).await,
        id_b,
        "a restart keeps the replica id"
    );
    let listed = supervised(&admin_b).await;
    orphans.0.extend(
        listed
            .iter()
            .filter_map(|p| p["pid"].as_i64())
            .map(|p| p as i32),
    );
    assert!(
        listed.iter().all(|p| p["state"] == "elsewhere"),
        "b runs no supervised worker after its restart: {listed:?}"
    );
    let b_log = b.data_dir.join("logs").join("worker-git.log");
    assert!(
        !b_log.exists(),
        "b never started a git worker process (it would log to {})",
        b_log.display()
    );

    // a restarts: its worker comes back, started by a. The one a kill -9 left behind ended
    // with its serve (it gets SIGTERM when serve dies), so one worker runs, not two.
    a.kill9().await;
    until("a's worker to end with its killed serve", || async {
        (!alive(first_pid)).then_some(())
    })
    .await;
    orphans.0.retain(|p| *p != first_pid);
    a.restart().await;
    assert_eq!(replica_of(&a.url).await, id_a);
    let listed = supervised(&admin_a).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0]["type"].as_str(),
            listed[0]["state"].as_str(),
            listed[0]["replica"].as_str()
        ),
        (Some("git"), Some("running"), Some(id_a.as_str())),
        "{listed:?}"
    );
    let second_pid = listed[0]["pid"].as_i64().expect("a pid") as i32;
    orphans.0.push(second_pid);
    assert_ne!(second_pid, first_pid);
    until("the restored worker to register", || async {
        let r = admin_a.get("/api/workers").await;
        r.json
            .as_array()?
            .iter()
            .any(|x| x["name"] == "serve-git" && x["state"] == "online")
            .then_some(())
    })
    .await;

    // Its owner stops it; then no replica lists it.
    let r = admin_a.post_json("/api/workers/stop/git", &json!({})).await;
    assert_eq!(
        (r.status, r.json["state"].as_str()),
        (200, Some("stopped")),
        "{}",
        r.body
    );
    orphans.0.retain(|p| *p != second_pid);
    assert!(supervised(&admin_b).await.is_empty());
    assert!(supervised(&admin_a).await.is_empty());
    let r = admin_b.post_json("/api/workers/stop/git", &json!({})).await;
    assert_eq!(r.status, 404, "{}", r.body);

    // a keeps it again and is then gone for good (kill -9, never restarted): b cannot stop
    // what a keeps, but may forget a's claim, which the 409 says how to do; then b keeps the
    // type itself.
    let r = admin_a
        .post_json("/api/workers/start/git", &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let third_pid = r.json["pid"].as_i64().expect("a pid") as i32;
    orphans.0.push(third_pid);
    a.kill9().await;
    until("a's worker to end with its killed serve", || async {
        (!alive(third_pid)).then_some(())
    })
    .await;
    orphans.0.retain(|p| *p != third_pid);
    let r = admin_b.post_json("/api/workers/stop/git", &json!({})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("forget=true"), "{}", r.body);
    let r = admin_b
        .post_json("/api/workers/stop/git?forgot=true", &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("forgot")),
        "an unknown parameter is refused: {}",
        r.body
    );
    let r = admin_b
        .post_json("/api/workers/stop/git?forget=true", &json!({}))
        .await;
    assert_eq!(
        (
            r.status,
            r.json["state"].as_str(),
            r.json["replica"].as_str()
        ),
        (200, Some("stopped"), Some(id_a.as_str())),
        "{}",
        r.body
    );
    assert!(supervised(&admin_b).await.is_empty());
    let log = admin_b.get("/api/activity?entity=supervised_worker").await;
    let newest = &log.json.as_array().expect("a list")[0];
    assert_eq!(
        (
            newest["action"].as_str(),
            newest["details"]["replica"].as_str()
        ),
        (Some("stop"), Some(id_a.as_str())),
        "the forgetting is logged with the replica it forgot: {}",
        log.body
    );
    let r = admin_b
        .post_json("/api/workers/start/git", &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json["replica"].as_str()),
        (200, Some(id_b.as_str())),
        "{}",
        r.body
    );
    if let Some(pid) = r.json["pid"].as_i64() {
        orphans.0.push(pid as i32);
    }
    let r = admin_b.post_json("/api/workers/stop/git", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_supervised_worker_recorded_before_replicas_is_adopted_at_the_next_start() {
    let allow = |c: &mut architect::config::ServeConfig| {
        c.worker_bin = Some(BIN.into());
        c.worker_allow_shell = true;
    };
    let t = TestServer::start_with(allow).await;
    let replica = t.state().leadership.replica().to_string();
    let admin = t.token("admin").await;
    let r = admin.post_json("/api/workers/start/git", &json!({})).await;
    assert_eq!(
        (r.status, r.json["replica"].as_str()),
        (200, Some(replica.as_str())),
        "{}",
        r.body
    );
    // As a row written before migration 0029: no replica recorded.
    sqlx::query("UPDATE supervised_workers SET replica = NULL")
        .execute(&t.state().db)
        .await
        .expect("clear the owner");
    let t = t.restart_with(allow).await;
    assert_eq!(
        t.state().leadership.replica(),
        replica,
        "same data dir, same replica"
    );
    let admin = t.token("admin").await;
    let listed = supervised(&admin).await;
    assert_eq!(
        (
            listed.len(),
            listed[0]["state"].as_str(),
            listed[0]["replica"].as_str()
        ),
        (1, Some("running"), Some(replica.as_str())),
        "{listed:?}"
    );
    let owner: Option<String> =
        sqlx::query_scalar("SELECT replica FROM supervised_workers WHERE task_type = 'git'")
            .fetch_one(&t.state().db)
            .await
            .expect("the row");
    assert_eq!(owner.as_deref(), Some(replica.as_str()), "adopted");
    let r = admin.post_json("/api/workers/stop/git", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin.post_json("/api/workers/stop/git", &json!({})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    // Each change of the record wrote its activity row.
    let log = admin.get("/api/activity?entity=supervised_worker").await;
    let mut actions: Vec<&str> = log
        .json
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    actions.reverse();
    assert_eq!(actions, ["start", "adopt", "stop"], "{}", log.body);
}

/// The Workers page of a replica shows a type another replica keeps, and its Forget button
/// (for a replica gone for good) forgets that claim through the page's form.
#[tokio::test(flavor = "multi_thread")]
async fn a_gone_replicas_claim_is_forgotten_from_the_workers_page() {
    if !crate::browser::browser_available() {
        return;
    }
    let t = TestServer::start_with(|c| {
        c.worker_bin = Some(BIN.into());
        c.worker_allow_shell = true;
    })
    .await;
    let admin_id: i64 = sqlx::query_scalar("SELECT id FROM users ORDER BY id LIMIT 1")
        .fetch_one(&t.state().db)
        .await
        .expect("the admin");
    // As another replica, since gone, left it.
    sqlx::query(
        "INSERT INTO supervised_workers (task_type, started_by, started_at, replica)
         VALUES ('python', $1, '2026-12-01T10:00:00.000000Z', 'gone-host-1a2b3c4d')",
    )
    .bind(admin_id)
    .execute(&t.state().db)
    .await
    .expect("another replica's claim");
    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = crate::browser::Driver::start(tmp.path()).await;
    let b = crate::browser::Browser::open(&driver, &tmp.path().join("profile")).await;
    crate::browser::log_in(&b, &t).await;
    b.resize(1400, 1000).await;
    b.goto(&format!("{}/workers", t.url)).await;
    b.wait_text("main", "kept by replica gone-host-1a2b3c4d")
        .await;
    b.screenshot("workers-elsewhere").await;
    b.click("form:has(input[name=forget]) button").await;
    b.wait_text(
        ".flash",
        "Forgot replica gone-host-1a2b3c4d's claim on the local python worker.",
    )
    .await;
    b.screenshot("workers-forgot").await;
    b.quit().await;
    let admin = t.token("admin").await;
    assert!(supervised(&admin).await.is_empty());
    let log = admin.get("/api/activity?entity=supervised_worker").await;
    let newest = &log.json.as_array().expect("a list")[0];
    assert_eq!(
        (
            newest["action"].as_str(),
            newest["details"]["replica"].as_str()
        ),
        (Some("stop"), Some("gone-host-1a2b3c4d")),
        "{}",
        log.body
    );
}
