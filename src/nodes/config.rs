//! Settings of this domain: flattened into `architect serve` (`ServeConfig`).

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct NodesConfig {
    /// Run the node agent in-process, so this server's own host shows up as a node with live
    /// metrics and serves node commands with no set-up. `false` to leave it out.
    #[arg(long, env = "ARCHITECT_LOCAL_NODE", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub local_node: bool,

    /// Name of this host's node. Default: the host name. An `architect agent` on this same
    /// host needs a different --node-id.
    #[arg(long, env = "ARCHITECT_LOCAL_NODE_NAME")]
    pub local_node_name: Option<String>,

    /// Heartbeat interval of the in-process agent, seconds. Remote agents report their own
    /// (`architect agent --interval`); a node is stale after missing about one heartbeat and
    /// offline after missing three.
    #[arg(long, env = "ARCHITECT_NODE_INTERVAL", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..=3600))]
    pub node_interval: i64,
}

impl Default for NodesConfig {
    /// The same values as the clap defaults (tests build `ServeConfig` field by field).
    fn default() -> Self {
        NodesConfig {
            local_node: true,
            local_node_name: None,
            node_interval: 5,
        }
    }
}
