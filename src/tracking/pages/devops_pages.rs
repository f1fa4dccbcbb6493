//! The DevOps panel: the task list, the create form and a task page.

use super::*;

// ---- devops tasks ----

#[derive(Deserialize, Default)]
pub(super) struct DevopsQuery {
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Template)]
#[template(path = "tracking/devops.html")]
pub(super) struct DevopsPage {
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

pub(super) async fn devops_view(
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
pub(super) struct DevopsForm {
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

pub(super) async fn devops_create(
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
        Err(e) => return list_again::<DevopsPanel>(&s, &who, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::create_devops_task(&s.db, &ctx_of(&s, &actor, &now), input).await;
    finish_or_again(
        r.map_err(ApiError::from),
        |t| ("/devops".into(), format!("Task '{}' created.", t.title)),
        |e| list_again::<DevopsPanel>(&s, &who, e, draft),
    )
    .await
}

#[derive(Template)]
#[template(path = "tracking/devops_task.html")]
pub(super) struct DevopsTaskPage {
    layout: Layout,
    /// What was typed into the edit form, shown again after an error.
    draft: Draft,
    t: DevopsTask,
    names: Names,
    statuses: &'static [DevopsStatus],
    categories: &'static [DevopsCategory],
}

pub(super) async fn devops_task_view(
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

pub(super) async fn devops_update(
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
        Err(e) => return item_again::<DevopsPanel>(&s, &who, id, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::update_devops_task(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    let to = back.clone();
    finish_or_again(
        r.map_err(ApiError::from),
        move |_| (to, "Task saved.".into()),
        |e| item_again::<DevopsPanel>(&s, &who, id, e, draft),
    )
    .await
}

pub(super) struct DevopsPanel;

impl Panel for DevopsPanel {
    type Filter = DevopsQuery;
    fn list(
        s: &AppState,
        who: &Identity,
        page: Pagination,
        q: DevopsQuery,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        devops_view(s, who, page, q, flash, draft)
    }
    fn item(
        s: &AppState,
        who: &Identity,
        id: i64,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        devops_task_view(s, who, id, flash, draft)
    }
}
