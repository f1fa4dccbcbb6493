//! Error aggregation over real HTTP: grouping and normalisation through the batching writer,
//! regressions, rate limits, caps and compression bombs, the token-required mode, bad payloads
//! (never 5xx, nothing stored), bugs from groups linked both ways, the real `sentry-sdk` Python
//! package as a client, the dashboard panel, and acknowledged events surviving `kill -9` of
//! the real binary.

use crate::support::{Session, TestServer, ADMIN};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn report(node: &str, error_type: &str, message: &str, source: &str) -> Value {
    json!({"node_id": node, "error_type": error_type, "message": message, "source": source})
}

async fn post_ok(s: &Session, body: &Value) -> i64 {
    let r = s.post_json("/api/errors", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["group_id"].as_i64().expect("group id")
}

async fn groups(reader: &Session, query: &str) -> Vec<Value> {
    let r = reader.get(&format!("/api/errors{query}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json.as_array().expect("array").clone()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_are_grouped_with_nodes_occurrences_and_histogram() {
    let t = TestServer::start().await;
    let anon = t.anon();
    let mut body = report(
        "web-1",
        "DbTimeout",
        "query 17 timed out after 3000 ms",
        "api",
    );
    body["stack_trace"] = json!("Traceback:\n  File \"db.py\", line 3\nDbTimeout");
    body["level"] = json!("fatal");
    body["context"] = json!({"request_id": "r-1"});
    let id = post_ok(&anon, &body).await;
    let id2 = post_ok(
        &anon,
        &report(
            "web-2",
            "DbTimeout",
            "query 99 timed out after 12 ms",
            "api",
        ),
    )
    .await;
    assert_eq!(id, id2, "id-only differences share a group");

    // Reading needs a login.
    assert_eq!(anon.get("/api/errors").await.status, 401);
    let admin = t.admin().await;
    let list = groups(&admin, "").await;
    assert_eq!(list.len(), 1);
    let g = &list[0];
    assert_eq!(g["count"], 2);
    assert_eq!(g["title"], "query <num> timed out after <num> ms");
    assert_eq!(g["message"], "query 99 timed out after 12 ms");
    assert_eq!(g["status"], "open");
    assert_eq!(g["regressed"], false);
    assert_eq!(g["nodes"].as_array().unwrap().len(), 2);

    let d = admin.get(&format!("/api/errors/{id}")).await;
    assert_eq!(d.status, 200, "{}", d.body);
    assert!(d.json["stack_trace"].as_str().unwrap().contains("db.py"));
    let occ = d.json["occurrences"].as_array().unwrap();
    assert_eq!(occ.len(), 2);
    assert_eq!(occ[0]["message"], "query 99 timed out after 12 ms");
    assert_eq!(occ[1]["context"]["request_id"], "r-1");
    assert_eq!(occ[1]["level"], "fatal");
    let hourly = d.json["hourly"].as_array().unwrap();
    assert_eq!(hourly.len(), 24);
    assert_eq!(hourly.last().unwrap()["count"], 2);

    // Filters.
    assert_eq!(groups(&admin, "?node=web-2").await.len(), 1);
    assert_eq!(groups(&admin, "?node=web-9").await.len(), 0);
    assert_eq!(groups(&admin, "?status=resolved").await.len(), 0);
    assert_eq!(groups(&admin, "?q=TIMED%20OUT&sort=count").await.len(), 1);
    assert_eq!(groups(&admin, "?source=other").await.len(), 0);
    let bad = admin.get("/api/errors?status=bogus").await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (422, Some("status"))
    );
    assert_eq!(admin.get("/api/errors/999").await.status, 404);
    assert_eq!(admin.get("/api/errors/abc").await.status, 400);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_id_variants_are_one_group_and_types_never_merge() {
    let t = TestServer::start_with(|c| {
        c.errors.errors_rate_per_source = 0.0;
        c.errors.errors_rate_per_address = 0.0;
    })
    .await;
    let anon = Arc::new(t.anon());
    let n = 10_000usize;
    let codes = futures_util::stream::iter(0..n)
        .map(|i| {
            let s = anon.clone();
            async move {
                let msg = format!(
                    "user {i} not found: order 7c9e6679-7425-40de-944b-e07fc1f9{i:04x} in /srv/app/{i}/db.sqlite at 0x{i:x}ff, key '{i}k'"
                );
                let node = format!("node-{}", i % 3);
                s.post_json("/api/errors", &report(&node, "NotFound", &msg, "api"))
                    .await
                    .status
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<u16>>()
        .await;
    assert!(codes.iter().all(|c| *c == 201), "every report accepted");

    // Same message, other type; same type and message, other source.
    post_ok(
        &anon,
        &report("node-0", "Missing", "user 1 not found", "api"),
    )
    .await;
    post_ok(
        &anon,
        &report("node-0", "NotFound", "user 1 not found: order x", "web"),
    )
    .await;

    let admin = t.admin().await;
    let list = groups(&admin, "?sort=count").await;
    assert_eq!(list.len(), 3, "{list:?}");
    let big = &list[0];
    assert_eq!(big["count"], n as i64);
    assert_eq!(big["error_type"], "NotFound");
    assert_eq!(
        big["title"],
        "user <num> not found: order <uuid> in <path> at <hex>, key '<str>'"
    );
    let per_node: i64 = big["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["count"].as_i64().unwrap())
        .sum();
    assert_eq!(per_node, n as i64);
    assert_eq!(big["nodes"].as_array().unwrap().len(), 3);
    // The sample of raw occurrences stays bounded.
    let d = admin.get(&format!("/api/errors/{}", big["id"])).await;
    assert!(d.json["occurrences"].as_array().unwrap().len() <= 50);
    assert_eq!(
        d.json["hourly"].as_array().unwrap().last().unwrap()["count"],
        n as i64
    );
    // Retention prunes samples to the bound.
    architect::errors::retention_tick(&t.state().errors_state())
        .await
        .unwrap();
    let kept: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM error_occurrences WHERE error_id = $1")
            .bind(big["id"].as_i64().unwrap())
            .fetch_one(&t.state().db)
            .await
            .unwrap();
    assert!(kept <= 50, "kept {kept}");

    // The client's own fingerprint groups across messages, never across types.
    let mut a = report("n", "Timeout", "first text", "a");
    a["fingerprint"] = json!("db-timeouts");
    let mut b = report("n", "Timeout", "completely other text", "b");
    b["fingerprint"] = json!("db-timeouts");
    let mut c = report("n", "IoError", "first text", "a");
    c["fingerprint"] = json!("db-timeouts");
    let ga = post_ok(&anon, &a).await;
    assert_eq!(ga, post_ok(&anon, &b).await);
    assert_ne!(ga, post_ok(&anon, &c).await);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resolved_groups_reopen_as_regressed_and_resolving_needs_write() {
    let t = TestServer::start().await;
    let anon = t.anon();
    let id = post_ok(&anon, &report("n1", "Boom", "exploded 1 time", "worker")).await;
    assert_eq!(
        anon.post_json(&format!("/api/errors/{id}/resolve"), &json!({}))
            .await
            .status,
        401
    );
    let viewer = t.user("vera", "viewer").await;
    assert_eq!(viewer.get("/api/errors").await.status, 200);
    let r = viewer
        .post_json(&format!("/api/errors/{id}/resolve"), &json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    let admin = t.admin().await;
    let r = admin
        .post_json(&format!("/api/errors/{id}/resolve"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["status"], "resolved");
    assert_eq!(r.json["resolved_by"], ADMIN);
    assert_eq!(groups(&admin, "?status=open").await.len(), 0);
    assert_eq!(
        admin
            .post_json("/api/errors/404/resolve", &json!({}))
            .await
            .status,
        404
    );

    assert_eq!(
        post_ok(&anon, &report("n2", "Boom", "exploded 2 time", "worker")).await,
        id
    );
    let g = &groups(&admin, "?status=open").await[0];
    assert_eq!(
        (g["status"].as_str(), g["regressed"].as_bool()),
        (Some("open"), Some(true))
    );
    assert_eq!(g["count"], 2);
    // Resolving again clears the flag.
    let r = admin
        .post_json(&format!("/api/errors/{id}/resolve"), &json!({}))
        .await;
    assert_eq!(r.json["regressed"], false);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_drops_old_hourly_counts_but_keeps_totals() {
    let t = TestServer::start().await;
    let id = post_ok(&t.anon(), &report("n", "Old", "once upon a time", "s")).await;
    let hours = |t: &TestServer| {
        let db = t.state().db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM error_hours")
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    assert_eq!(hours(&t).await, 1);
    architect::errors::retention_tick(&t.state().errors_state())
        .await
        .unwrap();
    assert_eq!(hours(&t).await, 1, "recent buckets stay");
    t.clock.advance(31 * 24 * 3600);
    architect::errors::retention_tick(&t.state().errors_state())
        .await
        .unwrap();
    assert_eq!(hours(&t).await, 0, "buckets past 30 days go");
    let admin = t.admin().await;
    let g = admin.get(&format!("/api/errors/{id}")).await;
    assert_eq!(g.json["count"], 1, "the total stays");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_answer_429_with_retry_after_per_source() {
    let t = TestServer::start_with(|c| {
        c.errors.errors_rate_per_source = 0.5;
        c.errors.errors_burst = 3;
    })
    .await;
    let anon = t.anon();
    for i in 0..3 {
        post_ok(&anon, &report("n", "E", &format!("m {i}"), "noisy")).await;
    }
    let r = anon
        .post_json("/api/errors", &report("n", "E", "m 4", "noisy"))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json["code"], "too_many_requests");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    // Another source is not held back.
    post_ok(&anon, &report("n", "E", "m", "quiet")).await;

    let admin = t.admin().await;
    let g = groups(&admin, "?source=noisy").await;
    assert_eq!(g[0]["count"], 3, "the refused report is not counted");
    let m = admin.get("/metrics").await;
    assert!(m.body.contains("errors_ingested_total"), "{}", m.body);
    assert!(m
        .body
        .contains("errors_rejected_total{reason=\"rate_limited\"}"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn caps_refuse_large_bodies_and_compression_bombs_with_413() {
    let t = TestServer::start_with(|c| {
        c.errors.errors_max_body_bytes = 16 * 1024;
        c.errors.errors_max_decompressed_bytes = 64 * 1024;
    })
    .await;
    let anon = t.anon();
    let http = reqwest::Client::new();
    let url = format!("{}/api/errors", t.url);

    // Too large on the wire.
    let big = report("n", "E", &"x".repeat(20 * 1024), "s");
    let r = anon.post_json("/api/errors", &big).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    // Small compressed, huge decompressed: refused while decompressing.
    let bomb_json =
        serde_json::to_vec(&report("n", "E", &"a".repeat(10 * 1024 * 1024), "s")).unwrap();
    let bomb = gzip(&bomb_json);
    assert!(
        bomb.len() < 16 * 1024,
        "the bomb is small on the wire: {}",
        bomb.len()
    );
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "payload_too_large");

    // A fitting gzip report is fine.
    let ok = gzip(&serde_json::to_vec(&report("n", "Zipped", "small 1", "s")).unwrap());
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    let admin = t.admin().await;
    let all = groups(&admin, "").await;
    assert_eq!(all.len(), 1, "only the fitting report is stored: {all:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_payloads_are_4xx_never_5xx_and_store_nothing() {
    let t = TestServer::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/errors", t.url);
    let long = "n".repeat(300);
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("not json", None, b"{nope".to_vec()),
        ("empty", None, Vec::new()),
        ("array", None, b"[1, 2]".to_vec()),
        ("number type", None, br#"{"node_id": 1, "error_type": "E", "message": "m", "source": "s"}"#.to_vec()),
        ("missing source", None, br#"{"node_id": "n", "error_type": "E", "message": "m"}"#.to_vec()),
        ("null message", None, br#"{"node_id": "n", "error_type": "E", "message": null, "source": "s"}"#.to_vec()),
        ("blank type", None, br#"{"node_id": "n", "error_type": "  ", "message": "m", "source": "s"}"#.to_vec()),
        ("bad level", None, br#"{"node_id": "n", "error_type": "E", "message": "m", "source": "s", "level": "loud"}"#.to_vec()),
        ("context not object", None, br#"{"node_id": "n", "error_type": "E", "message": "m", "source": "s", "context": [1]}"#.to_vec()),
        ("empty fingerprint", None, br#"{"node_id": "n", "error_type": "E", "message": "m", "source": "s", "fingerprint": ""}"#.to_vec()),
        ("control chars", None, b"{\"node_id\": \"a\\u0000b\", \"error_type\": \"E\", \"message\": \"m\", \"source\": \"s\"}".to_vec()),
        ("long node", None, format!(r#"{{"node_id": "{long}", "error_type": "E", "message": "m", "source": "s"}}"#).into_bytes()),
        ("bad gzip", Some("gzip"), b"definitely not gzip".to_vec()),
        ("bad deflate", Some("deflate"), b"\x78\x9c garbage".to_vec()),
        ("brotli", Some("br"), b"whatever".to_vec()),
        ("invalid utf-8", None, b"{\"node_id\": \"\xff\xfe\", \"error_type\": \"E\", \"message\": \"m\", \"source\": \"s\"}".to_vec()),
    ];
    for (what, encoding, body) in cases {
        let mut rb = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(e) = encoding {
            rb = rb.header("content-encoding", e);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let b: Value = r.json().await.unwrap_or(Value::Null);
        assert!((400..500).contains(&status), "{what}: {status} {b}");
        assert!(
            b["code"].is_string() && b["error"].is_string(),
            "{what}: {b}"
        );
    }
    // Wrong content type.
    let r = http.post(&url).body(r#"{"a":1}"#).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // Sentry endpoints: bad project id, no key, bad envelope.
    let r = http
        .post(format!("{}/api/abc/envelope/", t.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = http
        .post(format!("{}/api/1/envelope/", t.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let ingest = t.token("ingest").await;
    let key = ingest.token.clone().unwrap();
    for body in [
        "not an envelope",
        "{}\n{\"type\":\"event\",\"length\":500}\n{}",
        "{}\n{\"type\":\"event\"}\n[1]",
    ] {
        let r = http
            .post(format!("{}/api/1/envelope/?sentry_key={key}", t.url))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{body:?}: {status}");
    }

    let admin = t.admin().await;
    assert!(groups(&admin, "").await.is_empty(), "nothing half-written");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_required_mode_accepts_ingest_tokens_only() {
    let t = TestServer::start_with(|c| c.errors.errors_require_token = true).await;
    let body = report("n", "E", "m", "s");
    let r = t.anon().post_json("/api/errors", &body).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let bogus = Session::new(&t.url, Some("not-a-real-token".into()));
    assert_eq!(bogus.post_json("/api/errors", &body).await.status, 401);
    let read = t.token("read").await;
    assert_eq!(read.post_json("/api/errors", &body).await.status, 403);
    // A logged-in person is not a reporting machine.
    let admin = t.admin().await;
    assert_eq!(admin.post_json("/api/errors", &body).await.status, 403);
    let ingest = t.token("ingest").await;
    post_ok(&ingest, &body).await;
    // An ingest token reports but cannot read.
    assert_eq!(ingest.get("/api/errors").await.status, 403);
    assert_eq!(groups(&admin, "").await.len(), 1);
    t.stop().await;
}

/// A report from `addr` (these servers believe `X-Forwarded-For` from 127.0.0.1).
async fn report_from(t: &TestServer, addr: &str, body: &Value) -> crate::support::Resp {
    let s = t.anon();
    s.send(
        s.request(reqwest::Method::POST, "/api/errors")
            .header("x-forwarded-for", addr)
            .json(body),
    )
    .await
}

/// A caller that names a new `source` in every report still meets its address's limit (the
/// per-source limit alone let a rotating source write 483 MB in 10 s).
#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_apply_per_client_address_whatever_the_source() {
    let t = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.errors.errors_rate_per_address = 0.5;
        c.errors.errors_address_burst = 3;
    })
    .await;
    for i in 0..3 {
        let r = report_from(
            &t,
            "198.51.100.9",
            &report("n", "E", "m", &format!("src-{i}")),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = report_from(&t, "198.51.100.9", &report("n", "E", "m", "src-new")).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (429, Some("too_many_requests")),
        "{}",
        r.body
    );
    assert!(r.headers.get("retry-after").is_some());
    // Another address is not held back, and the refused report is not stored.
    let r = report_from(&t, "198.51.100.10", &report("n", "E", "m", "src-new")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // IPv6 counts per /64: a new address in the same network shares its bucket.
    for i in 0..3 {
        let r = report_from(
            &t,
            &format!("2001:db8:5:5::{i}"),
            &report("n", "E", "m", "v6"),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = report_from(&t, "2001:db8:5:5::77", &report("n", "E", "m", "v6")).await;
    assert_eq!(r.status, 429, "{}", r.body);
    let admin = t.admin().await;
    assert_eq!(groups(&admin, "?source=src-new").await[0]["count"], 1);
    assert_eq!(groups(&admin, "?source=v6").await[0]["count"], 3);
    t.stop().await;
}

/// Groups are not kept forever: the retention loop deletes groups not seen for the max age
/// and the least recently seen past the max count, and bounds the occurrences kept in all.
#[tokio::test(flavor = "multi_thread")]
async fn retention_bounds_groups_and_occurrences_by_age_and_count() {
    let t = TestServer::start_with(|c| {
        c.errors.errors_max_groups = 3;
        c.errors.errors_max_occurrences = 4;
        c.errors.errors_group_max_age_days = 10;
    })
    .await;
    let anon = t.anon();
    for i in 0..5 {
        post_ok(&anon, &report("n", &format!("Type{i}"), "boom", "s")).await;
        t.clock.advance(60);
    }
    // Seen again: the oldest group becomes the most recent one. (The retention loop also runs
    // in the background, at start and on its own timer: groups are compared by type, since a
    // background pass between these reports may have pruned and re-created one.)
    post_ok(&anon, &report("n", "Type0", "boom", "s")).await;
    architect::errors::retention_tick(&t.state().errors_state())
        .await
        .unwrap();
    let admin = t.admin().await;
    let mut left: Vec<String> = groups(&admin, "")
        .await
        .iter()
        .map(|g| g["error_type"].as_str().unwrap().to_string())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["Type0", "Type3", "Type4"],
        "the 3 most recently seen stay"
    );
    let occurrences: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM error_occurrences")
        .fetch_one(&t.state().db)
        .await
        .unwrap();
    assert!(occurrences <= 4, "{occurrences} occurrences kept");
    let log = admin.get("/api/activity?entity=error_group").await;
    assert!(log.body.contains("prune"), "{}", log.body);
    // Past the max age every group goes.
    t.clock.advance(11 * 24 * 3600);
    architect::errors::retention_tick(&t.state().errors_state())
        .await
        .unwrap();
    assert!(groups(&t.admin().await, "").await.is_empty());
    t.stop().await;
}

/// While the database passes its configured size, or the disk its free-space floor, reports
/// are refused with 507 and nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn the_disk_guard_refuses_reports_with_507() {
    let t = TestServer::start_with(|c| c.errors.errors_max_db_bytes = 1).await;
    let r = t
        .anon()
        .post_json("/api/errors", &report("n", "E", "m", "s"))
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (507, Some("insufficient_storage")),
        "{}",
        r.body
    );
    assert!(r.json["error"]
        .as_str()
        .unwrap()
        .contains("ARCHITECT_ERRORS_MAX_DB_BYTES"));
    let admin = t.admin().await;
    assert!(groups(&admin, "").await.is_empty());
    t.stop().await;

    let t = TestServer::start_with(|c| c.errors.errors_min_free_bytes = u64::MAX).await;
    let ingest = t.token("ingest").await;
    let key = ingest.token.clone().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/42/store/", t.url))
        .header("x-sentry-auth", format!("Sentry sentry_key={key}"))
        .header("content-type", "application/json")
        .body(r#"{"message": "m"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 507);
    t.stop().await;
}

/// Per-project ingest keys: a member creates one (shown once, with its DSN), the real Sentry
/// SDK reports with the DSN, the key reports for its own project only, rotating and revoking
/// stop the old key, and with ARCHITECT_ERRORS_REQUIRE_KEY anonymous reports are refused.
#[tokio::test(flavor = "multi_thread")]
async fn per_project_ingest_keys_report_rotate_revoke_and_can_be_required() {
    let t = TestServer::start_with(|c| c.errors.errors_require_key = true).await;
    let member = t.user("mia", "member").await;
    let p = member
        .post_json("/api/projects", &json!({"name": "shop"}))
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    let other = member
        .post_json("/api/projects", &json!({"name": "blog"}))
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    let viewer = t.user("vic", "viewer").await;
    let r = viewer
        .post_json(&format!("/api/projects/{p}/ingest-key"), &json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = member
        .post_json(&format!("/api/projects/{p}/ingest-key"), &json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.json["key"].as_str().unwrap().to_string();
    let host = t.url.trim_start_matches("http://");
    assert!(key.starts_with("aik_"), "{key}");
    let dsn = r.json["dsn"].as_str().unwrap().to_string();
    assert_eq!(dsn, format!("http://{key}@{host}/{p}"));
    assert_eq!(r.json["rotated"], false);
    // Listed without the key.
    let st = viewer.get(&format!("/api/projects/{p}/ingest-key")).await;
    assert_eq!(st.status, 200, "{}", st.body);
    assert!(st.json["key"]["prefix"].as_str().is_some() && !st.body.contains(&key));
    assert_eq!(viewer.get("/api/projects/999/ingest-key").await.status, 404);

    // Anonymous reports are refused in this mode; the key (as a bearer) is accepted.
    let body = report("n", "E", "m", "s");
    let r = t.anon().post_json("/api/errors", &body).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let keyed = Session::new(&t.url, Some(key.clone()));
    post_ok(&keyed, &body).await;
    let bogus = Session::new(&t.url, Some("aik_not-a-key".into()));
    assert_eq!(bogus.post_json("/api/errors", &body).await.status, 401);

    // The real Sentry SDK with the DSN.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("report.py");
    std::fs::write(&script, SENTRY_SCRIPT).unwrap();
    run_python(&script, &dsn).await;
    let admin = t.admin().await;
    let list = groups(&admin, "").await;
    assert!(
        list.iter().any(|g| g["error_type"] == "ValueError"),
        "{list:?}"
    );

    let store = |key: String, project: i64| {
        let url = format!("{}/api/{project}/store/", t.url);
        async move {
            reqwest::Client::new()
                .post(url)
                .header(
                    "x-sentry-auth",
                    format!("Sentry sentry_version=7, sentry_key={key}"),
                )
                .header("content-type", "application/json")
                .body(r#"{"message": "from the store endpoint"}"#)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(store(key.clone(), p).await, 200);
    // Another project's URL: refused.
    assert_eq!(store(key.clone(), other).await, 403);

    // Rotating: a new key works, the old one no longer does.
    let r = member
        .post_json(&format!("/api/projects/{p}/ingest-key"), &json!({}))
        .await;
    assert_eq!((r.status, r.json["rotated"].as_bool()), (201, Some(true)));
    let new_key = r.json["key"].as_str().unwrap().to_string();
    assert_eq!(store(key.clone(), p).await, 401);
    assert_eq!(store(new_key.clone(), p).await, 200);
    // Revoking: nothing reports with it any more.
    let r = member
        .delete(&format!("/api/projects/{p}/ingest-key"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(store(new_key.clone(), p).await, 401);
    assert_eq!(
        member
            .delete(&format!("/api/projects/{p}/ingest-key"))
            .await
            .status,
        404
    );
    let log = admin.get("/api/activity?entity=error_ingest_key").await;
    for action in ["\"create\"", "\"rotate\"", "\"revoke\""] {
        assert!(log.body.contains(action), "{action}: {}", log.body);
    }
    assert!(!log.body.contains(&key) && !log.body.contains(&new_key));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bugs_from_groups_link_both_ways_and_resolving_the_bug_resolves_the_group() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let p1 = admin
        .post_json("/api/projects", &json!({"name": "billing"}))
        .await;
    assert_eq!(p1.status, 201, "{}", p1.body);
    let p2 = admin
        .post_json("/api/projects", &json!({"name": "shop"}))
        .await;
    let anon = t.anon();
    let mut body = report("web-3", "ChargeFailed", "card 4242 declined", "billing");
    body["stack_trace"] = json!("at charge (billing.rs:10)");
    let id = post_ok(&anon, &body).await;
    let other = post_ok(&anon, &report("web-3", "Oops", "x", "unknown-app")).await;

    // Member can; viewer cannot.
    let viewer = t.user("vic", "viewer").await;
    assert_eq!(
        viewer
            .post_json(&format!("/api/errors/{id}/create-bug"), &json!({}))
            .await
            .status,
        403
    );

    // No body: the project is inferred from the source, the severity from the level.
    let r = admin
        .send(admin.request(
            reqwest::Method::POST,
            &format!("/api/errors/{id}/create-bug"),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let bug = &r.json["bug"];
    let bug_id = bug["id"].as_i64().unwrap();
    assert_eq!(bug["project_id"], p1.json["id"]);
    assert_eq!(bug["severity"], "high");
    // The title is the message as reported, not the grouping key with its placeholders.
    assert_eq!(bug["title"], "ChargeFailed: card 4242 declined");
    let desc = bug["description"].as_str().unwrap();
    assert!(desc.contains(&format!("/errors/{id}")), "{desc}");
    assert!(
        desc.contains("billing.rs:10") && desc.contains("web-3"),
        "{desc}"
    );
    assert_eq!(r.json["error"]["bug_id"], bug_id);
    let g = admin.get(&format!("/api/errors/{id}")).await;
    assert_eq!(g.json["bug_id"], bug_id);
    let linked = groups(&admin, &format!("?bug_id={bug_id}")).await;
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["id"], id);
    let page = admin.get(&format!("/bugs/{bug_id}")).await;
    assert!(
        page.body.contains(&format!("href=\"/errors/{id}\"")),
        "the bug page links back"
    );
    let again = admin
        .post_json(&format!("/api/errors/{id}/create-bug"), &json!({}))
        .await;
    assert_eq!(again.status, 409, "{}", again.body);

    // Not inferable with two projects and an unknown source; explicit project works.
    let r = admin
        .post_json(&format!("/api/errors/{other}/create-bug"), &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("project_id"))
    );
    let r = admin
        .post_json(
            &format!("/api/errors/{other}/create-bug"),
            &json!({"project_id": 999}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("project_id"))
    );
    let r = admin
        .post_json(
            &format!("/api/errors/{other}/create-bug"),
            &json!({"project_id": p2.json["id"], "severity": "low", "title": "Look at this"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["bug"]["title"], "Look at this");

    // Resolving the bug resolves its group, in the same change.
    let r = admin
        .put_json(
            &format!("/api/bugs/{bug_id}"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let g = admin.get(&format!("/api/errors/{id}")).await;
    assert_eq!(g.json["status"], "resolved");
    let other_g = admin.get(&format!("/api/errors/{other}")).await;
    assert_eq!(other_g.json["status"], "open", "other groups untouched");
    let log = admin
        .get(&format!("/api/activity?entity=error&entity_id={id}"))
        .await;
    assert!(
        log.body.contains("create_bug") && log.body.contains("via_bug"),
        "{}",
        log.body
    );
    t.stop().await;
}

const SENTRY_SCRIPT: &str = r#"
import sys, sentry_sdk
dsn = sys.argv[1]
sentry_sdk.init(dsn=dsn, server_name="py-node", default_integrations=False,
                _experiments={"transport_compression_algo": "gzip"})

def load_user(uid):
    raise ValueError(f"bad user {uid}")

for uid in (17, 99123):
    try:
        load_user(uid)
    except ValueError:
        sentry_sdk.capture_exception()
sentry_sdk.capture_message("disk 93% full", level="warning")
sentry_sdk.flush(timeout=10)
"#;

async fn run_python(script: &Path, dsn: &str) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("python3")
            .arg(script)
            .arg(dsn)
            .output(),
    )
    .await
    .expect("python finishes")
    .expect("python3 runs (sentry-sdk from tests/requirements.txt)");
    assert!(
        out.status.success(),
        "sentry script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_sentry_sdk_reports_through_envelopes() {
    let t = TestServer::start().await;
    let ingest = t.token("ingest").await;
    let key = ingest.token.clone().unwrap();
    let host = t.url.trim_start_matches("http://");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("report.py");
    std::fs::write(&script, SENTRY_SCRIPT).unwrap();

    run_python(&script, &format!("http://{key}@{host}/42")).await;
    let admin = t.admin().await;
    let list = groups(&admin, "").await;
    let value_error = list
        .iter()
        .find(|g| g["error_type"] == "ValueError")
        .unwrap_or_else(|| panic!("no ValueError group in {list:?}"));
    assert_eq!(value_error["count"], 2, "two ids, one group: {value_error}");
    assert_eq!(value_error["title"], "bad user <num>");
    assert_eq!(value_error["last_node"], "py-node");
    assert!(
        value_error["source"]
            .as_str()
            .unwrap()
            .ends_with("in load_user"),
        "culprit: {value_error}"
    );
    let d = admin
        .get(&format!("/api/errors/{}", value_error["id"]))
        .await;
    let st = d.json["stack_trace"].as_str().unwrap();
    assert!(
        st.contains("in load_user") && st.ends_with("ValueError: bad user 99123"),
        "{st}"
    );
    assert_eq!(d.json["occurrences"][0]["context"]["sentry_project"], 42);
    let msg = list
        .iter()
        .find(|g| g["message"] == "disk 93% full")
        .expect("message event");
    assert_eq!(msg["level"], "warning");
    assert_eq!(list.len(), 2);

    // A wrong key stores nothing (the SDK drops the event after the 401).
    run_python(&script, &format!("http://wrong-key@{host}/42")).await;
    assert_eq!(groups(&admin, "?sort=count").await[0]["count"], 2);

    // The legacy store endpoint, key in the X-Sentry-Auth header.
    let r = reqwest::Client::new()
        .post(format!("{}/api/42/store/", t.url))
        .header("x-sentry-auth", format!("Sentry sentry_version=7, sentry_key={key}"))
        .header("content-type", "application/json")
        .body(r#"{"event_id": "abc", "exception": {"values": [{"type": "ValueError", "value": "bad user 5", "stacktrace": {"frames": [{"module": "__main__", "function": "load_user", "in_app": true}]}}]}, "server_name": "legacy"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let g = &groups(&admin, "?node=legacy").await[0];
    assert_eq!(g["error_type"], "ValueError");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_errors_panel_lists_groups_with_sparklines_and_acts_without_javascript() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let empty = admin.get("/errors").await;
    assert_eq!(empty.status, 200);
    assert!(
        empty.body.contains("curl") && empty.body.contains("/api/errors"),
        "empty state shows how to report"
    );
    assert!(empty.body.contains("DSN"));
    assert_eq!(t.anon().get("/errors").await.status, 303);

    let anon = t.anon();
    let mut body = report(
        "edge-7",
        "PanicError",
        "index 5 out of range <script>",
        "ui",
    );
    body["stack_trace"] = json!("frame one\nframe two");
    let id = post_ok(&anon, &body).await;
    let page = admin.get("/errors").await;
    assert!(page.body.contains("PanicError") && page.body.contains("edge-7"));
    assert!(page.body.contains("<svg") && page.body.contains("err-spark"));
    assert!(!page.body.contains("<script>"), "escaped");
    let detail = admin.get(&format!("/errors/{id}")).await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains("frame two"));

    // Forms need the CSRF field.
    let mut no_csrf = admin.post_form(&format!("/errors/{id}/resolve"), &[]).await;
    assert_eq!(no_csrf.status, 303, "with csrf: {}", no_csrf.body);
    let g = admin.get(&format!("/api/errors/{id}")).await;
    assert_eq!(g.json["status"], "resolved");
    no_csrf = admin
        .send(
            admin
                .http
                .post(format!("{}/errors/{id}/resolve", t.url))
                .form(&[("x", "y")]),
        )
        .await;
    assert_eq!(no_csrf.status, 403);

    admin
        .post_json("/api/projects", &json!({"name": "ui"}))
        .await;
    let r = admin
        .post_form(&format!("/errors/{id}/create-bug"), &[("project_id", "")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let g = admin.get(&format!("/api/errors/{id}")).await;
    assert!(g.json["bug_id"].is_i64(), "{}", g.body);
    let resolved = admin.get("/errors?status=resolved").await;
    assert!(resolved.body.contains("PanicError"));
    // Pages keep the filters.
    for ty in ["A1", "A2"] {
        post_ok(&anon, &report("n", ty, "x", "ui")).await;
    }
    let first = admin.get("/errors?source=ui&limit=2").await;
    assert!(
        first
            .body
            .contains("/errors?source=ui&#38;offset=2&#38;limit=2"),
        "{}",
        first.body
    );
    let second = admin.get("/errors?source=ui&limit=2&offset=2").await;
    assert!(second.body.contains("PanicError") && second.body.contains("Previous"));
    t.stop().await;
}

// ---- kill -9 ----

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_events_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let mut serve = crate::support::serve_proc::ServeProc::start(
        &tmp.path().join("data"),
        &[("ARCHITECT_ERRORS_RATE_PER_SOURCE", "0".into())],
    )
    .await;
    let url = serve.url.clone();

    // Clients keep reporting while the server is killed; only 201s count as acknowledged.
    let acked = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..16 {
        let acked = acked.clone();
        let url = url.clone();
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0.. {
                let body = report(
                    &format!("n{c}"),
                    "Crash",
                    &format!("crash {i} of client {c}"),
                    &format!("src-{}", i % 5),
                );
                match http
                    .post(format!("{url}/api/errors"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().as_u16() == 201 => {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
        }));
    }
    let start = Instant::now();
    while acked.load(Ordering::SeqCst) < 500 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "reports too slow"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    serve.kill9().await;
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.load(Ordering::SeqCst);

    serve.restart().await;
    let admin = serve.admin().await;
    let list = groups(&admin, "?limit=1000").await;
    let stored: i64 = list.iter().map(|g| g["count"].as_i64().unwrap()).sum();
    assert_eq!(list.len(), 5, "{list:?}");
    assert!(
        stored as usize >= acked,
        "{acked} acknowledged, {stored} stored after kill -9"
    );
    // At most one unanswered report per client can have been stored on top.
    assert!(
        stored as usize <= acked + 16,
        "{acked} acknowledged, {stored} stored"
    );
}
