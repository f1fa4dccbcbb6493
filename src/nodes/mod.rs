//! Cluster nodes: registration, heartbeats with metrics, online/stale/offline, metric history,
//! the node command channel, and the in-process agent of `serve`. Issue 3.
//!
//! The rules:
//! * A node's state is computed on every read from its heartbeat age and its agent's interval
//!   ([`NodeStatus::at`]); the age counts from the later of the last heartbeat and this
//!   server's start, so restarting the dashboard never turns a live fleet "offline".
//! * A node is bound to the API token that registered it (or that the "Add node" flow created
//!   for it): only that token may heartbeat for it, poll its commands and answer them.
//! * Commands go `pending → delivered → succeeded | failed`, or `timed_out` once past their
//!   deadline ([`CommandStatus::next`]); a claim moves a command out of `pending` exactly once,
//!   so no command is delivered twice.
//!
//! Files: `store.rs` SQL; `actions/` the operations (`commands.rs`: the command channel and
//! [`actions::run_command`], its Rust entry point for other domains); `runtime.rs` the
//! in-process runtime and the loops; `retention.rs` roll-up and pruning of metric history;
//! `history.rs` chart series; `api.rs` / `pages.rs` HTTP; and the agent side shared by
//! `architect agent` and `serve`'s own node: `agent.rs` (register, heartbeat, command loop,
//! backoff), `transport.rs` (HTTP or in-process), `sampler.rs` (sysinfo), `handlers.rs` (the
//! command registry with `ping`, `collect-metrics`, `tmux-list`).

pub mod actions;
pub mod agent;
pub mod api;
pub mod config;
pub mod handlers;
pub mod history;
pub mod pages;
pub mod reach;
pub mod retention;
mod runtime;
pub mod sampler;
pub mod store;
pub mod transport;

pub use config::NodesConfig;

pub use runtime::*;

use crate::app::AppState;
pub use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

crate::text_enum! {
    /// A node's state, computed from its heartbeat age on every read (never stored).
    pub enum NodeStatus ("node status") {
        /// Heard from within one and a half heartbeat intervals.
        Online = "online",
        /// Missed about one heartbeat.
        Stale = "stale",
        /// Missed three heartbeats.
        Offline = "offline",
        /// Registered (or added on the dashboard) but no heartbeat yet.
        Waiting = "waiting",
    }
}

/// Heartbeats a node may miss before it is `stale` / `offline`, counted with half an interval
/// of slack so a heartbeat that arrives a little late does not flap the state.
pub const STALE_AFTER_BEATS: f64 = 1.5;
pub const OFFLINE_AFTER_BEATS: f64 = 3.5;

impl NodeStatus {
    /// The state of a node last heard from at `last`, by a server that started at `started`:
    /// the age counts from the later of the two (the grace period after a restart).
    pub fn at(
        last: Option<OffsetDateTime>,
        started: OffsetDateTime,
        now: OffsetDateTime,
        interval_s: i64,
    ) -> (NodeStatus, Option<i64>) {
        let Some(last) = last else {
            return (NodeStatus::Waiting, None);
        };
        let age = (now - last.max(started)).as_seconds_f64().max(0.0);
        let i = interval_s.max(1) as f64;
        let status = if age > OFFLINE_AFTER_BEATS * i {
            NodeStatus::Offline
        } else if age > STALE_AFTER_BEATS * i {
            NodeStatus::Stale
        } else {
            NodeStatus::Online
        };
        // The age shown is the real one: how long since this node was last heard from.
        let shown = (now - last).whole_seconds().max(0);
        (status, Some(shown))
    }
}

crate::text_enum! {
    /// Where a command is. See [`CommandStatus::next`].
    pub enum CommandStatus ("command status") {
        /// Queued; the node's agent has not picked it up.
        Pending = "pending",
        /// Handed to the agent (exactly once); waiting for its answer.
        Delivered = "delivered",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Not answered before its deadline (the agent was gone, slow or never polled).
        TimedOut = "timed_out",
    }
}

impl CommandStatus {
    /// Every move a command may make. Nothing goes back to `pending`: a delivered command that
    /// is never answered times out instead of being silently handed out again.
    pub fn next(self) -> &'static [CommandStatus] {
        use CommandStatus::*;
        match self {
            Pending => &[Delivered, TimedOut],
            Delivered => &[Succeeded, Failed, TimedOut],
            Succeeded | Failed | TimedOut => &[],
        }
    }

    pub fn is_final(self) -> bool {
        self.next().is_empty()
    }
}

