//! The typed HTTP client of the control plane. Every CLI role (and later `agent`, `worker`,
//! `assigner`) talks to `serve` through this, with a bearer token, reusing the request and
//! response types of the handlers so each JSON shape is written once.

use crate::tracking::*;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use login::{login_and_create_token, Login};

mod agents;
mod login;
mod nodes;
mod secrets;
mod suites;
mod tasks;

/// A failed call: the server's JSON error, or why the server could not be reached.
///
/// Each message is one line that says what to do: an unreachable server names its URL and
/// `architect serve`, a 401 names `architect token create`, a 403 names the scope or role.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{message} (HTTP {status}, {code}){}", advice(*.status, .message))]
    Api {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    #[error("{}", unreachable(.base, .source))]
    Transport {
        /// The request's URL.
        url: String,
        /// The server's base URL, as configured (ARCHITECT_URL / --url).
        base: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from {url}: {message}")]
    Decode { url: String, message: String },
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What to do about an HTTP error, appended to its message.
fn advice(status: u16, message: &str) -> &'static str {
    match status {
        401 => {
            "; the API token is missing, wrong, expired or revoked: create one with \
             `architect token create --name NAME` and set ARCHITECT_TOKEN (or pass --token)"
        }
        403 if message.contains("scope") => {
            "; use a token whose scope allows it (`architect token create --name NAME --scope \
             admin`, or the Users & tokens page)"
        }
        403 if message.contains("role") => {
            "; ask an admin to give your account a role that allows it"
        }
        _ => "",
    }
}

/// One line for a server that could not be reached: the URL once, the innermost cause
/// (e.g. "Connection refused"), and what to do.
pub fn unreachable(base: &str, e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let why = if e.is_timeout() {
        "timed out".to_string()
    } else {
        cause.to_string()
    };
    format!(
        "cannot reach the architect server at {base} ({why}): is it running? Start it with \
         `architect serve`, or point ARCHITECT_URL (--url) at the server"
    )
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    code: String,
    field: Option<String>,
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A client of one server, or of several replicas of one (`serve` on one PostgreSQL): a call
/// that cannot connect to the current replica is sent to the next one in turn, and the one
/// that answered is kept for the following calls (shared by every clone). Only a connection
/// failure moves it (the request never reached a server, so sending it again cannot do
/// anything twice); an HTTP error, a timeout or a connection cut mid-answer is returned as it
/// is.
#[derive(Clone)]
pub struct Client {
    base: String,
    /// Every replica's base URL, in the order given; `base` is one of them.
    replicas: std::sync::Arc<[String]>,
    /// The index in `replicas` of the one calls go to.
    current: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    token: Option<String>,
    http: reqwest::Client,
}

/// Never prints the token: a logged client shows only where it talks to.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client of `base_url`: one URL, or several replicas' URLs separated by commas (see
    /// [`Client`]).
    pub fn new(base_url: &str, token: Option<&str>) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("architect-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let mut replicas: Vec<String> = base_url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if replicas.is_empty() {
            replicas.push(base_url.trim().trim_end_matches('/').to_string());
        }
        Client {
            base: replicas[0].clone(),
            replicas: replicas.into(),
            current: Default::default(),
            token: token.map(str::to_string),
            http,
        }
    }

    /// The same client with another per-request timeout (for calls that do long work, such
    /// as a scan of a large repository).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("architect-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        self
    }

    /// The first replica's URL (the one given first).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The replica calls go to now.
    pub fn current_url(&self) -> &str {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        &self.replicas[i % self.replicas.len()]
    }

    /// Sends the request `build` makes for a base URL to the current replica and, while the
    /// connection cannot be made, to the next ones in turn (each once); a replica that answers
    /// becomes the current one, and the switch is logged. Returns the base URL it went to.
    async fn send_to_replica(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> std::result::Result<(reqwest::Response, &str), (reqwest::Error, &str)> {
        use std::sync::atomic::Ordering;
        let n = self.replicas.len();
        let first = self.current.load(Ordering::Relaxed) % n;
        let mut i = first;
        loop {
            let base = &self.replicas[i];
            match build(base).send().await {
                Ok(resp) => {
                    if i != first {
                        let was = &self.replicas[first];
                        if self
                            .current
                            .compare_exchange(first, i, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                        {
                            tracing::warn!(from = %was, to = %base, "the server could not be reached; switched to the next one");
                        }
                    }
                    return Ok((resp, base));
                }
                Err(e) if e.is_connect() && (i + 1) % n != first => {
                    tracing::debug!(server = %base, error = %e, "cannot connect; trying the next server");
                    i = (i + 1) % n;
                }
                Err(e) => return Err((e, base)),
            }
        }
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T> {
        let sent = self
            .send_to_replica(|base| {
                let mut req = self
                    .http
                    .request(method.clone(), format!("{base}{path}"))
                    .query(query);
                if let Some(t) = &self.token {
                    req = req.bearer_auth(t);
                }
                if let Some(b) = body {
                    req = req.json(b);
                }
                req
            })
            .await;
        let (resp, base) = sent.map_err(|(source, base)| ClientError::Transport {
            url: format!("{base}{path}"),
            base: base.to_string(),
            source,
        })?;
        let url = format!("{base}{path}");
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                base: base.to_string(),
                source,
            })?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => ClientError::Api {
                    status: status.as_u16(),
                    code: e.code,
                    message: e.error,
                    field: e.field,
                },
                Err(_) => ClientError::Api {
                    status: status.as_u16(),
                    code: "http_error".into(),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                    field: None,
                },
            });
        }
        let bytes = if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
            url,
            message: e.to_string(),
        })
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        self.call::<(), T>(Method::GET, path, query, None).await
    }
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.call(Method::POST, path, &[], Some(body)).await
    }
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.call(Method::PUT, path, &[], Some(body)).await
    }
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<(), T>(Method::DELETE, path, &[], None).await
    }

    // ---- tracking ----

    pub async fn projects(&self, f: &ProjectFilter, limit: i64) -> Result<Vec<Project>> {
        let mut q = vec![("limit", limit.to_string())];
        push(&mut q, "status", f.status.map(|s| s.to_string()));
        push(&mut q, "q", f.q.clone());
        push(
            &mut q,
            "include_archived",
            f.include_archived.map(|b| b.to_string()),
        );
        self.get("/api/projects", &q).await
    }
    pub async fn project(&self, id: i64) -> Result<Project> {
        self.get(&format!("/api/projects/{id}"), &[]).await
    }
    pub async fn create_project(&self, p: &NewProject) -> Result<Project> {
        self.post("/api/projects", p).await
    }
    pub async fn update_project(&self, id: i64, p: &ProjectPatch) -> Result<Project> {
        self.put(&format!("/api/projects/{id}"), p).await
    }
    pub async fn archive_project(&self, id: i64) -> Result<Project> {
        self.delete(&format!("/api/projects/{id}")).await
    }

    pub async fn milestones(&self, f: &MilestoneFilter, limit: i64) -> Result<Vec<Milestone>> {
        let mut q = vec![("limit", limit.to_string())];
        push(&mut q, "project_id", f.project_id.map(|v| v.to_string()));
        push(&mut q, "status", f.status.map(|s| s.to_string()));
        self.get("/api/milestones", &q).await
    }

    pub async fn features(&self, f: &FeatureFilter, limit: i64) -> Result<Vec<Feature>> {
        let mut q = vec![("limit", limit.to_string())];
        push(&mut q, "project_id", f.project_id.map(|v| v.to_string()));
        push(
            &mut q,
            "milestone_id",
            f.milestone_id.map(|v| v.to_string()),
        );
        push(&mut q, "status", f.status.map(|s| s.to_string()));
        push(&mut q, "q", f.q.clone());
        self.get("/api/features", &q).await
    }
    pub async fn feature(&self, id: i64) -> Result<FeatureDetail> {
        self.get(&format!("/api/features/{id}"), &[]).await
    }
    pub async fn create_feature(&self, f: &NewFeature) -> Result<Feature> {
        self.post("/api/features", f).await
    }
    pub async fn update_feature(&self, id: i64, f: &FeaturePatch) -> Result<Feature> {
        self.put(&format!("/api/features/{id}"), f).await
    }
    pub async fn workflow(&self) -> Result<Workflow> {
        self.get("/api/features/workflow", &[]).await
    }

    pub async fn bugs(&self, f: &BugFilter, limit: i64) -> Result<Vec<Bug>> {
        let mut q = vec![("limit", limit.to_string())];
        push(&mut q, "project_id", f.project_id.map(|v| v.to_string()));
        push(&mut q, "status", f.status.map(|s| s.to_string()));
        push(&mut q, "severity", f.severity.map(|s| s.to_string()));
        push(&mut q, "q", f.q.clone());
        self.get("/api/bugs", &q).await
    }
    pub async fn bug(&self, id: i64) -> Result<Bug> {
        self.get(&format!("/api/bugs/{id}"), &[]).await
    }
    pub async fn create_bug(&self, b: &NewBug) -> Result<Bug> {
        self.post("/api/bugs", b).await
    }
    pub async fn update_bug(&self, id: i64, b: &BugPatch) -> Result<Bug> {
        self.put(&format!("/api/bugs/{id}"), b).await
    }

    pub async fn devops_tasks(&self, f: &DevopsFilter, limit: i64) -> Result<Vec<DevopsTask>> {
        let mut q = vec![("limit", limit.to_string())];
        push(&mut q, "project_id", f.project_id.map(|v| v.to_string()));
        push(&mut q, "status", f.status.map(|s| s.to_string()));
        push(&mut q, "category", f.category.map(|s| s.to_string()));
        self.get("/api/devops-tasks", &q).await
    }
    pub async fn create_devops_task(&self, t: &NewDevopsTask) -> Result<DevopsTask> {
        self.post("/api/devops-tasks", t).await
    }
    pub async fn update_devops_task(&self, id: i64, t: &DevopsPatch) -> Result<DevopsTask> {
        self.put(&format!("/api/devops-tasks/{id}"), t).await
    }

    pub async fn stats(&self) -> Result<Stats> {
        self.get("/api/stats", &[]).await
    }
}

