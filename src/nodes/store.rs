//! SQL for nodes, their metric history and their commands. Nothing else touches these tables.
//!
//! The command channel's guarantees live in the `WHERE` clauses: [`claim_commands`] moves rows
//! from `pending` to `delivered` in one `UPDATE ... RETURNING`, so a command is handed out once;
//! [`finish_command`] only matches a `delivered` row of that node, so a late or repeated answer
//! changes nothing; [`expire_commands`] only touches rows not yet final.

use super::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct NodeRow {
    pub id: i64,
    pub name: String,
    pub hostname: String,
    pub os: Option<String>,
    pub version: Option<String>,
    pub interval_s: i64,
    pub is_local: i64,
    pub token_id: Option<i64>,
    pub metrics: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub registered_at: Option<String>,
    pub last_heartbeat_at: Option<String>,
    pub address: Option<String>,
    /// JSON arrays of text (`addresses`, `services`, `tags`).
    pub addresses: Option<String>,
    pub ssh_user: Option<String>,
    pub ssh_port: Option<i64>,
    pub role: Option<String>,
    pub services: Option<String>,
    pub tags: Option<String>,
    pub ssh_secret: Option<String>,
}

fn text_list(json: &Option<String>) -> Vec<String> {
    json.as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

fn list_json(list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| serde_json::to_string(list).unwrap_or_else(|_| "[]".into()))
}

impl NodeRow {
    /// The API view; the state follows from the heartbeat age, `now` and the server's start.
    pub fn reach(&self) -> reach::Reach {
        reach::Reach {
            address: self.address.clone(),
            addresses: text_list(&self.addresses),
            ssh_user: self.ssh_user.clone(),
            ssh_port: self.ssh_port,
            role: self.role.clone(),
            services: text_list(&self.services),
            tags: text_list(&self.tags),
            ssh_secret: self.ssh_secret.clone(),
        }
    }

    pub fn view(self, started: OffsetDateTime, now: OffsetDateTime) -> Node {
        let reach = self.reach();
        let last = self
            .last_heartbeat_at
            .as_deref()
            .and_then(crate::clock::parse);
        let (status, age) = NodeStatus::at(last, started, now, self.interval_s);
        Node {
            id: self.id,
            name: self.name,
            hostname: self.hostname,
            os: self.os,
            version: self.version,
            interval_s: self.interval_s,
            status,
            local: self.is_local != 0,
            bound: self.token_id.is_some(),
            last_heartbeat_at: self.last_heartbeat_at,
            heartbeat_age_s: age,
            metrics: self.metrics.and_then(|m| serde_json::from_str(&m).ok()),
            created_by: self.created_by,
            created_at: self.created_at,
            registered_at: self.registered_at,
            reach,
        }
    }
}

const NODE_COLS: &str =
    "id, name, hostname, os, version, interval_s, is_local, token_id, metrics, \
     created_by, created_at, registered_at, last_heartbeat_at, \
     address, addresses, ssh_user, ssh_port, role, services, tags, ssh_secret";

/// Touches the node's row first (the write lock before the read of a read-modify-write).
/// False: no such node.
pub async fn touch_node(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("UPDATE nodes SET name = name WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

/// Writes every reach field of node `id` (the caller merged the change into what was there).
pub async fn set_reach(
    conn: &mut AnyConnection,
    id: i64,
    r: &reach::Reach,
) -> Result<NodeRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE nodes SET address = $1, addresses = $2, ssh_user = $3, ssh_port = $4,
             role = $5, services = $6, tags = $7, ssh_secret = $8
         WHERE id = $9
         RETURNING {NODE_COLS}"
    ))
    .bind(r.address.as_deref())
    .bind(list_json(&r.addresses))
    .bind(r.ssh_user.as_deref())
    .bind(r.ssh_port)
    .bind(r.role.as_deref())
    .bind(list_json(&r.services))
    .bind(list_json(&r.tags))
    .bind(r.ssh_secret.as_deref())
    .bind(id)
    .fetch_one(&mut *conn)
    .await
}

