//! Follow-ups of completed prompts. (assign-to-tmux: a tracked item whose prompt completes
//! moves to review — not built yet; see the report of issue 5.)

use crate::app::AppState;

/// Runs the follow-ups of prompt `id`, which just completed.
pub async fn prompt_completed(_state: &AppState, _id: i64) -> Result<(), sqlx::Error> {
    Ok(())
}
