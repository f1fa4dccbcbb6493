//! The Projects panel: the list, the create form, a project page, archive and unarchive.

use super::*;

// ---- projects ----

/// Filters arrive as text so that a flattened query string parses (serde_urlencoded cannot
/// parse numbers or booleans through `flatten`).
#[derive(Deserialize, Default)]
pub(super) struct ProjectQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    include_archived: Option<String>,
}

#[derive(Template)]
#[template(path = "tracking/projects.html")]
pub(super) struct ProjectsPage {
    layout: Layout,
    /// What was typed into the create form, shown again after an error.
    draft: Draft,
    projects: Vec<Project>,
    q: String,
    status: String,
    include_archived: bool,
    statuses: &'static [ProjectStatus],
}

pub(super) async fn projects_view(
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
pub(super) struct ProjectForm {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    source_path: String,
    #[serde(default)]
    tags: String,
    status: ProjectStatus,
}

pub(super) async fn projects_create(
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
    finish_or_again(
        r.map_err(ApiError::from),
        |p| ("/projects".into(), format!("Project '{}' created.", p.name)),
        |e| list_again::<ProjectPanel>(&s, &who, e, draft),
    )
    .await
}

#[derive(Template)]
#[template(path = "tracking/project.html")]
pub(super) struct ProjectPage {
    layout: Layout,
    /// What was typed into the edit form, shown again after an error.
    draft: Draft,
    project: Project,
    milestones: Vec<Milestone>,
    features: Vec<Feature>,
    bugs: Vec<Bug>,
    statuses: &'static [ProjectStatus],
}

pub(super) async fn project_view(
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

pub(super) async fn project_update(
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
        |e| item_again::<ProjectPanel>(&s, &who, id, e, draft),
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct Empty {}

pub(super) async fn project_archive(
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

pub(super) async fn project_unarchive(
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

pub(super) struct ProjectPanel;

impl Panel for ProjectPanel {
    type Filter = ProjectQuery;
    fn list(
        s: &AppState,
        who: &Identity,
        page: Pagination,
        q: ProjectQuery,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        projects_view(s, who, page, q, flash, draft)
    }
    fn item(
        s: &AppState,
        who: &Identity,
        id: i64,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        project_view(s, who, id, flash, draft)
    }
}
