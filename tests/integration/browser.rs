//! End-to-end through a real browser: Debian's Chromium, headless, driven by chromedriver over
//! the W3C WebDriver protocol (spoken directly with reqwest; no WebDriver client crate).
//!
//! The test logs in through the login form, creates a project and a feature from the
//! dashboard, moves the feature from draft to spec on its page and checks the change on the
//! page and through the JSON API. Screenshots land in `target/screenshots/`.
//!
//! Without chromium and chromedriver the test prints why and passes, unless `CI` is set: then
//! it fails, so a CI image without a browser cannot hide the test.

use crate::support::{TestServer, ADMIN, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long anything asynchronous (driver start-up, page loads, redirects) may take.
const TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);
/// The W3C name of the key under which an element reference travels.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

// ---- chromedriver process ----

/// A running chromedriver; killed when dropped (also when the test panics).
pub(crate) struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until `/status` says it is ready.
    pub(crate) async fn start(dir: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = dir.join("chromedriver.log");
        let out = std::fs::File::create(&log).expect("chromedriver log file");
        let err = out.try_clone().expect("chromedriver log file");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("chromedriver starts");
        let mut driver = Driver { child, port, log };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "chromedriver exited with {status} at start-up:\n{}",
                    driver.log_text()
                );
            }
            let ready = match http.get(format!("{}/status", driver.url())).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready after {TIMEOUT:?}:\n{}",
                driver.log_text()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- a WebDriver session: the few commands the test needs ----

pub(crate) struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    port: u16,
    id: String,
    closed: bool,
}

impl Browser {
    /// Opens headless Chromium with a fresh profile in `profile`.
    pub(crate) async fn open(driver: &Driver, profile: &Path) -> Browser {
        Browser::open_with(driver, profile, None).await
    }

