//! The half of `session start` that runs on the session's own machine: the git worktree, the
//! Claude Code settings file with architect's hooks, the agent's command line and environment
//! (the LLM gateway included), and the tmux session itself.
//!
//! One code path for every node: `agents::launch::start` (the control plane) decides,
//! registers and mints the session's token, then hands a [`LaunchPlan`] either to [`launch`]
//! here with this server's [`NodeSide`], or over the node command channel (command
//! `session-start`) to a node's `architect agent`, whose handler (`nodes::handlers`) calls the
//! same [`launch`] with that node's tmux server, data directory and dashboard URL. A leaf
//! beside the tmux driver, so the agents domain and the node agent both use it without using
//! each other; its git goes through `crate::git` (hooks off, a time limit).

use super::{NewSession, SessionName, Tmux, TmuxError};
use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

crate::text_enum! {
    /// What `architect session start --agent` launches.
    pub enum LaunchAgent ("agent") {
        Claude = "claude",
        Codex = "codex",
        /// `architect chat --worker` through the LLM gateway.
        Chat = "chat",
        Shell = "shell",
    }
}

/// Why a node could not start a session (the agents domain answers it as its own
/// `SpawnError` of the same kind).
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Tmux(#[from] TmuxError),
}

impl From<Invalid> for SpawnError {
    fn from(e: Invalid) -> Self {
        SpawnError::Invalid(e)
    }
}

/// The Claude Code hook events architect installs, and the `architect hook` argument of each.
pub const CLAUDE_HOOKS: &[(&str, &str)] = &[
    ("UserPromptSubmit", "user-prompt-submit"),
    ("Stop", "stop"),
    ("Notification", "notification"),
    ("PreToolUse", "pre-tool-use"),
];

/// Quotes a path for the `sh -c` that Claude Code runs a hook command with.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The settings JSON: one command hook per event, running `<architect> hook <event>`.
pub fn claude_settings(architect: &Path) -> serde_json::Value {
    let bin = sh_quote(&architect.display().to_string());
    let mut hooks = serde_json::Map::new();
    for (event, arg) in CLAUDE_HOOKS {
        let mut entry = serde_json::json!({
            "hooks": [{"type": "command", "command": format!("{bin} hook {arg}"), "timeout": 30}]
        });
        if *event == "PreToolUse" {
            entry["matcher"] = serde_json::json!("*");
        }
        hooks.insert((*event).to_string(), serde_json::json!([entry]));
    }
    serde_json::json!({ "hooks": hooks })
}

/// The session's token, minted for the agent of the node the session starts on: the answer of
/// `POST /api/agents/session-claims/redeem`.
#[derive(Serialize, Deserialize)]
pub struct RedeemedToken {
    pub token: String,
}

/// The node command that runs a [`LaunchPlan`] on a node's agent.
pub const COMMAND: &str = "session-start";

/// Everything a node needs to start one session. Holds the session's token: no `Debug`, and
/// the control plane scrubs it from the stored command once the node answered.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchPlan {
    pub name: SessionName,
    pub agent: LaunchAgent,
    pub cwd: Option<String>,
    /// The branch of a new worktree (`feature/<slug>-MMDD`); `None`: no worktree.
    pub worktree_branch: Option<String>,
    pub program: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// The caller's extra environment (validated by `launch::start`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The node name the session is registered under (`ARCHITECT_NODE`).
    pub node: String,
    /// The session's own token: hooks report with it, and the gateway accepts it. Empty in a
    /// plan sent to a remote node, which gets `token_claim` instead.
    pub token: String,
    /// A one-time claim the node's agent trades for the token (`POST
    /// /api/agents/session-claims/redeem`), so no node command ever holds a token.
    #[serde(default)]
    pub token_claim: Option<String>,
    /// Point the agent at architect's LLM gateway (Claude Code, Codex; `chat` always uses it).
    pub gateway: bool,
}

/// The machine-specific half: where this node keeps things and how it reaches the dashboard.
#[derive(Debug, Clone)]
pub struct NodeSide {
    pub tmux: Tmux,
    /// Worktrees go to `<data_dir>/worktrees/<session>`, Claude settings to
    /// `<data_dir>/agents/<session>/`.
    pub data_dir: PathBuf,
    /// The architect binary hooks and `chat` run; `None`: this process's own binary.
    pub architect: Option<PathBuf>,
    /// The dashboard as this node reaches it: hooks report there, and it serves the gateway.
    pub dashboard_url: Option<String>,
    /// This node agent's client of the control plane (its own token), to redeem a plan's
    /// token claim; `None` in `serve`, which never sends itself a claim.
    pub control_plane: Option<crate::client::Client>,
}

