//! The Testing panel: `/testing` (suites per project with their last result, a run button,
//! upload and folder rescan), `/testing/suites/{id}` (the pass-rate and duration trend as a
//! server-rendered SVG, the runs, per-case history with the failing assertion, its excerpt
//! and flaky cases flagged) and `/testing/runs/{id}` (one run's cases). Forms work without
//! JavaScript and carry the session's CSRF token, like every other panel.

use super::actions::{self, SuitesState};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::http::error::ApiError;
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError, Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/testing", get(testing_page))
        .route("/testing/upload", post(upload))
        .route("/testing/projects/{id}/rescan", post(rescan))
        .route("/testing/suites/{id}", get(suite_page))
        .route("/testing/suites/{id}/run", post(run))
        .route("/testing/runs/{id}", get(run_page))
}

/// A project and its suites.
struct ProjectSuites {
    id: i64,
    name: String,
    has_source: bool,
    suites: Vec<TestSuite>,
}

#[derive(Template)]
#[template(path = "suites/list.html")]
struct TestingPage {
    layout: Layout,
    projects: Vec<ProjectSuites>,
    any_suite: bool,
}

async fn testing_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let all = actions::list(&s.db, None).await.map_err(ApiError::from)?;
    let projects = crate::tracking::store::list_projects(
        &s.db,
        &crate::tracking::ProjectFilter::default(),
        500,
        0,
    )
    .await
    .map_err(ApiError::from)?;
    let mut out: Vec<ProjectSuites> = projects
        .into_iter()
        .map(|p| ProjectSuites {
            suites: all
                .iter()
                .filter(|x| x.project_id == p.id)
                .cloned()
                .collect(),
            id: p.id,
            name: p.name,
            has_source: p.source_path.is_some(),
        })
        .collect();
    // Projects with suites first, then by name.
    out.sort_by(|a, b| (a.suites.is_empty(), &a.name).cmp(&(b.suites.is_empty(), &b.name)));
    Ok(render(&TestingPage {
        layout: Layout::new(&s, &who, "testing", "Testing").with_flash(&flash),
        any_suite: !all.is_empty(),
        projects: out,
    }))
}

#[derive(serde::Deserialize)]
struct UploadForm {
    project_id: i64,
    content: String,
}

async fn upload(
    State(s): State<SuitesState>,
    PageForm(who, f, ..): PageForm<Write, UploadForm>,
) -> Response {
    let input = NewSuite {
        content: f.content,
        format: None,
    };
    match actions::upload(&s, &who, f.project_id, input).await {
        Ok(t) => see_other(
            &format!("/testing/suites/{}", t.id),
            &format!("Suite {} stored.", t.name),
        ),
        Err(e) => back_with_error("/testing", &ApiError::from(e)),
    }
}

#[derive(serde::Deserialize)]
struct Empty {}

async fn rescan(
    State(s): State<SuitesState>,
    Path(id): Path<i64>,
    PageForm(who, Empty {}, ..): PageForm<Write, Empty>,
) -> Response {
    match actions::rescan(&s, &who, id).await {
        Ok(r) if r.errors.is_empty() => see_other(
            "/testing",
            &format!(
                "Read {} suite(s) from the project's {SUITES_FOLDER}/ folder{}.",
                r.stored.len(),
                if r.removed.is_empty() {
                    String::new()
                } else {
                    format!("; removed {}", r.removed.join(", "))
                }
            ),
        ),
        Ok(r) => {
            let errs: Vec<String> = r
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.error))
                .collect();
            back_with_error(
                "/testing",
                &ApiError::invalid(
                    "content",
                    format!(
                        "Read {} suite(s); not stored: {}",
                        r.stored.len(),
                        errs.join(" · ")
                    ),
                ),
            )
        }
        Err(e) => back_with_error("/testing", &ApiError::from(e)),
    }
}

#[derive(serde::Deserialize)]
struct RunForm {
    #[serde(default)]
    node: String,
    #[serde(default)]
    tags: String,
}

