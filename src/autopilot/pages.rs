//! The Autopilot panel: its runs (each with its timeline), and the planning pages: the review queue (everything waiting on a person),
//! proposed milestones with approve/reject, task suggestions with confirm/skip and a scan
//! button per project; and one proposed milestone with its phases, tasks and items
//! (`path:line`). Forms work without JavaScript; the buttons carry access keys (`a` approve,
//! `r` reject on a milestone's page).

use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::http::error::ApiError;
use crate::planning::*;
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError, Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/autopilot", get(overview_page))
        .route("/autopilot/scan", post(scan_form))
        .route("/autopilot/suggest", post(suggest_form))
        .route("/autopilot/milestones/{id}", get(milestone_page))
        .route("/autopilot/milestones/{id}/approve", post(approve_form))
        .route("/autopilot/milestones/{id}/reject", post(reject_form))
        .route("/autopilot/suggestions/{id}/confirm", post(confirm_form))
        .route("/autopilot/suggestions/{id}/skip", post(skip_form))
        .route("/autopilot/runs/{id}", get(run_page))
        .route("/autopilot/items/{id}/diff", get(diff_page))
        .route("/autopilot/runs/{id}/{how}", post(run_form))
        .route("/autopilot/gates/{id}", get(gate_page))
        .route("/autopilot/gates/{id}/{how}", post(gate_form))
}

#[derive(serde::Deserialize, Default)]
struct FlashQuery {
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

struct ProjectRow {
    id: i64,
    name: String,
    source_path: Option<String>,
    last_scan: Option<ScanRun>,
    pending: usize,
    autopilot: Option<super::ProjectAutopilot>,
}

struct RunRow {
    r: super::Run,
    project: String,
}

struct PlanRow {
    m: PlanMilestone,
    project: String,
    tasks: usize,
    items: usize,
}

struct SuggestionRow {
    s: Suggestion,
    project: String,
}

#[derive(Template)]
#[template(path = "autopilot/autopilot.html")]
struct AutopilotPage {
    layout: Layout,
    queue: crate::overview::queue::ReviewQueue,
    projects: Vec<ProjectRow>,
    plans: Vec<PlanRow>,
    suggestions: Vec<SuggestionRow>,
    targets: &'static [Target],
    runs: Vec<RunRow>,
    paused_globally: bool,
}

fn map_err(e: impl Into<PlanningError>) -> PageError {
    PageError::Error(ApiError::from(e.into()))
}

async fn overview_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(q): Query<FlashQuery>,
) -> Result<Response, PageError> {
    let queue = crate::overview::queue::gather(&s).await.map_err(map_err)?;
    let projects = crate::tracking::store::list_projects(
        &s.db,
        &crate::tracking::ProjectFilter {
            status: Some(crate::tracking::ProjectStatus::Active),
            ..Default::default()
        },
        1000,
        0,
    )
    .await
    .map_err(map_err)?;
    let names: std::collections::HashMap<i64, String> =
        projects.iter().map(|p| (p.id, p.name.clone())).collect();
    let scans = store::latest_scans(&s.db, None).await.map_err(map_err)?;
    let plans = store::list_plans(&s.db, &store::PlanFilter::default(), 200, 0)
        .await
        .map_err(map_err)?;
    let suggestions = store::list_suggestions(&s.db, &store::SuggestionFilter::default(), 200, 0)
        .await
        .map_err(map_err)?;
    let settings = super::store::settings(&s.db).await.map_err(run_err)?;
    let runs = super::store::list_runs(&s.db, &super::store::RunFilter::default(), 20, 0)
        .await
        .map_err(run_err)?;
    let paused_globally = super::store::globally_paused(&s.db)
        .await
        .map_err(run_err)?;
    let flash = Flash {
        notice: q.notice,
        error: q.error,
    };
    Ok(render(&AutopilotPage {
        runs: runs
            .into_iter()
            .map(|r| RunRow {
                project: names.get(&r.project_id).cloned().unwrap_or_default(),
                r,
            })
            .collect(),
        paused_globally,
        layout: Layout::new(&s, &who, "autopilot", "Autopilot").with_flash(&flash),
        queue,
        projects: projects
            .iter()
            .map(|p| ProjectRow {
                id: p.id,
                name: p.name.clone(),
                source_path: p.source_path.clone(),
                last_scan: scans.iter().find(|x| x.project_id == p.id).cloned(),
                pending: plans.iter().filter(|m| m.project_id == p.id).count(),
                autopilot: settings.iter().find(|x| x.project_id == p.id).cloned(),
            })
            .collect(),
        plans: plans
            .into_iter()
            .map(|m| PlanRow {
                project: names.get(&m.project_id).cloned().unwrap_or_default(),
                tasks: m.phases.iter().map(|p| p.tasks.len()).sum(),
                items: m.item_ids().len(),
                m,
            })
            .collect(),
        suggestions: suggestions
            .into_iter()
            .map(|s| SuggestionRow {
                project: names.get(&s.project_id).cloned().unwrap_or_default(),
                s,
            })
            .collect(),
        targets: Target::ALL,
    }))
}

