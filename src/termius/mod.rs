//! The Termius export (issue 18 item 4): the fleet's nodes as hosts Termius imports — label,
//! address, port, username, grouped by role or by tag — built from how each node is reached
//! (`nodes::reach`). Two files: Termius's CSV host import (the default) and an OpenSSH
//! `ssh_config` (Termius imports that too, and so does every other SSH client).
//!
//! Secrets: none by default. A node's `ssh_secret` is a vault reference; only an admin who asks
//! for it (`?secrets=vault`) gets the values, each read through the vault's audited path, in
//! the CSV's `Password` column. `ssh_config` has no place for a secret, so it never carries one.
//! The preview (`/api/termius/preview`, the `/termius` page) shows what would be exported,
//! with the references, never the values.

pub mod api;
pub mod pages;

use crate::nodes::Node;
use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// The file the export writes.
    pub enum Format ("export format") {
        /// Termius's CSV host import: `Groups,Label,Tags,Hostname/IP,Protocol,Port,Username,Password`.
        Csv = "csv",
        /// OpenSSH client configuration (`Host` blocks).
        SshConfig = "ssh_config",
    }
}

crate::text_enum! {
    /// What a host's Termius group is.
    pub enum GroupBy ("group by") {
        /// The node's role (hosts without one: `ungrouped`).
        Role = "role",
        /// The node's first tag, in order (hosts without tags: `ungrouped`).
        Tag = "tag",
    }
}

/// The group of hosts that have neither a role nor a tag to group by.
pub const UNGROUPED: &str = "ungrouped";

/// `GET /api/termius/export` and `/preview`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default)]
    pub group_by: Option<GroupBy>,
    /// Only nodes with this role.
    #[serde(default)]
    pub role: Option<String>,
    /// Only nodes with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// `vault`: put each node's SSH secret (its `ssh_secret` reference, resolved) in the
    /// file. Admins only; CSV only.
    #[serde(default)]
    pub secrets: Option<String>,
}

impl ExportQuery {
    /// Whether the caller asked for secret values; anything but `vault` is refused.
    pub fn wants_secrets(&self) -> Result<bool, Invalid> {
        match self.secrets.as_deref() {
            None | Some("") | Some("none") => Ok(false),
            Some("vault") => {
                if self.format.unwrap_or(Format::Csv) == Format::SshConfig {
                    return Err(invalid(
                        "secrets",
                        "ssh_config has no place for a secret; ask for format=csv",
                    ));
                }
                Ok(true)
            }
            Some(_) => Err(invalid(
                "secrets",
                "secrets=vault puts the nodes' vault-held SSH secrets in the file (admins only); leave it out for none",
            )),
        }
    }
}

/// One host as exported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Host {
    pub node_id: i64,
    pub label: String,
    pub address: String,
    pub port: i64,
    pub username: Option<String>,
    pub group: String,
    pub tags: Vec<String>,
    pub role: Option<String>,
    /// The vault reference of its SSH secret (`vault:NAME`), never the value.
    pub secret: Option<String>,
}

/// What `/api/termius/preview` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preview {
    pub format: Format,
    pub group_by: GroupBy,
    pub hosts: Vec<Host>,
    /// Group names, sorted, each with its host count.
    pub groups: Vec<(String, usize)>,
    /// Hosts whose `ssh_secret` an admin could export with `secrets=vault`.
    pub with_secret: usize,
}