async fn run(
    State(s): State<SuitesState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, RunForm>,
) -> Response {
    let req = RunRequest {
        node: Some(f.node.trim().to_string()).filter(|n| !n.is_empty()),
        vars: Default::default(),
        tags: f
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
    };
    let back = format!("/testing/suites/{id}");
    match actions::queue_run(&s, &who, id, req).await {
        Ok(q) => see_other(
            &back,
            &format!("Run {} queued as task {}.", q.run.id, q.task_id),
        ),
        Err(e) => back_with_error(&back, &ApiError::from(e)),
    }
}

/// The trend of a suite's runs as an SVG: one bar per finished run (its pass rate; the failed
/// share on top in the failure colour) and a line of its duration, oldest on the left.
pub struct Trend {
    pub bars: Vec<TrendBar>,
    /// Polyline points of the duration, scaled to the slowest run.
    pub duration: String,
    pub max_ms: i64,
}

pub struct TrendBar {
    pub x: f64,
    pub w: f64,
    pub pass_y: f64,
    pub pass_h: f64,
    pub fail_h: f64,
    pub label: String,
}

/// SVG units: the drawing area of the trend chart.
pub const TREND_W: f64 = 420.0;
pub const TREND_H: f64 = 100.0;

impl Trend {
    pub fn of(runs: &[TestRun]) -> Trend {
        let done: Vec<&TestRun> = runs
            .iter()
            .rev()
            .filter(|r| r.status != RunStatus::Queued)
            .collect();
        let n = done.len().max(1) as f64;
        let slot = TREND_W / n;
        let w = (slot * 0.7).clamp(1.0, 24.0);
        let max_ms = done
            .iter()
            .filter_map(|r| r.duration_ms)
            .max()
            .unwrap_or(0)
            .max(1);
        let mut bars = Vec::new();
        let mut line = String::new();
        for (i, r) in done.iter().enumerate() {
            let total = (r.passed + r.failed + r.flaky).max(1) as f64;
            let rate = if r.status == RunStatus::Error {
                0.0
            } else {
                (r.passed + r.flaky) as f64 / total
            };
            let x = i as f64 * slot + (slot - w) / 2.0;
            let pass_h = rate * TREND_H;
            bars.push(TrendBar {
                x,
                w,
                pass_y: TREND_H - pass_h,
                pass_h,
                fail_h: TREND_H - pass_h,
                label: format!(
                    "run {}: {} passed, {} failed, {} flaky, {} ms ({})",
                    r.id,
                    r.passed + r.flaky,
                    r.failed,
                    r.flaky,
                    r.duration_ms.unwrap_or(0),
                    r.status
                ),
            });
            let y = TREND_H - (r.duration_ms.unwrap_or(0) as f64 / max_ms as f64 * TREND_H);
            line.push_str(&format!("{:.1},{:.1} ", x + w / 2.0, y));
        }
        Trend {
            bars,
            duration: line.trim_end().to_string(),
            max_ms,
        }
    }
}

#[derive(Template)]
#[template(path = "suites/suite.html")]
struct SuitePage {
    layout: Layout,
    suite: TestSuite,
    runs: Vec<TestRun>,
    cases: Vec<CaseHistory>,
    trend: Trend,
    content: String,
}

async fn suite_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let d = actions::get(&s.db, id).await.map_err(ApiError::from)?;
    let runs = super::history::runs(&s.db, id, HISTORY_RUNS)
        .await
        .map_err(ApiError::from)?;
    let cases = super::history::case_history(&s.db, id)
        .await
        .map_err(ApiError::from)?;
    Ok(render(&SuitePage {
        layout: Layout::new(&s, &who, "testing", &format!("Suite {}", d.suite.name))
            .with_flash(&flash),
        trend: Trend::of(&runs),
        suite: d.suite,
        runs,
        cases,
        content: d.content,
    }))
}

#[derive(Template)]
#[template(path = "suites/run.html")]
struct RunPage {
    layout: Layout,
    run: RunDetail,
}

async fn run_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let run = super::history::run_detail(&s.db, id)
        .await
        .map_err(ApiError::from)?;
    Ok(render(&RunPage {
        layout: Layout::new(&s, &who, "testing", &format!("Test run {id}")),
        run,
    }))
}
