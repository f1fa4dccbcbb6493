//! Permission decisions: patterns (regex on the tool and on the command or path, optional
//! session or role scope, approve or deny, enabled) and the built-in never-auto-approve list.
//!
//! The rules, in order: a matching **deny beats** any approve; a request on the never-list
//! (destructive `rm` outside the workspace, force pushes, credential files) is never approved
//! automatically unless an approving pattern carries the explicit `override_guard` flag; no
//! matching pattern means **ask** (a person decides). Every decision, including dry runs and
//! "ask", is written to `permission_audit`.

use super::store::SessionRow;
use super::AgentsError;
use crate::app::AppState;
use regex::Regex;
use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// What a pattern decides.
    pub enum Decision ("decision") {
        Approve = "approve",
        Deny = "deny",
    }
}

crate::text_enum! {
    /// The outcome for one request.
    pub enum Outcome ("outcome") {
        Approve = "approve",
        Deny = "deny",
        /// No rule applies: a person decides.
        Ask = "ask",
    }
}

/// One stored pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PermissionPattern {
    pub id: i64,
    pub name: String,
    /// Matched against the whole tool name (`Bash`, `Write`, `exec`, ...).
    pub tool_regex: String,
    /// Searched in the command or path; empty matches anything.
    pub subject_regex: String,
    pub session_scope: Option<String>,
    pub role_scope: Option<String>,
    pub decision: String,
    pub enabled: i64,
    pub override_guard: i64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

/// What is being asked.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub session: &'a str,
    pub role: Option<&'a str>,
    pub tool: &'a str,
    /// The command (shell tools) or path (file tools).
    pub subject: &'a str,
    /// The session's working directory: `rm -r` inside it is not on the never-list.
    pub workspace: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// `pattern:<id>`, `guard:<rule>` or `none`.
    pub decided_by: String,
    pub reason: String,
}

impl Verdict {
    /// Claude Code's `permissionDecision`.
    pub fn hook_decision(&self) -> &'static str {
        match self.outcome {
            Outcome::Approve => "allow",
            Outcome::Deny => "deny",
            Outcome::Ask => "ask",
        }
    }
}

