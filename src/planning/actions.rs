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

/// A running scan older than this is taken for dead (its process stopped) and replaced.
const STALE_SCAN: time::Duration = time::Duration::hours(1);
/// Skipped files kept with a scan (the count is always whole).
const MAX_SKIPPED_KEPT: usize = 200;
/// New file items whose author is asked of `git blame` per scan (one process each).
const MAX_BLAME: usize = 200;

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
    let mut proposed = 0;
    for d in &drafts {
        match by_key.get(d.items_key.as_str()) {
            // Proposed already (and waiting), or decided: not again.
            Some(m) => {
                keep.insert(m.id);
            }
            None => {
                store::insert_plan(&mut tx, project_id, scan_id, d, &now).await?;
                proposed += 1;
            }
        }
    }
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
        }),
        &now,
    )
    .await?;
    tx.commit().await?;

    // Authors of new file items, where cheap: after the commit, best effort.
    blame_new_items(state, dir, &added_ids).await;

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
    let files = write_plan_files(state, project, &pending).await;
    state
        .events
        .emit(crate::events::Topic::Work, "plan", project_id);
    let scan = store::get_scan(&state.db, scan_id)
        .await?
        .ok_or(PlanningError::NotFound("scan"))?;
    Ok(ScanReport {
        project_id,
        project: project.name.clone(),
        scan,
        pending,
        files,
    })
}

/// `git blame` for the new items (bounded): who wrote the line and when.
async fn blame_new_items(state: &AppState, dir: &std::path::Path, added: &[(i64, String, u32)]) {
    if added.is_empty() {
        return;
    }
    let dir = dir.to_path_buf();
    let wanted: Vec<(i64, String, u32)> = added.iter().take(MAX_BLAME).cloned().collect();
    let found = tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .filter_map(|(id, path, line)| blame(&dir, &path, line).map(|(a, t)| (id, a, t)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    if found.is_empty() {
        return;
    }
    let Ok(mut conn) = state.db.acquire().await else {
        return;
    };
    for (id, author, at) in found {
        if let Err(e) = store::set_author(&mut conn, id, &author, at.as_deref()).await {
            tracing::debug!(error = %e, "storing a blame author failed");
        }
    }
}

/// The author and time of one line (`git blame --porcelain`); None for an uncommitted line.
fn blame(dir: &std::path::Path, path: &str, line: u32) -> Option<(String, Option<String>)> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["blame", "--porcelain", "-L"])
        .arg(format!("{line},{line}"))
        .arg("--")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut author = None;
    let mut at = None;
    for l in text.lines() {
        if let Some(a) = l.strip_prefix("author ") {
            author = Some(a.to_string());
        } else if let Some(t) = l.strip_prefix("author-time ") {
            at = t
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .map(crate::clock::format);
        }
    }
    match author {
        Some(a) if a != "Not Committed Yet" => Some((a, at)),
        _ => None,
    }
}

/// A project name as a file name: letters, digits, `-` and `_`.
fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "project".into()
    } else {
        s
    }
}

