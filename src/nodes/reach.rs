//! How to reach a node (issue 18 item 4): the address to connect to, the SSH user and port,
//! its role, the services it runs, free tags, and the vault secret that holds its SSH password
//! or key (a `vault:NAME` reference, never the value). The agent reports the host's own
//! addresses; an admin edits the rest on the node page or with `PUT /api/nodes/{id}`; a
//! registering client (the original's `POST /api/nodes {ip_address, ssh_port, ...}`) may set
//! them too. The Termius export (`crate::termius`) is built from these.

use super::{invalid, Invalid};
use serde::{Deserialize, Serialize};

pub const MAX_ADDRESS: usize = 255;
pub const MAX_USER: usize = 64;
pub const MAX_LABEL: usize = 64;
pub const MAX_ITEMS: usize = 32;
pub const DEFAULT_SSH_PORT: i64 = 22;

/// What the API shows of a node's reach (flattened into `Node`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Reach {
    /// Host name or IP address to connect to; unset: the first reported address, else the
    /// host name (see [`Reach::connect_to`]).
    #[serde(default)]
    pub address: Option<String>,
    /// The addresses the node's agent reported (its interfaces, loopback left out).
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub ssh_user: Option<String>,
    #[serde(default)]
    pub ssh_port: Option<i64>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `vault:NAME`: the secret holding the SSH password or key. Only the name.
    #[serde(default)]
    pub ssh_secret: Option<String>,
}

impl Reach {
    /// Where to connect: the address set, else the first reported one, else `hostname`.
    pub fn connect_to<'a>(&'a self, hostname: &'a str) -> &'a str {
        self.address
            .as_deref()
            .or(self.addresses.first().map(String::as_str))
            .unwrap_or(hostname)
    }

    pub fn port(&self) -> i64 {
        self.ssh_port.unwrap_or(DEFAULT_SSH_PORT)
    }

    /// Applies a checked change: `None` keeps a value; empty text, an empty list or port 0
    /// clears it.
    pub fn apply(&mut self, c: &ReachChange) {
        fn text(slot: &mut Option<String>, v: &Option<String>) {
            if let Some(v) = v {
                *slot = (!v.is_empty()).then(|| v.clone());
            }
        }
        text(&mut self.address, &c.address);
        text(&mut self.ssh_user, &c.ssh_user);
        text(&mut self.role, &c.role);
        text(&mut self.ssh_secret, &c.ssh_secret);
        if let Some(p) = c.ssh_port {
            self.ssh_port = (p != 0).then_some(p);
        }
        for (slot, v) in [
            (&mut self.addresses, &c.addresses),
            (&mut self.services, &c.services),
            (&mut self.tags, &c.tags),
        ] {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
    }
}

/// `PUT /api/nodes/{id}` (admin), and the reach part of a registration. Every field is
/// optional: absent keeps the value; `""`, `[]` or port `0` clears it.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReachChange {
    #[serde(default, alias = "ip_address")]
    pub address: Option<String>,
    #[serde(default)]
    pub addresses: Option<Vec<String>>,
    #[serde(default)]
    pub ssh_user: Option<String>,
    #[serde(default)]
    pub ssh_port: Option<i64>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "crate::wire::one_or_many_opt")]
    pub services: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::wire::one_or_many_opt")]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub ssh_secret: Option<String>,
}

impl ReachChange {
    pub fn is_empty(&self) -> bool {
        *self == ReachChange::default()
    }

    /// Trims and checks every given field.
    pub fn validate(&mut self) -> Result<(), Invalid> {
        for v in [
            &mut self.address,
            &mut self.ssh_user,
            &mut self.role,
            &mut self.ssh_secret,
        ]
        .into_iter()
        .flatten()
        {
            *v = v.trim().to_string();
        }
        if let Some(a) = &self.address {
            if a.chars().count() > MAX_ADDRESS
                || a.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(invalid(
                    "address",
                    format!("address must be a host name or IP address of at most {MAX_ADDRESS} characters, without spaces"),
                ));
            }
        }
        if let Some(list) = &self.addresses {
            if list.len() > MAX_ITEMS || list.iter().any(|a| a.parse::<std::net::IpAddr>().is_err())
            {
                return Err(invalid(
                    "addresses",
                    format!("addresses must be at most {MAX_ITEMS} IP addresses"),
                ));
            }
        }
        if let Some(u) = &self.ssh_user {
            if u.chars().count() > MAX_USER
                || u.starts_with('-')
                || !u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(invalid(
                    "ssh_user",
                    format!("ssh_user must be at most {MAX_USER} characters of letters, digits, '.', '_', '-', not starting with '-'"),
                ));
            }
        }
        if let Some(p) = self.ssh_port {
            if !(0..=65_535).contains(&p) {
                return Err(invalid(
                    "ssh_port",
                    "ssh_port must be 1 to 65535 (0 clears it)",
                ));
            }
        }
        if let Some(r) = &self.role {
            label("role", r)?;
        }
        for (field, list) in [("services", &mut self.services), ("tags", &mut self.tags)] {
            if let Some(list) = list {
                for v in list.iter_mut() {
                    *v = v.trim().to_string();
                    if v.is_empty() {
                        return Err(invalid(field, format!("{field} must not hold empty items")));
                    }
                    label(field, v)?;
                }
                list.sort();
                list.dedup();
                if list.len() > MAX_ITEMS {
                    return Err(invalid(field, format!("at most {MAX_ITEMS} {field}")));
                }
            }
        }
        if let Some(s) = &self.ssh_secret {
            if !s.is_empty() {
                let ok = crate::vault::reference_name(s).is_some_and(|n| {
                    !n.is_empty()
                        && n.len() <= 128
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                });
                if !ok {
                    return Err(invalid(
                        "ssh_secret",
                        "ssh_secret is a vault reference, vault:NAME (the secret's name, never its value)",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn label(field: &str, v: &str) -> Result<(), Invalid> {
    if v.chars().count() > MAX_LABEL || v.chars().any(|c| c.is_control() || c == ',') {
        return Err(invalid(
            field,
            format!("{field}: each must be at most {MAX_LABEL} characters, without commas or control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_keeps_clears_and_sets() {
        let mut r = Reach {
            address: Some("10.0.0.1".into()),
            ssh_port: Some(2222),
            tags: vec!["a".into()],
            ..Default::default()
        };
        let mut c: ReachChange =
            serde_json::from_str(r#"{"ip_address": "", "ssh_port": 0, "services": "web, db"}"#)
                .unwrap();
        c.validate().unwrap();
        r.apply(&c);
        assert_eq!(r.address, None);
        assert_eq!(r.ssh_port, None);
        assert_eq!(r.port(), 22);
        assert_eq!(r.services, ["db", "web"]);
        assert_eq!(r.tags, ["a"]);
        assert_eq!(r.connect_to("h"), "h");
    }

    #[test]
    fn bad_values_name_their_field() {
        for (body, field) in [
            (r#"{"address": "a b"}"#, "address"),
            (r#"{"addresses": ["nope"]}"#, "addresses"),
            (r#"{"ssh_user": "-oProxyCommand"}"#, "ssh_user"),
            (r#"{"ssh_port": 70000}"#, "ssh_port"),
            (r#"{"tags": ["a,b"]}"#, "tags"),
            (r#"{"ssh_secret": "hunter2"}"#, "ssh_secret"),
        ] {
            let mut c: ReachChange = serde_json::from_str(body).unwrap();
            assert_eq!(c.validate().unwrap_err().field, field, "{body}");
        }
        assert!(serde_json::from_str::<ReachChange>(r#"{"colour": 1}"#).is_err());
    }
}
