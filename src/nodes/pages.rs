//! The Nodes panel: a card per node (state, heartbeat age, CPU / memory / disk gauges, a
//! 24-hour chart drawn server-side as SVG, remove with a confirm that needs no JavaScript), the
//! "Add node" flow that creates an `agent` token and shows the exact `architect agent` command
//! once, and a node page with the 7-day chart, disks and the command channel's recent commands.

use super::actions::{self, NodeError};
use super::history::{self, Chart, MetricRange};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Admin, PageAuthed, PageForm, Read};
use crate::auth::Identity;
use crate::http::error::ApiError;
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/nodes", get(nodes_page))
        .route("/nodes/add", post(add_node))
        .route("/nodes/{id}", get(node_page))
        .route("/nodes/{id}/remove", post(remove_node))
        .route("/nodes/{id}/commands", post(run_command))
        .route("/nodes/{id}/reach", post(change_reach))
}

/// A node with everything its card shows, formatted.
pub struct NodeCard {
    pub node: Node,
    /// When the node was last heard from (counted from this server's start at the earliest).
    pub heartbeat: crate::web::At,
    pub cpu: f64,
    pub memory: f64,
    pub memory_text: String,
    pub disk: f64,
    pub disk_text: String,
    pub load: String,
    pub uptime: String,
    pub processes: String,
    pub chart: Chart,
}

