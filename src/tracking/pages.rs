//! Dashboard panels for projects, milestones, features, bugs and devops tasks. Reading works
//! without JavaScript; every change is a plain form post (with the CSRF field) that redirects
//! back with a notice or an error.

use super::actions::{self, Ctx};
use super::store;
use super::*;
use crate::agents::assign::ItemKind;
use crate::agents::assign_pages::AssignBox;
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::auth::Identity;
use crate::http::error::ApiError;
use crate::http::extract::Pagination;
use crate::web::{
    back_with_error, form_again, render, see_other, Draft, Flash, ForPage, Layout, PageError,
};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects", get(projects_page).post(projects_create))
        .route("/projects/{id}", get(project_page).post(project_update))
        .route("/projects/{id}/archive", post(project_archive))
        .route("/projects/{id}/unarchive", post(project_unarchive))
        .route("/milestones", get(milestones_page).post(milestones_create))
        .route(
            "/milestones/{id}",
            get(milestone_page).post(milestone_update),
        )
        .route("/features", get(features_page).post(features_create))
        .route("/features/{id}", get(feature_page).post(feature_update))
        .route("/features/{id}/status", post(feature_status))
        .route("/bugs", get(bugs_page).post(bugs_create))
        .route("/bugs/{id}", get(bug_page).post(bug_update))
        .route("/bugs/{id}/status", post(bug_status))
        .route("/devops", get(devops_page).post(devops_create))
        .route("/devops/{id}", get(devops_task_page).post(devops_update))
}

// ---- form helpers: HTML forms send every field as text, empty meaning "none" ----

fn opt_text(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn opt_id(field: &'static str, v: &str) -> Result<Option<i64>, ApiError> {
    match v.trim() {
        "" => Ok(None),
        s => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid(field, format!("{field} must be a number"))),
    }
}

fn num(field: &'static str, v: &str, default: i64) -> Result<i64, ApiError> {
    opt_id(field, v).map(|n| n.unwrap_or(default))
}

fn tags_of(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// Runs a tracking action for a form and redirects: to `ok_to` with a notice, or back to
/// `back_to` with the error.
fn finish<T>(
    result: Result<T, actions::TrackingError>,
    ok_to: impl FnOnce(&T) -> (String, String),
    back_to: &str,
) -> Response {
    match result {
        Ok(v) => {
            let (to, notice) = ok_to(&v);
            see_other(&to, &notice)
        }
        Err(e) => back_with_error(back_to, &ApiError::from(e)),
    }
}

/// An edit form's answer: to `ok_to` with a notice, or (`again`) its page shown again as typed
/// with the error.
async fn finish_or_again<T, Fut>(
    result: Result<T, ApiError>,
    ok_to: impl FnOnce(&T) -> (String, String),
    again: impl FnOnce(ApiError) -> Fut,
) -> Response
where
    Fut: std::future::Future<Output = Response>,
{
    match result {
        Ok(v) => {
            let (to, notice) = ok_to(&v);
            see_other(&to, &notice)
        }
        Err(e) => again(e).await,
    }
}

/// The error as the flash of a page shown again.
fn error_flash(e: &ApiError) -> Flash {
    Flash {
        notice: None,
        error: Some(e.message.clone()),
    }
}

fn ctx_of<'a>(s: &'a AppState, actor: &'a str, now: &'a str) -> Ctx<'a> {
    Ctx {
        actor,
        now,
        events: &s.events,
    }
}

fn layout(s: &AppState, who: &Identity, key: &'static str, title: &str, flash: &Flash) -> Layout {
    Layout::new(s, who, key, title).with_flash(flash)
}

/// Flash messages and filters share one query string.
#[derive(Deserialize, Default)]
struct WithFlash<F> {
    #[serde(flatten)]
    filter: F,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl<F> WithFlash<F> {
    fn split(self) -> (F, Flash) {
        (
            self.filter,
            Flash {
                notice: self.notice,
                error: self.error,
            },
        )
    }
}

/// Project pickers and id → name lookups for tables.
struct Names(Vec<(i64, String)>);

impl Names {
    async fn load(s: &AppState) -> Result<Names, sqlx::Error> {
        Ok(Names(store::project_names(&s.db).await?))
    }
    fn of(&self, id: &i64) -> String {
        self.0
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| format!("#{id} (archived)"))
    }
    fn opt(&self, id: &Option<i64>) -> String {
        id.as_ref().map(|i| self.of(i)).unwrap_or_default()
    }
}

