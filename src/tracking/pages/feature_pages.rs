//! The Features panel: the list, the create form, a feature page and its status workflow.

use super::*;

impl FeaturesPage {
    fn milestone_groups(&self) -> Vec<MilestoneGroup<'_>> {
        milestone_groups(&self.names, &self.milestones)
    }
}

// ---- features ----

#[derive(Deserialize, Default)]
pub(super) struct FeatureQuery {
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
pub(super) struct FeaturesPage {
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

pub(super) async fn features_view(
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
pub(super) struct FeatureForm {
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

pub(super) async fn features_create(
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
        Err(e) => return list_again::<FeaturePanel>(&s, &who, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::create_feature(&s.db, &ctx_of(&s, &actor, &now), input).await;
    finish_or_again(
        r.map_err(ApiError::from),
        |f| ("/features".into(), format!("Feature '{}' created.", f.name)),
        |e| list_again::<FeaturePanel>(&s, &who, e, draft),
    )
    .await
}

#[derive(Template)]
#[template(path = "tracking/feature.html")]
pub(super) struct FeaturePage {
    layout: Layout,
    /// What was typed into the edit form, shown again after an error.
    draft: Draft,
    d: FeatureDetail,
    project: String,
    milestones: Vec<Milestone>,
    assign: AssignBox,
}

pub(super) async fn feature_view(
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
    let assign = AssignBox::load(&s.db, ItemKind::Feature, id).await?;
    Ok(render(&FeaturePage {
        layout: layout(s, who, "features", &title, &flash),
        draft,
        d,
        project,
        milestones,
        assign,
    }))
}

pub(super) async fn feature_update(
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
        Err(e) => return item_again::<FeaturePanel>(&s, &who, id, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::update_feature(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    finish_or_again(
        r.map_err(ApiError::from),
        |f| (format!("/features/{}", f.id), "Feature saved.".into()),
        |e| item_again::<FeaturePanel>(&s, &who, id, e, draft),
    )
    .await
}

pub(super) struct FeaturePanel;

impl Panel for FeaturePanel {
    type Filter = FeatureQuery;
    fn list(
        s: &AppState,
        who: &Identity,
        page: Pagination,
        q: FeatureQuery,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        features_view(s, who, page, q, flash, draft)
    }
    fn item(
        s: &AppState,
        who: &Identity,
        id: i64,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        feature_view(s, who, id, flash, draft)
    }
}
