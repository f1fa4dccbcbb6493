//! The sentinel test: `architect serve` runs as a process with trace-level JSON logs; a
//! sentinel value goes through every vault endpoint, page and CLI command, including the
//! error paths; then everything the server wrote or answered is searched for it. Only the
//! explicit reveals (API view, dashboard View, `secrets get`) may contain it; the database
//! may hold its ciphertext only.

use super::run;
use crate::support::serve_proc::ServeProc;
use crate::support::{Resp, Session, ADMIN, ADMIN_PASSWORD};
use serde_json::json;

const SENTINEL: &str = "SENTINEL-7d3f9a1c-never-leak-me";

/// Everything the server answered, except the explicit reveals.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn add(&mut self, what: &str, r: &Resp) {
        self.0.push((
            what.to_string(),
            format!("{} {:?}\n{}", r.status, r.headers, r.body),
        ));
    }
    fn text(&mut self, what: &str, text: &str) {
        self.0.push((what.to_string(), text.to_string()));
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sentinel_value_never_leaks_into_logs_errors_activity_metrics_or_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let p = ServeProc::start(
        &data,
        &[
            ("RUST_LOG", "trace".into()),
            ("ARCHITECT_LOG_FORMAT", "json".into()),
        ],
    )
    .await;
    let url = p.url.clone();
    let mut seen = Seen::default();
    let mut reveals = 0;

    let mut s = Session::new(&url, None);
    let r = s
        .post_json(
            "/login",
            &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    s.csrf = r.json["csrf_token"].as_str().unwrap().to_string();
    let r = s
        .post_json(
            "/api/tokens",
            &json!({"name": "sentinel", "scope": "admin"}),
        )
        .await;
    let token = r.json["token"].as_str().unwrap().to_string();
    let tok = Session::new(&url, Some(token.clone()));
    let v2 = format!("{SENTINEL}-v2");

    // API: create, and every way a create can fail with the value in the body.
    let r = tok
        .post_json("/api/secrets", &json!({"name": "SENTINEL_KEY", "value": SENTINEL, "category": "api_key", "description": "canary"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    seen.add("create", &r);
    let id = r.json["id"].as_i64().unwrap();
    for (what, body) in [
        (
            "duplicate",
            json!({"name": "sentinel_key", "value": SENTINEL}),
        ),
        ("bad name", json!({"name": "bad name", "value": SENTINEL})),
        (
            "unknown field",
            json!({"name": "X", "value": SENTINEL, "extra": 1}),
        ),
        (
            "long description",
            json!({"name": "X", "value": SENTINEL, "description": "d".repeat(2000)}),
        ),
        (
            "bad category",
            json!({"name": "X", "value": SENTINEL, "category": "nope"}),
        ),
        (
            "value too large",
            json!({"name": "X", "value": SENTINEL.repeat(3000)}),
        ),
    ] {
        let r = tok.post_json("/api/secrets", &body).await;
        assert!((400..500).contains(&r.status), "{what}: {}", r.body);
        seen.add(what, &r);
    }
    let raw = format!("{{\"name\": \"X\", \"value\": \"{SENTINEL}\"");
    let r = tok
        .send(
            tok.request(reqwest::Method::POST, "/api/secrets")
                .header("content-type", "application/json")
                .body(raw),
        )
        .await;
    assert_eq!(r.status, 400);
    seen.add("malformed json", &r);
    let r = tok
        .send(
            tok.request(reqwest::Method::POST, "/api/secrets")
                .body(format!("value={SENTINEL}")),
        )
        .await;
    seen.add("wrong content type", &r);

    // Update, versions, restore, audit, status, lists.
    let r = tok
        .put_json(&format!("/api/secrets/{id}"), &json!({"value": v2}))
        .await;
    assert_eq!(r.status, 200);
    seen.add("update", &r);
    let r = tok
        .put_json(
            &format!("/api/secrets/{id}"),
            &json!({"name": "bad name", "value": SENTINEL}),
        )
        .await;
    seen.add("bad update", &r);
    let r = tok
        .put_json("/api/secrets/9999", &json!({"value": SENTINEL}))
        .await;
    seen.add("update unknown", &r);
    for path in [
        "/api/secrets".to_string(),
        "/api/secrets?include_deleted=true".into(),
        "/api/secrets?q=canary".into(),
        format!("/api/secrets/{id}/versions"),
        format!("/api/secrets/{id}/audit"),
        "/api/vault/status".into(),
        format!("/api/secrets/{id}/versions/99"),
    ] {
        let r = tok.get(&path).await;
        seen.add(&path, &r);
    }
    for path in [
        format!("/api/secrets/{id}"),
        format!("/api/secrets/{id}/versions/1"),
    ] {
        let r = tok.get(&path).await;
        assert!(
            r.body.contains(SENTINEL),
            "the explicit reveal works: {}",
            r.body
        );
        reveals += 1;
    }
    let r = tok
        .post_json(&format!("/api/secrets/{id}/versions/1/restore"), &json!({}))
        .await;
    assert_eq!(r.status, 200);
    seen.add("restore", &r);
    let r = s
        .post_json("/api/vault/step-up", &json!({"password": SENTINEL}))
        .await;
    seen.add("step-up with the sentinel as a wrong password", &r);

    // Dashboard pages and forms.
    for path in [
        "/vault".to_string(),
        format!("/vault/{id}"),
        "/vault?q=canary".into(),
    ] {
        let r = s.get(&path).await;
        assert_eq!(r.status, 200);
        seen.add(&path, &r);
    }
    let r = s.post_form(&format!("/vault/{id}/reveal"), &[]).await;
    assert!(r.body.contains(SENTINEL));
    reveals += 1;
    let r = s
        .post_form(
            "/vault",
            &[
                ("name", "FORM_SECRET"),
                ("value", SENTINEL),
                ("category", "token"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    seen.add("form create", &r);
    for (what, path, fields) in [
        (
            "form bad name",
            "/vault".to_string(),
            vec![
                ("name", "bad name"),
                ("value", SENTINEL),
                ("category", "token"),
            ],
        ),
        (
            "form duplicate",
            "/vault".to_string(),
            vec![
                ("name", "FORM_SECRET"),
                ("value", SENTINEL),
                ("category", "token"),
            ],
        ),
        (
            "form bad category",
            "/vault".to_string(),
            vec![("name", "Y"), ("value", SENTINEL), ("category", "nope")],
        ),
        (
            "form edit bad",
            format!("/vault/{id}"),
            vec![
                ("name", "bad name"),
                ("category", "token"),
                ("value", SENTINEL),
            ],
        ),
        (
            "form edit",
            format!("/vault/{id}"),
            vec![
                ("name", "SENTINEL_KEY"),
                ("category", "token"),
                ("value", SENTINEL),
            ],
        ),
    ] {
        let r = s.post_form(&path, &fields).await;
        assert!(r.status < 500, "{what}: {}", r.status);
        seen.add(what, &r);
        if r.status == 303 {
            let loc = r.headers["location"].to_str().unwrap().to_string();
            let page = s.get(&loc).await;
            seen.add(&format!("{what} → {loc}"), &page);
        }
    }

    // CLI.
    let base = ["--url", url.as_str(), "--token", token.as_str()];
    let cli = |rest: &[&str]| {
        let mut a: Vec<String> = vec!["secrets".into()];
        a.extend(base.iter().map(|s| s.to_string()));
        a.extend(rest.iter().map(|s| s.to_string()));
        a
    };
    for (args, stdin) in [
        (
            cli(&["set", "CLI_SECRET", "--category", "password"]),
            Some(SENTINEL),
        ),
        (cli(&["set", "CLI_SECRET"]), Some(v2.as_str())),
        (cli(&["set", "bad name"]), Some(SENTINEL)),
        (cli(&["list"]), None),
        (cli(&["list", "--json"]), None),
        (cli(&["versions", "CLI_SECRET"]), None),
        (cli(&["audit", "CLI_SECRET"]), None),
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&a, stdin).await;
        seen.text(&format!("cli {} stdout", a.join(" ")), &r.stdout);
        seen.text(&format!("cli {} stderr", a.join(" ")), &r.stderr);
    }
    let a = cli(&["get", "CLI_SECRET"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let r = run(&a, None).await;
    assert_eq!(r.stdout, v2, "{r:?}");
    reveals += 1;
    seen.text("cli get stderr", &r.stderr);
    let mut vault_args: Vec<&str> = vec!["vault"];
    vault_args.extend_from_slice(&base);
    vault_args.push("rotate-key");
    let r = run(&vault_args, None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    seen.text("cli rotate stdout", &r.stdout);
    seen.text("cli rotate stderr", &r.stderr);

    // Delete, undelete, purge; then the activity log and /metrics.
    let form_id = tok.get("/api/secrets?name=FORM_SECRET").await.json[0]["id"]
        .as_i64()
        .unwrap();
    for (m, path) in [
        (reqwest::Method::DELETE, format!("/api/secrets/{form_id}")),
        (
            reqwest::Method::POST,
            format!("/api/secrets/{form_id}/undelete"),
        ),
        (reqwest::Method::DELETE, format!("/api/secrets/{form_id}")),
        (
            reqwest::Method::POST,
            format!("/api/secrets/{form_id}/purge"),
        ),
    ] {
        let r = tok.send(tok.request(m, &path)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        seen.add(&path, &r);
    }
    for path in [
        "/api/activity?limit=1000",
        "/activity",
        "/metrics",
        "/api/stats",
        "/health",
    ] {
        let r = tok.get(path).await;
        seen.add(path, &r);
        let r = s.get(path).await;
        seen.add(path, &r);
    }
    assert_eq!(reveals, 4);

    let (status, log) = p.terminate().await;
    assert!(status.success(), "{status}:\n{log}");
    assert!(log.contains("architect listening"), "the log was captured");
    assert!(
        log.contains("\"level\":\"TRACE\"") || log.contains("TRACE"),
        "trace-level logging ran"
    );
    assert!(!log.contains(SENTINEL), "the server log holds the sentinel");
    for (what, text) in &seen.0 {
        assert!(
            !text.contains(SENTINEL),
            "{what} holds the sentinel:\n{text}"
        );
    }
    // Every file the server wrote: database, WAL, key files.
    for f in files_under(&data) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes
                .windows(SENTINEL.len())
                .any(|w| w == SENTINEL.as_bytes()),
            "{} holds the sentinel",
            f.display()
        );
    }
}
