//! The route × principal matrix (issue 12, docs/decisions/0005-principals.md): every route of
//! the real router is called by every kind of principal, and each call is refused (401/403,
//! or a redirect to the login page) exactly when the written policy below says so.
//!
//! The policy table is the contract; the routes are read from the source (`.route("…", …)`
//! in src/), so a new route without a row here fails the test, and so does a row whose route
//! is gone. Requests carry an empty body: a principal that passes the route's extractor gets
//! a validation error or a not-found (anything but 401/403), never a refusal.

use crate::agents::PrivateTmux;
use crate::support::{until, Session, TestServer};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anon,
    IngestToken,
    ReadToken,
    WorkerToken,
    /// An `agent`-scoped token bound to no session (what a node's `architect agent` holds).
    AgentToken,
    /// A session's own token, minted by `session start`.
    SessionToken,
    Viewer,
    Member,
    Admin,
}

/// What a route needs (see the decision record for what each principal is given).
#[derive(Clone, Copy, Debug)]
enum Policy {
    /// Anyone, signed in or not.
    Public,
    Read,
    Write,
    Admin,
    /// Runs code of the caller's choosing on a host: admins.
    Exec,
    /// A node's agent: an AgentOps principal with a bearer token.
    NodeAgent,
    /// Registering a node: its agent's token, or an admin adding one by hand.
    NodeAgentOrAdmin,
    WorkerOps,
    /// A session's own token for its own session, or a principal with Write.
    SessionOrWrite,
    /// A session's own token for its own pane, or a principal with PaneRead.
    SessionOrPaneRead,
    PaneRead,
    /// The LLM gateway: tokens only (never a browser session).
    Llm,
    /// Sentry's ingest endpoints: authenticated by the DSN key (`X-Sentry-Auth` /
    /// `sentry_key`), which no principal here sends, so all are refused (tests/integration/
    /// errors.rs covers the keys).
    SentryKey,
}
use Policy::*;

fn allowed(who: Who, p: Policy) -> bool {
    use Who::*;
    match p {
        Policy::Public => true,
        Policy::Read => !matches!(who, Anon | IngestToken),
        Policy::Write => matches!(who, Member | Admin),
        Policy::Admin | Exec => who == Admin,
        NodeAgent => who == AgentToken,
        NodeAgentOrAdmin => matches!(who, AgentToken | Admin),
        WorkerOps => matches!(who, WorkerToken | Member | Admin),
        SessionOrWrite => matches!(who, SessionToken | Member | Admin),
        SessionOrPaneRead => matches!(who, SessionToken | AgentToken | Member | Admin),
        PaneRead => matches!(who, AgentToken | Member | Admin),
        Llm => matches!(who, WorkerToken | AgentToken | SessionToken),
        SentryKey => false,
    }
}

