//! Where suggestions come from: a project's open scan items, open bugs, error groups without a
//! bug and tasks that failed for good, each ranked with its reason.

use super::*;

pub(super) struct Candidate {
    pub(super) source: SuggestionSource,
    pub(super) source_id: i64,
    pub(super) title: String,
    pub(super) reason: String,
    pub(super) score: i64,
    pub(super) proposed: Target,
}

pub(super) async fn candidates(
    state: &AppState,
    project: &crate::tracking::Project,
) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    // Scan items (file notes): the open ones not yet in an approved plan.
    let mut conn = state.db.acquire().await?;
    for i in store::open_items(&mut conn, project.id)
        .await?
        .into_iter()
        .filter(|i| i.kind.is_file() && i.feature_id.is_none())
    {
        let (proposed, what) = match i.kind {
            Source::Fixme | Source::Xxx | Source::Hack => (Target::Prompt, "fix"),
            _ => (Target::Feature, "plan"),
        };
        out.push(Candidate {
            source: SuggestionSource::Item,
            source_id: i.id,
            title: clip(&i.text, 150),
            reason: format!(
                "{} at {}{}: {what} it",
                i.kind.as_str().to_uppercase(),
                i.location(),
                i.author
                    .as_deref()
                    .map(|a| format!(" (by {a})"))
                    .unwrap_or_default()
            ),
            score: i.weight,
            proposed,
        });
    }
    drop(conn);
    for status in [
        crate::tracking::BugStatus::Open,
        crate::tracking::BugStatus::InProgress,
    ] {
        for b in crate::tracking::store::list_bugs(
            &state.db,
            &crate::tracking::BugFilter {
                project_id: Some(project.id),
                status: Some(status),
                ..Default::default()
            },
            1000,
            0,
        )
        .await?
        {
            use crate::tracking::BugSeverity as S;
            let score = match b.severity {
                S::Critical => 70,
                S::High => 55,
                S::Medium => 35,
                S::Low => 15,
            };
            out.push(Candidate {
                source: SuggestionSource::Bug,
                source_id: b.id,
                title: clip(&format!("Fix bug #{}: {}", b.id, b.title), 150),
                reason: format!(
                    "{} bug #{} is {} since {}",
                    b.severity,
                    b.id,
                    b.status.as_str().replace('_', " "),
                    b.created_at.get(..10).unwrap_or(&b.created_at)
                ),
                score,
                proposed: Target::Prompt,
            });
        }
    }
    let mut conn = state.db.acquire().await?;
    for g in crate::errors::store::list_groups(
        &mut conn,
        &crate::errors::GroupFilter {
            status: Some(crate::errors::GroupStatus::Open),
            source: Some(project.name.clone()),
            ..Default::default()
        },
        1000,
        0,
    )
    .await?
    .into_iter()
    .filter(|g| g.bug_id.is_none())
    {
        let score = 30
            + ((g.count.max(1) as f64).log10() * 10.0).min(30.0) as i64
            + if g.regressed { 10 } else { 0 };
        out.push(Candidate {
            source: SuggestionSource::ErrorGroup,
            source_id: g.id,
            title: clip(&format!("File a bug for: {}", g.title), 150),
            reason: format!(
                "error group #{} seen {} time{} (last {}){}",
                g.id,
                g.count,
                if g.count == 1 { "" } else { "s" },
                g.last_seen,
                if g.regressed { ", regressed" } else { "" }
            ),
            score,
            proposed: Target::Bug,
        });
    }
    drop(conn);
    for t in crate::tasks::store::list_tasks(
        &state.db,
        &crate::tasks::TaskFilter {
            status: Some(crate::tasks::TaskStatus::Dead),
            project_id: Some(project.id),
            ..Default::default()
        },
        200,
        0,
    )
    .await?
    {
        out.push(Candidate {
            source: SuggestionSource::FailedTask,
            source_id: t.id,
            title: clip(
                &format!("Run failed task #{} ({}) again", t.id, t.task_type),
                150,
            ),
            reason: format!(
                "task #{} failed for good after {} attempt{}{}",
                t.id,
                t.attempts,
                if t.attempts == 1 { "" } else { "s" },
                t.error
                    .as_deref()
                    .map(|e| format!(": {}", clip(e, 120)))
                    .unwrap_or_default()
            ),
            score: 45,
            proposed: Target::Task,
        });
    }
    out.sort_by(|a, b| b.score.cmp(&a.score).then(a.source_id.cmp(&b.source_id)));
    Ok(out)
}
