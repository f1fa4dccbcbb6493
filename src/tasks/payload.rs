//! The built-in task types and the payload each expects. The server checks a payload when the
//! task is created (a bad one is a 422 naming `payload.<field>`, not a failure an hour later on
//! some node) and the worker parses the same structs, so each shape is written once.
//! Custom types take any JSON object.

use super::{invalid, Invalid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

crate::text_enum! {
    /// Task types every `architect worker` knows.
    pub enum BuiltinType ("built-in task type") {
        /// A shell command (`sh -c`). Refused unless the worker runs with --allow-shell.
        Shell = "shell",
        /// A Python script file or inline code. Refused unless --allow-shell.
        Python = "python",
        /// clone, pull, push, commit, checkout.
        Git = "git",
        /// The project's test command, in its source_path.
        Test = "test",
        /// The project's build command, in its source_path.
        Build = "build",
        /// The project's deploy command, in its source_path.
        Deploy = "deploy",
        /// tmux operations, through the tmux domain once it exists.
        Tmux = "tmux",
    }
}

impl BuiltinType {
    /// Types that run arbitrary code given in the payload.
    pub fn runs_arbitrary_code(self) -> bool {
        matches!(self, BuiltinType::Shell | BuiltinType::Python)
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

/// `test`, `build`, `deploy`: `{env?}`; the command and directory come from the project.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectCommandPayload {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
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
            // Refs, remotes and branches are passed as arguments: one starting with '-' would
            // be read by git as an option.
            for (f, v) in [
                ("payload.ref", &p.git_ref),
                ("payload.remote", &p.remote),
                ("payload.branch", &p.branch),
                ("payload.url", &p.url),
            ] {
                if v.as_deref().is_some_and(|s| s.starts_with('-')) {
                    return Err(invalid(f, format!("{f} must not start with '-'")));
                }
            }
            env(&p.env)?;
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
        }
        BuiltinType::Test | BuiltinType::Build | BuiltinType::Deploy => {
            let p: ProjectCommandPayload = parse(payload)?;
            env(&p.env)?;
            if project_id.is_none() {
                return Err(invalid(
                    "project_id",
                    format!("a {builtin} task runs a project's command: give project_id"),
                ));
            }
        }
        // Accepted so the task is visible; the worker fails it as unsupported (not retried).
        BuiltinType::Tmux => {}
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
}