#[derive(Template)]
#[template(path = "autopilot/milestone.html")]
struct MilestonePage {
    layout: Layout,
    d: PlanMilestoneDetail,
    items: std::collections::HashMap<i64, PlanItem>,
}

async fn milestone_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(q): Query<FlashQuery>,
) -> Result<Response, PageError> {
    let d = actions::plan_detail(&s, id).await.map_err(map_err)?;
    let items = d.items.iter().map(|i| (i.id, i.clone())).collect();
    let flash = Flash {
        notice: q.notice,
        error: q.error,
    };
    let title = format!("Proposed milestone: {}", d.milestone.title);
    Ok(render(&MilestonePage {
        layout: Layout::new(&s, &who, "autopilot", &title).with_flash(&flash),
        d,
        items,
    }))
}

#[derive(serde::Deserialize)]
struct ScanForm {
    project_id: i64,
}

async fn scan_form(
    State(s): State<AppState>,
    PageForm(who, form, ..): PageForm<Write, ScanForm>,
) -> Response {
    match actions::scan_project(&s, &who.actor(), form.project_id).await {
        Ok(r) => see_other(
            "/autopilot",
            &format!(
                "Scanned {}: {} files ({} read), {} open items ({} new, {} edited, {} done); {} milestones wait for approval.",
                r.project,
                r.scan.files,
                r.scan.files_read,
                r.scan.items,
                r.scan.added,
                r.scan.edited,
                r.scan.done,
                r.pending.len()
            ),
        ),
        Err(e) => back_with_error("/autopilot", &ApiError::from(e)),
    }
}

#[derive(serde::Deserialize)]
struct SuggestForm {
    #[serde(default)]
    project_id: Option<String>,
}

async fn suggest_form(
    State(s): State<AppState>,
    PageForm(who, form, ..): PageForm<Write, SuggestForm>,
) -> Response {
    let project_id = match form.project_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => match p.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                return back_with_error(
                    "/autopilot",
                    &ApiError::invalid("project_id", "choose a project"),
                )
            }
        },
    };
    match suggest::generate(&s, &who.actor(), suggest::SuggestRequest { project_id }).await {
        Ok(g) => see_other(
            "/autopilot#suggestions",
            &format!("{} new suggestions.", g.created.len()),
        ),
        Err(e) => back_with_error("/autopilot", &ApiError::from(e)),
    }
}

async fn approve_form(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, _form, ..): PageForm<Write, FlashQuery>,
) -> Response {
    match actions::approve(&s, &who.actor(), id).await {
        Ok((_, m)) => see_other(
            &format!("/milestones/{}", m.id),
            &format!(
                "Approved: milestone #{} and its features were created.",
                m.id
            ),
        ),
        Err(e) => back_with_error(&format!("/autopilot/milestones/{id}"), &ApiError::from(e)),
    }
}

#[derive(serde::Deserialize)]
struct RejectForm {
    #[serde(default)]
    reason: String,
}

async fn reject_form(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, form, ..): PageForm<Write, RejectForm>,
) -> Response {
    match actions::reject(&s, &who.actor(), id, &form.reason).await {
        Ok(_) => see_other("/autopilot", &format!("Proposed milestone #{id} rejected.")),
        Err(e) => back_with_error(&format!("/autopilot/milestones/{id}"), &ApiError::from(e)),
    }
}

#[derive(serde::Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    target: Option<String>,
}

async fn confirm_form(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, form, ..): PageForm<Write, ConfirmForm>,
) -> Response {
    let target = match form.target.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => match t.parse::<Target>() {
            Ok(t) => Some(t),
            Err(m) => return back_with_error("/autopilot", &ApiError::invalid("target", m)),
        },
    };
    let req = suggest::ConfirmRequest {
        target,
        ..Default::default()
    };
    match suggest::confirm(&s, &who, id, req).await {
        Ok(v) => see_other(
            "/autopilot#suggestions",
            &format!(
                "Suggestion #{id} confirmed into {} #{}.",
                v.suggestion.result_kind.map(|k| k.as_str()).unwrap_or("?"),
                v.suggestion.result_id.unwrap_or(0)
            ),
        ),
        Err(e) => back_with_error("/autopilot#suggestions", &ApiError::from(e)),
    }
}

#[derive(serde::Deserialize)]
struct SkipForm {
    #[serde(default)]
    reason: Option<String>,
}

async fn skip_form(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, form, ..): PageForm<Write, SkipForm>,
) -> Response {
    match suggest::skip(
        &s,
        &who.actor(),
        id,
        suggest::NoteRequest { note: form.reason },
    )
    .await
    {
        Ok(_) => see_other(
            "/autopilot#suggestions",
            &format!("Suggestion #{id} skipped."),
        ),
        Err(e) => back_with_error("/autopilot#suggestions", &ApiError::from(e)),
    }
}

