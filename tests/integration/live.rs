//! Live events and the overview over real HTTP: `/api/events` carries committed changes by
//! topic to the principals that may read them, never extends a session, and ends on revoke;
//! `/api/overview` counts what the domains' own APIs count.

use crate::support::{TestServer, ADMIN, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;

/// An open `/api/events` stream, read event by event.
struct Stream {
    resp: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(client: &reqwest::Client, url: &str, auth: Option<&str>) -> Stream {
        let mut rb = client.get(url);
        if let Some(t) = auth {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.expect("stream opens");
        assert_eq!(resp.status(), 200, "{url}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream"),
            "{:?}",
            resp.headers()
        );
        let mut s = Stream {
            resp,
            buf: String::new(),
        };
        let (event, _) = s.next().await.expect("a ready event");
        assert_eq!(event, "ready");
        s
    }

    /// The next event (name, data), skipping keep-alive comments; None when the stream ended
    /// or nothing came within 10 s.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if block.lines().all(|l| l.starts_with(':') || l.is_empty()) {
                    continue;
                }
                return Some((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
            match tokio::time::timeout(Duration::from_secs(10), self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn report(s: &crate::support::Session, message: &str) -> i64 {
    let r = s
        .post_json(
            "/api/errors",
            &json!({"node_id": "n1", "error_type": "E", "source": "svc", "message": message}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    r.json["id"]
        .as_i64()
        .or_else(|| r.json["error_id"].as_i64())
        .or_else(|| r.json["group_id"].as_i64())
        .unwrap_or(-1)
}

#[tokio::test]
async fn events_carry_committed_changes_of_the_topics_asked_for() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let reader = t.token("read").await;
    let ingest = t.token("ingest").await;
    let http = client();
    let mut tasks = Stream::open(
        &http,
        &format!("{}/api/events?topics=tasks", t.url),
        reader.token.as_deref(),
    )
    .await;
    let mut all = Stream::open(
        &http,
        &format!("{}/api/events", t.url),
        reader.token.as_deref(),
    )
    .await;

    report(&ingest, "disk full on /var").await;
    let r = admin
        .post_json("/api/tasks", &json!({"type": "flaky", "max_retries": 0}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let task_id = r.json["id"].as_i64().unwrap().to_string();

    // The tasks-only stream skips the error and carries the task.
    let (name, data) = tasks.next().await.expect("a task event");
    assert_eq!(name, "tasks");
    assert_eq!(
        (
            data["topic"].as_str(),
            data["action"].as_str(),
            data["id"].as_str()
        ),
        (Some("tasks"), Some("created"), Some(task_id.as_str())),
        "{data}"
    );
    // The unfiltered one carries both, in commit order.
    let (first, _) = all.next().await.expect("an event");
    let (second, _) = all.next().await.expect("another event");
    assert_eq!((first.as_str(), second.as_str()), ("errors", "tasks"));
    // Tracked work too.
    let r = admin
        .post_json("/api/projects", &json!({"name": "live-proj"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (name, data) = all.next().await.expect("a work event");
    assert_eq!(
        (name.as_str(), data["action"].as_str()),
        ("work", Some("project"))
    );
    assert_eq!(data["id"], r.json["id"].as_i64().unwrap().to_string());

    // An unknown topic is named; no credentials is 401.
    let r = reader.get("/api/events?topics=tasks,bogus").await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("bogus") && r.body.contains("topics"),
        "{}",
        r.body
    );
    let r = http
        .get(format!("{}/api/events", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Principals without Read get nothing.
    let r = ingest.get("/api/events").await;
    assert_eq!(r.status, 403, "{}", r.body);
    t.stop().await;
}

#[tokio::test]
async fn the_event_stream_does_not_keep_a_session_alive() {
    let t = TestServer::start_with(|c| c.session_timeout = 60).await;
    let browser = t.login(ADMIN, ADMIN_PASSWORD).await;

    assert!((58..=60).contains(&seconds_left(&browser).await));
    t.clock.advance(20);
    // Open the stream with the browser's cookie, and let a page refresh itself passively.
    let mut stream = browser
        .request(reqwest::Method::GET, "/api/events")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.chunk()).await;
    let r = browser
        .send(
            browser
                .request(reqwest::Method::GET, "/errors")
                .header("X-Architect-Passive", "1"),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = browser.get("/login").await;
    assert_eq!(r.status, 303, "a signed-in browser is sent on from /login");
    let left = seconds_left(&browser).await;
    assert!(
        (35..=40).contains(&left),
        "nothing above counted as activity: {left} s left"
    );
    // A page the person opens does.
    assert_eq!(browser.get("/errors").await.status, 200);
    assert!((58..=60).contains(&seconds_left(&browser).await));
    drop(stream);
    t.stop().await;
}

#[tokio::test]
async fn a_stream_ends_when_its_token_is_revoked() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let r = admin
        .post_json("/api/tokens", &json!({"name": "watcher", "scope": "read"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (id, token) = (
        r.json["id"].as_i64().unwrap(),
        r.json["token"].as_str().unwrap().to_string(),
    );
    let http = client();
    let mut s = Stream::open(&http, &format!("{}/api/events", t.url), Some(&token)).await;
    let r = admin.delete(&format!("/api/tokens/{id}")).await;
    assert!(r.status < 300, "{}", r.body);
    // Within one re-check interval the stream says so and ends.
    let deadline =
        tokio::time::Instant::now() + architect::events::api::RECHECK + Duration::from_secs(10);
    let mut saw = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Some((name, _))) => saw.push(name),
            Ok(None)
                if tokio::time::Instant::now() < deadline
                    && saw.last().map(String::as_str) != Some("signed_out") =>
            {
                continue
            }
            _ => break,
        }
    }
    assert_eq!(
        saw.last().map(String::as_str),
        Some("signed_out"),
        "{saw:?}"
    );
    assert!(s.next().await.is_none(), "the stream ended");
    t.stop().await;
}

#[tokio::test]
async fn the_overview_counts_what_the_domains_count() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let ingest = t.token("ingest").await;
    let p = admin
        .post_json("/api/projects", &json!({"name": "shop"}))
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let pid = p.json["id"].as_i64().unwrap();
    for (title, status) in [
        ("a", None),
        ("b", Some("in_progress")),
        ("c", Some("resolved")),
    ] {
        let r = admin
            .post_json(
                "/api/bugs",
                &json!({"project_id": pid, "title": title, "severity": "high"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        if let Some(s) = status {
            let id = r.json["id"].as_i64().unwrap();
            let r = admin
                .put_json(&format!("/api/bugs/{id}"), &json!({"status": s}))
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    report(&ingest, "one").await;
    report(&ingest, "two thing").await;
    for _ in 0..3 {
        let r = admin
            .post_json("/api/tasks", &json!({"type": "flaky"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let o = admin.get("/api/overview").await;
    assert_eq!(o.status, 200, "{}", o.body);
    let o = o.json;
    let stats = admin.get("/api/stats").await.json;
    let open_bugs: i64 = ["open", "in_progress", "review"]
        .iter()
        .map(|s| stats["bugs"][s].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(o["bugs"]["open"].as_i64(), Some(open_bugs), "{o}");
    assert_eq!(open_bugs, 2);
    assert_eq!(o["bugs"]["opened_7d"], 3);
    assert_eq!(o["bugs"]["resolved_7d"], 1);
    assert_eq!(o["errors"]["unresolved"], 2, "{o}");
    assert_eq!(o["errors"]["new_24h"], 2, "{o}");
    assert_eq!(o["errors"]["occurrences_24h"], 2, "{o}");
    assert_eq!(o["tasks"]["pending"], 3, "{o}");
    assert_eq!(o["tasks"]["dead"], 0, "{o}");
    let counts = admin.get("/api/tasks/counts").await.json;
    assert_eq!(o["tasks"]["pending"], counts["pending"], "{counts}");
    assert_eq!(o["nodes"]["online"], 1, "this server's own node: {o}");
    // Nothing waits on a person yet, but the two new error groups light the Errors badge.
    assert_eq!(o["badges"], json!({"errors": 2}), "{o}");
    let b = admin.get("/api/overview/badges").await;
    assert_eq!(b.json, o["badges"]);
    // The page shows the same numbers, and answers a viewer too.
    let viewer = t.user("vera", "viewer").await;
    let page = viewer.get("/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"data-ov="bugs.open">2<"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("Needs you"));
    t.stop().await;
}

async fn seconds_left(s: &crate::support::Session) -> i64 {
    s.get("/api/session").await.json["seconds_left"]
        .as_i64()
        .unwrap()
}

/// The live pane view stops showing a screen to someone who signed out: the stream ends
/// within one re-check of the session.
#[tokio::test]
async fn a_pane_stream_ends_when_its_viewer_signs_out() {
    let tmux = crate::agents::PrivateTmux::new();
    tmux.idle_sessions(&["watched"]);
    let t = crate::agents::server(&tmux).await;
    let browser = t.login(ADMIN, ADMIN_PASSWORD).await;
    let mut stream = browser
        .request(reqwest::Method::GET, "/tmux/view/watched/stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .expect("the first screen")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: pane"));
    // Sign out from another request of the same browser.
    let r = browser.post_form("/logout", &[]).await;
    assert!(r.status < 400, "{}", r.body);
    let deadline =
        tokio::time::Instant::now() + architect::events::api::RECHECK + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => panic!("the pane stream still runs after the sign-out"),
        }
    }
    t.stop().await;
}
