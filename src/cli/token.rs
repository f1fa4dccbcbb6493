//! `architect token create`: logs in with a username and password (prompted, or from
//! ARCHITECT_PASSWORD) and creates an API token, printing it once. This is how a fresh
//! install gets its first CLI token without the dashboard.

use crate::auth::Scope;
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
    let login = crate::client::Login::new(&cfg.url, &user, &password).await?;
    let created = login
        .create_token(&name, scope.as_str(), expires_in_days)
        .await?;
    login.logout().await;
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
