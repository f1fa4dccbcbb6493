//! The list cache (`http::cache`, issue 15 item 4) over HTTP: a change through every write
//! path (JSON API, dashboard form, the real CLI, another domain filing a bug) is in the very
//! next list; principals with different rights get entries of their own and a principal who
//! may not read never gets a cached answer; filters and pagination are part of the key;
//! `If-None-Match` gets a 304 until the list changes.
//!
//! Each check first shows the list was answered from the cache (the cache's hit counter
//! moved), so a change that failed to empty it would show as a stale list. They run on both
//! backends; across two replicas on one PostgreSQL database:
//! `postgres::on_postgres_a_change_through_another_replica_is_in_the_next_list`.

use crate::cli::{client, token_of};
use crate::support::{Session, TestServer};
use architect::http::cache::CacheStats;
use serde_json::{json, Value};

fn stats(t: &TestServer) -> CacheStats {
    t.state().list_cache.stats()
}

/// The names in a list answer.
async fn names(s: &Session, path: &str) -> Vec<String> {
    let r = s.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json
        .as_array()
        .unwrap_or_else(|| panic!("{path}: an array: {}", r.body))
        .iter()
        .map(|p| {
            p["name"]
                .as_str()
                .or(p["title"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Reads `path` twice and checks the second read was a cache hit; returns what it showed.
async fn warm(t: &TestServer, s: &Session, path: &str) -> Vec<String> {
    let first = names(s, path).await;
    let hits = stats(t).hits;
    let second = names(s, path).await;
    assert_eq!(first, second);
    assert_eq!(
        stats(t).hits,
        hits + 1,
        "{path} was not answered from the cache"
    );
    second
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_through_every_write_path_is_in_the_next_list() {
    let t = TestServer::start().await;
    assert!(
        t.state().list_cache.enabled(),
        "on by default, on both backends"
    );
    let admin = t.admin().await;
    let writer = t.token("admin").await;
    let reader = t.token("read").await;

    // JSON API.
    assert!(warm(&t, &reader, "/api/projects").await.is_empty());
    let r = writer
        .post_json("/api/projects", &json!({"name": "alpha"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let alpha = r.json["id"].as_i64().unwrap();
    assert_eq!(warm(&t, &reader, "/api/projects").await, ["alpha"]);
    let r = writer
        .put_json(
            &format!("/api/projects/{alpha}"),
            &json!({"description": "first"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let listed = reader.get("/api/projects").await;
    assert_eq!(listed.json[0]["description"], "first");

    // A dashboard form.
    warm(&t, &reader, "/api/projects").await;
    let r = admin
        .post_form("/projects", &[("name", "beta"), ("status", "active")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(warm(&t, &reader, "/api/projects").await, ["alpha", "beta"]);
    let r = admin
        .post_form(&format!("/projects/{alpha}/archive"), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(warm(&t, &reader, "/api/projects").await, ["beta"]);

    // The real CLI (its own process, over HTTP).
    let token = token_of(&writer);
    client(&t.url, &token, "projects", &["add", "gamma"])
        .await
        .assert_ok();
    assert_eq!(warm(&t, &reader, "/api/projects").await, ["beta", "gamma"]);
    client(&t.url, &token, "projects", &["archive", "beta"])
        .await
        .assert_ok();
    assert_eq!(names(&reader, "/api/projects").await, ["gamma"]);

    // Another domain writing tracked work: a bug filed from an error group.
    let gamma = reader.get("/api/projects").await.json[0]["id"].clone();
    assert!(warm(&t, &reader, "/api/bugs").await.is_empty());
    let g = t
        .anon()
        .post_json(
            "/api/errors",
            &json!({"node_id": "web-1", "error_type": "Boom", "message": "it broke", "source": "gamma"}),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let group = g.json["group_id"].as_i64().unwrap();
    let r = writer
        .post_json(
            &format!("/api/errors/{group}/create-bug"),
            &json!({"project_id": gamma}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(warm(&t, &reader, "/api/bugs").await, ["Boom: it broke"]);

    // A feature's status through the API moves its milestone's progress in the milestone
    // list (a list computed over another table).
    let m = writer
        .post_json(
            "/api/milestones",
            &json!({"project_id": gamma, "name": "v1"}),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.body);
    let f = writer
        .post_json(
            "/api/features",
            &json!({"project_id": gamma, "milestone_id": m.json["id"], "name": "login"}),
        )
        .await;
    assert_eq!(f.status, 201, "{}", f.body);
    warm(&t, &reader, "/api/milestones").await;
    let before = reader.get("/api/milestones").await.json[0].clone();
    let r = writer
        .put_json(
            &format!("/api/features/{}", f.json["id"]),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = reader.get("/api/milestones").await.json[0].clone();
    assert_ne!(
        before, after,
        "the milestone list shows the feature's change"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn principals_with_other_rights_get_their_own_entries_and_the_unauthorised_none() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let r = admin
        .post_json("/api/projects", &json!({"name": "alpha"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let reader = t.token("read").await;
    let another_reader = t.token("read").await;

    let warm_list = reader.get("/api/projects").await;
    assert_eq!(warm_list.status, 200);
    let etag = warm_list.headers["etag"].to_str().unwrap().to_string();
    let s = stats(&t);
    assert_eq!(s.entries, 1);

    // The admin's session holds other rights: its own entry, not the reader's.
    let r = admin.get("/api/projects").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, warm_list.json);
    assert_eq!(
        stats(&t).entries,
        2,
        "an admin does not share the reader's entry"
    );
    assert_eq!(stats(&t).hits, s.hits, "that was a miss");
    // A principal with the same rights shares it.
    let r = another_reader.get("/api/projects").await;
    assert_eq!(r.json, warm_list.json);
    assert_eq!((stats(&t).entries, stats(&t).hits), (2, s.hits + 1));

    // No credentials, or no `read` capability: refused before the cache is asked, also
    // when naming the cached answer's validator.
    for s in [t.anon(), t.token("ingest").await] {
        let want = if s.token.is_some() { 403 } else { 401 };
        let r = s
            .send(
                s.request(reqwest::Method::GET, "/api/projects")
                    .header("If-None-Match", &etag),
            )
            .await;
        assert_eq!(r.status, want, "{}", r.body);
        assert!(!r.body.contains("alpha"), "{}", r.body);
        assert!(r.headers.get("etag").is_none());
        let r = s.get("/api/projects").await;
        assert_eq!(r.status, want, "{}", r.body);
        assert!(!r.body.contains("alpha"), "{}", r.body);
    }
    // A revoked token stops getting the cached answer at once.
    let r = admin
        .post_json(
            "/api/tokens",
            &json!({"name": "soon revoked", "scope": "read"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let revoked = Session::new(&t.url, r.json["token"].as_str().map(str::to_string));
    assert_eq!(revoked.get("/api/projects").await.status, 200);
    let gone = admin.delete(&format!("/api/tokens/{}", r.json["id"])).await;
    assert!(gone.status < 300, "{}", gone.body);
    let r = revoked.get("/api/projects").await;
    assert_eq!(r.status, 401, "{}", r.body);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_and_pagination_are_part_of_the_key() {
    let t = TestServer::start().await;
    let writer = t.token("admin").await;
    for (name, status) in [("alpha", "active"), ("beta", "paused"), ("gamma", "active")] {
        let r = writer
            .post_json("/api/projects", &json!({"name": name, "status": status}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let reader = t.token("read").await;
    let cases: [(&str, &[&str]); 8] = [
        ("/api/projects", &["alpha", "beta", "gamma"]),
        ("/api/projects?limit=1", &["alpha"]),
        ("/api/projects?limit=2", &["alpha", "beta"]),
        ("/api/projects?limit=1&offset=1", &["beta"]),
        ("/api/projects?limit=1&offset=2", &["gamma"]),
        ("/api/projects?status=paused", &["beta"]),
        ("/api/projects?status=active&q=gam", &["gamma"]),
        ("/api/projects?q=", &["alpha", "beta", "gamma"]),
    ];
    // Twice round: the second round is answered from the cache, each with its own answer.
    for _ in 0..2 {
        for (path, want) in cases {
            assert_eq!(names(&reader, path).await, want, "{path}");
        }
    }
    let s = stats(&t);
    // `?q=` is the list without a filter (the house `Query` reads an empty value as absent).
    assert_eq!(s.entries, 7);
    assert_eq!(s.hits, 9);
    // The same query in another order is the same entry.
    assert_eq!(
        names(&reader, "/api/projects?offset=1&limit=1").await,
        ["beta"]
    );
    assert_eq!((stats(&t).entries, stats(&t).hits), (7, 10));
    // A malformed query is refused by the route's own checks, cached or not.
    for bad in ["/api/projects?limit=0", "/api/projects?status=bogus"] {
        let r = reader.get(bad).await;
        assert!(r.status == 400 || r.status == 422, "{bad}: {}", r.body);
    }
    assert_eq!(stats(&t).entries, 7);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn if_none_match_gets_304_until_the_list_changes() {
    let t = TestServer::start().await;
    let writer = t.token("admin").await;
    let reader = t.token("read").await;
    let get = |etag: Option<String>| {
        let mut rb = reader.request(reqwest::Method::GET, "/api/features");
        if let Some(e) = etag {
            rb = rb.header("If-None-Match", e);
        }
        reader.send(rb)
    };
    let first = get(None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["cache-control"], "private, no-cache");
    assert_eq!(first.headers["content-type"], "application/json");
    let etag = first.headers["etag"].to_str().unwrap().to_string();
    let r = get(Some(etag.clone())).await;
    assert_eq!((r.status, r.body.as_str()), (304, ""));
    assert_eq!(r.headers["etag"].to_str().unwrap(), etag);
    let r = get(Some("\"something-else\"".into())).await;
    assert_eq!(r.status, 200);

    let p = writer
        .post_json("/api/projects", &json!({"name": "alpha"}))
        .await;
    let r = writer
        .post_json(
            "/api/features",
            &json!({"project_id": p.json["id"], "name": "login"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = get(Some(etag.clone())).await;
    assert_eq!(r.status, 200, "changed: a full answer");
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    let list: Value = r.json;
    assert_eq!(list[0]["name"], "login");
    t.stop().await;
}
