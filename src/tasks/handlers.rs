//! What a worker does with a claimed task: the handler registry (public, so programs can add
//! their own types — SPEC.md's `register_handler('custom')`) and the built-in handlers.
//!
//! A handler gets a [`TaskContext`] and returns `Ok(TaskSuccess)` or `Err(TaskFailure)`; the
//! runner reports either over HTTP. Handlers should stop when `ctx.cancelled()` fires (the
//! task was cancelled, its lease was lost, or the worker is stopping); the process-running
//! built-ins do, killing the whole process tree.

use super::payload::{self, BuiltinType, GitOp, GitPayload, ProjectCommandPayload};
use super::process::{self, CancelSignal, Ended, ProcessSpec};
use super::{ClaimedTask, Task};
use crate::client::Client;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A finished task: an optional JSON result, and for processes their output and exit code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSuccess {
    pub result: Option<serde_json::Value>,
    pub output: Option<String>,
    pub exit_code: Option<i64>,
}

impl From<serde_json::Value> for TaskSuccess {
    fn from(v: serde_json::Value) -> Self {
        TaskSuccess {
            result: Some(v),
            ..TaskSuccess::default()
        }
    }
}

/// A failed task. `retryable: false` sends it straight to `failed` (no retries).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFailure {
    pub error: String,
    pub retryable: bool,
    pub output: Option<String>,
    pub exit_code: Option<i64>,
}

impl TaskFailure {
    /// A failure worth retrying (with backoff).
    pub fn retry(error: impl Into<String>) -> Self {
        TaskFailure {
            error: error.into(),
            retryable: true,
            output: None,
            exit_code: None,
        }
    }

    /// A failure retrying cannot fix (bad input, refused, unsupported).
    pub fn permanent(error: impl Into<String>) -> Self {
        TaskFailure {
            retryable: false,
            ..TaskFailure::retry(error)
        }
    }
}

pub type HandlerResult = Result<TaskSuccess, TaskFailure>;
type BoxFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;
type Handler = Arc<dyn Fn(TaskContext) -> BoxFuture + Send + Sync>;

/// Worker settings handlers may need.
#[derive(Debug, Clone)]
pub struct HandlerSettings {
    /// Run `shell` and `python` tasks (arbitrary code from the payload).
    pub allow_shell: bool,
    /// Interpreter for `python` tasks.
    pub python: String,
    /// Output bytes kept per task (the tail).
    pub max_output: usize,
}

impl Default for HandlerSettings {
    fn default() -> Self {
        HandlerSettings {
            allow_shell: false,
            python: "python3".into(),
            max_output: 64 * 1024,
        }
    }
}

/// Everything a handler gets for one task.
#[derive(Clone)]
pub struct TaskContext {
    pub task: Task,
    /// The API client (the worker's token), e.g. to look up a project.
    pub client: Client,
    pub settings: Arc<HandlerSettings>,
    cancel: CancelSignal,
}

impl TaskContext {
    pub fn new(
        claimed: &ClaimedTask,
        client: Client,
        settings: Arc<HandlerSettings>,
        cancel: CancelSignal,
    ) -> Self {
        TaskContext {
            task: claimed.task.clone(),
            client,
            settings,
            cancel,
        }
    }

    pub fn payload(&self) -> &serde_json::Value {
        &self.task.payload
    }

    /// True once the task must stop.
    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Completes when the task must stop (cancelled, lease lost, worker stopping).
    pub async fn cancelled(&self) {
        let mut rx = self.cancel.clone();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// The signal to hand to [`process::run`].
    pub fn cancel_signal(&self) -> CancelSignal {
        self.cancel.clone()
    }

    /// The task's timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.task.timeout_s).unwrap_or(1).max(1))
    }
}

/// Task type → handler.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
}

impl Registry {
    /// No handlers at all.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// The built-in types of [`BuiltinType`].
    pub fn with_builtins() -> Registry {
        let mut r = Registry::empty();
        for t in BuiltinType::ALL {
            let t = *t;
            r.register(t.as_str(), move |ctx| run_builtin(t, ctx));
        }
        r
    }

    /// Adds (or replaces) the handler for `task_type`.
    pub fn register<F, Fut>(&mut self, task_type: &str, handler: F) -> &mut Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let h: Handler = Arc::new(move |ctx| Box::pin(handler(ctx)));
        self.handlers.insert(task_type.to_string(), h);
        self
    }

    pub fn types(&self) -> Vec<String> {
        let mut v: Vec<String> = self.handlers.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn has(&self, task_type: &str) -> bool {
        self.handlers.contains_key(task_type)
    }

    /// Runs the handler for the task's type.
    pub async fn handle(&self, ctx: TaskContext) -> HandlerResult {
        match self.handlers.get(&ctx.task.task_type) {
            Some(h) => h(ctx).await,
            None => Err(TaskFailure::permanent(format!(
                "this worker has no handler for task type '{}'",
                ctx.task.task_type
            ))),
        }
    }
}

