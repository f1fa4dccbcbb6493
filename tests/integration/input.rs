//! Bad input never yields a 5xx, always names the problem, and writes nothing.

use crate::support::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_clear_4xx_and_write_nothing() {
    let t = TestServer::start_with(|c| c.max_body_bytes = 256 * 1024).await;
    let s = t.admin().await;
    let p = s
        .post_json("/api/projects", &json!({"name": "p"}))
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    let raw = |body: &'static str| {
        s.request(reqwest::Method::POST, "/api/projects")
            .header("content-type", "application/json")
            .body(body)
    };
    let r = s.send(raw("{\"name\": ")).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (400, Some("invalid_json")),
        "{}",
        r.body
    );
    // One JSON value and then more: refused whole, not half-read (it used to create "x").
    let r = s.send(raw("{\"name\":\"x\"}}")).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (400, Some("invalid_json")),
        "{}",
        r.body
    );
    assert!(
        r.json["error"]
            .as_str()
            .unwrap()
            .contains("trailing characters"),
        "{}",
        r.body
    );
    let r = s.send(raw("{\"name\":\"y\"} {\"name\":\"z\"}")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = s.send(raw("[1,2]")).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (422, Some("invalid_field")),
        "{}",
        r.body
    );
    let cases = [
        (json!({"name": 42}), "name"),
        (json!({}), "name"),
        (json!({"name": "x", "status": "bogus"}), "status"),
        (json!({"name": "x", "colour": "red"}), "colour"),
        (json!({"name": "x", "tags": "not-a-list"}), "tags"),
        (json!({"name": "x".repeat(100_000)}), "name"),
        (
            json!({"name": "x", "description": "d".repeat(30_000)}),
            "description",
        ),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x", "tags": ["t".repeat(51)]}), "tags"),
    ];
    for (body, field) in cases {
        let r = s.post_json("/api/projects", &body).await;
        assert_eq!(r.status, 422, "{field}: {}", r.body);
        assert_eq!(r.json["field"], field, "{}", r.body);
        assert!(r.json["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Wrong content type.
    let r = s
        .send(
            s.request(reqwest::Method::POST, "/api/projects")
                .body("name=x"),
        )
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    // Too large (the limit here is 256 KiB).
    let big = json!({"name": "x", "description": "d".repeat(300 * 1024)});
    let r = s.post_json("/api/projects", &big).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (413, Some("payload_too_large")),
        "{}",
        r.body
    );
    // Features and bugs: wrong types, unknown enum values, missing fields.
    for (path, body, field) in [
        (
            "/api/features",
            json!({"project_id": "one", "name": "f"}),
            "project_id",
        ),
        ("/api/features", json!({"project_id": p}), "name"),
        (
            "/api/features",
            json!({"project_id": p, "name": "f", "priority": 99}),
            "priority",
        ),
        (
            "/api/bugs",
            json!({"project_id": p, "title": "t", "severity": "meh"}),
            "severity",
        ),
        (
            "/api/milestones",
            json!({"project_id": p, "name": "m", "target_date": "soon"}),
            "target_date",
        ),
        (
            "/api/devops-tasks",
            json!({"title": "t", "category": "chores"}),
            "category",
        ),
    ] {
        let r = s.post_json(path, &body).await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (422, Some(field)),
            "{path}: {}",
            r.body
        );
    }
    // Nothing was half-written: one project, no features, bugs or milestones, and the
    // activity log holds only the one successful create (besides, on PostgreSQL, the
    // replica's own leadership row, written whenever the election happens to finish).
    let stats = s.get("/api/stats").await.json;
    assert_eq!(stats["projects"]["total"], 1);
    assert_eq!(stats["features"], json!({}));
    assert_eq!(stats["bugs"], json!({}));
    assert_eq!(stats["milestones"], json!({}));
    let log = s.get("/api/activity").await.json;
    let changes: Vec<&serde_json::Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity_type"] != "replica")
        .collect();
    assert_eq!(changes.len(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_paths_methods_and_queries() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let r = s.get("/api/projects/abc").await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (400, Some("invalid_request")),
        "{}",
        r.body
    );
    let r = s.get("/api/projects/99999999999999999999").await;
    assert_eq!(r.status, 400);
    let r = s.get("/api/no-such-thing").await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = s
        .send(s.request(reqwest::Method::PATCH, "/api/projects"))
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{}",
        r.body
    );
    let r = s.get("/api/features?project_id=abc").await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("project_id")),
        "{}",
        r.body
    );
    // Empty filter values mean "any" (what HTML filter forms send).
    assert_eq!(s.get("/api/features?status=&project_id=").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_rejects_malformed_input_cleanly() {
    let t = TestServer::start().await;
    let a = t.anon();
    let r = a
        .send(
            a.request(reqwest::Method::POST, "/login")
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = a.post_json("/login", &json!({"username": "x"})).await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("password"))
    );
    let r = a
        .post_json(
            "/login",
            &json!({"username": "u".repeat(100_000), "password": "p"}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
}