// ---- limits ----

pub const MAX_NAME: usize = 64;
pub const MAX_HOSTNAME: usize = 255;
pub const MAX_TEXT: usize = 128;
pub const MAX_DISKS: usize = 64;
pub const MAX_MOUNT: usize = 512;
/// Byte counts above this are nonsense (an exbibyte) and would not fit SQL integers anyway.
pub const MAX_BYTES: u64 = 1 << 60;
pub const MIN_INTERVAL_S: i64 = 1;
pub const MAX_INTERVAL_S: i64 = 3600;
pub const MAX_COMMAND: usize = 64;
pub const MAX_ARGS_BYTES: usize = 64 * 1024;
pub const MAX_RESULT_BYTES: usize = 256 * 1024;
pub const MAX_ERROR: usize = 4_000;
pub const DEFAULT_TIMEOUT_S: i64 = 30;
pub const MAX_TIMEOUT_S: i64 = 3600;
/// Longest long-poll (commands, results) a request may ask for; proxies commonly cut idle
/// requests at 60 s.
pub const MAX_WAIT_S: f64 = 50.0;
/// Commands handed to an agent per poll.
pub const MAX_CLAIM: i64 = 20;

// ---- types ----

/// One mounted filesystem's usage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiskUsage {
    pub mount: String,
    pub used: u64,
    pub total: u64,
}

/// What a heartbeat reports (`POST /api/nodes/{id}/heartbeat`); also the latest metrics shown
/// for a node. Bytes are bytes; `cpu_percent` is the whole machine's, 0–100.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct NodeMetrics {
    #[serde(alias = "cpu_usage")]
    pub cpu_percent: f64,
    #[serde(default)]
    pub cpu_count: Option<u32>,
    #[serde(default)]
    pub memory_used: u64,
    #[serde(default)]
    pub memory_total: u64,
    /// The original's heartbeat: memory use as a percentage, no byte counts. Converted by
    /// [`NodeMetrics::take_percentages`] before anything is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_usage: Option<f64>,
    /// The original's heartbeat: disk use as a percentage (one figure for the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_usage: Option<f64>,
    #[serde(default)]
    pub disks: Vec<DiskUsage>,
    /// 1, 5 and 15 minute load averages.
    #[serde(default)]
    pub load_avg: [f64; 3],
    #[serde(default)]
    pub uptime_s: u64,
    #[serde(default)]
    pub process_count: u64,
    /// The architect version the agent runs.
    #[serde(default)]
    pub version: Option<String>,
    /// The agent's heartbeat interval, seconds (sets when this node counts as stale/offline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<i64>,
}

/// A percentage-only heartbeat (the original's `memory_usage`, `disk_usage`) is stored as
/// used / total out of this many units (hundredths of a percent): the ratio, which is all the
/// dashboard and the history compute from, is kept; the byte figures are not known.
pub const PERCENT_UNITS: u64 = 10_000;

