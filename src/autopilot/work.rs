//! SQL for a run's work items and gates. Nothing else touches these tables.
//!
//! An item is one piece of work: its worktree and branch, the agent session working in it, the
//! prompts typed for it, its latest test task, and — once its tests pass — its commit, diff and
//! the change request (a gate) a person approves or rejects. A gate is a decision only a person
//! makes: a change request to merge, or a production deploy.

use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, Executor};

crate::text_enum! {
    pub enum ItemState ("item state") {
        Pending = "pending",
        Implementing = "implementing",
        Testing = "testing",
        /// Tests passed; its change request waits on a person.
        Review = "review",
        Merged = "merged",
        Rejected = "rejected",
        Failed = "failed",
    }
}

impl ItemState {
    /// Nothing more happens to it.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            ItemState::Merged | ItemState::Rejected | ItemState::Failed
        )
    }
}

crate::text_enum! {
    pub enum GateKind ("gate kind") {
        /// Merge an item's branch into the project's branch.
        ChangeRequest = "change_request",
        /// Run the production deploy.
        DeployProduction = "deploy_production",
    }
}

crate::text_enum! {
    pub enum GateState ("gate state") {
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Item {
    pub id: i64,
    pub run_id: i64,
    pub seq: i64,
    pub title: String,
    pub detail: String,
    /// `goal` or `feature:<id>`.
    pub source: String,
    #[sqlx(try_from = "String")]
    pub state: ItemState,
    pub session: Option<String>,
    #[serde(skip)]
    pub token_id: Option<i64>,
    pub branch: Option<String>,
    pub worktree: Option<String>,
    pub base_commit: Option<String>,
    pub head_commit: Option<String>,
    pub attempts: i64,
    pub prompt_id: Option<i64>,
    pub task_id: Option<i64>,
    pub summary: String,
    pub test_output: String,
    pub diff_stat: String,
    pub reason: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Gate {
    pub id: i64,
    pub run_id: i64,
    pub item_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub kind: GateKind,
    #[sqlx(try_from = "String")]
    pub state: GateState,
    pub reason: String,
    pub decided_by: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
}

const ITEM_COLS: &str = "id, run_id, seq, title, detail, source, state, session, token_id, branch, worktree, base_commit, head_commit, attempts, prompt_id, task_id, summary, test_output, diff_stat, reason, created_at, updated_at";
const GATE_COLS: &str =
    "id, run_id, item_id, kind, state, reason, decided_by, created_at, decided_at";

pub async fn insert_item(
    conn: &mut AnyConnection,
    run_id: i64,
    seq: i64,
    title: &str,
    detail: &str,
    source: &str,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO autopilot_items (run_id, seq, title, detail, source, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) RETURNING id",
    )
    .bind(run_id)
    .bind(seq)
    .bind(title)
    .bind(detail)
    .bind(source)
    .bind(now)
    .fetch_one(conn)
    .await
}

pub async fn items<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    run_id: i64,
) -> Result<Vec<Item>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ITEM_COLS} FROM autopilot_items WHERE run_id = $1 ORDER BY seq"
    ))
    .bind(run_id)
    .fetch_all(ex)
    .await
}

pub async fn item<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<Item>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ITEM_COLS} FROM autopilot_items WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// Every field the runner moves, written back at once (the row was read in the same
/// transaction, under the run's lock).
pub async fn save_item(conn: &mut AnyConnection, i: &Item, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE autopilot_items SET state = $1, session = $2, token_id = $3, branch = $4,
            worktree = $5, base_commit = $6, head_commit = $7, attempts = $8, prompt_id = $9,
            task_id = $10, summary = $11, test_output = $12, diff_stat = $13, reason = $14,
            updated_at = $15
         WHERE id = $16",
    )
    .bind(i.state.as_str())
    .bind(&i.session)
    .bind(i.token_id)
    .bind(&i.branch)
    .bind(&i.worktree)
    .bind(&i.base_commit)
    .bind(&i.head_commit)
    .bind(i.attempts)
    .bind(i.prompt_id)
    .bind(i.task_id)
    .bind(&i.summary)
    .bind(&i.test_output)
    .bind(&i.diff_stat)
    .bind(&i.reason)
    .bind(now)
    .bind(i.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The run's gate of this kind (for this item), made once: a second call returns the first.
pub async fn open_gate(
    conn: &mut AnyConnection,
    run_id: i64,
    item_id: Option<i64>,
    kind: GateKind,
    now: &str,
) -> Result<Gate, sqlx::Error> {
    if let Some(g) = find_gate(&mut *conn, run_id, item_id, kind).await? {
        return Ok(g);
    }
    sqlx::query_as(&format!(
        "INSERT INTO autopilot_gates (run_id, item_id, kind, state, created_at)
         VALUES ($1, $2, $3, 'pending', $4) RETURNING {GATE_COLS}"
    ))
    .bind(run_id)
    .bind(item_id)
    .bind(kind.as_str())
    .bind(now)
    .fetch_one(conn)
    .await
}

pub async fn find_gate<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    run_id: i64,
    item_id: Option<i64>,
    kind: GateKind,
) -> Result<Option<Gate>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {GATE_COLS} FROM autopilot_gates
         WHERE run_id = $1 AND kind = $2 AND COALESCE(item_id, 0) = COALESCE(CAST($3 AS BIGINT), 0)"
    ))
    .bind(run_id)
    .bind(kind.as_str())
    .bind(item_id)
    .fetch_optional(ex)
    .await
}

pub async fn gate<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<Gate>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {GATE_COLS} FROM autopilot_gates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await
}

pub async fn gates<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    run_id: i64,
) -> Result<Vec<Gate>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {GATE_COLS} FROM autopilot_gates WHERE run_id = $1 ORDER BY id"
    ))
    .bind(run_id)
    .fetch_all(ex)
    .await
}

/// Gates waiting on a person, oldest first (the review queue).
pub async fn pending_gates<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    limit: i64,
) -> Result<Vec<Gate>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {GATE_COLS} FROM autopilot_gates WHERE state = 'pending' ORDER BY id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// Decides a pending gate. False when it was no longer pending (decided by someone else).
pub async fn decide_gate(
    conn: &mut AnyConnection,
    id: i64,
    to: GateState,
    reason: &str,
    by: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE autopilot_gates SET state = $1, reason = $2, decided_by = $3, decided_at = $4
         WHERE id = $5 AND state = 'pending'",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(by)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
