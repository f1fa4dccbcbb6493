//! The dashboard over real HTTP, without a browser: login and redirects, every panel, CSRF on
//! form posts, escaping, the page forms and filters, roles, users and tokens, the session
//! frame (banner, status bar, expiry modal), static assets and the 404 pages.

use crate::support::{Resp, Session, TestServer, ADMIN, ADMIN_PASSWORD};
use serde_json::{json, Value};

const REDIRECT: [u16; 3] = [302, 303, 307];

/// The panels of the sidebar that work, with the title their page shows.
const BUILT_PANELS: &[(&str, &str)] = &[
    ("/projects", "Projects"),
    ("/milestones", "Milestones"),
    ("/features", "Features"),
    ("/bugs", "Bugs"),
    ("/devops", "DevOps tasks"),
    ("/activity", "Activity"),
    ("/users", "Users & tokens"),
    ("/account", "Account"),
    ("/tasks", "Tasks"),
    ("/testing", "Testing"),
    ("/workers", "Workers"),
    ("/vault", "Vault"),
    ("/nodes", "Nodes"),
    ("/errors", "Errors"),
    ("/llm-metrics", "LLM metrics"),
    ("/tmux", "tmux"),
    ("/assigner", "Assigner"),
    ("/autopilot", "Autopilot"),
    ("/documentation", "Documentation"),
];

/// The panels later work fills, with their sidebar label (none left: every panel is built).
const UNBUILT_PANELS: &[(&str, &str)] = &[];

fn header(r: &Resp, name: &str) -> String {
    r.headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("\n")
}

fn location(r: &Resp) -> String {
    header(r, "location")
}

