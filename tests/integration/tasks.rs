//! The task queue over real HTTP: leased claims, stale answers refused, retries and `dead`,
//! long-poll, workers, auth, bad input; a property test with many workers and random kills;
//! and real `architect worker` processes running every built-in type, killing process trees on
//! timeout and cancel, surviving `kill -9`, daemon mode, and workers supervised by `serve`.

use crate::support::{until, DEADLINE};
use crate::support::{Resp, Session, TestServer};
use architect::client::{Client, ClientError};
use architect::tasks::{ClaimRequest, CompleteRequest, NewTask};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../../examples/custom_handler.rs"]
#[allow(dead_code)]
mod custom_handler_example;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_architect");
pub(crate) fn token(s: &Session) -> String {
    s.token.clone().expect("bearer token")
}

pub(crate) async fn register(w: &Session, name: &str) -> i64 {
    let r = w
        .post_json(
            "/api/workers/register",
            &json!({"name": name, "node": "test-node", "concurrency": 2}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().unwrap()
}

pub(crate) async fn enqueue(s: &Session, body: Value) -> i64 {
    let r = s.post_json("/api/tasks", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().unwrap()
}

async fn claim(w: &Session, worker_id: i64, extra: Value) -> Resp {
    let mut body = json!({"worker_id": worker_id});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = w.post_json("/api/tasks/claim", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

pub(crate) async fn task(s: &Session, id: i64) -> Value {
    let r = s.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json
}

fn outcomes(t: &Value) -> Vec<String> {
    t["attempts_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// the queue API
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn claims_take_the_highest_priority_then_the_oldest_and_are_leased() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = register(&w, "w1").await;
    let low = enqueue(&admin, json!({"type": "noop", "priority": 1})).await;
    let high_old = enqueue(&admin, json!({"type": "noop", "priority": 9})).await;
    let high_new = enqueue(&admin, json!({"type": "noop", "priority": 9})).await;
    let other = enqueue(&admin, json!({"type": "other", "priority": 10})).await;
    let pinned = enqueue(
        &admin,
        json!({"type": "noop", "priority": 10, "node": "elsewhere"}),
    )
    .await;
    let tagged = enqueue(
        &admin,
        json!({"type": "noop", "priority": 10, "tags": ["gpu"]}),
    )
    .await;

    let mut order = Vec::new();
    let mut tokens = HashMap::new();
    for _ in 0..3 {
        let r = claim(&w, wid, json!({"types": ["noop"]})).await;
        let id = r.json["task"]["id"].as_i64().unwrap();
        assert_eq!(r.json["task"]["status"], "running");
        assert!(r.json["task"]["lease_expires_at"].is_string());
        tokens.insert(
            id,
            r.json["task"]["lease_token"].as_str().unwrap().to_string(),
        );
        order.push(id);
    }
    assert_eq!(
        order,
        [high_old, high_new, low],
        "priority, then age; pinned and tagged skipped"
    );
    let none = claim(&w, wid, json!({"types": ["noop"]})).await;
    assert!(none.json["task"].is_null(), "{}", none.body);
    // Tags must be offered; the node must match.
    let r = claim(&w, wid, json!({"types": ["noop"], "tags": ["gpu", "ssd"]})).await;
    assert_eq!(r.json["task"]["id"].as_i64(), Some(tagged));
    let r = claim(&w, wid, json!({})).await;
    assert_eq!(
        r.json["task"]["id"].as_i64(),
        Some(other),
        "default: any type"
    );
    let _ = pinned;

    // The lease token is not visible to readers.
    let listed = admin.get("/api/tasks?status=running").await;
    assert_eq!(listed.json.as_array().unwrap().len(), 5);
    assert!(!listed.body.contains(&tokens[&low]));

    // Heartbeat extends; complete needs the token.
    let hb = w
        .post_json(
            &format!("/api/tasks/{low}/heartbeat"),
            &json!({"lease_token": tokens[&low], "lease_s": 600}),
        )
        .await;
    assert_eq!(hb.status, 200, "{}", hb.body);
    let wrong = w
        .post_json(
            &format!("/api/tasks/{low}/complete"),
            &json!({"lease_token": "nope"}),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.json["code"].as_str()),
        (409, Some("lease_lost"))
    );
    let ok = w
        .post_json(
            &format!("/api/tasks/{low}/complete"),
            &json!({"lease_token": tokens[&low], "result": {"n": 1}, "output": "done", "exit_code": 0, "duration_ms": 12}),
        )
        .await;
    assert_eq!(
        (ok.status, ok.json["status"].as_str()),
        (200, Some("completed")),
        "{}",
        ok.body
    );
    let d = task(&admin, low).await;
    assert_eq!(
        (
            d["status"].as_str(),
            d["result"]["n"].as_i64(),
            d["output"].as_str()
        ),
        (Some("completed"), Some(1), Some("done"))
    );
    assert_eq!(outcomes(&d), ["completed"]);
    assert_eq!(d["attempts_history"][0]["worker_id"].as_i64(), Some(wid));
    // Completing twice is refused.
    let again = w
        .post_json(
            &format!("/api/tasks/{low}/complete"),
            &json!({"lease_token": tokens[&low]}),
        )
        .await;
    assert_eq!(again.status, 409);
    // Running tasks show their current attempt; filters work.
    let d = task(&admin, high_old).await;
    assert_eq!(outcomes(&d), ["running"]);
    let by_type = admin.get("/api/tasks?type=other").await;
    assert_eq!(by_type.json.as_array().unwrap().len(), 1);
    let by_worker = admin
        .get(&format!("/api/tasks?worker_id={wid}&status=completed"))
        .await;
    assert_eq!(by_worker.json.as_array().unwrap().len(), 1);
    let by_prio = admin.get("/api/tasks?priority=9").await;
    assert_eq!(by_prio.json.as_array().unwrap().len(), 2);
    let counts = admin.get("/api/tasks/counts").await;
    assert_eq!(
        (
            counts.json["running"].as_i64(),
            counts.json["completed"].as_i64()
        ),
        (Some(4), Some(1))
    );
}

/// `max_tasks` leases several tasks in one claim, best first, each under its own token.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_claim_leases_each_task_under_its_own_token() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = register(&w, "w1").await;
    let low = enqueue(&admin, json!({"type": "noop", "priority": 1})).await;
    let high = enqueue(&admin, json!({"type": "noop", "priority": 5})).await;
    let mid = enqueue(&admin, json!({"type": "noop", "priority": 3})).await;
    let r = w
        .post_json(
            "/api/tasks/claim",
            &json!({"worker_id": wid, "max_tasks": 101}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("max_tasks"))
    );
    let r = claim(&w, wid, json!({"max_tasks": 2})).await;
    let got: Vec<(i64, String)> = r.json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["status"], "running");
            (
                c["id"].as_i64().unwrap(),
                c["lease_token"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [high, mid]);
    assert_eq!(r.json["task"]["id"].as_i64(), Some(high), "task = tasks[0]");
    assert_ne!(got[0].1, got[1].1);
    // One task's token does not answer for the other.
    let r = w
        .post_json(
            &format!("/api/tasks/{mid}/complete"),
            &json!({"lease_token": got[0].1}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (409, Some("lease_lost"))
    );
    for (id, tok) in &got {
        let r = w
            .post_json(
                &format!("/api/tasks/{id}/complete"),
                &json!({"lease_token": tok}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Fewer left than asked for: the batch holds what there is; a plain claim keeps its shape.
    let r = claim(&w, wid, json!({"max_tasks": 5})).await;
    assert_eq!(r.json["tasks"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.json["tasks"][0]["id"].as_i64(), Some(low));
    let r = claim(&w, wid, json!({})).await;
    assert!(
        r.json["task"].is_null() && r.json.get("tasks").is_none(),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completion_can_lease_the_next_task_in_the_same_round_trip() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = register(&w, "chain").await;
    let first = enqueue(&admin, json!({"type": "noop", "priority": 9})).await;
    let second = enqueue(&admin, json!({"type": "noop", "priority": 5})).await;
    let r = claim(&w, wid, json!({})).await;
    assert_eq!(r.json["task"]["id"].as_i64(), Some(first));
    let tok = r.json["task"]["lease_token"].as_str().unwrap().to_string();
    // A `next` claim never waits.
    let r = w
        .post_json(
            &format!("/api/tasks/{first}/complete"),
            &json!({"lease_token": tok, "next": {"worker_id": wid, "wait_s": 5}}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("next.wait_s")),
        "{}",
        r.body
    );
    assert_eq!(
        task(&admin, first).await["status"],
        "running",
        "nothing written"
    );
    // A stale token leases nothing either.
    let r = w
        .post_json(
            &format!("/api/tasks/{first}/complete"),
            &json!({"lease_token": "stale", "next": {"worker_id": wid}}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(task(&admin, second).await["status"], "pending");
    let r = w
        .post_json(
            &format!("/api/tasks/{first}/complete"),
            &json!({"lease_token": tok, "next": {"worker_id": wid}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["status"], "completed");
    let next = &r.json["next"][0];
    assert_eq!(next["id"].as_i64(), Some(second), "{}", r.body);
    assert_eq!(next["status"], "running");
    let tok2 = next["lease_token"].as_str().unwrap().to_string();
    assert_ne!(tok2, tok);
    assert_eq!(task(&admin, first).await["status"], "completed");
    // The queue is empty now: the answer carries no `next`.
    let r = w
        .post_json(
            &format!("/api/tasks/{second}/complete"),
            &json!({"lease_token": tok2, "next": {"worker_id": wid}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json.get("next").is_none(), "{}", r.body);
    assert_eq!(task(&admin, second).await["status"], "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_completion_commits_the_live_results_refuses_stale_ones_and_leases_next() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = register(&w, "batcher").await;
    let mut ids = Vec::new();
    for p in [9, 8, 7, 6, 5] {
        ids.push(enqueue(&admin, json!({"type": "noop", "priority": p})).await);
    }
    let r = claim(&w, wid, json!({"max_tasks": 3})).await;
    let held: Vec<(i64, String)> = r.json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_i64().unwrap(),
                t["lease_token"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(held.iter().map(|h| h.0).collect::<Vec<_>>(), ids[..3]);

    // Bad batches are refused whole, naming the field, and change nothing.
    let result = |id: i64, tok: &str| json!({"id": id, "lease_token": tok, "exit_code": 0});
    for (body, field) in [
        (json!({"results": []}), "results"),
        (
            json!({"results": (0..101).map(|i| result(i, "x")).collect::<Vec<_>>()}),
            "results",
        ),
        (
            json!({"results": [result(held[0].0, &held[0].1), result(held[0].0, &held[0].1)]}),
            "results[1].id",
        ),
        (
            json!({"results": [result(held[0].0, &held[0].1), {"id": held[1].0, "lease_token": held[1].1, "duration_ms": -1}]}),
            "results[1].duration_ms",
        ),
        (
            json!({"results": [result(held[0].0, &held[0].1)], "next": {"worker_id": wid, "max_tasks": 500}}),
            "next.max_tasks",
        ),
        (
            json!({"results": [result(held[0].0, &held[0].1)], "next": {"worker_id": wid, "wait_s": 3}}),
            "next.wait_s",
        ),
    ] {
        let r = w.post_json("/api/tasks/complete", &body).await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (422, Some(field)),
            "{}",
            r.body
        );
    }
    let r = w
        .post_json("/api/tasks/complete", &json!({"results": [{"id": 1}]}))
        .await;
    assert_eq!(
        r.status, 422,
        "a result without its lease token: {}",
        r.body
    );
    for (id, _) in &held {
        assert_eq!(
            task(&admin, *id).await["status"],
            "running",
            "nothing written"
        );
    }
    // A read token cannot report.
    let reader = t.token("read").await;
    let r = reader
        .post_json(
            "/api/tasks/complete",
            &json!({"results": [result(held[0].0, &held[0].1)]}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Two live results and one stale: the live ones commit, the stale one is refused alone,
    // and the next claim still leases (the answer carries it).
    let r = w
        .post_json(
            "/api/tasks/complete",
            &json!({
                "results": [
                    {"id": held[0].0, "lease_token": held[0].1, "output": "a", "exit_code": 0, "duration_ms": 3},
                    {"id": held[1].0, "lease_token": "stale"},
                    {"id": held[2].0, "lease_token": held[2].1, "result": {"ok": true}},
                ],
                "next": {"worker_id": wid, "max_tasks": 3},
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["completed"], json!([held[0].0, held[2].0]));
    assert_eq!(r.json["refused"][0]["id"].as_i64(), Some(held[1].0));
    assert!(
        r.json["refused"][0]["error"]
            .as_str()
            .unwrap()
            .contains("lease"),
        "{}",
        r.body
    );
    let next: Vec<i64> = r.json["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(next, ids[3..], "best first, only what is pending");
    let first = task(&admin, held[0].0).await;
    assert_eq!(
        (
            first["status"].as_str(),
            first["output"].as_str(),
            first["duration_ms"].as_i64()
        ),
        (Some("completed"), Some("a"), Some(3))
    );
    assert_eq!(outcomes(&first), ["completed"]);
    assert_eq!(task(&admin, held[2].0).await["result"], json!({"ok": true}));
    // The refused one is untouched: still running under its real lease, which still works.
    assert_eq!(task(&admin, held[1].0).await["status"], "running");
    let r = w
        .post_json(
            "/api/tasks/complete",
            &json!({"results": [result(held[1].0, &held[1].1)]}),
        )
        .await;
    assert_eq!(
        (r.status, &r.json["completed"]),
        (200, &json!([held[1].0])),
        "{}",
        r.body
    );
    // Completing again is refused, never counted twice.
    let r = w
        .post_json(
            "/api/tasks/complete",
            &json!({"results": [result(held[1].0, &held[1].1)]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["completed"], json!([]));
    assert_eq!(outcomes(&task(&admin, held[1].0).await), ["completed"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_lease_answers_are_refused_and_change_nothing() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = register(&w, "w1").await;
    let id = enqueue(&admin, json!({"type": "noop", "max_retries": 5})).await;
    let first = claim(&w, wid, json!({"lease_s": 5})).await;
    let old = first.json["task"]["lease_token"]
        .as_str()
        .unwrap()
        .to_string();

    // The lease runs out: even before the reaper runs, the late answers are refused.
    t.clock.advance(10);
    for path in ["complete", "heartbeat", "release"] {
        let r = w
            .post_json(
                &format!("/api/tasks/{id}/{path}"),
                &json!({"lease_token": old}),
            )
            .await;
        assert_eq!(
            (r.status, r.json["code"].as_str()),
            (409, Some("lease_lost")),
            "{path}: {}",
            r.body
        );
    }
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/fail"),
            &json!({"lease_token": old, "error": "late"}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        task(&admin, id).await["status"],
        "running",
        "nothing changed"
    );

    // The reaper sends it back with the attempt recorded.
    assert_eq!(
        architect::background::lease_reaper_tick(t.state())
            .await
            .unwrap(),
        1
    );
    let d = task(&admin, id).await;
    assert_eq!(
        (d["status"].as_str(), d["attempts"].as_i64()),
        (Some("pending"), Some(1))
    );
    assert_eq!(outcomes(&d), ["expired"]);

    // Another claim gets a new token; the old one stays refused.
    let second = claim(&w, wid, json!({})).await;
    let new = second.json["task"]["lease_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(old, new);
    let stale = w
        .post_json(
            &format!("/api/tasks/{id}/complete"),
            &json!({"lease_token": old, "result": "stale"}),
        )
        .await;
    assert_eq!(stale.status, 409);
    let ok = w
        .post_json(
            &format!("/api/tasks/{id}/complete"),
            &json!({"lease_token": new, "result": "fresh"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let d = task(&admin, id).await;
    assert_eq!(
        (d["result"].as_str(), d["attempts"].as_i64()),
        (Some("fresh"), Some(2))
    );
    assert_eq!(outcomes(&d), ["expired", "completed"]);
    // Unknown task: 404, not 409.
    let r = w
        .post_json("/api/tasks/99999/complete", &json!({"lease_token": new}))
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_back_off_then_go_dead_and_can_be_requeued() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = register(&w, "w1").await;
    let id = enqueue(&admin, json!({"type": "flaky", "max_retries": 1})).await;
    let c = claim(&w, wid, json!({})).await;
    let tok = c.json["task"]["lease_token"].as_str().unwrap().to_string();
    let before = t.clock.now();
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/fail"),
            &json!({"lease_token": tok, "error": "boom", "exit_code": 2}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("pending")),
        "{}",
        r.body
    );
    // First retry after 2.5–5 s (5 s base, jitter 0.5–1.0).
    let at = architect::clock::parse(r.json["run_after"].as_str().unwrap()).unwrap();
    let delay = (at - before).as_seconds_f64();
    assert!((2.4..=5.1).contains(&delay), "backoff {delay}");
    assert!(
        claim(&w, wid, json!({})).await.json["task"].is_null(),
        "not before run_after"
    );
    t.clock.advance(6);
    let c = claim(&w, wid, json!({})).await;
    let tok = c.json["task"]["lease_token"].as_str().unwrap().to_string();
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/fail"),
            &json!({"lease_token": tok, "error": "boom again"}),
        )
        .await;
    assert_eq!(r.json["status"], "dead", "{}", r.body);
    let d = task(&admin, id).await;
    assert_eq!(
        (d["status"].as_str(), d["error"].as_str()),
        (Some("dead"), Some("boom again"))
    );
    assert_eq!(outcomes(&d), ["failed", "failed"]);
    assert_eq!(d["attempts_history"][0]["exit_code"].as_i64(), Some(2));

    // Dead is re-queueable (a fresh round); completed is final.
    let r = admin
        .post_json(&format!("/api/tasks/{id}/retry"), &json!({}))
        .await;
    assert_eq!(
        (
            r.status,
            r.json["status"].as_str(),
            r.json["attempts"].as_i64()
        ),
        (200, Some("pending"), Some(0))
    );
    // A non-retryable failure goes straight to failed.
    let c = claim(&w, wid, json!({})).await;
    let tok = c.json["task"]["lease_token"].as_str().unwrap().to_string();
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/fail"),
            &json!({"lease_token": tok, "error": "unsupported", "retryable": false}),
        )
        .await;
    assert_eq!(r.json["status"], "failed");
    assert_eq!(
        outcomes(&task(&admin, id).await).len(),
        3,
        "history survives a re-queue"
    );

    let done = enqueue(&admin, json!({"type": "x"})).await;
    let c = claim(&w, wid, json!({"types": ["x"]})).await;
    let tok = c.json["task"]["lease_token"].as_str().unwrap().to_string();
    w.post_json(
        &format!("/api/tasks/{done}/complete"),
        &json!({"lease_token": tok}),
    )
    .await;
    let r = admin
        .post_json(&format!("/api/tasks/{done}/retry"), &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (409, Some("invalid_transition"))
    );
    let r = admin
        .post_json(&format!("/api/tasks/{done}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_revokes_the_lease_and_release_gives_the_task_back() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = register(&w, "w1").await;
    let pending = enqueue(&admin, json!({"type": "noop"})).await;
    let r = admin
        .post_json(&format!("/api/tasks/{pending}/cancel"), &json!({}))
        .await;
    assert_eq!(r.json["status"], "cancelled", "{}", r.body);
    let running = enqueue(&admin, json!({"type": "noop"})).await;
    let c = claim(&w, wid, json!({})).await;
    assert_eq!(c.json["task"]["id"].as_i64(), Some(running));
    let tok = c.json["task"]["lease_token"].as_str().unwrap().to_string();
    admin
        .post_json(&format!("/api/tasks/{running}/cancel"), &json!({}))
        .await;
    let hb = w
        .post_json(
            &format!("/api/tasks/{running}/heartbeat"),
            &json!({"lease_token": tok}),
        )
        .await;
    assert_eq!(hb.status, 409, "the worker learns on its heartbeat");
    assert_eq!(outcomes(&task(&admin, running).await), ["cancelled"]);

    let back = enqueue(&admin, json!({"type": "noop"})).await;
    let c = claim(&w, wid, json!({})).await;
    let tok = c.json["task"]["lease_token"].as_str().unwrap().to_string();
    let r = w
        .post_json(
            &format!("/api/tasks/{back}/release"),
            &json!({"lease_token": tok}),
        )
        .await;
    assert_eq!(r.json["status"], "pending", "{}", r.body);
    let d = task(&admin, back).await;
    assert_eq!(
        (d["attempts"].as_i64(), outcomes(&d)),
        (Some(0), vec!["released".to_string()]),
        "a release is not a try"
    );
    // Activity log has the people's actions.
    let log = admin.get("/api/activity?entity=task").await;
    assert!(
        log.body.contains("cancel") && log.body.contains("create"),
        "{}",
        log.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_claim_long_polls_and_wakes_on_enqueue() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = register(&w, "w1").await;
    // Empty queue: the claim waits wait_s, then answers null.
    let start = Instant::now();
    let r = claim(&w, wid, json!({"wait_s": 0.5})).await;
    assert!(r.json["task"].is_null());
    assert!(
        start.elapsed() >= Duration::from_millis(450),
        "{:?}",
        start.elapsed()
    );
    // A waiting claim returns as soon as a task is enqueued, long before wait_s.
    let client = Client::new(&t.url, Some(&token(&w)));
    let start = Instant::now();
    let waiting = tokio::spawn(async move {
        client
            .claim_task(&ClaimRequest {
                worker_id: wid,
                wait_s: Some(30.0),
                ..ClaimRequest::default()
            })
            .await
    });
    let id = enqueue(&admin, json!({"type": "noop"})).await;
    let got = waiting.await.unwrap().unwrap();
    assert_eq!(got.task.map(|c| c.task.id), Some(id));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_register_heartbeat_and_report_status() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let id = register(&w, "box-1").await;
    assert_eq!(
        register(&w, "box-1").await,
        id,
        "same name and node: same worker"
    );
    let other = register(&w, "box-2").await;
    let tid = enqueue(&admin, json!({"type": "noop"})).await;
    let c = claim(&w, id, json!({})).await;
    let tok = c.json["task"]["lease_token"].as_str().unwrap().to_string();
    let st = admin.get("/api/workers/status").await;
    assert_eq!(st.status, 200, "{}", st.body);
    let me = st.json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(
        (me["state"].as_str(), me["current_tasks"][0]["id"].as_i64()),
        (Some("online"), Some(tid))
    );
    assert_eq!(st.json["queue"]["running"].as_i64(), Some(1));
    w.post_json(
        &format!("/api/tasks/{tid}/complete"),
        &json!({"lease_token": tok}),
    )
    .await;
    let st = admin.get("/api/workers/status").await;
    let me = st.json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(
        (
            me["completed"].as_i64(),
            me["current_tasks"].as_array().unwrap().len()
        ),
        (Some(1), 0)
    );
    assert!(me["throughput_per_min"].as_f64().unwrap() > 0.0);

    // Silent for a minute: offline. A heartbeat brings it back; a goodbye marks it stopped.
    t.clock.advance(60);
    let list = admin.get("/api/workers").await;
    assert!(
        list.json
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] == "offline"),
        "{}",
        list.body
    );
    let hb = w
        .post_json(&format!("/api/workers/{id}/heartbeat"), &json!({}))
        .await;
    assert_eq!(
        (hb.status, hb.json["state"].as_str()),
        (200, Some("online")),
        "{}",
        hb.body
    );
    let bye = w
        .post_json(
            &format!("/api/workers/{other}/heartbeat"),
            &json!({"stopping": true}),
        )
        .await;
    assert_eq!(bye.json["state"], "stopped");
    let r = w
        .post_json("/api/workers/99999/heartbeat", &json!({}))
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_token_claims_and_a_read_token_cannot() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let read = t.token("read").await;
    let wid = register(&w, "w").await;
    let id = enqueue(&admin, json!({"type": "noop"})).await;
    for (who, path, body) in [
        (&read, "/api/tasks/claim", json!({"worker_id": wid})),
        (
            &read,
            "/api/workers/register",
            json!({"name": "r", "node": "n"}),
        ),
        (&read, "/api/tasks", json!({"type": "noop"})),
        (&w, "/api/tasks", json!({"type": "noop"})),
        (&w, &format!("/api/tasks/{id}/cancel") as &str, json!({})),
        (&w, "/api/workers/start/git", json!({})),
    ] {
        let r = who.post_json(path, &body).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    assert_eq!(read.get("/api/tasks").await.status, 200);
    assert_eq!(read.get("/api/workers/status").await.status, 200);
    assert_eq!(t.anon().get("/api/tasks").await.status, 401);
    assert_eq!(
        t.anon()
            .post_json("/api/tasks/claim", &json!({"worker_id": wid}))
            .await
            .status,
        401
    );
    let r = claim(&w, wid, json!({})).await;
    assert_eq!(r.json["task"]["id"].as_i64(), Some(id));
    // A signed-in person's cookie needs the CSRF header for changes.
    let mut person = t.admin().await;
    person.csrf.clear();
    assert_eq!(
        person
            .post_json("/api/tasks", &json!({"type": "noop"}))
            .await
            .status,
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_4xx_naming_the_field_never_a_5xx() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let wid = register(&w, "w").await;
    let cases: Vec<(&Session, &str, Value, &str)> = vec![
        (&admin, "/api/tasks", json!({}), "type"),
        (&admin, "/api/tasks", json!({"type": "Bad Type"}), "type"),
        (
            &admin,
            "/api/tasks",
            json!({"type": "x", "priority": 11}),
            "priority",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "x", "priority": "high"}),
            "priority",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "x", "max_retries": -1}),
            "max_retries",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "x", "timeout_s": 0}),
            "timeout_s",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "x", "payload": [1]}),
            "payload",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "x", "run_after": "tomorrow"}),
            "run_after",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "x", "tags": [""]}),
            "tags",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "x", "project_id": 999}),
            "project_id",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "x", "bogus": 1}),
            "bogus",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "shell", "payload": {}}),
            "payload.command",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "shell", "payload": {"command": "x", "env": {"A B": "1"}}}),
            "payload.env",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "python", "payload": {"code": "1", "script": "a.py"}}),
            "payload.code",
        ),
        (
            &admin,
            "/api/tasks",
            json!({"type": "git", "payload": {"op": "push"}}),
            "payload.repo",
        ),
        (&admin, "/api/tasks", json!({"type": "test"}), "project_id"),
        (&w, "/api/tasks/claim", json!({}), "worker_id"),
        (
            &w,
            "/api/tasks/claim",
            json!({"worker_id": 999}),
            "worker_id",
        ),
        (
            &w,
            "/api/tasks/claim",
            json!({"worker_id": wid, "wait_s": 500}),
            "wait_s",
        ),
        (
            &w,
            "/api/tasks/claim",
            json!({"worker_id": wid, "lease_s": 0}),
            "lease_s",
        ),
        (
            &w,
            "/api/tasks/claim",
            json!({"worker_id": wid, "types": ["NO"]}),
            "types",
        ),
        (&w, "/api/tasks/1/complete", json!({}), "lease_token"),
        (
            &w,
            "/api/tasks/1/fail",
            json!({"lease_token": "x"}),
            "error",
        ),
        (
            &w,
            "/api/workers/register",
            json!({"name": "", "node": "n"}),
            "name",
        ),
        (
            &w,
            "/api/workers/register",
            json!({"name": "a", "node": "n", "concurrency": 0}),
            "concurrency",
        ),
    ];
    for (who, path, body, field) in cases {
        let r = who.post_json(path, &body).await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (422, Some(field)),
            "{path} {body}: {}",
            r.body
        );
    }
    let raw = |path: &str, body: &str| {
        w.request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    for (path, body) in [
        ("/api/tasks/claim", "{"),
        ("/api/tasks/1/heartbeat", "[]"),
        ("/api/tasks/abc/complete", "{}"),
    ] {
        let r = w.send(raw(path, body)).await;
        assert!(
            (400..500).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
    for path in [
        "/api/tasks/abc",
        "/api/tasks?status=nope",
        "/api/tasks?limit=0",
        "/api/tasks?priority=x",
        "/api/tasks/999",
    ] {
        let r = admin.get(path).await;
        assert!(
            (400..500).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
    let r = admin
        .post_json("/api/workers/start/nonsense", &json!({}))
        .await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("type")));
    let r = admin.post_json("/api/workers/stop/git", &json!({})).await;
    assert_eq!(r.status, 404);
    let r = admin
        .put_json("/api/projects/999/commands", &json!({"test_command": "x"}))
        .await;
    assert_eq!(r.status, 404);
}

// ---------------------------------------------------------------------------------------------
// property: N workers, M tasks, random kills
// ---------------------------------------------------------------------------------------------

/// What the simulated workers saw, shared with the controller.
#[derive(Default)]
struct Ledger {
    /// Successful completes per task (must end at exactly 1 each).
    completed: HashMap<i64, u32>,
    /// Leases abandoned ("killed" workers), not yet reaped: (task, token).
    abandoned: Vec<(i64, String)>,
    /// Every abandoned lease, for the stale-answer checks after recovery.
    killed: Vec<(i64, String)>,
    kills_per_task: HashMap<i64, u32>,
    /// Completes refused because the lease had expired meanwhile.
    refused: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n_workers_m_tasks_random_kills_complete_each_task_exactly_once() {
    const WORKERS: usize = 6;
    const TASKS: usize = 80;
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let wtok = token(&t.token("worker").await);
    let queue = Client::new(&t.url, Some(&token(&admin)));
    let mut ids = Vec::new();
    for i in 0..TASKS {
        let task = queue
            .create_task(&NewTask {
                task_type: "prop".into(),
                priority: Some((i % 3) as i64),
                max_retries: Some(10),
                ..NewTask::default()
            })
            .await
            .unwrap();
        ids.push(task.id);
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for n in 0..WORKERS {
        let c = Client::new(&t.url, Some(&wtok));
        let w = c
            .register_worker(&architect::tasks::RegisterWorker {
                name: format!("sim-{n}"),
                node: "prop".into(),
                concurrency: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        let (ledger, stop) = (ledger.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let got = c
                    .claim_task(&ClaimRequest {
                        worker_id: w.id,
                        wait_s: Some(0.2),
                        lease_s: Some(30),
                        ..ClaimRequest::default()
                    })
                    .await
                    .unwrap();
                let Some(claimed) = got.task else { continue };
                let id = claimed.task.id;
                let kill = {
                    let mut l = ledger.lock().unwrap();
                    let kills = l.kills_per_task.get(&id).copied().unwrap_or(0);
                    let kill = kills < 2 && rand::random::<f64>() < 0.25;
                    if kill {
                        *l.kills_per_task.entry(id).or_default() += 1;
                        l.abandoned.push((id, claimed.lease_token.clone()));
                        l.killed.push((id, claimed.lease_token.clone()));
                    }
                    kill
                };
                if kill {
                    continue; // the worker "died": no heartbeat, no answer
                }
                if rand::random::<bool>() {
                    c.heartbeat_task(id, &claimed.lease_token, 30)
                        .await
                        .unwrap();
                }
                let r = c
                    .complete_task(
                        id,
                        &CompleteRequest {
                            lease_token: claimed.lease_token.clone(),
                            result: Some(json!({"by": w.id})),
                            ..CompleteRequest::default()
                        },
                    )
                    .await;
                let mut l = ledger.lock().unwrap();
                match r {
                    Ok(_) => *l.completed.entry(id).or_default() += 1,
                    Err(ClientError::Api { status: 409, .. }) => l.refused += 1,
                    Err(e) => panic!("complete failed: {e}"),
                }
            }
        }));
    }
    // The controller: when only abandoned leases are left running, let them expire and reap.
    let start = Instant::now();
    loop {
        let counts = queue.workers_status().await.unwrap().queue;
        let (done, abandoned) = {
            let l = ledger.lock().unwrap();
            (l.completed.len(), l.abandoned.len())
        };
        if done == TASKS {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE * 2,
            "stuck: {counts:?}, {done} done"
        );
        if counts.pending == 0 && counts.running == abandoned as i64 && abandoned > 0 {
            let stale: Vec<(i64, String)> = std::mem::take(&mut ledger.lock().unwrap().abandoned);
            t.clock.advance(31);
            let reaped = architect::background::lease_reaper_tick(t.state())
                .await
                .unwrap();
            assert_eq!(reaped, stale.len());
            // The killed workers wake up and answer late: refused, nothing changes.
            for (id, tok) in &stale {
                let r = queue
                    .complete_task(
                        *id,
                        &CompleteRequest {
                            lease_token: tok.clone(),
                            ..Default::default()
                        },
                    )
                    .await;
                assert!(
                    matches!(r, Err(ClientError::Api { status: 409, .. })),
                    "stale complete of {id}: {r:?}"
                );
            }
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let l = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(
        l.completed.values().all(|n| *n == 1),
        "each task completed exactly once"
    );
    assert!(!l.killed.is_empty(), "the run killed some workers");
    let counts = queue.workers_status().await.unwrap().queue;
    assert_eq!(
        (
            counts.completed,
            counts.pending,
            counts.running,
            counts.dead
        ),
        (TASKS as i64, 0, 0, 0)
    );
    for id in &ids {
        let d = queue.task(*id).await.unwrap();
        let outcomes: Vec<_> = d
            .attempts_history
            .iter()
            .map(|a| a.outcome.as_str())
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| **o == "completed").count(),
            1,
            "task {id}: {outcomes:?}"
        );
        let kills = l.kills_per_task.get(id).copied().unwrap_or(0) as usize;
        assert!(
            outcomes.iter().filter(|o| **o == "expired").count() >= kills,
            "task {id} killed {kills}x: {outcomes:?}"
        );
    }
    // Every killed lease stays dead after recovery.
    for (id, tok) in &l.killed {
        let r = queue
            .complete_task(
                *id,
                &CompleteRequest {
                    lease_token: tok.clone(),
                    ..Default::default()
                },
            )
            .await;
        assert!(matches!(r, Err(ClientError::Api { status: 409, .. })));
    }
}

// ---------------------------------------------------------------------------------------------
// real `architect worker` processes
// ---------------------------------------------------------------------------------------------

/// A running `architect worker`; killed when dropped.
pub(crate) struct WorkerProc {
    pub(crate) child: tokio::process::Child,
}

impl WorkerProc {
    pub(crate) fn start(url: &str, token: &str, extra: &[&str]) -> WorkerProc {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args([
            "worker",
            "--dashboard",
            url,
            "--token",
            token,
            "--wait-s",
            "2",
        ])
        .args(extra)
        .env_remove("ARCHITECT_TOKEN")
        .env_remove("ARCHITECT_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
        WorkerProc {
            child: cmd.spawn().expect("worker starts"),
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.id().unwrap() as i32
    }
}

/// Alive and not a zombie.
pub(crate) fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

pub(crate) async fn final_task(s: &Session, id: i64) -> Value {
    until(&format!("task {id} to finish"), || async {
        let d = task(s, id).await;
        let st = d["status"].as_str().unwrap_or("").to_string();
        (!["pending", "running"].contains(&st.as_str())).then_some(d)
    })
    .await
}

fn sh(dir: &Path, script: &str) {
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(ok.success(), "{script}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_worker_runs_every_built_in_type() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A project with test/build/deploy commands in its source path.
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let p = admin
        .post_json(
            "/api/projects",
            &json!({"name": "p", "source_path": src.display().to_string()}),
        )
        .await;
    let pid = p.json["id"].as_i64().unwrap();
    let r = admin
        .put_json(&format!("/api/projects/{pid}/commands"), &json!({"test_command": "echo testing > tested; echo tests-ok", "build_command": "echo built", "deploy_command": "exit 4"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A git origin with one commit.
    sh(dir, "git init -q -b main origin && cd origin && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m init && git branch side");
    let git_env = json!({"GIT_AUTHOR_NAME": "w", "GIT_AUTHOR_EMAIL": "w@w", "GIT_COMMITTER_NAME": "w", "GIT_COMMITTER_EMAIL": "w@w"});
    let clone = dir.join("clone").display().to_string();
    let origin = dir.join("origin").display().to_string();

    let _worker = WorkerProc::start(&t.url, &token(&w), &["--allow-shell", "--concurrency", "4"]);
    let shell = enqueue(&admin, json!({"type": "shell", "payload": {"command": "echo hello $WHO; pwd", "cwd": dir.display().to_string(), "env": {"WHO": "shell"}}})).await;
    let python = enqueue(&admin, json!({"type": "python", "payload": {"code": "import sys; print('py', sys.argv[1:])", "args": ["a"]}})).await;
    let failing = enqueue(
        &admin,
        json!({"type": "shell", "max_retries": 0, "payload": {"command": "echo oops >&2; exit 7"}}),
    )
    .await;
    let clone_t = enqueue(
        &admin,
        json!({"type": "git", "payload": {"op": "clone", "url": origin, "dest": clone}}),
    )
    .await;
    let d = final_task(&admin, clone_t).await;
    assert_eq!(d["status"], "completed", "{d}");
    std::fs::write(dir.join("clone/file.txt"), "x").unwrap();
    let commit = enqueue(&admin, json!({"type": "git", "payload": {"op": "commit", "repo": clone, "message": "add file", "env": git_env}})).await;
    assert_eq!(final_task(&admin, commit).await["status"], "completed");
    let checkout = enqueue(
        &admin,
        json!({"type": "git", "payload": {"op": "checkout", "repo": clone, "ref": "origin/side"}}),
    )
    .await;
    assert_eq!(final_task(&admin, checkout).await["status"], "completed");
    let back = enqueue(
        &admin,
        json!({"type": "git", "payload": {"op": "checkout", "repo": clone, "ref": "main"}}),
    )
    .await;
    assert_eq!(final_task(&admin, back).await["status"], "completed");
    let push = enqueue(&admin, json!({"type": "git", "payload": {"op": "push", "repo": clone, "remote": "origin", "branch": "main:pushed"}})).await;
    assert_eq!(
        final_task(&admin, push).await["status"],
        "completed",
        "{}",
        task(&admin, push).await
    );
    let pull = enqueue(&admin, json!({"type": "git", "payload": {"op": "pull", "repo": clone, "remote": "origin", "branch": "main"}})).await;
    assert_eq!(final_task(&admin, pull).await["status"], "completed");
    let test = enqueue(&admin, json!({"type": "test", "project_id": pid})).await;
    let build = enqueue(&admin, json!({"type": "build", "project_id": pid})).await;
    let deploy = enqueue(
        &admin,
        json!({"type": "deploy", "project_id": pid, "max_retries": 0}),
    )
    .await;
    // A tmux op the worker's driver refuses (no session named): failed, never retried.
    let tmux = enqueue(
        &admin,
        json!({"type": "tmux", "payload": {"op": "capture"}}),
    )
    .await;

    let d = final_task(&admin, shell).await;
    assert_eq!(
        (d["status"].as_str(), d["exit_code"].as_i64()),
        (Some("completed"), Some(0)),
        "{d}"
    );
    let out = d["output"].as_str().unwrap();
    assert!(
        out.contains("hello shell") && out.contains(&dir.display().to_string()),
        "{out}"
    );
    assert!(d["duration_ms"].as_i64().is_some());
    let d = final_task(&admin, python).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert!(d["output"].as_str().unwrap().contains("py ['a']"), "{d}");
    let d = final_task(&admin, failing).await;
    assert_eq!(
        (d["status"].as_str(), d["exit_code"].as_i64()),
        (Some("dead"), Some(7)),
        "{d}"
    );
    assert!(
        d["output"].as_str().unwrap().contains("oops")
            && d["error"].as_str().unwrap().contains("code 7"),
        "{d}"
    );
    let log = std::process::Command::new("git")
        .args(["-C", &origin, "log", "--oneline", "pushed"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("add file"),
        "the commit was pushed"
    );
    let d = final_task(&admin, test).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert!(d["output"].as_str().unwrap().contains("tests-ok") && src.join("tested").exists());
    assert_eq!(
        final_task(&admin, build).await["output"]
            .as_str()
            .map(str::trim),
        Some("built")
    );
    let d = final_task(&admin, deploy).await;
    assert_eq!(
        (d["status"].as_str(), d["exit_code"].as_i64()),
        (Some("dead"), Some(4))
    );
    let d = final_task(&admin, tmux).await;
    assert_eq!(d["status"], "failed", "not retried: {d}");
    assert!(
        d["error"]
            .as_str()
            .unwrap()
            .contains("op 'capture' needs 'session'"),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_and_cancel_kill_the_whole_process_tree() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    let _worker = WorkerProc::start(&t.url, &token(&w), &["--allow-shell", "--concurrency", "2"]);
    // The shell starts a grandchild and waits: a timeout must kill both.
    let timed = enqueue(&admin, json!({"type": "shell", "timeout_s": 1, "max_retries": 0, "payload": {"command": "sleep 300 & echo $! > timed.pid; wait", "cwd": dir}})).await;
    let d = final_task(&admin, timed).await;
    assert_eq!(d["status"], "dead", "{d}");
    assert!(d["error"].as_str().unwrap().contains("timed out"), "{d}");
    let grandchild: i32 = std::fs::read_to_string(tmp.path().join("timed.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    until("the timed-out grandchild to die", || async {
        (!pid_alive(grandchild)).then_some(())
    })
    .await;

    let cancelled = enqueue(&admin, json!({"type": "shell", "payload": {"command": "sleep 300 & echo $! > cancel.pid; wait", "cwd": dir}})).await;
    let pidfile = tmp.path().join("cancel.pid");
    let grandchild: i32 = until("the task to start", || async {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
    .await;
    assert!(pid_alive(grandchild));
    let r = admin
        .post_json(&format!("/api/tasks/{cancelled}/cancel"), &json!({}))
        .await;
    assert_eq!(r.json["status"], "cancelled", "{}", r.body);
    until("the cancelled grandchild to die", || async {
        (!pid_alive(grandchild)).then_some(())
    })
    .await;
    assert_eq!(task(&admin, cancelled).await["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_of_a_kill_9ed_worker_finishes_on_another_after_its_lease_expires() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    // The first run hangs (and records its process group); the second finishes at once.
    let id = enqueue(&admin, json!({"type": "shell", "payload": {"cwd": dir, "command": "if [ -e first ]; then echo second-run; else echo $$ > first; sleep 120; fi"}})).await;
    let mut a = WorkerProc::start(
        &t.url,
        &token(&w),
        &["--allow-shell", "--lease-s", "5", "--name", "a"],
    );
    let first = tmp.path().join("first");
    let orphan: i32 = until("worker a to start the task", || async {
        std::fs::read_to_string(&first)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
    .await;
    let a_id = task(&admin, id).await["worker_id"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.pid()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    a.child.wait().await.unwrap();
    // Its lease runs out; the reaper sends the task back; worker b finishes it.
    t.clock.advance(10);
    until("the lease to be reaped", || async {
        architect::background::lease_reaper_tick(t.state())
            .await
            .unwrap();
        (task(&admin, id).await["status"] != "running").then_some(())
    })
    .await;
    let _b = WorkerProc::start(&t.url, &token(&w), &["--allow-shell", "--name", "b"]);
    let d = final_task(&admin, id).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert!(d["output"].as_str().unwrap().contains("second-run"));
    assert_eq!(outcomes(&d), ["expired", "completed"]);
    let by: Vec<i64> = d["attempts_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["worker_id"].as_i64().unwrap())
        .collect();
    assert_eq!(by[0], a_id);
    assert_ne!(by[1], a_id, "finished on another worker");
    // kill -9 gives the worker no chance to clean up; its exec guard ended the first run.
    until("the first run to die with worker a", || async {
        (!pid_alive(orphan)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_status_and_stop() {
    let t = TestServer::start().await;
    let w = t.token("worker").await;
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("w.pid").display().to_string();
    let log_file = tmp.path().join("w.log").display().to_string();
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new(BIN)
            .args(&args)
            .output()
            .await
            .unwrap()
    };
    let base = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "worker",
            "--pid-file",
            &pid_file,
            "--log-file",
            &log_file,
            "--dashboard",
            &t.url,
            "--token",
            &token(&w),
            "--types",
            "git",
            "--allow-exec",
            "--name",
            "daemon",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let out = run(base(&["--daemon"])).await;
    assert!(out.status.success(), "{out:?}");
    let out = run(base(&["--status"])).await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("running"),
        "{out:?}"
    );
    let admin = t.token("admin").await;
    until("the daemon to register", || async {
        let r = admin.get("/api/workers").await;
        r.json
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "daemon" && x["state"] == "online")
            .then_some(())
    })
    .await;
    let out = run(base(&["--stop"])).await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("stopped"),
        "{out:?}"
    );
    let out = run(base(&["--status"])).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let r = admin.get("/api/workers").await;
    assert!(
        r.json
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "daemon" && x["state"] == "stopped"),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_supervises_and_stops_local_workers() {
    // Every built-in type runs programs: serve starts local workers only when allowed to.
    let allow = |c: &mut architect::config::ServeConfig| {
        c.worker_bin = Some(BIN.into());
        c.worker_allow_shell = true;
    };
    let t = TestServer::start_with(allow).await;
    let admin = t.token("admin").await;
    let r = admin.post_json("/api/workers/start/git", &json!({})).await;
    assert_eq!(
        (r.status, r.json["state"].as_str()),
        (200, Some("running")),
        "{}",
        r.body
    );
    let first_pid = r.json["pid"].as_i64().unwrap() as i32;
    until("the supervised worker to register", || async {
        let r = admin.get("/api/workers").await;
        r.json
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "serve-git" && x["state"] == "online")
            .then_some(())
    })
    .await;
    // It crashes: serve restarts it after the backoff.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = until("a restart", || async {
        let s = admin.get("/api/workers/status").await;
        let p = s.json["supervised"][0].clone();
        (p["restarts"].as_i64() == Some(1) && p["state"] == "running").then_some(p)
    })
    .await;
    assert_ne!(status["pid"].as_i64(), Some(first_pid as i64));
    assert!(
        status["last_exit"].as_str().unwrap().contains("signal 9"),
        "{status}"
    );
    // serve itself restarts: the worker it was keeping comes back (under a new token).
    let t = t.restart_with(allow).await;
    let admin = t.token("admin").await;
    let s = admin.get("/api/workers/status").await;
    let p = &s.json["supervised"][0];
    assert_eq!(
        (p["type"].as_str(), p["state"].as_str()),
        (Some("git"), Some("running")),
        "{}",
        s.body
    );
    let r = admin.post_json("/api/workers/stop/git", &json!({})).await;
    assert_eq!(
        (r.status, r.json["state"].as_str()),
        (200, Some("stopped")),
        "{}",
        r.body
    );
    let s = admin.get("/api/workers/status").await;
    assert!(s.json["supervised"].as_array().unwrap().is_empty());
    let tokens = admin.get("/api/tokens").await;
    let worker_tokens: Vec<&Value> = tokens
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"] == "serve-git worker")
        .collect();
    assert!(
        !worker_tokens.is_empty() && worker_tokens.iter().all(|x| x["status"] == "revoked"),
        "{}",
        tokens.body
    );
}

/// The runtime's reporter sends completions that finish together in one request: with 8 slots
/// over 300 quick tasks every task still runs once and is completed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_with_many_slots_reports_in_batches_and_completes_each_task_once() {
    use architect::tasks::runner::{Worker, WorkerOptions};
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    const N: usize = 300;
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(enqueue(&admin, json!({"type": "tick", "payload": {"i": i}})).await);
    }
    let ran: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let mut options = WorkerOptions::new(&t.url, &token(&w));
    options.name = "many-slots".into();
    options.types = Some(vec!["tick".into()]);
    options.concurrency = 8;
    options.wait_s = 1.0;
    let mut worker = Worker::new(options);
    let seen = ran.clone();
    worker.register_handler("tick", move |task| {
        let seen = seen.clone();
        async move {
            *seen.lock().unwrap().entry(task.task.id).or_default() += 1;
            if task.payload()["i"] == 7 {
                // Too large for the server: fails alone, never sinks its batch.
                return Ok(json!({"blob": "x".repeat(300 * 1024)}).into());
            }
            Ok(json!({"i": task.payload()["i"]}).into())
        }
    });
    let done = ran.clone();
    let summary = worker
        .run_until(async move {
            let start = Instant::now();
            while done.lock().unwrap().len() < N && start.elapsed() < DEADLINE {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Let the last reports land.
            tokio::time::sleep(Duration::from_millis(300)).await;
        })
        .await
        .unwrap();
    assert_eq!(
        (summary.completed as usize, summary.failed as usize),
        (N - 1, 1),
        "{summary:?}"
    );
    let ran = ran.lock().unwrap().clone();
    assert_eq!(ran.len(), N);
    assert!(ran.values().all(|n| *n == 1), "a task ran twice");
    let counts = admin.get("/api/tasks/counts").await;
    assert_eq!(
        (
            counts.json["completed"].as_i64(),
            counts.json["failed"].as_i64(),
            counts.json["running"].as_i64()
        ),
        (Some(N as i64 - 1), Some(1), Some(0)),
        "{}",
        counts.body
    );
    for id in ids.iter().step_by(37) {
        let t = task(&admin, *id).await;
        assert_eq!(outcomes(&t), ["completed"], "{t}");
    }
    let big = task(&admin, ids[7]).await;
    assert_eq!(big["status"], "failed", "{big}");
    assert!(
        big["error"]
            .as_str()
            .unwrap()
            .contains("result must be at most"),
        "{big}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_custom_handler_example_runs() {
    let result = custom_handler_example::demo().await.unwrap();
    assert_eq!(
        result,
        json!({"result": "success", "greeting": "hello, example"})
    );
}

// ---------------------------------------------------------------------------------------------
// dashboard
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_tasks_and_workers_panels_work_without_javascript() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let r = admin.get("/tasks").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("No tasks") && r.body.contains("New Task"),
        "{}",
        r.body
    );
    let r = admin
        .post_form(
            "/tasks",
            &[
                ("type", "shell"),
                ("command", "echo <b>hi</b>"),
                ("priority", "4"),
                ("max_retries", "1"),
                ("timeout_s", "60"),
                ("tags", "a, b"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.headers["location"].to_str().unwrap().to_string();
    let list = admin.get("/api/tasks").await;
    let t0 = &list.json[0];
    assert_eq!(
        (
            t0["type"].as_str(),
            t0["priority"].as_i64(),
            t0["payload"]["command"].as_str()
        ),
        (Some("shell"), Some(4), Some("echo <b>hi</b>"))
    );
    assert_eq!(t0["tags"], json!(["a", "b"]));
    let page = admin.get(loc.split('?').next().unwrap()).await;
    assert!(
        page.body.contains("echo &#60;b&#62;hi")
            && !page.body.contains("<b>hi")
            && page.body.contains("Cancel"),
        "{}",
        page.body
    );
    let id = t0["id"].as_i64().unwrap();
    let r = admin.post_form(&format!("/tasks/{id}/cancel"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        admin.get(&format!("/api/tasks/{id}")).await.json["status"],
        "cancelled"
    );
    let r = admin.post_form(&format!("/tasks/{id}/retry"), &[]).await;
    assert_eq!(r.status, 303);
    // A bad form comes back with the error, not a 5xx.
    let r = admin
        .post_form(
            "/tasks",
            &[
                ("type", "custom"),
                ("custom_type", "Bad!"),
                ("payload", "{}"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains(r#"class="flash err""#), "{}", r.body);
    let r = admin
        .post_form(
            "/tasks",
            &[
                ("type", "custom"),
                ("custom_type", "report"),
                ("payload", "[1]"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains(r#"class="flash err""#), "{}", r.body);
    let r = admin
        .get("/tasks?status=pending&type=shell&priority=4")
        .await;
    assert!(r.body.contains(&format!("/tasks/{id}")), "{}", r.body);
    // Project commands.
    let p = admin
        .post_json(
            "/api/projects",
            &json!({"name": "proj", "source_path": "/tmp"}),
        )
        .await;
    let pid = p.json["id"].as_i64().unwrap();
    let r = admin
        .post_form(
            &format!("/tasks/commands/{pid}"),
            &[
                ("test_command", "cargo test"),
                ("build_command", ""),
                ("deploy_command", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let c = admin.get(&format!("/api/projects/{pid}/commands")).await;
    assert_eq!(
        (
            c.json["test_command"].as_str(),
            c.json["build_command"].as_str(),
            c.json["source_path"].as_str()
        ),
        (Some("cargo test"), None, Some("/tmp"))
    );
    assert!(admin
        .get("/tasks/commands")
        .await
        .body
        .contains("cargo test"));
    // Workers page.
    let w = t.token("worker").await;
    register(&w, "page-worker").await;
    let r = admin.get("/workers").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("page-worker")
            && r.body.contains("Local workers")
            && r.body.contains("needs --worker-allow-shell"),
        "{}",
        r.body
    );
    // A viewer reads but gets no forms.
    let viewer = t.user("vera", "viewer").await;
    let r = viewer.get("/tasks").await;
    assert!(r.status == 200 && !r.body.contains("New Task"));
    let r = viewer.post_form("/tasks", &[("type", "tmux")]).await;
    assert_eq!(r.status, 403);
}
