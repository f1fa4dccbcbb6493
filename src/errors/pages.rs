//! The Errors panel: groups with counts, node badges and a 24-hour sparkline (inline SVG,
//! rendered here from the hourly histogram), filters, resolve and create-bug forms that work
//! without JavaScript, a detail page with the 7-day chart, stack trace and recent
//! occurrences, and an empty state that shows how to send errors.

use super::actions::{self, ErrorsError};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::Pagination;
use crate::tracking::BugSeverity;
use crate::web::{
    back_with_error, local_path, render, see_other, Flash, ForPage, Layout, PageError,
};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/errors", get(list_page))
        .route("/errors/{id}", get(detail_page))
        .route("/errors/{id}/resolve", post(resolve))
        .route("/errors/{id}/create-bug", post(create_bug))
}

/// Width and height of a sparkline, in SVG user units (pixels at 1:1).
const SPARK_W: f64 = 96.0;
const SPARK_H: f64 = 22.0;
/// Hours in the detail page's chart.
const DETAIL_HOURS: i64 = 24 * 7;

/// One bar of a server-rendered bar chart.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub label: String,
}

/// A bar chart of `series` in a `width` × `height` box; empty hours get no bar. Bars are
/// scaled to the largest value, with a 1-unit minimum so a single occurrence is visible.
pub fn bars(series: &[i64], axis: &[String], width: f64, height: f64) -> Vec<Bar> {
    let max = series.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = width / series.len().max(1) as f64;
    series
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > 0)
        .map(|(i, v)| {
            let h = ((*v as f64 / max) * height).max(1.0);
            Bar {
                x: format!("{:.2}", i as f64 * step),
                y: format!("{:.2}", height - h),
                w: format!("{:.2}", (step - 0.5).max(0.5)),
                h: format!("{h:.2}"),
                label: format!(
                    "{}:00 UTC: {v}",
                    axis.get(i).map(|a| a.replace('T', " ")).unwrap_or_default()
                ),
            }
        })
        .collect()
}

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn parse<T: std::str::FromStr<Err = String>>(
    field: &str,
    v: &Option<String>,
) -> Result<Option<T>, ApiError> {
    v.as_deref()
        .map(str::parse::<T>)
        .transpose()
        .map_err(|m| ApiError::invalid(field, m))
}

struct Row {
    g: ErrorGroup,
    spark: Vec<Bar>,
    total_24h: i64,
}

#[derive(Template)]
#[template(path = "errors/list.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    open: i64,
    resolved: i64,
    statuses: &'static [GroupStatus],
    levels: &'static [ErrorLevel],
    sorts: &'static [GroupSort],
    status: String,
    node: String,
    source: String,
    level: String,
    q: String,
    sort: String,
    filtered: bool,
    /// `http://host:port`, for the curl and DSN examples.
    base: String,
    /// `http://INGEST_TOKEN@host:port/1`.
    dsn_example: String,
    require_token: bool,
    spark_w: f64,
    spark_h: f64,
    /// Links to the previous / next page (filters kept), when there is one.
    prev: Option<String>,
    next: Option<String>,
}

/// `/errors?<filters>&offset=N&limit=L`.
fn page_link(q: &ListQuery, offset: i64, limit: i64) -> String {
    let mut pairs: Vec<(&str, String)> = [
        ("status", &q.status),
        ("node", &q.node),
        ("source", &q.source),
        ("level", &q.level),
        ("q", &q.q),
        ("sort", &q.sort),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect();
    pairs.push(("offset", offset.to_string()));
    pairs.push(("limit", limit.to_string()));
    format!(
        "/errors?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

/// The address people reach this server at, from the request's Host header.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
        })
        .unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

async fn list_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let filter = GroupFilter {
        status: parse("status", &q.status)?,
        node: q.node.clone(),
        source: q.source.clone(),
        level: parse("level", &q.level)?,
        q: q.q.clone(),
        sort: parse("sort", &q.sort)?,
        bug_id: None,
    };
    let groups = actions::list_groups(&s.db, &filter, page.limit, page.offset)
        .await
        .map_err(ApiError::from)?;
    let axis = actions::hour_axis(s.clock.now(), DEFAULT_HOURS);
    let ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
    let groups_len = groups.len();
    let mut series = actions::histograms(&s.db, &ids, &axis)
        .await
        .map_err(ApiError::from)?;
    let rows = groups
        .into_iter()
        .map(|g| {
            let sr = series.remove(&g.id).unwrap_or_default();
            Row {
                spark: bars(&sr, &axis, SPARK_W, SPARK_H),
                total_24h: sr.iter().sum(),
                g,
            }
        })
        .collect();
    let (mut open, mut resolved) = (0, 0);
    for (status, n) in store::status_counts(&s.db).await? {
        match status.parse::<GroupStatus>() {
            Ok(GroupStatus::Open) => open = n,
            Ok(GroupStatus::Resolved) => resolved = n,
            Err(_) => {}
        }
    }
    let flash = Flash {
        notice: q.notice.clone(),
        error: q.error.clone(),
    };
    let more = groups_len == page.limit as usize;
    let next = more.then(|| page_link(&q, page.offset + page.limit, page.limit));
    let prev =
        (page.offset > 0).then(|| page_link(&q, (page.offset - page.limit).max(0), page.limit));
    let filtered = [&q.status, &q.node, &q.source, &q.level, &q.q]
        .iter()
        .any(|v| v.is_some());
    Ok(render(&ListPage {
        layout: Layout::new(&s, &who, "errors", "Errors").with_flash(&flash),
        rows,
        open,
        resolved,
        statuses: GroupStatus::ALL,
        levels: ErrorLevel::ALL,
        sorts: GroupSort::ALL,
        status: q.status.unwrap_or_default(),
        node: q.node.unwrap_or_default(),
        source: q.source.unwrap_or_default(),
        level: q.level.unwrap_or_default(),
        q: q.q.unwrap_or_default(),
        sort: q.sort.unwrap_or_default(),
        filtered,
        dsn_example: base_url(&headers).replacen("http://", "http://INGEST_TOKEN@", 1) + "/1",
        base: base_url(&headers),
        require_token: s.errors.config.errors_require_token,
        spark_w: SPARK_W,
        spark_h: SPARK_H,
        prev,
        next,
    }))
}