    /// [`Browser::open`], emulating a phone's screen (`width` × `height` CSS pixels, touch,
    /// the mobile viewport) when `phone` is given.
    pub(crate) async fn open_with(
        driver: &Driver,
        profile: &Path,
        phone: Option<(u32, u32)>,
    ) -> Browser {
        let mut options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if let Some((width, height)) = phone {
            options["mobileEmulation"] = json!({"deviceMetrics": {
                "width": width, "height": height, "pixelRatio": 2.0, "touch": true, "mobile": true,
            }});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let http = reqwest::Client::new();
        let value = call(
            &http,
            reqwest::Method::POST,
            &format!("{}/session", driver.url()),
            Some(caps),
        )
        .await
        .unwrap_or_else(|e| panic!("new WebDriver session: {e}\n{}", driver.log_text()));
        let id = value["sessionId"].as_str().expect("sessionId").to_string();
        Browser {
            http,
            session: format!("{}/session/{id}", driver.url()),
            port: driver.port,
            id,
            closed: false,
        }
    }

    pub(crate) async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        call(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    pub(crate) async fn current_url(&self) -> String {
        let v = self
            .cmd(reqwest::Method::GET, "/url", None)
            .await
            .expect("current URL");
        v.as_str().unwrap_or_default().to_string()
    }

    /// The element matching a CSS selector, or the WebDriver error (e.g. "no such element").
    pub(crate) async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element reference in {v}"))
    }

    /// Waits until `css` matches, then returns the element.
    pub(crate) async fn element(&self, css: &str) -> String {
        self.wait(&format!("element {css}"), || async move {
            self.find(css).await.ok()
        })
        .await
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub(crate) async fn click(&self, css: &str) {
        let el = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The rendered text of the element matching `css`, if there is one right now.
    pub(crate) async fn text(&self, css: &str) -> Option<String> {
        let el = self.find(css).await.ok()?;
        let v = self
            .cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await
            .ok()?;
        v.as_str().map(str::to_string)
    }

    /// Waits until the element matching `css` shows text that contains `want`.
    pub(crate) async fn wait_text(&self, css: &str, want: &str) -> String {
        self.wait(&format!("{css} to contain {want:?}"), || async move {
            self.text(css).await.filter(|t| t.contains(want))
        })
        .await
    }

    /// Waits until the browser is on a URL that starts with `prefix`; returns the URL.
    pub(crate) async fn wait_url(&self, prefix: &str) -> String {
        self.wait(&format!("a URL starting with {prefix}"), || async move {
            Some(self.current_url().await).filter(|u| u.starts_with(prefix))
        })
        .await
    }

    /// Runs `js` (a function body; `return` gives the value) in the page.
    pub(crate) async fn script(&self, js: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
        .await
        .unwrap_or_else(|e| panic!("script {js:?}: {e}"))
    }

    /// Resizes the window (a taller one shows a whole long page in a screenshot).
    pub(crate) async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await
        .unwrap_or_else(|e| panic!("resize: {e}"));
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub(crate) async fn eval(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
        .unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// Presses and releases one key (a WebDriver key code such as `"\u{E004}"`, Tab) in
    /// whatever has the focus.
    pub(crate) async fn press(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key},
        ]}]});
        self.cmd(reqwest::Method::POST, "/actions", Some(actions))
            .await
            .unwrap_or_else(|e| panic!("press {key:?}: {e}"));
    }

    /// Emulates `prefers-color-scheme` (`"light"` or `"dark"`) through the DevTools protocol.
    pub(crate) async fn color_scheme(&self, scheme: &str) {
        let params = json!({"cmd": "Emulation.setEmulatedMedia", "params": {
            "features": [{"name": "prefers-color-scheme", "value": scheme}],
        }});
        self.cmd(reqwest::Method::POST, "/goog/cdp/execute", Some(params))
            .await
            .unwrap_or_else(|e| panic!("emulate {scheme}: {e}"));
    }

    /// Saves a PNG of the viewport to `target/screenshots/NAME.png`.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let path = self.try_screenshot(name).await.expect("screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    pub(crate) async fn try_screenshot(&self, name: &str) -> Result<PathBuf, String> {
        use base64::Engine as _;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, png))
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(path)
    }

    /// Polls `probe` until it yields a value; on timeout fails with the URL, the page text and
    /// a screenshot (`target/screenshots/failure.png`).
    pub(crate) async fn wait<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            if Instant::now() >= deadline {
                // Best effort: the browser itself may be what broke.
                let url = self.cmd(reqwest::Method::GET, "/url", None).await;
                let body = self.text("body").await.unwrap_or_default();
                let shot = match self.try_screenshot("failure").await {
                    Ok(p) => p.display().to_string(),
                    Err(e) => format!("none ({e})"),
                };
                panic!(
                    "timed out after {TIMEOUT:?} waiting for {what}\nURL: {url:?}\nscreenshot: {shot}\npage text:\n{body}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ends the session (Chromium exits).
    pub(crate) async fn quit(mut self) {
        self.closed = true;
        let url = self.session.clone();
        call(&self.http, reqwest::Method::DELETE, &url, None)
            .await
            .expect("delete session");
    }
}

/// If the test panicked with the session open, close it anyway so that Chromium exits before
/// chromedriver is killed. Drop cannot await, so this is a plain blocking HTTP request.
impl Drop for Browser {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.id, self.port
            );
            // chromedriver answers once Chromium has quit (it keeps the connection open, so
            // read the start of the answer, not to the end).
            let _ = s.read(&mut [0u8; 256]);
        }
    }
}

/// One WebDriver command: returns the response's `value`, or the error and its message.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("request to chromedriver failed: {e}"))?;
    let ok = resp.status().is_success();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| format!("chromedriver answer is not JSON: {e}"))?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if ok {
        Ok(value)
    } else {
        Err(format!(
            "{}: {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or("")
        ))
    }
}

