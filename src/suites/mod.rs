//! Test suites on the server (issue 19 items 4 and 5): suites stored per project (uploaded, or
//! read from the project's `test_suites/` folder), run as `test_suite` tasks by any worker, and
//! their runs and per-case results kept as history. The suite format, its reader and the
//! runner are `crate::testing` (shared with `architect test`); this domain stores and shows.
//!
//! Who may do what (the POLICY rows in tests/integration/principals.rs):
//! - reading suites, runs and case history: `Read`;
//! - uploading a suite, rescanning the folder, deleting, running: `Write`, except that
//!   uploading a suite with `shell` or `tmux` steps needs `Exec` (admins): a stored suite is
//!   code that others start later (the run button, a project's `test_command = "suite:NAME"`,
//!   the autopilot's testing phase), the same reason setting a project's commands needs
//!   `Exec`. Suites read from the project's folder are the repository's own code, trusted as
//!   the repository is (its test command runs there already), so a rescan needs `Write`;
//! - a worker's report of a run: `WorkerOps`, and only with the live lease of the task.
//!
//! History is written by the report (`actions::record_report`): the run, its cases and the
//! activity row in one transaction, before the worker completes its task; a report without
//! the task's live lease changes nothing.

pub mod actions;
pub mod api;
pub mod history;
pub mod pages;
pub mod store;

use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bytes of a suite file the server stores.
pub const MAX_SUITE_BYTES: usize = 256 * 1024;
/// Variables and tags a run request may carry.
pub const MAX_RUN_VARS: usize = 100;
pub const MAX_RUN_TAGS: usize = 20;
/// Bytes of a failing assertion and of its excerpt kept per case.
pub const MAX_FAILURE: usize = 2_000;
pub const MAX_EXCERPT: usize = 4_000;
/// Cases a report may carry.
pub const MAX_CASES: usize = 10_000;
/// Runs shown in a suite's history and trend.
pub const HISTORY_RUNS: i64 = 50;
/// The folder under a project's root that holds its suite files.
pub const SUITES_FOLDER: &str = "test_suites";

crate::text_enum! {
    /// Where a stored suite came from.
    pub enum SuiteSource ("suite source") {
        Upload = "upload",
        Folder = "folder",
    }
}

crate::text_enum! {
    /// A run: queued until the worker's report, then how it went (`error`: the suite could
    /// not run at all, e.g. a setup step or a vault secret failed).
    pub enum RunStatus ("run status") {
        Queued = "queued",
        Passed = "passed",
        Failed = "failed",
        Error = "error",
    }
}

impl RunStatus {
    /// The badge class the dashboard's other statuses use for the same meaning.
    pub fn css(&self) -> &'static str {
        match self {
            RunStatus::Queued => "s-pending",
            RunStatus::Passed => "s-succeeded",
            RunStatus::Failed | RunStatus::Error => "s-failed",
        }
    }
}

impl CaseOutcome {
    pub fn css(&self) -> &'static str {
        match self {
            CaseOutcome::Passed => "s-succeeded",
            CaseOutcome::Flaky => "s-review",
            CaseOutcome::Failed => "s-failed",
        }
    }

    /// One character for the history strip.
    pub fn mark(&self) -> &'static str {
        match self {
            CaseOutcome::Passed => "✓",
            CaseOutcome::Flaky => "~",
            CaseOutcome::Failed => "✗",
        }
    }
}

/// A stored suite, without its text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestSuite {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub source: SuiteSource,
    /// The file under the project's root, for a folder suite.
    pub path: Option<String>,
    pub cases: i64,
    /// It has `shell` or `tmux` steps.
    pub runs_code: bool,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    /// The newest run, if any.
    #[serde(default)]
    pub last_run: Option<TestRun>,
}

/// `GET /api/test-suites/{id}`: the suite and its text (what a worker runs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteDetail {
    #[serde(flatten)]
    pub suite: TestSuite,
    pub content: String,
}

/// `POST /api/projects/{id}/test-suites`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSuite {
    /// The suite file's text, YAML or JSON.
    pub content: String,
    /// `json` or `yaml`; guessed from the text when absent.
    #[serde(default)]
    pub format: Option<String>,
}

