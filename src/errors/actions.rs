//! The operations on error groups that people make (resolve, create a bug) and the reads the
//! API and the dashboard share. Each change is one transaction with its activity record.

use super::*;
use crate::activity;
use crate::db::Db;
use crate::tracking::{self, Bug, NewBug};
use serde_json::json;
use sqlx::AnyConnection;

#[derive(Debug, thiserror::Error)]
pub enum ErrorsError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Invalid> for ErrorsError {
    fn from(v: Invalid) -> Self {
        ErrorsError::Invalid(v)
    }
}

type Result<T> = std::result::Result<T, ErrorsError>;

/// Occurrences returned with a group's detail (the stored sample may be larger).
pub const DETAIL_OCCURRENCES: i64 = 50;
/// Longest histogram a detail request may ask for (the retention bound is usually lower).
pub const MAX_HOURS: i64 = 24 * 90;

pub async fn list_groups(
    db: &Db,
    f: &GroupFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<ErrorGroup>> {
    let mut conn = db.acquire().await?;
    Ok(store::list_groups(&mut conn, f, limit, offset).await?)
}

/// `hours` hourly buckets ending with the hour of `now`, oldest first, zero-filled.
pub fn hour_axis(now: time::OffsetDateTime, hours: i64) -> Vec<String> {
    (0..hours)
        .rev()
        .map(|back| {
            let t = now - time::Duration::hours(back);
            hour_of(&crate::clock::format(t)).to_string()
        })
        .collect()
}

/// Zero-filled hourly counts of the given groups over `axis` (index-aligned with `axis`).
pub async fn histograms(db: &Db, ids: &[i64], axis: &[String]) -> Result<HashMap<i64, Vec<i64>>> {
    let mut out: HashMap<i64, Vec<i64>> = ids.iter().map(|id| (*id, vec![0; axis.len()])).collect();
    let Some(since) = axis.first() else {
        return Ok(out);
    };
    let mut conn = db.acquire().await?;
    for (id, h) in store::hours_since(&mut conn, ids, since).await? {
        if let (Some(series), Some(i)) = (out.get_mut(&id), axis.iter().position(|a| *a == h.hour))
        {
            series[i] += h.count;
        }
    }
    Ok(out)
}

use std::collections::HashMap;

pub async fn group_detail(
    db: &Db,
    now: time::OffsetDateTime,
    id: i64,
    hours: i64,
) -> Result<GroupDetail> {
    let hours = hours.clamp(1, MAX_HOURS);
    let group = {
        let mut conn = db.acquire().await?;
        store::get_group(&mut conn, id)
            .await?
            .ok_or(ErrorsError::NotFound("error group"))?
    };
    let axis = hour_axis(now, hours);
    let series = histograms(db, &[id], &axis)
        .await?
        .remove(&id)
        .unwrap_or_default();
    let hourly = axis
        .into_iter()
        .zip(series)
        .map(|(hour, count)| HourCount { hour, count })
        .collect();
    Ok(GroupDetail {
        stack_trace: store::stack_trace(db, id).await?,
        occurrences: store::occurrences(db, id, DETAIL_OCCURRENCES).await?,
        hourly,
        group,
    })
}

async fn log(
    conn: &mut AnyConnection,
    actor: &str,
    now: &str,
    action: &str,
    id: i64,
    details: serde_json::Value,
) -> Result<()> {
    activity::store::record(conn, actor, action, "error", Some(id), &details, now).await?;
    Ok(())
}

/// Marks a group resolved (idempotent: resolving a resolved group changes nothing). A later
/// occurrence reopens it as `regressed`.
pub async fn resolve_group(db: &Db, actor: &str, now: &str, id: i64) -> Result<ErrorGroup> {
    let mut tx = crate::db::begin_write(db).await?;
    let g = store::lock_group(&mut tx, id, now)
        .await?
        .ok_or(ErrorsError::NotFound("error group"))?;
    if g.status != GroupStatus::Resolved {
        store::mark_resolved(&mut tx, id, actor, now).await?;
        log(
            &mut tx,
            actor,
            now,
            "resolve",
            id,
            json!({"title": g.title}),
        )
        .await?;
    }
    let g = store::get_group(&mut tx, id)
        .await?
        .ok_or(ErrorsError::NotFound("error group"))?;
    tx.commit().await?;
    Ok(g)
}

/// Marks an open group in review after its assigned prompt `prompt_id` completed (see the
/// module doc), with its activity record. Returns false, changing nothing, when the group
/// is resolved.
pub async fn mark_in_review(
    db: &Db,
    actor: &str,
    now: &str,
    id: i64,
    prompt_id: i64,
) -> Result<bool> {
    let mut tx = crate::db::begin_write(db).await?;
    store::lock_group(&mut tx, id, now)
        .await?
        .ok_or(ErrorsError::NotFound("error group"))?;
    let marked = store::mark_in_review(&mut tx, id, prompt_id, now).await?;
    if marked {
        log(
            &mut tx,
            actor,
            now,
            "review",
            id,
            json!({"prompt_id": prompt_id, "comment": format!("assigner prompt #{prompt_id} completed")}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(marked)
}

/// A group with its latest stack trace, for an agent prompt about it.
pub async fn group_with_stack(db: &Db, id: i64) -> Result<(ErrorGroup, Option<String>)> {
    let group = {
        let mut conn = db.acquire().await?;
        store::get_group(&mut conn, id)
            .await?
            .ok_or(ErrorsError::NotFound("error group"))?
    };
    Ok((group, store::stack_trace(db, id).await?))
}

/// Resolves the open groups linked to a bug, inside the caller's transaction (the bug's status
/// change). Called by `tracking::actions::update_bug` when a bug is resolved or closed.
pub async fn resolve_groups_of_bug(
    conn: &mut AnyConnection,
    actor: &str,
    now: &str,
    bug_id: i64,
) -> std::result::Result<Vec<i64>, sqlx::Error> {
    let ids = store::open_groups_of_bug(conn, bug_id).await?;
    for id in &ids {
        store::mark_resolved(conn, *id, actor, now).await?;
        activity::store::record(
            conn,
            actor,
            "resolve",
            "error",
            Some(*id),
            &json!({"via_bug": bug_id}),
            now,
        )
        .await?;
    }
    Ok(ids)
}

/// The project a bug from this group belongs to, when not given: the active project whose name
/// equals the group's source (case-insensitive), else the only active project, else none.
pub fn infer_project(group: &ErrorGroup, projects: &[(i64, String)]) -> Option<i64> {
    let source = group.source.to_lowercase();
    projects
        .iter()
        .find(|(_, name)| name.to_lowercase() == source)
        .or_else(|| (projects.len() == 1).then(|| &projects[0]))
        .map(|(id, _)| *id)
}

/// The bug text: what the group is, where and how often it happens, and the way back to it.
fn bug_description(g: &ErrorGroup, stack: Option<&str>) -> String {
    let nodes: Vec<String> = g
        .nodes
        .iter()
        .map(|n| format!("{} ({})", n.node_id, n.count))
        .collect();
    let mut d = format!(
        "From error group #{id} (/errors/{id}).\n\n{t}: {m}\n\nSource: {s}\nLevel: {l}\nOccurrences: {c} (first {f}, last {ls})\nNodes: {n}\nGrouped as: {title}\n",
        id = g.id,
        t = g.error_type,
        m = g.message,
        s = g.source,
        l = g.level,
        c = g.count,
        f = g.first_seen,
        ls = g.last_seen,
        n = nodes.join(", "),
        title = g.title,
    );
    if let Some(st) = stack {
        d.push_str("\nLatest stack trace:\n");
        d.push_str(st);
        d.push('\n');
    }
    // Bugs have a description limit; keep the head (the summary) whole.
    let max = tracking::MAX_DESCRIPTION;
    if d.len() > max {
        let mut end = max - 20;
        while !d.is_char_boundary(end) {
            end -= 1;
        }
        d.truncate(end);
        d.push_str("\n… [cut]");
    }
    d
}

/// Creates a bug from a group and links them both ways (`errors.bug_id`; the bug's text names
/// the group), in one transaction. A group has at most one bug: a second request is a 409
/// naming the existing one.
pub async fn create_bug(
    db: &Db,
    actor: &str,
    now: &str,
    id: i64,
    req: BugFromError,
) -> Result<(Bug, ErrorGroup)> {
    let mut tx = crate::db::begin_write(db).await?;
    let g = store::lock_group(&mut tx, id, now)
        .await?
        .ok_or(ErrorsError::NotFound("error group"))?;
    if let Some(b) = g.bug_id {
        return Err(ErrorsError::Conflict(format!(
            "error group {id} already has bug {b}"
        )));
    }
    let project_id = match req.project_id {
        Some(p) => p,
        None => {
            let projects = tracking::store::project_names(&mut *tx).await?;
            infer_project(&g, &projects).ok_or_else(|| {
                invalid(
                    "project_id",
                    "give project_id: no active project is named like the error's source, and there is not exactly one active project",
                )
            })?
        }
    };
    match tracking::store::get_project(&mut *tx, project_id).await? {
        Some(p) if !p.archived => {}
        Some(_) => {
            return Err(invalid("project_id", format!("project {project_id} is archived")).into())
        }
        None => {
            return Err(
                invalid("project_id", format!("project {project_id} does not exist")).into(),
            )
        }
    }
    let stack = store::stack_trace(&mut *tx, id).await?;
    // The raw message of an occurrence, not the grouping key with its `<str>`/`<num>`
    // placeholders: a title people recognise.
    let message = g.message.lines().next().unwrap_or("").trim();
    let message = if message.is_empty() {
        &g.title
    } else {
        message
    };
    let default_title: String = format!("{}: {}", g.error_type, message)
        .chars()
        .take(tracking::MAX_NAME)
        .collect();
    let mut new_bug = NewBug {
        project_id,
        title: req.title.unwrap_or(default_title),
        milestone_id: None,
        description: Some(bug_description(&g, stack.as_deref())),
        severity: Some(req.severity.unwrap_or_else(|| severity_for(g.level))),
        assignee: None,
    };
    new_bug.validate()?;
    let bug = tracking::store::insert_bug(&mut tx, &new_bug, now).await?;
    activity::store::record(
        &mut tx,
        actor,
        "create",
        "bug",
        Some(bug.id),
        &json!({"title": bug.title, "severity": bug.severity, "from_error": id}),
        now,
    )
    .await?;
    store::link_bug(&mut tx, id, bug.id, now).await?;
    log(
        &mut tx,
        actor,
        now,
        "create_bug",
        id,
        json!({"bug_id": bug.id}),
    )
    .await?;
    let g = store::get_group(&mut tx, id)
        .await?
        .ok_or(ErrorsError::NotFound("error group"))?;
    tx.commit().await?;
    Ok((bug, g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(source: &str) -> ErrorGroup {
        ErrorGroup {
            id: 1,
            fingerprint: "f".into(),
            error_type: "E".into(),
            source: source.into(),
            title: "t".into(),
            message: "m".into(),
            level: ErrorLevel::Error,
            status: GroupStatus::Open,
            regressed: false,
            count: 1,
            first_seen: String::new(),
            last_seen: String::new(),
            last_node: "n".into(),
            resolved_at: None,
            resolved_by: None,
            bug_id: None,
            review_at: None,
            review_prompt_id: None,
            nodes: Vec::new(),
        }
    }

    #[test]
    fn project_is_inferred_from_the_source_or_the_only_project() {
        let projects = vec![(1, "Shop".to_string()), (2, "billing".to_string())];
        assert_eq!(infer_project(&group("billing"), &projects), Some(2));
        assert_eq!(infer_project(&group("shop"), &projects), Some(1));
        assert_eq!(infer_project(&group("other"), &projects), None);
        assert_eq!(infer_project(&group("other"), &projects[..1]), Some(1));
    }

    #[test]
    fn hour_axis_ends_with_the_current_hour() {
        let now = time::macros::datetime!(2026-11-26 13:17 UTC);
        let axis = hour_axis(now, 3);
        assert_eq!(axis, ["2026-11-26T11", "2026-11-26T12", "2026-11-26T13"]);
    }
}