/// Compiles a pattern regex with bounded size; `whole` anchors it to the entire text.
pub fn compile(re: &str, whole: bool) -> Result<Regex, String> {
    let src = if whole {
        format!("^(?:{re})$")
    } else {
        re.to_string()
    };
    regex::RegexBuilder::new(&src)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

fn applies(p: &PermissionPattern, r: &Request<'_>) -> bool {
    if p.enabled == 0 {
        return false;
    }
    if p.session_scope.as_deref().is_some_and(|s| s != r.session) {
        return false;
    }
    if p.role_scope.as_deref().is_some_and(|s| Some(s) != r.role) {
        return false;
    }
    let tool_ok = compile(&p.tool_regex, true).is_ok_and(|re| re.is_match(r.tool));
    let subject_ok = p.subject_regex.is_empty()
        || compile(&p.subject_regex, false).is_ok_and(|re| re.is_match(r.subject));
    tool_ok && subject_ok
}

/// The never-auto-approve list: the rule a request falls under, if any.
pub fn guard(r: &Request<'_>) -> Option<&'static str> {
    let s = r.subject;
    const CREDENTIALS: &[&str] = &[
        ".env",
        "id_rsa",
        "id_ed25519",
        "id_ecdsa",
        ".ssh/",
        ".aws/credentials",
        ".netrc",
        ".pgpass",
        "credentials.json",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        ".docker/config.json",
        ".kube/config",
        "secret.key",
        "master.key",
        ".gnupg",
    ];
    if CREDENTIALS.iter().any(|c| s.contains(c)) {
        return Some("credential_files");
    }
    let force_push = Regex::new(
        r"\bgit\b[^;&|]*\bpush\b[^;&|]*(\s--force\b|\s--force-with-lease\b|\s-[a-zA-Z]*f[a-zA-Z]*\b|\s\+\S)",
    );
    if force_push.is_ok_and(|re| re.is_match(s)) {
        return Some("force_push");
    }
    let rm = Regex::new(r"\brm\s+([^;&|]*)");
    if let Ok(rm) = rm {
        for cap in rm.captures_iter(s) {
            let args: Vec<&str> = cap[1].split_whitespace().collect();
            let recursive = args.iter().any(|a| {
                *a == "--recursive"
                    || (a.starts_with('-') && !a.starts_with("--") && a.contains(['r', 'R']))
            });
            if !recursive {
                continue;
            }
            let outside = args.iter().filter(|a| !a.starts_with('-')).any(|a| {
                let inside = r.workspace.is_some_and(|w| {
                    let w = w.trim_end_matches('/');
                    a.starts_with(&format!("{w}/")) && !a.contains("..")
                });
                let relative_safe = !a.starts_with('/')
                    && !a.starts_with('~')
                    && !a.starts_with('$')
                    && !a.contains("..")
                    && *a != "*"
                    && r.workspace.is_some();
                !(inside || relative_safe)
            });
            if outside {
                return Some("rm_recursive_outside_workspace");
            }
        }
    }
    None
}

/// Requests the never-auto-approve list stops, one per rule and kind of tool: how the
/// dashboard finds approve patterns whose matches that list would turn back into "ask".
const GUARD_EXAMPLES: &[(&str, &str)] = &[
    ("Bash", "rm -rf /"),
    ("exec", "rm -rf ~/"),
    ("Bash", "git push --force origin main"),
    ("exec", "git push -f"),
    ("Bash", "cat ~/.aws/credentials"),
    ("Write", "/repo/.env"),
    ("Edit", "/repo/.env"),
    ("Read", "/home/u/.ssh/id_ed25519"),
];

/// For an enabled approve pattern without `override_guard`: the never-auto-approve rules it
/// would match yet not decide, each with an example request (tool, subject).
pub fn guarded_matches(p: &PermissionPattern) -> Vec<(&'static str, &'static str, &'static str)> {
    if p.decision != "approve" || p.override_guard != 0 {
        return Vec::new();
    }
    let mut probe = p.clone();
    probe.enabled = 1;
    probe.session_scope = None;
    probe.role_scope = None;
    let mut out: Vec<(&'static str, &'static str, &'static str)> = Vec::new();
    for (tool, subject) in GUARD_EXAMPLES {
        let r = Request {
            tool,
            subject,
            ..Default::default()
        };
        if let Some(rule) = guard(&r) {
            if applies(&probe, &r) && !out.iter().any(|(x, ..)| *x == rule) {
                out.push((rule, tool, subject));
            }
        }
    }
    out
}

/// Decides one request against `patterns` (deny beats approve; the never-list needs an
/// explicit override; nothing matching means ask).
pub fn decide(patterns: &[PermissionPattern], r: &Request<'_>) -> Verdict {
    let matching: Vec<&PermissionPattern> = patterns.iter().filter(|p| applies(p, r)).collect();
    if let Some(p) = matching.iter().find(|p| p.decision == "deny") {
        return Verdict {
            outcome: Outcome::Deny,
            decided_by: format!("pattern:{}", p.id),
            reason: format!("denied by pattern '{}'", p.name),
        };
    }
    let approves: Vec<&&PermissionPattern> = matching
        .iter()
        .filter(|p| p.decision == "approve")
        .collect();
    let Some(first) = approves.first() else {
        return Verdict {
            outcome: Outcome::Ask,
            decided_by: "none".into(),
            reason: "no pattern matches".into(),
        };
    };
    if let Some(rule) = guard(r) {
        return match approves.iter().find(|p| p.override_guard != 0) {
            Some(p) => Verdict {
                outcome: Outcome::Approve,
                decided_by: format!("pattern:{}", p.id),
                reason: format!(
                    "approved by pattern '{}', which explicitly overrides the never-auto-approve rule '{rule}'",
                    p.name
                ),
            },
            None => Verdict {
                outcome: Outcome::Ask,
                decided_by: format!("guard:{rule}"),
                reason: format!(
                    "pattern '{}' would approve, but '{rule}' is on the never-auto-approve list",
                    first.name
                ),
            },
        };
    }
    Verdict {
        outcome: Outcome::Approve,
        decided_by: format!("pattern:{}", first.id),
        reason: format!("approved by pattern '{}'", first.name),
    }
}

/// The subject of a Claude Code `tool_input`: the command, else the file path.
pub fn hook_subject(payload: &serde_json::Value) -> (String, String) {
    let tool = payload
        .get("tool_name")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let input = payload.get("tool_input").cloned().unwrap_or_default();
    let subject = [
        "command",
        "file_path",
        "path",
        "notebook_path",
        "url",
        "pattern",
    ]
    .iter()
    .find_map(|k| input.get(*k).and_then(|v| v.as_str()))
    .unwrap_or("")
    .to_string();
    (tool, subject)
}

/// Decides a pre-tool-use hook and audits it.
pub async fn decide_for_hook(
    state: &AppState,
    session: &SessionRow,
    payload: &serde_json::Value,
) -> Result<Verdict, AgentsError> {
    let (tool, subject) = hook_subject(payload);
    let patterns = super::permission_store::patterns(&state.db).await?;
    let workspace = payload
        .get("cwd")
        .and_then(|v| v.as_str())
        .or(session.cwd.as_deref());
    let req = Request {
        session: &session.name,
        role: session.role.as_deref(),
        tool: &tool,
        subject: &subject,
        workspace,
    };
    let v = decide(&patterns, &req);
    let now = state.clock.now_str();
    // A decided hook is an interaction that never reached the screen; "ask" shows the prompt,
    // and the pane scan records it there.
    let interaction = if v.outcome == Outcome::Ask {
        None
    } else {
        let input = payload.get("tool_input").cloned().unwrap_or_default();
        let i = super::permission_store::insert_interaction(
            &state.db,
            &super::permission_store::NewInteraction {
                node: &session.node,
                session: &session.name,
                agent: session.agent.as_deref().unwrap_or("claude"),
                tool: &tool,
                command: input.get("command").and_then(|c| c.as_str()),
                path: input.get("file_path").and_then(|c| c.as_str()),
                prompt_text: &input.to_string(),
                source: "hook",
            },
            &now,
        )
        .await?;
        let status = if v.outcome == Outcome::Approve {
            "approved"
        } else {
            "denied"
        };
        super::permission_store::decide_interaction(&state.db, i.id, status, &v.decided_by, &now)
            .await?;
        Some(i.id)
    };
    super::permission_store::audit(&state.db, interaction, &req, &v, false, &now).await?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(id: i64, tool: &str, subject: &str, decision: &str) -> PermissionPattern {
        PermissionPattern {
            id,
            name: format!("p{id}"),
            tool_regex: tool.into(),
            subject_regex: subject.into(),
            session_scope: None,
            role_scope: None,
            decision: decision.into(),
            enabled: 1,
            override_guard: 0,
            created_by: "t".into(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn req<'a>(tool: &'a str, subject: &'a str) -> Request<'a> {
        Request {
            session: "w1",
            role: Some("worker"),
            tool,
            subject,
            workspace: Some("/work/repo"),
        }
    }

    #[test]
    fn deny_beats_approve_and_nothing_matching_asks() {
        let ps = vec![
            pat(1, "Bash", "^echo ", "approve"),
            pat(2, "Bash", "secret", "deny"),
        ];
        assert_eq!(
            decide(&ps, &req("Bash", "echo hi")).outcome,
            Outcome::Approve
        );
        let v = decide(&ps, &req("Bash", "echo secret"));
        assert_eq!(
            (v.outcome, v.decided_by.as_str()),
            (Outcome::Deny, "pattern:2")
        );
        assert_eq!(decide(&ps, &req("Bash", "ls")).outcome, Outcome::Ask);
        // The tool regex matches the whole name.
        assert_eq!(decide(&ps, &req("BashX", "echo hi")).outcome, Outcome::Ask);
    }

    #[test]
    fn scopes_and_disabled_patterns() {
        let mut p = pat(1, "Bash", "", "approve");
        p.session_scope = Some("other".into());
        assert_eq!(
            decide(&[p.clone()], &req("Bash", "ls")).outcome,
            Outcome::Ask
        );
        p.session_scope = Some("w1".into());
        p.role_scope = Some("manager".into());
        assert_eq!(
            decide(&[p.clone()], &req("Bash", "ls")).outcome,
            Outcome::Ask
        );
        p.role_scope = Some("worker".into());
        assert_eq!(
            decide(&[p.clone()], &req("Bash", "ls")).outcome,
            Outcome::Approve
        );
        p.enabled = 0;
        assert_eq!(decide(&[p], &req("Bash", "ls")).outcome, Outcome::Ask);
    }

    #[test]
    fn the_never_list_needs_an_explicit_override() {
        for (tool, subject, rule) in [
            ("Bash", "rm -rf /", "rm_recursive_outside_workspace"),
            (
                "Bash",
                "rm -rf ~/projects",
                "rm_recursive_outside_workspace",
            ),
            (
                "Bash",
                "cd x && rm -r ../other",
                "rm_recursive_outside_workspace",
            ),
            (
                "Bash",
                "rm --recursive /etc",
                "rm_recursive_outside_workspace",
            ),
            ("Bash", "git push --force origin main", "force_push"),
            ("Bash", "git push -f", "force_push"),
            ("Bash", "git push origin +main", "force_push"),
            ("Write", "/work/repo/.env", "credential_files"),
            ("Read", "/home/u/.ssh/id_ed25519", "credential_files"),
            ("Bash", "cat ~/.aws/credentials", "credential_files"),
        ] {
            let all = vec![pat(1, ".*", "", "approve")];
            let v = decide(&all, &req(tool, subject));
            assert_eq!(v.outcome, Outcome::Ask, "{subject}");
            assert_eq!(v.decided_by, format!("guard:{rule}"), "{subject}");
            let mut over = all.clone();
            over[0].override_guard = 1;
            assert_eq!(decide(&over, &req(tool, subject)).outcome, Outcome::Approve);
        }
        for safe in [
            "rm -rf target",
            "rm -rf /work/repo/build",
            "rm file.txt",
            "git push origin feature/x",
            "echo hi > /tmp/agent-work/x.txt",
        ] {
            assert_eq!(guard(&req("Bash", safe)), None, "{safe}");
        }
    }

    #[test]
    fn approve_patterns_the_never_list_overrides_are_found() {
        let all = pat(1, ".*", "", "approve");
        let rules: Vec<&str> = guarded_matches(&all).iter().map(|g| g.0).collect();
        assert_eq!(
            rules,
            [
                "rm_recursive_outside_workspace",
                "force_push",
                "credential_files"
            ]
        );
        assert!(guarded_matches(&pat(2, "Bash", "^ls ", "approve")).is_empty());
        assert!(guarded_matches(&pat(3, ".*", "", "deny")).is_empty());
        let mut over = all.clone();
        over.override_guard = 1;
        assert!(guarded_matches(&over).is_empty());
        let git = pat(4, "Bash", "^git ", "approve");
        assert_eq!(guarded_matches(&git)[0].0, "force_push");
    }

    #[test]
    fn hook_payloads_give_tool_and_subject() {
        let p = serde_json::json!({"tool_name": "Bash", "tool_input": {"command": "ls -la"}});
        assert_eq!(hook_subject(&p), ("Bash".into(), "ls -la".into()));
        let p = serde_json::json!({"tool_name": "Write", "tool_input": {"file_path": "/a/b"}});
        assert_eq!(hook_subject(&p), ("Write".into(), "/a/b".into()));
    }
}
