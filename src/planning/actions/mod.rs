//! Planning operations: scan a project and refresh its plan, approve or reject a proposed
//! milestone. Each change runs in one transaction with its activity rows.

use super::PlanResult as Result;
use super::*;
use crate::activity;
use crate::tracking::actions::Ctx;
use crate::tracking::{BugFilter, BugSeverity, BugStatus, NewFeature, NewMilestone, Project};
use serde_json::json;
use sqlx::AnyConnection;
use std::collections::{HashMap, HashSet};

mod blame;
mod decide;
mod files;
mod llm_pass;
use blame::blame_new_items;
pub use decide::*;
use files::write_plan_files;

/// A running scan older than this is taken for dead (its process stopped) and replaced.
const STALE_SCAN: time::Duration = time::Duration::hours(1);
/// Skipped files kept with a scan (the count is always whole).
const MAX_SKIPPED_KEPT: usize = 200;

/// What one scan did, answered by `POST /api/planning/scan` and printed by the CLI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanReport {
    pub project_id: i64,
    pub project: String,
    pub scan: ScanRun,
    /// Proposed milestones waiting for approval after the scan.
    pub pending: Vec<PlanMilestone>,
    /// Files written under `<data-dir>/milestones/`.
    pub files: Vec<String>,
}

fn ctx<'a>(state: &'a AppState, actor: &'a str, now: &'a str) -> Ctx<'a> {
    Ctx {
        actor,
        now,
        events: &state.events,
    }
}

async fn log(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    entity: &str,
    id: i64,
    details: serde_json::Value,
    now: &str,
) -> Result<()> {
    activity::store::record(conn, actor, action, entity, Some(id), &details, now).await?;
    Ok(())
}

/// The project a scan reads: it must exist, be active and have a source path that is a
/// directory.
async fn scannable(state: &AppState, project_id: i64) -> Result<(Project, std::path::PathBuf)> {
    let p = crate::tracking::store::get_project(&state.db, project_id)
        .await?
        .ok_or(PlanningError::NotFound("project"))?;
    if p.archived {
        return Err(crate::validate::invalid(
            "project_id",
            format!("project {project_id} is archived"),
        )
        .into());
    }
    let Some(path) = p.source_path.clone().filter(|s| !s.trim().is_empty()) else {
        return Err(crate::validate::invalid(
            "project_id",
            format!(
                "project '{}' has no source_path to scan; set one (PUT /api/projects/{project_id})",
                p.name
            ),
        )
        .into());
    };
    let dir = std::path::PathBuf::from(&path);
    if !dir.is_dir() {
        return Err(crate::validate::invalid(
            "source_path",
            format!(
                "project '{}': {path} is not a directory on this server",
                p.name
            ),
        )
        .into());
    }
    Ok((p, dir))
}

/// Scans every active project that has a source path (the milestone worker's tick). A project
/// whose scan fails is reported in its scan row and does not stop the others.
pub async fn scan_all(state: &AppState, actor: &str) -> Result<Vec<ScanReport>> {
    let projects = crate::tracking::store::list_projects(
        &state.db,
        &crate::tracking::ProjectFilter {
            status: Some(crate::tracking::ProjectStatus::Active),
            ..Default::default()
        },
        10_000,
        0,
    )
    .await?;
    let mut out = Vec::new();
    for p in projects.iter().filter(|p| p.source_path.is_some()) {
        match scan_project(state, actor, p.id).await {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(project = %p.name, error = %e, "milestone scan skipped"),
        }
    }
    Ok(out)
}

