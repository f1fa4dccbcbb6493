//! `architect tasks list|add|show|retry|cancel`: the task queue from the terminal, through the
//! typed client and the queue's own request and response types.

use super::names::{project_id, project_opt};
use super::{client, output};
use crate::config::ClientConfig;
use crate::tasks::{NewTask, Task, TaskDetail, TaskFilter, TaskStatus};
use clap::Subcommand;
use serde_json::{Map, Value};

#[derive(Subcommand, Debug)]
// `Add` carries every payload flag; the enum is built once per process, so its size does not
// matter.
#[allow(clippy::large_enum_variant)]
pub enum TaskCmd {
    /// List tasks, newest first; a pending task shows why nothing claims it.
    List {
        /// pending, running, completed, failed, dead or cancelled.
        #[arg(long)]
        status: Option<TaskStatus>,
        /// Task type, e.g. shell.
        #[arg(long = "type")]
        task_type: Option<String>,
        /// Project id or name (case-insensitive).
        #[arg(long)]
        project: Option<String>,
        /// Most rows to show (at most 1000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue a task and print its id (stdout); the state, and why it waits if no worker can
    /// take it, go to stderr.
    ///
    /// Built-in types: shell (--command, --cwd, --env), python (--code or --script, --arg,
    /// --cwd, --env), git (--payload '{"op": "pull", "repo": "/src/app"}'), test, build and
    /// deploy (--project; the project's command), tmux (--payload). Any other type is a custom
    /// type whose payload is --payload. Flags are added to --payload's object.
    ///
    /// Example: architect tasks add shell --command 'make test' --cwd /src/app --priority 5
    Add {
        /// shell, python, git, test, build, deploy, tmux, or a custom type.
        #[arg(value_name = "TYPE")]
        task_type: String,
        /// shell: the command line (run with `sh -c`).
        #[arg(long)]
        command: Option<String>,
        /// shell, python: working directory on the worker.
        #[arg(long)]
        cwd: Option<String>,
        /// python: inline code.
        #[arg(long, conflicts_with = "script")]
        code: Option<String>,
        /// python: a script file on the worker.
        #[arg(long)]
        script: Option<String>,
        /// python: an argument for the script (repeatable).
        #[arg(long = "arg", value_name = "ARG")]
        args: Vec<String>,
        /// An environment variable for the task, NAME=VALUE (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// The payload as a JSON object; the flags above are added to it.
        #[arg(long, value_name = "JSON")]
        payload: Option<String>,
        /// 0–10, higher first.
        #[arg(long)]
        priority: Option<i64>,
        /// Retries after a failure before the task is dead (default 3).
        #[arg(long)]
        max_retries: Option<i64>,
        /// Seconds before the task is killed (default 3600).
        #[arg(long)]
        timeout: Option<i64>,
        /// Not claimable before this RFC 3339 time.
        #[arg(long)]
        run_after: Option<String>,
        /// A tag the worker must offer (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Only a worker on this node may run it.
        #[arg(long)]
        node: Option<String>,
        /// Project id or name (case-insensitive); test, build and deploy need one.
        #[arg(long)]
        project: Option<String>,
    },
    /// Show a task: its state (and why it waits), attempts, result and output.
    Show { id: i64 },
    /// Re-queue a failed, dead or cancelled task (its tries start again).
    Retry { id: i64 },
    /// Cancel a pending or running task (a running one's process tree is killed).
    Cancel { id: i64 },
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not NAME=VALUE")),
    }
}

/// The payload object: --payload's JSON with the flags added.
#[allow(clippy::too_many_arguments)]
fn payload(
    base: Option<&str>,
    command: Option<String>,
    cwd: Option<String>,
    code: Option<String>,
    script: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
) -> anyhow::Result<Value> {
    let mut obj: Map<String, Value> = match base {
        None => Map::new(),
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => anyhow::bail!("--payload must be a JSON object, e.g. '{{\"op\": \"pull\"}}'"),
            Err(e) => anyhow::bail!("--payload is not JSON: {e}"),
        },
    };
    for (k, v) in [
        ("command", command),
        ("cwd", cwd),
        ("code", code),
        ("script", script),
    ] {
        if let Some(v) = v {
            obj.insert(k.into(), Value::String(v));
        }
    }
    if !args.is_empty() {
        obj.insert("args".into(), serde_json::json!(args));
    }
    if !env.is_empty() {
        let vars = obj
            .entry("env")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(vars) = vars.as_object_mut() else {
            anyhow::bail!("--payload's env must be an object when --env is given");
        };
        for (k, v) in env {
            vars.insert(k, Value::String(v));
        }
    }
    Ok(Value::Object(obj))
}

/// A time as the table shows it: date and time to the second, UTC.
fn short(t: &str) -> String {
    t.chars().take(19).collect::<String>().replace('T', " ")
}

