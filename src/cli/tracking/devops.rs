//! `architect devops`: devops tasks.

use super::*;

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