/// Scans one project: stores what changed among its items (with its open bugs and error
/// groups), refreshes its proposed milestones and writes the plan files.
pub async fn scan_project(state: &AppState, actor: &str, project_id: i64) -> Result<ScanReport> {
    let (project, dir) = scannable(state, project_id).await?;
    let now = state.clock.now();
    let now_s = crate::clock::format(now);
    // One scan per project at a time, across replicas: the running row is unique.
    let scan_id = {
        let mut tx = crate::db::begin_write(&state.db).await?;
        let stale = crate::clock::format(now - STALE_SCAN);
        store::fail_stale_scans(&mut tx, project_id, &stale, &now_s).await?;
        match store::insert_scan(&mut tx, project_id, actor, &now_s).await {
            Ok(id) => {
                tx.commit().await?;
                id
            }
            Err(e) if crate::db::is_unique_violation(&e) => {
                drop(tx);
                let running = store::running_scan(&state.db, project_id).await?;
                return Err(PlanningError::Conflict(format!(
                    "a scan of project '{}' is already running{}; wait for it (GET /api/planning/status)",
                    project.name,
                    running.map(|id| format!(" (scan {id})")).unwrap_or_default()
                )));
            }
            Err(e) => return Err(e.into()),
        }
    };
    let result = run_scan(state, actor, &project, &dir, scan_id).await;
    match result {
        Ok(report) => Ok(report),
        Err(e) => {
            // The scan row says why; the items and plans are as before (their transaction
            // rolled back or never started).
            let finished = crate::clock::format(state.clock.now());
            let mut tx = crate::db::begin_write(&state.db).await?;
            let mut run = store::get_scan(&mut *tx, scan_id)
                .await?
                .ok_or(PlanningError::NotFound("scan"))?;
            run.status = ScanStatus::Failed;
            run.finished_at = Some(finished.clone());
            run.error = Some(e.to_string());
            store::finish_scan(&mut tx, &run).await?;
            log(
                &mut tx,
                actor,
                "scan_failed",
                "project",
                project_id,
                json!({"scan_id": scan_id, "error": e.to_string()}),
                &finished,
            )
            .await?;
            tx.commit().await?;
            Err(e)
        }
    }
}

