//! /health, /metrics, request ids, security headers and persistence across restarts.

use crate::support::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_database() {
    let t = TestServer::start().await;
    let r = t.anon().get("/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.json["status"].as_str(), r.json["database"].as_str()),
        (Some("healthy"), Some("ok"))
    );
    assert!(r.json["version"].is_string());
    // With the database gone, /health says so with 503 and the API answers 503, not 500.
    let s = t.admin().await;
    t.state().db.close().await;
    let r = t.anon().get("/health").await;
    assert_eq!(
        (r.status, r.json["database"].as_str()),
        (503, Some("unreachable"))
    );
    let r = s.get("/api/projects").await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (503, Some("unavailable")),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_in_prometheus_format_need_read_access() {
    let t = TestServer::start().await;
    let tok = t.token("read").await;
    tok.get("/api/projects").await;
    tok.get("/api/projects/12345").await;
    assert_eq!(t.anon().get("/metrics").await.status, 401);
    assert_eq!(t.token("ingest").await.get("/metrics").await.status, 403);
    let r = tok.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(r.body.contains("http_requests_total{"), "{}", r.body);
    assert!(
        r.body.contains("route=\"/api/projects/{id}\""),
        "routes are labelled by pattern, not raw path"
    );
    assert!(r.body.contains("status=\"404\""));
    assert!(r.body.contains("http_request_duration_seconds_bucket"));
    assert!(r.body.contains("db_pool_connections"));
    let open = TestServer::start_with(|c| c.metrics_public = true).await;
    assert_eq!(open.anon().get("/metrics").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_and_security_headers() {
    let t = TestServer::start().await;
    let a = t.anon();
    let r = a.get("/health").await;
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let r = a
        .send(
            a.request(reqwest::Method::GET, "/health")
                .header("x-request-id", "trace-me-42"),
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "trace-me-42");
    let r = a.get("/login").await;
    assert!(r.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_and_sessions_survive_a_restart() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let p = s
        .post_json("/api/projects", &json!({"name": "durable", "tags": ["x"]}))
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    let f = s
        .post_json("/api/features", &json!({"project_id": p, "name": "f"}))
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    s.put_json(
        &format!("/api/features/{f}"),
        &json!({"status": "spec", "comment": "c"}),
    )
    .await;
    let tok = t.token("read").await;
    let secret = tok.token.clone();
    let t = t.restart().await;
    let s = t.admin().await;
    let r = s.get(&format!("/api/projects/{p}")).await;
    assert_eq!((r.status, r.json["name"].as_str()), (200, Some("durable")));
    let d = s.get(&format!("/api/features/{f}")).await;
    assert_eq!(d.json["status"], "spec");
    assert_eq!(d.json["history"].as_array().unwrap().len(), 2);
    // API tokens keep working: the secret key persisted in the data dir.
    let tok = crate::support::Session::new(&t.url, secret);
    assert_eq!(tok.get("/api/projects").await.status, 200);
    assert!(t.data_dir.join("secret.key").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.data_dir.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The migration ledger did not re-run.
    let r = s.get("/api/activity?entity=project").await;
    assert_eq!(r.json.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_is_configured_for_safety() {
    if !crate::support::sqlite_only("SQLite's pragmas (WAL, foreign keys, busy timeout)") {
        return;
    }
    let t = TestServer::start().await;
    let db = &t.state().db;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(db)
        .await
        .unwrap();
    assert!(busy >= 1000);
}

/// A loop whose tick panics keeps running after a backoff; /health names it meanwhile.
#[tokio::test]
async fn health_names_a_loop_that_is_restarting_after_a_panic() {
    let t = TestServer::start().await;
    let anon = t.anon();
    let r = anon.get("/health").await;
    assert_eq!(r.json["status"], "healthy", "{}", r.body);
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(architect::background::run_every(
        t.state().loops.clone(),
        "test_breaks",
        std::time::Duration::from_millis(50),
        rx,
        || async { panic!("the tick broke") },
    ));
    let r = crate::support::until("/health to name the loop", || {
        let anon = &anon;
        async move {
            let r = anon.get("/health").await;
            (r.json["status"] == "degraded").then_some(r)
        }
    })
    .await;
    assert_eq!(r.status, 200, "requests are still served");
    assert_eq!(
        r.json["loops_down"],
        serde_json::json!(["test_breaks"]),
        "{}",
        r.body
    );
    assert_eq!(
        r.json["loops"]["test_breaks"]["last_panic"],
        "the tick broke"
    );
    assert!(r.json["loops"]["test_breaks"]["panics"].as_u64() >= Some(1));
    t.stop().await;
}
