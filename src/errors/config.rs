//! Settings of this domain: flattened into `architect serve` (`ServeConfig`).

use clap::Args;

#[derive(Args, Clone, Debug, Default)]
pub struct ErrorsConfig {}