async fn run_scan(
    state: &AppState,
    actor: &str,
    project: &Project,
    dir: &std::path::Path,
    scan_id: i64,
) -> Result<ScanReport> {
    let project_id = project.id;
    let mut cache = state.planning.take_cache(project_id);
    let root = dir.to_path_buf();
    let joined = tokio::task::spawn_blocking(move || {
        let r = scan::scan(&root, &mut cache);
        (r, cache)
    })
    .await;
    let (found, cache) = match joined {
        Ok(v) => v,
        Err(e) => {
            let why = match e.try_into_panic() {
                Ok(p) => crate::db::group_commit::panic_message(p.as_ref()),
                Err(e) => e.to_string(),
            };
            return Err(PlanningError::Conflict(format!("the scan stopped: {why}")));
        }
    };
    state.planning.put_cache(project_id, cache);
    let found = found.map_err(|e| match e {
        scan::ScanError::Git(m) => PlanningError::Conflict(format!("cannot run git: {m}")),
        other => crate::validate::invalid("source_path", other.to_string()).into(),
    })?;

    // Bugs and error groups of the project, as items.
    let mut others = Vec::new();
    for status in [BugStatus::Open, BugStatus::InProgress] {
        let bugs = crate::tracking::store::list_bugs(
            &state.db,
            &BugFilter {
                project_id: Some(project_id),
                status: Some(status),
                ..Default::default()
            },
            1000,
            0,
        )
        .await?;
        for b in bugs {
            let weight = match b.severity {
                BugSeverity::Critical => 70,
                BugSeverity::High => 55,
                BugSeverity::Medium => 35,
                BugSeverity::Low => 15,
            };
            others.push((Source::Bug, b.id, b.title, weight));
        }
    }
    {
        let mut conn = state.db.acquire().await?;
        let groups = crate::errors::store::list_groups(
            &mut conn,
            &crate::errors::GroupFilter {
                status: Some(crate::errors::GroupStatus::Open),
                source: Some(project.name.clone()),
                ..Default::default()
            },
            1000,
            0,
        )
        .await?;
        for g in groups.into_iter().filter(|g| g.bug_id.is_none()) {
            let weight = 30
                + ((g.count.max(1) as f64).log10() * 10.0).min(30.0) as i64
                + if g.regressed { 10 } else { 0 };
            others.push((
                Source::Error,
                g.id,
                format!("{} ({} occurrences)", g.title, g.count),
                weight,
            ));
        }
    }

    let now = crate::clock::format(state.clock.now());
    let mut tx = crate::db::begin_write(&state.db).await?;
    let open = store::open_items(&mut tx, project_id).await?;
    let known: Vec<scan::Known> = open
        .iter()
        .filter(|i| i.kind.is_file())
        .filter_map(|i| {
            Some(scan::Known {
                id: i.id,
                kind: match i.kind {
                    Source::Fixme => scan::ItemKind::Fixme,
                    Source::Hack => scan::ItemKind::Hack,
                    Source::Xxx => scan::ItemKind::Xxx,
                    Source::Todo => scan::ItemKind::Todo,
                    Source::Checkbox => scan::ItemKind::Checkbox,
                    Source::Bug | Source::Error => return None,
                },
                path: i.path.clone().unwrap_or_default(),
                line: i.line.unwrap_or(0) as u32,
                fingerprint: i.fingerprint.clone(),
            })
        })
        .collect();
    let files = found.files;
    let files_read = found.files_read;
    let skipped = found.skipped;
    let changes = scan::reconcile(&known, found.items);
    fn as_found(it: &scan::Item) -> store::Found<'_> {
        let kind = Source::from(it.kind);
        store::Found {
            kind,
            path: Some(&it.path),
            line: Some(it.line as i64),
            text: &it.text,
            heading: it.heading.as_deref(),
            fingerprint: &it.fingerprint,
            source_id: None,
            weight: kind.marker_weight(),
        }
    }
    for (id, it) in &changes.same {
        store::seen_again(&mut tx, *id, Some(it.line as i64), &now).await?;
    }
    for (id, it) in &changes.edited {
        store::update_item(&mut tx, *id, project_id, &as_found(it), &now).await?;
    }
    let mut added_ids = Vec::new();
    for it in &changes.added {
        let id = store::upsert_item(&mut tx, project_id, &as_found(it), &now).await?;
        added_ids.push((id, it.path.clone(), it.line));
    }
    // Bugs and errors: the open ones are items; the ones no longer open are done.
    let mut still = HashSet::new();
    let mut added_other = 0i64;
    let open_prints: HashSet<&str> = open.iter().map(|i| i.fingerprint.as_str()).collect();
    for (kind, id, title, weight) in &others {
        let print = format!("{}:{id}", kind.as_str());
        if !open_prints.contains(print.as_str()) {
            added_other += 1;
        }
        store::upsert_item(
            &mut tx,
            project_id,
            &store::Found {
                kind: *kind,
                path: None,
                line: None,
                text: title,
                heading: None,
                fingerprint: &print,
                source_id: Some(*id),
                weight: *weight,
            },
            &now,
        )
        .await?;
        still.insert(print);
    }
    let mut gone = changes.gone.clone();
    gone.extend(
        open.iter()
            .filter(|i| !i.kind.is_file() && !still.contains(&i.fingerprint))
            .map(|i| i.id),
    );
    store::mark_done(&mut tx, &gone, &now).await?;

    // The plan: the open items not yet in an approved milestone.
    let items: Vec<PlanItem> = store::open_items(&mut tx, project_id)
        .await?
        .into_iter()
        .filter(|i| i.feature_id.is_none())
        .collect();
    let drafts = plan::build(&items);
    let existing = store::decided_or_pending(&mut tx, project_id).await?;
    let by_key: HashMap<&str, &PlanMilestone> =
        existing.iter().map(|m| (m.items_key.as_str(), m)).collect();
    let mut keep = HashSet::new();
    let mut fresh = Vec::new();
    for d in &drafts {
        match by_key.get(d.items_key.as_str()) {
            // Proposed already (and waiting), or decided: not again.
            Some(m) => {
                keep.insert(m.id);
            }
            None => fresh.push(d.clone()),
        }
    }
    // The model's grouping of the very items the new proposals hold still waits: keep it (no
    // new request, no churn).
    let llm_pending: Vec<&PlanMilestone> = existing
        .iter()
        .filter(|m| m.status == PlanStatus::PendingApproval && m.grouping == Grouping::Llm)
        .collect();
    let fresh_items: HashSet<i64> = fresh.iter().flat_map(regroup::draft_ids).collect();
    let llm_items: HashSet<i64> = llm_pending.iter().flat_map(|m| m.item_ids()).collect();
    let regrouped_before = !fresh.is_empty() && !llm_pending.is_empty() && fresh_items == llm_items;
    let mut proposal = llm_pass::Proposal {
        ids: Vec::new(),
        drafts: Vec::new(),
    };
    if regrouped_before {
        keep.extend(llm_pending.iter().map(|m| m.id));
    } else {
        for d in &fresh {
            proposal
                .ids
                .push(store::insert_plan(&mut tx, project_id, scan_id, d, &now).await?);
        }
        proposal.drafts = fresh;
    }
    // (Its items key is its item set's, so a regrouped milestone can match a draft too.)
    let kept_llm = existing
        .iter()
        .any(|m| keep.contains(&m.id) && m.grouping == Grouping::Llm);
    let (grouping, note) = match llm_pass::wanted(state) {
        _ if proposal.drafts.is_empty() && kept_llm => (
            Grouping::Llm,
            Some("the model's grouping of these items still waits; kept".to_string()),
        ),
        _ if proposal.drafts.is_empty() => (
            Grouping::Deterministic,
            Some("no new proposals to regroup".to_string()),
        ),
        Err(why) => (Grouping::Deterministic, Some(why)),
        Ok(()) => (Grouping::Deterministic, None),
    };
    let proposed = proposal.ids.len();
    let mut superseded = 0;
    for m in existing
        .iter()
        .filter(|m| m.status == PlanStatus::PendingApproval && !keep.contains(&m.id))
    {
        store::set_plan_status(
            &mut tx,
            m.id,
            PlanStatus::Superseded,
            None,
            None,
            None,
            &now,
        )
        .await?;
        superseded += 1;
    }
    let open_count = store::open_items(&mut tx, project_id).await?.len() as i64;
    let run = ScanRun {
        id: scan_id,
        project_id,
        status: ScanStatus::Done,
        started_by: actor.to_string(),
        started_at: String::new(),
        finished_at: Some(now.clone()),
        files: files as i64,
        files_read: files_read as i64,
        items: open_count,
        added: changes.added.len() as i64 + added_other,
        edited: changes.edited.len() as i64,
        done: gone.len() as i64,
        skipped_count: skipped.len() as i64,
        skipped: skipped.into_iter().take(MAX_SKIPPED_KEPT).collect(),
        error: None,
        grouping,
        grouping_note: note.clone(),
    };
    store::finish_scan(&mut tx, &run).await?;
    log(
        &mut tx,
        actor,
        "scan",
        "project",
        project_id,
        json!({
            "scan_id": scan_id, "files": run.files, "files_read": run.files_read,
            "items": run.items, "added": run.added, "edited": run.edited, "done": run.done,
            "proposed": proposed, "superseded": superseded,
            "grouping": grouping, "grouping_note": note,
        }),
        &now,
    )
    .await?;
    tx.commit().await?;

    // Authors of new file items, where cheap: after the commit, best effort.
    blame_new_items(state, dir, &added_ids).await;

    // The LLM pass, outside any transaction: it replaces this scan's new proposals with the
    // model's regrouping, or keeps them and records why.
    if note.is_none() {
        let by_id: HashMap<i64, &PlanItem> = items.iter().map(|i| (i.id, i)).collect();
        llm_pass::run(state, actor, project, scan_id, &proposal, &by_id).await;
    }

    let pending = store::list_plans(
        &state.db,
        &store::PlanFilter {
            project_id: Some(project_id),
            status: Some(PlanStatus::PendingApproval),
        },
        1000,
        0,
    )
    .await?;
    let scan = store::get_scan(&state.db, scan_id)
        .await?
        .ok_or(PlanningError::NotFound("scan"))?;
    let files = write_plan_files(state, project, &scan, &pending).await;
    state
        .events
        .emit(crate::events::Topic::Work, "plan", project_id);
    Ok(ScanReport {
        project_id,
        project: project.name.clone(),
        scan,
        pending,
        files,
    })
}
