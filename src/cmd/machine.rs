//! `clocklab machine <ID>`: one virtual machine as this process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `clocklab machine`.
#[derive(Debug, Args)]
pub struct MachineArgs {
    /// The machine's number, 1-based: its port is the ID-th of `ports`.
    id: u32,
    /// The configuration file (JSON or TOML) with `host` and `ports`.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Runs `clocklab machine`.
pub fn run(args: MachineArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("machine {} ({:?}) is not built yet", args.id, args.config)
}
