//! `architect bugs`: bugs.

use super::*;

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