#[derive(Template)]
#[template(path = "errors/detail.html")]
struct DetailPage {
    layout: Layout,
    d: GroupDetail,
    chart: Vec<Bar>,
    chart_total: i64,
    chart_w: f64,
    chart_h: f64,
    /// The y axis' top: the busiest hour's count.
    chart_max: i64,
    projects: Vec<(i64, String)>,
    inferred: Option<i64>,
    severities: &'static [BugSeverity],
    suggested: BugSeverity,
    assign: crate::agents::assign_pages::AssignBox,
}

#[derive(serde::Deserialize, Default)]
struct DetailQuery {
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn detail_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, PageError> {
    let d = actions::group_detail(&s.db, s.clock.now(), id, DETAIL_HOURS)
        .await
        .map_err(ApiError::from)?;
    let axis: Vec<String> = d.hourly.iter().map(|h| h.hour.clone()).collect();
    let series: Vec<i64> = d.hourly.iter().map(|h| h.count).collect();
    let projects = crate::tracking::store::project_names(&s.db).await?;
    let flash = Flash {
        notice: q.notice,
        error: q.error,
    };
    let title = format!("Error #{id}");
    let assign = crate::agents::assign_pages::AssignBox::load(
        &s.db,
        crate::agents::assigner::ItemKind::Error,
        id,
    )
    .await?;
    Ok(render(&DetailPage {
        layout: Layout::new(&s, &who, "errors", &title).with_flash(&flash),
        chart: bars(&series, &axis, 672.0, 80.0),
        chart_total: series.iter().sum(),
        chart_w: 672.0,
        chart_h: 80.0,
        chart_max: series.iter().copied().max().unwrap_or(0).max(1),
        inferred: actions::infer_project(&d.group, &projects),
        suggested: severity_for(d.group.level),
        severities: BugSeverity::ALL,
        projects,
        d,
        assign,
    }))
}

#[derive(serde::Deserialize)]
struct ResolveForm {
    #[serde(default)]
    next: Option<String>,
}

fn back_to(next: &Option<String>, id: i64) -> String {
    next.as_deref()
        .and_then(local_path)
        .map(str::to_string)
        .unwrap_or_else(|| format!("/errors/{id}"))
}

fn done<T>(r: Result<T, ErrorsError>, to: &str, notice: &str) -> Response {
    match r {
        Ok(_) => see_other(to, notice),
        Err(e) => back_with_error(to, &ApiError::from(e)),
    }
}

async fn resolve(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, form, ..): PageForm<Write, ResolveForm>,
) -> Response {
    let to = back_to(&form.next, id);
    let now = s.clock.now_str();
    let r = actions::resolve_group(&s.db, &who.actor(), &now, id).await;
    if r.is_ok() {
        s.events.emit(crate::events::Topic::Errors, "resolved", id);
    }
    done(r, &to, &format!("Error #{id} resolved."))
}

#[derive(serde::Deserialize)]
struct BugForm {
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

async fn create_bug(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, form, ..): PageForm<Write, BugForm>,
) -> Response {
    let to = back_to(&form.next, id);
    let req = (|| -> Result<BugFromError, ApiError> {
        let project_id = match form.project_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(
                p.parse()
                    .map_err(|_| ApiError::invalid("project_id", "choose a project"))?,
            ),
        };
        Ok(BugFromError {
            project_id,
            severity: parse("severity", &form.severity)?,
            title: None,
        })
    })();
    let req = match req {
        Ok(r) => r,
        Err(e) => return back_with_error(&to, &e),
    };
    let now = s.clock.now_str();
    match actions::create_bug(&s.db, &who.actor(), &now, id, req).await {
        Ok((bug, _)) => {
            s.events
                .emit(crate::events::Topic::Work, "bug_created", bug.id);
            see_other(&to, &format!("Bug #{} created from error #{id}.", bug.id))
        }
        Err(e) => back_with_error(&to, &ApiError::from(e)),
    }
}