/// Milestones grouped under their project, for a milestone picker: `<optgroup>` per project
/// (without JavaScript), and the script shows only the chosen project's group.
pub struct MilestoneGroup<'a> {
    pub project_id: i64,
    pub project: String,
    pub milestones: Vec<&'a Milestone>,
}

fn milestone_groups<'a>(names: &Names, milestones: &'a [Milestone]) -> Vec<MilestoneGroup<'a>> {
    let mut groups: Vec<MilestoneGroup<'a>> = Vec::new();
    for m in milestones {
        match groups.iter_mut().find(|g| g.project_id == m.project_id) {
            Some(g) => g.milestones.push(m),
            None => groups.push(MilestoneGroup {
                project_id: m.project_id,
                project: names.of(&m.project_id),
                milestones: vec![m],
            }),
        }
    }
    groups.sort_by(|a, b| a.project.cmp(&b.project));
    groups
}

impl FeaturesPage {
    fn milestone_groups(&self) -> Vec<MilestoneGroup<'_>> {
        milestone_groups(&self.names, &self.milestones)
    }
}

impl BugsPage {
    fn milestone_groups(&self) -> Vec<MilestoneGroup<'_>> {
        milestone_groups(&self.names, &self.milestones)
    }
}

// ---- projects ----

/// Filters arrive as text so that a flattened query string parses (serde_urlencoded cannot
/// parse numbers or booleans through `flatten`).
#[derive(Deserialize, Default)]
struct ProjectQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    include_archived: Option<String>,
}

#[derive(Template)]
#[template(path = "tracking/projects.html")]
struct ProjectsPage {
    layout: Layout,
    /// What was typed into the create form, shown again after an error.
    draft: Draft,
    projects: Vec<Project>,
    q: String,
    status: String,
    include_archived: bool,
    statuses: &'static [ProjectStatus],
}

async fn projects_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    Query(q): Query<WithFlash<ProjectQuery>>,
) -> Result<Response, PageError> {
    let (q, flash) = q.split();
    projects_view(&s, &who, page, q, flash, Draft::default()).await
}

/// The create form again after an error: the list unfiltered, the form as it was typed.
async fn projects_again(s: &AppState, who: &Identity, e: ApiError, draft: Draft) -> Response {
    let flash = Flash {
        notice: None,
        error: Some(e.message.clone()),
    };
    let page = projects_view(
        s,
        who,
        Pagination::default(),
        ProjectQuery::default(),
        flash,
        draft,
    )
    .await;
    form_again(e.status, page)
}

async fn projects_view(
    s: &AppState,
    who: &Identity,
    page: Pagination,
    q: ProjectQuery,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<ProjectStatus>)
        .transpose()
        .map_err(|m| ApiError::invalid("status", m))?;
    let include_archived = q.include_archived.as_deref() == Some("true");
    let filter = ProjectFilter {
        status,
        q: q.q.clone(),
        include_archived: Some(include_archived),
    };
    let projects = store::list_projects(&s.db, &filter, page.limit, page.offset).await?;
    Ok(render(&ProjectsPage {
        layout: layout(s, who, "projects", "Projects", &flash),
        draft,
        projects,
        q: q.q.unwrap_or_default(),
        status: q.status.unwrap_or_default(),
        include_archived,
        statuses: ProjectStatus::ALL,
    }))
}

#[derive(Deserialize, Serialize)]
struct ProjectForm {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    source_path: String,
    #[serde(default)]
    tags: String,
    status: ProjectStatus,
}

async fn projects_create(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, ProjectForm>,
) -> Response {
    let draft = Draft::of(&f);
    let (actor, now) = (who.actor(), s.clock.now_str());
    let input = NewProject {
        name: f.name,
        description: Some(f.description),
        source_path: opt_text(&f.source_path),
        status: Some(f.status),
        tags: Some(tags_of(&f.tags)),
    };
    let r = actions::create_project(&s.db, &ctx_of(&s, &actor, &now), input).await;
    match r {
        Ok(p) => see_other("/projects", &format!("Project '{}' created.", p.name)),
        Err(e) => projects_again(&s, &who, ApiError::from(e), draft).await,
    }
}

#[derive(Template)]
#[template(path = "tracking/project.html")]
struct ProjectPage {
    layout: Layout,
    /// What was typed into the edit form, shown again after an error.
    draft: Draft,
    project: Project,
    milestones: Vec<Milestone>,
    features: Vec<Feature>,
    bugs: Vec<Bug>,
    statuses: &'static [ProjectStatus],
}

async fn project_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    project_view(&s, &who, id, flash, Draft::default()).await
}