/// What the node did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Launched {
    pub cwd: Option<String>,
    pub branch: Option<String>,
    pub settings_path: Option<String>,
    pub command: Vec<String>,
    /// The agent's model requests go through architect's LLM gateway.
    pub gateway: bool,
}

/// Runs git in `cwd` through the one git runner; stdout, trimmed.
async fn git(cwd: &str, args: &[&str]) -> Result<String, SpawnError> {
    let ran = crate::git::run(cwd, args, None)
        .await
        .map_err(|e| SpawnError::Conflict(e.to_string()))?;
    if !ran.success {
        return Err(SpawnError::Invalid(invalid(
            "worktree",
            format!(
                "git {} failed: {}",
                args.first().copied().unwrap_or(""),
                ran.stderr
            ),
        )));
    }
    Ok(ran.stdout.trim().to_string())
}

/// The environment of the agent: the gateway's variables, then the caller's (which may
/// override them), then architect's own (which nobody overrides).
fn environment(side: &NodeSide, plan: &LaunchPlan) -> (Vec<(String, String)>, bool) {
    let mut env = BTreeMap::new();
    let mut gateway = plan.agent == LaunchAgent::Chat
        || (plan.agent == LaunchAgent::Codex && plan.gateway && side.dashboard_url.is_some());
    if plan.gateway && plan.agent == LaunchAgent::Claude {
        if let Some(url) = &side.dashboard_url {
            // The gateway serves /v1/messages and takes a token as a bearer; an auth token
            // (unlike ANTHROPIC_API_KEY) needs no "use this key?" approval in Claude Code, and
            // an empty ANTHROPIC_API_KEY keeps a key inherited from the tmux server unused.
            env.insert("ANTHROPIC_BASE_URL".to_string(), url.clone());
            env.insert("ANTHROPIC_AUTH_TOKEN".to_string(), plan.token.clone());
            env.insert("ANTHROPIC_API_KEY".to_string(), String::new());
            gateway = true;
        }
    }
    for (k, v) in &plan.env {
        env.insert(k.clone(), v.clone());
    }
    env.insert("ARCHITECT_SESSION".to_string(), plan.name.to_string());
    env.insert("ARCHITECT_NODE".to_string(), plan.node.clone());
    env.insert("ARCHITECT_TOKEN".to_string(), plan.token.clone());
    if let Some(url) = &side.dashboard_url {
        env.insert("ARCHITECT_URL".to_string(), url.clone());
    }
    (env.into_iter().collect(), gateway)
}

/// The name of the model provider architect adds to Codex's configuration.
pub const CODEX_PROVIDER: &str = "architect";

