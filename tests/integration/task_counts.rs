//! Task counts kept by the database (issue 15 item 5, migration 0021): `GET /api/tasks/counts`,
//! the Tasks panel and the overview read counters that triggers move with every status change,
//! never a `GROUP BY` over the queue. Each test compares them with that `GROUP BY`, the truth:
//! after every kind of transition (enqueue, claim, batch claim, complete, batch complete with
//! `next`, fail and back off, dead, retry, cancel, release, lease expiry, a DELETE by hand);
//! under concurrent enqueues, claims and completions with folds running meanwhile; on two
//! PostgreSQL replicas of one database; and after the migration's backfill of a queue that
//! already holds tasks.
//!
//! They run on the suite's backend (the replica test always on PostgreSQL, as replicas.rs).
//! On PostgreSQL the triggers insert deltas that the leader folds every second; the checks
//! hold whether or not a fold ran in between, and each test also folds by hand
//! (`tasks::store::fold_status_deltas`) and checks again.

use crate::support::{PgCluster, Session, TestServer};
use architect::client::Client;
use architect::db::{self, Backend, Db};
use architect::tasks::{
    store, ClaimRequest, CompleteRequest, FailRequest, NewTask, RegisterWorker, StatusCounts,
};
use serde_json::{json, Value};

/// The truth: the queue counted directly.
async fn grouped(db: &Db) -> StatusCounts {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM task_queue GROUP BY status")
            .fetch_all(db)
            .await
            .unwrap();
    let mut c = StatusCounts::default();
    for (s, n) in rows {
        c.add(s.parse().unwrap(), n);
    }
    c
}

async fn deltas(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM task_status_deltas")
        .fetch_one(db)
        .await
        .unwrap()
}

/// The endpoint's answer equals the `GROUP BY`, before and after a fold; after the fold no
/// delta is left (PostgreSQL) and on SQLite none ever is.
async fn check(t: &TestServer, s: &Session, when: &str) -> StatusCounts {
    let db = &t.state().db;
    let expected = grouped(db).await;
    let r = s.get("/api/tasks/counts").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got: StatusCounts = serde_json::from_value(r.json).unwrap();
    assert_eq!(
        got, expected,
        "{when}: GET /api/tasks/counts against the GROUP BY"
    );
    store::fold_status_deltas(db).await.unwrap();
    assert_eq!(deltas(db).await, 0, "{when}: folded");
    assert_eq!(
        store::status_counts(db).await.unwrap(),
        expected,
        "{when}: after a fold"
    );
    expected
}

