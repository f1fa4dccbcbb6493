//! Integration tests of the nodes domain over real HTTP: registration and validation (never a
//! 5xx, nothing half-written), token binding, heartbeats and metric history, online / stale /
//! offline with a manual clock, the restart grace period, retention, the command channel
//! (delivered once, timeouts, results), the in-process local node, the Nodes panel; and real
//! `architect agent` processes: metrics, surviving a dashboard outage, daemon mode, and the
//! command channel across two agents with a private tmux server.

use crate::support::until;
use crate::support::{self, Resp, Session, TestServer};
use architect::nodes::{actions, retention};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_architect");
/// A server without the in-process local node, so node lists hold only what a test made.
async fn server() -> TestServer {
    TestServer::start_with(|c| c.nodes.local_node = false).await
}

pub(crate) fn metrics(cpu: f64) -> Value {
    json!({
        "cpu_percent": cpu,
        "cpu_count": 4,
        "memory_used": 2_000_000_000u64,
        "memory_total": 8_000_000_000u64,
        "disks": [{"mount": "/", "used": 50_000_000_000u64, "total": 100_000_000_000u64},
                  {"mount": "/data", "used": 10, "total": 40}],
        "load_avg": [0.5, 0.4, 0.3],
        "uptime_s": 12345,
        "process_count": 210,
        "version": "0.1.0"
    })
}

pub(crate) async fn register(agent: &Session, name: &str, interval: i64) -> (u16, Value) {
    let r = agent
        .post_json(
            "/api/nodes",
            &json!({"name": name, "hostname": format!("{name}.lan"), "interval_s": interval}),
        )
        .await;
    (r.status, r.json)
}

async fn node_id(agent: &Session, name: &str, interval: i64) -> i64 {
    let (status, body) = register(agent, name, interval).await;
    assert!(status == 201 || status == 200, "{status} {body}");
    body["id"].as_i64().unwrap()
}

fn assert_error(r: &Resp, status: u16, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.json["error"].is_string() && r.json["code"].is_string(),
        "{}",
        r.body
    );
    if let Some(f) = field {
        assert_eq!(r.json["field"], f, "{}", r.body);
    }
}

