//! `architect projects|features|bugs|devops|stats`: the tracking API from the terminal, one file
//! per entity, the shared list options and helpers here.

use super::names::{milestone_id, project_id, project_opt};
use super::{client, output};
use crate::config::ClientConfig;
use crate::tracking::*;
use clap::{Args, Subcommand};

mod bugs;
mod devops;
mod features;
mod projects;
pub use bugs::*;
pub use devops::*;
pub use features::*;
pub use projects::*;

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
