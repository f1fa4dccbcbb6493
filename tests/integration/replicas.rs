//! Two `serve` replicas on one PostgreSQL database (issue 15 item 2): what one changes, the
//! other knows at once, through `LISTEN/NOTIFY` (`events::replicas`), with no time window:
//! a token revoked on one is refused on the other; a session opened on one works on the
//! other, CSRF token and all, and ends on both when it signs out on either; a task enqueued
//! on one wakes a long-poll waiting on the other; a watcher of one sees the other's changes;
//! a replica that loses its listener resyncs and goes on hearing.
//!
//! Always on PostgreSQL, whichever backend the suite runs on: a database of its own per test
//! on the run's private cluster (`support::PgCluster`, as postgres.rs). The two servers share
//! one `SECRET_KEY`, as replicas must (cookies and tokens are stored as keyed hashes).
//!
//! "At once" is the notification's delivery: it is sent after the commit and heard by the
//! other replica's listener a moment later, so the first check after a change waits for
//! that (`support::until`), never for a time; each check first shows the other replica held
//! the credential in its cache, so a refusal proves the cache was dropped.

use crate::support::{until, PgCluster, Session, TestServer, ADMIN, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;

const SHARED_KEY: &str = "replicas-test-shared-secret-key-0123456789";

/// Two servers on one new database; `None` only when PostgreSQL is missing and the person
/// opted out (`support::prerequisite`).
async fn pair(name: &str) -> Option<(TestServer, TestServer)> {
    let pg = PgCluster::shared()?;
    let url = pg.create_database(name).await;
    let start = |url| {
        TestServer::start_with(move |c| {
            c.database_url = Some(url);
            c.secret_key = Some(SHARED_KEY.into());
        })
    };
    let a = start(url.clone()).await;
    let b = start(url).await;
    for s in [&a, &b] {
        assert!(s.state().events.in_sync(), "listening before it serves");
        assert!(s.state().list_cache.enabled());
    }
    Some((a, b))
}

fn hash(server: &TestServer, secret: &str) -> String {
    architect::auth::secret_hash(&server.state().secret_key, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_replica_is_refused_on_the_other() {
    let Some((a, b)) = pair("replicas_tokens").await else {
        return;
    };
    let admin = a.admin().await;
    let r = admin
        .post_json("/api/tokens", &json!({"name": "ci", "scope": "admin"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (id, secret) = (
        r.json["id"].as_i64().unwrap(),
        r.json["token"].as_str().unwrap().to_string(),
    );
    let on_b = Session::new(&b.url, Some(secret.clone()));
    assert_eq!(on_b.get("/api/projects").await.status, 200);
    let cached = || {
        b.state()
            .token_cache
            .get(&hash(&b, &secret), &b.clock.now_str())
    };
    assert!(cached().is_some(), "b answers it from its cache");
    assert_eq!(on_b.get("/api/projects").await.status, 200);

    assert_eq!(admin.delete(&format!("/api/tokens/{id}")).await.status, 200);
    until("b refuses the revoked token", || async {
        (on_b.get("/api/projects").await.status == 401).then_some(())
    })
    .await;
    assert!(cached().is_none());
    // And stays refused: no entry came back from a stale read.
    assert_eq!(on_b.get("/api/projects").await.status, 401);

    // A role change on b reaches a token cached on a.
    let carol = b.user("carol", "member").await;
    let r = carol
        .post_json("/api/tokens", &json!({"name": "c", "scope": "admin"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let carol_on_a = Session::new(&a.url, r.json["token"].as_str().map(str::to_string));
    let r = carol_on_a
        .post_json("/api/projects", &json!({"name": "p1"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let uid = carol.get("/api/me").await.json["user_id"].as_i64().unwrap();
    let r = b
        .admin()
        .await
        .put_json(&format!("/api/users/{uid}"), &json!({"role": "viewer"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until("a applies the new role", || async {
        let r = carol_on_a
            .post_json("/api/projects", &json!({"name": "p2"}))
            .await;
        (r.status == 403).then_some(())
    })
    .await;
    a.stop().await;
    b.stop().await;
}

/// A browser's session on one replica: its cookie sent by hand (each client keeps no jar,
/// so a sign-out answer's cleared cookie cannot fake a refusal).
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    fn on(&self, server: &TestServer) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.url.clone(),
            cookie: self.cookie.clone(),
            csrf: self.csrf.clone(),
        }
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, Value) {
        let r = rb
            .header("cookie", format!("architect_session={}", self.cookie))
            .send()
            .await
            .expect("sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> u16 {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
            .0
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let rb = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(rb.header("x-csrf-token", &self.csrf)).await
    }

    async fn post_form(&self, path: &str) -> u16 {
        let rb = self
            .http
            .post(format!("{}{path}", self.base))
            .form(&[("csrf_token", &self.csrf)]);
        self.send(rb).await.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_works_on_every_replica_and_ends_on_all() {
    let Some((a, b)) = pair("replicas_sessions").await else {
        return;
    };
    let r = a
        .anon()
        .post_json(
            "/login",
            &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("architect_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let login = Browser {
        http: reqwest::Client::new(),
        base: String::new(),
        cookie: cookie.clone(),
        csrf: r.json["csrf_token"].as_str().unwrap().to_string(),
    };
    let (on_a, on_b) = (login.on(&a), login.on(&b));

    // The session and its CSRF token work on b: a JSON write (header) and a form (field).
    assert_eq!(on_b.get("/api/me").await, 200);
    let (status, project) = on_b
        .post_json("/api/projects", &json!({"name": "from-b"}))
        .await;
    assert_eq!(status, 201, "{project}");
    let pid = project["id"].as_i64().unwrap();
    let status = on_b.post_form(&format!("/projects/{pid}/archive")).await;
    assert!(status < 400, "{status}");
    let p = a
        .token("read")
        .await
        .get(&format!("/api/projects/{pid}"))
        .await;
    assert_eq!(p.json["archived"], Value::Bool(true), "{}", p.body);
    // Without the CSRF token, b refuses the same session's write.
    let mut forged = login.on(&b);
    forged.csrf = "not-the-token".into();
    let (status, _) = forged
        .post_json("/api/projects", &json!({"name": "forged"}))
        .await;
    assert_eq!(status, 403);

    // Both replicas hold it in their caches.
    assert_eq!(on_a.get("/api/me").await, 200);
    let cached = |s: &TestServer| {
        s.state()
            .session_cache
            .get(&hash(s, &cookie), &s.clock.now_str())
    };
    assert!(cached(&a).is_some() && cached(&b).is_some());

    // Sign out on b: a refuses the cookie too.
    let status = on_b.post_form("/logout").await;
    assert!(status < 400, "{status}");
    until("a refuses the signed-out session", || async {
        (on_a.get("/api/me").await == 401).then_some(())
    })
    .await;
    assert!(cached(&a).is_none());
    assert_eq!(on_b.get("/api/me").await, 401);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_enqueued_on_one_replica_wakes_a_claim_waiting_on_the_other() {
    let Some((a, b)) = pair("replicas_tasks").await else {
        return;
    };
    let admin = a.token("admin").await;
    let worker = b.token("worker").await;
    let wid = crate::tasks::register(&worker, "w1").await;
    // Nothing queued: a quick claim answers null (and warms b's claim path).
    let r = worker
        .post_json("/api/tasks/claim", &json!({"worker_id": wid}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json["task"].is_null());

    let checks = b.state().tasks.checks();
    let token = worker.token.clone();
    let url = b.url.clone();
    // Without a wake-up from a's enqueue it answers null after 30 s.
    let waiting = tokio::spawn(async move {
        Session::new(&url, token)
            .post_json(
                "/api/tasks/claim",
                &json!({"worker_id": wid, "wait_s": 30.0}),
            )
            .await
    });
    until("the claim on b is waiting", || async {
        (b.state().tasks.checks() > checks).then_some(())
    })
    .await;
    let id = crate::tasks::enqueue(&admin, json!({"type": "noop"})).await;
    let r = tokio::time::timeout(Duration::from_secs(50), waiting)
        .await
        .expect("the waiting claim answers once the task is enqueued on a")
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["task"]["id"].as_i64(), Some(id), "{}", r.body);
    a.stop().await;
    b.stop().await;
}

/// An open `/api/events` stream, read event by event (as live.rs reads it).
struct Stream {
    resp: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(url: &str, token: &str) -> Stream {
        let resp = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("stream opens");
        assert_eq!(resp.status(), 200, "{url}");
        let mut s = Stream {
            resp,
            buf: String::new(),
        };
        assert_eq!(s.next().await.expect("ready").0, "ready");
        s
    }

    /// The next event (name, data); None when nothing came within 20 s.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if block.lines().all(|l| l.starts_with(':') || l.is_empty()) {
                    continue;
                }
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                return Some((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
            match tokio::time::timeout(Duration::from_secs(20), self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_of_one_replica_sees_the_others_changes_and_a_lost_listener_resyncs() {
    let Some((a, b)) = pair("replicas_events").await else {
        return;
    };
    let writer = a.token("admin").await;
    let reader = b.token("read").await;
    let token = reader.token.clone().unwrap();
    let mut stream = Stream::open(&format!("{}/api/events?topics=work", b.url), &token).await;
    let r = writer
        .post_json("/api/projects", &json!({"name": "seen"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (name, data) = stream.next().await.expect("an event from a's change");
    assert_eq!(
        (name.as_str(), data["action"].as_str()),
        ("work", Some("project"))
    );
    assert_eq!(data["id"], r.json["id"].as_i64().unwrap().to_string());

    // Cut every events connection of this database (both replicas' listeners and senders):
    // the watcher is told to refetch, and changes are heard again once b listens anew.
    let db = &b.state().db;
    let cut: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'architect events' AND datname = current_database()) t",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert!(cut >= 2, "each replica had a listener: {cut}");
    let (name, _) = stream.next().await.expect("a resync");
    assert_eq!(name, "resync");
    until("both replicas listen again", || async {
        (a.state().events.in_sync() && b.state().events.in_sync()).then_some(())
    })
    .await;
    let r = writer
        .post_json("/api/projects", &json!({"name": "after"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    loop {
        let (name, data) = stream.next().await.expect("the change after the reconnect");
        if name == "resync" {
            continue; // b's reconnect may say it again
        }
        assert_eq!(name, "work");
        assert_eq!(data["id"], r.json["id"].as_i64().unwrap().to_string());
        break;
    }
    // The list cache on b is right again after all that.
    let names = reader.get("/api/projects").await;
    assert_eq!(
        names.json.as_array().map(Vec::len),
        Some(2),
        "{}",
        names.body
    );
    a.stop().await;
    b.stop().await;
}