fn push(q: &mut Vec<(&'static str, String)>, k: &'static str, v: Option<String>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        q.push((k, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers every request `status` with a JSON body. (A fallback, not a
    /// route: tests/integration/principals.rs reads every `.route(` in src/ as the server's.)
    async fn answering(status: u16) -> String {
        let app = axum::Router::new().fallback(move || async move {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                r#"{"error": "no such thing", "code": "not_found"}"#,
            )
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// A URL nothing listens on (a port that was free a moment ago).
    fn nobody() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    }

    async fn stats(c: &Client) -> Result<serde_json::Value> {
        c.get("/api/stats", &[]).await
    }

    #[tokio::test]
    async fn a_replica_that_cannot_be_reached_is_skipped_and_the_next_one_kept() {
        let (dead, live) = (nobody(), answering(200).await);
        let c = Client::new(&format!("{dead}, {live}/"), None);
        assert_eq!(c.current_url(), dead);
        stats(&c).await.expect("the second replica answers");
        assert_eq!(c.current_url(), live, "kept for the next calls");
        // Every clone shares where calls go.
        assert_eq!(c.clone().current_url(), live);
        stats(&c).await.expect("still answers");
    }

    #[tokio::test]
    async fn an_http_error_does_not_move_the_client() {
        let (refusing, live) = (answering(404).await, answering(200).await);
        let c = Client::new(&format!("{refusing},{live}"), None);
        let e = stats(&c).await.unwrap_err();
        assert_eq!(e.status(), Some(404), "{e}");
        assert_eq!(c.current_url(), refusing);
    }

    #[tokio::test]
    async fn when_no_replica_answers_the_error_names_the_last_one_tried() {
        let (a, b) = (nobody(), nobody());
        let c = Client::new(&format!("{a},{b}"), None);
        match stats(&c).await.unwrap_err() {
            ClientError::Transport { base, .. } => assert_eq!(base, b),
            e => panic!("{e}"),
        }
        assert_eq!(c.current_url(), a, "nothing answered: no switch");
    }
}