/// Every route: method, path as routed, policy.
#[rustfmt::skip]
const POLICY: &[(&str, &str, Policy)] = &[
    ("GET", "/", Read),
    ("GET", "/account", Read),
    ("POST", "/account/password", Read),
    ("GET", "/activity", Read),
    ("POST", "/api/account/password", Read),
    ("GET", "/api/accounts", Read),
    ("POST", "/api/accounts", Admin),
    ("GET", "/api/accounts/aggregate", Read),
    ("GET", "/api/accounts/{id}", Read),
    ("PUT", "/api/accounts/{id}", Admin),
    ("DELETE", "/api/accounts/{id}", Admin),
    ("GET", "/api/activity", Read),
    ("POST", "/api/activity", Write),
    ("GET", "/api/autopilot/health", Read),
    ("POST", "/api/autopilot/pause", Write),
    ("GET", "/api/autopilot/runs", Read),
    ("GET", "/api/autopilot/runs/{id}", Read),
    ("POST", "/api/autopilot/runs/{id}/cancel", Write),
    ("POST", "/api/autopilot/runs/{id}/resume", Write),
    ("POST", "/api/autopilot/runs/{id}/start", Write),
    ("POST", "/api/autopilot/runs/{id}/status", Write),
    ("POST", "/api/projects/{id}/autopilot", Write),
    ("GET", "/api/autopilot/gates", Read),
    ("POST", "/api/autopilot/gates/{id}/approve", Write),
    ("POST", "/api/autopilot/gates/{id}/reject", Write),
    ("GET", "/api/autopilot/items/{id}/diff", Read),
    ("GET", "/api/autopilot/milestones", Read),
    ("GET", "/api/autopilot/milestones/{id}", Read),
    ("POST", "/api/autopilot/milestones/{id}/approve", Write),
    ("POST", "/api/autopilot/milestones/{id}/reject", Write),
    ("GET", "/api/autopilot/queue", Read),
    ("GET", "/api/planning/items", Read),
    ("POST", "/api/planning/scan", Write),
    ("GET", "/api/planning/scans/{id}", Read),
    ("GET", "/api/planning/status", Read),
    ("GET", "/api/tasks/suggest", Read),
    ("POST", "/api/tasks/suggest", Write),
    ("POST", "/api/tasks/suggest/{id}/complete", Write),
    ("POST", "/api/tasks/suggest/{id}/confirm", Write),
    ("POST", "/api/tasks/suggest/{id}/skip", Write),
    ("GET", "/api/tasks/suggest/{id}/status", Read),
    ("GET", "/autopilot", Read),
    ("GET", "/autopilot/milestones/{id}", Read),
    ("GET", "/autopilot/runs/{id}", Read),
    ("GET", "/autopilot/items/{id}/diff", Read),
    ("POST", "/autopilot/runs/{id}/{how}", Write),
    ("GET", "/autopilot/gates/{id}", Read),
    ("POST", "/autopilot/gates/{id}/{how}", Write),
    ("POST", "/autopilot/milestones/{id}/approve", Write),
    ("POST", "/autopilot/milestones/{id}/reject", Write),
    ("POST", "/autopilot/scan", Write),
    ("POST", "/autopilot/suggest", Write),
    ("POST", "/autopilot/suggestions/{id}/confirm", Write),
    ("POST", "/autopilot/suggestions/{id}/skip", Write),
    ("GET", "/api/agents", Read),
    ("POST", "/api/agents/broadcast", Write),
    ("POST", "/api/agents/classify", Read),
    ("POST", "/api/agents/hooks/{event}", SessionOrWrite),
    ("GET", "/api/agents/pane-patterns", Read),
    ("POST", "/api/agents/pane-patterns", Write),
    ("DELETE", "/api/agents/pane-patterns/{id}", Write),
    ("PUT", "/api/agents/pane-patterns/{id}", Write),
    ("POST", "/api/agents/send", Write),
    ("POST", "/api/agents/sessions", Write),
    ("GET", "/api/agents/sessions/{name}", Read),
    ("POST", "/api/agents/session-claims/redeem", NodeAgent),
    ("POST", "/api/assign-to-tmux", Write),
    ("GET", "/api/events", Read),
    ("POST", "/api/assigner/clear", Write),
    ("GET", "/api/assigner/prompts", Read),
    ("DELETE", "/api/assigner/prompts/{id}", SessionOrWrite),
    ("GET", "/api/assigner/prompts/{id}", Read),
    ("POST", "/api/assigner/prompts/{id}/reassign", SessionOrWrite),
    ("POST", "/api/assigner/prompts/{id}/retry", SessionOrWrite),
    ("POST", "/api/assigner/retry-all", Write),
    ("GET", "/api/assigner/routing-rules", Read),
    ("POST", "/api/assigner/routing-rules", Write),
    ("DELETE", "/api/assigner/routing-rules/{id}", Write),
    ("POST", "/api/assigner/send", SessionOrWrite),
    ("GET", "/api/assigner/sessions", Read),
    ("GET", "/api/assigner/status", Read),
    ("GET", "/api/bugs", Read),
    ("POST", "/api/bugs", Write),
    ("GET", "/api/bugs/{id}", Read),
    ("PUT", "/api/bugs/{id}", Write),
    ("GET", "/api/claude/audit", Read),
    ("GET", "/api/claude/interactions", Read),
    ("GET", "/api/claude/interactions/{id}", Read),
    ("POST", "/api/claude/interactions/{id}/create-pattern", Write),
    ("POST", "/api/claude/interactions/{id}/handle", Write),
    ("GET", "/api/claude/patterns", Read),
    ("POST", "/api/claude/patterns", Write),
    ("POST", "/api/claude/patterns/dry-run", Write),
    ("DELETE", "/api/claude/patterns/{id}", Write),
    ("PUT", "/api/claude/patterns/{id}", Write),
    ("GET", "/api/csrf/token", Read),
    ("GET", "/api/devops-tasks", Read),
    ("POST", "/api/devops-tasks", Write),
    ("GET", "/api/devops-tasks/{id}", Read),
    ("PUT", "/api/devops-tasks/{id}", Write),
    ("GET", "/api/documentation", Read),
    ("GET", "/documentation", Read),
    ("GET", "/documentation/view", Read),
    ("POST", "/api/files/read", Read),
    ("POST", "/api/files/write", Write),
    ("GET", "/api/files/feature/{id}", Read),
    ("GET", "/projects/{id}/files", Read),
    ("GET", "/features/{id}/files", Read),
    ("POST", "/projects/{id}/files", Write),
    ("POST", "/api/scan-sources", Write),
    ("POST", "/api/import-project", Exec),
    ("GET", "/sources", Write),
    ("POST", "/sources/import", Exec),
    ("GET", "/api/errors", Read),
    ("POST", "/api/errors", Public),
    ("GET", "/api/errors/{id}", Read),
    ("POST", "/api/errors/{id}/create-bug", Write),
    ("POST", "/api/errors/{id}/resolve", Write),
    ("GET", "/api/features", Read),
    ("POST", "/api/features", Write),
    ("GET", "/api/features/workflow", Read),
    ("GET", "/api/features/{id}", Read),
    ("PUT", "/api/features/{id}", Write),
    ("GET", "/api/llm-metrics/circuit-breakers", Read),
    ("GET", "/api/llm-metrics/costs", Read),
    ("GET", "/api/llm-metrics/failover-history", Read),
    ("GET", "/api/llm-metrics/providers", Read),
    ("POST", "/api/llm-metrics/reset-circuits", Write),
    ("GET", "/api/llm-metrics/summary", Read),
    ("GET", "/api/llm/budgets", Read),
    ("POST", "/api/llm/budgets", Admin),
    ("DELETE", "/api/llm/budgets/{id}", Admin),
    ("GET", "/api/llm/prices", Read),
    ("PUT", "/api/llm/prices", Admin),
    ("DELETE", "/api/llm/prices/{id}", Admin),
    ("GET", "/api/me", Read),
    ("GET", "/api/milestones", Read),
    ("POST", "/api/milestones", Write),
    ("GET", "/api/milestones/{id}", Read),
    ("PUT", "/api/milestones/{id}", Write),
    ("GET", "/api/nodes", Read),
    ("POST", "/api/nodes", NodeAgentOrAdmin),
    ("DELETE", "/api/nodes/{id}", Admin),
    ("GET", "/api/nodes/{id}", Read),
    ("PUT", "/api/nodes/{id}", Admin),
    ("GET", "/api/termius/export", Read),
    ("GET", "/api/termius/preview", Read),
    ("GET", "/api/nodes/{id}/commands", NodeAgent),
    ("POST", "/api/nodes/{id}/commands", Admin),
    ("GET", "/api/nodes/{id}/commands/{cid}", Read),
    ("POST", "/api/nodes/{id}/commands/{cid}/result", NodeAgent),
    ("POST", "/api/nodes/{id}/heartbeat", NodeAgent),
    ("GET", "/api/nodes/{id}/metrics", Read),
    ("GET", "/api/projects", Read),
    ("POST", "/api/projects", Write),
    ("DELETE", "/api/projects/{id}", Write),
    ("GET", "/api/projects/{id}", Read),
    ("PUT", "/api/projects/{id}", Write),
    ("GET", "/api/projects/{id}/commands", Read),
    ("GET", "/api/projects/{id}/ingest-key", Read),
    ("POST", "/api/projects/{id}/ingest-key", Write),
    ("DELETE", "/api/projects/{id}/ingest-key", Write),
    ("PUT", "/api/projects/{id}/commands", Exec),
    ("GET", "/api/secrets", Read),
    ("POST", "/api/secrets", Write),
    ("DELETE", "/api/secrets/{id}", Admin),
    ("GET", "/api/secrets/{id}", Write),
    ("PUT", "/api/secrets/{id}", Write),
    ("GET", "/api/secrets/{id}/audit", Write),
    ("POST", "/api/secrets/{id}/purge", Admin),
    ("POST", "/api/secrets/{id}/undelete", Admin),
    ("GET", "/api/secrets/{id}/versions", Read),
    ("GET", "/api/secrets/{id}/versions/{version}", Write),
    ("POST", "/api/secrets/{id}/versions/{version}/restore", Write),
    ("GET", "/api/overview", Read),
    ("GET", "/api/overview/badges", Read),
    ("GET", "/api/session", Read),
    ("POST", "/api/session/extend", Read),
    ("GET", "/api/stats", Read),
    ("GET", "/api/tasks", Read),
    ("GET", "/api/test-suites", Read),
    ("POST", "/api/projects/{id}/test-suites", Write),
    ("POST", "/api/projects/{id}/test-suites/rescan", Write),
    ("GET", "/api/test-suites/{id}", Read),
    ("DELETE", "/api/test-suites/{id}", Write),
    ("POST", "/api/test-suites/{id}/run", Write),
    ("GET", "/api/test-suites/{id}/runs", Read),
    ("GET", "/api/test-suites/{id}/cases", Read),
    ("POST", "/api/test-runs/report", WorkerOps),
    ("GET", "/api/test-runs/{id}", Read),
    ("POST", "/api/tasks", Write),
    ("POST", "/api/tasks/claim", WorkerOps),
    ("POST", "/api/tasks/complete", WorkerOps),
    ("GET", "/api/tasks/counts", Read),
    ("GET", "/api/tasks/{id}", Read),
    ("POST", "/api/tasks/{id}/cancel", Write),
    ("POST", "/api/tasks/{id}/complete", WorkerOps),
    ("POST", "/api/tasks/{id}/fail", WorkerOps),
    ("POST", "/api/tasks/{id}/heartbeat", WorkerOps),
    ("POST", "/api/tasks/{id}/release", WorkerOps),
    ("POST", "/api/tasks/{id}/retry", Write),
    ("POST", "/api/tmux/capture", SessionOrPaneRead),
    ("POST", "/api/tmux/create", Exec),
    ("POST", "/api/tmux/kill", Write),
    ("POST", "/api/tmux/send", Write),
    ("GET", "/api/tmux/sessions", Read),
    ("POST", "/api/tmux/sessions/refresh", Write),
    ("GET", "/api/tokens", Read),
    ("POST", "/api/tokens", Write),
    ("DELETE", "/api/tokens/{id}", Write),
    ("GET", "/api/tokens/{id}", Read),
    ("GET", "/api/users", Admin),
    ("POST", "/api/users", Admin),
    ("DELETE", "/api/users/{id}", Admin),
    ("GET", "/api/users/{id}", Admin),
    ("PUT", "/api/users/{id}", Admin),
    ("POST", "/api/vault/rotate-key", Admin),
    ("GET", "/api/vault/status", Read),
    ("POST", "/api/vault/step-up", Read),
    ("GET", "/api/workers", Read),
    ("POST", "/api/workers/register", WorkerOps),
    ("POST", "/api/workers/start/{type}", Admin),
    ("GET", "/api/workers/status", Read),
    ("POST", "/api/workers/stop/{type}", Admin),
    ("POST", "/api/workers/{id}/heartbeat", WorkerOps),
    ("POST", "/api/{project_id}/envelope/", SentryKey),
    ("POST", "/api/{project_id}/store/", SentryKey),
    ("GET", "/assigner", Read),
    ("GET", "/assigner/prompts/{id}", Read),
    ("POST", "/assigner/prompts/{id}/cancel", Write),
    ("POST", "/assigner/prompts/{id}/reassign", Write),
    ("POST", "/assigner/prompts/{id}/retry", Write),
    ("POST", "/assigner/send", Write),
    ("GET", "/bugs", Read),
    ("POST", "/bugs", Write),
    ("GET", "/bugs/{id}", Read),
    ("POST", "/bugs/{id}", Write),
    ("POST", "/bugs/{id}/assign", Write),
    ("POST", "/bugs/{id}/status", Write),
    ("GET", "/devops", Read),
    ("POST", "/devops", Write),
    ("GET", "/devops/{id}", Read),
    ("POST", "/devops/{id}", Write),
    ("GET", "/errors", Read),
    ("GET", "/errors/{id}", Read),
    ("POST", "/errors/{id}/assign", Write),
    ("POST", "/errors/{id}/create-bug", Write),
    ("POST", "/errors/{id}/resolve", Write),
    ("GET", "/features", Read),
    ("POST", "/features", Write),
    ("GET", "/features/{id}", Read),
    ("POST", "/features/{id}", Write),
    ("POST", "/features/{id}/assign", Write),
    ("POST", "/features/{id}/status", Write),
    ("GET", "/health", Public),
    ("GET", "/interactions", Read),
    ("POST", "/interactions/dry-run", Write),
    ("POST", "/interactions/patterns", Write),
    ("POST", "/interactions/patterns/{id}", Write),
    ("POST", "/interactions/patterns/{id}/delete", Write),
    ("POST", "/interactions/patterns/{id}/disable", Write),
    ("POST", "/interactions/patterns/{id}/enable", Write),
    ("POST", "/interactions/{id}/handle", Write),
    ("GET", "/llm-metrics", Read),
    ("POST", "/llm-metrics/reset-circuits", Write),
    ("GET", "/login", Public),
    ("POST", "/login", Public),
    ("POST", "/logout", Read),
    ("GET", "/metrics", Read),
    ("GET", "/milestones", Read),
    ("POST", "/milestones", Write),
    ("GET", "/milestones/{id}", Read),
    ("POST", "/milestones/{id}", Write),
    ("GET", "/nodes", Read),
    ("POST", "/nodes/add", Admin),
    ("GET", "/nodes/{id}", Read),
    ("POST", "/nodes/{id}/commands", Admin),
    ("POST", "/nodes/{id}/remove", Admin),
    ("POST", "/nodes/{id}/reach", Admin),
    ("GET", "/termius", Read),
    ("GET", "/accounts", Read),
    ("GET", "/testing", Read),
    ("POST", "/testing/upload", Write),
    ("POST", "/testing/projects/{id}/rescan", Write),
    ("GET", "/testing/suites/{id}", Read),
    ("POST", "/testing/suites/{id}/run", Write),
    ("GET", "/testing/runs/{id}", Read),
    ("POST", "/accounts", Admin),
    ("POST", "/accounts/{id}/remove", Admin),
    ("GET", "/projects", Read),
    ("POST", "/projects", Write),
    ("GET", "/projects/{id}", Read),
    ("POST", "/projects/{id}", Write),
    ("POST", "/projects/{id}/archive", Write),
    ("POST", "/projects/{id}/unarchive", Write),
    ("GET", "/static/{*path}", Public),
    ("GET", "/favicon.ico", Public),
    ("GET", "/tasks", Read),
    ("POST", "/tasks", Write),
    ("GET", "/tasks/commands", Read),
    ("POST", "/tasks/commands/{project_id}", Exec),
    ("GET", "/tasks/{id}", Read),
    ("POST", "/tasks/{id}/cancel", Write),
    ("POST", "/tasks/{id}/retry", Write),
    ("GET", "/tmux", Read),
    ("POST", "/tmux/create", Write),
    ("POST", "/tmux/kill", Write),
    ("POST", "/tmux/send", Write),
    ("GET", "/tmux/view/{name}", PaneRead),
    ("GET", "/tmux/view/{name}/stream", PaneRead),
    ("POST", "/tokens", Write),
    ("POST", "/tokens/{id}/revoke", Write),
    ("GET", "/users", Read),
    ("POST", "/users", Admin),
    ("POST", "/users/{id}", Admin),
    ("POST", "/users/{id}/delete", Admin),
    ("POST", "/v1/chat/completions", Llm),
    ("POST", "/v1/messages", Llm),
    ("POST", "/v1/responses", Llm),
    ("GET", "/vault", Read),
    ("POST", "/vault", Write),
    ("POST", "/vault/rotate-key", Admin),
    ("GET", "/vault/{id}", Read),
    ("POST", "/vault/{id}", Write),
    ("POST", "/vault/{id}/delete", Admin),
    ("POST", "/vault/{id}/purge", Admin),
    ("POST", "/vault/{id}/reveal", Write),
    ("POST", "/vault/{id}/undelete", Admin),
    ("POST", "/vault/{id}/versions/{version}/restore", Write),
    ("GET", "/workers", Read),
    ("POST", "/workers/start/{type}", Admin),
    ("POST", "/workers/stop/{type}", Admin),
];

