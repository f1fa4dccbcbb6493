//! Running one step: an HTTP request, a shell command, or a step repeated until its
//! assertions hold. Every step has a deadline (the defaults below when the file gives none),
//! so a dead server or a hung command fails the step instead of hanging the run.

use super::check::{self, Answer};
use super::excerpt;
use super::format::{HttpStep, ShellStep, Step, StepKind, TmuxStep};
use super::runner::{AssertionResult, StepResult};
use super::vars::Vars;
use std::time::{Duration, Instant};

/// An HTTP step's deadline when it states none.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// A shell step's deadline when it states none.
pub const SHELL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `wait_until` keeps trying when it states no timeout.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a `tmux` step waits for its expected screen when it states no timeout.
pub const TMUX_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between two reads of the screen by a `tmux` step.
pub const TMUX_POLL: Duration = Duration::from_millis(100);
/// Lines of the pane a `tmux` step reads when it states none.
pub const TMUX_LINES: u32 = 50;
/// The pause between two tries of `wait_until`.
pub const WAIT_INTERVAL: Duration = Duration::from_millis(200);
/// Bytes of a request or response kept in a result.
pub const EXCERPT: usize = 2_000;

pub(crate) fn secs(s: Option<f64>, default: Duration) -> Duration {
    s.filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

/// Runs `step` (captures go into `vars`) and says how it went.
pub async fn run_step(
    step: &Step,
    index: usize,
    http: &reqwest::Client,
    vars: &mut Vars,
) -> StepResult {
    let started = Instant::now();
    let mut result = StepResult {
        name: step
            .name
            .clone()
            .unwrap_or_else(|| format!("step {}", index + 1)),
        kind: step.kind.name().to_string(),
        passed: false,
        duration_ms: 0,
        tries: 1,
        request: None,
        response: None,
        error: None,
        assertions: Vec::new(),
        answer: None,
    };
    let answer = match &step.kind {
        StepKind::Http(h) => run_http(h, http, vars, &mut result).await,
        StepKind::Shell(s) => run_shell(s, vars, &mut result).await,
        StepKind::Tmux(t) => run_tmux(t, vars, &mut result).await,
        StepKind::WaitUntil(w) => {
            let deadline = started + secs(w.timeout, WAIT_TIMEOUT);
            let interval = secs(w.interval, WAIT_INTERVAL);
            let mut tries = 0;
            loop {
                tries += 1;
                let inner = Box::pin(run_step(&w.step, index, http, vars)).await;
                let done = inner.passed || Instant::now() + interval > deadline;
                if done {
                    result.request = inner.request;
                    result.response = inner.response;
                    result.assertions = inner.assertions;
                    result.tries = tries;
                    result.error = match (inner.passed, inner.error) {
                        (true, _) => None,
                        (false, e) => Some(format!(
                            "not true after {tries} tries in {:.1} s{}",
                            started.elapsed().as_secs_f64(),
                            e.map(|e| format!(": {e}")).unwrap_or_default()
                        )),
                    };
                    break if inner.passed {
                        Ok(inner.answer)
                    } else {
                        Err(())
                    };
                }
                tokio::time::sleep(interval).await;
            }
            .map(|a| a.unwrap_or_default())
        }
    };
    if let Ok(a) = answer {
        for (name, c) in &step.capture {
            match check::capture(c, &a) {
                Ok(v) => vars.set(name, v),
                Err(e) => {
                    result.error.get_or_insert(format!("capture `{name}`: {e}"));
                }
            }
        }
        for asrt in &step.asserts {
            let outcome = check::evaluate(asrt, &a, vars);
            result.assertions.push(AssertionResult {
                assertion: vars.redact(&check::describe(asrt)),
                passed: outcome.is_ok(),
                actual: outcome.err(),
            });
        }
        result.answer = Some(a);
    }

    result.duration_ms = started.elapsed().as_millis() as u64;
    result.passed = result.error.is_none() && result.assertions.iter().all(|a| a.passed);
    result
}

async fn run_http(
    h: &HttpStep,
    http: &reqwest::Client,
    vars: &Vars,
    r: &mut StepResult,
) -> Result<Answer, ()> {
    let fail = |r: &mut StepResult, e: String| {
        r.error = Some(vars.redact(&e));
        Err(())
    };
    let url = match vars.fill(&h.url) {
        Ok(u) => u,
        Err(e) => return fail(r, format!("url: {e}")),
    };
    let method = match reqwest::Method::from_bytes(h.method.to_uppercase().as_bytes()) {
        Ok(m) => m,
        Err(_) => return fail(r, format!("method `{}` is not an HTTP method", h.method)),
    };
    let mut req = http
        .request(method.clone(), &url)
        .timeout(secs(h.timeout, HTTP_TIMEOUT));
    let mut shown = format!("{method} {url}\n");
    for (k, v) in &h.headers {
        match vars.fill(v) {
            Ok(v) => {
                // Credentials stay out of results whatever their source.
                let hidden = [
                    "authorization",
                    "cookie",
                    "x-api-key",
                    "proxy-authorization",
                ]
                .contains(&k.to_ascii_lowercase().as_str());
                let v_shown = if hidden { "[redacted]" } else { v.as_str() };
                shown.push_str(&format!("{k}: {v_shown}\n"));
                req = req.header(k, v);
            }
            Err(e) => return fail(r, format!("headers.{k}: {e}")),
        }
    }
    let mut query = Vec::new();
    for (k, v) in &h.query {
        match vars.fill(v) {
            Ok(v) => query.push((k.clone(), v)),
            Err(e) => return fail(r, format!("query.{k}: {e}")),
        }
    }
    req = req.query(&query);
    if let Some(j) = &h.json {
        match vars.fill_json(j) {
            Ok(j) => {
                shown.push_str(&format!("\n{j}"));
                req = req.json(&j);
            }
            Err(e) => return fail(r, format!("json: {e}")),
        }
    } else if let Some(f) = &h.form {
        let mut fields = Vec::new();
        for (k, v) in f {
            match vars.fill(v) {
                Ok(v) => fields.push((k.clone(), v)),
                Err(e) => return fail(r, format!("form.{k}: {e}")),
            }
        }
        req = req.form(&fields);
    } else if let Some(b) = &h.body {
        match vars.fill(b) {
            Ok(b) => {
                shown.push_str(&format!("\n{b}"));
                req = req.body(b);
            }
            Err(e) => return fail(r, format!("body: {e}")),
        }
    }
    r.request = Some(excerpt(&vars.redact(&shown), EXCERPT));
    let started = Instant::now();
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => return fail(r, format!("request failed: {}", error_chain(&e))),
    };
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let cookies = resp
        .cookies()
        .map(|c| (c.name().to_string(), c.value().to_string()))
        .collect();
    let body = match resp.text().await {
        Ok(b) => b,
        Err(e) => return fail(r, format!("reading the response: {}", error_chain(&e))),
    };
    let duration = started.elapsed();
    r.response = Some(excerpt(
        &vars.redact(&format!("HTTP {status}\n{body}")),
        EXCERPT,
    ));
    Ok(Answer {
        status: Some(status),
        headers,
        cookies,
        body,
        duration,
        ..Default::default()
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

async fn run_shell(s: &ShellStep, vars: &Vars, r: &mut StepResult) -> Result<Answer, ()> {
    let fail = |r: &mut StepResult, e: String| {
        r.error = Some(vars.redact(&e));
        Err(())
    };
    let command = match vars.fill(&s.command) {
        Ok(c) => c,
        Err(e) => return fail(r, format!("command: {e}")),
    };
    r.request = Some(excerpt(&vars.redact(&command), EXCERPT));
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &s.cwd {
        match vars.fill(cwd) {
            Ok(c) => {
                cmd.current_dir(c);
            }
            Err(e) => return fail(r, format!("cwd: {e}")),
        }
    }
    for (k, v) in &s.env {
        match vars.fill(v) {
            Ok(v) => {
                cmd.env(k, v);
            }
            Err(e) => return fail(r, format!("env.{k}: {e}")),
        }
    }
    let started = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(r, format!("cannot start sh: {e}")),
    };
    let pid = child.id();
    let timeout = secs(s.timeout, SHELL_TIMEOUT);
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return fail(r, format!("waiting for the command: {e}")),
        Err(_) => {
            // The whole group: `sh -c` may have started children of its own.
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return fail(r, format!("timed out after {:.1} s", timeout.as_secs_f64()));
        }
    };
    let a = Answer {
        exit_code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        duration: started.elapsed(),
        ..Default::default()
    };
    r.response = Some(excerpt(
        &vars.redact(&format!(
            "exit {}\n{}{}",
            a.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "by signal".into()),
            a.stdout,
            a.stderr
        )),
        EXCERPT,
    ));
    Ok(a)
}