impl NodeMetrics {
    /// Turns the original's percentage fields into architect's used/total pairs (see
    /// [`PERCENT_UNITS`]); byte counts sent as well win.
    pub fn take_percentages(&mut self) -> Result<(), Invalid> {
        let units = |field: &str, p: f64| -> Result<u64, Invalid> {
            if !p.is_finite() || !(0.0..=100.0).contains(&p) {
                return Err(invalid(
                    field,
                    format!("{field} must be a percentage, 0 to 100"),
                ));
            }
            Ok((p * (PERCENT_UNITS as f64) / 100.0).round() as u64)
        };
        if let Some(p) = self.memory_usage.take() {
            let used = units("memory_usage", p)?;
            if self.memory_total == 0 {
                self.memory_used = used;
                self.memory_total = PERCENT_UNITS;
            }
        }
        if let Some(p) = self.disk_usage.take() {
            let used = units("disk_usage", p)?;
            if self.disks.is_empty() {
                self.disks.push(DiskUsage {
                    mount: "/".into(),
                    used,
                    total: PERCENT_UNITS,
                });
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if !self.cpu_percent.is_finite() || !(0.0..=100.0).contains(&self.cpu_percent) {
            return Err(invalid(
                "cpu_percent",
                "cpu_percent must be between 0 and 100",
            ));
        }
        if let Some(n) = self.cpu_count {
            if n == 0 || n > 65_536 {
                return Err(invalid("cpu_count", "cpu_count must be 1 to 65536"));
            }
        }
        if self.memory_total > MAX_BYTES || self.memory_used > self.memory_total {
            return Err(invalid(
                "memory_used",
                "memory_used must not exceed memory_total (bytes, at most 2^60)",
            ));
        }
        if self.disks.len() > MAX_DISKS {
            return Err(invalid(
                "disks",
                format!("at most {MAX_DISKS} disks per heartbeat"),
            ));
        }
        for d in &self.disks {
            if d.mount.is_empty() || d.mount.chars().count() > MAX_MOUNT {
                return Err(invalid(
                    "disks",
                    format!("a disk mount must be 1 to {MAX_MOUNT} characters"),
                ));
            }
            if d.total > MAX_BYTES || d.used > d.total {
                return Err(invalid(
                    "disks",
                    format!("disk '{}': used must not exceed total", d.mount),
                ));
            }
        }
        if self.load_avg.iter().any(|l| !l.is_finite() || *l < 0.0) {
            return Err(invalid(
                "load_avg",
                "load_avg must be three non-negative numbers",
            ));
        }
        if self.uptime_s > MAX_BYTES || self.process_count > 1 << 32 {
            return Err(invalid(
                "uptime_s",
                "uptime_s or process_count is out of range",
            ));
        }
        if let Some(v) = &self.version {
            check_text("version", v, MAX_TEXT)?;
        }
        if let Some(i) = self.interval_s {
            check_interval(i)?;
        }
        Ok(())
    }

    pub fn disk_totals(&self) -> (u64, u64) {
        self.disks.iter().fold((0, 0), |(u, t), d| {
            (u.saturating_add(d.used), t.saturating_add(d.total))
        })
    }

    pub fn memory_percent(&self) -> f64 {
        percent(self.memory_used, self.memory_total)
    }

    pub fn disk_percent(&self) -> f64 {
        let (u, t) = self.disk_totals();
        percent(u, t)
    }
}

pub fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (used as f64 / total as f64 * 100.0).clamp(0.0, 100.0)
    }
}

/// `POST /api/nodes`: register (an agent) or add (an admin) a node. Idempotent by `name`.
/// The original's names are aliases: `id` for `name`, `ip_address` for `address`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegisterNode {
    /// The node id: letters, digits, `.`, `_`, `-`; 1–64 characters.
    #[serde(alias = "id")]
    pub name: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub interval_s: Option<i64>,
    // How to reach it (`reach::ReachChange`; kept when absent).
    #[serde(default, alias = "ip_address", skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The host's own addresses, as its agent reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::wire::one_or_many_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub services: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "crate::wire::one_or_many_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub tags: Option<Vec<String>>,
}

impl RegisterNode {
    /// The reach fields this registration sets (checked by `validate`).
    pub fn reach_change(&self) -> reach::ReachChange {
        reach::ReachChange {
            address: self.address.clone(),
            addresses: self.addresses.clone(),
            ssh_user: self.ssh_user.clone(),
            ssh_port: self.ssh_port,
            role: self.role.clone(),
            services: self.services.clone(),
            tags: self.tags.clone(),
            ssh_secret: None,
        }
    }

    pub fn validate(&mut self) -> Result<(), Invalid> {
        let mut reach = self.reach_change();
        reach.validate()?;
        self.address = reach.address;
        self.ssh_user = reach.ssh_user;
        self.role = reach.role;
        self.services = reach.services;
        self.tags = reach.tags;
        self.name = self.name.trim().to_string();
        validate_node_name(&self.name)?;
        if let Some(h) = &self.hostname {
            check_text("hostname", h, MAX_HOSTNAME)?;
        }
        if let Some(o) = &self.os {
            check_text("os", o, MAX_TEXT)?;
        }
        if let Some(v) = &self.version {
            check_text("version", v, MAX_TEXT)?;
        }
        if let Some(i) = self.interval_s {
            check_interval(i)?;
        }
        Ok(())
    }
}