/// `(METHOD, path)` of every `.route("path", method_router)` in src/.
fn routes_in_source() -> BTreeSet<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("src is readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let path_re = regex::Regex::new(r#"\.route\(\s*"([^"]+)"\s*,"#).expect("regex");
    let method_re =
        regex::Regex::new(r"(?:^|[\s.:])(get|post|put|patch|delete)\(\s*[A-Za-z_:<>]+\s*\)")
            .expect("regex");
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source file");
        for m in path_re.captures_iter(&text) {
            let whole = m.get(0).expect("match");
            let bytes = text.as_bytes();
            let (mut depth, mut end) = (1, whole.end());
            while depth > 0 {
                match bytes[end] {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    _ => {}
                }
                end += 1;
            }
            let methods = &text[whole.end()..end - 1];
            let found: Vec<_> = method_re.captures_iter(methods).collect();
            assert!(
                !found.is_empty(),
                "{}: cannot read the methods of route {}",
                f.display(),
                &m[1]
            );
            for mm in found {
                out.insert((mm[1].to_uppercase(), m[1].to_string()));
            }
        }
    }
    out
}

#[test]
fn every_route_has_a_row_in_the_policy() {
    let routed = routes_in_source();
    let table: BTreeSet<(String, String)> = POLICY
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = routed.difference(&table).collect();
    let stale: Vec<_> = table.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes with no row in tests/integration/principals.rs POLICY: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "POLICY rows for routes that are gone: {stale:?}"
    );
    assert_eq!(table.len(), POLICY.len(), "a route has two rows");
}

