//! `architect agent`.

use clap::Args;

#[derive(Args, Debug)]
pub struct AgentArgs {}

pub async fn run(_args: AgentArgs) -> anyhow::Result<()> {
    anyhow::bail!("`architect agent` is not built yet")
}
