//! The tracking operations the JSON API, the dashboard and later domains share. Each runs in
//! one transaction that also writes its activity record, so a change and its log line land
//! together or not at all.

pub use super::bugs::actions::*;
pub use super::devops::actions::*;
pub use super::features::actions::*;
pub use super::milestones::actions::*;
pub use super::projects::actions::*;
use super::store;
use super::*;
use crate::activity;
use crate::db::Db;
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

pub(super) type Result<T> = std::result::Result<T, TrackingError>;

/// Who is acting, and when.
pub struct Ctx<'a> {
    pub actor: &'a str,
    pub now: &'a str,
    /// Where a committed change is announced (live pages).
    pub events: &'a crate::events::Events,
}

impl Ctx<'_> {
    /// Announces a committed change of `entity` `id` (topic `work`).
    pub fn changed(&self, entity: &'static str, id: i64) {
        self.events.emit(crate::events::Topic::Work, entity, id);
    }
}

pub(super) async fn log(
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

pub(super) fn name_taken(name: &str) -> TrackingError {
    TrackingError::Conflict(format!("an active project named '{name}' already exists"))
}

/// An active (not archived) project must exist for new work to be filed under it.
pub(super) async fn require_active_project(
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
pub(super) async fn require_milestone_in(
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

pub async fn stats(db: &Db) -> Result<Stats> {
    use store::Table as T;
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