/// `POST /api/test-suites/{id}/run`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Only a worker on this node runs it.
    #[serde(default)]
    pub node: Option<String>,
    /// Override the suite's variables; a value `vault:NAME` is read by the worker.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Only the cases carrying one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl RunRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.vars.len() > MAX_RUN_VARS {
            return Err(invalid("vars", format!("at most {MAX_RUN_VARS} variables")));
        }
        for (k, v) in &self.vars {
            let ok = !k.is_empty()
                && k.len() <= 100
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
            if !ok {
                return Err(invalid(
                    "vars",
                    format!("'{k}' is not a variable name (letters, digits, _ - .)"),
                ));
            }
            if v.len() > 8 * 1024 || v.contains('\0') {
                return Err(invalid(
                    "vars",
                    format!("vars.{k} must be at most 8 KiB without NUL"),
                ));
            }
        }
        if self.tags.len() > MAX_RUN_TAGS {
            return Err(invalid("tags", format!("at most {MAX_RUN_TAGS} tags")));
        }
        if self
            .tags
            .iter()
            .any(|t| t.trim().is_empty() || t.len() > 100)
        {
            return Err(invalid("tags", "a tag is 1 to 100 characters"));
        }
        if let Some(n) = &self.node {
            if n.trim().is_empty() || n.len() > 200 {
                return Err(invalid("node", "node must be 1 to 200 characters"));
            }
        }
        Ok(())
    }
}

/// `POST /api/test-suites/{id}/run` answers with the queued run and its task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedRun {
    pub run: TestRun,
    pub task_id: i64,
}

/// One run of a suite (a row of `test_suite_runs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow)]
pub struct TestRun {
    pub id: i64,
    pub suite_id: i64,
    pub project_id: i64,
    pub task_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub passed: i64,
    pub failed: i64,
    pub flaky: i64,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    pub node: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// `GET /api/test-runs/{id}`: the run and its cases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: TestRun,
    pub suite_name: String,
    pub cases: Vec<CaseRow>,
}

crate::text_enum! {
    /// How a case ended (the runner's `Outcome`).
    pub enum CaseOutcome ("case outcome") {
        Passed = "passed",
        /// Passed after a failed attempt.
        Flaky = "flaky",
        Failed = "failed",
    }
}

/// One case of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseRow {
    pub name: String,
    pub outcome: CaseOutcome,
    pub attempts: i64,
    pub duration_ms: i64,
    /// The failing assertion (or error) of the last attempt, bounded and redacted.
    pub failure: Option<String>,
    /// The failing step's request and response, bounded and redacted.
    pub excerpt: Option<String>,
}

/// `GET /api/test-suites/{id}/cases`: one case over the recent runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseHistory {
    pub name: String,
    /// Runs that ran it, among the last [`HISTORY_RUNS`].
    pub runs: i64,
    pub passed: i64,
    pub flaky: i64,
    pub failed: i64,
    /// Passed after a retry at least once, or both passed and failed in the window.
    pub is_flaky: bool,
    /// The newest result first: (run id, outcome).
    pub recent: Vec<(i64, CaseOutcome)>,
    /// The newest failure's assertion and excerpt.
    pub last_failure: Option<String>,
    pub last_excerpt: Option<String>,
    pub mean_duration_ms: i64,
}

/// `POST /api/test-runs/report`: a worker's result for the suite its task ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    pub task_id: i64,
    pub lease_token: String,
    pub suite_id: i64,
    pub passed: i64,
    pub failed: i64,
    pub flaky: i64,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub cases: Vec<CaseRow>,
}