pub async fn get_node<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<NodeRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {NODE_COLS} FROM nodes WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

pub async fn node_by_name<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    name: &str,
) -> Result<Option<NodeRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {NODE_COLS} FROM nodes WHERE name = $1"))
        .bind(name)
        .fetch_optional(ex)
        .await
}

/// This server's own node first, then by name.
pub async fn list_nodes<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    limit: i64,
    offset: i64,
) -> Result<Vec<NodeRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {NODE_COLS} FROM nodes ORDER BY is_local DESC, name LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await
}

pub struct InsertNode<'a> {
    pub name: &'a str,
    pub hostname: &'a str,
    pub os: Option<&'a str>,
    pub version: Option<&'a str>,
    pub interval_s: i64,
    pub is_local: bool,
    pub token_id: Option<i64>,
    pub created_by: &'a str,
    /// Set when an agent registers (not when an admin adds the node by hand).
    pub registered: bool,
    pub now: &'a str,
}

pub async fn insert_node(
    conn: &mut AnyConnection,
    n: InsertNode<'_>,
) -> Result<NodeRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO nodes (name, hostname, os, version, interval_s, is_local, token_id,
             created_by, created_at, registered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING {NODE_COLS}"
    ))
    .bind(n.name)
    .bind(n.hostname)
    .bind(n.os)
    .bind(n.version)
    .bind(n.interval_s)
    .bind(i64::from(n.is_local))
    .bind(n.token_id)
    .bind(n.created_by)
    .bind(n.now)
    .bind(n.registered.then_some(n.now))
    .fetch_one(&mut *conn)
    .await
}

/// An agent (re-)registered: refresh what it says about itself, bind it to `token_id` when it
/// was not bound yet.
pub async fn record_registration(
    conn: &mut AnyConnection,
    id: i64,
    r: &RegisterNode,
    token_id: Option<i64>,
    now: &str,
) -> Result<NodeRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE nodes SET hostname = COALESCE($1, hostname), os = COALESCE($2, os),
             version = COALESCE($3, version), interval_s = COALESCE($4, interval_s),
             token_id = COALESCE(token_id, $5), registered_at = $6
         WHERE id = $7
         RETURNING {NODE_COLS}"
    ))
    .bind(r.hostname.as_deref())
    .bind(r.os.as_deref())
    .bind(r.version.as_deref())
    .bind(r.interval_s)
    .bind(token_id)
    .bind(now)
    .bind(id)
    .fetch_one(&mut *conn)
    .await
}

/// Stores the latest metrics on the node and appends one raw history row. False: no such node
/// (nothing written).
pub async fn record_heartbeat(
    conn: &mut AnyConnection,
    id: i64,
    m: &NodeMetrics,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let json = serde_json::to_string(m).unwrap_or_else(|_| "{}".into());
    let updated = sqlx::query(
        "UPDATE nodes SET metrics = $1, last_heartbeat_at = $2,
             version = COALESCE($3, version), interval_s = COALESCE($4, interval_s)
         WHERE id = $5",
    )
    .bind(json)
    .bind(now)
    .bind(m.version.as_deref())
    .bind(m.interval_s)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    let (disk_used, disk_total) = m.disk_totals();
    insert_sample(
        conn,
        id,
        &Sample {
            at: now.to_string(),
            resolution: 0,
            samples: 1,
            cpu_percent: m.cpu_percent,
            mem_used: m.memory_used as i64,
            mem_total: m.memory_total as i64,
            disk_used: disk_used.min(MAX_BYTES) as i64,
            disk_total: disk_total.min(MAX_BYTES) as i64,
            load1: m.load_avg[0],
        },
    )
    .await?;
    Ok(true)
}

