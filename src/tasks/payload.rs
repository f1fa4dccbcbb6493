//! The built-in task types and the payload each expects. The server checks a payload when the
//! task is created (a bad one is a 422 naming `payload.<field>`, not a failure an hour later on
//! some node) and the worker parses the same structs, so each shape is written once.
//! Custom types take any JSON object.

use super::{invalid, Invalid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

crate::text_enum! {
    /// Task types every `architect worker` knows. Each one runs a program on the worker's
    /// machine, so each needs the worker's `exec` capability ([`BuiltinType::needs_exec`]).
    pub enum BuiltinType ("built-in task type") {
        /// A shell command (`sh -c`).
        Shell = "shell",
        /// A Python script file or inline code.
        Python = "python",
        /// clone, pull, push, commit, checkout.
        Git = "git",
        /// The project's test command, in its source_path.
        Test = "test",
        /// The project's build command, in its source_path.
        Build = "build",
        /// The project's deploy command, in its source_path.
        Deploy = "deploy",
        /// tmux operations on the worker's machine, through the agents' tmux driver.
        Tmux = "tmux",
        /// A stored test suite (src/suites), run by the worker with src/testing's runner.
        TestSuite = "test_suite",
    }
}

impl BuiltinType {
    /// The rule "execution is one capability": a type that can make the worker's machine run
    /// code someone else chose needs a worker started with `--allow-exec`. That is every
    /// built-in type: `shell` and `python` run the payload; `test`, `build` and `deploy` run
    /// the project's command (`sh -c`); `git` runs git, whose hooks, config and transports run
    /// programs; `tmux` starts sessions (with any command) and types keys into panes;
    /// `test_suite` runs a suite whose `shell` and `tmux` steps run programs, and even a suite of
    /// `http` steps only reads the worker's environment (`{{env.NAME}}`, the worker's own token
    /// among it) and sends it to any address the suite names, from inside the worker's network.
    /// The claim filters by type, not payload, so the rule is per type. A worker
    /// without the capability never claims these types and refuses them if handed one.
    /// Custom types registered by a program are that program's business.
    pub fn needs_exec(self) -> bool {
        match self {
            BuiltinType::Shell
            | BuiltinType::Python
            | BuiltinType::Git
            | BuiltinType::Test
            | BuiltinType::Build
            | BuiltinType::Deploy
            | BuiltinType::Tmux
            | BuiltinType::TestSuite => true,
        }
    }

    /// The payload is the program (a command, a script, a repository and its paths, tmux
    /// keys): queueing one is running code of one's choosing, so it needs `Exec`
    /// ([`crate::tasks::NewTask::runs_chosen_code`]); the other types run what an admin chose.
    pub fn carries_program(self) -> bool {
        matches!(
            self,
            BuiltinType::Shell | BuiltinType::Python | BuiltinType::Git | BuiltinType::Tmux
        )
    }

    /// Types that run the project's configured command.
    pub fn is_project_command(self) -> bool {
        matches!(
            self,
            BuiltinType::Test | BuiltinType::Build | BuiltinType::Deploy
        )
    }
}

pub const MAX_ENV: usize = 100;
pub const MAX_ARGS: usize = 100;
pub const MAX_TEXT: usize = 32 * 1024;
pub const MAX_PATH: usize = 1024;

/// `shell`: `{command, cwd?, env?, timeout_s?}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShellPayload {
    pub command: String,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Tighter than the task's timeout_s, if given (the smaller one wins).
    #[serde(default)]
    pub timeout_s: Option<i64>,
}

/// `python`: `{script? | code?, args?, cwd?, env?}` — exactly one of script and code.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PythonPayload {
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

crate::text_enum! {
    pub enum GitOp ("git operation") {
        Clone = "clone",
        Pull = "pull",
        Push = "push",
        Commit = "commit",
        Checkout = "checkout",
    }
}

/// `git`: `{op, repo?, url?, dest?, ref?, message?, remote?, branch?, add_all?, env?}`.
/// `clone` needs `url` and `dest`; the others run in `repo`; `commit` needs `message`;
/// `checkout` needs `ref`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GitPayload {
    pub op: GitOp,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub dest: Option<String>,
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub remote: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    /// `commit` stages everything first (`git add -A`); default true.
    #[serde(default)]
    pub add_all: Option<bool>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `test`, `build`, `deploy`: `{env?, worktree?, target?}`; the command comes from the
