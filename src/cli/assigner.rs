//! `architect assigner`: the prompt queue from the command line (SPEC.md "Assigner Worker").
//! The dispatcher itself runs inside `architect serve`; `--daemon` and `--stop` say so.

use super::output;
use crate::agents::assigner::api::{AssignerSession, AssignerStatus, Count, PromptDetail, Queued};
use crate::agents::assigner::{NewPrompt, Prompt};
use crate::config::ClientConfig;
use clap::Args;

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("action").multiple(false))]
pub struct AssignerArgs {
    #[command(flatten)]
    pub client: ClientConfig,
    /// Queue a prompt for assignment.
    #[arg(long, value_name = "PROMPT", group = "action")]
    pub send: Option<String>,
    /// Priority 0-10 (higher = more urgent).
    #[arg(long, requires = "send")]
    pub priority: Option<i64>,
    /// Route the prompt to this session.
    #[arg(long, requires = "send")]
    pub target: Option<String>,
    /// Route to sessions of this role (high_level, manager, worker).
    #[arg(long, requires = "send")]
    pub role: Option<String>,
    /// Route to sessions of this group.
    #[arg(long, requires = "send")]
    pub group: Option<String>,
    /// Timeout in minutes (default 30).
    #[arg(long, requires = "send")]
    pub timeout: Option<i64>,
    /// The prompt this one is delegated from (default: the sending session's active prompt).
    #[arg(long, requires = "send")]
    pub parent: Option<i64>,
    /// Show one prompt with the prompts delegated from it.
    #[arg(long, value_name = "ID", group = "action")]
    pub show: Option<i64>,
    /// Retry a failed prompt.
    #[arg(long, value_name = "ID", group = "action")]
    pub retry: Option<i64>,
    /// Retry all failed prompts (up to max_retries).
    #[arg(long, group = "action")]
    pub retry_all: bool,
    /// Reassign a prompt to pending.
    #[arg(long, value_name = "ID", group = "action")]
    pub reassign: Option<i64>,
    /// Target session for --reassign.
    #[arg(long, requires = "reassign")]
    pub to: Option<String>,
    /// Cancel a prompt.
    #[arg(long, value_name = "ID", group = "action")]
    pub cancel: Option<i64>,
    /// Delete completed and cancelled prompts.
    #[arg(long, group = "action")]
    pub clear: bool,
    /// With --clear: only prompts older than N days.
    #[arg(long, requires = "clear")]
    pub days: Option<i64>,
    /// List tracked sessions.
    #[arg(long, group = "action")]
    pub sessions: bool,
    /// List recent prompts.
    #[arg(long, group = "action")]
    pub prompts: bool,
    /// Queue counts and active assignments.
    #[arg(long, group = "action")]
    pub status: bool,
    /// The dispatcher runs inside `architect serve`; explains that and exits.
    #[arg(long, group = "action")]
    pub daemon: bool,
    /// The dispatcher runs inside `architect serve`; explains that and exits.
    #[arg(long, group = "action")]
    pub stop: bool,
}

fn prompt_rows(ps: &[Prompt]) -> Vec<Vec<String>> {
    ps.iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                p.status.to_string(),
                p.priority.to_string(),
                p.assigned_session
                    .clone()
                    .or_else(|| p.target_session.clone())
                    .unwrap_or_else(|| "auto".into()),
                p.retries.to_string(),
                p.content.clone(),
            ]
        })
        .collect()
}

const PROMPT_HEADERS: &[&str] = &["id", "status", "prio", "session", "retries", "content"];