/// Writes `<data-dir>/milestones/<project>_milestones_<timestamp>.json` (the plan with its
/// items) and `<project>_summary.md`, each through a temporary file and a rename. A failure
/// is logged, never fatal: the plan is in the database.
async fn write_plan_files(
    state: &AppState,
    project: &Project,
    pending: &[PlanMilestone],
) -> Vec<String> {
    let mut ids: Vec<i64> = pending.iter().flat_map(|m| m.item_ids()).collect();
    ids.sort_unstable();
    ids.dedup();
    let items = match state.db.acquire().await {
        Ok(mut c) => store::items_by_ids(&mut c, &ids).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let by_id: HashMap<i64, &PlanItem> = items.iter().map(|i| (i.id, i)).collect();
    let now = state.clock.now();
    let stamp = format!(
        "{:04}{:02}{:02}_{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let stem = file_stem(&project.name);
    let dir = state.config.data_dir.join("milestones");
    let json_name = format!("{stem}_milestones_{stamp}.json");
    let md_name = format!("{stem}_summary.md");
    let doc = json!({
        "project": {"id": project.id, "name": project.name, "source_path": project.source_path},
        "generated_at": crate::clock::format(now),
        "milestones": pending.iter().map(|m| json!({
            "id": m.id,
            "title": m.title,
            "description": m.description,
            "priority": m.priority,
            "status": m.status,
            "phases": m.phases.iter().map(|p| json!({
                "name": p.name,
                "tasks": p.tasks.iter().map(|t| json!({
                    "title": t.title,
                    "priority": t.priority,
                    "items": t.items.iter().filter_map(|id| by_id.get(id)).map(|i| json!({
                        "id": i.id, "kind": i.kind, "location": i.location(), "text": i.text,
                        "author": i.author,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let md = summary_markdown(project, pending, &by_id, &crate::clock::format(now));
    let json_text = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    let written = tokio::task::spawn_blocking({
        let dir = dir.clone();
        let (json_name, md_name) = (json_name.clone(), md_name.clone());
        move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            atomic_write(&dir.join(&json_name), &json_text)?;
            atomic_write(&dir.join(&md_name), md.as_bytes())
        }
    })
    .await;
    match written {
        Ok(Ok(())) => vec![
            dir.join(json_name).display().to_string(),
            dir.join(md_name).display().to_string(),
        ],
        Ok(Err(e)) => {
            tracing::warn!(error = %e, dir = %dir.display(), "writing the plan files failed");
            Vec::new()
        }
        Err(_) => Vec::new(),
    }
}

fn atomic_write(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn summary_markdown(
    project: &Project,
    pending: &[PlanMilestone],
    items: &HashMap<i64, &PlanItem>,
    when: &str,
) -> String {
    let mut s = format!(
        "# {} — milestone plan\n\nGenerated {when}. {} milestone{} waiting for approval \
         (dashboard: /autopilot).\n",
        project.name,
        pending.len(),
        if pending.len() == 1 { "" } else { "s" }
    );
    for m in pending {
        s.push_str(&format!(
            "\n## {} (priority {})\n\n{}\n",
            m.title, m.priority, m.description
        ));
        for p in &m.phases {
            s.push_str(&format!("\n### {}\n\n", p.name));
            for t in &p.tasks {
                s.push_str(&format!("- [ ] {}\n", t.title));
                for id in &t.items {
                    if let Some(i) = items.get(id) {
                        s.push_str(&format!("  - `{}` {}\n", i.location(), i.text));
                    }
                }
            }
        }
    }
    s
}

// ---- approve / reject ----

/// Approves a proposed milestone: creates the tracking milestone and one feature per task
/// (its description lists the items, `path:line`), links the items to their features.
pub async fn approve(
    state: &AppState,
    actor: &str,
    id: i64,
) -> Result<(PlanMilestone, crate::tracking::Milestone)> {
    let now = state.clock.now_str();
    let c = ctx(state, actor, &now);
    let mut tx = crate::db::begin_write(&state.db).await?;
    let plan = store::lock_plan(&mut tx, id, &now)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))?;
    if plan.status != PlanStatus::PendingApproval {
        return Err(PlanningError::Conflict(format!(
            "proposed milestone {id} is {}, not pending_approval",
            plan.status
        )));
    }
    let items = store::items_by_ids(&mut tx, &plan.item_ids()).await?;
    let by_id: HashMap<i64, &PlanItem> = items.iter().map(|i| (i.id, i)).collect();
    let milestone = crate::tracking::actions::create_milestone_in(
        &mut tx,
        &c,
        NewMilestone {
            project_id: plan.project_id,
            name: plan.title.clone(),
            description: Some(format!(
                "{}\n\nFrom proposed milestone #{} (/autopilot/milestones/{}).",
                plan.description, plan.id, plan.id
            )),
            target_date: None,
            status: None,
        },
    )
    .await?;
    let mut features = Vec::new();
    for phase in &plan.phases {
        for task in &phase.tasks {
            let mut description = format!("Phase: {}\n\nFrom:\n", phase.name);
            for i in task.items.iter().filter_map(|i| by_id.get(i)) {
                description.push_str(&format!("- {} ({}): {}\n", i.location(), i.kind, i.text));
            }
            let f = crate::tracking::actions::create_feature_in(
                &mut tx,
                &c,
                NewFeature {
                    project_id: plan.project_id,
                    name: task.title.clone(),
                    milestone_id: Some(milestone.id),
                    description: Some(clip_chars(&description, crate::tracking::MAX_DESCRIPTION)),
                    priority: Some((task.priority / 10).clamp(0, crate::tracking::MAX_PRIORITY)),
                    assignee: None,
                },
            )
            .await?;
            store::link_feature(&mut tx, &task.items, f.id, &now).await?;
            features.push(f.id);
        }
    }
    store::set_plan_status(
        &mut tx,
        id,
        PlanStatus::Approved,
        None,
        Some(actor),
        Some(milestone.id),
        &now,
    )
    .await?;
    log(
        &mut tx,
        actor,
        "approve",
        "plan_milestone",
        id,
        json!({"milestone_id": milestone.id, "features": features}),
        &now,
    )
    .await?;
    tx.commit().await?;
    c.changed("milestone", milestone.id);
    for f in &features {
        c.changed("feature", *f);
    }
    let plan = store::get_plan(&state.db, id)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))?;
    Ok((plan, milestone))
}

/// Rejects a proposed milestone with a reason (kept); the same items are not proposed again.
pub async fn reject(state: &AppState, actor: &str, id: i64, reason: &str) -> Result<PlanMilestone> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(crate::validate::invalid(
            "reason",
            "a reason of 1-2000 characters is required",
        )
        .into());
    }
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let plan = store::lock_plan(&mut tx, id, &now)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))?;
    if plan.status != PlanStatus::PendingApproval {
        return Err(PlanningError::Conflict(format!(
            "proposed milestone {id} is {}, not pending_approval",
            plan.status
        )));
    }
    store::set_plan_status(
        &mut tx,
        id,
        PlanStatus::Rejected,
        Some(reason),
        Some(actor),
        None,
        &now,
    )
    .await?;
    log(
        &mut tx,
        actor,
        "reject",
        "plan_milestone",
        id,
        json!({"reason": reason}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state.events.emit(crate::events::Topic::Work, "plan", id);
    store::get_plan(&state.db, id)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))
}

pub async fn plan_detail(state: &AppState, id: i64) -> Result<PlanMilestoneDetail> {
    let milestone = store::get_plan(&state.db, id)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))?;
    let mut conn = state.db.acquire().await?;
    let items = store::items_by_ids(&mut conn, &milestone.item_ids()).await?;
    let project_name = crate::tracking::store::get_project(&mut *conn, milestone.project_id)
        .await?
        .map(|p| p.name)
        .unwrap_or_default();
    Ok(PlanMilestoneDetail {
        milestone,
        project_name,
        items,
    })
}

pub(super) fn clip_chars(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(4);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n…", &s[..end])
}
