//! The tracking operations the JSON API, the dashboard and later domains share. Each runs in
//! one transaction that also writes its activity record, so a change and its log line land
//! together or not at all.

use super::store;
use super::*;
use crate::activity;
use crate::db::{is_unique_violation, Db};
use serde_json::json;
use sqlx::AnyConnection;

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0}")]
    Conflict(String),
    #[error("cannot move from '{from}' to '{to}'")]
    Transition {
        from: String,
        to: String,
        allowed: Vec<String>,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Invalid> for TrackingError {
    fn from(v: Invalid) -> Self {
        TrackingError::Invalid(v)
    }
}

type Result<T> = std::result::Result<T, TrackingError>;

/// Who is acting, and when.
pub struct Ctx<'a> {
    pub actor: &'a str,
    pub now: &'a str,
    /// Where a committed change is announced (live pages).
    pub events: &'a crate::events::Events,
}

impl Ctx<'_> {
    /// Announces a committed change of `entity` `id` (topic `work`).
    fn changed(&self, entity: &'static str, id: i64) {
        self.events.emit(crate::events::Topic::Work, entity, id);
    }
}

async fn log(
    conn: &mut AnyConnection,
    ctx: &Ctx<'_>,
    action: &str,
    entity: &str,
    id: i64,
    details: serde_json::Value,
) -> Result<()> {
    activity::store::record(conn, ctx.actor, action, entity, Some(id), &details, ctx.now).await?;
    Ok(())
}

fn name_taken(name: &str) -> TrackingError {
    TrackingError::Conflict(format!("an active project named '{name}' already exists"))
}

/// An active (not archived) project must exist for new work to be filed under it.
async fn require_active_project(
    conn: &mut AnyConnection,
    id: i64,
    field: &'static str,
) -> Result<()> {
    match store::get_project(&mut *conn, id).await? {
        Some(p) if !p.archived => Ok(()),
        Some(_) => Err(invalid(field, format!("project {id} is archived")).into()),
        None => Err(invalid(field, format!("project {id} does not exist")).into()),
    }
}

/// A milestone link must point at a milestone of the same project.
async fn require_milestone_in(
    conn: &mut AnyConnection,
    milestone_id: i64,
    project_id: i64,
) -> Result<()> {
    match store::milestone_project(&mut *conn, milestone_id).await? {
        Some(p) if p == project_id => Ok(()),
        Some(_) => Err(invalid(
            "milestone_id",
            format!("milestone {milestone_id} belongs to another project"),
        )
        .into()),
        None => Err(invalid(
            "milestone_id",
            format!("milestone {milestone_id} does not exist"),
        )
        .into()),
    }
}

// ---- projects ----

pub async fn create_project(db: &Db, ctx: &Ctx<'_>, mut input: NewProject) -> Result<Project> {
    input.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let p = match store::insert_project(&mut tx, &input, ctx.now).await {
        Ok(p) => p,
        Err(e) if is_unique_violation(&e) => return Err(name_taken(&input.name)),
        Err(e) => return Err(e.into()),
    };
    log(
        &mut tx,
        ctx,
        "create",
        "project",
        p.id,
        json!({"name": p.name}),
    )
    .await?;
    tx.commit().await?;
    ctx.changed("project", p.id);
    Ok(p)
}

