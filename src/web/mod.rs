//! The dashboard shell: the page layout every panel shares, the error page, embedded static
//! assets, the home page and the honest "not available yet" panels.

use crate::app::AppState;
use crate::auth::extract::{PageAuthed, Read};
use crate::auth::{AuthVia, Capability, Identity};
use crate::http::error::ApiError;
use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new().route("/static/{*path}", get(static_file));
    for panel in PANELS.iter().filter(|p| !p.available) {
        r = r.route(panel.href, get(unavailable));
    }
    r
}

/// One entry of the sidebar.
pub struct Panel {
    pub key: &'static str,
    pub label: &'static str,
    pub href: &'static str,
    pub group: &'static str,
    /// False for panels that later work fills; they show an honest placeholder.
    pub available: bool,
}

pub const PANELS: &[Panel] = &[
    Panel {
        key: "overview",
        label: "Overview",
        href: "/",
        group: "Home",
        available: true,
    },
    Panel {
        key: "projects",
        label: "Projects",
        href: "/projects",
        group: "Work",
        available: true,
    },
    Panel {
        key: "milestones",
        label: "Milestones",
        href: "/milestones",
        group: "Work",
        available: true,
    },
    Panel {
        key: "features",
        label: "Features",
        href: "/features",
        group: "Work",
        available: true,
    },
    Panel {
        key: "bugs",
        label: "Bugs",
        href: "/bugs",
        group: "Work",
        available: true,
    },
    Panel {
        key: "devops",
        label: "DevOps",
        href: "/devops",
        group: "Work",
        available: true,
    },
    Panel {
        key: "errors",
        label: "Errors",
        href: "/errors",
        group: "Fleet",
        available: true,
    },
    Panel {
        key: "nodes",
        label: "Nodes",
        href: "/nodes",
        group: "Fleet",
        available: true,
    },
    Panel {
        key: "tmux",
        label: "tmux",
        href: "/tmux",
        group: "Agents",
        available: true,
    },
    Panel {
        key: "assigner",
        label: "Assigner",
        href: "/assigner",
        group: "Agents",
        available: true,
    },
    Panel {
        key: "interactions",
        label: "Interactions",
        href: "/interactions",
        group: "Agents",
        available: true,
    },
    Panel {
        key: "autopilot",
        label: "Autopilot",
        href: "/autopilot",
        group: "Agents",
        available: false,
    },
    Panel {
        key: "tasks",
        label: "Tasks",
        href: "/tasks",
        group: "Fleet",
        available: true,
    },
    Panel {
        key: "workers",
        label: "Workers",
        href: "/workers",
        group: "Fleet",
        available: true,
    },
    Panel {
        key: "llm",
        label: "LLM",
        href: "/llm-metrics",
        group: "Fleet",
        available: true,
    },
    Panel {
        key: "vault",
        label: "Vault",
        href: "/vault",
        group: "System",
        available: true,
    },
    Panel {
        key: "activity",
        label: "Activity",
        href: "/activity",
        group: "System",
        available: true,
    },
    Panel {
        key: "users",
        label: "Users & tokens",
        href: "/users",
        group: "System",
        available: true,
    },
];

/// Data every dashboard page needs for its frame.
pub struct Layout {
    pub title: String,
    pub active: &'static str,
    pub username: String,
    pub role: String,
    pub can_write: bool,
    /// May run code on hosts (create tmux sessions, type into shells): `Capability::Exec`.
    pub can_exec: bool,
    /// May see what is on agents' screens: `Capability::PaneRead`.
    pub can_see_panes: bool,
    pub is_admin: bool,
    pub csrf_token: String,
    /// Seconds until the session expires without activity.
    pub expires_in: i64,
    pub default_password: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl Layout {
    pub fn new(state: &AppState, who: &Identity, active: &'static str, title: &str) -> Layout {
        let (csrf, expires_in) = match &who.via {
            AuthVia::Session {
                csrf_token,
                expires_at,
                ..
            } => {
                let left = crate::clock::parse(expires_at)
                    .map(|t| (t - state.clock.now()).whole_seconds())
                    .unwrap_or(0);
                (csrf_token.clone(), left.max(0))
            }
            AuthVia::Token { .. } => (String::new(), 0),
        };
        Layout {
            title: title.to_string(),
            active,
            username: who.username.clone(),
            role: who.role.to_string(),
            can_write: who.can(Capability::Write),
            can_exec: who.can(Capability::Exec),
            can_see_panes: who.can(Capability::PaneRead),
            is_admin: who.can(Capability::Admin),
            csrf_token: csrf,
            expires_in,
            default_password: state.config.uses_default_password(),
            notice: None,
            error: None,
        }
    }

    pub fn with_flash(mut self, flash: &Flash) -> Self {
        self.notice = flash.notice.clone();
        self.error = flash.error.clone();
        self
    }

    /// The sidebar: each group with its working panels, in display order, then the panels
    /// not built yet in one last group, so they do not bury the ones that work.
    pub fn nav(&self) -> Vec<(&'static str, Vec<&'static Panel>)> {
        let mut groups: Vec<(&'static str, Vec<&'static Panel>)> =
            ["Home", "Work", "Agents", "Fleet", "System"]
                .into_iter()
                .map(|g| {
                    (
                        g,
                        PANELS
                            .iter()
                            .filter(|p| p.group == g && p.available)
                            .collect::<Vec<_>>(),
                    )
                })
                .filter(|(_, items)| !items.is_empty())
                .collect();
        let soon: Vec<&'static Panel> = PANELS.iter().filter(|p| !p.available).collect();
        if !soon.is_empty() {
            groups.push(("Not built yet", soon));
        }
        groups
    }

    /// "12m 30s" style, for the status bar before JavaScript updates it.
    pub fn expires_in_text(&self) -> String {
        format!("{}m {:02}s", self.expires_in / 60, self.expires_in % 60)
    }
}

/// A one-shot message after a form post, carried in the redirect's query (`?notice=` or
/// `?error=`). Only plain text; escaped on output like everything else.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Flash {
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// Redirect after a successful form post, with a notice.
pub fn see_other(path: &str, notice: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    let q = serde_urlencoded::to_string([("notice", notice)]).unwrap_or_default();
    Redirect::to(&format!("{path}{sep}{q}")).into_response()
}

/// Redirect back to a form's page with the error message.
pub fn back_with_error(path: &str, e: &ApiError) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    let q = serde_urlencoded::to_string([("error", e.message.as_str())]).unwrap_or_default();
    Redirect::to(&format!("{path}{sep}{q}")).into_response()
}

