//! `architect exec-guard` (hidden): runs one program so that it, and every process it starts in
//! its process group, dies with the process that started the guard — even when that process
//! is killed with SIGKILL and has no chance to clean up. `architect worker` starts every task
//! process through it (`tasks::process::ExecGuard` builds the command line).
//!
//! The protocol, in order:
//! 1. Install handlers for the signals the guard waits for (so none is lost or kills it before
//!    it waits), then ask the kernel for SIGTERM when the parent dies (`PR_SET_PDEATHSIG`).
//!    SIGTERM and not SIGKILL:
//!    the guard must live long enough to kill the rest of the group, which a kernel-sent
//!    SIGKILL would not let it do (the death signal is not inherited by the program's own
//!    children, so the group has to be killed by someone).
//! 2. Check that the parent is still `--expect-parent`: if it died between its fork and step 1,
//!    we were already re-parented and no death signal will ever come, so exit at once.
//! 3. Start the program as a child (same process group, same stdio, cwd and environment; its
//!    signal handlers start at their defaults), then wait:
//!    * the program exited: exit the same way (its code, or its signal where the guard can).
//!    * a termination signal once the parent is gone (our parent pid is no longer the expected
//!      one): SIGKILL our whole process group (when the guard leads it, as under
//!      `tasks::process`), else the program alone.
//!    * a termination signal while the parent lives: ignored. The worker's timeout and cancel
//!      signal the whole group, so the program has it already; and it may be a death signal
//!      that did not mean the process died (below).
//!
//! The death signal fires when the parent *thread* that forked the guard exits, not only when
//! the parent process does. A multi-threaded parent that dies (a SIGKILLed worker) hands its
//! children from exiting thread to live thread, and the signal fires at each hand-over while
//! `getppid()` still reads the parent's pid; the last one, to init or a subreaper, changes it.
//! Hence the check above, and hence a spawner thread that exits while the worker lives costs
//! nothing. The spawning side should still fork from a long-lived thread (see
//! `tasks::process::ExecGuard`).
//!
//! The guard runs before the multi-threaded runtime is built (see `main.rs`), on a
//! current-thread runtime of its own: one small process per task.

use clap::Args;
use nix::sys::prctl;
use nix::sys::signal::{killpg, raise, Signal};
use nix::unistd::{getpgrp, getpid, getppid, Pid};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;

/// The subcommand's name; `tasks::process::ExecGuard` builds command lines with it.
pub const SUBCOMMAND: &str = "exec-guard";

/// Exit code when the program cannot be started (as a shell reports "command not found").
const CANNOT_START: u8 = 127;

#[derive(Args, Debug, Clone)]
pub struct ExecGuardArgs {
    /// Kill the program (and its process group) when the parent process dies, however it dies.
    #[arg(long, requires = "expect_parent")]
    pub die_with_parent: bool,

    /// The parent's pid as the parent knows it; if the guard's parent is already another
    /// process, the parent died before the guard could watch it, and the program never starts.
    #[arg(long, value_name = "PID")]
    pub expect_parent: Option<i32>,

    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub command: Vec<OsString>,
}

/// The guard's own command line when this process was started as `architect exec-guard ...`.
/// Parsed apart from the main command line, with no setting read from the environment: the
/// guard's environment is the task's, and nothing in it (an `ARCHITECT_LOG_FORMAT` the main
/// parser would refuse) may keep the program from starting.
pub fn invoked() -> Option<ExecGuardArgs> {
    #[derive(clap::Parser)]
    #[command(name = "architect exec-guard")]
    struct Standalone {
        #[command(flatten)]
        args: ExecGuardArgs,
    }
    let mut argv = std::env::args_os();
    let _program = argv.next();
    if argv.next()? != SUBCOMMAND {
        return None;
    }
    use clap::Parser;
    Some(Standalone::parse_from(std::iter::once(OsString::from(SUBCOMMAND)).chain(argv)).args)
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("architect exec-guard: {msg}");
    ExitCode::from(CANNOT_START)
}

/// Runs the guard to the program's end. Exits (or dies) the way the program did.
pub fn run(args: ExecGuardArgs) -> ExitCode {
    // One thread: the current-thread runtime runs on this one and starts none of its own.
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(guard(args)),
        Err(e) => fail(format_args!("cannot start: {e}")),
    }
}

async fn guard(args: ExecGuardArgs) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let Some((program, rest)) = args.command.split_first() else {
        return fail("no program given");
    };
    // Handlers, not a blocked mask: a blocked mask would be inherited by the program, while
    // handlers go back to their defaults when it starts.
    let mut streams = Vec::new();
    for (kind, sig) in [
        (SignalKind::terminate(), Signal::SIGTERM),
        (SignalKind::interrupt(), Signal::SIGINT),
        (SignalKind::hangup(), Signal::SIGHUP),
        (SignalKind::quit(), Signal::SIGQUIT),
    ] {
        match signal(kind) {
            Ok(s) => streams.push(s),
            Err(e) => return fail(format_args!("cannot watch {sig}: {e}")),
        }
    }
    let parent = args.expect_parent.map(Pid::from_raw);
    if args.die_with_parent {
        if let Err(e) = prctl::set_pdeathsig(Signal::SIGTERM) {
            return fail(format_args!("cannot ask for the parent-death signal: {e}"));
        }
        if parent != Some(getppid()) {
            return fail("the parent process is already gone");
        }
    }
    let parent_gone = || args.die_with_parent && parent != Some(getppid());
    let mut child = match tokio::process::Command::new(program).args(rest).spawn() {
        Ok(c) => c,
        Err(e) => {
            return fail(format_args!(
                "cannot start {}: {e}",
                program.to_string_lossy()
            ))
        }
    };
    loop {
        let any_signal =
            futures_util::future::select_all(streams.iter_mut().map(|s| Box::pin(s.recv())));
        tokio::select! {
            status = child.wait() => {
                return match status {
                    Ok(s) => exit_like(s),
                    Err(e) => fail(format_args!("cannot wait for the program: {e}")),
                };
            }
            (got, ..) = any_signal => if got.is_none() { continue },
        }
        if !parent_gone() {
            // Not forwarded: the worker signals the whole group, so the program got it too;
            // and it may be the death signal of one parent thread while the parent process
            // lives on (see the module doc).
            continue;
        }
        if getpgrp() == getpid() {
            // The whole group, the guard included.
            let _ = killpg(getpgrp(), Signal::SIGKILL);
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
        return ExitCode::from(128 + Signal::SIGKILL as u8);
    }
}

/// Ends the guard the way the program ended: its exit code; for a signal, death by the same
/// signal where the guard can die of it, else the shell's `128 + signal` (the signals the guard
/// handles, and SIGPIPE, which std ignores, would not end it).
fn exit_like(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1));
    }
    let Some(raw) = status.signal() else {
        return ExitCode::FAILURE;
    };
    if let Ok(sig) = Signal::try_from(raw) {
        let handled = [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGPIPE,
        ];
        if !handled.contains(&sig) {
            let _ = raise(sig);
        }
    }
    ExitCode::from(u8::try_from(128 + raw).unwrap_or(255))
}
