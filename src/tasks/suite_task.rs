//! The `test_suite` task (and a project's `test_command = "suite:NAME"`): a suite stored on
//! the server (src/suites) fetched with the worker's token, run with src/testing's runner,
//! its per-case results reported under the task's lease. This module names no `suites`
//! type: the typed client carries them, so the task queue never depends on that domain.

use super::handlers::{bad_payload, HandlerResult, TaskContext, TaskFailure, TaskSuccess};
use super::payload;
use std::collections::BTreeMap;

/// Cases of one suite run at the same time on a worker.
const SUITE_PARALLEL: usize = 4;

pub(super) async fn test_suite(ctx: TaskContext) -> HandlerResult {
    let p: payload::TestSuitePayload = payload::parse(ctx.payload()).map_err(bad_payload)?;
    let suite = ctx
        .client
        .test_suite(p.suite_id)
        .await
        .map_err(|e| match e.status() {
            Some(404) => {
                TaskFailure::permanent(format!("test suite {} does not exist", p.suite_id))
            }
            _ => TaskFailure::retry(format!("cannot read test suite {}: {e}", p.suite_id)),
        })?;
    run_stored_suite(&ctx, p.suite_id, &suite.content, p.vars, p.tags).await
}

/// Runs a stored suite with src/testing's runner, reports its per-case results under the
/// task's lease (the server writes the run, its cases and the activity row in one
/// transaction), and answers success when every case passed, else a failure; either way
/// with the summary as the output (the autopilot's testing phase reads its tail).
pub(super) async fn run_stored_suite(
    ctx: &TaskContext,
    suite_id: i64,
    content: &str,
    vars: BTreeMap<String, String>,
    tags: Vec<String>,
) -> HandlerResult {
    use crate::testing::{self, Outcome, RunOptions, SuiteResult};
    let suite = testing::parse_suite(&format!("suite {suite_id}"), content, false)
        .map_err(|e| TaskFailure::permanent(format!("the stored suite does not parse: {e}")))?;
    // Vault values: read with this worker's own rights (an audited read), never written to
    // the payload, the result or the history; one it may not read fails the run, named.
    let names = testing::vars::vault_references(suite.variables.values().chain(vars.values()));
    let mut secrets = BTreeMap::new();
    let mut refused = Vec::new();
    for name in names {
        let value = match ctx.client.secret_by_name(&name, false).await {
            Ok(info) => ctx.client.reveal_secret(info.id, None).await,
            Err(e) => Err(e),
        };
        match value {
            Ok(v) => {
                secrets.insert(name, v.value.expose().to_string());
            }
            Err(e) => refused.push(format!(
                "vault secret `{name}` cannot be read by this worker's token ({}): the run needs a principal allowed to read it",
                e.status().map(|s| s.to_string()).unwrap_or_else(|| e.to_string())
            )),
        }
    }
    let opts = RunOptions {
        parallel: SUITE_PARALLEL,
        tags,
        vars,
        secrets,
    };
    let file = format!("suite {suite_id}");
    let result = if refused.is_empty() {
        // The runner's future is not `Send` for every lifetime it borrows (a rustc limit with
        // nested async and references), so it runs on a blocking thread of this runtime,
        // driven by `block_on`; every step has a deadline, so a cancelled run ends by itself.
        let handle = tokio::runtime::Handle::current();
        let file2 = file.clone();
        let run = tokio::task::spawn_blocking(move || {
            handle.block_on(async move { testing::run_suite(&suite, &file2, &opts, &|_| {}).await })
        });
        tokio::select! {
            r = tokio::time::timeout(ctx.timeout(), run) => match r {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(TaskFailure::retry(format!("the suite's runner stopped: {e}"))),
                Err(_) => return Err(TaskFailure::retry(format!(
                    "the suite did not finish within the task's {} s", ctx.timeout().as_secs()
                ))),
            },
            _ = ctx.cancelled() => return Err(TaskFailure::retry("the suite was stopped (task cancelled or worker stopping)")),
        }
    } else {
        SuiteResult {
            suite: suite.name.clone(),
            file,
            passed: 0,
            flaky: 0,
            failed: 0,
            duration_ms: 0,
            error: Some(refused.join("; ")),
            setup: Vec::new(),
            cases: Vec::new(),
            teardown: Vec::new(),
        }
    };
    let run = ctx
        .client
        .report_test_run(ctx.task.id, &ctx.lease_token, suite_id, &result)
        .await
        .map_err(|e| match e.status() {
            Some(s) if (400..500).contains(&s) => {
                TaskFailure::permanent(format!("the server did not keep the suite's results: {e}"))
            }
            _ => TaskFailure::retry(format!("cannot report the suite's results: {e}")),
        })?;
    let mut out = String::new();
    if let Some(e) = &result.error {
        out.push_str(&format!("ERROR {}: {e}\n", result.suite));
    }
    for c in &result.cases {
        let label = match c.outcome {
            Outcome::Passed => "passed",
            Outcome::Flaky => "flaky",
            Outcome::Failed => "FAILED",
        };
        out.push_str(&format!("{label} {} ({} ms)", c.name, c.duration_ms));
        if let Some(f) = &c.failure {
            out.push_str(&format!(": {f}"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{}: {} passed, {} failed, {} flaky in {} ms (run {})\n",
        result.suite,
        result.passed + result.flaky,
        result.failed,
        result.flaky,
        result.duration_ms,
        run.id
    ));
    let output = super::keep_tail(&out, ctx.settings.max_output);
    let summary = serde_json::json!({
        "run_id": run.id, "suite_id": suite_id, "status": run.status,
        "passed": result.passed, "failed": result.failed, "flaky": result.flaky,
        "duration_ms": result.duration_ms,
    });
    if result.ok() {
        Ok(TaskSuccess {
            result: Some(summary),
            output: Some(output),
            exit_code: Some(0),
        })
    } else {
        Err(TaskFailure {
            error: match &result.error {
                Some(e) => format!("the suite could not run: {e}"),
                None => format!("{} of {} cases failed", result.failed, result.cases.len()),
            },
            // A failing suite is an answer, not a fault a retry fixes (flaky cases have
            // their own retries in the file).
            retryable: false,
            output: Some(output),
            exit_code: Some(1),
        })
    }
}
