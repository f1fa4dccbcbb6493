//! `architect secrets` and `architect vault`: the vault from the terminal, over the API with a
//! token. A value is never taken from the command line (it would sit in shell history and the
//! process list): `set` reads it from stdin when piped, else from a hidden prompt. `get`
//! prints only the value on stdout, so it can be piped.

use super::{client, output};
use crate::config::ClientConfig;
use crate::vault::*;
use clap::Subcommand;
use std::io::{IsTerminal, Read, Write};

#[derive(Subcommand, Debug)]
pub enum SecretsCmd {
    /// List secrets: names, categories, versions and view counts (never values).
    List {
        #[arg(long)]
        category: Option<SecretCategory>,
        /// Text to search for in names and descriptions.
        #[arg(long)]
        q: Option<String>,
        /// Include deleted secrets.
        #[arg(long)]
        deleted: bool,
        /// Most rows to show.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Print a secret's value (counted and audited). No trailing newline when piped.
    #[command(disable_version_flag = true)]
    Get {
        name: String,
        /// An earlier version instead of the current one.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Create a secret, or store a new version of it. The value comes from stdin when piped,
    /// otherwise from a hidden prompt; never from the command line.
    Set {
        name: String,
        #[arg(long)]
        category: Option<SecretCategory>,
        #[arg(long)]
        description: Option<String>,
        /// Keep a trailing newline read from stdin (by default one is dropped, as `echo` adds it).
        #[arg(long)]
        keep_newline: bool,
    },
    /// Delete a secret (admin). It can be restored until purged; --purge destroys every version.
    Rm {
        name: String,
        #[arg(long)]
        purge: bool,
    },
    /// List a secret's versions; --restore N makes version N's value current again.
    Versions {
        name: String,
        #[arg(long)]
        restore: Option<i64>,
    },
    /// Show a secret's audit trail: who created, viewed, changed it, from where.
    Audit {
        name: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum VaultCmd {
    /// Whether the vault is open or sealed (and why), the key source and the active key id.
    Status,
    /// Re-wrap every data key under a new master key (admin token). Back up the new key file.
    RotateKey,
}

fn secret_rows(ss: &[SecretInfo]) -> Vec<Vec<String>> {
    ss.iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.category.to_string(),
                s.current_version.to_string(),
                s.access_count.to_string(),
                s.last_accessed.clone().unwrap_or_else(|| "never".into()),
                if s.deleted {
                    "deleted".into()
                } else {
                    String::new()
                },
                s.description.clone(),
            ]
        })
        .collect()
}

/// The value for `set`: all of stdin when piped, else a hidden prompt.
fn read_value(name: &str, keep_newline: bool) -> anyhow::Result<SecretValue> {
    let mut text = String::new();
    if std::io::stdin().is_terminal() {
        text = rpassword::prompt_password(format!("Value for {name} (hidden): "))?;
    } else {
        std::io::stdin().read_to_string(&mut text)?;
        if !keep_newline {
            if text.ends_with("\r\n") {
                text.truncate(text.len() - 2);
            } else if text.ends_with('\n') {
                text.truncate(text.len() - 1);
            }
        }
    }
    let value = SecretValue::new(text);
    if value.is_empty() {
        anyhow::bail!("no value given: pipe it on stdin (e.g. `pass show x | architect secrets set {name}`) or type it at the prompt");
    }
    Ok(value)
}

pub async fn secrets(cfg: &ClientConfig, cmd: SecretsCmd) -> anyhow::Result<()> {
    let c = client(cfg)?;
    match cmd {
        SecretsCmd::List {
            category,
            q,
            deleted,
            limit,
        } => {
            let f = SecretFilter {
                category,
                q,
                name: None,
                include_deleted: Some(deleted),
            };
            let ss = c.secrets(&f, limit).await?;
            if cfg.json {
                return output::json(&ss);
            }
            output::table(
                &[
                    "name",
                    "category",
                    "version",
                    "views",
                    "last viewed",
                    "",
                    "description",
                ],
                secret_rows(&ss),
            );
        }
        SecretsCmd::Get { name, version } => {
            let s = c.secret_by_name(&name, false).await?;
            let view = c.reveal_secret(s.id, version).await?;
            if cfg.json {
                return output::json(&view);
            }
            let mut out = std::io::stdout().lock();
            out.write_all(view.value.expose().as_bytes())?;
            if out.is_terminal() {
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        SecretsCmd::Set {
            name,
            category,
            description,
            keep_newline,
        } => {
            let existing = match c.secret_by_name(&name, false).await {
                Ok(s) => Some(s),
                Err(e) if e.status() == Some(404) => None,
                Err(e) => return Err(e.into()),
            };
            let value = read_value(&name, keep_newline)?;
            let info = match existing {
                Some(s) => {
                    let patch = SecretPatch {
                        value: Some(value),
                        category,
                        description,
                        ..Default::default()
                    };
                    c.update_secret(s.id, &patch).await?
                }
                None => {
                    let new = NewSecret {
                        name,
                        value,
                        category,
                        description,
                    };
                    c.create_secret(&new).await?
                }
            };
            if cfg.json {
                return output::json(&info);
            }
            println!(
                "Stored {} version {} ({}).",
                info.name, info.current_version, info.category
            );
        }
        SecretsCmd::Rm { name, purge } => {
            let s = c.secret_by_name(&name, purge).await?;
            let mut info = if s.deleted {
                s
            } else {
                c.delete_secret(s.id).await?
            };
            if purge {
                info = c.purge_secret(info.id).await?;
            }
            if cfg.json {
                return output::json(&info);
            }
            if purge {
                println!("Purged {}: every version is destroyed.", info.name);
            } else {
                println!(
                    "Deleted {} (an admin can restore it; `architect secrets rm {} --purge` destroys it).",
                    info.name, info.name
                );
            }
        }
        SecretsCmd::Versions { name, restore } => {
            let s = c.secret_by_name(&name, false).await?;
            if let Some(v) = restore {
                let info = c.restore_secret_version(s.id, v).await?;
                eprintln!("Version {v} restored as version {}.", info.current_version);
            }
            let vs = c.secret_versions(s.id).await?;
            if cfg.json {
                return output::json(&vs);
            }
            output::table(
                &[
                    "version",
                    "current",
                    "created",
                    "by",
                    "restored from",
                    "key id",
                ],
                vs.iter()
                    .map(|v| {
                        vec![
                            v.version.to_string(),
                            if v.current {
                                "yes".into()
                            } else {
                                String::new()
                            },
                            v.created_at.clone(),
                            v.created_by.clone(),
                            v.restored_from.map(|r| r.to_string()).unwrap_or_default(),
                            v.master_key_id.clone(),
                        ]
                    })
                    .collect(),
            );
        }
        SecretsCmd::Audit { name, limit } => {
            let s = c.secret_by_name(&name, true).await?;
            let entries = c.secret_audit(s.id, limit).await?;
            if cfg.json {
                return output::json(&entries);
            }
            output::table(
                &["when", "action", "version", "who", "from"],
                entries
                    .iter()
                    .map(|a| {
                        vec![
                            a.created_at.clone(),
                            a.action.to_string(),
                            a.version.map(|v| v.to_string()).unwrap_or_default(),
                            a.actor.clone(),
                            a.client_addr.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
            );
        }
    }
    Ok(())
}

pub async fn vault(cfg: &ClientConfig, cmd: VaultCmd) -> anyhow::Result<()> {
    let c = client(cfg)?;
    match cmd {
        VaultCmd::Status => {
            let s = c.vault_status().await?;
            if cfg.json {
                return output::json(&s);
            }
            match &s.reason {
                Some(r) => println!("Vault: SEALED — {r}"),
                None => println!("Vault: open"),
            }
            println!(
                "Key source: {}{}",
                s.key_source,
                s.key_file
                    .as_deref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            );
            println!(
                "Active key id: {}",
                s.active_key_id.as_deref().unwrap_or("-")
            );
            println!(
                "Last rotated: {}",
                s.rotated_at.as_deref().unwrap_or("never")
            );
            println!("Secrets: {}, versions: {}", s.secrets, s.versions);
        }
        VaultCmd::RotateKey => {
            let r = c.rotate_master_key().await?;
            if cfg.json {
                return output::json(&r);
            }
            println!(
                "Rotated: {} data key(s) re-wrapped from {} to {} in {} ms. Back up the new key file now.",
                r.rewrapped,
                if r.old_key_ids.is_empty() {
                    "-".to_string()
                } else {
                    r.old_key_ids.join(", ")
                },
                r.new_key_id,
                r.duration_ms
            );
        }
    }
    Ok(())
}
