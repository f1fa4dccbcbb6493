//! `architect milestones`: SPEC.md's milestone worker. Scans active projects (TODO/FIXME
//! comments, unchecked boxes in TODO/PLAN/ROADMAP files, open bugs and error groups) through
//! the server and refreshes their milestone plans, which wait for approval on the Autopilot
//! page; the plan files go to the server's `<data-dir>/milestones/`.
//!
//! - no flag: scan every active project now and then every `--every` minutes (foreground);
//! - `--scan`: scan once and exit; `--project NAME`: only that project;
//! - `--daemon`: the loop in the background (pid and log files); `--stop` stops it;
//! - `--status`: whether the background loop runs, and each project's last scan.
//!
//! The same loop runs inside `serve` when `ARCHITECT_MILESTONE_SCAN_MINUTES` is set.

use super::daemon::{shutdown_signal, DaemonArgs, DaemonRole};
use super::output;
use crate::client::Client;
use crate::planning::actions::ScanReport;
use crate::planning::api::PlanningStatus;
use clap::Args;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct MilestonesRole;

impl DaemonRole for MilestonesRole {
    const WHAT: &'static str = "milestone worker";
    const DASHBOARD_HELP: &'static str = "Base URL of the architect server";
    const TOKEN_HELP: &'static str =
        "API token of a member or admin with the `admin` scope (everything its owner may do; create one under Users & tokens or with `architect token create`). Prefer the env var";
    const NO_TOKEN: &'static str = "no API token: set ARCHITECT_TOKEN or pass --token (a member's or admin's token with the 'admin' scope, from Users & tokens)";
    const STATUS_HELP: &'static str =
        "Say whether the background milestone worker runs and show each project's last scan; exit code 3 when the worker does not run";
    const STOP_HELP: &'static str = "Stop the background milestone worker (--pid-file)";
    const PID_FILE_HELP: &'static str = "Pid file of the background milestone worker";
    const PID_FILE_ENV: &'static str = "ARCHITECT_MILESTONES_PID_FILE";
    const PID_FILE: &'static str = "./data/milestones.pid";
    const LOG_FILE_HELP: &'static str = "Log file of the background milestone worker";
    const LOG_FILE_ENV: &'static str = "ARCHITECT_MILESTONES_LOG_FILE";
    const LOG_FILE: &'static str = "./data/milestones.log";
}

#[derive(Args, Debug, Clone)]
pub struct MilestonesArgs {
    #[command(flatten)]
    pub common: DaemonArgs<MilestonesRole>,

    /// Scan now and exit (default: scan now, then every --every minutes).
    #[arg(long, conflicts_with_all = ["daemon", "status", "stop"])]
    pub scan: bool,

    /// Only this project (its name).
    #[arg(long)]
    pub project: Option<String>,

    /// Minutes between scans in the loop.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub every: u64,

    /// Print the scan reports as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: MilestonesArgs) -> anyhow::Result<u8> {
    let common = &args.common;
    if common.status {
        let code = common.daemon().status()?;
        // The projects' scans, when the server can be asked.
        if let Ok(token) = common.token() {
            let client = Client::new(&common.servers(), Some(&token));
            match client
                .get::<PlanningStatus>("/api/planning/status", &[])
                .await
            {
                Ok(s) => print_status(&s),
                Err(e) => eprintln!("cannot read the planning status: {e}"),
            }
        }
        return Ok(code);
    }
    if let Some(code) = common.status_or_stop(Duration::from_secs(10)).await {
        return code;
    }
    let token = common.token()?;
    let client =
        Client::new(&common.servers(), Some(&token)).with_timeout(Duration::from_secs(600));
    // Bad input fails now, in the foreground, not later in a log file.
    let first = projects(&client, args.project.as_deref()).await?;
    if common.daemon {
        return common.start_background();
    }
    if args.scan {
        let failed = scan_all(&client, &first, args.json).await;
        return Ok(u8::from(failed > 0));
    }
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let projects = match projects(&client, args.project.as_deref()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "listing projects failed; retrying next round");
                Vec::new()
            }
        };
        scan_all(&client, &projects, args.json).await;
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_secs(args.every * 60)) => {}
        }
    }
    common.finished();
    Ok(0)
}

