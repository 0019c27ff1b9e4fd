//! One module per subcommand; each calls the same library code as `serve`.

pub mod apply;
pub mod audit;
pub mod check;
pub mod demo;
pub mod discover;
pub mod inventory;
pub mod keygen;
pub mod serve;

use clap::Args;
use std::path::PathBuf;

/// `--config FILE` (or `CUSTOMS_CONFIG`, or `./customs.yaml`).
#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// Config file.
    #[arg(long, env = "CUSTOMS_CONFIG", default_value_os_t = crate::default_config())]
    pub config: PathBuf,
}