pub async fn delete_node(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    // Explicit child deletes: correct even where foreign keys are not enforced.
    sqlx::query("DELETE FROM node_metrics WHERE node_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM node_commands WHERE node_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query("DELETE FROM nodes WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Heartbeat times of every node (for the state counts of `/metrics`).
pub async fn heartbeat_times<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<(Option<String>, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT last_heartbeat_at, interval_s FROM nodes")
        .fetch_all(ex)
        .await
}

// ---- metric history ----

/// One history row: a heartbeat (`resolution` 0) or an average of `samples` of them.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: String,
    pub resolution: i64,
    pub samples: i64,
    pub cpu_percent: f64,
    pub mem_used: i64,
    pub mem_total: i64,
    pub disk_used: i64,
    pub disk_total: i64,
    pub load1: f64,
}

pub async fn insert_sample(
    conn: &mut AnyConnection,
    node_id: i64,
    s: &Sample,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO node_metrics (node_id, at, resolution, samples, cpu_percent, mem_used,
             mem_total, disk_used, disk_total, load1)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(node_id)
    .bind(&s.at)
    .bind(s.resolution)
    .bind(s.samples)
    .bind(s.cpu_percent)
    .bind(s.mem_used)
    .bind(s.mem_total)
    .bind(s.disk_used)
    .bind(s.disk_total)
    .bind(s.load1)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every history row of a node since `since`, oldest first.
pub async fn samples_since<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    node_id: i64,
    since: &str,
) -> Result<Vec<Sample>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, resolution, samples, cpu_percent, mem_used, mem_total, disk_used, disk_total,
             load1
         FROM node_metrics WHERE node_id = $1 AND at >= $2 ORDER BY at, id",
    )
    .bind(node_id)
    .bind(since)
    .fetch_all(ex)
    .await
}

/// A raw row due for roll-up.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct RawRow {
    pub id: i64,
    pub node_id: i64,
    #[sqlx(flatten)]
    pub sample: Sample,
}

/// The oldest raw rows taken before `before`, at most `limit`, by insertion order.
pub async fn raw_rows_before(
    conn: &mut AnyConnection,
    before: &str,
    limit: i64,
) -> Result<Vec<RawRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, node_id, at, resolution, samples, cpu_percent, mem_used, mem_total,
             disk_used, disk_total, load1
         FROM node_metrics WHERE resolution = 0 AND at < $1 ORDER BY id LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// Deletes the raw rows [`raw_rows_before`] returned (every raw row before `before` with an id
/// up to `max_id`: exactly that batch, since it took the lowest ids).
pub async fn delete_raw_rows(
    conn: &mut AnyConnection,
    before: &str,
    max_id: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM node_metrics WHERE resolution = 0 AND at < $1 AND id <= $2")
        .bind(before)
        .bind(max_id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// Deletes rolled-up rows older than `before`.
/// Deletes commands that finished (succeeded, failed, timed out) before `before`.
pub async fn prune_finished_commands(
    conn: &mut AnyConnection,
    before: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM node_commands WHERE status IN ('succeeded', 'failed', 'timed_out') \
           AND COALESCE(finished_at, expires_at) < $1",
    )
    .bind(before)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

pub async fn prune_rollups(conn: &mut AnyConnection, before: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM node_metrics WHERE resolution > 0 AND at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

// ---- commands ----

#[derive(sqlx::FromRow)]
struct CommandRow {
    id: i64,
    node_id: i64,
    command: String,
    args: String,
    status: String,
    timeout_s: i64,
    created_by: String,
    created_at: String,
    expires_at: String,
    delivered_at: Option<String>,
    finished_at: Option<String>,
    result: Option<String>,
    error: Option<String>,
}

impl From<CommandRow> for NodeCommand {
    fn from(r: CommandRow) -> Self {
        NodeCommand {
            id: r.id,
            node_id: r.node_id,
            command: r.command,
            args: serde_json::from_str(&r.args).unwrap_or_default(),
            status: r.status.parse().unwrap_or(CommandStatus::Failed),
            timeout_s: r.timeout_s,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            delivered_at: r.delivered_at,
            finished_at: r.finished_at,
            result: r.result.and_then(|v| serde_json::from_str(&v).ok()),
            error: r.error,
        }
    }
}

const COMMAND_COLS: &str =
    "id, node_id, command, args, status, timeout_s, created_by, created_at, \
     expires_at, delivered_at, finished_at, result, error";

pub struct InsertCommand<'a> {
    pub node_id: i64,
    pub command: &'a str,
    pub args: &'a serde_json::Value,
    pub timeout_s: i64,
    pub created_by: &'a str,
    pub now: &'a str,
    pub expires_at: &'a str,
}

pub async fn insert_command(
    conn: &mut AnyConnection,
    c: InsertCommand<'_>,
) -> Result<NodeCommand, sqlx::Error> {
    let row: CommandRow = sqlx::query_as(&format!(
        "INSERT INTO node_commands (node_id, command, args, status, timeout_s, created_by,
             created_at, expires_at)
         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7)
         RETURNING {COMMAND_COLS}"
    ))
    .bind(c.node_id)
    .bind(c.command)
    .bind(c.args.to_string())
    .bind(c.timeout_s)
    .bind(c.created_by)
    .bind(c.now)
    .bind(c.expires_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.into())
}

