//! SQL for projects, milestones, features, bugs and devops tasks, one file per entity
//! (`tracking/<entity>/store.rs`), gathered here so callers say `tracking::store::get_bug`.
//! Nothing else touches these tables. Writers that read-modify-write first call the entity's
//! `lock_*`, which goes through [`touch`]; the stats query and the shared row helpers live here.

pub use super::bugs::store::*;
pub use super::devops::store::*;
pub use super::features::store::*;
pub use super::milestones::store::*;
pub use super::projects::store::*;
use sqlx::{Any, AnyConnection, Executor};

pub(super) fn parse_or<T: std::str::FromStr>(s: &str, default: T) -> T {
    s.parse().unwrap_or(default)
}

// ---- stats ----

/// Counts by status of one table; `projects` counts archived projects as `archived`.
pub async fn status_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    table: Table,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = match table {
        Table::Projects => "SELECT CASE WHEN archived_at IS NULL THEN status ELSE 'archived' END AS s, COUNT(*) FROM projects GROUP BY s",
        Table::Milestones => "SELECT status, COUNT(*) FROM milestones GROUP BY status",
        Table::Features => "SELECT status, COUNT(*) FROM features GROUP BY status",
        Table::Bugs => "SELECT status, COUNT(*) FROM bugs GROUP BY status",
        Table::DevopsTasks => "SELECT status, COUNT(*) FROM devops_tasks GROUP BY status",
    };
    sqlx::query_as(sql).fetch_all(ex).await
}

/// The tracking tables (a closed set, so no table name ever comes from input).
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Projects,
    Milestones,
    Features,
    Bugs,
    DevopsTasks,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Projects => "projects",
            Table::Milestones => "milestones",
            Table::Features => "features",
            Table::Bugs => "bugs",
            Table::DevopsTasks => "devops_tasks",
        }
    }
}

/// The write lock for a read-modify-write of row `id`: touches the row so the transaction holds
/// the lock before it reads (SQLite: no lost update between the read and the write; PostgreSQL:
/// a row lock). Every `lock_*` goes through here.
pub(super) async fn touch(
    conn: &mut AnyConnection,
    table: Table,
    id: i64,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {} SET updated_at = $1 WHERE id = $2",
        table.name()
    ))
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}