/// The edit form again after an error, as it was typed.
async fn project_again(
    s: &AppState,
    who: &Identity,
    id: i64,
    e: ApiError,
    draft: Draft,
) -> Response {
    form_again(
        e.status,
        project_view(s, who, id, error_flash(&e), draft).await,
    )
}

async fn project_view(
    s: &AppState,
    who: &Identity,
    id: i64,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let project = store::get_project(&s.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let milestones = store::list_milestones(
        &s.db,
        &MilestoneFilter {
            project_id: Some(id),
            status: None,
        },
        200,
        0,
    )
    .await?;
    let features = store::list_features(
        &s.db,
        &FeatureFilter {
            project_id: Some(id),
            ..Default::default()
        },
        200,
        0,
    )
    .await?;
    let bugs = store::list_bugs(
        &s.db,
        &BugFilter {
            project_id: Some(id),
            ..Default::default()
        },
        200,
        0,
    )
    .await?;
    let title = format!("Project: {}", project.name);
    Ok(render(&ProjectPage {
        layout: layout(s, who, "projects", &title, &flash),
        draft,
        project,
        milestones,
        features,
        bugs,
        statuses: ProjectStatus::ALL,
    }))
}

async fn project_update(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, ProjectForm>,
) -> Response {
    let draft = Draft::of(&f);
    let (actor, now) = (who.actor(), s.clock.now_str());
    let patch = ProjectPatch {
        name: Some(f.name),
        description: Some(f.description),
        source_path: Some(opt_text(&f.source_path)),
        status: Some(f.status),
        tags: Some(tags_of(&f.tags)),
        archived: None,
    };
    let r = actions::update_project(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    finish_or_again(
        r.map_err(ApiError::from),
        |p| (format!("/projects/{}", p.id), "Project saved.".into()),
        |e| project_again(&s, &who, id, e, draft),
    )
    .await
}

#[derive(Deserialize)]
struct Empty {}

async fn project_archive(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, Empty {}, ..): PageForm<Write, Empty>,
) -> Response {
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::archive_project(&s.db, &ctx_of(&s, &actor, &now), id).await;
    finish(
        r,
        |p| {
            (
                "/projects".into(),
                format!(
                    "Project '{}' archived. Show archived projects to restore it.",
                    p.name
                ),
            )
        },
        &format!("/projects/{id}"),
    )
}

async fn project_unarchive(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, Empty {}, ..): PageForm<Write, Empty>,
) -> Response {
    let (actor, now) = (who.actor(), s.clock.now_str());
    let patch = ProjectPatch {
        archived: Some(false),
        ..Default::default()
    };
    let r = actions::update_project(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    finish(
        r,
        |p| (format!("/projects/{}", p.id), "Project restored.".into()),
        &format!("/projects/{id}"),
    )
}

// ---- milestones ----

#[derive(Deserialize, Default)]
struct MilestoneQuery {
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Template)]
#[template(path = "tracking/milestones.html")]
struct MilestonesPage {
    layout: Layout,
    /// What was typed into the create form, shown again after an error.
    draft: Draft,
    milestones: Vec<Milestone>,
    names: Names,
    project_id: Option<i64>,
    status: String,
    statuses: &'static [MilestoneStatus],
}

async fn milestones_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    Query(q): Query<WithFlash<MilestoneQuery>>,
) -> Result<Response, PageError> {
    let (q, flash) = q.split();
    milestones_view(&s, &who, page, q, flash, Draft::default()).await
}

/// The create form again after an error: the list unfiltered, the form as it was typed.
async fn milestones_again(s: &AppState, who: &Identity, e: ApiError, draft: Draft) -> Response {
    let flash = Flash {
        notice: None,
        error: Some(e.message.clone()),
    };
    let page = milestones_view(
        s,
        who,
        Pagination::default(),
        MilestoneQuery::default(),
        flash,
        draft,
    )
    .await;
    form_again(e.status, page)
}

async fn milestones_view(
    s: &AppState,
    who: &Identity,
    page: Pagination,
    q: MilestoneQuery,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let project_id = opt_id("project_id", q.project_id.as_deref().unwrap_or(""))?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<MilestoneStatus>)
        .transpose()
        .map_err(|m| ApiError::invalid("status", m))?;
    let milestones = store::list_milestones(
        &s.db,
        &MilestoneFilter { project_id, status },
        page.limit,
        page.offset,
    )
    .await?;
    Ok(render(&MilestonesPage {
        layout: layout(s, who, "milestones", "Milestones", &flash),
        draft,
        milestones,
        names: Names::load(s).await?,
        project_id,
        status: q.status.unwrap_or_default(),
        statuses: MilestoneStatus::ALL,
    }))
}