/// project. It runs in the project's source_path, or in `worktree`: a git worktree of that
/// same repository (the worker checks, so a task cannot point the command at other code).
/// `target` (deploy only, e.g. `staging`) reaches the command as `DEPLOY_TARGET`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectCommandPayload {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A `deploy` task runs the project's rollback command instead of its deploy command.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

/// `test_suite`: `{suite_id, vars?, tags?}`; the suite's text is fetched by the worker
/// (`GET /api/test-suites/{id}`), and a `vault:NAME` value is read by the worker with its own
/// rights, never carried here.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestSuitePayload {
    pub suite_id: i64,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Parses a payload into its struct; a shape error names `payload.<field>`.
pub fn parse<T: DeserializeOwned>(payload: &serde_json::Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize::<_, T>(payload).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if let Some(rest) = inner.strip_prefix("missing field `") {
            rest.split('`').next().unwrap_or("").to_string()
        } else if let Some(rest) = inner.strip_prefix("unknown field `") {
            rest.split('`').next().unwrap_or("").to_string()
        } else {
            path
        };
        let field = if field.is_empty() || field == "." {
            "payload".to_string()
        } else {
            format!("payload.{field}")
        };
        invalid(field.clone(), format!("{field}: {inner}"))
    })
}

fn text(field: &str, v: &str, max: usize, required: bool) -> Result<(), Invalid> {
    if required && v.trim().is_empty() {
        return Err(invalid(field, format!("{field} must not be empty")));
    }
    if v.len() > max {
        return Err(invalid(
            field,
            format!("{field} must be at most {max} bytes"),
        ));
    }
    if v.contains('\0') {
        return Err(invalid(field, format!("{field} must not contain NUL")));
    }
    Ok(())
}

fn opt_text(field: &str, v: &Option<String>, max: usize) -> Result<(), Invalid> {
    v.as_deref().map_or(Ok(()), |s| text(field, s, max, true))
}

fn env(env: &BTreeMap<String, String>) -> Result<(), Invalid> {
    if env.len() > MAX_ENV {
        return Err(invalid(
            "payload.env",
            format!("at most {MAX_ENV} variables"),
        ));
    }
    for (k, v) in env {
        let ok = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(invalid(
                "payload.env",
                format!("'{k}' is not a valid variable name (A-Z, a-z, 0-9, _)"),
            ));
        }
        text("payload.env", v, MAX_TEXT, false)?;
    }
    Ok(())
}

