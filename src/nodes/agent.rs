//! The node agent, shared by `architect agent` (over HTTP) and `serve` (its own node,
//! in-process): register, heartbeat with real metrics every interval, and hold a long-poll for
//! commands, running each through the [`CommandHandlers`] registry and posting its result.
//!
//! While the control plane cannot be reached the agent retries with exponential backoff and
//! jitter (never faster than [`BACKOFF_BASE`], never slower than its `max_backoff`), logs once
//! when the outage starts and once when it ends, and never exits. A node removed on the
//! dashboard is registered again.

use super::handlers::CommandHandlers;
use super::sampler::{self, Sampler};
use super::transport::{InProcess, Transport, TransportError};
use super::*;
use crate::backoff::Backoff;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// First retry delay after a failed call; doubles per failure up to `max_backoff`.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Long-poll length for commands: under the 60 s idle cut of common proxies.
pub const DEFAULT_WAIT_S: f64 = 25.0;
/// Attempts to deliver one command's result before leaving it to time out.
const ANSWER_ATTEMPTS: u32 = 4;
/// Commands run at the same time; the agent stops polling while this many run.
const MAX_RUNNING: usize = 32;

#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The node id this agent registers as.
    pub name: String,
    pub hostname: String,
    pub interval: Duration,
    pub wait_s: f64,
    pub max_backoff: Duration,
    /// The tmux server this node's commands drive (`tmux -L`); `None`: the default server.
    pub tmux_socket: Option<String>,
    /// Where `session-start` puts worktrees and Claude Code settings.
    pub data_dir: PathBuf,
    /// The dashboard as this node reaches it (hooks and the LLM gateway of started sessions).
    pub dashboard_url: Option<String>,
    /// This agent's client of the control plane (`architect agent`); `None` in-process.
    /// `session-start` redeems its token claim through it.
    pub control_plane: Option<crate::client::Client>,
}

impl AgentOptions {
    pub fn new(name: &str, interval: Duration) -> AgentOptions {
        AgentOptions {
            name: name.to_string(),
            hostname: sampler::hostname(),
            interval,
            wait_s: DEFAULT_WAIT_S,
            max_backoff: DEFAULT_MAX_BACKOFF,
            tmux_socket: None,
            data_dir: PathBuf::from("./data"),
            dashboard_url: None,
            control_plane: None,
        }
    }
}

pub struct Agent<T: Transport> {
    transport: Arc<T>,
    opts: AgentOptions,
    handlers: CommandHandlers,
    sampler: Arc<Mutex<Sampler>>,
    outage: Arc<Outage>,
}

impl Agent<InProcess> {
    /// This server's own node, served in-process.
    pub fn local(state: AppState) -> Agent<InProcess> {
        let name = state
            .config
            .nodes
            .local_node_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(sampler::node_name_from)
            .unwrap_or_else(|| sampler::node_name_from(&sampler::hostname()));
        let interval = Duration::from_secs(state.config.nodes.node_interval.max(1) as u64);
        let mut opts = AgentOptions::new(&name, interval);
        opts.tmux_socket = state.config.agents.tmux_socket.clone();
        opts.data_dir = state.config.data_dir.clone();
        opts.dashboard_url = state.tasks.local_url().map(str::to_string);
        Agent::new(InProcess(state), opts)
    }
}

impl<T: Transport> Agent<T> {
    /// An agent with the built-in commands; add more with [`Agent::handlers_mut`].
    pub fn new(transport: T, opts: AgentOptions) -> Agent<T> {
        let sampler = Arc::new(Mutex::new(Sampler::new()));
        Agent {
            handlers: CommandHandlers::builtin(&opts, sampler.clone()),
            transport: Arc::new(transport),
            opts,
            sampler,
            outage: Arc::default(),
        }
    }

    pub fn handlers_mut(&mut self) -> &mut CommandHandlers {
        &mut self.handlers
    }

    /// Runs until `stop` completes.
    pub async fn run_until(self, stop: impl Future<Output = ()>) {
        tokio::select! {
            _ = self.run() => {},
            _ = stop => {},
        }
    }

    async fn run(&self) {
        loop {
            let node = self.register().await;
            tracing::info!(node = %node.name, id = node.id, interval_s = self.opts.interval.as_secs(), "node registered; sending heartbeats");
            tokio::select! {
                _ = self.heartbeats(node.id) => {},
                _ = self.commands(node.id) => {},
            }
            tracing::warn!(node = %self.opts.name, "this node was removed on the dashboard; registering it again");
        }
    }