/// Codex configuration overrides (`-c key=value`, values in TOML) that make the gateway's
/// `/v1/responses` its model provider, reading the session's token from `ARCHITECT_TOKEN`
/// (`env_key`): the URL is on the command line, the token only in the environment.
fn codex_gateway_args(side: &NodeSide, plan: &LaunchPlan) -> Vec<String> {
    let Some(url) = side.dashboard_url.as_deref().filter(|_| plan.gateway) else {
        return Vec::new();
    };
    let p = CODEX_PROVIDER;
    let base = format!("{}/v1", url.trim_end_matches('/'));
    [
        format!("model_provider=\"{p}\""),
        format!("model_providers.{p}.name=\"architect gateway\""),
        format!("model_providers.{p}.base_url={}", toml_string(&base)),
        format!("model_providers.{p}.env_key=\"ARCHITECT_TOKEN\""),
        format!("model_providers.{p}.wire_api=\"responses\""),
    ]
    .into_iter()
    .flat_map(|kv| ["-c".to_string(), kv])
    .collect()
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Starts the session `plan` describes on this node's tmux server.
pub async fn launch(side: &NodeSide, plan: &LaunchPlan) -> Result<Launched, SpawnError> {
    let name = &plan.name;
    if side.tmux.has_session(name).await? {
        return Err(SpawnError::Conflict(format!(
            "tmux session '{name}' already exists"
        )));
    }
    if let Some(c) = &plan.cwd {
        if !std::path::Path::new(c).is_dir() {
            return Err(invalid("cwd", format!("'{c}' is not a directory on this node")).into());
        }
    }

    let architect: PathBuf = match &side.architect {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| SpawnError::Conflict(format!("cannot find the architect binary: {e}")))?,
    };
    let session_dir = side.data_dir.join("agents").join(name.as_str());
    let session_dir = std::path::absolute(&session_dir).unwrap_or(session_dir);
    let mut settings_path = None;
    let mut command: Vec<String> = Vec::new();
    match plan.agent {
        LaunchAgent::Claude => {
            std::fs::create_dir_all(&session_dir)
                .map_err(|e| SpawnError::Conflict(format!("cannot create {session_dir:?}: {e}")))?;
            let path = session_dir.join("claude-settings.json");
            let body = serde_json::to_vec_pretty(&claude_settings(&architect)).unwrap_or_default();
            std::fs::write(&path, body)
                .map_err(|e| SpawnError::Conflict(format!("cannot write {path:?}: {e}")))?;
            command.push(plan.program.clone().unwrap_or_else(|| "claude".into()));
            command.push("--settings".into());
            command.push(path.display().to_string());
            settings_path = Some(path.display().to_string());
        }
        LaunchAgent::Codex => {
            command.push(plan.program.clone().unwrap_or_else(|| "codex".into()));
            // Without it codex 0.169 starts a daemon that outlives the session (README).
            command.push("--no-daemon".into());
            command.extend(codex_gateway_args(side, plan));
        }
        LaunchAgent::Chat => {
            command.push(
                plan.program
                    .clone()
                    .unwrap_or_else(|| architect.display().to_string()),
            );
            command.extend([
                "chat".into(),
                "--worker".into(),
                "--session".into(),
                name.to_string(),
            ]);
        }
        LaunchAgent::Shell => {
            command.push(plan.program.clone().unwrap_or_else(|| "bash".into()));
        }
    }
    command.extend(plan.args.iter().cloned());
    // A program that is not there would start a session that dies at once, after "started".
    if let Some(program) = command.first() {
        if !runnable(program) {
            return Err(invalid(
                "program",
                format!("'{program}' is not an executable file or a program on this node's PATH"),
            )
            .into());
        }
    }
    let (env, gateway) = environment(side, plan);
    std::fs::create_dir_all(&session_dir)
        .map_err(|e| SpawnError::Conflict(format!("cannot create {session_dir:?}: {e}")))?;
    // The worktree last, once everything that may refuse the start has passed: a refused
    // start leaves no worktree or branch behind.
    let mut cwd = plan.cwd.clone();
    let mut branch = None;
    let mut made = None;
    if let Some(b) = &plan.worktree_branch {
        let base = cwd
            .clone()
            .ok_or_else(|| invalid("cwd", "a worktree needs cwd (a git checkout)"))?;
        let dir = side.data_dir.join("worktrees").join(name.as_str());
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let dir_s = dir.display().to_string();
        git(&base, &["worktree", "add", "-b", b, &dir_s, "HEAD"]).await?;
        made = Some((base, dir_s.clone(), b.clone()));
        cwd = Some(dir_s);
        branch = Some(b.clone());
    } else if let Some(c) = &cwd {
        branch = git(c, &["rev-parse", "--abbrev-ref", "HEAD"]).await.ok();
    }
    let created = side
        .tmux
        .create(&NewSession {
            name: Some(name.clone()),
            cwd: cwd.clone(),
            command: command.clone(),
            env,
            env_dir: Some(session_dir.clone()),
            width: 160,
            height: 50,
        })
        .await;
    if let Err(e) = created {
        if let Some((base, dir, b)) = made {
            let _ = git(&base, &["worktree", "remove", "--force", &dir]).await;
            let _ = git(&base, &["branch", "-D", &b]).await;
        }
        return Err(e.into());
    }
    if plan.agent == LaunchAgent::Claude {
        // Without it Claude shows a "tmux focus-events off" line (README).
        let _ = side.tmux.set_global_option("focus-events", "on").await;
    }
    Ok(Launched {
        cwd,
        branch,
        settings_path,
        command,
        gateway,
    })
}

/// Whether `program` names an executable file (a path) or a program found on `PATH`.
fn runnable(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(std::path::Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(program))))
}

