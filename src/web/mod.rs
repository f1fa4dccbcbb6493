//! The dashboard shell: the page layout every panel shares (display helpers in `display.rs`,
//! the page extractors in `extract.rs`), embedded static
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

mod display;
mod extract;
pub use display::*;
pub use extract::*;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/static/{*path}", get(static_file))
        .route("/favicon.ico", get(favicon));
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
        key: "documentation",
        label: "Documentation",
        href: "/documentation",
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
        available: true,
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
        key: "testing",
        label: "Testing",
        href: "/testing",
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
        key: "accounts",
        label: "Accounts",
        href: "/accounts",
        group: "System",
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
    /// When the page was rendered: relative times ([`At`]) count from here.
    pub now: time::OffsetDateTime,
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
            now: state.clock.now(),
        }
    }

    /// A stored time as shown on this page: see [`At`].
    pub fn at(&self, t: &str) -> At {
        at(self.now, t)
    }

    /// [`Layout::at`] for an optional time; `None` shows nothing.
    pub fn at_opt(&self, t: &Option<String>) -> At {
        at(self.now, t.as_deref().unwrap_or(""))
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

/// What was typed into a form, kept so that a form answered with an error shows it again
/// (instead of a redirect that empties it). Keys are the form's field names; empty when the
/// page shows a fresh form.
#[derive(Debug, Clone, Default)]
pub struct Draft(Vec<(String, String)>);

impl Draft {
    /// The fields of a submitted form, as text.
    pub fn of(form: &impl serde::Serialize) -> Draft {
        let fields = match serde_json::to_value(form) {
            Ok(serde_json::Value::Object(m)) => m
                .into_iter()
                .filter_map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Null => return None,
                        other => other.to_string(),
                    };
                    Some((k, text))
                })
                .collect(),
            _ => Vec::new(),
        };
        Draft(fields)
    }

    /// True for a fresh form: templates then show their defaults.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The typed value of `field` ("" when none).
    pub fn get(&self, field: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == field)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The typed value, or `default` on a fresh form (a field the person emptied stays empty).
    pub fn or(&self, field: &str, default: impl std::fmt::Display) -> String {
        if self.is_empty() {
            default.to_string()
        } else {
            self.get(field).to_string()
        }
    }

    /// For `<option selected>`: `value` was chosen for `field`, or (on a fresh form) `current`
    /// says it is the value shown now.
    pub fn chosen(&self, field: &str, value: impl std::fmt::Display, current: bool) -> bool {
        if self.is_empty() {
            current
        } else {
            self.is(field, value)
        }
    }

    /// For `<option selected>`: was `value` chosen for `field`?
    pub fn is(&self, field: &str, value: impl std::fmt::Display) -> bool {
        !self.is_empty() && self.get(field) == value.to_string()
    }
}

/// A form page shown again after an error: the page (rendered with its [`Draft`] and the
/// error as its flash) answered with the error's status, so nothing mistakes it for success.
pub fn form_again(status: StatusCode, page: Result<Response, PageError>) -> Response {
    match page {
        Ok(mut r) => {
            *r.status_mut() = status;
            r
        }
        Err(e) => e.into_response(),
    }
}

/// Renders a template, or a plain error page if rendering fails.
pub fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => PageError::Error(ApiError::internal(e)).into_response(),
    }
}

pub use crate::http::page::PageError;

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

/// Browsers ask for `/favicon.ico` whatever the page links; answer with the same icon.
async fn favicon() -> Response {
    match Assets::get("favicon.svg") {
        Some(file) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            file.data.into_owned(),
        )
            .into_response(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> time::OffsetDateTime {
        crate::clock::parse("2026-11-26T11:13:05.000000Z").unwrap()
    }

    #[test]
    fn relative_times_both_ways() {
        for (delta, text) in [
            (0, "just now"),
            (-4, "just now"),
            (-45, "45 s ago"),
            (-180, "3 min ago"),
            (-7300, "2 h ago"),
            (-4 * 86_400, "4 d ago"),
            (7200, "in 2 h"),
            (90, "in 1 min"),
        ] {
            assert_eq!(relative(delta), text, "{delta}");
        }
    }

    #[test]
    fn a_time_carries_its_utc_instant_and_escapes_anything_else() {
        let t = at(now(), "2026-11-26T11:10:05.000000Z");
        assert_eq!(
            t.to_string(),
            r#"<time datetime="2026-11-26T11:10:05Z" title="2026-11-26 11:10:05 UTC">3 min ago</time>"#
        );
        assert_eq!(t.relative(), "3 min ago");
        assert_eq!(
            at(now(), r#""><script>x</script>"#).to_string(),
            "&quot;&gt;&lt;script&gt;x&lt;/script&gt;"
        );
        assert_eq!(at(now(), "").to_string(), "");
    }

    #[test]
    fn status_labels_read_as_words() {
        assert_eq!(label("in_progress"), "In progress");
        assert_eq!(label("wont_fix"), "Won't fix");
        assert_eq!(label("half_open"), "Half open");
        assert_eq!(label(""), "");
    }

    #[test]
    fn money_keeps_digits_below_a_cent() {
        for (usd, text) in [
            (0.005, "$0.005"),
            (0.00123, "$0.0012"),
            (0.01, "$0.01"),
            (0.5, "$0.50"),
            (12.346, "$12.35"),
            (0.0, "$0.00"),
            (-0.005, "-$0.005"),
        ] {
            assert_eq!(money(usd), text, "{usd}");
        }
    }

    #[test]
    fn a_draft_gives_back_what_was_typed() {
        #[derive(serde::Serialize)]
        struct F {
            name: String,
            #[serde(rename = "type")]
            kind: String,
            n: i64,
            gone: Option<String>,
        }
        let d = Draft::of(&F {
            name: "x".into(),
            kind: "shell".into(),
            n: 3,
            gone: None,
        });
        assert_eq!(d.get("name"), "x");
        assert!(d.is("type", "shell") && !d.is("type", "git"));
        assert_eq!(d.get("n"), "3");
        assert_eq!(d.or("gone", "default"), "");
        assert_eq!(Draft::default().or("gone", "default"), "default");
        assert!(!Draft::default().is("type", ""));
    }
}