async fn run_builtin(t: BuiltinType, ctx: TaskContext) -> HandlerResult {
    if t.runs_arbitrary_code() && !ctx.settings.allow_shell {
        return Err(TaskFailure::permanent(format!(
            "{t} tasks are refused: this worker was started without --allow-shell"
        )));
    }
    match t {
        BuiltinType::Shell => shell(ctx).await,
        BuiltinType::Python => python(ctx).await,
        BuiltinType::Git => git(ctx).await,
        BuiltinType::Test | BuiltinType::Build | BuiltinType::Deploy => {
            project_command(t, ctx).await
        }
        BuiltinType::Tmux => match crate::agents::tmux_task::run(ctx.payload()).await {
            Ok(v) => Ok(v.into()),
            Err(e) if e.retryable => Err(TaskFailure::retry(e.message)),
            Err(e) => Err(TaskFailure::permanent(e.message)),
        },
    }
}

fn bad_payload(e: super::Invalid) -> TaskFailure {
    TaskFailure::permanent(format!("bad payload: {}", e.message))
}

/// Runs one process for the task and turns its end into a result.
async fn run_process(ctx: &TaskContext, spec: ProcessSpec, what: &str) -> HandlerResult {
    let o = process::run(&spec, ctx.cancel_signal())
        .await
        .map_err(|e| {
            TaskFailure::permanent(format!("cannot start {what} ({}): {e}", spec.program))
        })?;
    let fail = |error: String, retryable: bool| TaskFailure {
        error,
        retryable,
        output: Some(o.output.clone()),
        exit_code: o.exit_code,
    };
    match (o.ended, o.exit_code) {
        (Ended::Exited, Some(0)) => Ok(TaskSuccess {
            result: Some(serde_json::json!({"exit_code": 0, "duration_ms": o.duration_ms})),
            output: Some(o.output),
            exit_code: Some(0),
        }),
        (Ended::Exited, Some(code)) => Err(fail(format!("{what} exited with code {code}"), true)),
        (Ended::Exited, None) => Err(fail(format!("{what} was killed by a signal"), true)),
        (Ended::TimedOut, _) => Err(fail(
            format!(
                "{what} timed out after {}s; its process tree was killed",
                spec.timeout.as_secs()
            ),
            true,
        )),
        (Ended::Cancelled, _) => Err(fail(
            format!("{what} was stopped (task cancelled or worker stopping); its process tree was killed"),
            true,
        )),
    }
}

fn spec(
    ctx: &TaskContext,
    program: &str,
    args: Vec<String>,
    cwd: Option<String>,
    env: BTreeMap<String, String>,
) -> ProcessSpec {
    ProcessSpec {
        program: program.to_string(),
        args,
        cwd: cwd.map(PathBuf::from),
        env,
        timeout: ctx.timeout(),
        max_output: ctx.settings.max_output,
    }
}

async fn shell(ctx: TaskContext) -> HandlerResult {
    let p: payload::ShellPayload = payload::parse(ctx.payload()).map_err(bad_payload)?;
    let mut s = spec(&ctx, "sh", vec!["-c".into(), p.command], p.cwd, p.env);
    if let Some(t) = p.timeout_s.and_then(|t| u64::try_from(t).ok()) {
        s.timeout = s.timeout.min(Duration::from_secs(t.max(1)));
    }
    run_process(&ctx, s, "the command").await
}

async fn python(ctx: TaskContext) -> HandlerResult {
    let p: payload::PythonPayload = payload::parse(ctx.payload()).map_err(bad_payload)?;
    let mut args = match (p.script, p.code) {
        (Some(script), None) => vec![script],
        (None, Some(code)) => vec!["-c".into(), code],
        _ => {
            return Err(TaskFailure::permanent(
                "bad payload: give exactly one of script and code",
            ))
        }
    };
    args.extend(p.args);
    let python = ctx.settings.python.clone();
    run_process(&ctx, spec(&ctx, &python, args, p.cwd, p.env), "python").await
}