// ---------------------------------------------------------------------------------------------
// the API
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn registration_is_idempotent_bound_to_its_token_and_validated() {
    let t = server().await;
    let agent = t.token("agent").await;
    let other = t.token("agent").await;
    let admin = t.admin().await;

    let (s, n) = register(&agent, "build-1", 5).await;
    assert_eq!(s, 201, "{n}");
    assert_eq!(n["bound"], true);
    assert_eq!(n["status"], "waiting");
    assert_eq!(n["hostname"], "build-1.lan");
    let id = n["id"].as_i64().unwrap();
    let (s, again) = register(&agent, "build-1", 5).await;
    assert_eq!(
        (s, again["id"].as_i64()),
        (200, Some(id)),
        "same node again"
    );

    // Another token can neither take the name over nor act for the node.
    let (s, body) = register(&other, "build-1", 5).await;
    assert_eq!(s, 403, "{body}");
    let r = other
        .post_json(&format!("/api/nodes/{id}/heartbeat"), &metrics(1.0))
        .await;
    assert_error(&r, 403, None);
    let r = other.get(&format!("/api/nodes/{id}/commands")).await;
    assert_error(&r, 403, None);

    // Bad input: 4xx naming the field, never 5xx.
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "has space"}), "name"),
        (json!({"name": "x".repeat(65)}), "name"),
        (json!({"name": "ok", "interval_s": 0}), "interval_s"),
        (json!({"name": "ok", "hostname": "h\nx"}), "hostname"),
        (json!({"name": 5}), "name"),
    ] {
        let r = agent.post_json("/api/nodes", &body).await;
        assert_error(&r, 422, Some(field));
    }
    let r = agent
        .post_json("/api/nodes", &json!({"name": "ok", "surprise": 1}))
        .await;
    assert!(r.status == 422 || r.status == 400, "{}", r.body);
    let r = agent
        .send(
            agent
                .request(reqwest::Method::POST, "/api/nodes")
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_error(&r, 400, None);

    // Who may do what.
    let r = t.anon().get("/api/nodes").await;
    assert_error(&r, 401, None);
    let read = t.token("read").await;
    let r = read.post_json("/api/nodes", &json!({"name": "r1"})).await;
    assert_error(&r, 403, None);
    let worker = t.token("worker").await;
    let r = worker.post_json("/api/nodes", &json!({"name": "w1"})).await;
    assert_error(&r, 403, None);
    // A browser session is never an agent (no cross-site command claims).
    let r = admin.get(&format!("/api/nodes/{id}/commands?wait=0")).await;
    assert_error(&r, 403, None);
    let r = agent.delete(&format!("/api/nodes/{id}")).await;
    assert_error(&r, 403, None);
    let r = agent
        .post_json(
            &format!("/api/nodes/{id}/commands"),
            &json!({"command": "ping"}),
        )
        .await;
    assert_error(&r, 403, None);

    // An admin adds a node by hand: unbound until an agent token registers it.
    let r = admin
        .post_json("/api/nodes", &json!({"name": "manual"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["bound"], false);
    let manual = r.json["id"].as_i64().unwrap();
    let r = other
        .post_json(&format!("/api/nodes/{manual}/heartbeat"), &metrics(1.0))
        .await;
    assert_error(&r, 403, None);
    assert!(
        r.json["error"].as_str().unwrap().contains("register"),
        "{}",
        r.body
    );
    let (s, body) = register(&other, "manual", 5).await;
    assert_eq!((s, body["bound"].clone()), (200, json!(true)), "{body}");

    // Paths and ids.
    assert_error(&admin.get("/api/nodes/abc").await, 400, None);
    assert_error(&admin.get("/api/nodes/999999").await, 404, None);
    let list = admin.get("/api/nodes").await;
    let names: Vec<&str> = list
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["build-1", "manual"]);

    // Removing a node revokes its agent token: the agent cannot bring it back.
    let r = admin.delete(&format!("/api/nodes/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_error(&admin.get(&format!("/api/nodes/{id}")).await, 404, None);
    let (s, _) = register(&agent, "build-1", 5).await;
    assert_eq!(s, 401, "the removed node's token is revoked");
    let r = admin.get("/api/activity?entity=node").await;
    let actions: Vec<&str> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"delete") && actions.contains(&"create"),
        "{actions:?}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_store_metrics_and_history_and_bad_ones_change_nothing() {
    let t = server().await;
    let agent = t.token("agent").await;
    let admin = t.token("admin").await;
    let id = node_id(&agent, "metrics-1", 5).await;
    let hb = format!("/api/nodes/{id}/heartbeat");

    let mut too_many_disks = metrics(1.0);
    too_many_disks["disks"] = json!((0..65)
        .map(|i| json!({"mount": format!("/m{i}"), "used": 1, "total": 2}))
        .collect::<Vec<_>>());
    let mut bad_mem = metrics(1.0);
    bad_mem["memory_used"] = json!(9_000_000_000u64);
    let mut negative = metrics(1.0);
    negative["memory_total"] = json!(-1);
    let mut bad_load = metrics(1.0);
    bad_load["load_avg"] = json!([1.0, -2.0, 0.0]);
    let mut bad_disk = metrics(1.0);
    bad_disk["disks"] = json!([{"mount": "/", "used": 5, "total": 4}]);
    for (body, field) in [
        (metrics(101.0), Some("cpu_percent")),
        (metrics(-1.0), Some("cpu_percent")),
        (bad_mem, Some("memory_used")),
        (too_many_disks, Some("disks")),
        (bad_disk, Some("disks")),
        (bad_load, Some("load_avg")),
        (negative, None),
        (json!({"cpu_percent": "high"}), None),
        (json!([]), None),
    ] {
        let r = agent.post_json(&hb, &body).await;
        assert!(
            r.status == 422 || r.status == 400,
            "{body}: {} {}",
            r.status,
            r.body
        );
        if let Some(f) = field {
            assert_eq!(r.json["field"], f, "{}", r.body);
        }
    }
    let n = admin.get(&format!("/api/nodes/{id}")).await.json;
    assert!(
        n["metrics"].is_null() && n["last_heartbeat_at"].is_null(),
        "{n}"
    );
    let series = admin.get(&format!("/api/nodes/{id}/metrics")).await;
    assert_eq!(series.json["points"], json!([]), "{}", series.body);

    for cpu in [10.0, 30.0] {
        let r = agent.post_json(&hb, &metrics(cpu)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let n = admin.get(&format!("/api/nodes/{id}")).await.json;
    assert_eq!(n["status"], "online");
    assert_eq!(n["metrics"]["cpu_percent"], 30.0);
    assert_eq!(n["metrics"]["disks"][1]["mount"], "/data");
    assert_eq!(n["metrics"]["process_count"], 210);
    assert_eq!(n["version"], "0.1.0");

    let day = admin
        .get(&format!("/api/nodes/{id}/metrics?range=24h"))
        .await;
    assert_eq!(day.status, 200, "{}", day.body);
    assert_eq!(day.json["bucket_s"], 300);
    let points = day.json["points"].as_array().unwrap();
    assert_eq!(
        points.len(),
        1,
        "both heartbeats fall in one 5-minute bucket: {}",
        day.body
    );
    assert_eq!(points[0]["samples"], 2);
    assert_eq!(points[0]["cpu_percent"], 20.0);
    assert_eq!(points[0]["memory_percent"], 25.0);
    let week = admin
        .get(&format!("/api/nodes/{id}/metrics?range=7d"))
        .await;
    assert_eq!(week.json["bucket_s"], 3600, "{}", week.body);
    assert_error(
        &admin
            .get(&format!("/api/nodes/{id}/metrics?range=1y"))
            .await,
        422,
        None,
    );
    assert_error(&admin.get("/api/nodes/424242/metrics").await, 404, None);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_goes_stale_then_offline_as_heartbeats_are_missed() {
    let t = server().await;
    let agent = t.token("agent").await;
    let admin = t.token("admin").await;
    let id = node_id(&agent, "flaky", 10).await;
    let hb = format!("/api/nodes/{id}/heartbeat");
    let status = || async { admin.get(&format!("/api/nodes/{id}")).await.json["status"].clone() };
    assert_eq!(status().await, "waiting");
    assert_eq!(agent.post_json(&hb, &metrics(5.0)).await.status, 200);
    assert_eq!(status().await, "online");
    t.clock.advance(12);
    assert_eq!(status().await, "online", "within 1.5 intervals");
    t.clock.advance(5);
    assert_eq!(status().await, "stale", "one heartbeat missed");
    t.clock.advance(20);
    assert_eq!(status().await, "offline", "three heartbeats missed");
    let n = admin.get(&format!("/api/nodes/{id}")).await.json;
    assert!(n["heartbeat_age_s"].as_i64().unwrap() >= 37, "{n}");

    // /metrics counts nodes by state.
    actions::export_gauges(&t.state().nodes_state())
        .await
        .unwrap();
    let m = admin.get("/metrics").await;
    assert!(
        m.body.contains("architect_nodes{status=\"offline\"}"),
        "{}",
        m.body
    );
    let counts = actions::status_counts(&t.state().nodes_state())
        .await
        .unwrap();
    let offline = counts
        .iter()
        .find(|(s, _)| s.as_str() == "offline")
        .unwrap()
        .1;
    assert_eq!(offline, 1);

    assert_eq!(agent.post_json(&hb, &metrics(5.0)).await.status, 200);
    assert_eq!(status().await, "online", "back with the next heartbeat");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dashboard_restart_does_not_mark_nodes_offline() {
    let t = TestServer::start().await;
    let agent = t.token("agent").await;
    let id = node_id(&agent, "steady", 10).await;
    // The last heartbeat came long ago (the dashboard was down for ten minutes).
    t.clock.advance(-600);
    let r = agent
        .post_json(&format!("/api/nodes/{id}/heartbeat"), &metrics(5.0))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = agent.token.clone();
    let t = t.restart().await;
    let admin = t.token("admin").await;
    let n = admin.get(&format!("/api/nodes/{id}")).await.json;
    assert_eq!(n["status"], "online", "grace after the restart: {n}");
    assert!(
        n["heartbeat_age_s"].as_i64().unwrap() >= 599,
        "the real age is shown: {n}"
    );
    t.clock.advance(16);
    assert_eq!(
        admin.get(&format!("/api/nodes/{id}")).await.json["status"],
        "stale"
    );
    t.clock.advance(20);
    assert_eq!(
        admin.get(&format!("/api/nodes/{id}")).await.json["status"],
        "offline"
    );
    // The agent's token still works after the restart.
    let agent = Session::new(&t.url, token);
    let r = agent
        .post_json(&format!("/api/nodes/{id}/heartbeat"), &metrics(5.0))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        admin.get(&format!("/api/nodes/{id}")).await.json["status"],
        "online"
    );
    t.stop().await;
}

async fn count(t: &TestServer, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&t.state().db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn history_is_rolled_up_after_a_day_and_pruned_after_a_week() {
    let t = server().await;
    let agent = t.token("agent").await;
    let admin = t.token("admin").await;
    let id = node_id(&agent, "history", 5).await;
    let hb = format!("/api/nodes/{id}/heartbeat");
    // Heartbeats 8 days ago, 3 days ago (two, 10 s apart: one bucket) and now.
    let day = 86_400;
    t.clock.advance(-8 * day);
    assert_eq!(agent.post_json(&hb, &metrics(80.0)).await.status, 200);
    // Land 100 s into a 5-minute bucket, so the next two heartbeats share it.
    let into_bucket = t.clock.now().unix_timestamp().rem_euclid(300);
    t.clock.advance(5 * day + 100 - into_bucket);
    assert_eq!(agent.post_json(&hb, &metrics(10.0)).await.status, 200);
    t.clock.advance(10);
    assert_eq!(agent.post_json(&hb, &metrics(30.0)).await.status, 200);
    t.clock.advance(3 * day - 10);
    assert_eq!(agent.post_json(&hb, &metrics(50.0)).await.status, 200);
    assert_eq!(
        count(&t, "SELECT COUNT(*) FROM node_metrics WHERE resolution = 0").await,
        4
    );

    let report = retention::tick(&t.state().nodes_state()).await.unwrap();
    assert_eq!(report.rolled_up, 3, "{report:?}");
    assert_eq!(report.pruned, 1, "the 8-day-old roll-up: {report:?}");
    assert_eq!(
        count(&t, "SELECT COUNT(*) FROM node_metrics WHERE resolution = 0").await,
        1
    );
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM node_metrics WHERE resolution = 300"
        )
        .await,
        1
    );
    let (samples, cpu): (i64, f64) =
        sqlx::query_as("SELECT samples, cpu_percent FROM node_metrics WHERE resolution = 300")
            .fetch_one(&t.state().db)
            .await
            .unwrap();
    assert_eq!((samples, cpu), (2, 20.0));
    // Idempotent.
    assert_eq!(
        retention::tick(&t.state().nodes_state()).await.unwrap(),
        retention::Report::default()
    );

    let week = admin
        .get(&format!("/api/nodes/{id}/metrics?range=7d"))
        .await;
    let cpus: Vec<f64> = week.json["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["cpu_percent"].as_f64().unwrap())
        .collect();
    assert_eq!(cpus, [20.0, 50.0], "{}", week.body);
    let day_series = admin
        .get(&format!("/api/nodes/{id}/metrics?range=24h"))
        .await;
    assert_eq!(day_series.json["points"].as_array().unwrap().len(), 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_are_delivered_once_answered_once_and_time_out() {
    let t = server().await;
    let agent = t.token("agent").await;
    let admin = t.token("admin").await;
    let id = node_id(&agent, "cmd-node", 5).await;
    let other = t.token("agent").await;
    let other_id = node_id(&other, "cmd-other", 5).await;

    // Validation.
    for (body, field) in [
        (json!({"command": ""}), "command"),
        (json!({"command": "rm -rf"}), "command"),
        (json!({"command": "ping", "args": [1]}), "args"),
        (json!({"command": "ping", "timeout_s": 0}), "timeout_s"),
        (json!({"command": "ping", "timeout_s": 99999}), "timeout_s"),
    ] {
        let r = admin
            .post_json(&format!("/api/nodes/{id}/commands"), &body)
            .await;
        assert_error(&r, 422, Some(field));
    }
    assert_error(
        &admin
            .post_json("/api/nodes/99999/commands", &json!({"command": "ping"}))
            .await,
        404,
        None,
    );

    // A long-poll is woken by the command it waits for.
    let poll_url = format!("/api/nodes/{id}/commands?wait=30");
    let poll = agent.get(&poll_url);
    let enqueue = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        admin
            .post_json(
                &format!("/api/nodes/{id}/commands"),
                &json!({"command": "ping", "args": {"n": 1}}),
            )
            .await
    };
    let (polled, queued) = tokio::join!(poll, enqueue);
    assert_eq!(queued.status, 201, "{}", queued.body);
    let cid = queued.json["id"].as_i64().unwrap();
    assert_eq!(
        polled.json["commands"][0]["id"].as_i64(),
        Some(cid),
        "{}",
        polled.body
    );
    assert_eq!(polled.json["commands"][0]["args"], json!({"n": 1}));
    assert_eq!(polled.json["commands"][0]["status"], "delivered");

    // Two racing polls: each command goes to exactly one of them.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let r = admin
            .post_json(
                &format!("/api/nodes/{id}/commands"),
                &json!({"command": "ping"}),
            )
            .await;
        ids.push(r.json["id"].as_i64().unwrap());
    }
    let race_url = format!("/api/nodes/{id}/commands?wait=1");
    let (a, b) = tokio::join!(agent.get(&race_url), agent.get(&race_url));
    let mut got: Vec<i64> = a.json["commands"]
        .as_array()
        .unwrap()
        .iter()
        .chain(b.json["commands"].as_array().unwrap())
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, ids, "each delivered once: {} / {}", a.body, b.body);
    let r = agent.get(&format!("/api/nodes/{id}/commands?wait=0")).await;
    assert_eq!(r.json["commands"], json!([]), "nothing is re-delivered");
    // The other node never sees them.
    let r = other
        .get(&format!("/api/nodes/{other_id}/commands?wait=0"))
        .await;
    assert_eq!(r.json["commands"], json!([]));

    // Results: only the node's own token, only once, exactly one of result/error.
    let result_url = format!("/api/nodes/{id}/commands/{cid}/result");
    assert_error(
        &agent.post_json(&result_url, &json!({})).await,
        422,
        Some("result"),
    );
    assert_error(
        &agent
            .post_json(&result_url, &json!({"result": 1, "error": "x"}))
            .await,
        422,
        Some("result"),
    );
    assert_error(
        &other
            .post_json(
                &format!("/api/nodes/{other_id}/commands/{cid}/result"),
                &json!({"result": 1}),
            )
            .await,
        404,
        None,
    );
    assert_error(
        &other.post_json(&result_url, &json!({"result": 1})).await,
        403,
        None,
    );
    let r = agent
        .post_json(&result_url, &json!({"result": {"pong": true}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["status"], "succeeded");
    assert_error(
        &agent
            .post_json(&result_url, &json!({"result": {"again": 1}}))
            .await,
        409,
        None,
    );
    let c = admin
        .get(&format!("/api/nodes/{id}/commands/{cid}"))
        .await
        .json;
    assert_eq!(c["result"], json!({"pong": true}), "the first answer stays");
    let failed = ids[0];
    let r = agent
        .post_json(
            &format!("/api/nodes/{id}/commands/{failed}/result"),
            &json!({"error": "it broke"}),
        )
        .await;
    assert_eq!(r.json["status"], "failed", "{}", r.body);

    // Deadlines: a delivered command not answered in time, and one never picked up.
    let late = ids[1];
    let pending = admin
        .post_json(
            &format!("/api/nodes/{id}/commands"),
            &json!({"command": "ping", "timeout_s": 5}),
        )
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    t.clock.advance(60);
    let c = admin
        .get(&format!("/api/nodes/{id}/commands/{late}?wait=5"))
        .await
        .json;
    assert_eq!(c["status"], "timed_out", "{c}");
    assert!(
        c["error"].as_str().unwrap().contains("did not answer"),
        "{c}"
    );
    let c = admin
        .get(&format!("/api/nodes/{id}/commands/{pending}"))
        .await
        .json;
    assert_eq!(c["status"], "timed_out", "{c}");
    assert!(c["error"].as_str().unwrap().contains("never picked"), "{c}");
    let r = agent
        .post_json(
            &format!("/api/nodes/{id}/commands/{late}/result"),
            &json!({"result": 1}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (409, Some("command_timed_out")),
        "{}",
        r.body
    );
    let r = agent.get(&format!("/api/nodes/{id}/commands?wait=0")).await;
    assert_eq!(
        r.json["commands"],
        json!([]),
        "a timed-out command is never delivered"
    );
    assert_error(
        &admin
            .get(&format!("/api/nodes/{id}/commands/{cid}?wait=99"))
            .await,
        422,
        Some("wait"),
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_node_reports_and_serves_commands_in_process() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let local = until("the local node's first heartbeat", || async {
        let list = admin.get("/api/nodes").await.json;
        list.as_array()?
            .iter()
            .find(|n| n["local"] == true && n["metrics"]["memory_total"].as_u64() > Some(0))
            .cloned()
    })
    .await;
    let id = local["id"].as_i64().unwrap();
    assert_eq!(local["status"], "online");
    assert_eq!(local["bound"], false);

    // The Rust entry point other domains use.
    let pong = actions::run_command(&t.state().nodes_state(), "test", id, "ping", json!({}), 20)
        .await
        .unwrap();
    assert_eq!(pong["pong"], true);
    assert_eq!(pong["pid"], std::process::id(), "served in this process");
    let m = actions::run_command(
        &t.state().nodes_state(),
        "test",
        id,
        "collect-metrics",
        json!({}),
        20,
    )
    .await
    .unwrap();
    assert!(m["memory_total"].as_u64().unwrap() > 0, "{m}");
    let err = actions::run_command(
        &t.state().nodes_state(),
        "test",
        id,
        "no-such-command",
        json!({}),
        20,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, actions::NodeError::CommandFailed(ref e) if e.contains("unknown command")),
        "{err:?}"
    );
    let err = actions::run_command(
        &t.state().nodes_state(),
        "test",
        99_999,
        "ping",
        json!({}),
        5,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, actions::NodeError::NotFound(_)), "{err:?}");

    // Over HTTP: enqueue, then wait for the result.
    let r = admin
        .post_json(
            &format!("/api/nodes/{id}/commands"),
            &json!({"command": "ping"}),
        )
        .await;
    let cid = r.json["id"].as_i64().unwrap();
    let c = admin
        .get(&format!("/api/nodes/{id}/commands/{cid}?wait=20"))
        .await
        .json;
    assert_eq!(c["status"], "succeeded", "{c}");

    // No token acts for it, and it cannot be removed while serve runs it.
    let agent = t.token("agent").await;
    let r = agent
        .post_json(&format!("/api/nodes/{id}/heartbeat"), &metrics(1.0))
        .await;
    assert_error(&r, 403, None);
    let (s, _) = register(&agent, local["name"].as_str().unwrap(), 5).await;
    assert_eq!(s, 409);
    assert_error(&admin.delete(&format!("/api/nodes/{id}")).await, 409, None);

    // An offline node fails at once instead of waiting out the timeout.
    let far = node_id(&agent, "never-seen", 5).await;
    let err = actions::run_command(&t.state().nodes_state(), "test", far, "ping", json!({}), 30)
        .await
        .unwrap_err();
    assert!(matches!(err, actions::NodeError::Unavailable(_)), "{err:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nodes_panel_adds_shows_and_removes_nodes() {
    let t = server().await;
    let admin = t.admin().await;
    let page = admin.get("/nodes").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No nodes yet"), "empty state");
    assert!(page.body.contains("+ Add node"));

    let r = admin.post_form("/nodes/add", &[("name", "gpu-box")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let prefix = format!("architect agent --dashboard {} --token arch_", t.url);
    assert!(r.body.contains(&prefix), "{}", r.body);
    assert!(r.body.contains("--node-id gpu-box"));
    assert_eq!(r.headers["cache-control"], "no-store");
    let start = r.body.find("--token ").unwrap() + "--token ".len();
    let token: String = r.body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();

    // The token works for that node, and only the page of its creation showed it.
    let agent = Session::new(&t.url, Some(token.clone()));
    let (s, n) = register(&agent, "gpu-box", 5).await;
    assert_eq!(s, 200, "{n}");
    let id = n["id"].as_i64().unwrap();
    assert_eq!(
        agent
            .post_json(&format!("/api/nodes/{id}/heartbeat"), &metrics(42.0))
            .await
            .status,
        200
    );
    let page = admin.get("/nodes").await;
    assert!(!page.body.contains(&token), "the token is shown once");
    assert!(
        page.body
            .contains("data-node=\"gpu-box\" data-status=\"online\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<svg class=\"node-chart\""),
        "server-side chart"
    );
    assert!(page.body.contains("<polyline points=\""), "chart has data");
    assert!(page.body.contains("42 %"), "cpu gauge");
    let detail = admin.get(&format!("/nodes/{id}")).await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains("/data"), "disks table");

    // Errors come back as a message, never a 5xx.
    let r = admin.post_form("/nodes/add", &[("name", "gpu-box")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.headers["location"].to_str().unwrap().contains("error="));
    let r = admin.post_form("/nodes/add", &[("name", "bad name")]).await;
    assert_eq!(r.status, 303);

    // Viewers see nodes but neither the add form nor remove buttons; forms need CSRF.
    let viewer = t.user("viewer1", "viewer").await;
    let page = viewer.get("/nodes").await;
    assert!(
        page.body.contains("gpu-box")
            && !page.body.contains("+ Add node")
            && !page.body.contains("/remove")
    );
    let r = viewer.post_form(&format!("/nodes/{id}/remove"), &[]).await;
    assert_eq!(r.status, 403);
    let r = admin
        .send(
            admin
                .http
                .post(format!("{}/nodes/{id}/remove", t.url))
                .form(&[("x", "1")]),
        )
        .await;
    assert_eq!(r.status, 403, "no CSRF token");

    // Remove (the confirm is a <details>, no JavaScript needed).
    assert!(admin
        .get("/nodes")
        .await
        .body
        .contains("<details class=\"node-remove\">"));
    let r = admin.post_form(&format!("/nodes/{id}/remove"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_error(&admin.get(&format!("/api/nodes/{id}")).await, 404, None);
    assert!(!admin
        .get("/nodes")
        .await
        .body
        .contains("data-node=\"gpu-box\""));
    t.stop().await;
}

// ---------------------------------------------------------------------------------------------
// real `architect agent` processes
// ---------------------------------------------------------------------------------------------

/// A running `architect agent`, logging to a file; killed when dropped.
pub(crate) struct AgentProc {
    child: tokio::process::Child,
    log: std::path::PathBuf,
}

impl AgentProc {
    fn start(url: &str, token: &str, name: &str, dir: &Path) -> AgentProc {
        AgentProc::start_with(url, token, name, dir, &[])
    }

    /// [`AgentProc::start`] with extra `architect agent` arguments.
    pub(crate) fn start_with(
        url: &str,
        token: &str,
        name: &str,
        dir: &Path,
        extra: &[&str],
    ) -> AgentProc {
        let log = dir.join(format!("agent-{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args([
            "agent",
            "--dashboard",
            url,
            "--node-id",
            name,
            "--interval",
            "1s",
            "--max-backoff",
            "1s",
        ])
        .args(extra)
        .env("ARCHITECT_TOKEN", token)
        .env("RUST_LOG", "info")
        .env_remove("ARCHITECT_URL")
        .env_remove("ARCHITECT_TMUX_SOCKET")
        .env_remove("ARCHITECT_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .kill_on_drop(true);
        AgentProc {
            child: cmd.spawn().expect("agent starts"),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Exited (gone, or a zombie not yet collected).
fn gone(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty()
        || stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
}

pub(crate) async fn agent_token(s: &Session, name: &str) -> String {
    let r = s
        .post_json("/api/tokens", &json!({"name": name, "scope": "agent"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["token"].as_str().unwrap().to_string()
}

/// Waits for node `name` to be online with metrics; returns it.
pub(crate) async fn online(admin: &Session, name: &str) -> Value {
    until(&format!("node {name} online with metrics"), || async {
        let list = admin.get("/api/nodes").await.json;
        list.as_array()?
            .iter()
            .find(|n| {
                n["name"] == name
                    && n["status"] == "online"
                    && n["metrics"]["memory_total"].as_u64() > Some(0)
            })
            .cloned()
    })
    .await
}

async fn enqueue_and_wait(admin: &Session, node: i64, body: Value) -> Value {
    let r = admin
        .post_json(&format!("/api/nodes/{node}/commands"), &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let cid = r.json["id"].as_i64().unwrap();
    until("the command's result", || async {
        let c = admin
            .get(&format!("/api/nodes/{node}/commands/{cid}?wait=10"))
            .await
            .json;
        (c["status"] != "pending" && c["status"] != "delivered").then_some(c)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_agent_processes_send_metrics_and_run_their_own_commands() {
    let t = server().await;
    let admin = t.token("admin").await;
    let tmp = tempfile::tempdir().unwrap();
    let ta = agent_token(&admin, "agent a").await;
    let tb = agent_token(&admin, "agent b").await;
    let a = AgentProc::start(&t.url, &ta, "it-a", tmp.path());
    let b = AgentProc::start(&t.url, &tb, "it-b", tmp.path());
    let na = online(&admin, "it-a").await;
    let nb = online(&admin, "it-b").await;
    let (ia, ib) = (na["id"].as_i64().unwrap(), nb["id"].as_i64().unwrap());
    let m = &na["metrics"];
    assert!(m["cpu_count"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["process_count"].as_u64().unwrap() > 1, "{m}");
    assert!(m["uptime_s"].as_u64().unwrap() > 0, "{m}");
    assert!(!m["disks"].as_array().unwrap().is_empty(), "{m}");
    assert_eq!(na["interval_s"], 1);
    assert_eq!(na["version"], env!("CARGO_PKG_VERSION"));

    // Each command runs on its own node's agent, once.
    let c = enqueue_and_wait(&admin, ia, json!({"command": "ping"})).await;
    assert_eq!(c["status"], "succeeded", "{c}");
    assert_eq!(c["result"]["node"], "it-a");
    assert_eq!(c["result"]["pid"], a.pid());
    let c = enqueue_and_wait(&admin, ib, json!({"command": "ping"})).await;
    assert_eq!(c["result"]["pid"], b.pid(), "{c}");
    let c = enqueue_and_wait(&admin, ib, json!({"command": "collect-metrics"})).await;
    assert!(c["result"]["memory_total"].as_u64().unwrap() > 0, "{c}");
    let c = enqueue_and_wait(&admin, ia, json!({"command": "reboot-now"})).await;
    assert_eq!(c["status"], "failed");
    assert!(
        c["error"].as_str().unwrap().contains("unknown command"),
        "{c}"
    );
    let mut queued = Vec::new();
    for _ in 0..6 {
        let r = admin
            .post_json(
                &format!("/api/nodes/{ia}/commands"),
                &json!({"command": "ping"}),
            )
            .await;
        queued.push(r.json["id"].as_i64().unwrap());
    }
    for cid in &queued {
        let c = until("a burst command's result", || async {
            let c = admin
                .get(&format!("/api/nodes/{ia}/commands/{cid}?wait=10"))
                .await
                .json;
            (c["status"] == "succeeded").then_some(c)
        })
        .await;
        assert_eq!(c["result"]["pid"], a.pid());
    }

    // tmux-list against a private tmux server, then with none running.
    let sock = format!("architect-it-{}", std::process::id());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .arg("-L")
            .arg(&sock)
            .args(args)
            .status()
            .expect("tmux runs")
    };
    /// Kills the private tmux server however the test ends.
    struct KillTmux(String);
    impl Drop for KillTmux {
        fn drop(&mut self) {
            let _ = std::process::Command::new("tmux")
                .args(["-L", &self.0, "kill-server"])
                .stderr(std::process::Stdio::null())
                .status();
            // tmux leaves the socket file behind.
            let dir = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".into());
            if let Ok(me) = std::fs::metadata("/proc/self") {
                use std::os::unix::fs::MetadataExt;
                let _ = std::fs::remove_file(format!("{dir}/tmux-{}/{}", me.uid(), self.0));
            }
        }
    }
    let _cleanup = KillTmux(sock.clone());
    assert!(tmux(&[
        "new-session",
        "-d",
        "-s",
        "it-session",
        "-x",
        "80",
        "-y",
        "20"
    ])
    .success());
    let c = enqueue_and_wait(
        &admin,
        ia,
        json!({"command": "tmux-list", "args": {"socket": sock}}),
    )
    .await;
    let _ = tmux(&["kill-server"]);
    assert_eq!(c["status"], "succeeded", "{c}");
    let sessions = c["result"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{c}");
    assert_eq!(sessions[0]["name"], "it-session");
    assert_eq!(sessions[0]["windows"], 1);
    let c = enqueue_and_wait(
        &admin,
        ia,
        json!({"command": "tmux-list", "args": {"socket": sock}}),
    )
    .await;
    assert_eq!(
        c["result"],
        json!({"sessions": []}),
        "no server is an empty list: {c}"
    );

    // An agent that is gone: its command times out instead of hanging.
    let b_pid = b.pid();
    drop(b);
    until("agent b to exit", || async { gone(b_pid).then_some(()) }).await;
    let r = admin
        .post_json(
            &format!("/api/nodes/{ib}/commands"),
            &json!({"command": "ping", "timeout_s": 2}),
        )
        .await;
    let cid = r.json["id"].as_i64().unwrap();
    let c = until("the orphaned command to time out", || async {
        let c = admin
            .get(&format!("/api/nodes/{ib}/commands/{cid}?wait=5"))
            .await
            .json;
        (c["status"] == "timed_out").then_some(c)
    })
    .await;
    assert!(c["error"].as_str().unwrap().starts_with("timed out"), "{c}");

    // The agents never wrote their token to their logs.
    let log = a.log();
    assert!(log.contains("node registered"), "{log}");
    assert!(!log.contains(&ta) && !log.contains(&tb), "token in the log");
    assert!(!log.contains("could not deliver"), "{log}");
    t.stop().await;
}

/// An `architect agent` with its own private tmux server (`--tmux-socket`): the dashboard's
/// tmux API drives sessions there (create, send, capture, list tagged with the node, kill),
/// and `architect session start --node` starts an agent session there through the same
/// launch code as a local start, with its environment pointing back at the dashboard; the
/// stored command carries a one-time claim, never the session's token.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_on_a_private_tmux_socket_runs_remote_tmux_and_session_start() {
    let node_tmux = crate::agents::PrivateTmux::new();
    let server_tmux = crate::agents::PrivateTmux::new();
    let server_sock = server_tmux.socket.clone();
    let t = TestServer::start_with(move |c| {
        c.nodes.local_node = false;
        c.agents.tmux_socket = Some(server_sock);
    })
    .await;
    let admin = t.token("admin").await;
    let tmp = tempfile::tempdir().unwrap();
    let token = agent_token(&admin, "agent tmux").await;
    let data = tmp.path().join("node-data");
    let agent = AgentProc::start_with(
        &t.url,
        &token,
        "it-tmux",
        tmp.path(),
        &[
            "--tmux-socket",
            &node_tmux.socket,
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    online(&admin, "it-tmux").await;
    let on_node = |name: &str| {
        node_tmux
            .run(&["list-sessions", "-F", "#{session_name}"])
            .lines()
            .any(|l| l == name)
    };

    // The tmux API on the node's private server.
    let r = admin
        .post_json(
            "/api/tmux/create",
            &json!({"node": "it-tmux", "name": "rt", "command": ["bash", "--norc", "--noprofile"],
                    "env": {"IT_MARK": "forty-two"}, "width": 100, "height": 30}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(on_node("rt"), "created on the agent's --tmux-socket server");
    assert!(server_tmux.run(&["list-sessions"]).is_empty());
    let r = admin
        .post_json(
            "/api/tmux/send",
            &json!({"node": "it-tmux", "session": "rt", "text": "echo \"mark=$IT_MARK\""}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until("the remote pane to show the echo", || async {
        let c = admin
            .post_json(
                "/api/tmux/capture",
                &json!({"node": "it-tmux", "session": "rt", "lines": 50}),
            )
            .await;
        (c.status == 200 && c.json["output"].as_str()?.contains("mark=forty-two")).then_some(())
    })
    .await;
    let list = admin.get("/api/tmux/sessions").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.json["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["node"] == "it-tmux" && s["name"] == "rt"),
        "{}",
        list.body
    );
    let r = admin
        .post_json(
            "/api/tmux/kill",
            &json!({"node": "it-tmux", "session": "rt"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!on_node("rt"));

    // A remote session start, from the CLI.
    let cwd = tmp.path().display().to_string();
    let admin_token = admin.token.clone().unwrap();
    let start = |name: &'static str| {
        let (url, cwd, token) = (t.url.clone(), cwd.clone(), admin_token.clone());
        async move {
            let mut cmd = tokio::process::Command::new(BIN);
            cmd.args([
                "session", "start", name, "--agent", "shell", "--node", "it-tmux", "--cwd", &cwd,
                "--url", &url, "--json",
            ])
            .env_remove("ARCHITECT_URL")
            .env("ARCHITECT_TOKEN", token);
            cmd.output().await.expect("architect runs")
        }
    };
    let out = start("rs").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(started["node"], "it-tmux", "{started}");
    assert_eq!(started["agent"], "shell");
    assert_eq!(started["cwd"], cwd.as_str());
    assert!(on_node("rs"), "started on the node's private tmux server");
    let env = |var: &str| crate::agents::session_env(&node_tmux, "rs", var);
    assert_eq!(
        env("ARCHITECT_URL"),
        t.url,
        "hooks report to the agent's dashboard"
    );
    assert_eq!(env("ARCHITECT_NODE"), "it-tmux");
    assert_eq!(env("ARCHITECT_SESSION"), "rs");
    let session_token = env("ARCHITECT_TOKEN");
    assert!(!session_token.is_empty());
    // The session's token works as that session's, and is not left in the command row.
    let me = Session::new(&t.url, Some(session_token.clone()))
        .get("/api/agents/sessions/rs?node=it-tmux")
        .await;
    assert_ne!(me.status, 401, "{}", me.body);
    // A viewer reads the command: a used claim, no token.
    let viewer = t.user("cmd-viewer", "viewer").await;
    let node_id = admin
        .get("/api/nodes")
        .await
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "it-tmux")
        .map(|n| n["id"].as_i64().unwrap())
        .unwrap();
    let cid = count(
        &t,
        "SELECT MAX(id) FROM node_commands WHERE command = 'session-start'",
    )
    .await;
    let c = viewer
        .get(&format!("/api/nodes/{node_id}/commands/{cid}"))
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.json["args"]["token"], "", "{}", c.body);
    let claim = c.json["args"]["token_claim"].as_str().unwrap().to_string();
    assert!(!c.body.contains(&session_token));
    // The claim was used: neither the node's agent nor anyone else gets a token with it.
    let node_agent = Session::new(&t.url, Some(token.clone()));
    let again = node_agent
        .post_json(
            "/api/agents/session-claims/redeem",
            &json!({"claim": claim}),
        )
        .await;
    assert_eq!(again.status, 422, "{}", again.body);
    let r = viewer
        .post_json(
            "/api/agents/session-claims/redeem",
            &json!({"claim": claim}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        count(
            &t,
            &format!("SELECT COUNT(*) FROM node_commands WHERE args LIKE '%{session_token}%'")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM agent_sessions WHERE node = 'it-tmux' AND name = 'rs' \
             AND agent = 'shell' AND launched = 1"
        )
        .await,
        1
    );
    // A second start under the same name fails on the node, and says why.
    let out = start("rs").await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = admin
        .post_json(
            "/api/tmux/kill",
            &json!({"node": "it-tmux", "session": "rs"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!on_node("rs"));
    let log = agent.log();
    assert!(
        !log.contains(&session_token),
        "session token in the agent's log"
    );
    drop(agent);
    t.stop().await;
}

/// A server on a fixed data dir and port, so it can go away and come back where an agent
/// expects it.
async fn serve_at(dir: &Path, port: u16) -> architect::serve::Server {
    let mut cfg = support::config(dir);
    cfg.port = port;
    cfg.nodes.local_node = false;
    architect::serve::start(cfg, architect::clock::Clock::manual())
        .await
        .expect("server starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_survives_the_dashboard_going_away_and_reconnects() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = serve_at(&dir, 0).await;
    let port = server.addr.port();
    let url = format!("http://{}", server.addr);
    let mut admin = Session::new(&url, None);
    let r = admin
        .post_json(
            "/login",
            &json!({"username": support::ADMIN, "password": support::ADMIN_PASSWORD}),
        )
        .await;
    admin.csrf = r.json["csrf_token"].as_str().unwrap().to_string();
    let token = agent_token(&admin, "outage").await;
    let agent = AgentProc::start(&url, &token, "it-outage", tmp.path());
    let before = online(&admin, "it-outage").await;

    server.shutdown().await.unwrap();
    // Down for several of the agent's retry periods.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!gone(agent.pid()), "the agent is still running");
    let server = serve_at(&dir, port).await;
    let mut admin = Session::new(&url, None);
    let r = admin
        .post_json(
            "/login",
            &json!({"username": support::ADMIN, "password": support::ADMIN_PASSWORD}),
        )
        .await;
    admin.csrf = r.json["csrf_token"].as_str().unwrap().to_string();
    let last = before["last_heartbeat_at"].as_str().unwrap().to_string();
    until("a heartbeat after the outage", || async {
        let list = admin.get("/api/nodes").await.json;
        let n = list
            .as_array()?
            .iter()
            .find(|n| n["name"] == "it-outage")?
            .clone();
        (n["last_heartbeat_at"].as_str()? > last.as_str()).then_some(())
    })
    .await;
    let id = before["id"].as_i64().unwrap();
    let c = enqueue_and_wait(&admin, id, json!({"command": "ping"})).await;
    assert_eq!(c["status"], "succeeded", "commands flow again: {c}");

    let log = agent.log();
    assert_eq!(
        log.matches("cannot talk to the control plane").count(),
        1,
        "one line per outage, not per attempt: {log}"
    );
    assert!(log.contains("control plane reachable again"), "{log}");
    drop(agent);
    server.shutdown().await.unwrap();
}

async fn run_cli(args: &[&str], token: Option<&str>) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env_remove("ARCHITECT_URL")
        .env_remove("ARCHITECT_TOKEN");
    if let Some(t) = token {
        cmd.env("ARCHITECT_TOKEN", t);
    }
    cmd.output().await.expect("architect runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_daemon_status_and_stop() {
    let t = server().await;
    let admin = t.token("admin").await;
    let token = agent_token(&admin, "daemon").await;
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("run/agent.pid");
    let log_file = tmp.path().join("agent.log");
    let files = [
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--log-file",
        log_file.to_str().unwrap(),
    ];
    let status = run_cli(&[&["agent", "--status"][..], &files].concat(), None).await;
    assert_eq!(status.status.code(), Some(3), "not running yet");

    // The token given as a flag goes to the daemon's environment, not its command line.
    let mut args = vec![
        "agent",
        "--dashboard",
        &t.url,
        "--token",
        &token,
        "--node-id",
        "it-daemon",
        "--interval",
        "1s",
        "--daemon",
    ];
    args.extend(files);
    let out = run_cli(&args, None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(&token),
        "token on the daemon's command line"
    );
    online(&admin, "it-daemon").await;
    let status = run_cli(&[&["agent", "--status"][..], &files].concat(), None).await;
    assert_eq!(status.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&status.stdout).contains(&pid.to_string()));
    let again = run_cli(&args, None).await;
    assert!(!again.status.success(), "a second daemon is refused");

    let stop = run_cli(&[&["agent", "--stop"][..], &files].concat(), None).await;
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(!pid_file.exists(), "pid file removed");
    until("the daemon to exit", || async { gone(pid).then_some(()) }).await;
    let status = run_cli(&[&["agent", "--status"][..], &files].concat(), None).await;
    assert_eq!(status.status.code(), Some(3));
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains("architect agent stopped"),
        "graceful stop: {log}"
    );
    assert!(!log.contains(&token));

    // Without a token it says what to do, in the foreground.
    let out = run_cli(&["agent", "--dashboard", &t.url], None).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ARCHITECT_TOKEN"));
    let out = run_cli(
        &["agent", "--dashboard", &t.url, "--node-id", "bad id"],
        Some(&token),
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("--node-id"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_registrations_heartbeats_and_removals_never_fail_the_server() {
    let t = server().await;
    let agent = std::sync::Arc::new(t.token("agent").await);
    let admin = std::sync::Arc::new(t.admin().await);
    let mut jobs = Vec::new();
    for i in 0..12 {
        let (agent, admin) = (agent.clone(), admin.clone());
        jobs.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let r = agent
                .post_json(
                    "/api/nodes",
                    &json!({"name": format!("c-{i}"), "interval_s": 5}),
                )
                .await;
            statuses.push(r.status);
            let id = r.json["id"].as_i64().unwrap_or(0);
            for _ in 0..4 {
                let r = agent
                    .post_json(&format!("/api/nodes/{id}/heartbeat"), &metrics(i as f64))
                    .await;
                statuses.push(r.status);
                let r = admin
                    .post_json(
                        "/api/nodes",
                        &json!({"name": format!("c-{}", (i + 1) % 12)}),
                    )
                    .await;
                statuses.push(r.status);
            }
            let r = admin
                .post_json("/api/nodes", &json!({"name": format!("m-{i}")}))
                .await;
            statuses.push(r.status);
            let r = admin.delete(&format!("/api/nodes/{}", r.json["id"])).await;
            statuses.push(r.status);
            statuses
        }));
    }
    for j in jobs {
        let statuses = j.await.unwrap();
        assert!(statuses.iter().all(|s| *s < 500), "{statuses:?}");
    }
    let list = admin.get("/api/nodes").await.json;
    assert_eq!(list.as_array().unwrap().len(), 12, "{list}");
    t.stop().await;
}

/// Finished commands go after a day (remote tmux reads add one per call); queued ones stay.
#[tokio::test]
async fn retention_prunes_finished_commands_after_a_day() {
    let t = TestServer::start().await;
    let node = until("the local node", || async { t.state().nodes.local_node() }).await;
    // Registered is not yet connected: a command needs the first heartbeat.
    let admin = t.admin().await;
    until("the local node is online", || async {
        (admin.get(&format!("/api/nodes/{node}")).await.json["status"] == "online").then_some(())
    })
    .await;
    actions::run_command(
        &t.state().nodes_state(),
        "test",
        node,
        "ping",
        json!({}),
        10,
    )
    .await
    .expect("ping runs");
    assert_eq!(count(&t, "SELECT COUNT(*) FROM node_commands").await, 1);
    assert_eq!(
        retention::tick(&t.state().nodes_state())
            .await
            .unwrap()
            .commands_pruned,
        0
    );
    t.clock.advance(25 * 3600);
    let r = retention::tick(&t.state().nodes_state()).await.unwrap();
    assert_eq!(r.commands_pruned, 1, "{r:?}");
    assert_eq!(count(&t, "SELECT COUNT(*) FROM node_commands").await, 0);
    t.stop().await;
}