/// Checks a payload for the built-in types; any object passes for other types.
pub fn validate(
    task_type: &str,
    payload: &serde_json::Value,
    project_id: Option<i64>,
) -> Result<(), Invalid> {
    let Ok(builtin) = task_type.parse::<BuiltinType>() else {
        return Ok(());
    };
    match builtin {
        BuiltinType::Shell => {
            let p: ShellPayload = parse(payload)?;
            text("payload.command", &p.command, MAX_TEXT, true)?;
            opt_text("payload.cwd", &p.cwd, MAX_PATH)?;
            env(&p.env)?;
            if p.timeout_s
                .is_some_and(|t| !(1..=super::MAX_TIMEOUT_S).contains(&t))
            {
                return Err(invalid(
                    "payload.timeout_s",
                    format!(
                        "payload.timeout_s must be between 1 and {}",
                        super::MAX_TIMEOUT_S
                    ),
                ));
            }
        }
        BuiltinType::Python => {
            let p: PythonPayload = parse(payload)?;
            match (&p.script, &p.code) {
                (Some(s), None) => text("payload.script", s, MAX_PATH, true)?,
                (None, Some(c)) => text("payload.code", c, MAX_TEXT, true)?,
                _ => {
                    return Err(invalid(
                        "payload.code",
                        "give exactly one of payload.script (a file) and payload.code (inline)",
                    ))
                }
            }
            if p.args.len() > MAX_ARGS {
                return Err(invalid("payload.args", format!("at most {MAX_ARGS} args")));
            }
            for a in &p.args {
                text("payload.args", a, MAX_TEXT, false)?;
            }
            opt_text("payload.cwd", &p.cwd, MAX_PATH)?;
            env(&p.env)?;
        }
        BuiltinType::Git => {
            let p: GitPayload = parse(payload)?;
            check_git(&p)?;
        }
        BuiltinType::Test | BuiltinType::Build | BuiltinType::Deploy => {
            let p: ProjectCommandPayload = parse(payload)?;
            env(&p.env)?;
            if let Some(w) = &p.worktree {
                text("payload.worktree", w, MAX_PATH, true)?;
                if !w.starts_with('/') || w.chars().any(char::is_control) {
                    return Err(invalid(
                        "payload.worktree",
                        "worktree must be one absolute path",
                    ));
                }
            }
            if p.rollback && builtin != BuiltinType::Deploy {
                return Err(invalid("payload.rollback", "rollback is for deploy tasks"));
            }
            if let Some(t) = &p.target {
                if builtin != BuiltinType::Deploy {
                    return Err(invalid("payload.target", "target is for deploy tasks"));
                }
                let ok = !t.is_empty()
                    && t.len() <= 32
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(invalid(
                        "payload.target",
                        "target must be 1-32 letters, digits, '-' or '_' (e.g. staging)",
                    ));
                }
            }
            if project_id.is_none() {
                return Err(invalid(
                    "project_id",
                    format!("a {builtin} task runs a project's command: give project_id"),
                ));
            }
        }
        // The operation's own fields are the tmux driver's to check on the worker (a bad one
        // fails the task, not retried); the queue checks the one the driver hands to tmux
        // as a path.
        BuiltinType::Tmux => tmux_cwd(payload)?,
        BuiltinType::TestSuite => {
            let p: TestSuitePayload = parse(payload)?;
            if p.suite_id <= 0 {
                return Err(invalid(
                    "payload.suite_id",
                    "payload.suite_id must be a suite id",
                ));
            }
            if p.vars.len() > MAX_ENV || p.tags.len() > MAX_ARGS {
                return Err(invalid(
                    "payload.vars",
                    format!("at most {MAX_ENV} variables and {MAX_ARGS} tags"),
                ));
            }
            for (k, v) in &p.vars {
                text("payload.vars", k, 100, true)?;
                text("payload.vars", v, MAX_TEXT, false)?;
            }
            for t in &p.tags {
                text("payload.tags", t, 100, true)?;
            }
            if project_id.is_none() {
                return Err(invalid(
                    "project_id",
                    "a test_suite task runs a project's suite: give project_id",
                ));
            }
        }
    }
    Ok(())
}

/// What a `git` task may set in its environment: who a commit is by, and the locale.
/// Everything else is refused, because git reads its environment as instructions:
/// `GIT_SSH_COMMAND`, `GIT_PROXY_COMMAND`, `GIT_ASKPASS`, `GIT_EXEC_PATH` and `GIT_CONFIG_*`
/// (`core.sshCommand`, `core.fsmonitor`, ...) run programs; `GIT_ALLOW_PROTOCOL` lifts the
/// transport limit the worker sets; `HOME`, `XDG_CONFIG_HOME`, `PATH` and `LD_PRELOAD` point
/// git at config, programs or libraries the task could have placed (a cloned tree is the
/// task's to fill).
pub const GIT_ENV_ALLOWED: &[&str] = &[
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
    "LANG",
    "LC_ALL",
    "TZ",
];

/// The transports a `git` task may use: the worker sets this as `GIT_ALLOW_PROTOCOL` (never
/// the task), so `ext::`, `fd::` and every other remote helper are off for git itself too,
/// submodules and redirects included.
pub const GIT_ALLOW_PROTOCOL: &str = "https:http:ssh:git:file";

/// URL schemes a `git` task may name (the same set as [`GIT_ALLOW_PROTOCOL`]).
const GIT_SCHEMES: &[&str] = &["https", "http", "ssh", "git", "file"];