/// The `session-start` node command: runs the plan in `args` on this node, first trading
/// its token claim for the session's token.
pub async fn run_command(side: &NodeSide, args: serde_json::Value) -> Result<Launched, String> {
    let mut plan: LaunchPlan =
        serde_json::from_value(args).map_err(|e| format!("bad session-start payload: {e}"))?;
    if let Some(claim) = plan.token_claim.take() {
        let client = side
            .control_plane
            .as_ref()
            .ok_or("this node cannot redeem a token claim: it has no control-plane client")?;
        let redeemed: RedeemedToken = client
            .post(
                "/api/agents/session-claims/redeem",
                &serde_json::json!({ "claim": claim }),
            )
            .await
            .map_err(|e| format!("cannot redeem the session's token claim: {e}"))?;
        plan.token = redeemed.token;
    }
    launch(side, &plan).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(agent: LaunchAgent, gateway: bool) -> LaunchPlan {
        LaunchPlan {
            name: SessionName::parse("s1").unwrap(),
            agent,
            cwd: None,
            worktree_branch: None,
            program: None,
            args: vec![],
            env: BTreeMap::from([("ANTHROPIC_BASE_URL".into(), "http://mine".into())]),
            node: "n1".into(),
            token: "tok".into(),
            token_claim: None,
            gateway,
        }
    }

    fn side() -> NodeSide {
        NodeSide {
            tmux: Tmux::new(None),
            data_dir: PathBuf::from("/tmp"),
            architect: None,
            dashboard_url: Some("http://dash:8080".into()),
            control_plane: None,
        }
    }

    #[test]
    fn programs_are_looked_up_like_a_shell_would() {
        assert!(runnable("sh"));
        assert!(runnable("/bin/sh"));
        assert!(!runnable("no-such-agent-binary"));
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("not-executable");
        std::fs::write(&plain, "x").unwrap();
        assert!(!runnable(plain.to_str().unwrap()));
        assert!(!runnable(dir.path().to_str().unwrap()));
        assert!(!runnable("/nonexistent/claude"));
    }

    #[test]
    fn claude_goes_through_the_gateway_unless_told_otherwise() {
        let mut p = plan(LaunchAgent::Claude, true);
        p.env.clear();
        let (env, gw) = environment(&side(), &p);
        let env: BTreeMap<_, _> = env.into_iter().collect();
        assert!(gw);
        assert_eq!(env["ANTHROPIC_BASE_URL"], "http://dash:8080");
        assert_eq!(env["ANTHROPIC_AUTH_TOKEN"], "tok");
        assert_eq!(env["ANTHROPIC_API_KEY"], "");
        assert_eq!(env["ARCHITECT_URL"], "http://dash:8080");

        let (env, gw) = environment(&side(), &plan(LaunchAgent::Claude, false));
        let env: BTreeMap<_, _> = env.into_iter().collect();
        assert!(!gw);
        assert!(!env.contains_key("ANTHROPIC_AUTH_TOKEN"));
        assert_eq!(env["ANTHROPIC_BASE_URL"], "http://mine");
    }

    #[test]
    fn the_callers_env_wins_over_the_gateway_and_codex_gets_a_gateway_provider() {
        let (env, _) = environment(&side(), &plan(LaunchAgent::Claude, true));
        let env: BTreeMap<_, _> = env.into_iter().collect();
        assert_eq!(env["ANTHROPIC_BASE_URL"], "http://mine");
        let (env, gw) = environment(&side(), &plan(LaunchAgent::Codex, true));
        assert!(gw);
        assert!(!env.iter().any(|(k, _)| k.starts_with("OPENAI")));
        let args = codex_gateway_args(&side(), &plan(LaunchAgent::Codex, true)).join(" ");
        assert!(
            args.contains(r#"model_providers.architect.base_url="http://dash:8080/v1""#),
            "{args}"
        );
        assert!(
            !args.contains("tok"),
            "the token is never on the command line: {args}"
        );
        assert!(codex_gateway_args(&side(), &plan(LaunchAgent::Codex, false)).is_empty());
    }

    #[test]
    fn settings_hold_one_hook_per_event_with_a_quoted_binary() {
        let s = claude_settings(Path::new("/opt/it's here/architect"));
        for (event, arg) in CLAUDE_HOOKS {
            let cmd = s["hooks"][event][0]["hooks"][0]["command"]
                .as_str()
                .unwrap();
            assert_eq!(cmd, format!(r"'/opt/it'\''s here/architect' hook {arg}"));
        }
        assert_eq!(s["hooks"]["PreToolUse"][0]["matcher"], "*");
    }
}
