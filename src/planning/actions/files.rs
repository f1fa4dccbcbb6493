//! The plan files: `<data-dir>/milestones/<project>_milestones_<timestamp>.json` and
//! `<project>_summary.md`, written through a temporary file and a rename.

use super::*;

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
pub(super) async fn write_plan_files(
    state: &AppState,
    project: &Project,
    scan: &ScanRun,
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
        "grouping": scan.grouping,
        "grouping_note": scan.grouping_note,
        "milestones": pending.iter().map(|m| json!({
            "id": m.id,
            "title": m.title,
            "description": m.description,
            "priority": m.priority,
            "status": m.status,
            "grouping": m.grouping,
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
    let md = summary_markdown(project, scan, pending, &by_id, &crate::clock::format(now));
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
    scan: &ScanRun,
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
    s.push_str(&format!(
        "\nGrouping: {}{}.\n",
        scan.grouping,
        scan.grouping_note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    ));
    for m in pending {
        s.push_str(&format!(
            "\n## {} (priority {}, grouped by {})\n\n{}\n",
            m.title, m.priority, m.grouping, m.description
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