pub async fn update_project(
    db: &Db,
    ctx: &Ctx<'_>,
    id: i64,
    mut patch: ProjectPatch,
) -> Result<Project> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut p = store::lock_project(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("project"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    if let Some(n) = patch.name {
        p.name = n;
    }
    if let Some(d) = patch.description {
        p.description = d;
    }
    if let Some(s) = patch.source_path {
        p.source_path = s;
    }
    if let Some(s) = patch.status {
        p.status = s;
    }
    if let Some(t) = patch.tags {
        p.tags = t;
    }
    match patch.archived {
        Some(true) if p.archived_at.is_none() => p.archived_at = Some(ctx.now.to_string()),
        Some(false) => p.archived_at = None,
        _ => {}
    }
    p.archived = p.archived_at.is_some();
    match store::save_project(&mut tx, &p, ctx.now).await {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => return Err(name_taken(&p.name)),
        Err(e) => return Err(e.into()),
    }
    log(&mut tx, ctx, "update", "project", id, changes).await?;
    let p = store::get_project(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("project"))?;
    tx.commit().await?;
    ctx.changed("project", p.id);
    Ok(p)
}

/// DELETE archives: the project is hidden from lists unless asked for, and can be restored.
pub async fn archive_project(db: &Db, ctx: &Ctx<'_>, id: i64) -> Result<Project> {
    let mut tx = crate::db::begin_write(db).await?;
    let mut p = store::lock_project(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("project"))?;
    if p.archived_at.is_none() {
        p.archived_at = Some(ctx.now.to_string());
        p.archived = true;
        store::save_project(&mut tx, &p, ctx.now).await?;
        log(
            &mut tx,
            ctx,
            "archive",
            "project",
            id,
            json!({"name": p.name}),
        )
        .await?;
    }
    tx.commit().await?;
    ctx.changed("project", p.id);
    Ok(p)
}

// ---- milestones ----

pub async fn create_milestone(
    db: &Db,
    ctx: &Ctx<'_>,
    mut input: NewMilestone,
) -> Result<Milestone> {
    input.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    require_active_project(&mut tx, input.project_id, "project_id").await?;
    let m = store::insert_milestone(&mut tx, &input, ctx.now).await?;
    log(
        &mut tx,
        ctx,
        "create",
        "milestone",
        m.id,
        json!({"name": m.name, "project_id": m.project_id}),
    )
    .await?;
    tx.commit().await?;
    ctx.changed("milestone", m.id);
    Ok(m)
}

pub async fn update_milestone(
    db: &Db,
    ctx: &Ctx<'_>,
    id: i64,
    mut patch: MilestonePatch,
) -> Result<Milestone> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut m = store::lock_milestone(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("milestone"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    if let Some(n) = patch.name {
        m.name = n;
    }
    if let Some(d) = patch.description {
        m.description = d;
    }
    if let Some(d) = patch.target_date {
        m.target_date = d;
    }
    if let Some(s) = patch.status {
        m.status = s;
    }
    store::save_milestone(&mut tx, &m, ctx.now).await?;
    log(&mut tx, ctx, "update", "milestone", id, changes).await?;
    let m = store::get_milestone(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("milestone"))?;
    tx.commit().await?;
    ctx.changed("milestone", m.id);
    Ok(m)
}

// ---- features ----

pub async fn feature_detail(db: &Db, id: i64) -> Result<FeatureDetail> {
    let feature = store::get_feature(db, id)
        .await?
        .ok_or(TrackingError::NotFound("feature"))?;
    let history = store::feature_history(db, id).await?;
    Ok(FeatureDetail {
        allowed_next: feature.status.next().to_vec(),
        feature,
        history,
    })
}

pub async fn create_feature(db: &Db, ctx: &Ctx<'_>, mut input: NewFeature) -> Result<Feature> {
    input.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    require_active_project(&mut tx, input.project_id, "project_id").await?;
    if let Some(m) = input.milestone_id {
        require_milestone_in(&mut tx, m, input.project_id).await?;
    }
    let f = store::insert_feature(&mut tx, &input, ctx.now).await?;
    store::record_feature_status(&mut tx, f.id, None, f.status, None, ctx.actor, ctx.now).await?;
    log(
        &mut tx,
        ctx,
        "create",
        "feature",
        f.id,
        json!({"name": f.name, "project_id": f.project_id}),
    )
    .await?;
    tx.commit().await?;
    ctx.changed("feature", f.id);
    Ok(f)
}

pub async fn update_feature(
    db: &Db,
    ctx: &Ctx<'_>,
    id: i64,
    mut patch: FeaturePatch,
) -> Result<Feature> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut f = store::lock_feature(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("feature"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    if let Some(Some(m)) = patch.milestone_id {
        require_milestone_in(&mut tx, m, f.project_id).await?;
    }
    let from = f.status;
    let status_change = match patch.status {
        Some(to) if to != from => {
            if !from.can_move_to(to) {
                return Err(TrackingError::Transition {
                    from: from.to_string(),
                    to: to.to_string(),
                    allowed: from.next().iter().map(|s| s.to_string()).collect(),
                });
            }
            f.status = to;
            true
        }
        _ => false,
    };
    if let Some(n) = patch.name {
        f.name = n;
    }
    if let Some(d) = patch.description {
        f.description = d;
    }
    if let Some(m) = patch.milestone_id {
        f.milestone_id = m;
    }
    if let Some(p) = patch.priority {
        f.priority = p;
    }
    if let Some(a) = patch.assignee {
        f.assignee = a;
    }
    store::save_feature(&mut tx, &f, ctx.now).await?;
    if status_change {
        store::record_feature_status(
            &mut tx,
            id,
            Some(from),
            f.status,
            patch.comment.as_deref(),
            ctx.actor,
            ctx.now,
        )
        .await?;
    }
    log(&mut tx, ctx, "update", "feature", id, changes).await?;
    let f = store::get_feature(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("feature"))?;
    tx.commit().await?;
    ctx.changed("feature", f.id);
    Ok(f)
}

// ---- bugs ----

pub async fn create_bug(db: &Db, ctx: &Ctx<'_>, mut input: NewBug) -> Result<Bug> {
    input.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    require_active_project(&mut tx, input.project_id, "project_id").await?;
    if let Some(m) = input.milestone_id {
        require_milestone_in(&mut tx, m, input.project_id).await?;
    }
    let b = store::insert_bug(&mut tx, &input, ctx.now).await?;
    log(
        &mut tx,
        ctx,
        "create",
        "bug",
        b.id,
        json!({"title": b.title, "severity": b.severity}),
    )
    .await?;
    tx.commit().await?;
    ctx.changed("bug", b.id);
    Ok(b)
}

pub async fn update_bug(db: &Db, ctx: &Ctx<'_>, id: i64, mut patch: BugPatch) -> Result<Bug> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut b = store::lock_bug(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("bug"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    let was = b.status;
    if let Some(Some(m)) = patch.milestone_id {
        require_milestone_in(&mut tx, m, b.project_id).await?;
    }
    if let Some(to) = patch.status {
        if to != b.status {
            if !b.status.next().contains(&to) {
                return Err(TrackingError::Transition {
                    from: b.status.to_string(),
                    to: to.to_string(),
                    allowed: b.status.next().iter().map(|s| s.to_string()).collect(),
                });
            }
            b.resolved_at = if to.is_done() {
                b.resolved_at.or_else(|| Some(ctx.now.to_string()))
            } else {
                None
            };
            b.status = to;
        }
    }
    if let Some(t) = patch.title {
        b.title = t;
    }
    if let Some(d) = patch.description {
        b.description = d;
    }
    if let Some(m) = patch.milestone_id {
        b.milestone_id = m;
    }
    if let Some(s) = patch.severity {
        b.severity = s;
    }
    if let Some(a) = patch.assignee {
        b.assignee = a;
    }
    let finished_now = patch.status.is_some_and(|to| to.is_done()) && was != b.status;
    store::save_bug(&mut tx, &b, ctx.now).await?;
    log(&mut tx, ctx, "update", "bug", id, changes).await?;
    if finished_now {
        // The error groups this bug was created from are resolved with it (a later
        // occurrence reopens them as regressed).
        crate::errors::actions::resolve_groups_of_bug(&mut tx, ctx.actor, ctx.now, id).await?;
    }
    let b = store::get_bug(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("bug"))?;
    tx.commit().await?;
    ctx.changed("bug", b.id);
    Ok(b)
}

// ---- devops tasks ----

pub async fn create_devops_task(
    db: &Db,
    ctx: &Ctx<'_>,
    mut input: NewDevopsTask,
) -> Result<DevopsTask> {
    input.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    if let Some(p) = input.project_id {
        require_active_project(&mut tx, p, "project_id").await?;
    }
    let t = store::insert_devops_task(&mut tx, &input, ctx.now).await?;
    log(
        &mut tx,
        ctx,
        "create",
        "devops_task",
        t.id,
        json!({"title": t.title}),
    )
    .await?;
    tx.commit().await?;
    ctx.changed("devops_task", t.id);
    Ok(t)
}

pub async fn update_devops_task(
    db: &Db,
    ctx: &Ctx<'_>,
    id: i64,
    mut patch: DevopsPatch,
) -> Result<DevopsTask> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut t = store::lock_devops_task(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("devops task"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    if let Some(Some(p)) = patch.project_id {
        require_active_project(&mut tx, p, "project_id").await?;
    }
    if let Some(v) = patch.title {
        t.title = v;
    }
    if let Some(v) = patch.description {
        t.description = v;
    }
    if let Some(v) = patch.project_id {
        t.project_id = v;
    }
    if let Some(v) = patch.category {
        t.category = v;
    }
    if let Some(v) = patch.status {
        t.status = v;
    }
    if let Some(v) = patch.priority {
        t.priority = v;
    }
    if let Some(v) = patch.schedule {
        t.schedule = v;
    }
    store::save_devops_task(&mut tx, &t, ctx.now).await?;
    log(&mut tx, ctx, "update", "devops_task", id, changes).await?;
    let t = store::get_devops_task(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("devops task"))?;
    tx.commit().await?;
    ctx.changed("devops_task", t.id);
    Ok(t)
}

pub async fn stats(db: &Db) -> Result<Stats> {
    use store::StatsTable as T;
    let mut s = Stats::default();
    for (table, map) in [
        (T::Projects, &mut s.projects),
        (T::Milestones, &mut s.milestones),
        (T::Features, &mut s.features),
        (T::Bugs, &mut s.bugs),
        (T::DevopsTasks, &mut s.devops_tasks),
    ] {
        for (status, n) in store::status_counts(db, table).await? {
            *map.entry("total".to_string()).or_insert(0) += n;
            map.insert(status, n);
        }
    }
    Ok(s)
}
