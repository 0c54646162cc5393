//! `clocklab hosts check FILE`: every host of a hosts file asked, through
//! its launcher, before anything runs: reachable, the same clocklab
//! version, a free port of its address, its clock's offset to this
//! computer's. `clocklab run --hosts` makes the same checks first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use clocklab_config::HostSpec;
use clocklab_orchestrate::Launcher;

use super::UsageError;

/// Arguments of `clocklab hosts`.
#[derive(Debug, Args)]
pub struct HostsArgs {
    #[command(subcommand)]
    command: HostsCommand,
}

#[derive(Debug, Subcommand)]
enum HostsCommand {
    /// Check every host of a file (`[[hosts]]` entries): reachable, the same
    /// clocklab version, a free port, the clock's offset (exit 2 naming the
    /// host and the cause).
    Check {
        /// The hosts file (JSON or TOML).
        file: PathBuf,
        /// Seconds each host has to answer (its launcher may log in).
        #[arg(long, default_value_t = 30.0, value_name = "S")]
        timeout: f64,
    },
}

/// Runs `clocklab hosts`.
pub fn run(args: HostsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        HostsCommand::Check { file, timeout } => {
            let hosts = clocklab_config::load_hosts(&file).context("invalid hosts")?;
            if !(0.1..=3600.0).contains(&timeout) {
                return Err(
                    UsageError(format!("--timeout {timeout}: must be a number of seconds in 0.1..=3600")).into()
                );
            }
            check(&file, &hosts, Duration::from_secs_f64(timeout), true)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Asks every host; prints a line per host when `verbose`; a host that
/// fails is bad input (exit 2), every failing host named with its cause.
pub fn check(file: &Path, hosts: &[HostSpec], timeout: Duration, verbose: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the clocklab executable")?;
    let launcher = clocklab_orchestrate::LocalLauncher::new(exe);
    let asked: Vec<(String, Vec<String>)> = hosts
        .iter()
        .map(|host| (host.address.clone(), launcher.host_command(host).expect("the local launcher reaches hosts")))
        .collect();
    let answers = clocklab_orchestrate::remote::probe::probe_all(&asked, timeout);
    let mut failures = Vec::new();
    for (host, answer) in hosts.iter().zip(answers) {
        match answer {
            Ok(probe) if verbose => say!(
                "{}: clocklab {}, port {} free on {}, clock {:+} µs (± {} µs) against this computer's",
                host.name,
                probe.version,
                probe.port,
                host.address,
                probe.clock.offset_us,
                probe.clock.uncertainty_us
            ),
            Ok(_) => {}
            Err(cause) => failures.push(format!("host {}: {cause}", host.name)),
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!("{}: {}", file.display(), failures.join("; "))).into())
}
