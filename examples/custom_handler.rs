//! A worker with a custom task type: SPEC.md's `register_handler('custom')`, in Rust.
//!
//! ```sh
//! # Self-contained demo: starts a throwaway server, queues one `custom` task, runs this worker
//! # until the task is done, prints its result and exits.
//! cargo run --example custom_handler
//!
//! # Against a real server (runs until Ctrl-C; the built-in types work too):
//! cargo run --example custom_handler -- --dashboard http://127.0.0.1:8080 --token "$WORKER_TOKEN"
//! ```
//!
//! The whole API is three calls: `Worker::new(options)`, `register_handler(type, async fn)`,
//! `run_until(shutdown)`. A handler returns `Ok(json!(...).into())` for success, or
//! `Err(TaskFailure::retry(..))` / `Err(TaskFailure::permanent(..))`.

use architect::tasks::handlers::{TaskContext, TaskFailure};
use architect::tasks::runner::{Worker, WorkerOptions};
use serde_json::{json, Value};

/// The custom handler: what SPEC.md's `handle_custom_task(data)` does.
async fn handle_custom_task(task: TaskContext) -> architect::tasks::handlers::HandlerResult {
    let name = task.payload()["name"]
        .as_str()
        .unwrap_or("world")
        .to_string();
    if name == "fail" {
        return Err(TaskFailure::permanent("asked to fail"));
    }
    Ok(json!({"result": "success", "greeting": format!("hello, {name}")}).into())
}

/// A worker with the built-in types plus `custom`.
fn worker(dashboard: &str, token: &str) -> Worker {
    let mut options = WorkerOptions::new(dashboard, token);
    options.name = "custom-handler-example".into();
    options.types = Some(vec!["custom".into()]);
    options.wait_s = 5.0;
    let mut worker = Worker::new(options);
    worker.register_handler("custom", handle_custom_task);
    worker
}

/// The self-contained demo; returns the finished task's result.
pub async fn demo() -> anyhow::Result<Value> {
    use architect::client::Client;
    use architect::tasks::{NewTask, TaskStatus};
    use clap::Parser;

    // A throwaway server on a free port, in a temporary data directory.
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        config: architect::config::ServeConfig,
    }
    let dir = tempfile::tempdir()?;
    let password = "example-password-1";
    let data_dir = dir.path().display().to_string();
    let args = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        &data_dir,
        "--admin-user",
        "architect",
        "--admin-password",
        password,
    ];
    let config = Serve::try_parse_from(args)?.config;
    let server = architect::serve::start(config, architect::clock::Clock::System).await?;
    let url = format!("http://{}", server.addr);

    // Log in once and make two tokens: one to queue work, one (worker scope) for the worker.
    let login = architect::client::Login::new(&url, "architect", password).await?;
    let mut tokens = Vec::new();
    for scope in ["admin", "worker"] {
        let t = login
            .create_token(&format!("example {scope}"), scope, None)
            .await?;
        tokens.push(t.token);
    }
    login.logout().await;
    let queue = Client::new(&url, Some(&tokens[0]));
    let task = queue
        .create_task(&NewTask {
            task_type: "custom".into(),
            payload: Some(json!({"name": "example"})),
            ..NewTask::default()
        })
        .await?;
    println!("queued task {} (type custom)", task.id);

    // Run the worker until the task has finished (or 30 s have passed).
    let done = async {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            match queue.task(task.id).await {
                Ok(t) if t.task.status.is_final() => return,
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    };
    let summary = worker(&url, &tokens[1]).run_until(done).await?;
    let finished = queue.task(task.id).await?;
    server.shutdown().await?;
    if finished.task.status != TaskStatus::Completed || summary.completed != 1 {
        anyhow::bail!("the task ended {} ({summary:?})", finished.task.status);
    }
    Ok(finished.task.result.unwrap_or(Value::Null))
}

#[allow(dead_code)] // when this file is compiled as a test module, only `demo` is used
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match (flag("--dashboard"), flag("--token")) {
        (Some(url), Some(token)) => {
            let summary = worker(&url, &token)
                .run_until(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            println!("stopped: {summary:?}");
        }
        (None, None) => {
            let result = demo().await?;
            println!("task completed with result: {result}");
        }
        _ => anyhow::bail!("give both --dashboard URL and --token TOKEN, or neither for the demo"),
    }
    Ok(())
}