impl NodeCard {
    fn new(node: Node, chart: Chart, now: time::OffsetDateTime) -> NodeCard {
        let m = node.metrics.clone().unwrap_or_default();
        let (du, dt) = m.disk_totals();
        let has = node.metrics.is_some();
        NodeCard {
            heartbeat: match node.heartbeat_age_s {
                Some(s) => crate::web::at(
                    now,
                    &crate::clock::format(now - time::Duration::seconds(s.max(0))),
                ),
                None => crate::web::at(now, "never"),
            },
            cpu: round1(m.cpu_percent),
            memory: round1(m.memory_percent()),
            memory_text: if has && m.memory_total == PERCENT_UNITS {
                "reported as a percentage".into()
            } else if has {
                format!("{} of {}", bytes(m.memory_used), bytes(m.memory_total))
            } else {
                "—".into()
            },
            disk: round1(m.disk_percent()),
            disk_text: if has && dt > 0 {
                format!("{} of {}", bytes(du), bytes(dt))
            } else {
                "—".into()
            },
            load: if has {
                format!(
                    "{:.2} {:.2} {:.2}",
                    m.load_avg[0], m.load_avg[1], m.load_avg[2]
                )
            } else {
                "—".into()
            },
            uptime: if has {
                duration_text(m.uptime_s)
            } else {
                "—".into()
            },
            processes: if has {
                m.process_count.to_string()
            } else {
                "—".into()
            },
            node,
            chart,
        }
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `1.5 GiB` style.
pub fn bytes(n: impl std::borrow::Borrow<u64>) -> String {
    let n = *n.borrow();
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A disk's used share, 0–100 (for its gauge).
pub fn disk_percent(d: &DiskUsage) -> f64 {
    round1(percent(d.used, d.total))
}

/// `3d 4h`, `5h 12m`, `4m 10s`, `42s`.
pub fn duration_text(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

/// What "Add node" shows once: the token and the command that uses it.
pub struct Added {
    pub name: String,
    pub token: String,
    pub command: String,
    pub daemon_command: String,
}

#[derive(Template)]
#[template(path = "nodes/list.html")]
struct NodesPage {
    layout: Layout,
    cards: Vec<NodeCard>,
    added: Option<Added>,
    dashboard_url: String,
    local_node: bool,
}

async fn cards(s: &AppState) -> Result<Vec<NodeCard>, ApiError> {
    let nodes = actions::list_nodes(&s.nodes_state(), crate::http::extract::MAX_LIMIT, 0).await?;
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        let series = history::series(&s.nodes_state(), n.id, MetricRange::Day).await?;
        out.push(NodeCard::new(n, Chart::from_series(&series), s.clock.now()));
    }
    Ok(out)
}

/// The URL agents reach this server at, as the browser did: the request's Host.
fn dashboard_url(s: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .map(str::to_string)
        .unwrap_or_else(|| format!("127.0.0.1:{}", s.config.port));
    let scheme = if s.config.session_cookie_secure {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

async fn page(
    s: &AppState,
    who: &Identity,
    headers: &HeaderMap,
    flash: &Flash,
    added: Option<Added>,
) -> Result<Response, PageError> {
    Ok(render(&NodesPage {
        layout: Layout::new(s, who, "nodes", "Nodes").with_flash(flash),
        cards: cards(s).await?,
        added,
        dashboard_url: dashboard_url(s, headers),
        local_node: s.config.nodes.local_node,
    }))
}

async fn nodes_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    page(&s, &who, &headers, &flash, None).await
}

#[derive(Deserialize)]
struct AddForm {
    name: String,
}

/// Creates the node and its token, and shows the command on this one response (never again).
async fn add_node(
    State(s): State<AppState>,
    headers: HeaderMap,
    PageForm(who, f, ..): PageForm<Admin, AddForm>,
) -> Result<Response, PageError> {
    match actions::add_node_with_token(&s.nodes_state(), &who, f.name.trim()).await {
        Ok((node, token)) => {
            let url = dashboard_url(&s, &headers);
            let added = Added {
                command: format!(
                    "architect agent --dashboard {url} --token {} --node-id {}",
                    token.token, node.name
                ),
                daemon_command: format!(
                    "ARCHITECT_TOKEN={} architect agent --dashboard {url} --node-id {} --daemon",
                    token.token, node.name
                ),
                name: node.name,
                token: token.token,
            };
            let flash = Flash {
                notice: Some(format!(
                    "Node '{}' added. Run the command below on that machine; the token is shown only now.",
                    added.name
                )),
                error: None,
            };
            let mut resp = page(&s, &who, &headers, &flash, Some(added)).await?;
            // The token is on this page: never cached.
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(resp)
        }
        Err(e) => Ok(back_with_error("/nodes", &ApiError::from(e))),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn remove_node(
    State(s): State<NodesState>,
    Path(id): Path<i64>,
    PageForm(who, Empty {}, ..): PageForm<Admin, Empty>,
) -> Response {
    let name = actions::node(&s, id).await.map(|n| n.name);
    match (name, actions::delete_node(&s, &who, id).await) {
        (Ok(name), Ok(())) => see_other(
            "/nodes",
            &format!("Removed node '{name}' and revoked its agent token."),
        ),
        (_, Err(e)) | (Err(e), _) => back_with_error("/nodes", &ApiError::from(e)),
    }
}

#[derive(Template)]
#[template(path = "nodes/node.html")]
struct NodePage {
    layout: Layout,
    card: NodeCard,
    week: Chart,
    commands: Vec<NodeCommand>,
}

async fn node_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let node = actions::node(&s.nodes_state(), id)
        .await
        .map_err(ApiError::from)?;
    let day = history::series(&s.nodes_state(), id, MetricRange::Day).await?;
    let week = history::series(&s.nodes_state(), id, MetricRange::Week).await?;
    let commands = store::recent_commands(&s.db, id, 20, 0).await?;
    let title = format!("Node {}", node.name);
    Ok(render(&NodePage {
        layout: Layout::new(&s, &who, "nodes", &title).with_flash(&flash),
        card: NodeCard::new(node, Chart::from_series(&day), s.clock.now()),
        week: Chart::from_series(&week),
        commands,
    }))
}

#[derive(Deserialize)]
struct CommandForm {
    command: String,
    #[serde(default)]
    socket: Option<String>,
}

/// Queues one of the built-in commands from the node page.
async fn run_command(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Admin, CommandForm>,
) -> Response {
    let back = format!("/nodes/{id}");
    let args = match f.socket.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(sock) if f.command == "tmux-list" => serde_json::json!({"socket": sock}),
        _ => serde_json::json!({}),
    };
    let r = actions::enqueue_command(
        &s.nodes_state(),
        &who.actor(),
        id,
        NewCommand {
            command: f.command,
            args: Some(args),
            timeout_s: None,
        },
    )
    .await;
    match r {
        Ok(c) => see_other(
            &back,
            &format!("Command #{} queued; reload to see its result.", c.id),
        ),
        Err(NodeError::NotFound(w)) => back_with_error("/nodes", &ApiError::not_found(w)),
        Err(e) => back_with_error(&back, &ApiError::from(e)),
    }
}

/// The node page's "How to reach it" form: every field as typed; empty clears.
#[derive(Deserialize)]
struct ReachForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    ssh_user: String,
    #[serde(default)]
    ssh_port: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    services: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    ssh_secret: String,
}

async fn change_reach(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Admin, ReachForm>,
) -> Response {
    let back = format!("/nodes/{id}");
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let port = match f.ssh_port.trim() {
        "" => Ok(0),
        p => p.parse::<i64>(),
    };
    let Ok(port) = port else {
        return back_with_error(
            &back,
            &ApiError::invalid("ssh_port", "ssh_port must be a number, 1 to 65535"),
        );
    };
    let change = reach::ReachChange {
        address: Some(f.address),
        addresses: None,
        ssh_user: Some(f.ssh_user),
        ssh_port: Some(port),
        role: Some(f.role),
        services: Some(list(&f.services)),
        tags: Some(list(&f.tags)),
        ssh_secret: Some(f.ssh_secret),
    };
    match actions::change_reach(&s.nodes_state(), &who, id, change).await {
        Ok(n) => see_other(&back, &format!("Saved how to reach {}.", n.name)),
        Err(NodeError::NotFound(w)) => back_with_error("/nodes", &ApiError::not_found(w)),
        Err(e) => back_with_error(&back, &ApiError::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_and_durations() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(duration_text(42), "42s");
        assert_eq!(duration_text(250), "4m 10s");
        assert_eq!(duration_text(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
    }
}