fn task_rows(ts: &[Task]) -> Vec<Vec<String>> {
    ts.iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.task_type.clone(),
                t.status.to_string(),
                t.priority.to_string(),
                format!("{}/{}", t.attempts, t.max_retries + 1),
                t.worker_id.map(|w| w.to_string()).unwrap_or_default(),
                short(&t.created_at),
                t.waiting_reason
                    .clone()
                    .or_else(|| t.error.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect()
}

const TASK_HEADERS: &[&str] = &[
    "id", "type", "status", "prio", "tries", "worker", "created", "note",
];

pub async fn run(cfg: &ClientConfig, cmd: TaskCmd) -> anyhow::Result<()> {
    let c = client(cfg)?;
    match cmd {
        TaskCmd::List {
            status,
            task_type,
            project,
            limit,
        } => {
            let f = TaskFilter {
                status,
                task_type,
                project_id: project_opt(&c, project.as_deref()).await?,
                ..Default::default()
            };
            let ts = c.tasks(&f, limit).await?;
            if cfg.json {
                return output::json(&ts);
            }
            output::table(TASK_HEADERS, task_rows(&ts));
            Ok(())
        }
        TaskCmd::Add {
            task_type,
            command,
            cwd,
            code,
            script,
            args,
            env,
            payload: base,
            priority,
            max_retries,
            timeout,
            run_after,
            tags,
            node,
            project,
        } => {
            let payload = payload(base.as_deref(), command, cwd, code, script, args, env)?;
            let project_id = match project {
                Some(p) => Some(project_id(&c, &p).await?),
                None => None,
            };
            let t = c
                .create_task(&NewTask {
                    task_type,
                    payload: Some(payload),
                    priority,
                    max_retries,
                    timeout_s: timeout,
                    run_after,
                    tags: (!tags.is_empty()).then_some(tags),
                    node,
                    project_id,
                })
                .await?;
            // The answer to a create carries no waiting reason; the detail does.
            let d = c.task(t.id).await?;
            if cfg.json {
                return output::json(&d);
            }
            println!("{}", d.task.id);
            match &d.task.waiting_reason {
                Some(why) => eprintln!(
                    "queued {} task {} ({}); waiting: {why}",
                    d.task.task_type, d.task.id, d.task.status
                ),
                None => eprintln!(
                    "queued {} task {} ({})",
                    d.task.task_type, d.task.id, d.task.status
                ),
            }
            Ok(())
        }
        TaskCmd::Show { id } => {
            let d = c.task(id).await?;
            if cfg.json {
                return output::json(&d);
            }
            show(&d);
            Ok(())
        }
        TaskCmd::Retry { id } => changed(cfg, c.retry_task(id).await?),
        TaskCmd::Cancel { id } => changed(cfg, c.cancel_task(id).await?),
    }
}

fn changed(cfg: &ClientConfig, t: Task) -> anyhow::Result<()> {
    if cfg.json {
        return output::json(&t);
    }
    println!("task {} is now {}", t.id, t.status);
    Ok(())
}

fn show(d: &TaskDetail) {
    let t = &d.task;
    let opt = |v: &Option<String>| v.as_deref().map(short).unwrap_or_else(|| "-".into());
    let mut lines = vec![
        ("task", format!("{} ({})", t.id, t.task_type)),
        ("status", t.status.to_string()),
    ];
    if let Some(why) = &t.waiting_reason {
        lines.push(("waiting", why.clone()));
    }
    lines.extend([
        ("priority", t.priority.to_string()),
        ("tries", format!("{} of {}", t.attempts, t.max_retries + 1)),
        ("timeout", format!("{} s", t.timeout_s)),
        ("runs after", short(&t.run_after)),
        (
            "worker",
            t.worker_id
                .map(|w| w.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("node", t.node.clone().unwrap_or_else(|| "any".into())),
        (
            "project",
            t.project_id
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "tags",
            if t.tags.is_empty() {
                "-".into()
            } else {
                t.tags.join(", ")
            },
        ),
        (
            "created",
            format!("{} by {}", short(&t.created_at), t.created_by),
        ),
        ("finished", opt(&t.finished_at)),
        (
            "exit code",
            t.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "duration",
            t.duration_ms
                .map(|d| format!("{d} ms"))
                .unwrap_or_else(|| "-".into()),
        ),
        ("payload", t.payload.to_string()),
    ]);
    for (k, v) in lines {
        println!("{k:>10}  {v}");
    }
    if let Some(e) = &t.error {
        println!("\n--- error ---\n{e}");
    }
    if let Some(r) = &t.result {
        println!(
            "\n--- result ---\n{}",
            serde_json::to_string_pretty(r).unwrap_or_default()
        );
    }
    if let Some(o) = &t.output {
        println!("\n--- output ---\n{}", o.trim_end());
    }
    println!();
    let rows = d
        .attempts_history
        .iter()
        .enumerate()
        .map(|(i, a)| {
            vec![
                (i + 1).to_string(),
                a.outcome.to_string(),
                a.worker_id.map(|w| w.to_string()).unwrap_or_default(),
                short(&a.started_at),
                opt(&a.finished_at),
                a.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                a.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "#", "outcome", "worker", "started", "finished", "exit", "error",
        ],
        rows,
    );
}
