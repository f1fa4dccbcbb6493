//! A suite's history as read: its runs (a queued run whose task ended without a report reads
//! as `error`), one run with its cases, and each case over the last runs with flaky ones
//! flagged. Read only.

use super::actions::{Result, SuiteError};
use super::store;
use super::*;

/// A queued run whose task ended without a report (refused, its suite unreadable, cancelled,
/// its retries spent) is shown as `error` with the task's own error: computed on read from
/// the task, never stored, so a late report (none can come for a final task) changes nothing.
pub(super) async fn settle(db: &crate::db::Db, mut run: TestRun) -> Result<TestRun> {
    if run.status != RunStatus::Queued {
        return Ok(run);
    }
    let Some(task_id) = run.task_id else {
        return Ok(run);
    };
    if let Some(t) = crate::tasks::store::get_task(db, task_id).await? {
        if t.status.is_final() {
            run.status = RunStatus::Error;
            run.error = Some(format!(
                "task {task_id} ended {} without reporting results{}",
                t.status,
                t.error.map(|e| format!(": {e}")).unwrap_or_default()
            ));
            run.finished_at = t.finished_at;
        }
    }
    Ok(run)
}

pub(super) async fn settle_all(db: &crate::db::Db, runs: Vec<TestRun>) -> Result<Vec<TestRun>> {
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        out.push(settle(db, r).await?);
    }
    Ok(out)
}

pub async fn runs(db: &crate::db::Db, suite_id: i64, limit: i64) -> Result<Vec<TestRun>> {
    store::get_suite(db, suite_id)
        .await?
        .ok_or(SuiteError::NotFound("test suite"))?;
    let runs = store::runs_of(db, suite_id, limit).await?;
    settle_all(db, runs).await
}

pub async fn run_detail(db: &crate::db::Db, id: i64) -> Result<RunDetail> {
    let run = store::get_run(db, id)
        .await?
        .ok_or(SuiteError::NotFound("test run"))?;
    let suite = store::get_suite(db, run.suite_id)
        .await?
        .ok_or(SuiteError::NotFound("test suite"))?;
    let cases = store::cases_of_run(db, id)
        .await?
        .into_iter()
        .map(store::CaseResultRow::view)
        .collect();
    Ok(RunDetail {
        run: settle(db, run).await?,
        suite_name: suite.name,
        cases,
    })
}

/// Each case over the suite's last [`HISTORY_RUNS`] runs; flaky when it passed after a retry
/// or both passed and failed in that window.
pub async fn case_history(db: &crate::db::Db, suite_id: i64) -> Result<Vec<CaseHistory>> {
    let runs = runs(db, suite_id, HISTORY_RUNS).await?;
    let Some(oldest) = runs.last().map(|r| r.id) else {
        return Ok(Vec::new());
    };
    let rows = store::recent_cases(db, suite_id, oldest).await?;
    let mut order: Vec<String> = Vec::new();
    let mut by: std::collections::HashMap<String, CaseHistory> = Default::default();
    let mut durations: std::collections::HashMap<String, i64> = Default::default();
    for r in rows {
        let h = by.entry(r.name.clone()).or_insert_with(|| {
            order.push(r.name.clone());
            CaseHistory {
                name: r.name.clone(),
                runs: 0,
                passed: 0,
                flaky: 0,
                failed: 0,
                is_flaky: false,
                recent: Vec::new(),
                last_failure: None,
                last_excerpt: None,
                mean_duration_ms: 0,
            }
        });
        let run_id = r.run_id;
        let c = r.view();
        h.runs += 1;
        *durations.entry(c.name.clone()).or_default() += c.duration_ms;
        match c.outcome {
            CaseOutcome::Passed => h.passed += 1,
            CaseOutcome::Flaky => h.flaky += 1,
            CaseOutcome::Failed => {
                h.failed += 1;
                if h.last_failure.is_none() {
                    h.last_failure = c.failure.clone();
                    h.last_excerpt = c.excerpt.clone();
                }
            }
        }
        h.recent.push((run_id, c.outcome));
    }
    let mut out: Vec<CaseHistory> = order
        .into_iter()
        .filter_map(|n| by.remove(&n))
        .map(|mut h| {
            h.is_flaky = h.flaky > 0 || (h.failed > 0 && h.passed > 0);
            h.mean_duration_ms = durations.get(&h.name).copied().unwrap_or(0) / h.runs.max(1);
            h
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