#[derive(Deserialize, Serialize)]
struct MilestoneForm {
    #[serde(default)]
    project_id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    target_date: String,
    status: MilestoneStatus,
}

async fn milestones_create(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, MilestoneForm>,
) -> Response {
    let draft = Draft::of(&f);
    let project_id = match opt_id("project_id", &f.project_id) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return back_with_error(
                "/milestones",
                &ApiError::invalid("project_id", "choose a project"),
            )
        }
        Err(e) => return milestones_again(&s, &who, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let input = NewMilestone {
        project_id,
        name: f.name,
        description: Some(f.description),
        target_date: opt_text(&f.target_date),
        status: Some(f.status),
    };
    let r = actions::create_milestone(&s.db, &ctx_of(&s, &actor, &now), input).await;
    match r {
        Ok(m) => see_other("/milestones", &format!("Milestone '{}' created.", m.name)),
        Err(e) => milestones_again(&s, &who, ApiError::from(e), draft).await,
    }
}

#[derive(Template)]
#[template(path = "tracking/milestone.html")]
struct MilestonePage {
    layout: Layout,
    /// What was typed into the edit form, shown again after an error.
    draft: Draft,
    m: Milestone,
    project: String,
    features: Vec<Feature>,
    bugs: Vec<Bug>,
    statuses: &'static [MilestoneStatus],
}

async fn milestone_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    milestone_view(&s, &who, id, flash, Draft::default()).await
}

/// The edit form again after an error, as it was typed.
async fn milestone_again(
    s: &AppState,
    who: &Identity,
    id: i64,
    e: ApiError,
    draft: Draft,
) -> Response {
    form_again(
        e.status,
        milestone_view(s, who, id, error_flash(&e), draft).await,
    )
}

async fn milestone_view(
    s: &AppState,
    who: &Identity,
    id: i64,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let m = store::get_milestone(&s.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("milestone"))?;
    let features = store::list_features(
        &s.db,
        &FeatureFilter {
            milestone_id: Some(id),
            ..Default::default()
        },
        500,
        0,
    )
    .await?;
    let bugs = store::list_bugs(
        &s.db,
        &BugFilter {
            milestone_id: Some(id),
            ..Default::default()
        },
        500,
        0,
    )
    .await?;
    let project = Names::load(s).await?.of(&m.project_id);
    let title = format!("Milestone: {}", m.name);
    Ok(render(&MilestonePage {
        layout: layout(s, who, "milestones", &title, &flash),
        draft,
        m,
        project,
        features,
        bugs,
        statuses: MilestoneStatus::ALL,
    }))
}

async fn milestone_update(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, MilestoneForm>,
) -> Response {
    let draft = Draft::of(&f);
    let (actor, now) = (who.actor(), s.clock.now_str());
    let patch = MilestonePatch {
        name: Some(f.name),
        description: Some(f.description),
        target_date: Some(opt_text(&f.target_date)),
        status: Some(f.status),
    };
    let r = actions::update_milestone(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    finish_or_again(
        r.map_err(ApiError::from),
        |m| (format!("/milestones/{}", m.id), "Milestone saved.".into()),
        |e| milestone_again(&s, &who, id, e, draft),
    )
    .await
}

// ---- features ----

#[derive(Deserialize, Default)]
struct FeatureQuery {
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    milestone_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

#[derive(Template)]
#[template(path = "tracking/features.html")]
struct FeaturesPage {
    layout: Layout,
    /// What was typed into the create form, shown again after an error.
    draft: Draft,
    features: Vec<Feature>,
    names: Names,
    milestones: Vec<Milestone>,
    project_id: Option<i64>,
    status: String,
    q: String,
    statuses: &'static [FeatureStatus],
}

async fn features_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    Query(q): Query<WithFlash<FeatureQuery>>,
) -> Result<Response, PageError> {
    let (q, flash) = q.split();
    features_view(&s, &who, page, q, flash, Draft::default()).await
}

/// The create form again after an error: the list unfiltered, the form as it was typed.
async fn features_again(s: &AppState, who: &Identity, e: ApiError, draft: Draft) -> Response {
    let flash = Flash {
        notice: None,
        error: Some(e.message.clone()),
    };
    let page = features_view(
        s,
        who,
        Pagination::default(),
        FeatureQuery::default(),
        flash,
        draft,
    )
    .await;
    form_again(e.status, page)
}

async fn features_view(
    s: &AppState,
    who: &Identity,
    page: Pagination,
    q: FeatureQuery,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let filter = FeatureFilter {
        project_id: opt_id("project_id", q.project_id.as_deref().unwrap_or(""))?,
        milestone_id: opt_id("milestone_id", q.milestone_id.as_deref().unwrap_or(""))?,
        status: q
            .status
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|m: String| ApiError::invalid("status", m))?,
        q: q.q.clone(),
    };
    let features = store::list_features(&s.db, &filter, page.limit, page.offset).await?;
    let milestones = store::list_milestones(&s.db, &MilestoneFilter::default(), 1000, 0).await?;
    Ok(render(&FeaturesPage {
        layout: layout(s, who, "features", "Features", &flash),
        draft,
        features,
        names: Names::load(s).await?,
        milestones,
        project_id: filter.project_id,
        status: q.status.unwrap_or_default(),
        q: q.q.unwrap_or_default(),
        statuses: FeatureStatus::ALL,
    }))
}

