//! Data-driven test suites (SPEC "Data-Driven Testing", docs/test-suites.md): suites written
//! as JSON or YAML (`format`, read by `parse` with line- and field-exact errors), run by
//! `runner` (cases in parallel, steps in order, retries and flaky cases recorded) through
//! `steps` (http, shell, tmux through the agents' driver in `crate::tmux`, wait_until) and `check` (captures and assertions), with `vars`
//! filling `{{name}}` and hiding the values of `vault:NAME` references; `junit` writes the
//! JUnit XML that CI systems read. `architect test` (cli/test.rs) is the first caller; the
//! worker's `test_suite` task is the next. A leaf: it knows no domain (vault references are
//! resolved by the caller and handed in).

pub mod check;
pub mod format;
pub mod junit;
pub mod parse;
pub mod runner;
pub mod steps;
pub mod vars;

pub use format::Suite;
pub use parse::{parse_suite, read_suite, SuiteError};
pub use runner::{run_suite, CaseResult, Outcome, RunOptions, SuiteResult};

/// `test_command = "suite:NAME"` makes a project's `test` task run its stored suite NAME.
pub const SUITE_COMMAND_PREFIX: &str = "suite:";

/// `suite:NAME` in a project's test command: the NAME.
pub fn suite_command(command: &str) -> Option<&str> {
    command
        .trim()
        .strip_prefix(SUITE_COMMAND_PREFIX)
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

/// `text` cut to at most `max` bytes (on a character boundary), with how much was left out.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

/// The JSON Schema of the suite format, for editors (docs/test-suite.schema.json).
pub fn format_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(format::Suite)).unwrap_or_default()
}
