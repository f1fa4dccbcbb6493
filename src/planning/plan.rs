//! The deterministic plan: a project's open items grouped into milestones → phases → tasks.
//!
//! - Open bugs and error groups make one milestone, "Fix open bugs and errors", phased by
//!   weight (critical/high and regressed first), one task each.
//! - Checkboxes in planning Markdown make one milestone per section (the heading under the
//!   file's title: `ROADMAP.md › v2`), phased by the headings below it, one task each.
//! - Code comments make one milestone per component (the first two folders of the path; a
//!   component with fewer than [`MIN_COMPONENT`] items joins "elsewhere"), phased "Fix"
//!   (FIXME, XXX, HACK) before "Tidy up" (TODO), one task per file and phase.
//!
//! A milestone's priority is its heaviest item's weight; milestones come heaviest first. Its
//! `items_key` (a hash of its items' fingerprints) says whether a later plan proposes the same
//! thing again. Nothing here invents work: every task lists the items it comes from.

use super::{Phase, PlanItem, PlanTask, Source};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A component with fewer code notes than this is merged into "elsewhere".
pub const MIN_COMPONENT: usize = 3;
/// Longest title made (tracking names allow 200 characters).
pub const MAX_TITLE: usize = 150;

/// A milestone as the planner proposes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub title: String,
    pub description: String,
    pub priority: i64,
    pub phases: Vec<Phase>,
    pub items_key: String,
    pub grouping: super::Grouping,
}

/// Groups `items` (open, not yet in an approved plan) into milestones.
pub fn build(items: &[PlanItem]) -> Vec<Draft> {
    let mut drafts = Vec::new();
    let (mut fixes, mut boxes, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for it in items {
        match it.kind {
            Source::Bug | Source::Error => fixes.push(it),
            Source::Checkbox => boxes.push(it),
            _ => notes.push(it),
        }
    }
    if !fixes.is_empty() {
        fixes.sort_by_key(|i| (-i.weight, i.id));
        let (urgent, rest): (Vec<&PlanItem>, Vec<&PlanItem>) =
            fixes.iter().copied().partition(|i| i.weight >= 50);
        let phases = [("Critical and high", urgent), ("The rest", rest)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, v)| Phase {
                name: name.to_string(),
                tasks: v.iter().map(|i| single(i)).collect(),
            })
            .collect();
        drafts.push(draft(
            "Fix open bugs and errors".to_string(),
            phases,
            &fixes,
        ));
    }

    // Checkboxes: file › section › (sub-headings as phases).
    let mut sections: BTreeMap<(String, String), BTreeMap<String, Vec<&PlanItem>>> =
        BTreeMap::new();
    for it in boxes {
        let file = it.path.clone().unwrap_or_default();
        let parts: Vec<&str> = it
            .heading
            .as_deref()
            .map(|h| h.split(" › ").collect())
            .unwrap_or_default();
        // A file's single top heading is its title; the section is the heading below it.
        let (section, phase) = match parts.len() {
            0 => (String::new(), String::new()),
            1 => (parts[0].to_string(), String::new()),
            _ => (parts[1].to_string(), parts[2..].join(" › ")),
        };
        sections
            .entry((file, section))
            .or_default()
            .entry(phase)
            .or_default()
            .push(it);
    }
    for ((file, section), phases) in sections {
        let mut all = Vec::new();
        let phases = phases
            .into_iter()
            .map(|(name, mut v)| {
                v.sort_by_key(|i| (i.line, i.id));
                all.extend(v.iter().copied());
                Phase {
                    name: if name.is_empty() {
                        "Tasks".to_string()
                    } else {
                        name
                    },
                    tasks: v.iter().map(|i| single(i)).collect(),
                }
            })
            .collect();
        let title = if section.is_empty() {
            file
        } else {
            format!("{file} › {section}")
        };
        drafts.push(draft(title, phases, &all));
    }

    // Code notes by component.
    let mut components: BTreeMap<String, Vec<&PlanItem>> = BTreeMap::new();
    for it in notes {
        components
            .entry(component(it.path.as_deref().unwrap_or("")))
            .or_default()
            .push(it);
    }
    let mut elsewhere = Vec::new();
    let mut groups = Vec::new();
    for (name, v) in components {
        if v.len() < MIN_COMPONENT {
            elsewhere.extend(v);
        } else {
            groups.push((format!("Code notes in {name}"), v));
        }
    }
    if !elsewhere.is_empty() {
        let title = if groups.is_empty() {
            "Code notes".to_string()
        } else {
            "Code notes elsewhere".to_string()
        };
        groups.push((title, elsewhere));
    }
    for (title, v) in groups {
        let (fix, tidy): (Vec<&PlanItem>, Vec<&PlanItem>) =
            v.iter().partition(|i| i.kind != Source::Todo);
        let phases = [("Fix", fix), ("Tidy up", tidy)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, v)| Phase {
                name: name.to_string(),
                tasks: per_file(&v),
            })
            .collect();
        drafts.push(draft(title, phases, &v));
    }
    drafts.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.title.cmp(&b.title)));
    drafts
}

