//! `architect chat`.

use clap::Args;

#[derive(Args, Debug)]
pub struct ChatArgs {}

pub async fn run(_args: ChatArgs) -> anyhow::Result<()> {
    anyhow::bail!("`architect chat` is not built yet")
}