/// Renders a template, or a plain error page if rendering fails.
pub fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => PageError::Error(ApiError::internal(e)).into_response(),
    }
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// A dashboard failure: a redirect (to /login) or an HTML error page.
#[derive(Debug)]
pub enum PageError {
    Redirect(String),
    Error(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Error(e)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        PageError::Error(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Redirect(to) => Redirect::to(&to).into_response(),
            PageError::Error(e) => {
                let page = ErrorPage {
                    status: e.status.as_u16(),
                    reason: e.status.canonical_reason().unwrap_or("Error"),
                    message: &e.message,
                };
                let html = page.render().unwrap_or_else(|_| e.message.clone());
                (e.status, Html(html)).into_response()
            }
        }
    }
}

#[derive(Template)]
#[template(path = "web/unavailable.html")]
struct Unavailable {
    layout: Layout,
    label: &'static str,
}

/// Panels that later work fills say so plainly instead of showing fake data.
async fn unavailable(
    State(state): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    uri: axum::http::Uri,
) -> Response {
    let panel = PANELS.iter().find(|p| p.href == uri.path());
    let (key, label) = panel
        .map(|p| (p.key, p.label))
        .unwrap_or(("", "This panel"));
    let layout = Layout::new(&state, &who, key, label);
    render(&Unavailable { layout, label })
}

#[derive(rust_embed::RustEmbed)]
#[folder = "static/"]
struct Assets;

async fn static_file(
    crate::http::extract::Path(path): crate::http::extract::Path<String>,
) -> Response {
    match Assets::get(&path) {
        Some(file) => {
            let mime = mime_guess::from_path(&path).first_or_octet_stream();
            (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_string()),
                    (header::CACHE_CONTROL, "public, max-age=3600".to_string()),
                ],
                file.data.into_owned(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// `p` if it is a path on this site that is safe to redirect to: starts with one `/` (not
/// `//host` or `/\host`), printable ASCII only (no spaces or control characters, which would
/// break the `Location` header), and not absurdly long. Anything else is refused.
pub fn local_path(p: &str) -> Option<&str> {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= 2048
        && p.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(p)
}

/// A stored time for display: `2026-11-26 11:13` (UTC).
pub fn when(t: &str) -> String {
    t.chars().take(16).collect::<String>().replace('T', " ")
}

/// "3m", "2h 5m", "4d": how long ago `t` was.
pub fn age(now: time::OffsetDateTime, t: &str) -> String {
    let Some(then) = crate::clock::parse(t) else {
        return String::new();
    };
    let s = (now - then).whole_seconds().max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d", s / 86_400),
    }
}

/// [`when`] for an optional time; empty when there is none.
pub fn when_opt(t: &Option<String>) -> String {
    t.as_deref().map(when).unwrap_or_default()
}

/// For `<option selected>` in templates: does the optional id `a` equal `b`? Takes values or
/// references, whichever the template has.
pub fn selected(a: impl std::borrow::Borrow<Option<i64>>, b: impl IdValue) -> bool {
    *a.borrow() == Some(b.value())
}

/// An `i64` behind any number of references (template loop variables are `&&i64`).
pub trait IdValue {
    fn value(&self) -> i64;
}
impl IdValue for i64 {
    fn value(&self) -> i64 {
        *self
    }
}
impl<T: IdValue + ?Sized> IdValue for &T {
    fn value(&self) -> i64 {
        (**self).value()
    }
}
