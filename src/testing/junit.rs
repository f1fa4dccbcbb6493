//! JUnit XML, in the shape CI systems read (Jenkins, GitLab, GitHub actions' reporters):
//! `<testsuites>` → one `<testsuite>` per suite file → one `<testcase>` per case, with a
//! `<failure>` naming the failing assertion, and the retries of a flaky case in
//! `<system-out>`. Texts are already redacted by the runner.

use super::runner::{Outcome, SuiteResult};
use std::fmt::Write;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

pub fn junit(results: &[SuiteResult]) -> String {
    let tests: usize = results
        .iter()
        .map(|r| r.cases.len().max(usize::from(r.error.is_some())))
        .sum();
    let failures: usize = results.iter().map(|r| r.failed).sum();
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let time: u64 = results.iter().map(|r| r.duration_ms).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"architect test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
        secs(time)
    );
    for r in results {
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{}\" file=\"{}\">",
            esc(&r.suite),
            r.cases.len().max(usize::from(r.error.is_some())),
            r.failed,
            usize::from(r.error.is_some()),
            secs(r.duration_ms),
            esc(&r.file)
        );
        if let Some(e) = &r.error {
            let _ = writeln!(
                x,
                "    <testcase name=\"(suite)\" classname=\"{}\" time=\"0.000\">\n      <error message=\"{}\" type=\"error\"/>\n    </testcase>",
                esc(&r.suite),
                esc(e)
            );
        }
        for c in &r.cases {
            let _ = write!(
                x,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
                esc(&c.name),
                esc(&r.suite),
                secs(c.duration_ms)
            );
            if c.outcome == Outcome::Failed {
                let failure = c.failure.as_deref().unwrap_or("failed");
                let detail: Vec<String> = c
                    .attempts
                    .last()
                    .into_iter()
                    .flat_map(|a| a.steps.iter())
                    .filter(|s| !s.passed)
                    .flat_map(|s| [s.request.clone(), s.response.clone()])
                    .flatten()
                    .collect();
                let _ = write!(
                    x,
                    "\n      <failure message=\"{}\" type=\"assertion\">{}</failure>\n    ",
                    esc(failure),
                    esc(&detail.join("\n---\n"))
                );
            }
            if c.attempts.len() > 1 {
                let _ = write!(
                    x,
                    "\n      <system-out>{} after {} attempts</system-out>\n    ",
                    if c.outcome == Outcome::Flaky {
                        "flaky: passed"
                    } else {
                        "failed"
                    },
                    c.attempts.len(),
                );
            }
            x.push_str("</testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}
