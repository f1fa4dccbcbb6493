//! The one integration-test binary: each module starts real servers on 127.0.0.1 and talks
//! HTTP to them (see tests/support).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "integration/accounts.rs"]
mod accounts;
#[path = "integration/agents.rs"]
mod agents;
#[path = "integration/assign.rs"]
mod assign;
#[path = "integration/auth.rs"]
mod auth;
#[path = "integration/autopilot.rs"]
mod autopilot;
#[path = "integration/autopilot_agents.rs"]
mod autopilot_agents;
#[path = "integration/autopilot_split.rs"]
mod autopilot_split;
#[path = "integration/browser.rs"]
mod browser;
#[path = "integration/claim_plan.rs"]
mod claim_plan;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/delivery.rs"]
mod delivery;
#[path = "integration/docs.rs"]
mod docs;
#[path = "integration/errors.rs"]
mod errors;
#[path = "integration/failover.rs"]
mod failover;
#[path = "integration/files.rs"]
mod files;
#[path = "integration/first_hour.rs"]
mod first_hour;
#[path = "integration/guard.rs"]
mod guard;
#[path = "integration/input.rs"]
mod input;
#[path = "integration/interaction_pages.rs"]
mod interaction_pages;
#[path = "integration/layout.rs"]
mod layout;
#[path = "integration/live.rs"]
mod live;
#[path = "integration/llm.rs"]
mod llm;
#[path = "integration/llm_rollups.rs"]
mod llm_rollups;
#[path = "integration/nodes.rs"]
mod nodes;
#[path = "integration/nodes_reach.rs"]
mod nodes_reach;
#[path = "integration/original_wire.rs"]
mod original_wire;
#[path = "integration/pages.rs"]
mod pages;
#[path = "integration/planning.rs"]
mod planning;
#[path = "integration/planning_llm.rs"]
mod planning_llm;
#[path = "integration/postgres.rs"]
mod postgres;
#[path = "integration/principals.rs"]
mod principals;
#[path = "integration/read_cache.rs"]
mod read_cache;
#[path = "integration/replicas.rs"]
mod replicas;
#[path = "integration/serve_daemon.rs"]
mod serve_daemon;
#[path = "integration/sources.rs"]
mod sources;
#[path = "integration/suites_server.rs"]
mod suites_server;
#[path = "integration/supervised_replicas.rs"]
mod supervised_replicas;
#[path = "integration/system.rs"]
mod system;
#[path = "integration/task_counts.rs"]
mod task_counts;
#[path = "integration/task_exec.rs"]
mod task_exec;
#[path = "integration/tasks.rs"]
mod tasks;
#[path = "integration/termius.rs"]
mod termius;
#[path = "integration/test_suites.rs"]
mod test_suites;
#[path = "integration/tmux_nodes.rs"]
mod tmux_nodes;
#[path = "integration/tracking.rs"]
mod tracking;
#[path = "integration/trust.rs"]
mod trust;
#[path = "integration/ui.rs"]
mod ui;
#[path = "integration/vault.rs"]
mod vault;