/// The path with sample values; node routes use the node the agent token registered, so
/// its calls reach a node bound to it.
fn concrete(path: &str, node_id: i64) -> String {
    if path == "/api/nodes/{id}/commands" {
        return format!("/api/nodes/{node_id}/commands?wait=0");
    }
    path.replace("/api/nodes/{id}", &format!("/api/nodes/{node_id}"))
        .replace("{id}", "1")
        .replace("{cid}", "1")
        .replace("{version}", "1")
        .replace("{project_id}", "1")
        .replace("{name}", "matrix-none")
        .replace("{event}", "stop")
        .replace("{type}", "nope")
        .replace("{*path}", "app.css")
}

/// A principal's client and how to tell whether it is still signed in.
struct Principal {
    who: Who,
    client: Session,
    /// Username and password, for people (re-login after a route that signs out).
    login: Option<(&'static str, &'static str)>,
}

async fn call(s: &Session, method: &str, path: &str, node_id: i64) -> (u16, String) {
    let url = concrete(path, node_id);
    let m: reqwest::Method = method.parse().expect("method");
    let api = url.starts_with("/api/") || url.starts_with("/v1/");
    let mut rb = s
        .request(m.clone(), &url)
        .timeout(std::time::Duration::from_secs(10));
    if m != reqwest::Method::GET {
        rb = if api {
            rb.json(&json!({}))
        } else {
            rb.header("content-type", "application/x-www-form-urlencoded")
                .body(format!("csrf_token={}", s.csrf))
        };
    }
    match rb.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (status, location)
        }
        // A stream that stays open (the pane view) got past the extractor.
        Err(e) if e.is_timeout() => (200, String::new()),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// 401/403, or a page's redirect to the login form (`/login?next=…`; logging out redirects