/// The git command lines for one operation (run in order; the first failure stops).
pub fn git_commands(p: &GitPayload) -> Vec<Vec<String>> {
    let s = |v: &str| v.to_string();
    let repo = p.repo.clone().unwrap_or_else(|| ".".into());
    let remote_branch = |mut v: Vec<String>| {
        if let Some(r) = &p.remote {
            v.push(r.clone());
            if let Some(b) = &p.branch {
                v.push(b.clone());
            }
        }
        v
    };
    match p.op {
        GitOp::Clone => {
            let mut v = vec![s("clone")];
            if let Some(b) = &p.branch {
                v.extend([s("--branch"), b.clone()]);
            }
            v.extend([
                s("--"),
                p.url.clone().unwrap_or_default(),
                p.dest.clone().unwrap_or_default(),
            ]);
            vec![v]
        }
        GitOp::Pull => vec![remote_branch(vec![s("-C"), repo, s("pull")])],
        GitOp::Push => vec![remote_branch(vec![s("-C"), repo, s("push")])],
        GitOp::Commit => {
            let mut cmds = Vec::new();
            if p.add_all.unwrap_or(true) {
                cmds.push(vec![s("-C"), repo.clone(), s("add"), s("-A")]);
            }
            cmds.push(vec![
                s("-C"),
                repo,
                s("commit"),
                s("-m"),
                p.message.clone().unwrap_or_default(),
            ]);
            cmds
        }
        GitOp::Checkout => vec![vec![
            s("-C"),
            repo,
            s("checkout"),
            p.git_ref.clone().unwrap_or_default(),
            s("--"),
        ]],
    }
}

async fn git(ctx: TaskContext) -> HandlerResult {
    let p: GitPayload = payload::parse(ctx.payload()).map_err(bad_payload)?;
    // Never wait for a password prompt: there is no one to answer it.
    let mut env = p.env.clone();
    env.entry("GIT_TERMINAL_PROMPT".into())
        .or_insert_with(|| "0".into());
    let cwd = if p.op == GitOp::Clone {
        p.repo.clone()
    } else {
        None
    };
    let mut output = String::new();
    let mut last = TaskSuccess::default();
    for args in git_commands(&p) {
        let what = format!("git {}", p.op);
        let s = spec(&ctx, "git", args, cwd.clone(), env.clone());
        let r = run_process(&ctx, s, &what).await;
        match r {
            Ok(s) => {
                output.push_str(s.output.as_deref().unwrap_or(""));
                last = s;
            }
            Err(mut f) => {
                output.push_str(f.output.as_deref().unwrap_or(""));
                f.output = Some(super::keep_tail(&output, ctx.settings.max_output));
                return Err(f);
            }
        }
    }
    last.output = Some(super::keep_tail(&output, ctx.settings.max_output));
    last.result = Some(serde_json::json!({"op": p.op, "exit_code": 0}));
    Ok(last)
}

async fn project_command(t: BuiltinType, ctx: TaskContext) -> HandlerResult {
    let p: ProjectCommandPayload = payload::parse(ctx.payload()).map_err(bad_payload)?;
    let pid = ctx
        .task
        .project_id
        .ok_or_else(|| TaskFailure::permanent(format!("a {t} task needs a project_id")))?;
    let c = ctx
        .client
        .project_commands(pid)
        .await
        .map_err(|e| match e.status() {
            Some(404) => TaskFailure::permanent(format!("project {pid} does not exist")),
            _ => TaskFailure::retry(format!("cannot read project {pid}'s commands: {e}")),
        })?;
    let command = match t {
        BuiltinType::Test => c.test_command,
        BuiltinType::Build => c.build_command,
        _ => c.deploy_command,
    }
    .ok_or_else(|| {
        TaskFailure::permanent(format!(
            "project {pid} has no {t} command: set it on the Tasks panel (Project commands) or with PUT /api/projects/{pid}/commands"
        ))
    })?;
    let dir = c.source_path.ok_or_else(|| {
        TaskFailure::permanent(format!(
            "project {pid} has no source_path to run its {t} command in"
        ))
    })?;
    let s = spec(&ctx, "sh", vec!["-c".into(), command], Some(dir), p.env);
    run_process(&ctx, s, &format!("the {t} command")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_operations_become_argument_lists() {
        let p: GitPayload = serde_json::from_value(serde_json::json!(
            {"op": "commit", "repo": "/r", "message": "m"}
        ))
        .unwrap();
        assert_eq!(
            git_commands(&p),
            vec![
                vec!["-C", "/r", "add", "-A"],
                vec!["-C", "/r", "commit", "-m", "m"]
            ]
        );
        let p: GitPayload = serde_json::from_value(serde_json::json!(
            {"op": "clone", "url": "/src", "dest": "/d", "branch": "main"}
        ))
        .unwrap();
        assert_eq!(
            git_commands(&p),
            vec![vec!["clone", "--branch", "main", "--", "/src", "/d"]]
        );
    }

    #[test]
    fn builtins_are_registered_and_custom_ones_can_be_added() {
        let mut r = Registry::with_builtins();
        assert!(r.has("shell") && r.has("tmux") && !r.has("custom"));
        r.register("custom", |_ctx| async {
            Ok(serde_json::json!({"ok": true}).into())
        });
        assert!(r.types().contains(&"custom".to_string()));
    }
}
