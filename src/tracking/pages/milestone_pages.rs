//! The Milestones panel: the list, the create form and a milestone page.

use super::*;

// ---- milestones ----

#[derive(Deserialize, Default)]
pub(super) struct MilestoneQuery {
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Template)]
#[template(path = "tracking/milestones.html")]
pub(super) struct MilestonesPage {
    layout: Layout,
    /// What was typed into the create form, shown again after an error.
    draft: Draft,
    milestones: Vec<Milestone>,
    names: Names,
    project_id: Option<i64>,
    status: String,
    statuses: &'static [MilestoneStatus],
}

pub(super) async fn milestones_view(
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
pub(super) struct MilestoneForm {
    #[serde(default)]
    project_id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    target_date: String,
    status: MilestoneStatus,
}

pub(super) async fn milestones_create(
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
        Err(e) => return list_again::<MilestonePanel>(&s, &who, e, draft).await,
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
    finish_or_again(
        r.map_err(ApiError::from),
        |m| {
            (
                "/milestones".into(),
                format!("Milestone '{}' created.", m.name),
            )
        },
        |e| list_again::<MilestonePanel>(&s, &who, e, draft),
    )
    .await
}

#[derive(Template)]
#[template(path = "tracking/milestone.html")]
pub(super) struct MilestonePage {
    layout: Layout,
    /// What was typed into the edit form, shown again after an error.
    draft: Draft,
    m: Milestone,
    project: String,
    features: Vec<Feature>,
    bugs: Vec<Bug>,
    statuses: &'static [MilestoneStatus],
}

pub(super) async fn milestone_view(
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

pub(super) async fn milestone_update(
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
        |e| item_again::<MilestonePanel>(&s, &who, id, e, draft),
    )
    .await
}

pub(super) struct MilestonePanel;

impl Panel for MilestonePanel {
    type Filter = MilestoneQuery;
    fn list(
        s: &AppState,
        who: &Identity,
        page: Pagination,
        q: MilestoneQuery,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        milestones_view(s, who, page, q, flash, draft)
    }
    fn item(
        s: &AppState,
        who: &Identity,
        id: i64,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        milestone_view(s, who, id, flash, draft)
    }
}
