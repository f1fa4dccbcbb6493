//! The dashboard's fit and finish (issue 13, item 4), over real HTTP and in headless Chromium:
//! error pages for browsers, the favicon, forms that keep what was typed, one time format,
//! readable status labels, money below a cent, bugs from error groups, milestone pickers by
//! project, tasks by worker name; and in the browser: no sideways scroll at 390 px on every
//! panel with the navigation behind a button, dark mode, the skip link, the task form's fields
//! per type and distinct task badges. Screenshots land in `target/screenshots/ui-*.png`.

use crate::browser::{browser_available, log_in, Browser, Driver};
use crate::support::{Session, TestServer};
use serde_json::{json, Value};

async fn created(s: &Session, path: &str, body: Value) -> i64 {
    let r = s.post_json(path, &body).await;
    assert_eq!(r.status, 201, "POST {path} {body}: {}", r.body);
    r.json["id"]
        .as_i64()
        .or_else(|| r.json["group_id"].as_i64())
        .unwrap_or_else(|| panic!("no id in {}", r.body))
}

fn content_type(r: &crate::support::Resp) -> String {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// An error report; returns its group's id.
async fn report_error(s: &Session, error_type: &str, message: &str, source: &str) -> i64 {
    let body =
        json!({"node_id": "web-1", "error_type": error_type, "message": message, "source": source});
    created(s, "/api/errors", body).await
}

#[tokio::test]
async fn ui_bad_ids_answer_browsers_with_an_html_page() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for path in [
        "/projects/abc",
        "/milestones/abc",
        "/features/abc",
        "/bugs/xyz",
        "/devops/abc",
        "/errors/abc",
        "/tasks/abc",
        "/nodes/abc",
        "/vault/abc",
        "/assigner/prompts/abc",
        "/projects?limit=abc",
        "/tasks?priority=high",
        "/errors?status=sideways",
    ] {
        let r = admin
            .send(
                admin
                    .request(reqwest::Method::GET, path)
                    .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            )
            .await;
        assert!(
            r.status == 400 || r.status == 422,
            "{path}: {} {}",
            r.status,
            r.body
        );
        assert!(
            content_type(&r).starts_with("text/html"),
            "{path}: {}",
            content_type(&r)
        );
        assert!(
            r.body.contains("<h1>4") && r.body.contains("Back to the dashboard"),
            "{path}: {}",
            r.body
        );
        // A client that did not ask for HTML still gets the API's JSON body when an
        // extractor refuses the request (a filter the page itself rejects was always a page).
        if path.contains("priority=") || path.contains("status=") {
            continue;
        }
        let r = admin.get(path).await;
        assert!(r.status == 400 || r.status == 422, "{path}: {}", r.body);
        assert!(r.json["code"].is_string(), "{path}: {}", r.body);
    }
    // A well-formed id that does not exist was already a page; it stays one.
    let r = admin
        .send(
            admin
                .request(reqwest::Method::GET, "/projects/999")
                .header("accept", "text/html"),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(content_type(&r).starts_with("text/html"));
    server.stop().await;
}

#[tokio::test]
async fn ui_favicon_is_served_and_linked() {
    let server = TestServer::start().await;
    let anon = server.anon();
    let r = anon.get("/favicon.ico").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(content_type(&r), "image/svg+xml");
    assert!(r.body.starts_with("<svg"), "{}", r.body);
    let r = anon.get("/static/favicon.svg").await;
    assert_eq!(r.status, 200);
    let login = anon.get("/login").await;
    assert!(login
        .body
        .contains(r#"<link rel="icon" href="/static/favicon.svg""#));
    let page = server.admin().await.get("/projects").await;
    assert!(page
        .body
        .contains(r#"<link rel="icon" href="/static/favicon.svg""#));
    server.stop().await;
}

/// A form's page, the fields posted, and what the answer must show again.
type FormCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<String>);

#[tokio::test]
async fn ui_forms_keep_what_was_typed_on_an_error() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let pid = created(&admin, "/api/projects", json!({"name": "Apollo"})).await;
    let other = created(&admin, "/api/projects", json!({"name": "Zephyr"})).await;
    let (pid_s, other_s) = (pid.to_string(), other.to_string());

    // Each form fails on the server (a duplicate name, a bad number, a bad date...) and comes
    // back as the same page with the error and every typed value in place.
    let cases: Vec<FormCase> = vec![
        (
            "/projects",
            vec![
                ("name", "Apollo"),
                ("description", "typed description 1"),
                ("source_path", "/srv/typed-path"),
                ("tags", "typed, tags"),
                ("status", "paused"),
            ],
            vec![
                r#"value="Apollo""#.into(),
                ">typed description 1</textarea>".into(),
                r#"value="/srv/typed-path""#.into(),
                r#"value="typed, tags""#.into(),
                r#"<option value="paused" selected>"#.into(),
            ],
        ),
        (
            "/milestones",
            vec![
                ("project_id", &other_s),
                ("name", "typed milestone"),
                ("description", "typed description 2"),
                ("target_date", "not-a-date"),
                ("status", "in_progress"),
            ],
            vec![
                r#"value="typed milestone""#.into(),
                ">typed description 2</textarea>".into(),
                r#"value="not-a-date""#.into(),
                r#"<option value="in_progress" selected>"#.into(),
                format!(r#"<option value="{other}" selected>"#),
            ],
        ),
        (
            "/features",
            vec![
                ("project_id", &other_s),
                ("name", "typed feature"),
                ("description", "typed description 3"),
                ("priority", "eleven"),
                ("assignee", "typed-assignee"),
            ],
            vec![
                r#"value="typed feature""#.into(),
                ">typed description 3</textarea>".into(),
                r#"value="eleven""#.into(),
                r#"value="typed-assignee""#.into(),
                format!(r#"<option value="{other}" selected>"#),
            ],
        ),
        (
            "/bugs",
            vec![
                ("project_id", &pid_s),
                ("title", ""),
                ("description", "typed description 4"),
                ("severity", "critical"),
                ("assignee", "typed-bug-assignee"),
            ],
            vec![
                ">typed description 4</textarea>".into(),
                r#"value="typed-bug-assignee""#.into(),
                r#"<option value="critical" selected>"#.into(),
            ],
        ),
        (
            "/devops",
            vec![
                ("title", "typed devops"),
                ("project_id", &pid_s),
                ("category", "backup"),
                ("description", "typed description 5"),
                ("priority", "x"),
                ("schedule", "weekly"),
            ],
            vec![
                r#"value="typed devops""#.into(),
                ">typed description 5</textarea>".into(),
                r#"value="weekly""#.into(),
                r#"<option value="backup" selected>"#.into(),
                format!(r#"<option value="{pid}" selected>"#),
            ],
        ),
        (
            "/tasks",
            vec![
                ("type", "custom"),
                ("custom_type", "report.build"),
                ("payload", "[1, 2]"),
                ("priority", "7"),
                ("tags", "typed-tag"),
                ("node", "typed-node"),
            ],
            vec![
                r#"<option value="custom" selected>"#.into(),
                r#"value="report.build""#.into(),
                ">[1, 2]</textarea>".into(),
                r#"value="7""#.into(),
                r#"value="typed-tag""#.into(),
                r#"value="typed-node""#.into(),
            ],
        ),
    ];
    for (path, fields, wants) in cases {
        let r = admin.post_form(path, &fields).await;
        assert!(
            (400..500).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.body
        );
        assert!(
            r.body.contains(r#"class="flash err""#),
            "{path}: no error shown: {}",
            r.body
        );
        for want in wants {
            assert!(
                r.body.contains(&want),
                "{path}: {want} missing:\n{}",
                r.body
            );
        }
    }
    // What comes back is escaped like everything else on the page.
    let r = admin
        .post_form(
            "/projects",
            &[
                ("name", "Apollo"),
                ("description", "</textarea><script>alert(1)</script>"),
                ("tags", "\"><img src=x onerror=alert(2)>"),
                ("status", "active"),
            ],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(!r.body.contains("<script>alert(1)"), "{}", r.body);
    assert!(!r.body.contains("<img src=x"), "{}", r.body);
    assert!(
        r.body
            .contains("&#60;/textarea&#62;&#60;script&#62;alert(1)"),
        "{}",
        r.body
    );
    // Nothing was created by the failed posts.
    let r = admin.get("/api/projects").await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(2), "{}", r.body);
    server.stop().await;
}

#[tokio::test]
async fn ui_edit_forms_keep_what_was_typed_on_an_error() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let pid = created(&admin, "/api/projects", json!({"name": "Apollo"})).await;
    created(&admin, "/api/projects", json!({"name": "Taken"})).await;
    let mid = created(
        &admin,
        "/api/milestones",
        json!({"project_id": pid, "name": "M1"}),
    )
    .await;
    let fid = created(
        &admin,
        "/api/features",
        json!({"project_id": pid, "name": "F1"}),
    )
    .await;
    let bid = created(
        &admin,
        "/api/bugs",
        json!({"project_id": pid, "title": "B1"}),
    )
    .await;
    let did = created(
        &admin,
        "/api/devops-tasks",
        json!({"title": "D1", "category": "backup"}),
    )
    .await;
    let cases: Vec<FormCase> = vec![
        (
            "/projects/{pid}",
            vec![
                ("name", "Taken"),
                ("description", "edited description 1"),
                ("source_path", "/srv/edited"),
                ("tags", "edited"),
                ("status", "paused"),
            ],
            vec![
                r#"value="Taken""#.into(),
                ">edited description 1</textarea>".into(),
                r#"value="/srv/edited""#.into(),
                r#"<option value="paused" selected>"#.into(),
            ],
        ),
        (
            "/milestones/{mid}",
            vec![
                ("name", "M1 edited"),
                ("description", "edited description 2"),
                ("target_date", "someday"),
                ("status", "in_progress"),
            ],
            vec![
                r#"value="M1 edited""#.into(),
                r#"value="someday""#.into(),
                r#"<option value="in_progress" selected>"#.into(),
            ],
        ),
        (
            "/features/{fid}",
            vec![
                ("name", "F1 edited"),
                ("description", "edited description 3"),
                ("priority", "eleven"),
                ("assignee", "edited-assignee"),
            ],
            vec![
                r#"value="F1 edited""#.into(),
                ">edited description 3</textarea>".into(),
                r#"value="eleven""#.into(),
                r#"value="edited-assignee""#.into(),
            ],
        ),
        (
            "/bugs/{bid}",
            vec![
                ("title", ""),
                ("description", "edited description 4"),
                ("severity", "critical"),
                ("assignee", "edited-bug-assignee"),
            ],
            vec![
                ">edited description 4</textarea>".into(),
                r#"<option value="critical" selected>"#.into(),
                r#"value="edited-bug-assignee""#.into(),
            ],
        ),
        (
            "/devops/{did}",
            vec![
                ("title", "D1 edited"),
                ("category", "monitoring"),
                ("description", "edited description 5"),
                ("priority", "x"),
                ("schedule", "hourly-ish"),
            ],
            vec![
                r#"value="D1 edited""#.into(),
                r#"<option value="monitoring" selected>"#.into(),
                r#"value="hourly-ish""#.into(),
            ],
        ),
    ];
    for (path, fields, wants) in cases {
        let path = path
            .replace("{pid}", &pid.to_string())
            .replace("{mid}", &mid.to_string())
            .replace("{fid}", &fid.to_string())
            .replace("{bid}", &bid.to_string())
            .replace("{did}", &did.to_string());
        let r = admin.post_form(&path, &fields).await;
        assert!(
            (400..500).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.body
        );
        assert!(
            r.body.contains(r#"class="flash err""#),
            "{path}: {}",
            r.body
        );
        for want in wants {
            assert!(
                r.body.contains(&want),
                "{path}: {want} missing:\n{}",
                r.body
            );
        }
    }
    // Nothing changed.
    let f = admin.get(&format!("/api/features/{fid}")).await.json;
    assert_eq!(f["name"], "F1", "{f}");
    server.stop().await;
}

#[tokio::test]
async fn ui_times_are_relative_with_the_utc_time_in_a_tooltip() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let pid = created(&admin, "/api/projects", json!({"name": "Clocked"})).await;
    server.clock.advance(180);
    let page = admin.get(&format!("/projects/{pid}")).await;
    let created_at = admin.get(&format!("/api/projects/{pid}")).await.json["created_at"]
        .as_str()
        .unwrap()
        .to_string();
    let iso = format!("{}Z", &created_at[..19]);
    let absolute = format!("{} {} UTC", &created_at[..10], &created_at[11..19]);
    let tag = format!(r#"<time datetime="{iso}" title="{absolute}">3 min ago</time>"#);
    assert!(page.body.contains(&tag), "{tag} not in:\n{}", page.body);
    // The list says the same, and no page keeps the old bare "YYYY-MM-DD HH:MM" form.
    let list = admin.get("/projects").await;
    assert!(list.body.contains(&tag), "{}", list.body);
    assert!(
        !list
            .body
            .contains(&format!(">{}<", created_at[..16].replace('T', " "))),
        "{}",
        list.body
    );
    // (Within the session's hour; an hour later it would have expired.)
    server.clock.advance(50 * 60);
    let page = admin.get(&format!("/projects/{pid}")).await;
    assert!(page.body.contains(">53 min ago</time>"), "{}", page.body);
    server.stop().await;
}

#[tokio::test]
async fn ui_statuses_read_as_words() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let pid = created(&admin, "/api/projects", json!({"name": "Labels"})).await;
    let fid = created(
        &admin,
        "/api/features",
        json!({"project_id": pid, "name": "Labelled"}),
    )
    .await;
    for st in ["spec", "in_progress"] {
        let r = admin
            .send(
                admin
                    .request(reqwest::Method::PUT, &format!("/api/features/{fid}"))
                    .json(&json!({"status": st})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let bid = created(
        &admin,
        "/api/bugs",
        json!({"project_id": pid, "title": "Won't", "severity": "low"}),
    )
    .await;
    let r = admin
        .send(
            admin
                .request(reqwest::Method::PUT, &format!("/api/bugs/{bid}"))
                .json(&json!({"status": "wont_fix"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let features = admin.get("/features").await;
    assert!(
        features
            .body
            .contains(r#"<span class="badge s-in_progress" data-feature-status="#),
        "{}",
        features.body
    );
    assert!(
        features.body.contains(">In progress</span>"),
        "{}",
        features.body
    );
    assert!(
        !features.body.contains(">in_progress<"),
        "{}",
        features.body
    );
    let feature = admin.get(&format!("/features/{fid}")).await;
    assert!(
        feature.body.contains(">In progress</span>"),
        "{}",
        feature.body
    );
    let bugs = admin.get("/bugs").await;
    assert!(
        bugs.body.contains(">Won&#39;t fix</span>") || bugs.body.contains(">Won&#x27;t fix</span>"),
        "{}",
        bugs.body
    );
    assert!(!bugs.body.contains(">wont_fix<"), "{}", bugs.body);
    server.stop().await;
}

#[tokio::test]
async fn ui_budgets_below_a_cent_keep_their_digits() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let r = admin
        .post_json(
            "/api/llm/budgets",
            &json!({"scope": "project", "target": "tiny", "period": "day", "limit_usd": 0.005}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let page = admin.get("/llm-metrics").await;
    assert!(
        page.body.contains(r#"<td class="num">$0.005</td>"#),
        "{}",
        page.body
    );
    assert!(!page.body.contains("$0.01<"), "{}", page.body);
    // The trend charts have a y axis with units.
    assert!(
        page.body.contains(r#"class="llm-ytick">0 req</text>"#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"class="llm-ytick">$0.00</text>"#),
        "{}",
        page.body
    );
    server.stop().await;
}

#[tokio::test]
async fn ui_bug_from_an_error_asks_for_its_project_and_keeps_the_message() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let w = server.token("admin").await;
    let alpha = created(&admin, "/api/projects", json!({"name": "alpha"})).await;
    created(&admin, "/api/projects", json!({"name": "zeta"})).await;
    let gid = report_error(&w, "KeyError", "user 4213 has no key 'avatar'", "checkout").await;

    // No project is named like the source: the form asks instead of picking "alpha".
    let page = admin.get(&format!("/errors/{gid}")).await;
    assert!(
        page.body
            .contains(r#"<option value="" selected disabled>choose a project…</option>"#),
        "{}",
        page.body
    );
    assert!(
        !page
            .body
            .contains(&format!(r#"<option value="{alpha}" selected>"#)),
        "{}",
        page.body
    );
    // Submitting without a choice is refused and creates nothing.
    let r = admin
        .post_form(&format!("/errors/{gid}/create-bug"), &[("project_id", "")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.headers["location"].to_str().unwrap().to_string();
    assert!(to.contains("error="), "{to}");
    assert_eq!(
        admin.get("/api/bugs").await.json.as_array().map(Vec::len),
        Some(0)
    );
    // With a project, the bug's title is the message as reported, not the grouping key.
    let r = admin
        .post_form(
            &format!("/errors/{gid}/create-bug"),
            &[("project_id", &alpha.to_string())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let bugs = admin.get("/api/bugs").await.json;
    let title = bugs[0]["title"].as_str().unwrap_or_default().to_string();
    assert_eq!(title, "KeyError: user 4213 has no key 'avatar'", "{bugs}");
    assert!(!title.contains("<num>") && !title.contains("<str>"));

    // A source named like a project still picks that project.
    let gid = report_error(&w, "Boom", "boom 1", "zeta").await;
    let page = admin.get(&format!("/errors/{gid}")).await;
    assert!(!page.body.contains("choose a project…"), "{}", page.body);
    server.stop().await;
}

#[tokio::test]
async fn ui_milestone_pickers_group_by_project() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let a = created(&admin, "/api/projects", json!({"name": "Aardvark"})).await;
    let b = created(&admin, "/api/projects", json!({"name": "Badger"})).await;
    let ma = created(
        &admin,
        "/api/milestones",
        json!({"project_id": a, "name": "A-one"}),
    )
    .await;
    let mb = created(
        &admin,
        "/api/milestones",
        json!({"project_id": b, "name": "B-one"}),
    )
    .await;
    for path in ["/features", "/bugs"] {
        let page = admin.get(path).await;
        let want_a = format!(
            r#"<optgroup label="Aardvark" data-project="{a}"><option value="{ma}">A-one</option></optgroup>"#
        );
        let want_b = format!(
            r#"<optgroup label="Badger" data-project="{b}"><option value="{mb}">B-one</option></optgroup>"#
        );
        assert!(page.body.contains(&want_a), "{path}: {}", page.body);
        assert!(page.body.contains(&want_b), "{path}: {}", page.body);
        assert!(page.body.contains(r#"data-filter-by="project_id""#));
    }
    server.stop().await;
}

#[tokio::test]
async fn ui_tasks_name_their_workers_and_workers_count_attempts_plainly() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let w = server.token("worker").await;
    let wid = crate::tasks::register(&w, "builder-7").await;
    let tid = crate::tasks::enqueue(
        &admin_token(&server).await,
        json!({"type": "report", "max_retries": 0}),
    )
    .await;
    let r = w
        .post_json("/api/tasks/claim", &json!({"worker_id": wid}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["task"]["id"], tid, "{}", r.body);
    let list = admin.get("/tasks").await;
    assert!(
        list.body.contains(&format!(
            r#"<a href="/tasks?worker_id={wid}">builder-7</a>"#
        )),
        "{}",
        list.body
    );
    assert!(!list.body.contains(&format!(">#{wid}<")), "{}", list.body);
    let detail = admin.get(&format!("/tasks/{tid}")).await;
    assert!(detail.body.contains(">builder-7</a>"), "{}", detail.body);
    let workers = admin.get("/workers").await;
    assert!(
        workers.body.contains(">Attempts failed</th>"),
        "{}",
        workers.body
    );
    assert!(!workers.body.contains(r#"<th class="num">Failed</th>"#));
    assert!(workers
        .body
        .contains(r#"<span class="badge s-failed">Failed</span>"#));
    server.stop().await;
}

async fn admin_token(server: &TestServer) -> Session {
    server.token("admin").await
}

// ---- in the browser ----

/// A server with something on every panel.
async fn seeded() -> (TestServer, i64) {
    let server = TestServer::start_with(|c| {
        c.agents.assigner = false;
        c.agents.tmux_socket = Some(format!("arch-ui-none-{:x}", rand::random::<u64>()));
    })
    .await;
    let admin = server.admin().await;
    let w = server.token("admin").await;
    let long =
        "a-rather-long-unbroken-identifier-that-would-push-a-narrow-page-sideways-0123456789";
    let pid = created(
        &admin,
        "/api/projects",
        json!({"name": "Storefront with a long name", "description": long, "source_path": format!("/home/dev/gitrepos/{long}"), "tags": ["web", "rust"]}),
    )
    .await;
    let mid = created(
        &admin,
        "/api/milestones",
        json!({"project_id": pid, "name": "Launch"}),
    )
    .await;
    created(
        &admin,
        "/api/features",
        json!({"project_id": pid, "name": format!("Checkout {long}"), "milestone_id": mid, "assignee": "alice"}),
    )
    .await;
    created(
        &admin,
        "/api/bugs",
        json!({"project_id": pid, "title": "Cart total off by one cent", "severity": "high"}),
    )
    .await;
    created(
        &admin,
        "/api/devops-tasks",
        json!({"title": "Nightly backup", "category": "backup", "schedule": "0 3 * * *"}),
    )
    .await;
    let gid = report_error(
        &w,
        "ValueError",
        &format!("invalid literal for int() with base 10: '{long}'"),
        "checkout-service",
    )
    .await;
    let wk = server.token("worker").await;
    let wid = crate::tasks::register(&wk, "builder-1").await;
    for (ty, prio) in [("report", 1), ("deploy", 2), ("custom.thing", 3)] {
        crate::tasks::enqueue(&w, json!({"type": ty, "priority": prio, "project_id": pid, "tags": ["a-tag-forty-seven-characters-long-for-the-row"]})).await;
    }
    let r = wk
        .post_json("/api/tasks/claim", &json!({"worker_id": wid}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = w
        .post_json(
            "/api/llm/budgets",
            &json!({"scope": "project", "target": "storefront", "period": "day", "limit_usd": 0.005}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // A week of gateway traffic, so the LLM charts have bars to put on their axes.
    use architect::llm::ledger::{LedgerRow, Outcome};
    let now = server.clock.now();
    let rows: Vec<LedgerRow> = (0..7i64)
        .flat_map(|day| {
            let at = architect::clock::format(now - time::Duration::days(day));
            (0..(day % 4 + 1)).map(move |i| LedgerRow {
                at: at.clone(),
                provider: Some(architect::llm::ProviderId::Claude),
                model: "claude-sonnet".into(),
                requested_model: "claude-sonnet".into(),
                format: architect::llm::Format::Anthropic,
                caller_token_id: None,
                caller: "architect".into(),
                project: Some("storefront".into()),
                input_tokens: 1200 + 300 * day as u64,
                output_tokens: 400,
                cost_nanos: 1_500_000 * (day + 1),
                estimated: false,
                outcome: if i == 1 { Outcome::Failed } else { Outcome::Ok },
                status: if i == 1 { 500 } else { 200 },
                latency_ms: 800,
                stream: false,
                failovers: 0,
                error: None,
            })
        })
        .collect();
    architect::llm::store::insert_batch(&server.state().db, &rows, &[])
        .await
        .expect("ledger rows");
    (server, gid)
}

/// Every panel at 390 × 844 (a phone): the page never scrolls sideways, and the navigation
/// sits behind a button that opens it without JavaScript.
#[tokio::test(flavor = "multi_thread")]
async fn ui_browser_phone_width_has_no_sideways_scroll() {
    if !browser_available() {
        return;
    }
    let (server, gid) = seeded().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open_with(&driver, &tmp.path().join("profile"), Some((390, 844))).await;
    log_in(&b, &server).await;

    let error_page = format!("/errors/{gid}");
    let pages = [
        "/projects",
        "/features",
        "/bugs",
        "/errors",
        error_page.as_str(),
        "/tasks",
        "/workers",
        "/nodes",
        "/tmux",
        "/assigner",
        "/interactions",
        "/llm-metrics",
        "/vault",
        "/activity",
        "/users",
    ];
    let mut wide = Vec::new();
    for path in pages {
        b.goto(&format!("{}{path}", server.url)).await;
        b.element("main#content").await;
        let v = b
            .eval("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        let (scroll, inner) = (v[0].as_i64().unwrap_or(-1), v[1].as_i64().unwrap_or(-1));
        assert_eq!(inner, 390, "{path}: the emulated phone is 390 px wide");
        let name = format!("ui-phone{}", path.replace('/', "-"));
        b.screenshot(&name).await;
        if scroll > inner {
            // Name the elements that stick out, to make a failure easy to fix.
            let culprits = b
                .eval(
                    "var w = window.innerWidth, out = [];
                     document.querySelectorAll('body *').forEach(function (e) {
                       var r = e.getBoundingClientRect();
                       if (r.right > w + 1 && out.length < 8) out.push(e.tagName + '.' + e.className + ' ' + Math.round(r.right));
                     });
                     return out;",
                )
                .await;
            wide.push(format!(
                "{path}: scrollWidth {scroll} > {inner}: {culprits}"
            ));
        }
    }
    assert!(
        wide.is_empty(),
        "pages wider than the phone:\n{}",
        wide.join("\n")
    );

    // The navigation is folded away behind its button, and opens without any script.
    b.goto(&format!("{}/projects", server.url)).await;
    let shown = "return getComputedStyle(document.querySelector('.nav-links')).display;";
    assert_eq!(b.eval(shown).await, "none");
    let button = "return getComputedStyle(document.querySelector('.nav-button')).display;";
    assert_ne!(b.eval(button).await, "none");
    b.click(".nav-button").await;
    assert_eq!(b.eval(shown).await, "block");
    b.screenshot("ui-phone-nav-open").await;
    b.click(".nav-links a[href='/bugs']").await;
    b.wait_url(&format!("{}/bugs", server.url)).await;

    b.quit().await;
    drop(driver);
    server.stop().await;
}

/// `prefers-color-scheme: dark` turns the whole page dark (no panel left white), and light
/// stays light. Screenshots of both for a look.
#[tokio::test(flavor = "multi_thread")]
async fn ui_browser_dark_mode_follows_the_system() {
    if !browser_available() {
        return;
    }
    let (server, gid) = seeded().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &tmp.path().join("profile")).await;
    log_in(&b, &server).await;
    b.resize(1400, 1800).await;
    // Luminance (0-255) of an element's computed background.
    let lum = |css: &str| {
        format!(
            "var c = getComputedStyle(document.querySelector('{css}')).backgroundColor.match(/\\d+/g).map(Number);
             return Math.round(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]);"
        )
    };
    let error_page = format!("/errors/{gid}");
    for scheme in ["light", "dark"] {
        b.color_scheme(scheme).await;
        for path in ["/tasks", error_page.as_str(), "/llm-metrics", "/features"] {
            b.goto(&format!("{}{path}", server.url)).await;
            b.element("main#content").await;
            let body = b.eval(&lum("body")).await.as_i64().unwrap_or(-1);
            let card = b.eval(&lum(".card")).await.as_i64().unwrap_or(-1);
            let input = b
                .eval(&lum("main select, main button:not(.primary)"))
                .await
                .as_i64()
                .unwrap_or(-1);
            if scheme == "dark" {
                assert!(
                    body < 60 && card < 60 && input < 60,
                    "{path} in dark mode: body {body}, card {card}, input {input}"
                );
            } else {
                assert!(
                    body > 200 && card > 200 && input > 200,
                    "{path} in light mode: body {body}, card {card}, input {input}"
                );
            }
            b.screenshot(&format!("ui-{scheme}{}", path.replace('/', "-")))
                .await;
        }
    }
    b.quit().await;
    drop(driver);
    server.stop().await;
}

/// The first Tab lands on "Skip to content", and following it puts the focus in `<main>`.
/// The task form shows only the chosen type's fields, and task states get distinct badges.
#[tokio::test(flavor = "multi_thread")]
async fn ui_browser_skip_link_task_form_and_badges() {
    if !browser_available() {
        return;
    }
    let (server, _) = seeded().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &tmp.path().join("profile")).await;
    log_in(&b, &server).await;

    b.goto(&format!("{}/tasks", server.url)).await;
    b.element("main#content").await;
    b.press("\u{E004}").await;
    let focused = b
        .eval("var a = document.activeElement; return [a.textContent, a.getAttribute('href')];")
        .await;
    assert_eq!(focused, json!(["Skip to content", "#content"]));
    b.screenshot("ui-skip-link").await;
    b.press("\u{E007}").await;
    b.wait("the focus in <main>", || async {
        let id = b.eval("return document.activeElement.id;").await;
        (id == "content").then_some(())
    })
    .await;

    // The create form: only the chosen type's fieldsets show.
    let visible = |name: &str| {
        format!("var e = document.querySelector('#task-form [name={name}]'); return !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);")
    };
    let pick = |ty: &str| {
        format!("var s = document.getElementById('task-type'); s.value = '{ty}'; s.dispatchEvent(new Event('change')); return s.value;")
    };
    assert_eq!(b.eval(&pick("shell")).await, "shell");
    assert_eq!(b.eval(&visible("command")).await, true);
    assert_eq!(b.eval(&visible("repo")).await, false);
    assert_eq!(b.eval(&visible("code")).await, false);
    assert_eq!(b.eval(&visible("payload")).await, false);
    assert_eq!(b.eval(&pick("git")).await, "git");
    assert_eq!(b.eval(&visible("command")).await, false);
    assert_eq!(b.eval(&visible("repo")).await, true);
    assert_eq!(b.eval(&visible("priority")).await, true);
    b.screenshot("ui-task-form-git").await;

    // The counts strip shows a badge per task state; no two share a colour.
    let colours = b
        .eval(
            "var out = {};
             ['pending', 'running', 'completed', 'failed', 'dead', 'cancelled'].forEach(function (s) {
               var e = document.querySelector('.counts .badge.s-' + s);
               out[s] = e ? getComputedStyle(e).backgroundColor + ' ' + getComputedStyle(e).color : null;
             });
             return out;",
        )
        .await;
    let values: Vec<&str> = colours
        .as_object()
        .expect("colours")
        .values()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("a state has no badge: {colours}"))
        })
        .collect();
    let distinct: std::collections::BTreeSet<&str> = values.iter().copied().collect();
    assert_eq!(distinct.len(), 6, "task badges share colours: {colours}");

    // The milestone picker narrows to the chosen project.
    let admin = server.admin().await;
    let other = created(&admin, "/api/projects", json!({"name": "Other"})).await;
    created(
        &admin,
        "/api/milestones",
        json!({"project_id": other, "name": "Elsewhere"}),
    )
    .await;
    b.goto(&format!("{}/features", server.url)).await;
    b.element("#new-feature").await;
    let groups = "return Array.from(document.querySelectorAll('#new-feature optgroup')).filter(function (g) { return !g.disabled && !g.hidden; }).map(function (g) { return g.label; });";
    let choose = |project: String| {
        format!(
            "var s = document.querySelector('#new-feature select[name=project_id]');
             s.value = Array.from(s.options).find(function (o) {{ return o.text === '{project}'; }}).value;
             s.dispatchEvent(new Event('change')); return s.value;"
        )
    };
    b.eval(&choose("Storefront with a long name".into())).await;
    assert_eq!(b.eval(groups).await, json!(["Storefront with a long name"]));
    assert_eq!(b.eval(&choose("Other".into())).await, other.to_string());
    assert_eq!(b.eval(groups).await, json!(["Other"]));
    b.screenshot("ui-features-milestones").await;

    b.quit().await;
    drop(driver);
    server.stop().await;
}

#[test]
fn ui_time_and_money_formats() {
    // Covered here as well as in src/web (unit tests) because the dashboard's look depends on
    // them: relative text both ways, escaping of what is not a time.
    use architect::web::{at, label, money};
    let now = architect::clock::parse("2026-11-26T11:13:05.000000Z").unwrap();
    let past = at(now, "2026-11-26T11:10:05.000000Z").to_string();
    assert_eq!(
        past,
        r#"<time datetime="2026-11-26T11:10:05Z" title="2026-11-26 11:10:05 UTC">3 min ago</time>"#
    );
    assert!(at(now, "2026-11-26T13:13:05.000000Z")
        .to_string()
        .contains(">in 2 h</time>"));
    assert_eq!(
        at(now, "<b>never</b>").to_string(),
        "&lt;b&gt;never&lt;/b&gt;"
    );
    assert_eq!(label("in_progress"), "In progress");
    assert_eq!(label("wont_fix"), "Won't fix");
    assert_eq!(money(0.005), "$0.005");
    assert_eq!(money(0.0123), "$0.01");
    assert_eq!(money(0.00123), "$0.0012");
    assert_eq!(money(12.346), "$12.35");
    assert_eq!(money(0.0), "$0.00");
}