async fn run_tmux(t: &TmuxStep, vars: &Vars, r: &mut StepResult) -> Result<Answer, ()> {
    use crate::tmux::SessionName;
    let fail = |r: &mut StepResult, e: String| {
        r.error = Some(vars.redact(&e));
        Err(())
    };
    let session = match vars.fill(&t.session).map(|s| SessionName::parse(&s)) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return fail(r, format!("session: {}", e.message)),
        Err(e) => return fail(r, format!("session: {e}")),
    };
    let socket = match &t.socket {
        Some(s) => match vars.fill(s).map(|s| SessionName::parse(&s)) {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => return fail(r, format!("socket: {}", e.message)),
            Err(e) => return fail(r, format!("socket: {e}")),
        },
        None => None,
    };
    let send = match t.send.as_deref().map(|s| vars.fill(s)).transpose() {
        Ok(s) => s,
        Err(e) => return fail(r, format!("send: {e}")),
    };
    let mut shown = format!("tmux {session}");
    if let Some(s) = &send {
        shown.push_str(&format!("\nsend: {s}"));
    }
    if !t.keys.is_empty() {
        shown.push_str(&format!("\nkeys: {}", t.keys.join(" ")));
    }
    r.request = Some(excerpt(&vars.redact(&shown), EXCERPT));
    let lines = t.lines.unwrap_or(TMUX_LINES);
    let wait = secs(t.timeout, TMUX_TIMEOUT);
    let enter = t.enter.unwrap_or(true);
    let keys = t.keys.clone();
    let expect = t.expect.clone();
    let expect_regex = t.expect_regex.as_ref().map(|p| p.0.clone());
    // The driver's calls run in a task of their own, on owned values (boxed: its future's
    // type stays out of the runner's).
    let ran = tokio::spawn(drive_tmux(TmuxDrive {
        socket,
        session: session.clone(),
        send,
        enter,
        keys,
        expect,
        expect_regex,
        lines,
        wait,
    }))
    .await;
    let (screen, took) = match ran {
        Ok(Ok(v)) => v,
        Ok(Err((e, screen))) => {
            r.response = screen.map(|s| excerpt(&vars.redact(&s), EXCERPT));
            return fail(r, e);
        }
        Err(e) => return fail(r, format!("the tmux step stopped: {e}")),
    };
    r.response = Some(excerpt(&vars.redact(&screen), EXCERPT));
    Ok(Answer {
        stdout: screen,
        duration: took,
        ..Default::default()
    })
}