pub async fn run(a: AssignerArgs) -> anyhow::Result<()> {
    if a.daemon || a.stop {
        println!(
            "the assigner's dispatcher runs inside `architect serve` (on unless ARCHITECT_ASSIGNER=false); there is no separate daemon to {}",
            if a.daemon { "start" } else { "stop" }
        );
        return Ok(());
    }
    let c = super::client(&a.client)?;
    let json = a.client.json;
    if let Some(content) = a.send {
        let q: Queued = c
            .post(
                "/api/assigner/send",
                &NewPrompt {
                    content,
                    priority: a.priority,
                    target_session: a.target,
                    target_role: a.role,
                    target_group: a.group,
                    timeout_minutes: a.timeout,
                    parent_id: a.parent,
                    // A manager session delegating: its active prompt becomes the parent.
                    from_session: std::env::var("ARCHITECT_SESSION")
                        .ok()
                        .filter(|s| !s.is_empty()),
                    ..Default::default()
                },
            )
            .await?;
        return if json {
            output::json(&q)
        } else {
            println!("queued prompt {}", q.prompt_id);
            Ok(())
        };
    }
    if let Some(id) = a.show {
        let d: PromptDetail = c.get(&format!("/api/assigner/prompts/{id}"), &[]).await?;
        if json {
            return output::json(&d);
        }
        output::table(PROMPT_HEADERS, prompt_rows(std::slice::from_ref(&d.prompt)));
        if let Some(r) = &d.prompt.response {
            println!("\n--- response ---\n{r}");
        }
        if !d.children.is_empty() {
            println!("\n--- delegated ---");
            output::table(PROMPT_HEADERS, prompt_rows(&d.children));
        }
        return Ok(());
    }
    let changed: Option<Prompt> = if let Some(id) = a.retry {
        Some(
            c.post(
                &format!("/api/assigner/prompts/{id}/retry"),
                &serde_json::json!({}),
            )
            .await?,
        )
    } else if let Some(id) = a.reassign {
        Some(
            c.post(
                &format!("/api/assigner/prompts/{id}/reassign"),
                &serde_json::json!({"to": a.to}),
            )
            .await?,
        )
    } else if let Some(id) = a.cancel {
        Some(c.delete(&format!("/api/assigner/prompts/{id}")).await?)
    } else {
        None
    };
    if let Some(p) = changed {
        return if json {
            output::json(&p)
        } else {
            println!("prompt {} is now {}", p.id, p.status);
            Ok(())
        };
    }
    if a.retry_all || a.clear {
        let n: Count = if a.retry_all {
            c.post("/api/assigner/retry-all", &serde_json::json!({}))
                .await?
        } else {
            c.post("/api/assigner/clear", &serde_json::json!({"days": a.days}))
                .await?
        };
        return if json {
            output::json(&n)
        } else {
            println!(
                "{} prompt(s) {}",
                n.count,
                if a.retry_all { "re-queued" } else { "deleted" }
            );
            Ok(())
        };
    }
    if a.sessions {
        let ss: Vec<AssignerSession> = c.get("/api/assigner/sessions", &[]).await?;
        if json {
            return output::json(&ss);
        }
        let rows = ss
            .iter()
            .map(|s| {
                vec![
                    s.session.name.clone(),
                    s.session.node.clone(),
                    s.session.agent.clone().unwrap_or_default(),
                    s.session.state.clone(),
                    s.session.role.clone().unwrap_or_default(),
                    s.active_prompt.map(|p| p.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        output::table(
            &["session", "node", "agent", "state", "role", "prompt"],
            rows,
        );
        return Ok(());
    }
    if a.prompts {
        let ps: Vec<Prompt> = c
            .get("/api/assigner/prompts", &[("limit", "50".into())])
            .await?;
        return if json {
            output::json(&ps)
        } else {
            output::table(PROMPT_HEADERS, prompt_rows(&ps));
            Ok(())
        };
    }
    // --status, and the default.
    let st: AssignerStatus = c.get("/api/assigner/status", &[]).await?;
    if json {
        return output::json(&st);
    }
    let counts: Vec<String> = st.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "dispatcher: {} · queue: {}",
        if st.dispatcher {
            "running in serve"
        } else {
            "off"
        },
        if counts.is_empty() {
            "empty".to_string()
        } else {
            counts.join(", ")
        }
    );
    if !st.active.is_empty() {
        output::table(PROMPT_HEADERS, prompt_rows(&st.active));
    }
    Ok(())
}