/// The hosts to export, in group then label order.
pub fn hosts(nodes: Vec<Node>, q: &ExportQuery) -> Vec<Host> {
    let by = q.group_by.unwrap_or(GroupBy::Role);
    let mut out: Vec<Host> = nodes
        .into_iter()
        .filter(|n| {
            q.role
                .as_deref()
                .is_none_or(|r| n.reach.role.as_deref() == Some(r))
                && q.tag
                    .as_deref()
                    .is_none_or(|t| n.reach.tags.iter().any(|x| x == t))
        })
        .map(|n| {
            let group = match by {
                GroupBy::Role => n.reach.role.clone(),
                GroupBy::Tag => n.reach.tags.first().cloned(),
            }
            .unwrap_or_else(|| UNGROUPED.to_string());
            Host {
                node_id: n.id,
                address: n.reach.connect_to(&n.hostname).to_string(),
                port: n.reach.port(),
                username: n.reach.ssh_user.clone(),
                group,
                tags: n.reach.tags.clone(),
                role: n.reach.role.clone(),
                secret: n.reach.ssh_secret.clone(),
                label: n.name,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.group, &a.label).cmp(&(&b.group, &b.label)));
    out
}

/// The preview of these hosts (already filtered and sorted by [`hosts`]).
pub fn preview_of(hosts: Vec<Host>, q: &ExportQuery) -> Preview {
    let mut groups: Vec<(String, usize)> = Vec::new();
    for h in &hosts {
        match groups.last_mut() {
            Some((g, n)) if *g == h.group => *n += 1,
            _ => groups.push((h.group.clone(), 1)),
        }
    }
    Preview {
        format: q.format.unwrap_or(Format::Csv),
        group_by: q.group_by.unwrap_or(GroupBy::Role),
        with_secret: hosts.iter().filter(|h| h.secret.is_some()).count(),
        hosts,
        groups,
    }
}

/// Every node, as the export sees it (a fleet is hundreds of nodes, not millions: one read).
pub async fn load(
    state: &crate::app::AppState,
    q: &ExportQuery,
) -> Result<Vec<Host>, crate::nodes::actions::NodeError> {
    let nodes = crate::nodes::actions::list_nodes(&state.nodes_state(), MAX_HOSTS, 0).await?;
    Ok(hosts(nodes, q))
}

/// The most nodes one export holds.
pub const MAX_HOSTS: i64 = 10_000;

/// Each host's SSH secret value (`None`: the node names no secret), read through the vault's
/// audited path as `by` (one `resolve` audit row per secret). Only for an admin who asked.
pub async fn resolve_secrets(
    state: &crate::app::AppState,
    by: &crate::vault::actions::Actor<'_>,
    hosts: &[Host],
) -> Result<Vec<Option<String>>, crate::vault::VaultError> {
    let vault = state.vault_state();
    let mut out = Vec::with_capacity(hosts.len());
    for h in hosts {
        let value = match h.secret.as_deref().and_then(crate::vault::reference_name) {
            Some(name) => Some(
                crate::vault::reads::resolve_name(&vault, by, name)
                    .await
                    .map_err(|e| match e {
                        crate::vault::VaultError::NotFound(_)
                        | crate::vault::VaultError::Deleted(_) => {
                            crate::vault::VaultError::Invalid(invalid(
                                "secrets",
                                format!(
                                    "node '{}' names vault:{name}, which is not a live secret",
                                    h.label
                                ),
                            ))
                        }
                        other => other,
                    })?
                    .expose()
                    .to_string(),
            ),
            None => None,
        };
        out.push(value);
    }
    Ok(out)
}

pub const CSV_HEADER: &str = "Groups,Label,Tags,Hostname/IP,Protocol,Port,Username,Password";

/// One CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// Termius's CSV. `secrets[i]` is host i's password when the caller was given secrets.
pub fn csv(hosts: &[Host], secrets: Option<&[Option<String>]>) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for (i, h) in hosts.iter().enumerate() {
        let password = secrets
            .and_then(|s| s.get(i).cloned().flatten())
            .unwrap_or_default();
        let row = [
            h.group.clone(),
            h.label.clone(),
            h.tags.join(","),
            h.address.clone(),
            "ssh".to_string(),
            h.port.to_string(),
            h.username.clone().unwrap_or_default(),
            password,
        ];
        let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// OpenSSH client configuration: a `Host` block per node, the group as a comment. Labels are
/// node names and addresses have no spaces (both checked on the way in), so nothing here
/// needs quoting.
pub fn ssh_config(hosts: &[Host]) -> String {
    let mut out = String::from(
        "# architect: the fleet's nodes (GET /api/termius/export?format=ssh_config)\n",
    );
    for h in hosts {
        out.push_str(&format!(
            "\n# group: {}\nHost {}\n    HostName {}\n    Port {}\n",
            h.group.replace(['\n', '\r'], " "),
            h.label,
            h.address,
            h.port
        ));
        if let Some(u) = &h.username {
            out.push_str(&format!("    User {u}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(label: &str, group: &str, tags: &[&str]) -> Host {
        Host {
            node_id: 1,
            label: label.into(),
            address: "10.0.0.1".into(),
            port: 22,
            username: Some("ops".into()),
            group: group.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            role: None,
            secret: None,
        }
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let hs = [host("a", "db, eu", &["x", "y"]), host("b", "web", &[])];
        let text = csv(&hs, Some(&[Some("p\"w".into()), None]));
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(
            lines[1],
            "\"db, eu\",a,\"x,y\",10.0.0.1,ssh,22,ops,\"p\"\"w\""
        );
        assert_eq!(lines[2], "web,b,,10.0.0.1,ssh,22,ops,");
    }

    #[test]
    fn secrets_need_csv_and_the_word_vault() {
        let q = ExportQuery {
            secrets: Some("vault".into()),
            ..Default::default()
        };
        assert!(q.wants_secrets().unwrap());
        let q = ExportQuery {
            secrets: Some("yes".into()),
            ..Default::default()
        };
        assert_eq!(q.wants_secrets().unwrap_err().field, "secrets");
        let q = ExportQuery {
            secrets: Some("vault".into()),
            format: Some(Format::SshConfig),
            ..Default::default()
        };
        assert_eq!(q.wants_secrets().unwrap_err().field, "secrets");
    }
}
