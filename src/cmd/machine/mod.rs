//! `clocklab machine <ID>`: one virtual machine as this process.
//!
//! Standalone ([`standalone`], the classic exercise, one terminal per
//! machine): the address and ports come from the configuration, the settings
//! from its first experiment; the machines connect, agree on a start instant
//! and tick together, and each writes its manifest beside its log.
//! Orchestrated ([`orchestrated`], `--orchestrated`, started by `clocklab
//! run`): everything comes over stdin, see `crate::orchestrate`.

mod orchestrated;
mod standalone;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;

/// Arguments of `clocklab machine`.
#[derive(Debug, Args)]
pub struct MachineArgs {
    /// The machine's number, 1-based: its port is the ID-th of `ports`.
    id: u32,
    /// The configuration file (JSON or TOML) with `host` and `ports`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A seed: the machine's seed derives from it and its id (random, and
    /// printed, without one).
    #[arg(long)]
    seed: Option<u64>,
    /// The run token, 32 hexadecimal digits (default: the configuration's
    /// `token`; without one, a token derived from `host` and `ports`).
    #[arg(long)]
    token: Option<String>,
    /// The folder for the log files.
    #[arg(long, default_value = "logs")]
    out: PathBuf,
    /// Which log files to write (default: the configuration's `log_format`).
    #[arg(long, value_enum)]
    log_format: Option<super::LogFormatArg>,
    /// The clocks to keep, e.g. `lamport,vector,hlc` (default: the
    /// configuration's `clocks`); every machine of the run needs the same.
    #[arg(long, value_delimiter = ',', value_name = "CLOCKS")]
    clocks: Option<Vec<String>>,
    /// Seconds to wait for every peer to connect (default: the
    /// configuration's `connect_timeout`); also bounds the wait for the
    /// peers' last messages at the end.
    #[arg(long, value_name = "S")]
    connect_timeout: Option<f64>,
    /// Run even if the log would be larger than 10 GB or the free space of
    /// the output's disk.
    #[arg(long)]
    yes: bool,
    /// Started by `clocklab run`: take the settings from stdin, report on stdout.
    #[arg(long, hide = true)]
    orchestrated: bool,
}

/// Runs `clocklab machine`.
pub fn run(args: MachineArgs) -> anyhow::Result<ExitCode> {
    if args.orchestrated { orchestrated::run(args.id) } else { standalone::run(args) }
}

/// The first address `host:port` resolves to.
fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}:{port}"))?
        .next()
        .ok_or_else(|| anyhow!("{host}:{port} resolves to no address"))
}
