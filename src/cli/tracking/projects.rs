//! `architect projects`: projects.

use super::*;

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
