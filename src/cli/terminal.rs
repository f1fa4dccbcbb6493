//! `architect terminal`: SPEC.md's session terminal. Interactive lines `os: <msg>` (queue a
//! prompt for the next available session), `os:5: <msg>` (priority 5), `status`, `sessions`,
//! `prompts`, `watch`, `help`, `quit`; or one-shot `--send`, `--status`, `--watch`.

use crate::agents::assigner::api::{AssignerSession, AssignerStatus, Queued};
use crate::agents::assigner::{NewPrompt, Prompt};
use crate::config::ClientConfig;
use clap::Args;
use std::collections::HashMap;
use std::io::{BufRead, Write};

#[derive(Args, Debug)]
pub struct TerminalArgs {
    #[command(flatten)]
    client: ClientConfig,
    /// Watch prompt updates only (Ctrl-C ends).
    #[arg(long, conflicts_with_all = ["send", "status"])]
    watch: bool,
    /// Send one message and exit.
    #[arg(long, value_name = "MESSAGE", conflicts_with = "status")]
    send: Option<String>,
    /// Show status and exit.
    #[arg(long)]
    status: bool,
}

/// One terminal line.
#[derive(Debug, PartialEq)]
pub enum Line {
    Send {
        priority: Option<i64>,
        message: String,
    },
    Status,
    Sessions,
    Prompts,
    Watch,
    Help,
    Quit,
    Empty,
    Unknown(String),
}

pub fn parse(line: &str) -> Line {
    let l = line.trim();
    if let Some(rest) = l.strip_prefix("os:") {
        // `os:5: msg` or `os: msg`
        if let Some((p, msg)) = rest.split_once(':') {
            if let Ok(priority) = p.trim().parse::<i64>() {
                return Line::Send {
                    priority: Some(priority),
                    message: msg.trim().to_string(),
                };
            }
        }
        return Line::Send {
            priority: None,
            message: rest.trim().to_string(),
        };
    }
    match l {
        "" => Line::Empty,
        "status" => Line::Status,
        "sessions" => Line::Sessions,
        "prompts" => Line::Prompts,
        "watch" => Line::Watch,
        "help" | "?" => Line::Help,
        "quit" | "exit" => Line::Quit,
        other => Line::Unknown(other.to_string()),
    }
}

const HELP: &str = "commands:
  os: <message>      send a prompt to the next available session
  os:5: <message>    the same with priority 5 (0-10, higher = more urgent)
  status             queue and session status
  sessions           tracked tmux sessions
  prompts            recent prompts
  watch              watch prompt updates (Ctrl-C stops)
  help               this list
  quit               leave";

pub async fn run(a: TerminalArgs) -> anyhow::Result<()> {
    let c = super::client(&a.client)?;
    if let Some(m) = a.send {
        return send(&c, None, m).await;
    }
    if a.status {
        return status(&c).await;
    }
    if a.watch {
        return watch(&c).await;
    }
    println!("architect session terminal — 'help' lists commands");
    let stdin = std::io::stdin();
    loop {
        print!("> ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            return Ok(());
        }
        let result = match parse(&line) {
            Line::Send { priority, message } => send(&c, priority, message).await,
            Line::Status => status(&c).await,
            Line::Sessions => sessions(&c).await,
            Line::Prompts => prompts(&c).await,
            Line::Watch => watch(&c).await,
            Line::Help => {
                println!("{HELP}");
                Ok(())
            }
            Line::Quit => return Ok(()),
            Line::Empty => Ok(()),
            Line::Unknown(w) => {
                println!("unknown command '{w}'; 'help' lists commands");
                Ok(())
            }
        };
        if let Err(e) = result {
            println!("error: {e:#}");
        }
    }
}

async fn send(
    c: &crate::client::Client,
    priority: Option<i64>,
    message: String,
) -> anyhow::Result<()> {
    let q: Queued = c
        .post(
            "/api/assigner/send",
            &NewPrompt {
                content: message,
                priority,
                ..Default::default()
            },
        )
        .await?;
    println!("queued prompt {}", q.prompt_id);
    Ok(())
}

async fn status(c: &crate::client::Client) -> anyhow::Result<()> {
    let st: AssignerStatus = c.get("/api/assigner/status", &[]).await?;
    let counts: Vec<String> = st.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "queue: {}",
        if counts.is_empty() {
            "empty".into()
        } else {
            counts.join(", ")
        }
    );
    for p in st.active {
        println!(
            "  #{} {} in {}: {}",
            p.id,
            p.status,
            p.assigned_session.unwrap_or_default(),
            p.content.chars().take(60).collect::<String>()
        );
    }
    sessions(c).await
}

async fn sessions(c: &crate::client::Client) -> anyhow::Result<()> {
    let ss: Vec<AssignerSession> = c.get("/api/assigner/sessions", &[]).await?;
    if ss.is_empty() {
        println!("no tracked sessions");
    }
    for s in ss {
        println!(
            "  {:<20} {:<8} {:<24} {}",
            s.session.name,
            s.session.agent.unwrap_or_default(),
            s.session.state,
            s.active_prompt
                .map(|p| format!("prompt #{p}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn prompts(c: &crate::client::Client) -> anyhow::Result<()> {
    let ps: Vec<Prompt> = c
        .get("/api/assigner/prompts", &[("limit", "20".into())])
        .await?;
    for p in ps {
        println!(
            "  #{:<5} {:<11} p{} {:<16} {}",
            p.id,
            p.status,
            p.priority,
            p.assigned_session
                .or(p.target_session)
                .unwrap_or_else(|| "auto".into()),
            p.content.chars().take(60).collect::<String>()
        );
    }
    Ok(())
}

/// Prints every status change of recent prompts until Ctrl-C.
async fn watch(c: &crate::client::Client) -> anyhow::Result<()> {
    println!("watching prompts (Ctrl-C stops)");
    let mut seen: HashMap<i64, String> = HashMap::new();
    loop {
        let ps: Vec<Prompt> = c
            .get("/api/assigner/prompts", &[("limit", "50".into())])
            .await?;
        for p in ps.into_iter().rev() {
            let st = p.status.to_string();
            if seen.get(&p.id) != Some(&st) {
                println!(
                    "#{} {} {}",
                    p.id,
                    st,
                    p.assigned_session.unwrap_or_default()
                );
                seen.insert(p.id, st);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_as_spec_md_says() {
        assert_eq!(
            parse("os: fix the bug"),
            Line::Send {
                priority: None,
                message: "fix the bug".into()
            }
        );
        assert_eq!(
            parse("os:5: urgent: now"),
            Line::Send {
                priority: Some(5),
                message: "urgent: now".into()
            }
        );
        assert_eq!(
            parse("os: note: colon"),
            Line::Send {
                priority: None,
                message: "note: colon".into()
            }
        );
        assert_eq!(parse(" status "), Line::Status);
        assert_eq!(parse("sessions"), Line::Sessions);
        assert_eq!(parse("prompts"), Line::Prompts);
        assert_eq!(parse("watch"), Line::Watch);
        assert_eq!(parse("help"), Line::Help);
        assert_eq!(parse(""), Line::Empty);
        assert_eq!(parse("rm -rf"), Line::Unknown("rm -rf".into()));
    }
}