pub async fn get_command<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    node_id: i64,
    id: i64,
) -> Result<Option<NodeCommand>, sqlx::Error> {
    let row: Option<CommandRow> = sqlx::query_as(&format!(
        "SELECT {COMMAND_COLS} FROM node_commands WHERE id = $1 AND node_id = $2"
    ))
    .bind(id)
    .bind(node_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

/// Newest first.
pub async fn recent_commands<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    node_id: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<NodeCommand>, sqlx::Error> {
    let rows: Vec<CommandRow> = sqlx::query_as(&format!(
        "SELECT {COMMAND_COLS} FROM node_commands WHERE node_id = $1
         ORDER BY id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(node_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Hands the node's oldest live pending commands (at most `limit`) to its agent: one
/// statement, so each is delivered once however many polls race.
pub async fn claim_commands(
    conn: &mut AnyConnection,
    node_id: i64,
    now: &str,
    limit: i64,
) -> Result<Vec<NodeCommand>, sqlx::Error> {
    let pick = "SELECT c.id FROM node_commands c
                WHERE c.node_id = $2 AND c.status = 'pending' AND c.expires_at > $1
                ORDER BY c.id LIMIT $3";
    let (with, ids) = crate::db::Backend::of_connection(conn).claim(pick, "c");
    let mut rows: Vec<CommandRow> = sqlx::query_as(&format!(
        "{with}UPDATE node_commands SET status = 'delivered', delivered_at = $1
         WHERE id IN ({ids})
           AND status = 'pending'
         RETURNING {COMMAND_COLS}"
    ))
    .bind(now)
    .bind(node_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.sort_by_key(|r| r.id);
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Records the agent's answer to a delivered, unexpired command. False: no such row in that
/// state (gone, not delivered, already answered, or timed out).
pub async fn finish_command(
    conn: &mut AnyConnection,
    node_id: i64,
    id: i64,
    status: CommandStatus,
    result: Option<&serde_json::Value>,
    error: Option<&str>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE node_commands SET status = $1, result = $2, error = $3, finished_at = $4
         WHERE id = $5 AND node_id = $6 AND status = 'delivered' AND expires_at > $4",
    )
    .bind(status.as_str())
    .bind(result.map(|v| v.to_string()))
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(node_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Marks every unanswered command past its deadline `timed_out`. Returns how many.
pub async fn expire_commands(conn: &mut AnyConnection, now: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE node_commands SET status = 'timed_out', finished_at = $1,
             error = CASE status WHEN 'pending'
                 THEN 'timed out: the node''s agent never picked the command up'
                 ELSE 'timed out: the node''s agent took the command but did not answer in time' END
         WHERE status IN ('pending', 'delivered') AND expires_at <= $1",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}