/// The projects to scan: the one named, or every active project with a source path.
async fn projects(client: &Client, only: Option<&str>) -> anyhow::Result<Vec<(i64, String)>> {
    let status: PlanningStatus = client.get("/api/planning/status", &[]).await?;
    let all: Vec<(i64, String, bool)> = status
        .projects
        .into_iter()
        .map(|p| (p.project_id, p.name, p.source_path.is_some()))
        .collect();
    match only {
        Some(name) => {
            let found = all
                .iter()
                .find(|(_, n, _)| n.eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no active project named '{name}' (active: {})",
                        all.iter()
                            .map(|(_, n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            if !found.2 {
                anyhow::bail!(
                    "project '{}' has no source_path to scan: `architect projects set {} --source-path DIR`",
                    found.1,
                    found.0
                );
            }
            Ok(vec![(found.0, found.1.clone())])
        }
        None => Ok(all
            .into_iter()
            .filter(|(_, _, has)| *has)
            .map(|(id, n, _)| (id, n))
            .collect()),
    }
}

/// Scans each project in turn with a progress line; returns how many failed.
async fn scan_all(client: &Client, projects: &[(i64, String)], json: bool) -> usize {
    let n = projects.len();
    if n == 0 {
        eprintln!("no active project has a source path to scan");
        return 0;
    }
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut failed = 0;
    let mut reports = Vec::new();
    for (i, (id, name)) in projects.iter().enumerate() {
        output::progress(tty, i, n, &format!("scanning {name}…"), started);
        let r: Result<ScanReport, _> = client
            .post("/api/planning/scan", &serde_json::json!({"project_id": id}))
            .await;
        match r {
            Ok(r) => {
                let s = &r.scan;
                let line = format!(
                    "{name}: {} files ({} read), {} open items ({} new, {} edited, {} done), {} skipped; {} milestone{} waiting",
                    s.files,
                    s.files_read,
                    s.items,
                    s.added,
                    s.edited,
                    s.done,
                    s.skipped_count,
                    r.pending.len(),
                    if r.pending.len() == 1 { "" } else { "s" }
                );
                output::progress(tty, i + 1, n, &line, started);
                reports.push(r);
            }
            Err(e) => {
                failed += 1;
                output::progress(tty, i + 1, n, &format!("{name}: FAILED: {e}"), started);
            }
        }
    }
    if tty {
        eprintln!();
    }
    if json {
        let _ = output::json(&reports);
    }
    failed
}

fn print_status(s: &PlanningStatus) {
    println!(
        "{} milestone{} waiting for approval, {} suggestion{} pending; scans inside serve: {}",
        s.pending_milestones,
        if s.pending_milestones == 1 { "" } else { "s" },
        s.pending_suggestions,
        if s.pending_suggestions == 1 { "" } else { "s" },
        if s.scan_every_minutes == 0 {
            "off".to_string()
        } else {
            format!("every {} min", s.scan_every_minutes)
        }
    );
    let rows = s
        .projects
        .iter()
        .map(|p| {
            let (status, when, files, items) = match &p.last_scan {
                Some(sc) => (
                    sc.status.to_string(),
                    sc.finished_at
                        .clone()
                        .unwrap_or_else(|| sc.started_at.clone()),
                    sc.files.to_string(),
                    sc.items.to_string(),
                ),
                None => ("never".into(), String::new(), String::new(), String::new()),
            };
            vec![
                p.name.clone(),
                p.source_path.clone().unwrap_or_else(|| "-".into()),
                status,
                when,
                files,
                items,
                p.pending_milestones.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "PROJECT",
            "SOURCE",
            "LAST SCAN",
            "AT",
            "FILES",
            "ITEMS",
            "WAITING",
        ],
        rows,
    );
}