/// Checks a git payload: lengths, required fields, the environment, and every value that
/// reaches git's command line. The server runs this at enqueue (a 422 naming the field) and
/// the worker again before it runs git.
pub fn check_git(p: &GitPayload) -> Result<(), Invalid> {
    for (f, v, max) in [
        ("payload.repo", &p.repo, MAX_PATH),
        ("payload.url", &p.url, MAX_PATH),
        ("payload.dest", &p.dest, MAX_PATH),
        ("payload.ref", &p.git_ref, 256),
        ("payload.message", &p.message, MAX_TEXT),
        ("payload.remote", &p.remote, 256),
        ("payload.branch", &p.branch, 256),
    ] {
        opt_text(f, v, max)?;
    }
    // Everything but the message is an argument: one starting with '-' would be read by git
    // as an option (`--upload-pack=...`, `-c core.sshCommand=...`), and none has a use for
    // control characters.
    for (f, v) in [
        ("payload.repo", &p.repo),
        ("payload.url", &p.url),
        ("payload.dest", &p.dest),
        ("payload.ref", &p.git_ref),
        ("payload.remote", &p.remote),
        ("payload.branch", &p.branch),
    ] {
        let Some(v) = v.as_deref() else { continue };
        if v.starts_with('-') {
            return Err(invalid(f, format!("{f} must not start with '-'")));
        }
        if v.chars().any(char::is_control) {
            return Err(invalid(
                f,
                format!("{f} must not contain control characters"),
            ));
        }
    }
    // A remote may be a name or a URL: both are checked as URLs.
    for (f, v) in [("payload.url", &p.url), ("payload.remote", &p.remote)] {
        if let Some(v) = v.as_deref() {
            git_url(f, v)?;
        }
    }
    env(&p.env)?;
    if let Some(k) = p
        .env
        .keys()
        .find(|k| !GIT_ENV_ALLOWED.contains(&k.as_str()))
    {
        return Err(invalid(
            "payload.env",
            format!(
                "payload.env: a git task may not set '{k}'; allowed: {}",
                GIT_ENV_ALLOWED.join(", ")
            ),
        ));
    }
    let need = |f: &str, v: &Option<String>| {
        if v.is_none() {
            Err(invalid(
                format!("payload.{f}"),
                format!("git {} needs payload.{f}", p.op),
            ))
        } else {
            Ok(())
        }
    };
    match p.op {
        GitOp::Clone => {
            need("url", &p.url)?;
            need("dest", &p.dest)?;
        }
        GitOp::Pull | GitOp::Push => need("repo", &p.repo)?,
        GitOp::Commit => {
            need("repo", &p.repo)?;
            need("message", &p.message)?;
        }
        GitOp::Checkout => {
            need("repo", &p.repo)?;
            need("ref", &p.git_ref)?;
        }
    }
    Ok(())
}

/// A repository location git may be given: a path, `host:path`, or a URL of an allowed
/// scheme; never `<transport>::<address>` (git runs the helper `git-remote-<transport>`:
/// `ext::` runs any command, `fd::` speaks over inherited descriptors), and never a host or
/// user starting with '-' (ssh would read it as an option, e.g. `-oProxyCommand=...`).
fn git_url(field: &str, url: &str) -> Result<(), Invalid> {
    // Git's own test (transport.c): scheme characters, then "::".
    let scheme_end = url
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .unwrap_or(url.len());
    if url[scheme_end..].starts_with("::") {
        return Err(invalid(
            field,
            format!("{field}: '<transport>::' remote helpers (ext::, fd::, ...) are not allowed; give a path or an https, http, ssh, git or file URL"),
        ));
    }
    let after_scheme = match url.split_once("://") {
        Some((scheme, rest)) => {
            if !GIT_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
                return Err(invalid(
                    field,
                    format!(
                        "{field}: the '{scheme}' transport is not allowed; allowed: {}",
                        GIT_SCHEMES.join(", ")
                    ),
                ));
            }
            rest
        }
        None => url,
    };
    let host = after_scheme
        .split_once('@')
        .map_or(after_scheme, |(_, h)| h);
    if after_scheme.starts_with('-') || host.starts_with('-') {
        return Err(invalid(
            field,
            format!("{field}: a host or user must not start with '-'"),
        ));
    }
    Ok(())
}