/// `src/planning/scan.rs` → `src/planning`; `lib/x.py` → `lib`; `main.rs` → `(root)`.
fn component(path: &str) -> String {
    let dirs: Vec<&str> = path.split('/').collect();
    match dirs.len() {
        0 | 1 => "(root)".to_string(),
        2 => dirs[0].to_string(),
        _ => format!("{}/{}", dirs[0], dirs[1]),
    }
}

fn single(i: &PlanItem) -> PlanTask {
    PlanTask {
        title: clip(&i.text),
        priority: i.weight,
        items: vec![i.id],
    }
}

/// One task per file: its notes, heaviest first.
fn per_file(items: &[&PlanItem]) -> Vec<PlanTask> {
    let mut files: BTreeMap<&str, Vec<&PlanItem>> = BTreeMap::new();
    for i in items {
        files
            .entry(i.path.as_deref().unwrap_or(""))
            .or_default()
            .push(i);
    }
    let mut tasks: Vec<PlanTask> = files
        .into_iter()
        .map(|(path, mut v)| {
            v.sort_by_key(|i| (i.line, i.id));
            let title = match v.as_slice() {
                [one] => clip(&format!("{path}: {}", one.text)),
                many => clip(&format!("{path}: {} notes", many.len())),
            };
            PlanTask {
                title,
                priority: v.iter().map(|i| i.weight).max().unwrap_or(0),
                items: v.iter().map(|i| i.id).collect(),
            }
        })
        .collect();
    tasks.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.title.cmp(&b.title)));
    tasks
}

