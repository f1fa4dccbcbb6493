//! What a worker does with a claimed task: the handler registry (public, so programs can add
//! their own types — SPEC.md's `register_handler('custom')`) and the built-in handlers.
//!
//! A handler gets a [`TaskContext`] and returns `Ok(TaskSuccess)` or `Err(TaskFailure)`; the
//! runner reports either over HTTP. Handlers should stop when `ctx.cancelled()` fires (the
//! task was cancelled, its lease was lost, or the worker is stopping); the process-running
//! built-ins do, killing the whole process tree.

use super::payload::{self, BuiltinType, GitOp, GitPayload, ProjectCommandPayload};
use super::process::{self, CancelSignal, Ended, ExecGuard, ProcessSpec};
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
    /// The `exec` capability: run the built-in types, every one of which runs programs on
    /// this machine ([`BuiltinType::needs_exec`]). Off: they are never claimed, and refused.
    pub allow_exec: bool,
    /// Interpreter for `python` tasks.
    pub python: String,
    /// Output bytes kept per task (the tail).
    pub max_output: usize,
    /// Task processes run under this guard, so they die with the worker (`architect worker`
    /// sets it; a program embedding the runtime has no `exec-guard` subcommand to give).
    pub exec_guard: Option<ExecGuard>,
}

impl Default for HandlerSettings {
    fn default() -> Self {
        HandlerSettings {
            allow_exec: false,
            python: "python3".into(),
            max_output: 64 * 1024,
            exec_guard: None,
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
    /// The task's lease, for a report tied to it (a suite's results: `suites::RunReport`).
    pub lease_token: String,
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
            lease_token: claimed.lease_token.clone(),
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
    if t.needs_exec() && !ctx.settings.allow_exec {
        return Err(TaskFailure::permanent(format!(
            "{t} tasks run programs on the worker's machine; this worker was started without --allow-exec, so it refuses them"
        )));
    }
    // The server checked the payload at enqueue; checked again here, so a task that got into
    // the queue another way (an older server, a row written by hand) is held to the same rules.
    payload::validate(t.as_str(), ctx.payload(), ctx.task.project_id).map_err(bad_payload)?;
    match t {
        BuiltinType::Shell => shell(ctx).await,
        BuiltinType::Python => python(ctx).await,
        BuiltinType::Git => git(ctx).await,
        BuiltinType::Test | BuiltinType::Build | BuiltinType::Deploy => {
            project_command(t, ctx).await
        }
        BuiltinType::TestSuite => super::suite_task::test_suite(ctx).await,
        BuiltinType::Tmux => match crate::tmux::task::run(ctx.payload()).await {
            Ok(v) => Ok(v.into()),
            Err(e) if e.retryable => Err(TaskFailure::retry(e.message)),
            Err(e) => Err(TaskFailure::permanent(e.message)),
        },
    }
}

pub(super) fn bad_payload(e: super::Invalid) -> TaskFailure {
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
        guard: ctx.settings.exec_guard.clone(),
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

/// Config every git command of a task runs with, ahead of the task's own arguments (the
/// command line outranks every config file): no `ext::` transport even where
/// `GIT_ALLOW_PROTOCOL` is ignored.
const GIT_SAFETY_CONFIG: &[&str] = &["-c", "protocol.ext.allow=never"];

/// The environment every git command of a task runs with, over the task's own (already
/// limited to [`payload::GIT_ENV_ALLOWED`]): only the allowed transports, and never a password
/// prompt, since no one is there to answer it.
fn git_env(task_env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = task_env.clone();
    env.insert(
        "GIT_ALLOW_PROTOCOL".into(),
        payload::GIT_ALLOW_PROTOCOL.into(),
    );
    env.insert("GIT_TERMINAL_PROMPT".into(), "0".into());
    env
}

/// The git command lines for one operation (run in order; the first failure stops).
pub fn git_commands(p: &GitPayload) -> Vec<Vec<String>> {
    let mut cmds = git_op_commands(p);
    for c in &mut cmds {
        c.splice(0..0, GIT_SAFETY_CONFIG.iter().map(|a| a.to_string()));
    }
    cmds
}

fn git_op_commands(p: &GitPayload) -> Vec<Vec<String>> {
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
    payload::check_git(&p).map_err(bad_payload)?;
    let env = git_env(&p.env);
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
    let (command, what) = match t {
        BuiltinType::Test => (c.test_command, "test"),
        BuiltinType::Build => (c.build_command, "build"),
        _ if p.rollback => (c.rollback_command, "rollback"),
        _ => (c.deploy_command, "deploy"),
    };
    let command = command.ok_or_else(|| {
        TaskFailure::permanent(format!(
            "project {pid} has no {what} command: set it on the Tasks panel (Project commands) or with PUT /api/projects/{pid}/commands"
        ))
    })?;
    if let (BuiltinType::Test, Some(name)) = (t, crate::testing::suite_command(&command)) {
        // `suite:NAME`: the project's stored suite is its test; no process, no source_path.
        let suite = ctx
            .client
            .test_suite_by_name(pid, name)
            .await
            .map_err(|e| match e.status() {
                Some(404) => TaskFailure::permanent(format!(
                    "project {pid}'s test command names suite '{name}', which is not stored: upload it or rescan the project's test_suites/ folder"
                )),
                _ => TaskFailure::retry(format!("cannot read suite '{name}': {e}")),
            })?;
        // The suite's variables gain the project's folder and, for an autopilot test in a
        // worktree, that worktree (checked to be the project's): `cwd: '{{worktree}}'`.
        let mut vars = p.env;
        if let Some(source) = &c.source_path {
            vars.insert("source_path".into(), source.clone());
            if let Some(w) = &p.worktree {
                vars.insert("worktree".into(), same_repository(source, w).await?);
            }
        }
        return super::suite_task::run_stored_suite(
            &ctx,
            suite.suite.id,
            &suite.content,
            vars,
            Vec::new(),
        )
        .await;
    }
    let source = c.source_path.ok_or_else(|| {
        TaskFailure::permanent(format!(
            "project {pid} has no source_path to run its {what} command in"
        ))
    })?;
    let dir = match &p.worktree {
        Some(w) => same_repository(&source, w).await?,
        None => source,
    };
    let mut env = p.env;
    if let Some(target) = &p.target {
        env.insert("DEPLOY_TARGET".into(), target.clone());
    }
    let s = spec(&ctx, "sh", vec!["-c".into(), command], Some(dir), env);
    run_process(&ctx, s, &format!("the {what} command")).await
}

/// `worktree` when it is a git worktree of the repository at `source` (one common git
/// directory), else a permanent failure: a task may not run the project's command in code
/// that is not the project's.
pub(super) async fn same_repository(source: &str, worktree: &str) -> Result<String, TaskFailure> {
    async fn common_dir(dir: &str) -> Option<std::path::PathBuf> {
        let out = tokio::process::Command::new("git")
            .args([
                "-C",
                dir,
                "rev-parse",
                "--path-format=absolute",
                "--git-common-dir",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        std::fs::canonicalize(p).ok()
    }
    match (common_dir(source).await, common_dir(worktree).await) {
        (Some(a), Some(b)) if a == b => Ok(worktree.to_string()),
        _ => Err(TaskFailure::permanent(format!(
            "'{worktree}' is not a git worktree of the project's repository"
        ))),
    }
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
        let safe = ["-c", "protocol.ext.allow=never"];
        assert_eq!(
            git_commands(&p),
            vec![
                [&safe[..], &["-C", "/r", "add", "-A"]].concat(),
                [&safe[..], &["-C", "/r", "commit", "-m", "m"]].concat(),
            ]
        );
        let p: GitPayload = serde_json::from_value(serde_json::json!(
            {"op": "clone", "url": "/src", "dest": "/d", "branch": "main"}
        ))
        .unwrap();
        assert_eq!(
            git_commands(&p),
            vec![[
                &safe[..],
                &["clone", "--branch", "main", "--", "/src", "/d"]
            ]
            .concat()]
        );
    }

    #[test]
    fn git_runs_with_our_transport_limit_whatever_the_task_asks() {
        let task = BTreeMap::from([
            ("GIT_ALLOW_PROTOCOL".to_string(), "ext".to_string()),
            ("GIT_TERMINAL_PROMPT".to_string(), "1".to_string()),
            ("GIT_AUTHOR_NAME".to_string(), "a".to_string()),
        ]);
        let env = git_env(&task);
        assert_eq!(env["GIT_ALLOW_PROTOCOL"], "https:http:ssh:git:file");
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
        assert_eq!(env["GIT_AUTHOR_NAME"], "a");
    }

    #[tokio::test]
    async fn a_worker_without_exec_refuses_every_built_in_type_it_is_handed() {
        let registry = Registry::with_builtins();
        let settings = Arc::new(HandlerSettings::default());
        let (_tx, cancel) = tokio::sync::watch::channel(false);
        for t in BuiltinType::ALL {
            let task: Task = serde_json::from_value(serde_json::json!({
                "id": 1, "type": t.as_str(), "payload": {"command": "touch /tmp/never"},
                "priority": 0, "status": "running", "max_retries": 0, "attempts": 1,
                "timeout_s": 10, "run_after": "", "tags": [], "project_id": 1,
                "created_by": "t", "created_at": "", "updated_at": ""
            }))
            .unwrap();
            let claimed = ClaimedTask {
                task,
                lease_token: "l".into(),
            };
            // Nothing listens there: a handler that got past the check would fail otherwise.
            let client = Client::new("http://127.0.0.1:9", None);
            let ctx = TaskContext::new(&claimed, client, settings.clone(), cancel.clone());
            let e = registry.handle(ctx).await.unwrap_err();
            assert!(
                !e.retryable && e.error.contains("--allow-exec"),
                "{t}: {e:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_exec_worker_checks_the_payload_again_before_running_git() {
        let registry = Registry::with_builtins();
        let settings = Arc::new(HandlerSettings {
            allow_exec: true,
            ..HandlerSettings::default()
        });
        let (_tx, cancel) = tokio::sync::watch::channel(false);
        let task: Task = serde_json::from_value(serde_json::json!({
            "id": 1, "type": "git",
            "payload": {"op": "clone", "url": "ext::sh -c touch% /tmp/never", "dest": "/tmp/d"},
            "priority": 0, "status": "running", "max_retries": 0, "attempts": 1,
            "timeout_s": 10, "run_after": "", "tags": [],
            "created_by": "t", "created_at": "", "updated_at": ""
        }))
        .unwrap();
        let claimed = ClaimedTask {
            task,
            lease_token: "l".into(),
        };
        let ctx = TaskContext::new(
            &claimed,
            Client::new("http://127.0.0.1:9", None),
            settings,
            cancel,
        );
        let e = registry.handle(ctx).await.unwrap_err();
        assert!(
            !e.retryable && e.error.contains("bad payload") && e.error.contains("ext::"),
            "{e:?}"
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
