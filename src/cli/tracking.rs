//! `architect projects|features|bugs|devops|stats`: the tracking API from the terminal.

use super::names::{milestone_id, project_id, project_opt};
use super::{client, output};
use crate::config::ClientConfig;
use crate::tracking::*;
use clap::{Args, Subcommand};

fn parse_tags(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// "" clears an optional field (`--assignee ''`).
fn clearable(v: Option<String>) -> Option<Option<String>> {
    v.map(|s| if s.is_empty() { None } else { Some(s) })
}

#[derive(Args, Debug, Clone)]
pub struct ListOpts {
    /// Most rows to show.
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

#[derive(Subcommand, Debug)]
pub enum ProjectCmd {
    /// List active projects (use --all to include archived ones).
    List {
        #[arg(long)]
        status: Option<ProjectStatus>,
        /// Text to search for in names and descriptions.
        #[arg(long)]
        q: Option<String>,
        /// Include archived projects.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Show one project (by id or name).
    Show {
        /// Id or name (case-insensitive).
        project: String,
    },
    /// Create a project.
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        source_path: Option<String>,
        /// Comma-separated tags.
        #[arg(long)]
        tags: Option<String>,
        #[arg(long)]
        status: Option<ProjectStatus>,
    },
    /// Change fields of a project (only those given).
    Set {
        /// Id or name (case-insensitive).
        project: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Empty string clears it.
        #[arg(long)]
        source_path: Option<String>,
        #[arg(long)]
        tags: Option<String>,
        #[arg(long)]
        status: Option<ProjectStatus>,
    },
    /// Archive a project (hidden from lists; restore with unarchive).
    Archive {
        /// Id or name (case-insensitive).
        project: String,
    },
    /// Restore an archived project.
    Unarchive {
        /// Id or name (case-insensitive).
        project: String,
    },
}

fn project_rows(ps: &[Project]) -> Vec<Vec<String>> {
    ps.iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                p.name.clone(),
                if p.archived {
                    "archived".into()
                } else {
                    p.status.to_string()
                },
                p.tags.join(","),
                p.source_path.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const PROJECT_HEADERS: &[&str] = &["id", "name", "status", "tags", "source path"];

pub async fn projects(cfg: &ClientConfig, cmd: ProjectCmd) -> anyhow::Result<()> {
    let c = client(cfg)?;
    let one = |p: Project| -> anyhow::Result<()> {
        if cfg.json {
            output::json(&p)
        } else {
            output::table(PROJECT_HEADERS, project_rows(&[p]));
            Ok(())
        }
    };
    match cmd {
        ProjectCmd::List {
            status,
            q,
            all,
            list,
        } => {
            let f = ProjectFilter {
                status,
                q,
                include_archived: Some(all),
            };
            let ps = c.projects(&f, list.limit).await?;
            if cfg.json {
                return output::json(&ps);
            }
            output::table(PROJECT_HEADERS, project_rows(&ps));
            Ok(())
        }
        ProjectCmd::Show { project } => one(c.project(project_id(&c, &project).await?).await?),
        ProjectCmd::Add {
            name,
            description,
            source_path,
            tags,
            status,
        } => {
            let p = c
                .create_project(&NewProject {
                    name,
                    description,
                    source_path,
                    status,
                    tags: tags.as_deref().map(parse_tags),
                })
                .await?;
            one(p)
        }
        ProjectCmd::Set {
            project,
            name,
            description,
            source_path,
            tags,
            status,
        } => {
            let patch = ProjectPatch {
                name,
                description,
                source_path: clearable(source_path),
                status,
                tags: tags.as_deref().map(parse_tags),
                archived: None,
            };
            let id = project_id(&c, &project).await?;
            one(c.update_project(id, &patch).await?)
        }
        ProjectCmd::Archive { project } => {
            one(c.archive_project(project_id(&c, &project).await?).await?)
        }
        ProjectCmd::Unarchive { project } => one(c
            .update_project(
                project_id(&c, &project).await?,
                &ProjectPatch {
                    archived: Some(false),
                    ..Default::default()
                },
            )
            .await?),
    }
}

#[derive(Subcommand, Debug)]
pub enum FeatureCmd {
    /// List features, highest priority first.
    List {
        /// Project id or name (case-insensitive).
        #[arg(long)]
        project: Option<String>,
        /// Milestone id or name (within the project).
        #[arg(long)]
        milestone: Option<String>,
        #[arg(long)]
        status: Option<FeatureStatus>,
        #[arg(long)]
        q: Option<String>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Show a feature with its status history and allowed next statuses.
    Show { id: i64 },
    /// Create a feature (it starts as draft).
    Add {
        name: String,
        /// Project id or name (case-insensitive).
        #[arg(long)]
        project: String,
        /// Milestone id or name (within the project).
        #[arg(long)]
        milestone: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// 0–10, higher first.
        #[arg(long)]
        priority: Option<i64>,
        #[arg(long)]
        assignee: Option<String>,
    },
    /// Change fields; --status moves it through the workflow (see `features workflow`).
    Set {
        id: i64,
        #[arg(long)]
        status: Option<FeatureStatus>,
        /// Comment kept with the status change.
        #[arg(long, requires = "status")]
        comment: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        priority: Option<i64>,
        /// Empty string clears it.
        #[arg(long)]
        assignee: Option<String>,
        /// Milestone id or name (within the feature's project); 0 clears it.
        #[arg(long)]
        milestone: Option<String>,
    },
    /// Print the status workflow: statuses and allowed transitions.
    Workflow,
}

fn feature_rows(fs: &[Feature]) -> Vec<Vec<String>> {
    fs.iter()
        .map(|f| {
            vec![
                f.id.to_string(),
                f.project_id.to_string(),
                f.name.clone(),
                f.status.to_string(),
                f.priority.to_string(),
                f.assignee.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const FEATURE_HEADERS: &[&str] = &["id", "project", "name", "status", "prio", "assignee"];

pub async fn features(cfg: &ClientConfig, cmd: FeatureCmd) -> anyhow::Result<()> {
    let c = client(cfg)?;
    let one = |f: Feature| -> anyhow::Result<()> {
        if cfg.json {
            output::json(&f)
        } else {
            output::table(FEATURE_HEADERS, feature_rows(&[f]));
            Ok(())
        }
    };
    match cmd {
        FeatureCmd::List {
            project,
            milestone,
            status,
            q,
            list,
        } => {
            let project = project_opt(&c, project.as_deref()).await?;
            let milestone = match milestone {
                Some(m) => Some(milestone_id(&c, project, &m).await?),
                None => None,
            };
            let fs = c
                .features(
                    &FeatureFilter {
                        project_id: project,
                        milestone_id: milestone,
                        status,
                        q,
                    },
                    list.limit,
                )
                .await?;
            if cfg.json {
                return output::json(&fs);
            }
            output::table(FEATURE_HEADERS, feature_rows(&fs));
            Ok(())
        }
        FeatureCmd::Show { id } => {
            let d = c.feature(id).await?;
            if cfg.json {
                return output::json(&d);
            }
            output::table(
                FEATURE_HEADERS,
                feature_rows(std::slice::from_ref(&d.feature)),
            );
            if !d.feature.description.is_empty() {
                println!("\n{}", d.feature.description);
            }
            println!();
            let rows = d
                .history
                .iter()
                .map(|h| {
                    vec![
                        h.changed_at.chars().take(19).collect(),
                        h.from_status.clone().unwrap_or_else(|| "-".into()),
                        h.to_status.clone(),
                        h.actor.clone(),
                        h.comment.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(&["when", "from", "to", "by", "comment"], rows);
            let next: Vec<String> = d.allowed_next.iter().map(|s| s.to_string()).collect();
            println!("\nnext: {}", next.join(", "));
            Ok(())
        }
        FeatureCmd::Add {
            name,
            project,
            milestone,
            description,
            priority,
            assignee,
        } => {
            let project = project_id(&c, &project).await?;
            let milestone = match milestone {
                Some(m) => Some(milestone_id(&c, Some(project), &m).await?),
                None => None,
            };
            one(c
                .create_feature(&NewFeature {
                    project_id: project,
                    name,
                    milestone_id: milestone,
                    description,
                    priority,
                    assignee,
                })
                .await?)
        }
        FeatureCmd::Set {
            id,
            status,
            comment,
            name,
            description,
            priority,
            assignee,
            milestone,
        } => {
            let milestone = match milestone {
                Some(m) if m.trim() == "0" => Some(None),
                Some(m) => {
                    let project = c.feature(id).await?.feature.project_id;
                    Some(Some(milestone_id(&c, Some(project), &m).await?))
                }
                None => None,
            };
            let patch = FeaturePatch {
                name,
                description,
                milestone_id: milestone,
                priority,
                assignee: clearable(assignee),
                status,
                comment,
            };
            one(c.update_feature(id, &patch).await?)
        }
        FeatureCmd::Workflow => {
            let w = c.workflow().await?;
            if cfg.json {
                return output::json(&w);
            }
            println!("initial: {}", w.initial);
            let rows = w
                .statuses
                .iter()
                .map(|s| {
                    let next = w.transitions.get(s.as_str()).map(|n| {
                        n.iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    vec![s.to_string(), next.unwrap_or_default()]
                })
                .collect();
            output::table(&["status", "may move to"], rows);
            Ok(())
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum BugCmd {
    /// List bugs, most severe first.
    List {
        /// Project id or name (case-insensitive).
        #[arg(long)]
        project: Option<String>,
        /// open, in_progress, review, resolved, closed or wont_fix.
        #[arg(long)]
        status: Option<BugStatus>,
        #[arg(long)]
        severity: Option<BugSeverity>,
        #[arg(long)]
        q: Option<String>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Show one bug.
    Show { id: i64 },
    /// File a bug.
    Add {
        title: String,
        /// Project id or name (case-insensitive).
        #[arg(long)]
        project: String,
        #[arg(long)]
        severity: Option<BugSeverity>,
        #[arg(long)]
        description: Option<String>,
        /// Milestone id or name (within the project).
        #[arg(long)]
        milestone: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
    },
    /// Change fields of a bug; --status moves it: open, in_progress, review (a fix waiting
    /// for a check), resolved, closed, wont_fix; a refused move names the allowed ones.
    Set {
        id: i64,
        #[arg(long)]
        status: Option<BugStatus>,
        /// Comment kept with the status change (in the bug's history).
        #[arg(long, requires = "status")]
        comment: Option<String>,
        #[arg(long)]
        severity: Option<BugSeverity>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Empty string clears it.
        #[arg(long)]
        assignee: Option<String>,
        /// Milestone id or name (within the bug's project); 0 clears it.
        #[arg(long)]
        milestone: Option<String>,
    },
}

fn bug_rows(bs: &[Bug]) -> Vec<Vec<String>> {
    bs.iter()
        .map(|b| {
            vec![
                b.id.to_string(),
                b.project_id.to_string(),
                b.title.clone(),
                b.severity.to_string(),
                b.status.to_string(),
                b.assignee.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const BUG_HEADERS: &[&str] = &["id", "project", "title", "severity", "status", "assignee"];

pub async fn bugs(cfg: &ClientConfig, cmd: BugCmd) -> anyhow::Result<()> {
    let c = client(cfg)?;
    let one = |b: Bug| -> anyhow::Result<()> {
        if cfg.json {
            output::json(&b)
        } else {
            output::table(BUG_HEADERS, bug_rows(&[b]));
            Ok(())
        }
    };
    match cmd {
        BugCmd::List {
            project,
            status,
            severity,
            q,
            list,
        } => {
            let project = project_opt(&c, project.as_deref()).await?;
            let bs = c
                .bugs(
                    &BugFilter {
                        project_id: project,
                        milestone_id: None,
                        status,
                        severity,
                        q,
                    },
                    list.limit,
                )
                .await?;
            if cfg.json {
                return output::json(&bs);
            }
            output::table(BUG_HEADERS, bug_rows(&bs));
            Ok(())
        }
        BugCmd::Show { id } => one(c.bug(id).await?),
        BugCmd::Add {
            title,
            project,
            severity,
            description,
            milestone,
            assignee,
        } => {
            let project = project_id(&c, &project).await?;
            let milestone = match milestone {
                Some(m) => Some(milestone_id(&c, Some(project), &m).await?),
                None => None,
            };
            one(c
                .create_bug(&NewBug {
                    project_id: project,
                    title,
                    milestone_id: milestone,
                    description,
                    severity,
                    assignee,
                })
                .await?)
        }
        BugCmd::Set {
            id,
            status,
            comment,
            severity,
            title,
            description,
            assignee,
            milestone,
        } => {
            let milestone = match milestone {
                Some(m) if m.trim() == "0" => Some(None),
                Some(m) => {
                    let project = c.bug(id).await?.project_id;
                    Some(Some(milestone_id(&c, Some(project), &m).await?))
                }
                None => None,
            };
            let patch = BugPatch {
                title,
                description,
                milestone_id: milestone,
                severity,
                status,
                assignee: clearable(assignee),
                comment,
            };
            one(c.update_bug(id, &patch).await?)
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum DevopsCmd {
    /// List devops tasks.
    List {
        /// Project id or name (case-insensitive).
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        status: Option<DevopsStatus>,
        #[arg(long)]
        category: Option<DevopsCategory>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Create a devops task.
    Add {
        title: String,
        /// Project id or name (case-insensitive).
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        category: Option<DevopsCategory>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        priority: Option<i64>,
        /// Free text, e.g. "weekly" or a cron expression.
        #[arg(long)]
        schedule: Option<String>,
    },
    /// Change fields of a devops task.
    Set {
        id: i64,
        #[arg(long)]
        status: Option<DevopsStatus>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        category: Option<DevopsCategory>,
        #[arg(long)]
        priority: Option<i64>,
        /// Empty string clears it.
        #[arg(long)]
        schedule: Option<String>,
    },
}

fn devops_rows(ts: &[DevopsTask]) -> Vec<Vec<String>> {
    ts.iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.title.clone(),
                t.category.to_string(),
                t.status.to_string(),
                t.priority.to_string(),
                t.schedule.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const DEVOPS_HEADERS: &[&str] = &["id", "title", "category", "status", "prio", "schedule"];

pub async fn devops(cfg: &ClientConfig, cmd: DevopsCmd) -> anyhow::Result<()> {
    let c = client(cfg)?;
    let one = |t: DevopsTask| -> anyhow::Result<()> {
        if cfg.json {
            output::json(&t)
        } else {
            output::table(DEVOPS_HEADERS, devops_rows(&[t]));
            Ok(())
        }
    };
    match cmd {
        DevopsCmd::List {
            project,
            status,
            category,
            list,
        } => {
            let project = project_opt(&c, project.as_deref()).await?;
            let ts = c
                .devops_tasks(
                    &DevopsFilter {
                        project_id: project,
                        status,
                        category,
                    },
                    list.limit,
                )
                .await?;
            if cfg.json {
                return output::json(&ts);
            }
            output::table(DEVOPS_HEADERS, devops_rows(&ts));
            Ok(())
        }
        DevopsCmd::Add {
            title,
            project,
            category,
            description,
            priority,
            schedule,
        } => one(c
            .create_devops_task(&NewDevopsTask {
                title,
                project_id: project_opt(&c, project.as_deref()).await?,
                description,
                category,
                priority,
                schedule,
            })
            .await?),
        DevopsCmd::Set {
            id,
            status,
            title,
            category,
            priority,
            schedule,
        } => {
            let patch = DevopsPatch {
                title,
                category,
                status,
                priority,
                schedule: clearable(schedule),
                ..Default::default()
            };
            one(c.update_devops_task(id, &patch).await?)
        }
    }
}

pub async fn stats(cfg: &ClientConfig) -> anyhow::Result<()> {
    let s = client(cfg)?.stats().await?;
    if cfg.json {
        return output::json(&s);
    }
    let mut rows = Vec::new();
    for (entity, m) in [
        ("projects", &s.projects),
        ("milestones", &s.milestones),
        ("features", &s.features),
        ("bugs", &s.bugs),
        ("devops_tasks", &s.devops_tasks),
    ] {
        let parts: Vec<String> = m
            .iter()
            .filter(|(k, _)| k.as_str() != "total")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        rows.push(vec![
            entity.to_string(),
            m.get("total").copied().unwrap_or(0).to_string(),
            parts.join(" "),
        ]);
    }
    output::table(&["entity", "total", "by status"], rows);
    Ok(())
}