/// A milestone of `phases` over `items`: its description, priority and items key.
pub fn draft(title: String, phases: Vec<Phase>, items: &[&PlanItem]) -> Draft {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for i in items {
        *kinds.entry(i.kind.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let files = items
        .iter()
        .filter_map(|i| i.path.as_deref())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let tasks: usize = phases.iter().map(|p: &Phase| p.tasks.len()).sum();
    let mut description = format!(
        "{} item{} ({}) in {} task{}",
        items.len(),
        if items.len() == 1 { "" } else { "s" },
        counts.join(", "),
        tasks,
        if tasks == 1 { "" } else { "s" },
    );
    if files > 0 {
        description.push_str(&format!(
            " across {files} file{}",
            if files == 1 { "" } else { "s" }
        ));
    }
    description.push('.');
    Draft {
        title: clip(&title),
        description,
        priority: items.iter().map(|i| i.weight).max().unwrap_or(0),
        phases,
        items_key: items_key(items.iter().map(|i| i.fingerprint.as_str())),
        grouping: super::Grouping::Deterministic,
    }
}

/// A hash of a set of fingerprints (order does not matter).
pub fn items_key<'a>(prints: impl Iterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = prints.collect();
    v.sort_unstable();
    let mut h = Sha256::new();
    for p in v {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

pub fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_TITLE {
        return s.to_string();
    }
    let mut t: String = s.chars().take(MAX_TITLE - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::ItemStatus;

    fn item(id: i64, kind: Source, path: Option<&str>, heading: Option<&str>, w: i64) -> PlanItem {
        PlanItem {
            id,
            project_id: 1,
            kind,
            path: path.map(str::to_string),
            line: path.map(|_| id * 10),
            text: format!("item {id}"),
            heading: heading.map(str::to_string),
            fingerprint: format!("fp{id}"),
            source_id: None,
            weight: w,
            status: ItemStatus::Open,
            author: None,
            authored_at: None,
            feature_id: None,
            first_seen_at: String::new(),
            last_seen_at: String::new(),
            done_at: None,
        }
    }

    #[test]
    fn items_group_into_milestones_phases_and_tasks_heaviest_first() {
        let items = vec![
            item(1, Source::Todo, Some("src/api/a.rs"), None, 20),
            item(2, Source::Fixme, Some("src/api/a.rs"), None, 40),
            item(3, Source::Todo, Some("src/api/b.rs"), None, 20),
            item(4, Source::Todo, Some("main.rs"), None, 20),
            item(
                5,
                Source::Checkbox,
                Some("ROADMAP.md"),
                Some("Roadmap › v2"),
                25,
            ),
            item(
                6,
                Source::Checkbox,
                Some("ROADMAP.md"),
                Some("Roadmap › v2 › API"),
                25,
            ),
            item(7, Source::Bug, None, None, 70),
            item(8, Source::Error, None, None, 35),
        ];
        let d = build(&items);
        let titles: Vec<&str> = d.iter().map(|d| d.title.as_str()).collect();
        assert_eq!(
            titles,
            vec![
                "Fix open bugs and errors",
                "Code notes in src/api",
                "ROADMAP.md › v2",
                "Code notes elsewhere"
            ]
        );
        assert_eq!(d[0].phases[0].name, "Critical and high");
        assert_eq!(d[0].phases[0].tasks[0].items, vec![7]);
        assert_eq!(d[0].phases[1].tasks[0].items, vec![8]);
        // Fix before tidy; one task per file.
        assert_eq!(d[1].phases[0].name, "Fix");
        assert_eq!(d[1].phases[0].tasks[0].items, vec![2]);
        assert_eq!(d[1].phases[1].name, "Tidy up");
        assert_eq!(d[1].phases[1].tasks.len(), 2);
        assert_eq!(d[1].priority, 40);
        // The checkbox under the section itself and the one under a sub-heading.
        let phase_names: Vec<&str> = d[2].phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(phase_names, vec!["Tasks", "API"]);
        assert!(d[1]
            .description
            .starts_with("3 items (1 fixme, 2 todo) in 3 tasks"));
        // Every item is in exactly one task.
        let mut all: Vec<i64> = d
            .iter()
            .flat_map(|d| d.phases.iter())
            .flat_map(|p| p.tasks.iter())
            .flat_map(|t| t.items.iter().copied())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=8).collect::<Vec<_>>());
    }

    #[test]
    fn the_items_key_depends_on_the_set_of_items_only() {
        assert_eq!(
            items_key(["a", "b"].into_iter()),
            items_key(["b", "a"].into_iter())
        );
        assert_ne!(
            items_key(["a", "b"].into_iter()),
            items_key(["a", "c"].into_iter())
        );
        let mut items = vec![item(1, Source::Todo, Some("x/y.rs"), None, 20)];
        let k1 = build(&items)[0].items_key.clone();
        items[0].line = Some(99);
        items[0].text = "moved".into();
        assert_eq!(
            build(&items)[0].items_key,
            k1,
            "moving or rewording keeps the key"
        );
    }
}