fn lease(r: &crate::support::Resp) -> (i64, String) {
    assert_eq!(r.status, 200, "{}", r.body);
    (
        r.json["task"]["id"].as_i64().expect("a task was claimed"),
        r.json["task"]["lease_token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_equal_the_group_by_after_every_kind_of_transition() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = crate::tasks::register(&w, "counter").await;
    let claim = |extra: Value| {
        let mut body = json!({"worker_id": wid, "lease_s": 30});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let w = &w;
        async move { w.post_json("/api/tasks/claim", &body).await }
    };
    let empty = check(&t, &admin, "empty queue").await;
    assert_eq!(empty, StatusCounts::default());

    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            crate::tasks::enqueue(
                &admin,
                json!({"type": "noop", "priority": i % 3, "max_retries": 1}),
            )
            .await,
        );
    }
    let c = check(&t, &admin, "12 enqueued").await;
    assert_eq!(c.pending, 12);

    // claim + complete
    let (id, tok) = lease(&claim(json!({})).await);
    check(&t, &admin, "one running").await;
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/complete"),
            &json!({"lease_token": tok}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    check(&t, &admin, "one completed").await;

    // A batch claim, then one batched completion whose `next` leases two more.
    let r = claim(json!({"max_tasks": 3})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let results: Vec<Value> = r.json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!({"id": t["id"], "lease_token": t["lease_token"]}))
        .collect();
    assert_eq!(results.len(), 3);
    check(&t, &admin, "a batch claimed").await;
    let r = w
        .post_json(
            "/api/tasks/complete",
            &json!({"results": results, "next": {"worker_id": wid, "max_tasks": 2}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = check(&t, &admin, "a batch completed, two leased by next").await;
    assert_eq!((c.completed, c.running), (4, 2), "{c:?}");

    // fail → back to pending (backoff) → claimed again → fail → dead → retry → pending
    let (id, tok) = lease(&claim(json!({})).await);
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/fail"),
            &json!({"lease_token": tok, "error": "boom"}),
        )
        .await;
    assert_eq!(r.json["status"], "pending", "{}", r.body);
    check(&t, &admin, "failed, backing off").await;
    t.clock.advance(10);
    let mut again = None;
    while again.is_none() {
        let r = claim(json!({})).await;
        let (cid, ctok) = lease(&r);
        if cid == id {
            again = Some(ctok);
        } else {
            // Another pending task came first: finish it.
            let r = w
                .post_json(
                    &format!("/api/tasks/{cid}/complete"),
                    &json!({"lease_token": ctok}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/fail"),
            &json!({"lease_token": again.unwrap(), "error": "boom again"}),
        )
        .await;
    assert_eq!(r.json["status"], "dead", "{}", r.body);
    let c = check(&t, &admin, "dead").await;
    assert_eq!(c.dead, 1);
    let r = admin
        .post_json(&format!("/api/tasks/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.json["status"], "pending", "{}", r.body);
    check(&t, &admin, "dead → pending by retry").await;

    // fail without retry → failed → retry (failed → pending)
    let (id, tok) = lease(&claim(json!({})).await);
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/fail"),
            &json!({"lease_token": tok, "error": "bad payload", "retryable": false}),
        )
        .await;
    assert_eq!(r.json["status"], "failed", "{}", r.body);
    check(&t, &admin, "failed").await;
    let r = admin
        .post_json(&format!("/api/tasks/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.json["status"], "pending", "{}", r.body);
    check(&t, &admin, "failed → pending by retry").await;

    // release (running → pending), cancel running, cancel pending
    let (id, tok) = lease(&claim(json!({})).await);
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/release"),
            &json!({"lease_token": tok}),
        )
        .await;
    assert_eq!(r.json["status"], "pending", "{}", r.body);
    check(&t, &admin, "released").await;
    let (id, _) = lease(&claim(json!({})).await);
    let r = admin
        .post_json(&format!("/api/tasks/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.json["status"], "cancelled", "{}", r.body);
    let pending = crate::tasks::enqueue(&admin, json!({"type": "noop"})).await;
    let r = admin
        .post_json(&format!("/api/tasks/{pending}/cancel"), &json!({}))
        .await;
    assert_eq!(r.json["status"], "cancelled", "{}", r.body);
    let c = check(&t, &admin, "cancelled while running and while pending").await;
    assert_eq!(c.cancelled, 2);

    // Lease expiry: two running tasks outlive their leases; the reaper sends them back.
    lease(&claim(json!({"lease_s": 5})).await);
    lease(&claim(json!({"lease_s": 5})).await);
    let before = check(&t, &admin, "running tasks, leases about to expire").await;
    assert!(before.running >= 2, "{before:?}");
    // Past every lease (the default is 60 s); the server's own reaper loop may get there first.
    t.clock.advance(3600);
    architect::background::lease_reaper_tick(t.state())
        .await
        .unwrap();
    let after = check(&t, &admin, "expired leases reaped").await;
    assert_eq!(after.running, 0, "{after:?}");
    assert_eq!(
        after.pending + after.dead,
        before.pending + before.dead + before.running
    );

    // Tasks are never deleted by the server; a DELETE by hand is counted too.
    let victims: Vec<i64> = ids.iter().take(3).copied().collect();
    for id in &victims {
        sqlx::query("DELETE FROM task_queue WHERE id = $1")
            .bind(id)
            .execute(&t.state().db)
            .await
            .unwrap();
    }
    let total =
        |c: &StatusCounts| c.pending + c.running + c.completed + c.failed + c.dead + c.cancelled;
    let c = check(&t, &admin, "three deleted by hand").await;
    assert_eq!(total(&c), 13 - 3);

    // The overview's task numbers come from the same counters.
    crate::tasks::enqueue(&admin, json!({"type": "noop"})).await;
    let expected = check(&t, &admin, "one more enqueued").await;
    let r = admin.get("/api/overview").await;
    assert_eq!(r.status, 200, "{}", r.body);
    for status in architect::tasks::TaskStatus::ALL {
        assert_eq!(
            r.json["tasks"][status.as_str()].as_i64(),
            Some(expected.get(*status)),
            "overview, {status:?}: {}",
            r.json["tasks"]
        );
    }
}

/// Several clients enqueue, claim, complete and fail at once (each through its own requests,
/// so the group-commit writer batches them), while folds run from two tasks at once (as when
/// two replicas briefly both believe they lead). The counts are exact at the end, folded or
/// not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enqueues_claims_and_folds_keep_the_counts_exact() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let worker = t.token("worker").await;
    let urls = [t.url.as_str()];
    let load = concurrent_load(
        &urls,
        admin.token.as_deref().unwrap(),
        worker.token.as_deref().unwrap(),
        "solo",
    );
    let db = t.state().db.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let folders: Vec<_> = (0..2)
        .map(|_| {
            let (db, stop) = (db.clone(), stop.clone());
            tokio::spawn(async move {
                let mut folds = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store::fold_status_deltas(&db).await.unwrap();
                    folds += 1;
                    tokio::task::yield_now().await;
                }
                folds
            })
        })
        .collect();
    load.await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in folders {
        assert!(f.await.unwrap() > 0);
    }
    let c = check(&t, &admin, "after the concurrent load").await;
    assert_eq!(
        c.pending + c.running + c.completed + c.failed + c.dead + c.cancelled,
        (CLIENTS * PER_CLIENT) as i64
    );
    assert!(c.completed > 0 && c.failed > 0, "{c:?}");
}

const CLIENTS: usize = 6;
const PER_CLIENT: usize = 40;

/// `CLIENTS` tasks each enqueue `PER_CLIENT` tasks and claim/finish as they go (every third
/// completion is a non-retryable failure), each on `urls[k % len]`; some tasks stay pending or
/// running. Returns when all are done.
async fn concurrent_load(urls: &[&str], admin: &str, worker: &str, name: &str) {
    let mut jobs = Vec::new();
    for k in 0..CLIENTS {
        let url = urls[k % urls.len()];
        let queue = Client::new(url, Some(admin));
        let w = Client::new(url, Some(worker));
        let name = format!("{name}-{k}");
        jobs.push(tokio::spawn(async move {
            let wid = w
                .register_worker(&RegisterWorker {
                    name,
                    node: "counts".into(),
                    concurrency: 4,
                    ..Default::default()
                })
                .await
                .unwrap()
                .id;
            for i in 0..PER_CLIENT {
                queue
                    .create_task(&NewTask {
                        task_type: "noop".into(),
                        max_retries: Some(0),
                        ..NewTask::default()
                    })
                    .await
                    .unwrap();
                if i % 4 == 3 {
                    continue; // leaves some work pending
                }
                let claimed = w
                    .claim_task(&ClaimRequest {
                        worker_id: wid,
                        max_tasks: Some(2),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_tasks();
                for (j, c) in claimed.into_iter().enumerate() {
                    if j == 1 && i % 5 == 0 {
                        continue; // leaves it running
                    }
                    if i % 3 == 0 {
                        w.fail_task(
                            c.task.id,
                            &FailRequest {
                                lease_token: c.lease_token,
                                error: "no".into(),
                                retryable: Some(false),
                                ..Default::default()
                            },
                        )
                        .await
                        .unwrap();
                    } else {
                        w.complete_task(
                            c.task.id,
                            &CompleteRequest {
                                lease_token: c.lease_token,
                                ..Default::default()
                            },
                        )
                        .await
                        .unwrap();
                    }
                }
            }
        }));
    }
    for j in jobs {
        j.await.unwrap();
    }
}

/// Two `serve` replicas on one PostgreSQL database take the load together; both answer the
/// same exact counts, before and after the leader's fold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_postgres_replicas_answer_the_same_exact_counts() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.create_database("task_counts_replicas").await;
    let start = |url| {
        TestServer::start_with(move |c| {
            c.database_url = Some(url);
            c.secret_key = Some("task-counts-replicas-shared-key-0123456789".into());
        })
    };
    let a = start(url.clone()).await;
    let b = start(url).await;
    let admin = a.token("admin").await;
    let worker = a.token("worker").await;
    concurrent_load(
        &[a.url.as_str(), b.url.as_str()],
        admin.token.as_deref().unwrap(),
        worker.token.as_deref().unwrap(),
        "pair",
    )
    .await;
    let on_b = Session::new(&b.url, admin.token.clone());
    let expected = grouped(&a.state().db).await;
    for s in [&admin, &on_b] {
        let r = s.get("/api/tasks/counts").await;
        let got: StatusCounts = serde_json::from_value(r.json).unwrap();
        assert_eq!(got, expected, "{}", s.base);
    }
    // Both fold at once (each believing it leads), then both answer again.
    let (x, y) = tokio::join!(
        store::fold_status_deltas(&a.state().db),
        store::fold_status_deltas(&b.state().db)
    );
    x.unwrap();
    y.unwrap();
    assert_eq!(deltas(&a.state().db).await, 0);
    check(&a, &admin, "replica a, folded").await;
    check(&b, &on_b, "replica b, folded").await;
    assert_eq!(
        expected.pending + expected.running + expected.completed + expected.failed,
        (CLIENTS * PER_CLIENT) as i64
    );
}

/// Migration 0021 counts the tasks a database already holds: a queue filled on the schema
/// before it (0020), then migrated, answers the `GROUP BY`'s counts; and the triggers count
/// what happens after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_backfills_the_counts_of_an_existing_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (url, backend) = match crate::support::database_url_for(dir.path()) {
        Some(url) => (url, "postgres"),
        None => (db::DatabaseUrl::sqlite_in(dir.path()), "sqlite"),
    };
    let db = db::open(&url).await.unwrap();
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut before = sqlx::migrate::Migrator::new(migrations).await.unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 21)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&db).await.unwrap();
    for (i, status) in [
        "pending",
        "running",
        "completed",
        "completed",
        "failed",
        "dead",
        "cancelled",
        "completed",
    ]
    .iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO task_queue (task_type, status, max_retries, timeout_s, run_after,
                 created_by, created_at, updated_at)
             VALUES ('noop', $1, 0, 60, $2, 'test', $2, $2)",
        )
        .bind(status)
        .bind(format!("2026-01-01T00:00:0{i}.000000Z"))
        .execute(&db)
        .await
        .unwrap();
    }
    assert!(
        db::migrate(&db).await.unwrap() >= 1,
        "0021 was left to apply"
    );
    let expected = grouped(&db).await;
    assert_eq!(expected.completed, 3);
    assert_eq!(store::status_counts(&db).await.unwrap(), expected);
    assert_eq!(
        deltas(&db).await,
        0,
        "the backfill writes counters, not deltas"
    );
    // From now on the triggers count.
    sqlx::query("UPDATE task_queue SET status = 'completed' WHERE status = 'pending'")
        .execute(&db)
        .await
        .unwrap();
    let expected = grouped(&db).await;
    assert_eq!((expected.pending, expected.completed), (0, 4));
    assert_eq!(store::status_counts(&db).await.unwrap(), expected);
    assert_eq!(
        deltas(&db).await > 0,
        Backend::of_pool(&db) == Backend::Postgres
    );
    store::fold_status_deltas(&db).await.unwrap();
    assert_eq!(store::status_counts(&db).await.unwrap(), expected);
    db.close().await;
    crate::support::drop_database_of(dir.path()).await;
}
