//! `architect features`: features and their status workflow.

use super::*;

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