/// to `/login?logged_out=1`, which is no refusal).
fn refused(status: u16, location: &str) -> bool {
    status == 401
        || status == 403
        || ((300..400).contains(&status) && location.starts_with("/login?next="))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_against_every_principal() {
    let tmux = PrivateTmux::new();
    let socket = tmux.socket.clone();
    let server = TestServer::start_with(move |c| c.agents.tmux_socket = Some(socket)).await;
    let admin = server.admin().await;

    // A session's own token: a shell session (admins may start one) that writes the token
    // it was given to a file.
    let token_file = server.data_dir.join("session-token");
    let r = admin
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "matrix-session", "agent": "shell", "program": "sh",
                    "args": ["-c", format!("printf %s \"$ARCHITECT_TOKEN\" > '{}'; exec sleep 600",
                                           token_file.display())]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let session_token = until("the session to write its token", || async {
        std::fs::read_to_string(&token_file)
            .ok()
            .filter(|t| t.starts_with("arch_"))
    })
    .await;

    let mut principals = vec![
        Principal {
            who: Who::Anon,
            client: server.anon(),
            login: None,
        },
        Principal {
            who: Who::IngestToken,
            client: server.token("ingest").await,
            login: None,
        },
        Principal {
            who: Who::ReadToken,
            client: server.token("read").await,
            login: None,
        },
        Principal {
            who: Who::WorkerToken,
            client: server.token("worker").await,
            login: None,
        },
        Principal {
            who: Who::AgentToken,
            client: server.token("agent").await,
            login: None,
        },
        Principal {
            who: Who::SessionToken,
            client: Session::new(&server.url, Some(session_token)),
            login: None,
        },
        Principal {
            who: Who::Viewer,
            client: server.user("matrix-viewer", "viewer").await,
            login: Some(("matrix-viewer", "password-123")),
        },
        Principal {
            who: Who::Member,
            client: server.user("matrix-member", "member").await,
            login: Some(("matrix-member", "password-123")),
        },
        Principal {
            who: Who::Admin,
            client: server.admin().await,
            login: Some((crate::support::ADMIN, crate::support::ADMIN_PASSWORD)),
        },
    ];

    let agent_token = principals
        .iter()
        .find(|p| p.who == Who::AgentToken)
        .map(|p| &p.client)
        .expect("agent token");
    let r = agent_token
        .post_json("/api/nodes", &json!({"name": "matrix-node"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let node_id = r.json["id"].as_i64().expect("node id");

    let mut wrong = Vec::new();
    for p in principals.iter_mut() {
        for (method, path, policy) in POLICY {
            let (status, location) = call(&p.client, method, path, node_id).await;
            let expected = allowed(p.who, *policy);
            if refused(status, &location) == expected {
                wrong.push(format!(
                    "{:?} {method} {path}: {status} {location} (policy {policy:?}: {})",
                    p.who,
                    if expected { "allowed" } else { "refused" }
                ));
            }
            // Routes that sign out (logout, password changes) end a person's session.
            if let Some((user, pw)) = p.login {
                if p.client.get("/api/session").await.status != 200 {
                    p.client = server.login(user, pw).await;
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} calls disagree with the policy:\n{}",
        wrong.len(),
        POLICY.len() * principals.len(),
        wrong.join("\n")
    );
}