fn run_err(e: impl Into<super::AutopilotError>) -> PageError {
    PageError::Error(ApiError::from(e.into()))
}

#[derive(Template)]
#[template(path = "autopilot/run.html")]
struct RunPage {
    layout: Layout,
    d: super::RunDetail,
}

async fn run_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(q): Query<FlashQuery>,
) -> Result<Response, PageError> {
    let d = super::actions::detail(&s, id).await.map_err(run_err)?;
    let flash = Flash {
        notice: q.notice,
        error: q.error,
    };
    let title = format!("Run #{id} · {}", d.project_name);
    Ok(render(&RunPage {
        layout: Layout::new(&s, &who, "autopilot", &title).with_flash(&flash),
        d,
    }))
}

async fn run_form(
    State(s): State<AppState>,
    Path((id, how)): Path<(i64, String)>,
    PageForm(who, _f, ..): PageForm<Write, FlashQuery>,
) -> Response {
    use super::actions::Move;
    let to = format!("/autopilot/runs/{id}");
    let how = match how.as_str() {
        "resume" => Move::Resume,
        "pause" => Move::Pause,
        "cancel" => Move::Cancel,
        _ => return back_with_error(&to, &ApiError::invalid("action", "resume, pause or cancel")),
    };
    match super::actions::move_run(&s, &who.actor(), id, how, None).await {
        Ok(r) => see_other(&to, &format!("Run #{id} is {}.", r.state)),
        Err(e) => back_with_error(&to, &ApiError::from(e)),
    }
}

#[derive(Template)]
#[template(path = "autopilot/diff.html")]
struct DiffPage {
    layout: Layout,
    d: super::gates::Diff,
    run_id: i64,
    title: String,
    /// (class, text) per line of the unified diff.
    lines: Vec<(&'static str, String)>,
}

/// The class a unified diff's line is shown with.
fn diff_class(line: &str) -> &'static str {
    if line.starts_with("diff --git") {
        "file"
    } else if line.starts_with("+++") || line.starts_with("---") || line.starts_with("index ") {
        "meta"
    } else if line.starts_with("@@") {
        "hunk"
    } else if line.starts_with('+') {
        "add"
    } else if line.starts_with('-') {
        "del"
    } else {
        "ctx"
    }
}

/// An item's proposed change, rendered (the API's `GET /api/autopilot/items/{id}/diff`).
async fn diff_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let item = super::work::item(&s.db, id)
        .await
        .map_err(run_err)?
        .ok_or_else(|| run_err(super::AutopilotError::NotFound("work item")))?;
    let d = super::gates::item_diff(&s, id).await.map_err(run_err)?;
    let lines = d
        .diff
        .lines()
        .map(|l| (diff_class(l), l.to_string()))
        .collect();
    let title = format!("Item {} of run #{} · diff", item.seq, item.run_id);
    Ok(render(&DiffPage {
        layout: Layout::new(&s, &who, "autopilot", &title),
        d,
        run_id: item.run_id,
        title: item.title,
        lines,
    }))
}

/// A gate's page is its row on its run's page.
async fn gate_page(
    State(s): State<AppState>,
    _: PageAuthed<Read>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let g = super::work::gate(&s.db, id)
        .await
        .map_err(run_err)?
        .ok_or_else(|| run_err(super::AutopilotError::NotFound("gate")))?;
    use axum::response::IntoResponse;
    Ok(
        axum::response::Redirect::to(&format!("/autopilot/runs/{}#gate-{id}", g.run_id))
            .into_response(),
    )
}

#[derive(serde::Deserialize)]
struct GateForm {
    #[serde(default)]
    reason: String,
}

async fn gate_form(
    State(s): State<AppState>,
    Path((id, how)): Path<(i64, String)>,
    PageForm(who, form, ..): PageForm<Write, GateForm>,
) -> Response {
    let back = match super::work::gate(&s.db, id).await {
        Ok(Some(g)) => format!("/autopilot/runs/{}", g.run_id),
        _ => "/autopilot".to_string(),
    };
    let approve = match how.as_str() {
        "approve" => true,
        "reject" if form.reason.trim().is_empty() => {
            return back_with_error(
                &back,
                &ApiError::invalid("reason", "say why it is rejected"),
            )
        }
        "reject" => false,
        _ => return back_with_error(&back, &ApiError::invalid("action", "approve or reject")),
    };
    match super::gates::decide(&s, &who.actor(), id, approve, form.reason.trim()).await {
        Ok(g) => see_other(&back, &format!("Gate #{id} {}.", g.state)),
        Err(e) => back_with_error(&back, &ApiError::from(e)),
    }
}
