//! Scanning the source roots and importing a repository as a project.

use super::*;
use crate::tasks::SetProjectCommands;
use crate::tracking::{NewProject, ProjectFilter};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("the scan stopped: {0}")]
    Panicked(String),
}

impl From<Invalid> for SourcesError {
    fn from(v: Invalid) -> Self {
        SourcesError::Invalid(v)
    }
}

type Result<T> = std::result::Result<T, SourcesError>;

/// Every project's canonical source folder → its id (archived ones too: importing a folder
/// an archived project points at is still a duplicate).
async fn imported_paths(state: &SourcesState) -> Result<std::collections::BTreeMap<PathBuf, i64>> {
    let filter = ProjectFilter {
        include_archived: Some(true),
        ..ProjectFilter::default()
    };
    let projects = crate::tracking::store::list_projects(&state.db, &filter, 100_000, 0).await?;
    let paths: Vec<(String, i64)> = projects
        .into_iter()
        .filter_map(|p| p.source_path.map(|s| (s, p.id)))
        .collect();
    // Canonicalising touches the disk: on the blocking pool with the walk's other reads.
    tokio::task::spawn_blocking(move || {
        paths
            .into_iter()
            .map(|(s, id)| {
                let p = PathBuf::from(&s);
                (p.canonicalize().unwrap_or(p), id)
            })
            .collect()
    })
    .await
    .map_err(|e| SourcesError::Panicked(e.to_string()))
}

/// `POST /api/scan-sources`.
pub async fn scan(state: &SourcesState) -> Result<ScanResult> {
    let started = std::time::Instant::now();
    let roots = state.sources.root_paths();
    let depth = state.sources.scan_depth;
    let imported = imported_paths(state).await?;
    let (roots, repositories, truncated) = tokio::task::spawn_blocking(move || {
        let (roots, found, truncated) = walk(&roots, depth);
        let repositories = found
            .iter()
            .map(|p| {
                let mut r = describe(p);
                r.project_id = imported.get(p).copied();
                r.imported = r.project_id.is_some();
                r
            })
            .collect::<Vec<_>>();
        (roots, repositories, truncated)
    })
    .await
    .map_err(|e| SourcesError::Panicked(e.to_string()))?;
    Ok(ScanResult {
        roots,
        repositories,
        truncated,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// The repository at `path` if it is one, under a configured root (canonical paths, compared
/// component by component, so `~/gitrepos_sibling` is not under `~/gitrepos`).
fn repository_under_roots(state: &SourcesState, path: &str) -> Result<PathBuf> {
    let canonical = Path::new(path.trim())
        .canonicalize()
        .map_err(|_| invalid("path", format!("'{path}' does not exist")))?;
    let under = state
        .sources
        .root_paths()
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|r| canonical.starts_with(&r) && canonical != r);
    if !under {
        return Err(invalid(
            "path",
            "the folder is not under a source root (see ARCHITECT_SOURCE_ROOTS)",
        )
        .into());
    }
    if repo::git_dir(&canonical).is_none() {
        return Err(invalid("path", "the folder is not a git repository").into());
    }
    Ok(canonical)
}

/// `POST /api/import-project`: the project and its commands in one transaction, with an
/// activity row for each (the project's create and its `set_commands`, as the tracking and
/// task domains write them).
pub async fn import(state: &SourcesState, actor: &str, input: ImportRequest) -> Result<Imported> {
    input.validate()?;
    let path = repository_under_roots(state, &input.path)?;
    if let Some(id) = imported_paths(state).await?.get(&path) {
        return Err(SourcesError::Conflict {
            field: "path",
            message: format!("project {id} already has this source path"),
        });
    }
    let described = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || describe(&p))
            .await
            .map_err(|e| SourcesError::Panicked(e.to_string()))?
    };
    let mut project = NewProject {
        name: input.name.clone().unwrap_or_else(|| described.name.clone()),
        description: input.description.clone(),
        source_path: Some(described.path.clone()),
        status: None,
        tags: input.tags.clone(),
    };
    project.validate()?;
    let mut commands = SetProjectCommands {
        test_command: input
            .test_command
            .clone()
            .or(described.test_command.clone()),
        build_command: input
            .build_command
            .clone()
            .or(described.build_command.clone()),
        deploy_command: None,
        rollback_command: None,
    };
    commands.validate()?;

    let now = state.clock.now_str();
    let (p, c) = {
        // The queue's writes share this gate (see `tasks::TaskRuntime::write_gate`).
        let _gate = state.tasks.write_gate().await;
        let mut tx = crate::db::begin_write(&state.db).await?;
        let p = match crate::tracking::store::insert_project(&mut tx, &project, &now).await {
            Ok(p) => p,
            Err(e) if crate::db::is_unique_violation(&e) => {
                return Err(SourcesError::Conflict {
                    field: "name",
                    message: format!("an active project named '{}' already exists", project.name),
                })
            }
            Err(e) => return Err(e.into()),
        };
        crate::activity::store::record(
            &mut tx,
            actor,
            "create",
            "project",
            Some(p.id),
            &json!({"name": p.name, "imported_from": described.path, "remote": described.remote}),
            &now,
        )
        .await?;
        let c = crate::tasks::store::set_commands(&mut tx, p.id, &commands, &now).await?;
        crate::activity::store::record(
            &mut tx,
            actor,
            "set_commands",
            "project",
            Some(p.id),
            &json!({"test": c.test_command, "build": c.build_command, "deploy": c.deploy_command}),
            &now,
        )
        .await?;
        tx.commit().await?;
        (p, c)
    };
    state
        .events
        .emit(crate::events::Topic::Work, "project", p.id);
    let mut repository = described;
    repository.imported = true;
    repository.project_id = Some(p.id);
    let mut commands = c;
    commands.source_path = p.source_path.clone();
    Ok(Imported {
        project: p,
        commands,
        repository,
    })
}