#[derive(Deserialize, Serialize)]
struct FeatureForm {
    #[serde(default)]
    project_id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    milestone_id: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    assignee: String,
}

async fn features_create(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, FeatureForm>,
) -> Response {
    let draft = Draft::of(&f);
    let parsed = (|| -> Result<NewFeature, ApiError> {
        Ok(NewFeature {
            project_id: opt_id("project_id", &f.project_id)?
                .ok_or_else(|| ApiError::invalid("project_id", "choose a project"))?,
            name: f.name.clone(),
            milestone_id: opt_id("milestone_id", &f.milestone_id)?,
            description: Some(f.description.clone()),
            priority: Some(num("priority", &f.priority, 0)?),
            assignee: opt_text(&f.assignee),
        })
    })();
    let input = match parsed {
        Ok(i) => i,
        Err(e) => return features_again(&s, &who, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::create_feature(&s.db, &ctx_of(&s, &actor, &now), input).await;
    match r {
        Ok(f) => see_other("/features", &format!("Feature '{}' created.", f.name)),
        Err(e) => features_again(&s, &who, ApiError::from(e), draft).await,
    }
}

#[derive(Template)]
#[template(path = "tracking/feature.html")]
struct FeaturePage {
    layout: Layout,
    /// What was typed into the edit form, shown again after an error.
    draft: Draft,
    d: FeatureDetail,
    project: String,
    milestones: Vec<Milestone>,
    assign: AssignBox,
}

async fn feature_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    feature_view(&s, &who, id, flash, Draft::default()).await
}

/// The edit form again after an error, as it was typed.
async fn feature_again(
    s: &AppState,
    who: &Identity,
    id: i64,
    e: ApiError,
    draft: Draft,
) -> Response {
    form_again(
        e.status,
        feature_view(s, who, id, error_flash(&e), draft).await,
    )
}

async fn feature_view(
    s: &AppState,
    who: &Identity,
    id: i64,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let d = actions::feature_detail(&s.db, id)
        .await
        .map_err(ApiError::from)?;
    let project = Names::load(s).await?.of(&d.feature.project_id);
    let milestones = store::list_milestones(
        &s.db,
        &MilestoneFilter {
            project_id: Some(d.feature.project_id),
            status: None,
        },
        500,
        0,
    )
    .await?;
    let title = format!("Feature: {}", d.feature.name);
    let assign = AssignBox::load(s, ItemKind::Feature, id).await?;
    Ok(render(&FeaturePage {
        layout: layout(s, who, "features", &title, &flash),
        draft,
        d,
        project,
        milestones,
        assign,
    }))
}

async fn feature_update(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, FeatureForm>,
) -> Response {
    let draft = Draft::of(&f);
    let parsed = (|| -> Result<FeaturePatch, ApiError> {
        Ok(FeaturePatch {
            name: Some(f.name.clone()),
            description: Some(f.description.clone()),
            milestone_id: Some(opt_id("milestone_id", &f.milestone_id)?),
            priority: Some(num("priority", &f.priority, 0)?),
            assignee: Some(opt_text(&f.assignee)),
            status: None,
            comment: None,
        })
    })();
    let patch = match parsed {
        Ok(p) => p,
        Err(e) => return feature_again(&s, &who, id, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::update_feature(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    finish_or_again(
        r.map_err(ApiError::from),
        |f| (format!("/features/{}", f.id), "Feature saved.".into()),
        |e| feature_again(&s, &who, id, e, draft),
    )
    .await
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
    #[serde(default)]
    comment: String,
    /// Where to go afterwards: the list or the detail page (a same-site path).
    #[serde(default)]
    back: String,
}

fn back_path(back: &str, default: String) -> String {
    crate::web::local_path(back)
        .map(str::to_string)
        .unwrap_or(default)
}

async fn feature_status(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, StatusForm>,
) -> Response {
    let back = back_path(&f.back, format!("/features/{id}"));
    let status = match f.status.parse::<FeatureStatus>() {
        Ok(st) => st,
        Err(m) => return back_with_error(&back, &ApiError::invalid("status", m)),
    };
    let patch = FeaturePatch {
        status: Some(status),
        comment: opt_text(&f.comment),
        ..Default::default()
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::update_feature(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    let to = back.clone();
    finish(
        r,
        move |f| (to, format!("Feature '{}' is now {}.", f.name, f.status)),
        &back,
    )
}

// ---- bugs ----

#[derive(Deserialize, Default)]
struct BugQuery {
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

#[derive(Template)]
#[template(path = "tracking/bugs.html")]
struct BugsPage {
    layout: Layout,
    /// What was typed into the create form, shown again after an error.
    draft: Draft,
    bugs: Vec<Bug>,
    names: Names,
    milestones: Vec<Milestone>,
    project_id: Option<i64>,
    status: String,
    severity: String,
    q: String,
    statuses: &'static [BugStatus],
    severities: &'static [BugSeverity],
}

async fn bugs_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    Query(q): Query<WithFlash<BugQuery>>,
) -> Result<Response, PageError> {
    let (q, flash) = q.split();
    bugs_view(&s, &who, page, q, flash, Draft::default()).await
}

/// The create form again after an error: the list unfiltered, the form as it was typed.
async fn bugs_again(s: &AppState, who: &Identity, e: ApiError, draft: Draft) -> Response {
    let flash = Flash {
        notice: None,
        error: Some(e.message.clone()),
    };
    let page = bugs_view(
        s,
        who,
        Pagination::default(),
        BugQuery::default(),
        flash,
        draft,
    )
    .await;
    form_again(e.status, page)
}

async fn bugs_view(
    s: &AppState,
    who: &Identity,
    page: Pagination,
    q: BugQuery,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let filter = BugFilter {
        project_id: opt_id("project_id", q.project_id.as_deref().unwrap_or(""))?,
        milestone_id: None,
        status: q
            .status
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|m: String| ApiError::invalid("status", m))?,
        severity: q
            .severity
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|m: String| ApiError::invalid("severity", m))?,
        q: q.q.clone(),
    };
    let bugs = store::list_bugs(&s.db, &filter, page.limit, page.offset).await?;
    let milestones = store::list_milestones(&s.db, &MilestoneFilter::default(), 1000, 0).await?;
    Ok(render(&BugsPage {
        layout: layout(s, who, "bugs", "Bugs", &flash),
        draft,
        bugs,
        names: Names::load(s).await?,
        milestones,
        project_id: filter.project_id,
        status: q.status.unwrap_or_default(),
        severity: q.severity.unwrap_or_default(),
        q: q.q.unwrap_or_default(),
        statuses: BugStatus::ALL,
        severities: BugSeverity::ALL,
    }))
}

#[derive(Deserialize, Serialize)]
struct BugForm {
    #[serde(default)]
    project_id: String,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    milestone_id: String,
    severity: BugSeverity,
    #[serde(default)]
    assignee: String,
}

async fn bugs_create(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, BugForm>,
) -> Response {
    let draft = Draft::of(&f);
    let parsed = (|| -> Result<NewBug, ApiError> {
        Ok(NewBug {
            project_id: opt_id("project_id", &f.project_id)?
                .ok_or_else(|| ApiError::invalid("project_id", "choose a project"))?,
            title: f.title.clone(),
            milestone_id: opt_id("milestone_id", &f.milestone_id)?,
            description: Some(f.description.clone()),
            severity: Some(f.severity),
            assignee: opt_text(&f.assignee),
        })
    })();
    let input = match parsed {
        Ok(i) => i,
        Err(e) => return bugs_again(&s, &who, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::create_bug(&s.db, &ctx_of(&s, &actor, &now), input).await;
    match r {
        Ok(b) => see_other("/bugs", &format!("Bug '{}' filed.", b.title)),
        Err(e) => bugs_again(&s, &who, ApiError::from(e), draft).await,
    }
}

#[derive(Template)]
#[template(path = "tracking/bug.html")]
struct BugPage {
    layout: Layout,
    /// What was typed into the edit form, shown again after an error.
    draft: Draft,
    b: Bug,
    project: String,
    milestones: Vec<Milestone>,
    severities: &'static [BugSeverity],
    /// Error groups this bug was created from (see `errors`).
    errors: Vec<i64>,
    history: Vec<BugHistoryRow>,
    assign: AssignBox,
}

/// One line of a bug's history, from its activity records (newest first).
struct BugHistoryRow {
    at: String,
    actor: String,
    action: String,
    /// The status it moved to, or "".
    status: String,
    comment: String,
}

impl From<crate::activity::ActivityEntry> for BugHistoryRow {
    fn from(e: crate::activity::ActivityEntry) -> Self {
        let text = |k: &str| e.details[k].as_str().unwrap_or_default().to_string();
        BugHistoryRow {
            status: text("status"),
            comment: text("comment"),
            at: e.created_at,
            actor: e.actor,
            action: e.action,
        }
    }
}

/// History lines shown on a bug's page.
const BUG_HISTORY: i64 = 100;

async fn bug_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    bug_view(&s, &who, id, flash, Draft::default()).await
}

/// The edit form again after an error, as it was typed.
async fn bug_again(s: &AppState, who: &Identity, id: i64, e: ApiError, draft: Draft) -> Response {
    form_again(e.status, bug_view(s, who, id, error_flash(&e), draft).await)
}

async fn bug_view(
    s: &AppState,
    who: &Identity,
    id: i64,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let b = store::get_bug(&s.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("bug"))?;
    let project = Names::load(s).await?.of(&b.project_id);
    let milestones = store::list_milestones(
        &s.db,
        &MilestoneFilter {
            project_id: Some(b.project_id),
            status: None,
        },
        500,
        0,
    )
    .await?;
    let title = format!("Bug #{}: {}", b.id, b.title);
    let errors = crate::errors::store::groups_of_bug(&s.db, id).await?;
    let history = crate::activity::store::list(
        &s.db,
        &crate::activity::ActivityFilter {
            entity: Some("bug".into()),
            entity_id: Some(id),
            ..Default::default()
        },
        BUG_HISTORY,
        0,
    )
    .await?
    .into_iter()
    .map(BugHistoryRow::from)
    .collect();
    let assign = AssignBox::load(s, ItemKind::Bug, id).await?;
    Ok(render(&BugPage {
        layout: layout(s, who, "bugs", &title, &flash),
        draft,
        b,
        project,
        milestones,
        severities: BugSeverity::ALL,
        errors,
        history,
        assign,
    }))
}

async fn bug_update(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, BugForm>,
) -> Response {
    let draft = Draft::of(&f);
    let patch = match opt_id("milestone_id", &f.milestone_id) {
        Ok(m) => BugPatch {
            title: Some(f.title),
            description: Some(f.description),
            milestone_id: Some(m),
            severity: Some(f.severity),
            status: None,
            assignee: Some(opt_text(&f.assignee)),
            comment: None,
        },
        Err(e) => return bug_again(&s, &who, id, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::update_bug(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    finish_or_again(
        r.map_err(ApiError::from),
        |b| (format!("/bugs/{}", b.id), "Bug saved.".into()),
        |e| bug_again(&s, &who, id, e, draft),
    )
    .await
}

async fn bug_status(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, StatusForm>,
) -> Response {
    let back = back_path(&f.back, format!("/bugs/{id}"));
    let status = match f.status.parse::<BugStatus>() {
        Ok(st) => st,
        Err(m) => return back_with_error(&back, &ApiError::invalid("status", m)),
    };
    let patch = BugPatch {
        status: Some(status),
        comment: opt_text(&f.comment),
        ..Default::default()
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::update_bug(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    let to = back.clone();
    finish(
        r,
        move |b| (to, format!("Bug #{} is now {}.", b.id, b.status)),
        &back,
    )
}

// ---- devops tasks ----

#[derive(Deserialize, Default)]
struct DevopsQuery {
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Template)]
#[template(path = "tracking/devops.html")]
struct DevopsPage {
    layout: Layout,
    /// What was typed into the create form, shown again after an error.
    draft: Draft,
    tasks: Vec<DevopsTask>,
    names: Names,
    project_id: Option<i64>,
    status: String,
    category: String,
    statuses: &'static [DevopsStatus],
    categories: &'static [DevopsCategory],
}

async fn devops_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    Query(q): Query<WithFlash<DevopsQuery>>,
) -> Result<Response, PageError> {
    let (q, flash) = q.split();
    devops_view(&s, &who, page, q, flash, Draft::default()).await
}

/// The create form again after an error: the list unfiltered, the form as it was typed.
async fn devops_again(s: &AppState, who: &Identity, e: ApiError, draft: Draft) -> Response {
    let flash = Flash {
        notice: None,
        error: Some(e.message.clone()),
    };
    let page = devops_view(
        s,
        who,
        Pagination::default(),
        DevopsQuery::default(),
        flash,
        draft,
    )
    .await;
    form_again(e.status, page)
}

async fn devops_view(
    s: &AppState,
    who: &Identity,
    page: Pagination,
    q: DevopsQuery,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let filter = DevopsFilter {
        project_id: opt_id("project_id", q.project_id.as_deref().unwrap_or(""))?,
        status: q
            .status
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|m: String| ApiError::invalid("status", m))?,
        category: q
            .category
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|m: String| ApiError::invalid("category", m))?,
    };
    let tasks = store::list_devops_tasks(&s.db, &filter, page.limit, page.offset).await?;
    Ok(render(&DevopsPage {
        layout: layout(s, who, "devops", "DevOps tasks", &flash),
        draft,
        tasks,
        names: Names::load(s).await?,
        project_id: filter.project_id,
        status: q.status.unwrap_or_default(),
        category: q.category.unwrap_or_default(),
        statuses: DevopsStatus::ALL,
        categories: DevopsCategory::ALL,
    }))
}

#[derive(Deserialize, Serialize)]
struct DevopsForm {
    #[serde(default)]
    project_id: String,
    title: String,
    #[serde(default)]
    description: String,
    category: DevopsCategory,
    #[serde(default)]
    status: Option<DevopsStatus>,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    schedule: String,
}

async fn devops_create(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, DevopsForm>,
) -> Response {
    let draft = Draft::of(&f);
    let parsed = (|| -> Result<NewDevopsTask, ApiError> {
        Ok(NewDevopsTask {
            title: f.title.clone(),
            project_id: opt_id("project_id", &f.project_id)?,
            description: Some(f.description.clone()),
            category: Some(f.category),
            priority: Some(num("priority", &f.priority, 0)?),
            schedule: opt_text(&f.schedule),
        })
    })();
    let input = match parsed {
        Ok(i) => i,
        Err(e) => return devops_again(&s, &who, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::create_devops_task(&s.db, &ctx_of(&s, &actor, &now), input).await;
    match r {
        Ok(t) => see_other("/devops", &format!("Task '{}' created.", t.title)),
        Err(e) => devops_again(&s, &who, ApiError::from(e), draft).await,
    }
}

#[derive(Template)]
#[template(path = "tracking/devops_task.html")]
struct DevopsTaskPage {
    layout: Layout,
    /// What was typed into the edit form, shown again after an error.
    draft: Draft,
    t: DevopsTask,
    names: Names,
    statuses: &'static [DevopsStatus],
    categories: &'static [DevopsCategory],
}

async fn devops_task_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    devops_task_view(&s, &who, id, flash, Draft::default()).await
}

/// The edit form again after an error, as it was typed.
async fn devops_task_again(
    s: &AppState,
    who: &Identity,
    id: i64,
    e: ApiError,
    draft: Draft,
) -> Response {
    form_again(
        e.status,
        devops_task_view(s, who, id, error_flash(&e), draft).await,
    )
}

async fn devops_task_view(
    s: &AppState,
    who: &Identity,
    id: i64,
    flash: Flash,
    draft: Draft,
) -> Result<Response, PageError> {
    let t = store::get_devops_task(&s.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("devops task"))?;
    let title = format!("DevOps task: {}", t.title);
    Ok(render(&DevopsTaskPage {
        layout: layout(s, who, "devops", &title, &flash),
        draft,
        t,
        names: Names::load(s).await?,
        statuses: DevopsStatus::ALL,
        categories: DevopsCategory::ALL,
    }))
}

async fn devops_update(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, DevopsForm>,
) -> Response {
    let draft = Draft::of(&f);
    let back = format!("/devops/{id}");
    let parsed = (|| -> Result<DevopsPatch, ApiError> {
        Ok(DevopsPatch {
            title: Some(f.title.clone()),
            description: Some(f.description.clone()),
            project_id: Some(opt_id("project_id", &f.project_id)?),
            category: Some(f.category),
            status: f.status,
            priority: Some(num("priority", &f.priority, 0)?),
            schedule: Some(opt_text(&f.schedule)),
        })
    })();
    let patch = match parsed {
        Ok(p) => p,
        Err(e) => return devops_task_again(&s, &who, id, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::update_devops_task(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    let to = back.clone();
    finish_or_again(
        r.map_err(ApiError::from),
        move |_| (to, "Task saved.".into()),
        |e| devops_task_again(&s, &who, id, e, draft),
    )
    .await
}