pub fn validate_node_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(invalid(
            "name",
            format!("node name must be 1 to {MAX_NAME} characters"),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(invalid(
            "name",
            "node name may contain ASCII letters, digits, '.', '_' and '-' only",
        ));
    }
    Ok(())
}

fn check_text(field: &str, v: &str, max: usize) -> Result<(), Invalid> {
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} must be at most {max} characters, without control characters"),
        ));
    }
    Ok(())
}

fn check_interval(i: i64) -> Result<(), Invalid> {
    if !(MIN_INTERVAL_S..=MAX_INTERVAL_S).contains(&i) {
        return Err(invalid(
            "interval_s",
            format!("interval_s must be {MIN_INTERVAL_S} to {MAX_INTERVAL_S} seconds"),
        ));
    }
    Ok(())
}

/// A node as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Node {
    pub id: i64,
    pub name: String,
    pub hostname: String,
    pub os: Option<String>,
    pub version: Option<String>,
    pub interval_s: i64,
    pub status: NodeStatus,
    /// True for this server's own host (served by the in-process agent).
    pub local: bool,
    /// True once an API token is bound to it (only that token acts for the node).
    pub bound: bool,
    pub last_heartbeat_at: Option<String>,
    /// Seconds since the last heartbeat.
    pub heartbeat_age_s: Option<i64>,
    pub metrics: Option<NodeMetrics>,
    pub created_by: String,
    pub created_at: String,
    pub registered_at: Option<String>,
    /// How to reach it: address, SSH user and port, role, services, tags.
    #[serde(flatten)]
    pub reach: reach::Reach,
}

/// `POST /api/nodes/{id}/commands`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCommand {
    pub command: String,
    #[serde(default)]
    pub args: Option<serde_json::Value>,
    #[serde(default)]
    pub timeout_s: Option<i64>,
}

impl NewCommand {
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_command_name(&self.command)?;
        if let Some(a) = &self.args {
            if !a.is_object() {
                return Err(invalid("args", "args must be a JSON object"));
            }
            if a.to_string().len() > MAX_ARGS_BYTES {
                return Err(invalid(
                    "args",
                    format!("args must be at most {MAX_ARGS_BYTES} bytes of JSON"),
                ));
            }
        }
        if let Some(t) = self.timeout_s {
            if !(1..=MAX_TIMEOUT_S).contains(&t) {
                return Err(invalid(
                    "timeout_s",
                    format!("timeout_s must be 1 to {MAX_TIMEOUT_S}"),
                ));
            }
        }
        Ok(())
    }
}

pub fn validate_command_name(c: &str) -> Result<(), Invalid> {
    if c.is_empty()
        || c.len() > MAX_COMMAND
        || !c.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '-' | '_' | '.' | ':')
        })
    {
        return Err(invalid(
            "command",
            format!(
                "command must be 1 to {MAX_COMMAND} characters of a-z, 0-9, '-', '_', '.', ':'"
            ),
        ));
    }
    Ok(())
}

/// A queued command and, once answered, its result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeCommand {
    pub id: i64,
    pub node_id: i64,
    pub command: String,
    pub args: serde_json::Value,
    pub status: CommandStatus,
    pub timeout_s: i64,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub delivered_at: Option<String>,
    pub finished_at: Option<String>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// The agent's answer: `POST /api/nodes/{id}/commands/{cid}/result`. Exactly one of `result`
/// (success) and `error` (failure).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandResult {
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
}

impl CommandResult {
    pub fn validate(&self) -> Result<(), Invalid> {
        match (&self.result, &self.error) {
            (Some(_), Some(_)) | (None, None) => Err(invalid(
                "result",
                "send exactly one of 'result' (success) and 'error' (failure)",
            )),
            (Some(r), None) if r.to_string().len() > MAX_RESULT_BYTES => Err(invalid(
                "result",
                format!("result must be at most {MAX_RESULT_BYTES} bytes of JSON"),
            )),
            (None, Some(e)) if e.is_empty() || e.chars().count() > MAX_ERROR => Err(invalid(
                "error",
                format!("error must be 1 to {MAX_ERROR} characters"),
            )),
            _ => Ok(()),
        }
    }
}

/// The agent's poll answer: the commands now delivered to it (possibly none).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CommandBatch {
    pub commands: Vec<NodeCommand>,
}