/// A tmux task's `cwd` goes to `tmux new-session -c`: an absolute path, one line, no NUL.
/// (The driver passes it to tmux literally, `#` included.)
fn tmux_cwd(payload: &serde_json::Value) -> Result<(), Invalid> {
    const F: &str = "payload.cwd";
    let cwd = match payload.get("cwd") {
        None | Some(serde_json::Value::Null) => return Ok(()),
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err(invalid(F, format!("{F} must be a string"))),
    };
    text(F, cwd, MAX_PATH, true)?;
    if !cwd.starts_with('/') {
        return Err(invalid(F, format!("{F} must be an absolute path")));
    }
    if cwd.chars().any(char::is_control) {
        return Err(invalid(
            F,
            format!("{F} must not contain control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(t: &str, p: serde_json::Value, project: Option<i64>) -> String {
        validate(t, &p, project).unwrap_err().field
    }

    #[test]
    fn payload_errors_name_the_field() {
        assert_eq!(field("shell", json!({}), None), "payload.command");
        assert_eq!(
            field("shell", json!({"command": " "}), None),
            "payload.command"
        );
        assert_eq!(
            field("shell", json!({"command": "x", "env": {"1A": "v"}}), None),
            "payload.env"
        );
        assert_eq!(field("python", json!({}), None), "payload.code");
        assert_eq!(field("git", json!({"op": "fetch"}), None), "payload.op");
        assert_eq!(
            field("git", json!({"op": "clone", "url": "u"}), None),
            "payload.dest"
        );
        assert_eq!(
            field(
                "git",
                json!({"op": "checkout", "repo": "r", "ref": "--force"}),
                None
            ),
            "payload.ref"
        );
        assert_eq!(field("test", json!({}), None), "project_id");
        assert!(validate("test", &json!({}), Some(1)).is_ok());
        assert!(validate("whatever", &json!({"any": [1]}), None).is_ok());
        assert!(validate("tmux", &json!({"op": "create"}), None).is_ok());
    }

    #[test]
    fn git_payloads_that_would_run_code_name_the_field() {
        let git = |p: serde_json::Value| field("git", p, None);
        let clone = |url: &str| json!({"op": "clone", "url": url, "dest": "/d"});
        for url in [
            "ext::sh -c touch% /tmp/x",
            "fd::3",
            "EXT::sh",
            "::x",
            "foo::bar",
            "-uhello",
            "--upload-pack=touch /tmp/x",
            "ssh://-oProxyCommand=touch%20x/r",
            "ssh://user@-oProxyCommand=x/r",
            "-oProxyCommand=x:r",
            "gopher://h/r",
            "a\nb",
        ] {
            assert_eq!(git(clone(url)), "payload.url", "{url}");
        }
        for ok in [
            "https://[::1]:8443/r.git",
            "/srv/git/r",
            "git@github.com:o/r.git",
            "ssh://git@host/r",
            "file:///srv/r",
        ] {
            assert!(validate("git", &clone(ok), None).is_ok(), "{ok}");
        }
        assert_eq!(
            git(json!({"op": "clone", "url": "/s", "dest": "--template=/t"})),
            "payload.dest"
        );
        assert_eq!(
            git(json!({"op": "pull", "repo": "/r", "remote": "ext::sh -c x"})),
            "payload.remote"
        );
        assert_eq!(
            git(json!({"op": "push", "repo": "/r", "remote": "o", "branch": "--exec=x"})),
            "payload.branch"
        );
        for k in [
            "GIT_SSH_COMMAND",
            "GIT_ALLOW_PROTOCOL",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "GIT_EXEC_PATH",
            "GIT_PROXY_COMMAND",
            "GIT_ASKPASS",
            "HOME",
            "PATH",
            "LD_PRELOAD",
        ] {
            let p = json!({"op": "commit", "repo": "/r", "message": "m", "env": {k: "x"}});
            assert_eq!(git(p), "payload.env", "{k}");
        }
        let p = json!({"op": "commit", "repo": "/r", "message": "m",
                       "env": {"GIT_AUTHOR_NAME": "a", "GIT_COMMITTER_EMAIL": "c@c"}});
        assert!(validate("git", &p, None).is_ok());
    }

    #[test]
    fn tmux_cwd_is_one_absolute_line() {
        let tmux =
            |cwd: serde_json::Value| validate("tmux", &json!({"op": "create", "cwd": cwd}), None);
        assert!(tmux(json!("/tmp/#(literal)")).is_ok());
        for bad in [
            json!("relative"),
            json!("/a\nb"),
            json!("/a\u{0}b"),
            json!(7),
            json!(""),
        ] {
            assert_eq!(tmux(bad.clone()).unwrap_err().field, "payload.cwd", "{bad}");
        }
    }
}