/// The value of `key` in the query string of a same-site URL like `/login?next=...`.
fn query_value(url: &str, key: &str) -> Option<String> {
    let (_, q) = url.split_once('?')?;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Text as askama writes it into HTML (numeric entities).
fn esc_numeric(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Text as most other escapers write it (named entities).
fn esc_named(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Does `body` show `text` HTML-escaped (with either entity style)?
fn shows(body: &str, text: &str) -> bool {
    body.contains(&esc_numeric(text)) || body.contains(&esc_named(text))
}

/// Does `body` contain `before`, then `text` escaped (either style), then `after`?
fn wraps(body: &str, before: &str, text: &str, after: &str) -> bool {
    body.contains(&format!("{before}{}{after}", esc_numeric(text)))
        || body.contains(&format!("{before}{}{after}", esc_named(text)))
}

/// The `content` of `<meta name="csrf-token">`.
fn meta_csrf(body: &str) -> Option<String> {
    let start = body.find(r#"<meta name="csrf-token" content=""#)?
        + r#"<meta name="csrf-token" content=""#.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

/// The text inside the first element that starts with `open` (up to the next `</`).
fn inner_text(body: &str, open: &str) -> Option<String> {
    let at = body.find(open)?;
    let gt = body[at..].find('>')? + at + 1;
    let end = body[gt..].find("</")? + gt;
    Some(body[gt..end].trim().to_string())
}

/// A dashboard form post exactly like `Session::post_form`, but WITHOUT the csrf_token field.
async fn post_form_without_csrf(s: &Session, path: &str, fields: &[(&str, &str)]) -> Resp {
    s.send(s.http.post(format!("{}{}", s.base, path)).form(fields))
        .await
}

/// A dashboard form post with a wrong csrf_token field.
async fn post_form_wrong_csrf(s: &Session, path: &str, fields: &[(&str, &str)]) -> Resp {
    let mut all = fields.to_vec();
    all.push(("csrf_token", "not-the-token"));
    s.send(s.http.post(format!("{}{}", s.base, path)).form(&all))
        .await
}

/// A signed-out client posting the login form.
async fn post_login_form(
    server: &TestServer,
    user: &str,
    password: &str,
    next: Option<&str>,
) -> (Session, Resp) {
    let s = server.anon();
    let mut fields = vec![("username", user), ("password", password)];
    if let Some(n) = next {
        fields.push(("next", n));
    }
    let r = s
        .send(s.http.post(format!("{}/login", s.base)).form(&fields))
        .await;
    (s, r)
}

/// Follows a form post's redirect with the same session and returns the page.
async fn follow(s: &Session, r: &Resp) -> Resp {
    assert!(
        REDIRECT.contains(&r.status),
        "expected a redirect, got {}: {}",
        r.status,
        r.body
    );
    let to = location(r);
    assert!(
        to.starts_with('/') && !to.starts_with("//"),
        "redirect must stay on the site: {to:?}"
    );
    let page = s.get(&to).await;
    assert_eq!(page.status, 200, "GET {to}: {}", page.body);
    page
}

async fn api_list(s: &Session, path: &str) -> Vec<Value> {
    let r = s.get(path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("GET {path} is not a JSON array: {}", r.body))
}

async fn api_create(s: &Session, path: &str, body: Value) -> Value {
    let r = s.post_json(path, &body).await;
    assert_eq!(r.status, 201, "POST {path} {body}: {}", r.body);
    r.json
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

fn names_in(list: &[Value], key: &str) -> Vec<String> {
    list.iter()
        .filter_map(|v| v[key].as_str().map(str::to_string))
        .collect()
}

fn assert_html(r: &Resp, what: &str) {
    let ct = header(r, "content-type");
    assert!(ct.starts_with("text/html"), "{what}: content-type {ct:?}");
}

// ---------------------------------------------------------------------------------------------
// signing in
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn signed_out_pages_redirect_to_login_with_next() {
    let server = TestServer::start().await;
    let anon = server.anon();
    let mut paths: Vec<&str> = vec![
        "/",
        "/projects/1",
        "/features?status=draft&q=login",
        "/bugs/7",
    ];
    paths.extend(BUILT_PANELS.iter().map(|(p, _)| *p));
    paths.extend(UNBUILT_PANELS.iter().map(|(p, _)| *p));
    for path in paths {
        let r = anon.get(path).await;
        assert!(
            REDIRECT.contains(&r.status),
            "GET {path} signed out: {} {}",
            r.status,
            r.body
        );
        let to = location(&r);
        assert!(to.starts_with("/login?"), "GET {path} redirects to {to:?}");
        assert_eq!(
            query_value(&to, "next").as_deref(),
            Some(path),
            "next of {to:?}"
        );
        // The login page keeps `next` for the form.
        let page = anon.get(&to).await;
        assert_eq!(page.status, 200, "GET {to}: {}", page.body);
        assert_html(&page, &to);
        assert!(
            page.body.contains(r#"id="login-form""#),
            "login form on {to}"
        );
        assert!(
            wraps(&page.body, r#"name="next" value=""#, path, "\""),
            "hidden next={path} on {to}: {}",
            page.body
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_form_sets_http_only_lax_cookie_and_redirects_to_next() {
    let server = TestServer::start().await;
    let (s, r) = post_login_form(
        &server,
        ADMIN,
        ADMIN_PASSWORD,
        Some("/features?status=draft"),
    )
    .await;
    assert!(REDIRECT.contains(&r.status), "{} {}", r.status, r.body);
    assert_eq!(location(&r), "/features?status=draft");
    let cookie = header(&r, "set-cookie");
    assert!(cookie.starts_with("architect_session="), "{cookie}");
    assert!(
        cookie.len() > "architect_session=".len() + 16,
        "a real session secret: {cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "not Secure unless SESSION_COOKIE_SECURE: {cookie}"
    );
    // The cookie is a working session.
    let page = s.get("/features?status=draft").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(ADMIN), "the page names the user");
    // Without `next` the form goes home.
    let (_, r) = post_login_form(&server, ADMIN, ADMIN_PASSWORD, None).await;
    assert!(REDIRECT.contains(&r.status));
    assert_eq!(location(&r), "/");
}

#[tokio::test(flavor = "multi_thread")]
async fn session_cookie_is_secure_when_configured() {
    let server = TestServer::start_with(|c| c.session_cookie_secure = true).await;
    let (_, r) = post_login_form(&server, ADMIN, ADMIN_PASSWORD, Some("/projects")).await;
    assert!(REDIRECT.contains(&r.status), "{} {}", r.status, r.body);
    let cookie = header(&r, "set-cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_form_never_redirects_off_site() {
    let server = TestServer::start().await;
    for next in [
        "https://evil.example",
        "https://evil.example/projects",
        "http://evil.example",
        "//evil.example",
        "//evil.example/projects",
        "/\\evil.example",
        "\\\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "projects",
        "",
    ] {
        let (_, r) = post_login_form(&server, ADMIN, ADMIN_PASSWORD, Some(next)).await;
        assert!(
            REDIRECT.contains(&r.status),
            "next={next:?}: {} {}",
            r.status,
            r.body
        );
        assert_eq!(location(&r), "/", "next={next:?} must go home");
    }
    // The login page does not carry an off-site next into its form either.
    let page = server
        .anon()
        .get("/login?next=https%3A%2F%2Fevil.example")
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("evil.example"), "{}", page.body);
    assert!(
        page.body.contains(r#"name="next" value="/""#),
        "{}",
        page.body
    );
}

/// Browsers drop tabs and newlines inside URLs, so `/<TAB>/evil.example` in a Location header
/// is followed as `//evil.example`; and a newline cannot even be put in a header.
#[tokio::test(flavor = "multi_thread")]
async fn login_next_with_control_characters_goes_home() {
    let server = TestServer::start().await;
    let mut wrong = Vec::new();
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/x\r\nSet-Cookie: pwned=1",
    ] {
        let (_, r) = post_login_form(&server, ADMIN, ADMIN_PASSWORD, Some(next)).await;
        if !REDIRECT.contains(&r.status) || location(&r) != "/" {
            wrong.push(format!(
                "next={next:?} -> {} location={:?} body={:?}",
                r.status,
                location(&r),
                r.body
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "each must redirect to /:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_rerenders_login_with_401_and_same_message_for_unknown_user() {
    let server = TestServer::start().await;
    let (_, wrong) = post_login_form(&server, ADMIN, "not-the-password", Some("/bugs")).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_html(&wrong, "wrong password");
    assert!(
        wrong.body.contains(r#"id="login-form""#),
        "the login page again"
    );
    assert!(
        header(&wrong, "set-cookie").is_empty(),
        "no session cookie on failure"
    );
    assert!(
        wrong.body.contains(&format!(r#"value="{ADMIN}""#)),
        "the username is kept"
    );
    assert!(
        wrong.body.contains(r#"name="next" value="/bugs""#),
        "next is kept"
    );
    let msg_wrong = inner_text(&wrong.body, r#"<div class="flash err""#).expect("an error message");
    assert!(!msg_wrong.is_empty());

    let (_, unknown) = post_login_form(&server, "nobody-here", "not-the-password", None).await;
    assert_eq!(unknown.status, 401, "{}", unknown.body);
    let msg_unknown =
        inner_text(&unknown.body, r#"<div class="flash err""#).expect("an error message");
    assert_eq!(
        msg_wrong, msg_unknown,
        "the message must not tell whether the user exists"
    );
    assert!(
        !unknown.body.contains(&esc_numeric("not-the-password")),
        "the password is not echoed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_form_ends_the_session() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let r = admin.post_form("/logout", &[]).await;
    assert!(REDIRECT.contains(&r.status), "{} {}", r.status, r.body);
    assert!(location(&r).starts_with("/login"), "{}", location(&r));
    assert!(
        header(&r, "set-cookie").contains("Max-Age=0"),
        "the cookie is cleared"
    );
    let after = admin.get("/projects").await;
    assert!(
        REDIRECT.contains(&after.status),
        "signed out now: {}",
        after.status
    );
}

// ---------------------------------------------------------------------------------------------
// panels
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn every_sidebar_panel_answers_200_for_the_admin() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let home = admin.get("/").await;
    assert_eq!(home.status, 200, "the overview is the home page");
    assert!(
        wraps(&home.body, "<h1>", "Overview", "</h1>"),
        "{}",
        home.body
    );
    for (path, title) in BUILT_PANELS {
        let r = admin.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert_html(&r, path);
        assert!(
            wraps(&r.body, "<h1>", title, "</h1>"),
            "GET {path}: title {title:?}"
        );
        // The whole sidebar is on every page.
        for (href, _) in BUILT_PANELS
            .iter()
            .chain(UNBUILT_PANELS)
            .filter(|(h, _)| *h != "/account")
        {
            assert!(
                r.body.contains(&format!(r#"href="{href}""#)),
                "GET {path}: sidebar link {href}"
            );
        }
        assert!(
            r.body.contains(r#"href="/account""#),
            "GET {path}: account link"
        );
    }
    // The current panel is marked.
    let r = admin.get("/bugs").await;
    assert!(
        r.body.contains(r#"href="/bugs" class="active""#),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unbuilt_panels_say_plainly_they_are_not_available_yet() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    // The list is the whole truth: a sidebar link marked unbuilt that is not listed fails.
    let home = admin.get("/").await;
    let marked = home.body.matches(" soon\"").count() + home.body.matches("\"soon\"").count();
    assert_eq!(
        marked,
        UNBUILT_PANELS.len(),
        "sidebar links marked unbuilt vs UNBUILT_PANELS: {}",
        home.body
    );
    for (path, label) in UNBUILT_PANELS {
        let r = admin.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert_html(&r, path);
        assert!(
            r.body.contains(&format!("{label} is not available yet")),
            "GET {path}: {}",
            r.body
        );
        assert!(
            r.body
                .contains(&format!(r#"href="{path}" class="active soon""#)),
            "GET {path}: marked active and soon"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_carry_the_session_csrf_token() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let r = admin.get("/api/csrf/token").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json["csrf_token"]
        .as_str()
        .expect("csrf_token")
        .to_string();
    assert!(!token.is_empty());
    assert_eq!(token, admin.csrf, "the same token the login answered");
    for (path, _) in BUILT_PANELS.iter().chain(UNBUILT_PANELS) {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "GET {path}");
        assert_eq!(
            meta_csrf(&page.body).as_deref(),
            Some(token.as_str()),
            "GET {path}: meta csrf-token"
        );
        // Every form of the page carries it too.
        let forms = page.body.matches("<form method=\"post\"").count();
        let fields = page
            .body
            .matches(&format!(r#"name="csrf_token" value="{token}""#))
            .count();
        assert_eq!(
            forms, fields,
            "GET {path}: every post form has the csrf field"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn user_text_is_html_escaped() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let evil = "<script>alert(1)</script>";
    let p = api_create(
        &admin,
        "/api/projects",
        json!({"name": evil, "description": "<b>bold</b>", "tags": ["<i>t</i>"]}),
    )
    .await;
    let pid = id_of(&p);
    let f = api_create(&admin, "/api/features", json!({"project_id": pid, "name": "<img src=x onerror=alert(2)>", "assignee": "\"><svg onload=alert(3)>"})).await;
    let b = api_create(
        &admin,
        "/api/bugs",
        json!({"project_id": pid, "title": "<iframe src=javascript:alert(4)>"}),
    )
    .await;
    let m = api_create(
        &admin,
        "/api/milestones",
        json!({"project_id": pid, "name": "<u>m</u>"}),
    )
    .await;
    let raws = [
        evil,
        "<b>bold</b>",
        "<i>t</i>",
        "<img src=x onerror=alert(2)>",
        "\"><svg onload=alert(3)>",
        "<iframe src=javascript:alert(4)>",
        "<u>m</u>",
    ];
    let pages = [
        "/projects".to_string(),
        format!("/projects/{pid}"),
        "/features".to_string(),
        format!("/features/{}", id_of(&f)),
        "/bugs".to_string(),
        format!("/bugs/{}", id_of(&b)),
        "/milestones".to_string(),
        format!("/milestones/{}", id_of(&m)),
        "/activity".to_string(),
    ];
    for path in &pages {
        let r = admin.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        for raw in raws {
            assert!(!r.body.contains(raw), "GET {path} contains the raw {raw:?}");
        }
    }
    let projects = admin.get("/projects").await;
    assert!(
        projects.body.contains("&lt;script&gt;") || projects.body.contains("&#60;script&#62;"),
        "the name is shown escaped"
    );
    assert!(shows(&projects.body, evil));
    let detail = admin.get(&format!("/projects/{pid}")).await;
    assert!(
        shows(&detail.body, &format!("Project: {evil}")),
        "escaped in the title too"
    );
    let features = admin.get("/features").await;
    assert!(shows(&features.body, "<img src=x onerror=alert(2)>"));
    assert!(
        shows(&features.body, evil),
        "project names in the table and pickers are escaped"
    );

    // Flash messages carry user text too: a created name and a crafted ?error=.
    let r = admin
        .post_form(
            "/projects",
            &[
                ("name", "\"><script>alert(5)</script>"),
                ("status", "active"),
            ],
        )
        .await;
    let page = follow(&admin, &r).await;
    assert!(
        !page.body.contains("<script>alert(5)</script>"),
        "notice escaped"
    );
    assert!(
        shows(&page.body, "\"><script>alert(5)</script>"),
        "notice shows the name: {}",
        page.body
    );
    let crafted = admin
        .get("/projects?error=%3Cscript%3Ealert(6)%3C%2Fscript%3E")
        .await;
    assert_eq!(crafted.status, 200);
    assert!(!crafted.body.contains("<script>alert(6)</script>"));
    assert!(shows(&crafted.body, "<script>alert(6)</script>"));
}

// ---------------------------------------------------------------------------------------------
// forms
// ---------------------------------------------------------------------------------------------

/// Posts a create form, checks the 303 to `list?notice=...`, the notice on that page and the
/// item in the list page; returns the page.
async fn create_by_form(s: &Session, list: &str, fields: &[(&str, &str)], shown: &str) -> Resp {
    let r = s.post_form(list, fields).await;
    assert_eq!(r.status, 303, "POST {list}: {}", r.body);
    let to = location(&r);
    assert!(
        to.starts_with(&format!("{list}?notice=")),
        "POST {list} redirects to {to:?}"
    );
    let page = follow(s, &r).await;
    let notice = query_value(&to, "notice").expect("notice");
    assert!(shows(&page.body, &notice), "notice {notice:?} on {to}");
    assert!(
        page.body.contains(r#"class="flash ok""#),
        "notice styled on {to}"
    );
    let listed = s.get(list).await;
    assert_eq!(listed.status, 200);
    assert!(shows(&listed.body, shown), "{shown:?} listed on {list}");
    listed
}

#[tokio::test(flavor = "multi_thread")]
async fn page_forms_create_projects_milestones_features_bugs_and_devops_tasks() {
    let server = TestServer::start().await;
    let admin = server.admin().await;

    create_by_form(
        &admin,
        "/projects",
        &[
            ("name", "Apollo"),
            ("description", "Moon shot"),
            ("source_path", "/srv/apollo"),
            ("tags", "rust, web"),
            ("status", "active"),
        ],
        "Apollo",
    )
    .await;
    let projects = api_list(&admin, "/api/projects").await;
    let p = projects
        .iter()
        .find(|p| p["name"] == "Apollo")
        .expect("Apollo in the API");
    assert_eq!(p["description"], "Moon shot");
    assert_eq!(p["source_path"], "/srv/apollo");
    assert_eq!(p["tags"], json!(["rust", "web"]));
    assert_eq!(p["status"], "active");
    let pid = id_of(p).to_string();

    create_by_form(
        &admin,
        "/milestones",
        &[
            ("project_id", &pid),
            ("name", "Liftoff"),
            ("description", ""),
            ("target_date", "2030-07-16"),
            ("status", "planned"),
        ],
        "Liftoff",
    )
    .await;
    let ms = api_list(&admin, "/api/milestones").await;
    let m = ms
        .iter()
        .find(|m| m["name"] == "Liftoff")
        .expect("Liftoff in the API");
    assert_eq!(m["project_id"].to_string(), pid);
    assert_eq!(m["target_date"], "2030-07-16");
    let mid = id_of(m).to_string();

    create_by_form(
        &admin,
        "/features",
        &[
            ("project_id", &pid),
            ("name", "Guidance computer"),
            ("description", "AGC"),
            ("milestone_id", &mid),
            ("priority", "7"),
            ("assignee", "margaret"),
        ],
        "Guidance computer",
    )
    .await;
    let fs = api_list(&admin, "/api/features").await;
    let f = fs
        .iter()
        .find(|f| f["name"] == "Guidance computer")
        .expect("feature in the API");
    assert_eq!(f["status"], "draft");
    assert_eq!(f["priority"], 7);
    assert_eq!(f["assignee"], "margaret");
    assert_eq!(f["milestone_id"].to_string(), mid);

    create_by_form(
        &admin,
        "/bugs",
        &[
            ("project_id", &pid),
            ("title", "Alarm 1202"),
            ("description", "executive overflow"),
            ("severity", "high"),
            ("milestone_id", ""),
            ("assignee", ""),
        ],
        "Alarm 1202",
    )
    .await;
    let bs = api_list(&admin, "/api/bugs").await;
    let b = bs
        .iter()
        .find(|b| b["title"] == "Alarm 1202")
        .expect("bug in the API");
    assert_eq!(b["severity"], "high");
    assert_eq!(b["status"], "open");
    assert_eq!(b["assignee"], Value::Null, "an empty form field means none");

    create_by_form(
        &admin,
        "/devops",
        &[
            ("title", "Nightly backup"),
            ("project_id", ""),
            ("category", "backup"),
            ("description", ""),
            ("priority", "2"),
            ("schedule", "0 3 * * *"),
        ],
        "Nightly backup",
    )
    .await;
    let ts = api_list(&admin, "/api/devops-tasks").await;
    let t = ts
        .iter()
        .find(|t| t["title"] == "Nightly backup")
        .expect("task in the API");
    assert_eq!(t["category"], "backup");
    assert_eq!(t["schedule"], "0 3 * * *");
    assert_eq!(t["project_id"], Value::Null);

    // A failing form comes back with the error and what was typed, creating nothing.
    let r = admin
        .post_form("/projects", &[("name", "Apollo"), ("status", "active")])
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains(r#"class="flash err""#), "{}", r.body);
    assert!(r.body.contains(r#"value="Apollo""#), "{}", r.body);
    assert_eq!(
        api_list(&admin, "/api/projects").await.len(),
        1,
        "no duplicate project"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn form_posts_without_the_csrf_field_are_refused_and_create_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let p = api_create(&admin, "/api/projects", json!({"name": "Existing"})).await;
    let pid = id_of(&p).to_string();
    let f = api_create(
        &admin,
        "/api/features",
        json!({"project_id": p["id"], "name": "Existing feature"}),
    )
    .await;
    let fid = id_of(&f);

    let forms: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/projects", vec![("name", "Sneaky"), ("status", "active")]),
        (
            "/milestones",
            vec![
                ("project_id", &pid),
                ("name", "Sneaky"),
                ("status", "planned"),
            ],
        ),
        ("/features", vec![("project_id", &pid), ("name", "Sneaky")]),
        (
            "/bugs",
            vec![
                ("project_id", &pid),
                ("title", "Sneaky"),
                ("severity", "low"),
            ],
        ),
        ("/devops", vec![("title", "Sneaky"), ("category", "other")]),
        (
            "/users",
            vec![
                ("username", "sneaky"),
                ("password", "password-123"),
                ("role", "admin"),
            ],
        ),
        ("/tokens", vec![("name", "Sneaky"), ("scope", "admin")]),
    ];
    for (path, fields) in &forms {
        let r = post_form_without_csrf(&admin, path, fields).await;
        assert_eq!(r.status, 403, "POST {path} without csrf_token: {}", r.body);
        let r = post_form_wrong_csrf(&admin, path, fields).await;
        assert_eq!(
            r.status, 403,
            "POST {path} with a wrong csrf_token: {}",
            r.body
        );
    }
    let status_path = format!("/features/{fid}/status");
    let r = post_form_without_csrf(&admin, &status_path, &[("status", "spec")]).await;
    assert_eq!(
        r.status, 403,
        "POST {status_path} without csrf_token: {}",
        r.body
    );

    assert_eq!(
        names_in(&api_list(&admin, "/api/projects").await, "name"),
        ["Existing"]
    );
    assert!(api_list(&admin, "/api/milestones").await.is_empty());
    assert_eq!(
        names_in(&api_list(&admin, "/api/features").await, "name"),
        ["Existing feature"]
    );
    assert!(api_list(&admin, "/api/bugs").await.is_empty());
    assert!(api_list(&admin, "/api/devops-tasks").await.is_empty());
    assert!(!names_in(&api_list(&admin, "/api/users").await, "username")
        .contains(&"sneaky".to_string()));
    assert!(
        !names_in(&api_list(&admin, "/api/tokens").await, "name").contains(&"Sneaky".to_string())
    );
    let detail = admin.get(&format!("/api/features/{fid}")).await;
    assert_eq!(detail.json["status"], "draft");
}

async fn feature_json(s: &Session, id: i64) -> Value {
    let r = s.get(&format!("/api/features/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json
}

#[tokio::test(flavor = "multi_thread")]
async fn feature_status_form_moves_allowed_transitions_and_refuses_others() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let p = api_create(&admin, "/api/projects", json!({"name": "Workflow"})).await;
    let f = api_create(
        &admin,
        "/api/features",
        json!({"project_id": p["id"], "name": "Status dance"}),
    )
    .await;
    let fid = id_of(&f);
    let path = format!("/features/{fid}/status");

    // Allowed: draft -> spec, back to the list with a notice.
    let r = admin
        .post_form(
            &path,
            &[
                ("status", "spec"),
                ("comment", "written up"),
                ("back", "/features"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        location(&r).starts_with("/features?notice="),
        "{}",
        location(&r)
    );
    let page = follow(&admin, &r).await;
    assert!(
        page.body
            .contains(&format!(r#"data-feature-status="{fid}">Spec<"#)),
        "the table shows spec"
    );
    let d = feature_json(&admin, fid).await;
    assert_eq!(d["status"], "spec");
    let history = d["history"].as_array().cloned().unwrap_or_default();
    assert!(
        history
            .iter()
            .any(|h| h["to_status"] == "spec" && h["comment"] == "written up"),
        "{d}"
    );

    // Not allowed: spec -> completed. Back with an error; nothing changes.
    let r = admin
        .post_form(&path, &[("status", "completed"), ("back", "/features")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = location(&r);
    assert!(to.starts_with("/features?error="), "{to}");
    let error = query_value(&to, "error").expect("error");
    assert!(
        error.contains("completed") && error.contains("in_progress"),
        "names the move and the allowed ones: {error}"
    );
    let page = follow(&admin, &r).await;
    assert!(
        page.body.contains(r#"class="flash err""#) && shows(&page.body, &error),
        "{}",
        page.body
    );
    assert_eq!(feature_json(&admin, fid).await["status"], "spec");

    // An unknown status is an error too.
    let r = admin
        .post_form(&path, &[("status", "shipped"), ("back", "/features")])
        .await;
    assert!(
        location(&r).starts_with("/features?error="),
        "{}",
        location(&r)
    );
    assert_eq!(feature_json(&admin, fid).await["status"], "spec");

    // Without `back` (the detail page's form) it returns to the feature; an off-site `back`
    // is ignored.
    let r = admin.post_form(&path, &[("status", "in_progress")]).await;
    assert!(
        location(&r).starts_with(&format!("/features/{fid}?notice=")),
        "{}",
        location(&r)
    );
    let r = admin
        .post_form(&path, &[("status", "review"), ("back", "//evil.example")])
        .await;
    assert!(
        location(&r).starts_with(&format!("/features/{fid}?notice=")),
        "{}",
        location(&r)
    );
    assert_eq!(feature_json(&admin, fid).await["status"], "review");
}

/// The status forms' `back` field is checked like the login's `next`: a tab or newline in it
/// must not produce an off-site (or broken) Location.
#[tokio::test(flavor = "multi_thread")]
async fn status_form_back_with_control_characters_stays_on_site() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let p = api_create(&admin, "/api/projects", json!({"name": "Backs"})).await;
    let f = api_create(
        &admin,
        "/api/features",
        json!({"project_id": p["id"], "name": "Back and forth"}),
    )
    .await;
    let fid = id_of(&f);
    let mut wrong = Vec::new();
    for (status, back) in [("spec", "/\t/evil.example"), ("draft", "/\n/evil.example")] {
        let r = admin
            .post_form(
                &format!("/features/{fid}/status"),
                &[("status", status), ("back", back)],
            )
            .await;
        let to = location(&r);
        if r.status != 303 || !to.starts_with(&format!("/features/{fid}?")) {
            wrong.push(format!(
                "back={back:?} -> {} location={to:?} body={:?}",
                r.status, r.body
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "each must redirect to the feature:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn feature_and_bug_filters_narrow_the_table() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let a = id_of(&api_create(&admin, "/api/projects", json!({"name": "Project Ash"})).await);
    let b = id_of(&api_create(&admin, "/api/projects", json!({"name": "Project Birch"})).await);
    api_create(
        &admin,
        "/api/features",
        json!({"project_id": a, "name": "Ash login flow"}),
    )
    .await;
    let spec = api_create(
        &admin,
        "/api/features",
        json!({"project_id": a, "name": "Ash search box", "description": "zebra index"}),
    )
    .await;
    api_create(
        &admin,
        "/api/features",
        json!({"project_id": b, "name": "Birch exporter"}),
    )
    .await;
    let r = admin
        .put_json(
            &format!("/api/features/{}", id_of(&spec)),
            &json!({"status": "spec"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let all = ["Ash login flow", "Ash search box", "Birch exporter"];
    let check = |path: String, expect: Vec<&'static str>, universe: [&'static str; 3]| {
        let admin = &admin;
        async move {
            let r = admin.get(&path).await;
            assert_eq!(r.status, 200, "GET {path}: {}", r.body);
            for name in universe {
                assert_eq!(
                    r.body.contains(name),
                    expect.contains(&name),
                    "GET {path}: {name} shown? expected {}",
                    expect.contains(&name)
                );
            }
        }
    };
    check("/features".into(), all.to_vec(), all).await;
    check("/features?status=spec".into(), vec!["Ash search box"], all).await;
    check(
        "/features?status=draft".into(),
        vec!["Ash login flow", "Birch exporter"],
        all,
    )
    .await;
    check(
        format!("/features?project_id={a}"),
        vec!["Ash login flow", "Ash search box"],
        all,
    )
    .await;
    check(
        format!("/features?project_id={b}"),
        vec!["Birch exporter"],
        all,
    )
    .await;
    check("/features?q=exporter".into(), vec!["Birch exporter"], all).await;
    check("/features?q=zebra".into(), vec!["Ash search box"], all).await;
    check(
        format!("/features?project_id={a}&status=draft"),
        vec!["Ash login flow"],
        all,
    )
    .await;
    check("/features?status=completed".into(), vec![], all).await;
    let none = admin.get("/features?q=nothing-matches-this").await;
    assert!(
        none.body.contains("match these filters"),
        "an empty filtered table says so"
    );

    api_create(
        &admin,
        "/api/bugs",
        json!({"project_id": a, "title": "Ash crash on start", "severity": "critical"}),
    )
    .await;
    let open = api_create(
        &admin,
        "/api/bugs",
        json!({"project_id": a, "title": "Ash typo in footer", "severity": "low"}),
    )
    .await;
    api_create(&admin, "/api/bugs", json!({"project_id": b, "title": "Birch slow export", "severity": "high", "description": "quokka"})).await;
    let r = admin
        .put_json(
            &format!("/api/bugs/{}", id_of(&open)),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let bugs = [
        "Ash crash on start",
        "Ash typo in footer",
        "Birch slow export",
    ];
    check("/bugs".into(), bugs.to_vec(), bugs).await;
    check(
        "/bugs?status=resolved".into(),
        vec!["Ash typo in footer"],
        bugs,
    )
    .await;
    check(
        "/bugs?status=open".into(),
        vec!["Ash crash on start", "Birch slow export"],
        bugs,
    )
    .await;
    check(
        format!("/bugs?project_id={b}"),
        vec!["Birch slow export"],
        bugs,
    )
    .await;
    check(
        format!("/bugs?project_id={a}"),
        vec!["Ash crash on start", "Ash typo in footer"],
        bugs,
    )
    .await;
    check("/bugs?q=crash".into(), vec!["Ash crash on start"], bugs).await;
    check("/bugs?q=quokka".into(), vec!["Birch slow export"], bugs).await;
    check(
        "/bugs?severity=critical".into(),
        vec!["Ash crash on start"],
        bugs,
    )
    .await;

    // The filter keeps its choices selected.
    let r = admin
        .get(&format!("/bugs?project_id={b}&status=open"))
        .await;
    assert!(
        r.body
            .contains(&format!(r#"<option value="{b}" selected>"#)),
        "project stays selected"
    );
    assert!(
        r.body.contains(r#"<option value="open" selected>"#),
        "status stays selected"
    );

    // A bad filter value is an error page, not a crash.
    let r = admin.get("/features?status=nonsense").await;
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    assert_html(&r, "bad filter");
}

/// The filter forms' "any" options submit empty values (`?status=&project_id=`), which is what
/// a browser sends when someone only types a search word and presses Filter.
#[tokio::test(flavor = "multi_thread")]
async fn filter_forms_submitted_with_any_values_show_everything() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let p = id_of(&api_create(&admin, "/api/projects", json!({"name": "Cedar"})).await);
    api_create(
        &admin,
        "/api/milestones",
        json!({"project_id": p, "name": "Cedar M1"}),
    )
    .await;
    api_create(
        &admin,
        "/api/features",
        json!({"project_id": p, "name": "Cedar feature"}),
    )
    .await;
    api_create(
        &admin,
        "/api/bugs",
        json!({"project_id": p, "title": "Cedar bug"}),
    )
    .await;
    api_create(&admin, "/api/devops-tasks", json!({"title": "Cedar chore"})).await;
    for (path, shown) in [
        ("/projects?q=&status=&include_archived=", "Cedar"),
        ("/milestones?project_id=&status=", "Cedar M1"),
        ("/features?q=&project_id=&status=", "Cedar feature"),
        ("/features?q=cedar&project_id=&status=", "Cedar feature"),
        ("/bugs?q=&project_id=&status=&severity=", "Cedar bug"),
        ("/devops?project_id=&status=&category=", "Cedar chore"),
        ("/activity?entity=&actor=&since=", "project"),
    ] {
        let r = admin.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert!(r.body.contains(shown), "GET {path} shows {shown}");
    }
}

// ---------------------------------------------------------------------------------------------
// roles, users and tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_sees_the_pages_but_no_forms_and_cannot_post() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let p = api_create(&admin, "/api/projects", json!({"name": "Visible"})).await;
    let pid = id_of(&p).to_string();
    let f = api_create(
        &admin,
        "/api/features",
        json!({"project_id": p["id"], "name": "Visible feature"}),
    )
    .await;
    let fid = id_of(&f);
    api_create(
        &admin,
        "/api/bugs",
        json!({"project_id": p["id"], "title": "Visible bug"}),
    )
    .await;

    let viewer = server.user("vera", "viewer").await;
    for (path, _) in BUILT_PANELS {
        let r = viewer.get(path).await;
        assert_eq!(r.status, 200, "viewer GET {path}: {}", r.body);
        assert!(
            !r.body.contains("+ New"),
            "viewer GET {path} shows a + New form"
        );
        assert!(
            !r.body.contains("/status\" class=\"inline\""),
            "viewer GET {path} shows a status form"
        );
    }
    let features = viewer.get("/features").await;
    assert!(features.body.contains("Visible feature"));
    assert!(!features
        .body
        .contains(&format!("action=\"/features/{fid}/status\"")));
    let users = viewer.get("/users").await;
    assert!(
        !users.body.contains(r#"action="/users""#),
        "no new-user form for a viewer"
    );

    for (path, fields) in [
        (
            "/projects",
            vec![("name", "By viewer"), ("status", "active")],
        ),
        (
            "/features",
            vec![("project_id", pid.as_str()), ("name", "By viewer")],
        ),
        (
            "/bugs",
            vec![
                ("project_id", pid.as_str()),
                ("title", "By viewer"),
                ("severity", "low"),
            ],
        ),
        (
            "/devops",
            vec![("title", "By viewer"), ("category", "other")],
        ),
        (
            "/milestones",
            vec![
                ("project_id", pid.as_str()),
                ("name", "By viewer"),
                ("status", "planned"),
            ],
        ),
        (
            "/users",
            vec![
                ("username", "by-viewer"),
                ("password", "password-123"),
                ("role", "admin"),
            ],
        ),
    ] {
        let r = viewer.post_form(path, &fields).await;
        assert_eq!(r.status, 403, "viewer POST {path}: {}", r.body);
    }
    let r = viewer
        .post_form(&format!("/features/{fid}/status"), &[("status", "spec")])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    for (list, key) in [
        ("/api/projects", "name"),
        ("/api/features", "name"),
        ("/api/bugs", "title"),
        ("/api/devops-tasks", "title"),
        ("/api/milestones", "name"),
    ] {
        assert!(
            !names_in(&api_list(&admin, list).await, key)
                .iter()
                .any(|n| n == "By viewer"),
            "{list}"
        );
    }
    assert!(!names_in(&api_list(&admin, "/api/users").await, "username")
        .contains(&"by-viewer".to_string()));
    assert_eq!(
        admin.get(&format!("/api/features/{fid}")).await.json["status"],
        "draft"
    );

    // A member does get the forms.
    let member = server.user("mia", "member").await;
    assert!(member.get("/projects").await.body.contains("+ New Project"));
}

#[tokio::test(flavor = "multi_thread")]
async fn users_page_creates_users_and_shows_a_new_token_once() {
    let server = TestServer::start().await;
    let admin = server.admin().await;

    let r = admin
        .post_form(
            "/users",
            &[
                ("username", "newbie"),
                ("password", "newbie-password"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        location(&r).starts_with("/users?notice="),
        "{}",
        location(&r)
    );
    let page = follow(&admin, &r).await;
    assert!(page.body.contains("newbie"), "the new user is listed");
    let users = api_list(&admin, "/api/users").await;
    let u = users
        .iter()
        .find(|u| u["username"] == "newbie")
        .expect("newbie in the API");
    assert_eq!(u["role"], "member");
    server.login("newbie", "newbie-password").await;

    let r = admin
        .post_form(
            "/tokens",
            &[
                ("name", "laptop CLI"),
                ("scope", "admin"),
                ("expires_in_days", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        header(&r, "cache-control").contains("no-store"),
        "a page with a secret is not cached"
    );
    let secret = inner_text(&r.body, r#"<div class="token-once" id="new-token""#)
        .expect("the token is shown");
    assert!(secret.len() >= 20, "{secret:?}");
    assert!(r.body.contains("laptop CLI"));

    let bearer = Session::new(&server.url, Some(secret.clone()));
    let r = bearer.get("/api/projects").await;
    assert_eq!(r.status, 200, "the new token works: {}", r.body);

    // Never shown again.
    let again = admin.get("/users").await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("laptop CLI"), "listed by name");
    assert!(
        !again.body.contains(&secret),
        "the secret is not shown again"
    );
    let tokens = admin.get("/api/tokens").await;
    assert!(!tokens.body.contains(&secret));
}

// ---------------------------------------------------------------------------------------------
// the page frame
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn default_password_banner_shows_only_with_the_default_password() {
    let server = TestServer::start_with(|c| c.admin_password = "peace5".into()).await;
    let admin = server.login(ADMIN, "peace5").await;
    let page = admin.get("/projects").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"class="banner warn""#),
        "banner with the default password"
    );
    assert!(page.body.contains("default password"));
    assert!(
        page.body.contains("ARCHITECT_PASSWORD"),
        "says how to fix it"
    );
    let login = server.anon().get("/login").await;
    assert!(
        login.body.contains("default admin password"),
        "the login page warns too"
    );

    let server = TestServer::start().await;
    let admin = server.admin().await;
    for (path, _) in BUILT_PANELS {
        let page = admin.get(path).await;
        assert!(
            !page.body.contains(r#"class="banner warn""#),
            "no banner on {path} with a real password"
        );
    }
    let login = server.anon().get("/login").await;
    assert!(!login.body.contains("default admin password"));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_bar_shows_the_session_time_left() {
    for timeout in [3600_i64, 600] {
        let server = TestServer::start_with(|c| c.session_timeout = timeout as u64).await;
        let admin = server.admin().await;
        let page = admin.get("/projects").await;
        // "60m 00s" style, rendered from the session's expiry; a second may have passed.
        let text =
            inner_text(&page.body, r#"<span id="session-left""#).expect("the status bar countdown");
        let (m, rest) = text.split_once("m ").unwrap_or_else(|| panic!("{text:?}"));
        let secs: i64 = m.parse::<i64>().expect("minutes") * 60
            + rest.trim_end_matches('s').parse::<i64>().expect("seconds");
        assert!(
            (timeout - 5..=timeout).contains(&secs),
            "timeout {timeout}: status bar says {text:?}"
        );
        assert!(page.body.contains(&format!(
            "Session: <span id=\"session-left\">{text}</span> left"
        )));
        let attr = page
            .body
            .split("data-expires-in=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("data-expires-in");
        let attr: i64 = attr.parse().expect("a number of seconds");
        assert!(
            (timeout - 5..=timeout).contains(&attr),
            "data-expires-in={attr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn session_expiry_modal_markup_is_present() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for path in ["/projects", "/users", "/errors"] {
        let page = admin.get(path).await;
        assert!(
            page.body.contains(r#"<div id="session-modal""#),
            "GET {path}"
        );
        assert!(page.body.contains("Stay Logged In"), "GET {path}");
        assert!(page.body.contains(r#"id="session-stay""#), "GET {path}");
        assert!(
            page.body.contains(r#"<script src="/static/app.js""#),
            "GET {path}: the script that drives it"
        );
    }
}

/// What the modal's buttons do, driven the way app.js drives them: "Stay Logged In" posts
/// /api/session/extend with the page's meta token; when time runs out the pages send the
/// browser to the login page, which says why.
#[tokio::test(flavor = "multi_thread")]
async fn session_modal_actions_extend_and_expire_the_session() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let page = admin.get("/projects").await;
    let meta = meta_csrf(&page.body).expect("meta csrf-token");
    server.clock.advance(3500);
    let left = admin.get("/api/session").await;
    assert_eq!(left.status, 200, "{}", left.body);
    let before = left.json["seconds_left"].as_i64().expect("seconds_left");
    assert!(
        (90..=100).contains(&before),
        "about 100s left: {}",
        left.body
    );

    let stay = admin
        .send(
            admin
                .http
                .post(format!("{}/api/session/extend", admin.base))
                .header("X-CSRF-Token", &meta),
        )
        .await;
    assert_eq!(stay.status, 200, "{}", stay.body);
    let after = stay.json["seconds_left"].as_i64().expect("seconds_left");
    assert!(after > 3500, "extended to the full timeout: {}", stay.body);
    let no_token = admin
        .send(
            admin
                .http
                .post(format!("{}/api/session/extend", admin.base)),
        )
        .await;
    assert_eq!(
        no_token.status, 403,
        "extend without the token: {}",
        no_token.body
    );

    server.clock.advance(3601);
    let r = admin.get("/features").await;
    assert!(
        REDIRECT.contains(&r.status),
        "expired session: {} {}",
        r.status,
        r.body
    );
    assert!(location(&r).starts_with("/login?"), "{}", location(&r));
    assert_eq!(
        query_value(&location(&r), "next").as_deref(),
        Some("/features")
    );
    let login = server.anon().get("/login?expired=1&next=%2Ffeatures").await;
    assert!(
        login.body.contains("Your session expired"),
        "{}",
        login.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn static_assets_are_served_with_their_content_types() {
    let server = TestServer::start().await;
    let anon = server.anon();
    let css = anon.get("/static/app.css").await;
    assert_eq!(css.status, 200);
    assert!(
        header(&css, "content-type").starts_with("text/css"),
        "{}",
        header(&css, "content-type")
    );
    assert!(!css.body.is_empty());
    let js = anon.get("/static/app.js").await;
    assert_eq!(js.status, 200);
    let ct = header(&js, "content-type");
    assert!(
        ct.starts_with("text/javascript") || ct.starts_with("application/javascript"),
        "{ct}"
    );
    assert!(js.body.contains("session-modal"));
    let missing = anon.get("/static/nope.js").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_pages_are_404_html_and_unknown_api_routes_404_json() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for s in [&admin, &server.anon()] {
        let page = s.get("/nope").await;
        assert_eq!(page.status, 404, "{}", page.body);
        assert_html(&page, "/nope");
        assert!(page.body.contains("404"), "{}", page.body);
        let api = s.get("/api/nope").await;
        assert_eq!(api.status, 404, "{}", api.body);
        assert!(header(&api, "content-type").starts_with("application/json"));
        assert_eq!(api.json["code"], "not_found", "{}", api.body);
        assert!(api.json["error"].is_string());
    }
    let missing = admin.get("/projects/999999").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_html(&missing, "/projects/999999");
}
