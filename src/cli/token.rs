//! `architect token create`: logs in with a username and password (prompted, or from
//! ARCHITECT_PASSWORD) and creates an API token, printing it once. This is how a fresh
//! install gets its first CLI token without the dashboard.

use crate::auth::{CreatedToken, Scope};
use crate::config::ClientConfig;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token for USER (asks for the password unless ARCHITECT_PASSWORD is set).
    Create {
        /// A name that says where the token is used.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "admin")]
        scope: Scope,
        /// The account to log in as.
        #[arg(long, env = "ARCHITECT_USER", default_value = "architect")]
        user: String,
        /// Days until the token expires (default: never).
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
}

pub async fn run(cfg: &ClientConfig, cmd: TokenCmd) -> anyhow::Result<()> {
    let TokenCmd::Create {
        name,
        scope,
        user,
        expires_in_days,
    } = cmd;
    let password = match std::env::var("ARCHITECT_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => rpassword::prompt_password(format!("Password for {user}: "))?,
    };
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let base = cfg.url.trim_end_matches('/');
    let login = http
        .post(format!("{base}/login"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(crate::client::unreachable(base, &e)))?;
    let status = login.status();
    let body: serde_json::Value = login.json().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!(
            "login failed: {}",
            body["error"].as_str().unwrap_or("unknown error")
        );
    }
    let csrf = body["csrf_token"].as_str().unwrap_or_default().to_string();
    let resp = http
        .post(format!("{base}/api/tokens"))
        .header("X-CSRF-Token", &csrf)
        .json(
            &serde_json::json!({"name": name, "scope": scope, "expires_in_days": expires_in_days}),
        )
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        anyhow::bail!(
            "creating the token failed: {}",
            body["error"].as_str().unwrap_or("unknown error")
        );
    }
    let created: CreatedToken = resp.json().await?;
    // End the login session now rather than leaving it to time out.
    let _ = http
        .post(format!("{base}/logout"))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await;
    if cfg.json {
        println!("{}", serde_json::to_string_pretty(&created)?);
    } else {
        eprintln!(
            "Token '{}' ({} scope) created. It is shown only now:",
            created.info.name, created.info.scope
        );
        println!("{}", created.token);
    }
    Ok(())
}
