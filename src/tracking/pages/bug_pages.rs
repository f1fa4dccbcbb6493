//! The Bugs panel: the list, the create form, a bug page with its history and status moves.

use super::*;

impl BugsPage {
    fn milestone_groups(&self) -> Vec<MilestoneGroup<'_>> {
        milestone_groups(&self.names, &self.milestones)
    }
}

// ---- bugs ----

#[derive(Deserialize, Default)]
pub(super) struct BugQuery {
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
pub(super) struct BugsPage {
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

pub(super) async fn bugs_view(
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
pub(super) struct BugForm {
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

pub(super) async fn bugs_create(
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
        Err(e) => return list_again::<BugPanel>(&s, &who, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::create_bug(&s.db, &ctx_of(&s, &actor, &now), input).await;
    finish_or_again(
        r.map_err(ApiError::from),
        |b| ("/bugs".into(), format!("Bug '{}' filed.", b.title)),
        |e| list_again::<BugPanel>(&s, &who, e, draft),
    )
    .await
}

#[derive(Template)]
#[template(path = "tracking/bug.html")]
pub(super) struct BugPage {
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
pub(super) struct BugHistoryRow {
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
pub(super) const BUG_HISTORY: i64 = 100;

pub(super) async fn bug_view(
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
    let assign = AssignBox::load(&s.db, ItemKind::Bug, id).await?;
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

pub(super) async fn bug_update(
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
        Err(e) => return item_again::<BugPanel>(&s, &who, id, e, draft).await,
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::update_bug(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    finish_or_again(
        r.map_err(ApiError::from),
        |b| (format!("/bugs/{}", b.id), "Bug saved.".into()),
        |e| item_again::<BugPanel>(&s, &who, id, e, draft),
    )
    .await
}

pub(super) async fn bug_status(
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

pub(super) struct BugPanel;

impl Panel for BugPanel {
    type Filter = BugQuery;
    fn list(
        s: &AppState,
        who: &Identity,
        page: Pagination,
        q: BugQuery,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        bugs_view(s, who, page, q, flash, draft)
    }
    fn item(
        s: &AppState,
        who: &Identity,
        id: i64,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send {
        bug_view(s, who, id, flash, draft)
    }
}
