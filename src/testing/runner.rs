//! The runner the CLI and (later) the worker share: setup steps once, then the cases, up to
//! `parallel` at a time, each case's steps in order with their own variables and cookies; a
//! failed case is tried again up to its `retries` (every attempt kept), and one that passes on
//! a retry is flaky; teardown steps last, whatever happened.

use super::format::{Case, Suite};
use super::steps::{run_step, secs};
use super::vars::Vars;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A case's deadline for one attempt when it states none.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Cases run at the same time (at least 1).
    pub parallel: usize,
    /// Only cases carrying one of these tags (all when empty).
    pub tags: Vec<String>,
    /// `--var k=v`: overrides the suite's variables.
    pub vars: BTreeMap<String, String>,
    /// Resolved `vault:NAME` references, by NAME.
    pub secrets: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    /// Passed after at least one failed attempt.
    Flaky,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    pub suite: String,
    pub file: String,
    pub passed: usize,
    pub flaky: usize,
    pub failed: usize,
    pub duration_ms: u64,
    /// Why the suite could not run at all (a setup step failed, a variable did not resolve).
    pub error: Option<String>,
    pub setup: Vec<StepResult>,
    pub cases: Vec<CaseResult>,
    pub teardown: Vec<StepResult>,
}

impl SuiteResult {
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.error.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub tags: Vec<String>,
    pub outcome: Outcome,
    pub duration_ms: u64,
    /// Every attempt, the last one last.
    pub attempts: Vec<Attempt>,
    /// The failing assertion (or error) of the last attempt, with its step.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub passed: bool,
    pub duration_ms: u64,
    pub steps: Vec<StepResult>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub name: String,
    pub kind: String,
    pub passed: bool,
    pub duration_ms: u64,
    /// Tries of a `wait_until` step; 1 otherwise.
    pub tries: u32,
    /// The request or command sent, bounded, secrets redacted.
    pub request: Option<String>,
    /// The response or output, bounded, secrets redacted.
    pub response: Option<String>,
    pub error: Option<String>,
    pub assertions: Vec<AssertionResult>,
    #[serde(skip)]
    pub answer: Option<super::check::Answer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssertionResult {
    pub assertion: String,
    pub passed: bool,
    /// What was seen instead, when it failed.
    pub actual: Option<String>,
}

impl StepResult {
    /// The first reason this step failed: its error, or its first failing assertion.
    pub fn failure(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("{}: {e}", self.name));
        }
        self.assertions.iter().find(|a| !a.passed).map(|a| {
            format!(
                "{}: assertion `{}` failed ({})",
                self.name,
                a.assertion,
                a.actual.as_deref().unwrap_or("")
            )
        })
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Runs `suite`; `on_case` hears of each case as it finishes (for a progress bar).
pub async fn run_suite(
    suite: &Suite,
    file: &str,
    opts: &RunOptions,
    on_case: &(dyn Fn(&CaseResult) + Sync),
) -> SuiteResult {
    let started = Instant::now();
    let mut result = SuiteResult {
        suite: suite.name.clone(),
        file: file.to_string(),
        passed: 0,
        flaky: 0,
        failed: 0,
        duration_ms: 0,
        error: None,
        setup: Vec::new(),
        cases: Vec::new(),
        teardown: Vec::new(),
    };
    let mut values = suite.variables.clone();
    values.extend(opts.vars.clone());
    let mut vars = match Vars::new(values, &opts.secrets) {
        Ok(v) => v,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    let http = http_client();
    for (i, step) in suite.setup.iter().enumerate() {
        let r = run_step(step, i, &http, &mut vars).await;
        let failure = r.failure();
        result.setup.push(r);
        if let Some(f) = failure {
            result.error = Some(format!("setup {f}"));
            break;
        }
    }
    let selected: Vec<&Case> = suite
        .cases
        .iter()
        .filter(|c| opts.tags.is_empty() || c.tags.iter().any(|t| opts.tags.contains(t)))
        .collect();
    if result.error.is_none() {
        let base = &vars;
        let mut done: Vec<(usize, CaseResult)> =
            futures_util::stream::iter(selected.into_iter().enumerate())
                .map(|(i, case)| async move {
                    let r = run_case(case, base.clone()).await;
                    on_case(&r);
                    (i, r)
                })
                .buffer_unordered(opts.parallel.max(1))
                .collect()
                .await;
        done.sort_by_key(|(i, _)| *i);
        result.cases = done.into_iter().map(|(_, r)| r).collect();
    }
    for (i, step) in suite.teardown.iter().enumerate() {
        result
            .teardown
            .push(run_step(step, i, &http, &mut vars).await);
    }
    for c in &result.cases {
        match c.outcome {
            Outcome::Passed => result.passed += 1,
            Outcome::Flaky => result.flaky += 1,
            Outcome::Failed => result.failed += 1,
        }
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

async fn run_case(case: &Case, vars: Vars) -> CaseResult {
    let started = Instant::now();
    let timeout = secs(case.timeout, CASE_TIMEOUT);
    let mut attempts = Vec::new();
    for _ in 0..=case.retries {
        let attempt = run_attempt(case, vars.clone(), timeout).await;
        let passed = attempt.passed;
        attempts.push(attempt);
        if passed {
            break;
        }
    }
    let last = attempts.last();
    let passed = last.is_some_and(|a| a.passed);
    let failure = last.filter(|a| !a.passed).and_then(|a| {
        a.steps
            .iter()
            .find_map(StepResult::failure)
            .or_else(|| a.error.clone())
    });
    CaseResult {
        name: case.name.clone(),
        tags: case.tags.clone(),
        outcome: match (passed, attempts.len()) {
            (true, 1) => Outcome::Passed,
            (true, _) => Outcome::Flaky,
            (false, _) => Outcome::Failed,
        },
        duration_ms: started.elapsed().as_millis() as u64,
        attempts,
        failure,
    }
}

async fn run_attempt(case: &Case, mut vars: Vars, timeout: Duration) -> Attempt {
    let started = Instant::now();
    let http = http_client();
    let mut steps = Vec::new();
    let ran = tokio::time::timeout(timeout, async {
        for (i, step) in case.steps.iter().enumerate() {
            let r = run_step(step, i, &http, &mut vars).await;
            let ok = r.passed;
            steps.push(r);
            if !ok {
                break;
            }
        }
    })
    .await;
    let error = ran
        .err()
        .map(|_| format!("case timed out after {:.1} s", timeout.as_secs_f64()));
    Attempt {
        passed: error.is_none()
            && steps.len() == case.steps.len()
            && steps.iter().all(|s| s.passed),
        duration_ms: started.elapsed().as_millis() as u64,
        steps,
        error,
    }
}
