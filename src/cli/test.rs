//! `architect test`: run data-driven test suites (src/testing/) against a live system, or
//! check them. Exit codes: 0 all passed, 1 a case failed (or a suite could not run), 2 a
//! file or a flag is invalid.

use super::{client, output};
use crate::config::ClientConfig;
use crate::testing::{self, Outcome, RunOptions, Suite, SuiteResult};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[derive(clap::Subcommand, Debug)]
pub enum TestCmd {
    /// Run suites: files, or every .yaml/.yml/.json under a directory. `vault:NAME` values
    /// are read from the server's vault (--url, --token), never printed.
    Run(RunArgs),
    /// Check suite files without running them; each error names its file, line and field.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the suite format (docs/test-suite.schema.json).
    Schema,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Suite files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// A variable, overriding the suite's (repeatable): --var base=http://127.0.0.1:8080.
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
    /// Run only cases with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "T")]
    tags: Vec<String>,
    /// Cases run at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallel: u16,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(cfg: &ClientConfig, cmd: TestCmd) -> anyhow::Result<u8> {
    match cmd {
        TestCmd::Schema => {
            output::json(&testing::format_schema())?;
            Ok(0)
        }
        TestCmd::Validate { files } => {
            let Some(suites) = read_all(&files) else {
                return Ok(2);
            };
            for (file, s) in &suites {
                let steps: usize = s.cases.iter().map(|c| c.steps.len()).sum();
                println!("{file}: ok ({} cases, {steps} steps)", s.cases.len());
            }
            Ok(0)
        }
        TestCmd::Run(args) => run_suites(cfg, args).await,
    }
}

/// Every suite under `paths`, or `None` after printing each file's errors.
fn read_all(paths: &[PathBuf]) -> Option<Vec<(String, Suite)>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            suite_files(p, &mut files);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        eprintln!("error: no suite files (.yaml, .yml, .json) under {paths:?}");
        return None;
    }
    let mut suites = Vec::new();
    let mut bad = false;
    for f in files {
        match testing::read_suite(&f) {
            Ok(s) => suites.push((f.display().to_string(), s)),
            Err(e) => {
                eprintln!("error: {e}");
                bad = true;
            }
        }
    }
    (!bad).then_some(suites)
}

fn suite_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            suite_files(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        {
            out.push(p);
        }
    }
}

async fn run_suites(cfg: &ClientConfig, args: RunArgs) -> anyhow::Result<u8> {
    let mut vars = BTreeMap::new();
    for v in &args.vars {
        match v.split_once('=') {
            Some((k, val)) if !k.trim().is_empty() => {
                vars.insert(k.trim().to_string(), val.to_string());
            }
            _ => {
                eprintln!("error: --var `{v}`: expected NAME=VALUE");
                return Ok(2);
            }
        }
    }
    let Some(suites) = read_all(&args.paths) else {
        return Ok(2);
    };
    let names = testing::vars::vault_references(
        suites
            .iter()
            .flat_map(|(_, s)| s.variables.values())
            .chain(vars.values()),
    );
    let mut secrets = BTreeMap::new();
    if !names.is_empty() {
        let c = client(cfg)?;
        for name in names {
            let info = c
                .secret_by_name(&name, false)
                .await
                .map_err(|e| anyhow::anyhow!("vault secret `{name}`: {e}"))?;
            let view = c
                .reveal_secret(info.id, None)
                .await
                .map_err(|e| anyhow::anyhow!("vault secret `{name}`: {e}"))?;
            secrets.insert(name, view.value.expose().to_string());
        }
    }
    let opts = RunOptions {
        parallel: usize::from(args.parallel),
        tags: args.tags.clone(),
        vars,
        secrets,
    };
    let total: usize = suites
        .iter()
        .map(|(_, s)| {
            s.cases
                .iter()
                .filter(|c| opts.tags.is_empty() || c.tags.iter().any(|t| opts.tags.contains(t)))
                .count()
        })
        .sum();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    let mut results: Vec<SuiteResult> = Vec::new();
    for (file, suite) in &suites {
        let name = &suite.name;
        let on_case = |c: &testing::CaseResult| {
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            let text = format!("{name} / {}: {}", c.name, label(c.outcome));
            output::progress(tty, n, total, &text, started);
        };
        results.push(testing::run_suite(suite, file, &opts, &on_case).await);
    }
    if tty && total > 0 {
        eprintln!();
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, testing::junit::junit(&results))
            .map_err(|e| anyhow::anyhow!("--junit {}: {e}", path.display()))?;
    }
    if args.json {
        output::json(&results)?;
    } else {
        summary(&results);
    }
    Ok(if results.iter().all(SuiteResult::ok) {
        0
    } else {
        1
    })
}

fn label(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Flaky => "flaky",
        Outcome::Failed => "FAILED",
    }
}

fn summary(results: &[SuiteResult]) {
    let mut rows = Vec::new();
    for r in results {
        if let Some(e) = &r.error {
            rows.push(vec![
                r.suite.clone(),
                "(suite)".into(),
                "ERROR".into(),
                "".into(),
                "".into(),
                e.clone(),
            ]);
        }
        for c in &r.cases {
            rows.push(vec![
                r.suite.clone(),
                c.name.clone(),
                label(c.outcome).into(),
                c.attempts.len().to_string(),
                format!("{} ms", c.duration_ms),
                c.failure.clone().unwrap_or_default(),
            ]);
        }
    }
    output::table(
        &["suite", "case", "result", "attempts", "time", "failure"],
        rows,
    );
    // The full failure lines: the table cuts long cells.
    for r in results {
        for c in r.cases.iter().filter(|c| c.outcome == Outcome::Failed) {
            if let Some(f) = &c.failure {
                println!("FAILED {} / {}: {f}", r.suite, c.name);
            }
        }
    }
    let sum = |f: fn(&SuiteResult) -> usize| results.iter().map(f).sum::<usize>();
    println!(
        "{} passed, {} failed, {} flaky",
        sum(|r| r.passed + r.flaky),
        sum(|r| r.failed + usize::from(r.error.is_some())),
        sum(|r| r.flaky)
    );
}