impl RunReport {
    /// The report of `result` (already redacted by the runner), bounded for storage.
    pub fn of(
        task_id: i64,
        lease_token: &str,
        suite_id: i64,
        r: &crate::testing::SuiteResult,
    ) -> RunReport {
        use crate::testing::{excerpt, Outcome};
        let cases = r
            .cases
            .iter()
            .map(|c| {
                let failing = c
                    .attempts
                    .last()
                    .and_then(|a| a.steps.iter().find(|s| !s.passed));
                let shown = failing.map(|s| {
                    format!(
                        "{}{}",
                        s.request.as_deref().unwrap_or(""),
                        s.response
                            .as_deref()
                            .map(|r| format!("\n---\n{r}"))
                            .unwrap_or_default()
                    )
                });
                CaseRow {
                    name: c.name.clone(),
                    outcome: match c.outcome {
                        Outcome::Passed => CaseOutcome::Passed,
                        Outcome::Flaky => CaseOutcome::Flaky,
                        Outcome::Failed => CaseOutcome::Failed,
                    },
                    attempts: c.attempts.len() as i64,
                    duration_ms: c.duration_ms as i64,
                    failure: c.failure.as_deref().map(|f| excerpt(f, MAX_FAILURE)),
                    excerpt: shown
                        .filter(|_| c.outcome == Outcome::Failed)
                        .map(|s| excerpt(&s, MAX_EXCERPT)),
                }
            })
            .collect();
        RunReport {
            task_id,
            lease_token: lease_token.to_string(),
            suite_id,
            passed: r.passed as i64,
            failed: r.failed as i64,
            flaky: r.flaky as i64,
            duration_ms: r.duration_ms as i64,
            error: r.error.as_deref().map(|e| excerpt(e, MAX_FAILURE)),
            cases,
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.cases.len() > MAX_CASES {
            return Err(invalid("cases", format!("at most {MAX_CASES} cases")));
        }
        for (i, c) in self.cases.iter().enumerate() {
            if c.name.is_empty() || c.name.len() > 500 {
                return Err(invalid(
                    format!("cases[{i}].name"),
                    "a case name is 1 to 500 bytes",
                ));
            }
            if c.failure
                .as_ref()
                .is_some_and(|f| f.len() > 2 * MAX_FAILURE)
                || c.excerpt
                    .as_ref()
                    .is_some_and(|f| f.len() > 2 * MAX_EXCERPT)
            {
                return Err(invalid(
                    format!("cases[{i}]"),
                    "failure and excerpt are bounded",
                ));
            }
        }
        if [self.passed, self.failed, self.flaky, self.duration_ms]
            .iter()
            .any(|n| *n < 0)
        {
            return Err(invalid("passed", "counts and durations are not negative"));
        }
        Ok(())
    }

    pub fn status(&self) -> RunStatus {
        if self.error.is_some() {
            RunStatus::Error
        } else if self.failed > 0 {
            RunStatus::Failed
        } else {
            RunStatus::Passed
        }
    }
}

/// A suite's text checked by the runner's reader: a bad file is an `Invalid` on `content`
/// whose message names the line, column and field.
pub fn parse_content(
    file: &str,
    content: &str,
    format: Option<&str>,
) -> Result<crate::testing::Suite, Invalid> {
    if content.len() > MAX_SUITE_BYTES {
        return Err(invalid(
            "content",
            format!("a suite is at most {MAX_SUITE_BYTES} bytes"),
        ));
    }
    let json = match format {
        None => false,
        Some("json") => true,
        Some("yaml") | Some("yml") => false,
        Some(other) => {
            return Err(invalid(
                "format",
                format!("format '{other}' is not json or yaml"),
            ))
        }
    };
    let suite = crate::testing::parse_suite(file, content, json)
        .map_err(|e| invalid("content", e.to_string()))?;
    if suite.name.trim().is_empty() || suite.name.len() > 200 {
        return Err(invalid(
            "content",
            format!("{file}: field `name`: a suite name is 1 to 200 characters"),
        ));
    }
    Ok(suite)
}

pub use crate::testing::suite_command;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_suite_names_line_and_field() {
        let e = parse_content(
            "upload",
            "name: s\ncases:\n  - name: c\n    steps:\n      - grpc: {}\n",
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "content");
        assert!(e.message.contains("upload:5"), "{}", e.message);
        assert!(e.message.contains("cases[0].steps[0]"), "{}", e.message);
        assert!(parse_content("u", "{}", Some("toml")).is_err());
    }

    #[test]
    fn suite_commands_name_their_suite() {
        assert_eq!(suite_command("suite:api smoke"), Some("api smoke"));
        assert_eq!(suite_command(" suite: x "), Some("x"));
        assert_eq!(suite_command("suite:"), None);
        assert_eq!(suite_command("cargo test"), None);
    }
}
