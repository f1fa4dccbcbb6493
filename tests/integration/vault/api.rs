//! The vault's JSON API: create, list, view (counted, audited), update with versions, restore,
//! soft delete, undelete, purge, the audit trail, role rules, step-up and bad input.

use super::{code, create, value_of};
use crate::support::TestServer;
use serde_json::{json, Value};

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_crud_versions_restore_delete_and_purge() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let r = s
        .post_json(
            "/api/secrets",
            &json!({"name": " GITHUB_TOKEN ", "value": "ghp_first", "category": "token", "description": "CI pushes"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json["id"].as_i64().unwrap();
    assert_eq!(r.json["name"], "GITHUB_TOKEN");
    assert_eq!(r.json["category"], "token");
    assert_eq!(r.json["current_version"], 1);
    assert_eq!(r.json["access_count"], 0);
    assert!(r.json.get("value").is_none() && !r.body.contains("ghp_first"));

    // The list never carries a value, not even a fragment.
    let list = s.get("/api/secrets").await;
    assert_eq!(list.status, 200);
    assert_eq!(names(&list.json), vec!["GITHUB_TOKEN"]);
    assert!(!list.body.contains("ghp_") && list.json[0].get("value").is_none());

    // A view returns the value, counts it and is not cacheable.
    let v = s.get(&format!("/api/secrets/{id}")).await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.json["value"], "ghp_first");
    assert_eq!(v.json["version"], 1);
    assert_eq!(v.json["access_count"], 1);
    assert!(v.json["last_accessed"].is_string());
    assert_eq!(v.headers["cache-control"], "no-store");
    assert_eq!(s.get("/api/secrets").await.json[0]["access_count"], 1);

    // Duplicate names (case-insensitive) are 409.
    let dup = s
        .post_json(
            "/api/secrets",
            &json!({"name": "github_token", "value": "x"}),
        )
        .await;
    assert_eq!(
        (dup.status, code(&dup.json)),
        (409, "conflict"),
        "{}",
        dup.body
    );

    // Metadata changes keep the version; a value makes a new one.
    let r = s
        .put_json(
            &format!("/api/secrets/{id}"),
            &json!({"description": "rotated monthly"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["current_version"].as_i64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    let r = s
        .put_json(
            &format!("/api/secrets/{id}"),
            &json!({"value": "ghp_second"}),
        )
        .await;
    assert_eq!(r.json["current_version"], 2, "{}", r.body);
    assert!(!r.body.contains("ghp_second"));
    assert_eq!(value_of(&s, id).await, "ghp_second");

    // Versions: listed without values, each readable, restorable as a new version.
    let vs = s.get(&format!("/api/secrets/{id}/versions")).await;
    assert_eq!(vs.status, 200);
    let nums: Vec<i64> = vs
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(nums, vec![2, 1]);
    assert_eq!(vs.json[0]["current"], true);
    assert!(!vs.body.contains("ghp_"));
    let old = s.get(&format!("/api/secrets/{id}/versions/1")).await;
    assert_eq!(
        (old.status, old.json["value"].as_str()),
        (200, Some("ghp_first"))
    );
    assert_eq!(old.json["version"], 1);
    let r = s
        .post_json(&format!("/api/secrets/{id}/versions/1/restore"), &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json["current_version"].as_i64()),
        (200, Some(3)),
        "{}",
        r.body
    );
    assert_eq!(value_of(&s, id).await, "ghp_first");
    let vs = s.get(&format!("/api/secrets/{id}/versions")).await;
    assert_eq!(vs.json[0]["restored_from"], 1);
    let r = s
        .post_json(&format!("/api/secrets/{id}/versions/3/restore"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "restoring the current version: {}", r.body);
    let r = s.get(&format!("/api/secrets/{id}/versions/9")).await;
    assert_eq!(r.status, 404);

    // Soft delete: hidden, unreadable, name kept; undelete brings everything back.
    let r = s.delete(&format!("/api/secrets/{id}")).await;
    assert_eq!(
        (r.status, r.json["deleted"].as_bool()),
        (200, Some(true)),
        "{}",
        r.body
    );
    assert!(names(&s.get("/api/secrets").await.json).is_empty());
    assert_eq!(
        names(&s.get("/api/secrets?include_deleted=true").await.json),
        vec!["GITHUB_TOKEN"]
    );
    let r = s.get(&format!("/api/secrets/{id}")).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.json["error"].as_str().unwrap().contains("deleted"),
        "{}",
        r.body
    );
    let r = s
        .post_json(
            "/api/secrets",
            &json!({"name": "GITHUB_TOKEN", "value": "x"}),
        )
        .await;
    assert_eq!(r.status, 409, "a deleted secret keeps its name: {}", r.body);
    let r = s
        .post_json(&format!("/api/secrets/{id}/purge"), &json!({}))
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .post_json(&format!("/api/secrets/{id}/undelete"), &json!({}))
        .await;
    assert_eq!(r.status, 404, "purged for good: {}", r.body);

    // Purge needs a delete first; then the name is free and the audit trail stays.
    let id2 = create(&s, "DB_PASSWORD", "pw-1").await;
    let r = s
        .post_json(&format!("/api/secrets/{id2}/purge"), &json!({}))
        .await;
    assert_eq!((r.status, code(&r.json)), (409, "conflict"), "{}", r.body);
    assert_eq!(s.delete(&format!("/api/secrets/{id2}")).await.status, 200);
    let r = s
        .post_json(&format!("/api/secrets/{id2}/undelete"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(value_of(&s, id2).await, "pw-1");
    let r = s
        .post_json(&format!("/api/secrets/{id2}/undelete"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "not deleted: {}", r.body);
    assert_eq!(s.delete(&format!("/api/secrets/{id2}")).await.status, 200);
    assert_eq!(
        s.delete(&format!("/api/secrets/{id2}")).await.status,
        200,
        "idempotent"
    );
    assert_eq!(
        s.post_json(&format!("/api/secrets/{id2}/purge"), &json!({}))
            .await
            .status,
        200
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secret_versions WHERE secret_id = $1")
        .bind(id2)
        .fetch_one(&t.state().db)
        .await
        .unwrap();
    assert_eq!(n, 0, "purge destroys every version");
    assert_eq!(
        s.get(&format!("/api/secrets/{id2}/versions")).await.status,
        404
    );
    let again = create(&s, "DB_PASSWORD", "pw-2").await;
    assert_ne!(again, id2);

    let audit = s.get(&format!("/api/secrets/{id2}/audit")).await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let actions: Vec<&str> = audit
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["purge", "delete", "view", "undelete", "delete", "create"]
    );
    assert!(audit
        .json
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["actor"] == "architect"));
    assert_eq!(audit.json[2]["client_addr"], "127.0.0.1");
    assert_eq!(audit.json[2]["version"], 1);
    assert!(!audit.body.contains("pw-1"));

    // The activity log has every change, by name, never a value.
    let act = s.get("/api/activity?entity=secret").await;
    assert_eq!(act.status, 200);
    let acts: Vec<&str> = act
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for a in [
        "create",
        "update",
        "restore_version",
        "delete",
        "undelete",
        "purge",
    ] {
        assert!(acts.contains(&a), "{a} in {acts:?}");
    }
    assert!(
        !acts.contains(&"view"),
        "views go to the audit trail, not the activity log"
    );
    assert!(!act.body.contains("ghp_") && !act.body.contains("pw-"));
}

#[tokio::test(flavor = "multi_thread")]
async fn list_filters_by_category_text_and_name() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    for (name, cat, desc) in [
        ("OPENAI_KEY", "api_key", "llm"),
        ("ANTHROPIC_API_KEY", "api_key", "llm gateway"),
        ("DEPLOY_SSH", "ssh_key", "prod hosts"),
    ] {
        let r = s
            .post_json(
                "/api/secrets",
                &json!({"name": name, "value": "v", "category": cat, "description": desc}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = s.get("/api/secrets").await;
    assert_eq!(
        names(&r.json),
        vec!["ANTHROPIC_API_KEY", "DEPLOY_SSH", "OPENAI_KEY"]
    );
    let r = s.get("/api/secrets?category=api_key").await;
    assert_eq!(names(&r.json), vec!["ANTHROPIC_API_KEY", "OPENAI_KEY"]);
    let r = s.get("/api/secrets?q=gateway").await;
    assert_eq!(names(&r.json), vec!["ANTHROPIC_API_KEY"]);
    let r = s.get("/api/secrets?name=deploy_ssh").await;
    assert_eq!(names(&r.json), vec!["DEPLOY_SSH"]);
    let r = s.get("/api/secrets?limit=1&offset=1").await;
    assert_eq!(names(&r.json), vec!["DEPLOY_SSH"]);
    let r = s.get("/api/secrets?q=100%25_").await;
    assert!(names(&r.json).is_empty(), "LIKE wildcards are literal");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_4xx_never_a_5xx() {
    let t = TestServer::start_with(|c| c.max_body_bytes = 256 * 1024).await;
    let s = t.admin().await;
    let id = create(&s, "GOOD", "v").await;
    let cases = [
        (json!({"value": "v"}), "name"),
        (json!({"name": "X"}), "value"),
        (json!({"name": "X", "value": ""}), "value"),
        (json!({"name": "X", "value": 5}), "value"),
        (
            json!({"name": "X", "value": "v", "category": "crypto_wallet"}),
            "category",
        ),
        (json!({"name": "has space", "value": "v"}), "name"),
        (json!({"name": "9LIVES", "value": "v"}), "name"),
        (json!({"name": "X".repeat(129), "value": "v"}), "name"),
        (json!({"name": "", "value": "v"}), "name"),
        (
            json!({"name": "X", "value": "v", "description": "d".repeat(1001)}),
            "description",
        ),
        (
            json!({"name": "X", "value": "v".repeat(64 * 1024 + 1)}),
            "value",
        ),
        (json!({"name": "X", "value": "a\u{0}b"}), "value"),
        (
            json!({"name": "X", "value": "v", "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let r = s.post_json("/api/secrets", &body).await;
        assert_eq!(r.status, 422, "{field}: {}", r.body);
        assert_eq!(r.json["field"], field, "{}", r.body);
        assert!(r.json["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // The category error lists the valid ones.
    let r = s
        .post_json(
            "/api/secrets",
            &json!({"name": "X", "value": "v", "category": "nope"}),
        )
        .await;
    assert!(
        r.body.contains("api_key") && r.body.contains("ssh_key"),
        "{}",
        r.body
    );
    let raw = |method: reqwest::Method, path: &str, body: &'static str| {
        s.request(method, path)
            .header("content-type", "application/json")
            .body(body)
    };
    let r = s
        .send(raw(reqwest::Method::POST, "/api/secrets", "{\"name\": "))
        .await;
    assert_eq!((r.status, code(&r.json)), (400, "invalid_json"));
    let r = s
        .send(raw(
            reqwest::Method::PUT,
            &format!("/api/secrets/{id}"),
            "[]",
        ))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = s
        .send(
            s.request(reqwest::Method::POST, "/api/secrets")
                .body("name=x&value=y"),
        )
        .await;
    assert_eq!(r.status, 415);
    for (path, status) in [
        ("/api/secrets/abc", 400),
        ("/api/secrets/999", 404),
        ("/api/secrets/-1", 404),
        ("/api/secrets/99999999999999999999", 400),
        (&*format!("/api/secrets/{id}/versions/x"), 400),
        (&*format!("/api/secrets/{id}/versions/0"), 404),
        ("/api/secrets/999/versions", 404),
        ("/api/secrets/999/audit", 404),
        ("/api/secrets?category=bogus", 422),
        ("/api/secrets?include_deleted=maybe", 422),
        ("/api/secrets?limit=0", 422),
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.json["error"].is_string(), "{path}: {}", r.body);
    }
    for (path, body) in [
        (format!("/api/secrets/{id}"), json!({"name": "bad name"})),
        (format!("/api/secrets/{id}"), json!({"value": ""})),
        (format!("/api/secrets/{id}"), json!({"category": 3})),
        (format!("/api/secrets/{id}"), json!({"versions": 3})),
    ] {
        let r = s.put_json(&path, &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
    }
    assert_eq!(
        s.put_json("/api/secrets/999", &json!({"value": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(s.delete("/api/secrets/999").await.status, 404);
    assert_eq!(
        s.post_json("/api/secrets/999/purge", &json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        s.post_json("/api/secrets/999/versions/1/restore", &json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        s.post_json(&format!("/api/secrets/{id}/versions/5/restore"), &json!({}))
            .await
            .status,
        404
    );
    let r = s
        .post_json("/api/vault/step-up", &json!({"pass": "x"}))
        .await;
    assert_eq!(r.status, 422);
    // Nothing above wrote anything.
    assert_eq!(names(&s.get("/api/secrets").await.json), vec!["GOOD"]);
    assert_eq!(value_of(&s, id).await, "v");
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_see_names_members_read_values_admins_delete() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let id = create(&admin, "SHARED_KEY", "shared-value").await;
    let viewer = t.user("vera", "viewer").await;
    let member = t.user("mo", "member").await;

    // Viewers: names and metadata only.
    let r = viewer.get("/api/secrets").await;
    assert_eq!(
        (r.status, names(&r.json)),
        (200, vec!["SHARED_KEY".to_string()])
    );
    assert_eq!(
        viewer
            .get(&format!("/api/secrets/{id}/versions"))
            .await
            .status,
        200
    );
    for path in [
        format!("/api/secrets/{id}"),
        format!("/api/secrets/{id}/versions/1"),
        format!("/api/secrets/{id}/audit"),
    ] {
        let r = viewer.get(&path).await;
        assert_eq!(
            (r.status, code(&r.json)),
            (403, "forbidden"),
            "{path}: {}",
            r.body
        );
        assert!(!r.body.contains("shared-value"));
    }
    let r = viewer
        .post_json("/api/secrets", &json!({"name": "V", "value": "v"}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        viewer
            .put_json(&format!("/api/secrets/{id}"), &json!({"value": "x"}))
            .await
            .status,
        403
    );

    // Members: read and write values, restore; not delete, purge or rotate.
    assert_eq!(value_of(&member, id).await, "shared-value");
    let mine = create(&member, "MEMBER_KEY", "m1").await;
    let r = member
        .put_json(&format!("/api/secrets/{mine}"), &json!({"value": "m2"}))
        .await;
    assert_eq!(r.status, 200);
    let r = member
        .post_json(
            &format!("/api/secrets/{mine}/versions/1/restore"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        member
            .get(&format!("/api/secrets/{mine}/audit"))
            .await
            .status,
        200
    );
    for (method, path) in [
        (reqwest::Method::DELETE, format!("/api/secrets/{mine}")),
        (reqwest::Method::POST, format!("/api/secrets/{mine}/purge")),
        (
            reqwest::Method::POST,
            format!("/api/secrets/{mine}/undelete"),
        ),
        (reqwest::Method::POST, "/api/vault/rotate-key".to_string()),
    ] {
        let r = member.send(member.request(method, &path)).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }

    // Tokens: the scope and the owner's role both apply.
    let read_token = t.token("read").await;
    assert_eq!(read_token.get("/api/secrets").await.status, 200);
    assert_eq!(
        read_token.get(&format!("/api/secrets/{id}")).await.status,
        403
    );
    let ingest = t.token("ingest").await;
    assert_eq!(ingest.get("/api/secrets").await.status, 403);
    let admin_token = t.token("admin").await;
    assert_eq!(value_of(&admin_token, id).await, "shared-value");
    assert_eq!(
        admin.delete(&format!("/api/secrets/{mine}")).await.status,
        200
    );
    assert_eq!(
        admin_token
            .post_json(&format!("/api/secrets/{mine}/purge"), &json!({}))
            .await
            .status,
        200
    );
    assert_eq!(t.anon().get("/api/secrets").await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_sessions_need_a_recent_password_to_read_values() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let id = create(&s, "STEP", "step-value").await;
    assert_eq!(value_of(&s, id).await, "step-value");
    t.clock.advance(5 * 60 + 1);
    let r = s.get(&format!("/api/secrets/{id}")).await;
    assert_eq!(
        (r.status, code(&r.json)),
        (403, "step_up_required"),
        "{}",
        r.body
    );
    assert!(r.json["error"]
        .as_str()
        .unwrap()
        .contains("/api/vault/step-up"));
    // Listing and changing still work; only reading values needs the password.
    assert_eq!(s.get("/api/secrets").await.status, 200);
    assert_eq!(
        s.put_json(&format!("/api/secrets/{id}"), &json!({"description": "d"}))
            .await
            .status,
        200
    );
    let r = s
        .post_json("/api/vault/step-up", &json!({"password": "wrong"}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("password")),
        "{}",
        r.body
    );
    let r = s
        .post_json(
            "/api/vault/step-up",
            &json!({"password": crate::support::ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(value_of(&s, id).await, "step-value");
    // The CSRF rule applies to the step-up too.
    let mut no_csrf = crate::support::Session::new(&t.url, None);
    no_csrf.http = s.http.clone();
    let r = no_csrf
        .post_json("/api/vault/step-up", &json!({"password": "x"}))
        .await;
    assert_eq!(r.status, 403);
    // Tokens have no password to repeat.
    let tok = t.token("admin").await;
    t.clock.advance(3600);
    assert_eq!(value_of(&tok, id).await, "step-value");
    let r = tok
        .post_json("/api/vault/step-up", &json!({"password": "x"}))
        .await;
    assert_eq!(r.status, 403);
}