/// True when the browser is installed; otherwise fails with the install line (or skips when
/// the person opted out, see `support::prerequisite`).
pub(crate) fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    crate::support::prerequisite(
        missing.is_empty(),
        &format!("the browser test's {}", missing.join(" and ")),
        "apt-get install chromium chromium-driver",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_login_project_feature_status() {
    if !browser_available() {
        return;
    }
    let started = Instant::now();
    let server = TestServer::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let profile = tmp.path().join("profile");
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &profile).await;

    // Signed out, the dashboard sends us to the login page.
    b.goto(&format!("{}/", server.url)).await;
    b.wait_url(&format!("{}/login", server.url)).await;
    b.element("#login-submit").await;
    b.screenshot("login").await;

    // Log in through the form; `/` then leads to the overview.
    b.type_into("#username", ADMIN).await;
    b.type_into("#password", ADMIN_PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text(".topbar h1", "Overview").await;
    b.wait_text(".topbar", ADMIN).await;
    b.goto(&format!("{}/projects", server.url)).await;

    // Create a project with the "+ New Project" form; it shows up in the table.
    let project = "Browser Test Project";
    let empty = b.wait_text("main", "No projects yet").await;
    assert!(!empty.contains(project));
    b.type_into("#project-name", project).await;
    b.click("#create-project").await;
    b.wait_text(".flash.ok", &format!("Project '{project}' created."))
        .await;
    b.wait_text("#projects-table", project).await;
    b.screenshot("projects").await;

    // Create a feature for it with the "+ New Feature" form (the project is preselected: it
    // is the only one).
    let feature = "Checkout via browser";
    b.goto(&format!("{}/features", server.url)).await;
    b.wait_text("#new-feature select[name=project_id]", project)
        .await;
    b.type_into("#new-feature input[name=name]", feature).await;
    b.type_into("#new-feature input[name=assignee]", "alice")
        .await;
    b.click("#new-feature button[type=submit]").await;
    b.wait_text(".flash.ok", &format!("Feature '{feature}' created."))
        .await;
    let row = b.wait_text("#features-table tbody tr", feature).await;
    assert!(
        row.contains(project) && row.contains("Draft"),
        "features row: {row}"
    );
    b.screenshot("features").await;

    // Open its page from the table and move it draft -> spec with the status form.
    b.click("#features-table a[href^='/features/']").await;
    let page = b.wait_url(&format!("{}/features/", server.url)).await;
    let id: i64 = page
        .rsplit('/')
        .next()
        .and_then(|s| s.split(['?', '#']).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("feature id in {page}"));
    assert_eq!(b.wait_text("#feature-status", "Draft").await, "Draft");
    b.click("#feature-next-status option[value='spec']").await;
    b.type_into("#feature-status-form input[name=comment]", "spec written")
        .await;
    b.click("#feature-status-submit").await;
    b.wait_text(".flash.ok", &format!("Feature '{feature}' is now spec."))
        .await;
    assert_eq!(b.wait_text("#feature-status", "Spec").await, "Spec");
    let history = b.wait_text("main table", "spec written").await;
    assert!(
        history.contains(ADMIN),
        "history names the actor: {history}"
    );
    b.screenshot("feature").await;

    // The JSON API agrees.
    let admin = server.admin().await;
    let r = admin.get(&format!("/api/features/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["name"], feature, "{}", r.body);
    assert_eq!(r.json["status"], "spec", "{}", r.body);
    let last = r.json["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["to_status"], "spec", "{}", r.body);
    assert_eq!(last["comment"], "spec written", "{}", r.body);

    b.quit().await;
    drop(driver);
    server.stop().await;
    eprintln!("browser test took {:.1?}", started.elapsed());
}

/// The agents panels with data, for a look: `/interactions` (a pending prompt, decisions,
/// patterns, a dry run) and `/assigner` (a delegation tree) and a prompt page.
#[tokio::test(flavor = "multi_thread")]
async fn browser_interactions_and_assigner_panels() {
    if !browser_available() {
        return;
    }
    use architect::agents::assigner::store as prompts;
    use architect::agents::permission_store::{self as pstore, NewInteraction};
    // The prompts' targets must be live sessions (docs/decisions/0006).
    let tmux = crate::agents::PrivateTmux::new();
    tmux.idle_sessions(&["architect", "dev_worker1", "dev_worker2", "codex"]);
    let socket = tmux.socket.clone();
    let server = TestServer::start_with(move |c| {
        c.agents.assigner = false;
        c.agents.tmux_socket = Some(socket);
    })
    .await;
    let admin = server.admin().await;
    let w = server.token("admin").await;
    for (name, tool, subject, decision) in [
        (
            "cargo is fine",
            "Bash",
            "^cargo (build|test|check)\\b",
            "approve",
        ),
        ("everything, carefully", ".*", "", "approve"),
        ("no writes to /etc", "Write|Edit", "^/etc/", "deny"),
    ] {
        let r = w
            .post_json(
                "/api/claude/patterns",
                &json!({"name": name, "tool_regex": tool, "subject_regex": subject, "decision": decision}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let db = &server.state().db;
    let now = server.clock.now_str();
    for (session, tool, cmd, path, decided) in [
        (
            "w1",
            "Bash",
            Some("cargo test --workspace"),
            None,
            Some(("approved", "pattern:1")),
        ),
        (
            "w2",
            "Write",
            None,
            Some("/etc/hosts"),
            Some(("denied", "pattern:3")),
        ),
        (
            "w1",
            "Bash",
            Some("make deploy"),
            None,
            Some(("denied", "user:alice")),
        ),
        (
            "w2",
            "Bash",
            Some("git push --force origin main"),
            None,
            None,
        ),
        ("w1", "Bash", Some("rm -rf ../shared/cache"), None, None),
    ] {
        let i = pstore::insert_interaction(
            db,
            &NewInteraction {
                node: "local",
                session,
                agent: "claude",
                tool,
                command: cmd,
                path,
                prompt_text: &format!(
                    "╭────────────────────────────╮\n│ {tool} command\n│\n│   {}\n│\n│ Do you want to proceed?\n│ ❯ 1. Yes\n│   2. No, and tell Claude what to do differently (esc)\n╰────────────────────────────╯",
                    cmd.or(path).unwrap_or("")
                ),
                source: if decided.is_some_and(|d| d.1.starts_with("pattern")) { "hook" } else { "pane" },
                fingerprint: None,
            },
            &now,
        )
        .await
        .unwrap()
        .expect("one pending interaction per session");
        if let Some((status, by)) = decided {
            pstore::decide_interaction(db, i.id, status, by, &now)
                .await
                .unwrap();
        }
    }
    let send = |body: Value| {
        let w = &w;
        async move {
            let r = w.post_json("/api/assigner/send", &body).await;
            assert_eq!(r.status, 201, "{}", r.body);
            r.json["prompt_id"].as_i64().unwrap()
        }
    };
    let root = send(json!({"content": "Plan and implement the login rework with JWT tokens", "target_session": "architect", "priority": 8})).await;
    let a = send(json!({"content": "Add the tokens table and its migration", "target_session": "dev_worker1", "parent_id": root})).await;
    let b = send(json!({"content": "Write the JWT middleware and tests", "target_session": "dev_worker2", "parent_id": root})).await;
    send(json!({"content": "Review the migration for SQLite and PostgreSQL", "target_session": "codex", "parent_id": a})).await;
    send(json!({"content": "Tidy the README"})).await;
    prompts::claim(db, a, "local", "dev_worker1", "t1", &now)
        .await
        .unwrap();
    prompts::mark_completed(db, a, "hook:Stop", "Added migration 0009_tokens.sql with tokens(id, user_id, hash, expires_at).\nAll 42 tests pass.", Some("/home/dev/.claude/projects/x/transcript.jsonl"), &now).await.unwrap();
    prompts::claim(db, b, "local", "dev_worker2", "t2", &now)
        .await
        .unwrap();
    prompts::mark_started(db, b, "pane:busy", &now)
        .await
        .unwrap();

    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &tmp.path().join("profile")).await;
    b.goto(&format!("{}/login", server.url)).await;
    b.type_into("#username", ADMIN).await;
    b.type_into("#password", ADMIN_PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text(".topbar h1", "Overview").await;

    b.resize(1400, 2200).await;
    b.goto(&format!("{}/interactions", server.url)).await;
    b.wait_text("#pending-table", "git push --force").await;
    b.click("#pending-table details summary").await;
    b.screenshot("interactions").await;
    b.wait_text("#patterns-table", "never-list").await;
    b.type_into("#dry-run-form input[name=tool]", "Bash").await;
    b.type_into("#dry-run-form input[name=subject]", "cargo test -p api")
        .await;
    b.click("#dry-run-form button[value=request]").await;
    b.wait_text("#dry-run-result", "pattern:1").await;
    b.screenshot("interactions-dry-run").await;
    b.type_into("#dry-run-form input[name=draft_tool_regex]", "Bash")
        .await;
    b.type_into("#dry-run-form input[name=draft_subject_regex]", "^make ")
        .await;
    b.click("#dry-run-form button[value=replay]").await;
    b.wait_text("#replay-table", "make deploy").await;
    b.screenshot("interactions-replay").await;
    b.click("#pending-table button[value=deny]").await;
    b.wait_text(".flash.err", "").await;
    b.screenshot("interactions-after-deny").await;

    b.goto(&format!("{}/assigner", server.url)).await;
    b.wait_text("#delegation-tree", "Review the migration")
        .await;
    b.screenshot("assigner").await;
    b.goto(&format!("{}/assigner/prompts/{a}", server.url))
        .await;
    b.wait_text("#prompt-response", "All 42 tests pass.").await;
    b.screenshot("assigner-prompt").await;
    drop(admin);
    b.quit().await;
    drop(driver);
    server.stop().await;
}

/// Logs in through the form and waits for the overview.
pub(crate) async fn log_in(b: &Browser, server: &TestServer) {
    b.goto(&format!("{}/login", server.url)).await;
    b.type_into("#username", ADMIN).await;
    b.type_into("#password", ADMIN_PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text(".topbar h1", "Overview").await;
}

/// Waits until the page's live stream is connected.
async fn live(b: &Browser) {
    b.wait("the live stream", || async move {
        (b.script("return document.body.getAttribute('data-live')")
            .await
            == "on")
            .then_some(())
    })
    .await;
}

/// A task that ends `dead`: no retries, one failure.
async fn dead_task(server: &TestServer) -> i64 {
    let admin = server.token("admin").await;
    let w = server.token("worker").await;
    let r = w
        .post_json(
            "/api/workers/register",
            &json!({"name": "w-live", "node": "test-node", "concurrency": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let wid = r.json["id"].as_i64().unwrap();
    let r = admin
        .post_json("/api/tasks", &json!({"type": "flaky", "max_retries": 0}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json["id"].as_i64().unwrap();
    let c = w
        .post_json("/api/tasks/claim", &json!({"worker_id": wid}))
        .await;
    let tok = c.json["task"]["lease_token"]
        .as_str()
        .unwrap_or_else(|| panic!("claimed: {}", c.body))
        .to_string();
    let r = w
        .post_json(
            &format!("/api/tasks/{id}/fail"),
            &json!({"lease_token": tok, "error": "boom"}),
        )
        .await;
    assert_eq!(r.json["status"], "dead", "{}", r.body);
    id
}

/// Live updates: an error reported while the Errors page is open shows up on it without a
/// reload; a task that dies while another page is open raises the Tasks badge; the overview's
/// numbers are the API's; at 390 px the overview does not scroll sideways.
#[tokio::test(flavor = "multi_thread")]
async fn browser_live_errors_badges_and_overview() {
    if !browser_available() {
        return;
    }
    let server = TestServer::start().await;
    let ingest = server.token("ingest").await;
    let report = |message: &'static str| {
        let ingest = &ingest;
        async move {
            let r = ingest
                .post_json(
                    "/api/errors",
                    &json!({"node_id": "web-1", "error_type": "TimeoutError", "source": "billing", "message": message}),
                )
                .await;
            assert!(r.status == 201 || r.status == 200, "{}", r.body);
        }
    };
    report("charge timed out for billing").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &tmp.path().join("profile")).await;
    log_in(&b, &server).await;

    // The Errors page is open; a new kind of error arrives; the page shows it, not reloaded.
    b.goto(&format!("{}/errors", server.url)).await;
    b.wait_text("main", "charge timed out for billing").await;
    live(&b).await;
    b.script("window.__not_reloaded = true; return null").await;
    let sent = Instant::now();
    report("disk is full on the database host").await;
    let _ = b
        .wait_text("main", "disk is full on the database host")
        .await;
    eprintln!(
        "a new error showed on the open page {:?} after it was reported",
        sent.elapsed()
    );
    assert_eq!(
        b.script("return window.__not_reloaded === true").await,
        true,
        "the page was updated in place, not reloaded"
    );
    b.screenshot("live-errors").await;

    // The Tasks badge counts a task that dies while the Errors page is open.
    assert_eq!(
        b.script("return document.querySelector('[data-badge=tasks]').hidden")
            .await,
        true,
        "no badge before anything is dead"
    );
    dead_task(&server).await;
    b.wait_text("[data-badge=tasks]", "1").await;
    // The Errors badge counts the two new groups.
    b.wait_text("[data-badge=errors]", "2").await;
    b.screenshot("live-badge").await;

    // The overview's numbers are the API's (and the domain APIs' own counts).
    let admin = server.admin().await;
    b.goto(&format!("{}/", server.url)).await;
    b.wait_text("#ov-needs-you", "Dead tasks").await;
    let api = admin.get("/api/overview").await;
    assert_eq!(api.status, 200, "{}", api.body);
    let dead = admin.get("/api/tasks?status=dead").await;
    let open_errors = admin.get("/api/errors?status=open").await;
    let nodes = admin.get("/api/nodes").await;
    let count = |v: &Value| -> i64 {
        v.as_array()
            .or_else(|| v["items"].as_array())
            .or_else(|| v["tasks"].as_array())
            .or_else(|| v["errors"].as_array())
            .or_else(|| v["nodes"].as_array())
            .map(|a| a.len() as i64)
            .unwrap_or_else(|| panic!("a list in {v}"))
    };
    let online = nodes
        .json
        .as_array()
        .or_else(|| nodes.json["nodes"].as_array())
        .map(|a| a.iter().filter(|n| n["status"] == "online").count() as i64)
        .unwrap();
    for (sel, api_value, domain) in [
        (
            "[data-ov='tasks.dead']",
            &api.json["tasks"]["dead"],
            Some(count(&dead.json)),
        ),
        (
            "[data-ov='errors.unresolved']",
            &api.json["errors"]["unresolved"],
            Some(count(&open_errors.json)),
        ),
        (
            "[data-ov='nodes.online']",
            &api.json["nodes"]["online"],
            Some(online),
        ),
        ("[data-ov='bugs.open']", &api.json["bugs"]["open"], None),
        (
            "[data-ov='tasks.pending']",
            &api.json["tasks"]["pending"],
            None,
        ),
    ] {
        let shown: i64 = b
            .text(sel)
            .await
            .unwrap_or_else(|| panic!("{sel} on the overview"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{sel} is a number: {e}"));
        assert_eq!(Some(shown), api_value.as_i64(), "{sel} vs /api/overview");
        if let Some(d) = domain {
            assert_eq!(shown, d, "{sel} vs the domain's own list API");
        }
    }
    assert_eq!(api.json["errors"]["unresolved"], 2, "{}", api.body);
    assert_eq!(api.json["badges"]["tasks"], 1, "{}", api.body);
    b.resize(1400, 1000).await;
    b.screenshot("overview").await;

    // No sideways scrolling on a phone.
    b.resize(390, 844).await;
    b.goto(&format!("{}/", server.url)).await;
    b.wait_text("#ov-needs-you", "Dead tasks").await;
    let (scroll, inner) = (
        b.script("return document.documentElement.scrollWidth")
            .await,
        b.script("return window.innerWidth").await,
    );
    b.screenshot("overview-390").await;
    assert!(
        scroll.as_i64() <= inner.as_i64(),
        "the overview scrolls sideways at 390 px: {scroll} > {inner}"
    );

    b.quit().await;
    drop(driver);
    server.stop().await;
}

/// An open tab times out: the live stream and the page's own refreshes do not count as
/// activity, and the login page it lands on does not bounce back.
#[tokio::test(flavor = "multi_thread")]
async fn browser_idle_tab_times_out() {
    if !browser_available() {
        return;
    }
    let server = TestServer::start_with(|c| c.session_timeout = 30).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &tmp.path().join("profile")).await;
    log_in(&b, &server).await;
    live(&b).await;
    // Most of the timeout passes on the server's clock, then the page refreshes itself (an
    // error report changes the overview): that must not push the expiry out.
    server.clock.advance(20);
    let ingest = server.token("ingest").await;
    let r = ingest
        .post_json(
            "/api/errors",
            &json!({"node_id": "n", "error_type": "E", "source": "s", "message": "while idle"}),
        )
        .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    b.wait_text("#ov-errors", "1").await;
    // Past the original expiry (30 s after the login), not past one a refresh would have set
    // (30 s after it). The stream notices within its re-check interval; the page confirms
    // with the server and goes to the login page.
    server.clock.advance(15);
    let url = b.wait_url(&format!("{}/login?expired=1", server.url)).await;
    assert!(url.contains("next=%2F"), "{url}");
    b.wait_text("main, body", "Your session expired").await;
    // It stays on the login page (no bounce back to the dashboard).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        b.current_url()
            .await
            .starts_with(&format!("{}/login", server.url)),
        "bounced back"
    );
    b.screenshot("session-expired").await;
    b.quit().await;
    drop(driver);
    server.stop().await;
}
