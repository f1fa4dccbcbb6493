//! The node calls of the typed client: what `architect agent` sends (register, heartbeat,
//! command long-poll, results) and the control-plane side (nodes, commands). Request and
//! response types are the handlers' own.

use super::{Client, Result};
use crate::nodes::history::MetricSeries;
use crate::nodes::*;

impl Client {
    pub async fn register_node(&self, r: &RegisterNode) -> Result<Node> {
        self.post("/api/nodes", r).await
    }

    pub async fn node_heartbeat(&self, id: i64, m: &NodeMetrics) -> Result<Node> {
        self.post(&format!("/api/nodes/{id}/heartbeat"), m).await
    }

    /// Long-polls up to `wait_s` (≤ 50; the client's 60 s timeout covers it).
    pub async fn poll_node_commands(&self, id: i64, wait_s: f64) -> Result<CommandBatch> {
        self.get(
            &format!("/api/nodes/{id}/commands"),
            &[("wait", format!("{wait_s}"))],
        )
        .await
    }

    pub async fn answer_node_command(
        &self,
        id: i64,
        command: i64,
        r: &CommandResult,
    ) -> Result<NodeCommand> {
        self.post(&format!("/api/nodes/{id}/commands/{command}/result"), r)
            .await
    }

    pub async fn nodes(&self) -> Result<Vec<Node>> {
        self.get("/api/nodes", &[]).await
    }

    pub async fn node(&self, id: i64) -> Result<Node> {
        self.get(&format!("/api/nodes/{id}"), &[]).await
    }

    pub async fn node_metrics(&self, id: i64, range: &str) -> Result<MetricSeries> {
        self.get(
            &format!("/api/nodes/{id}/metrics"),
            &[("range", range.to_string())],
        )
        .await
    }

    pub async fn enqueue_node_command(&self, id: i64, c: &NewCommand) -> Result<NodeCommand> {
        self.post(&format!("/api/nodes/{id}/commands"), c).await
    }

    /// A command, waiting up to `wait_s` for its result.
    pub async fn node_command(&self, id: i64, command: i64, wait_s: f64) -> Result<NodeCommand> {
        self.get(
            &format!("/api/nodes/{id}/commands/{command}"),
            &[("wait", format!("{wait_s}"))],
        )
        .await
    }
}