    async fn register(&self) -> Node {
        let req = RegisterNode {
            name: self.opts.name.clone(),
            hostname: Some(self.opts.hostname.chars().take(MAX_HOSTNAME).collect()),
            os: sampler::os_description(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            interval_s: Some(self.interval_s()),
            addresses: Some(sampler::addresses()),
            ..Default::default()
        };
        let mut backoff = Backoff::new(BACKOFF_BASE, self.opts.max_backoff);
        loop {
            match self.transport.register(&req).await {
                Ok(n) => {
                    self.outage.ok();
                    return n;
                }
                Err(e) => {
                    self.outage.fail(&e);
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    fn interval_s(&self) -> i64 {
        (self.opts.interval.as_secs() as i64).clamp(MIN_INTERVAL_S, MAX_INTERVAL_S)
    }

    /// Returns only when the node is gone.
    async fn heartbeats(&self, node: i64) {
        let mut backoff = Backoff::new(BACKOFF_BASE, self.opts.max_backoff);
        loop {
            let mut m = self
                .sampler
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .sample();
            m.interval_s = Some(self.interval_s());
            let wait = match self.transport.heartbeat(node, &m).await {
                Ok(()) => {
                    self.outage.ok();
                    backoff.reset();
                    self.opts.interval
                }
                Err(TransportError::NodeGone) => return,
                Err(e) => {
                    self.outage.fail(&e);
                    backoff.next_delay()
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Returns only when the node is gone.
    async fn commands(&self, node: i64) {
        let mut backoff = Backoff::new(BACKOFF_BASE, self.opts.max_backoff);
        // Dropped with this loop: running handlers stop with the agent.
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            while running.len() >= MAX_RUNNING {
                running.join_next().await;
            }
            match self.transport.poll(node, self.opts.wait_s).await {
                Ok(cmds) => {
                    self.outage.ok();
                    backoff.reset();
                    for c in cmds {
                        let transport = self.transport.clone();
                        let handlers = self.handlers.clone();
                        let max_backoff = self.opts.max_backoff;
                        running.spawn(async move {
                            execute(&*transport, &handlers, node, c, max_backoff).await;
                        });
                    }
                }
                Err(TransportError::NodeGone) => return,
                Err(e) => {
                    self.outage.fail(&e);
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}

/// Runs one delivered command and posts its result (a few tries; after that the control plane
/// times the command out).
async fn execute<T: Transport>(
    transport: &T,
    handlers: &CommandHandlers,
    node: i64,
    c: NodeCommand,
    max_backoff: Duration,
) {
    let started = Instant::now();
    let timeout = Duration::from_secs(c.timeout_s.max(1) as u64);
    let answer = match handlers.run(&c.command, c.args, timeout).await {
        Ok(v) => CommandResult {
            result: Some(v),
            error: None,
        },
        Err(e) => CommandResult {
            result: None,
            error: Some(if e.is_empty() {
                "failed".into()
            } else {
                e.chars().take(MAX_ERROR).collect()
            }),
        },
    };
    tracing::debug!(command = %c.command, id = c.id, ok = answer.error.is_none(), ms = started.elapsed().as_millis() as u64, "command ran");
    let mut backoff = Backoff::new(BACKOFF_BASE, max_backoff);
    for attempt in 1..=ANSWER_ATTEMPTS {
        match transport.answer(node, c.id, &answer).await {
            Ok(()) => return,
            Err(TransportError::Unreachable(_)) if attempt < ANSWER_ATTEMPTS => {
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                tracing::warn!(command = %c.command, id = c.id, error = %e, "could not deliver a command result; the control plane will time it out");
                return;
            }
        }
    }
}

/// One log line when the control plane stops answering, one when it is back; nothing per
/// attempt in between.
#[derive(Default)]
struct Outage {
    down: AtomicBool,
    failures: AtomicU64,
}

impl Outage {
    fn fail(&self, e: &TransportError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::SeqCst) {
            tracing::warn!(error = %e, "cannot talk to the control plane; retrying with backoff (logged again when it is back)");
        }
    }

    fn ok(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            let n = self.failures.swap(0, Ordering::Relaxed);
            tracing::info!(failed_attempts = n, "control plane reachable again");
        }
    }
}
