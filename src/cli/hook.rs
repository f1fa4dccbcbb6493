//! `architect hook <event>`: run by the Claude Code hooks architect installs. Reads the event
//! JSON on stdin and reports it (with the session's own agent token from its environment). For
//! `pre-tool-use` it prints Claude Code's permission decision when architect made one.
//!
//! A hook must never wedge the agent: any failure is printed to stderr and the exit code is 0,
//! so Claude Code carries on as if no hook were installed.

use crate::agents::hooks::{HookAnswer, HookEvent, HookReport};
use crate::config::ClientConfig;
use clap::Args;
use std::io::Read;

/// Largest event JSON read from stdin (transcript paths and tool inputs are small).
const MAX_STDIN: u64 = 1024 * 1024;

#[derive(Args, Debug)]
pub struct HookArgs {
    #[command(flatten)]
    client: ClientConfig,
    /// user-prompt-submit, stop, notification or pre-tool-use.
    #[arg(value_parser = parse_event)]
    event: HookEvent,
    /// The session reporting (set by `architect session start`).
    #[arg(long, env = "ARCHITECT_SESSION")]
    session: String,
    /// Its node.
    #[arg(long, env = "ARCHITECT_NODE")]
    node: Option<String>,
}

fn parse_event(s: &str) -> Result<HookEvent, String> {
    s.parse()
}

pub async fn run(args: HookArgs) -> anyhow::Result<()> {
    if let Err(e) = report(&args).await {
        eprintln!("architect hook {}: {e:#}", args.event);
    }
    Ok(())
}

async fn report(args: &HookArgs) -> anyhow::Result<()> {
    let mut raw = String::new();
    std::io::stdin().take(MAX_STDIN).read_to_string(&mut raw)?;
    let payload: serde_json::Value = if raw.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&raw)?
    };
    let client = super::client(&args.client)?;
    let answer: HookAnswer = client
        .post(
            &format!("/api/agents/hooks/{}", args.event),
            &HookReport {
                session: args.session.clone(),
                node: args.node.clone(),
                payload,
            },
        )
        .await?;
    if args.event == HookEvent::PreToolUse {
        if let Some(d) = answer.decision.filter(|d| d != "ask") {
            let out = serde_json::json!({
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": d,
                    "permissionDecisionReason": answer.reason.unwrap_or_default(),
                }
            });
            println!("{out}");
        }
    }
    Ok(())
}