/// A `tmux` step's work, owned.
struct TmuxDrive {
    socket: Option<crate::tmux::SessionName>,
    session: crate::tmux::SessionName,
    send: Option<String>,
    enter: bool,
    keys: Vec<String>,
    expect: Option<String>,
    expect_regex: Option<regex::Regex>,
    lines: u32,
    wait: Duration,
}

type TmuxOutcome = Result<(String, Duration), (String, Option<String>)>;

/// Types, presses, then reads the screen until it shows what is expected or the wait ends:
/// the screen and the time taken, or why not (with the last screen read, if any).
fn drive_tmux(
    d: TmuxDrive,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = TmuxOutcome> + Send>> {
    use crate::tmux::{CaptureMode, Tmux};
    Box::pin(async move {
        let TmuxDrive {
            socket,
            session,
            send,
            enter,
            keys,
            expect,
            expect_regex,
            lines,
            wait,
        } = d;
        let tmux = Tmux::new(socket.as_ref().map(|s| s.as_str()));
        let started = Instant::now();
        if let Some(text) = &send {
            tmux.send_text(&session, text, enter, Duration::ZERO)
                .await
                .map_err(|e| (format!("sending keys: {e}"), None))?;
        }
        if !keys.is_empty() {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            tmux.send_keys(&session, &keys)
                .await
                .map_err(|e| (format!("pressing keys: {e}"), None))?;
        }
        let deadline = started + wait;
        loop {
            let screen = tmux
                .capture(&session, lines, CaptureMode::Plain)
                .await
                .map_err(|e| (format!("reading the screen: {e}"), None))?;
            let seen = expect.as_deref().is_none_or(|e| screen.contains(e))
                && expect_regex.as_ref().is_none_or(|p| p.is_match(&screen));
            if seen {
                return Ok((screen, started.elapsed()));
            }
            if Instant::now() + TMUX_POLL > deadline {
                let what = match (&expect, &expect_regex) {
                    (Some(e), _) => format!("`{e}`"),
                    (None, Some(p)) => format!("a match of `{}`", p.as_str()),
                    (None, None) => String::new(),
                };
                return Err((
                    format!(
                        "the screen did not show {what} within {:.1} s",
                        started.elapsed().as_secs_f64()
                    ),
                    Some(screen),
                ));
            }
            tokio::time::sleep(TMUX_POLL).await;
        }
    })
}
