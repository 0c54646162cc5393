//! `clocklab machine <ID>`: one virtual machine as this process.
//!
//! Standalone (the classic exercise, one terminal per machine): the address
//! and ports come from the configuration, the settings from its first
//! experiment, and the machine starts ticking as soon as all its connections
//! are up. Orchestrated (`--orchestrated`, started by `clocklab run`):
//! everything comes over stdin, see `crate::orchestrate`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use clocklab_config::{Config, LogFormats, layout};
use clocklab_model::wire::TOKEN_LEN;
use clocklab_model::{MachineId, schedule, seed};
use clocklab_net::{NodeConfig, now_us};
use rand::Rng;

use super::UsageError;
use crate::orchestrate::{FromMachine, Launch, ToMachine, send_line, token_from_hex};

/// How long before its own deadline a standalone machine takes a peer's clean
/// end as the peer stopping on schedule: machines started by hand start within
/// a few milliseconds of each other, not at one shared instant.
const STANDALONE_END_GRACE: Duration = Duration::from_secs(1);

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
    /// The run token, 32 hexadecimal digits; by default one derived from the
    /// configuration, so that machines started by hand with the same file agree.
    #[arg(long)]
    token: Option<String>,
    /// The folder for the log files.
    #[arg(long, default_value = "logs")]
    out: PathBuf,
    /// Which log files to write (default: the configuration's `log_format`).
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// Started by `clocklab run`: take the settings from stdin, report on stdout.
    #[arg(long, hide = true)]
    orchestrated: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Jsonl,
    Both,
}

/// Runs `clocklab machine`.
pub fn run(args: MachineArgs) -> anyhow::Result<ExitCode> {
    if args.orchestrated { run_orchestrated(args.id) } else { run_standalone(args) }
}

/// The token of machines started by hand from `config`: not a secret, only a
/// guard against connections from other programs and other configurations.
fn default_token(config: &Config) -> [u8; TOKEN_LEN] {
    let text = format!("clocklab standalone {} {:?}", config.host, config.ports);
    let first = seed::derive(seed::label_of(&text), 1);
    let second = seed::derive(seed::label_of(&text), 2);
    let mut token = [0u8; TOKEN_LEN];
    token[..8].copy_from_slice(&first.to_be_bytes());
    token[8..].copy_from_slice(&second.to_be_bytes());
    token
}

/// The first address `host:port` resolves to.
fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}:{port}"))?
        .next()
        .ok_or_else(|| anyhow!("{host}:{port} resolves to no address"))
}

fn run_standalone(args: MachineArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(args.config.as_deref())?;
    let source =
        args.config.as_ref().map_or_else(|| "the built-in configuration".to_string(), |p| p.display().to_string());
    if config.ports.is_empty() {
        return Err(UsageError(format!(
            "machine {}: {source} lists no `ports`; a machine started by hand needs one port per machine",
            args.id
        ))
        .into());
    }
    let n_machines = config.ports.len() as u32;
    if !(1..=n_machines).contains(&args.id) {
        return Err(UsageError(format!(
            "machine {}: {source} lists {n_machines} ports, so the machine id must be in 1..={n_machines}",
            args.id
        ))
        .into());
    }
    let token = match &args.token {
        Some(hex) => token_from_hex(hex)
            .ok_or_else(|| UsageError(format!("--token {hex:?}: expected {} hexadecimal digits", 2 * TOKEN_LEN)))?,
        None => default_token(&config),
    };
    let experiment = &config.experiments[0];
    let (seed_note, machine_seed) = match args.seed {
        Some(run_seed) => ("from --seed", seed::machine_seed(run_seed, args.id)),
        None => ("random", rand::rng().next_u64()),
    };
    let formats = match args.log_format {
        Some(LogFormatArg::Text) => LogFormats::Text,
        Some(LogFormatArg::Jsonl) => LogFormats::Jsonl,
        Some(LogFormatArg::Both) => LogFormats::Both,
        None => config.log_format,
    }
    .formats();
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let logs: Vec<_> = formats.iter().map(|&f| (f, layout::log_path(&args.out, args.id, f))).collect();
    for (_, path) in &logs {
        if path.exists() {
            return Err(UsageError(format!(
                "{} exists: clocklab never overwrites a log; move it away or pick another --out",
                path.display()
            ))
            .into());
        }
    }
    let port_of = |id: MachineId| config.ports[id as usize - 1];
    let mut peers = BTreeMap::new();
    for peer in (1..=n_machines).filter(|&p| p != args.id) {
        peers.insert(peer, resolve(&config.host, port_of(peer))?);
    }
    let node = NodeConfig {
        id: args.id,
        n_machines,
        max_clock_rate: experiment.max_clock_rate,
        max_event_num: experiment.max_event_num,
        seed: machine_seed,
        listen: resolve(&config.host, port_of(args.id))?,
        host: config.host.clone(),
        token,
        connect_timeout: Duration::from_secs_f64(config.connect_timeout),
        end_grace: STANDALONE_END_GRACE,
        logs,
    };
    let bound = clocklab_net::bind(node).with_context(|| format!("machine {} cannot start", args.id))?;
    eprintln!(
        "machine {}: listening on {}, clock rate {}, seed {machine_seed} ({seed_note}); waiting for machines {:?}",
        args.id,
        bound.address(),
        bound.rate(),
        peers.keys().collect::<Vec<_>>()
    );
    let connected = bound.connect(&peers).with_context(|| format!("machine {} cannot connect", args.id))?;
    let duration_us = schedule::duration_us(experiment.duration);
    eprintln!("machine {}: all connected; ticking for {} s", args.id, experiment.duration);
    let (_keep_running, stop) = clocklab_net::never_stop();
    let summary = connected.run(now_us(), duration_us, &stop).with_context(|| format!("machine {}", args.id))?;
    eprintln!(
        "machine {}: stopped after {} ticks; sent {}, processed {}, unprocessed {}; tick lateness p50 {} us, p99 {} us, max {} us; logs in {}",
        args.id,
        summary.ticks,
        summary.sent,
        summary.processed,
        summary.unprocessed,
        summary.lateness.p50_us,
        summary.lateness.p99_us,
        summary.lateness.max_us,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads control lines from stdin on a thread; the channel disconnects at the
/// end of stdin, which is how the machine learns that the orchestrator is gone.
fn control_lines() -> crossbeam_channel::Receiver<String> {
    let (sender, receiver) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The next control line, parsed; the end of stdin is an error.
fn next_control(lines: &crossbeam_channel::Receiver<String>, what: &str) -> anyhow::Result<ToMachine> {
    let line = lines.recv().map_err(|_| anyhow!("the orchestrator went away before sending {what}"))?;
    serde_json::from_str(&line).with_context(|| format!("bad control line {line:?} (expected {what})"))
}

fn report(message: &FromMachine) -> anyhow::Result<()> {
    send_line(&mut std::io::stdout().lock(), message).context("cannot report to the orchestrator")
}

fn run_orchestrated(id: MachineId) -> anyhow::Result<ExitCode> {
    let lines = control_lines();
    let ToMachine::Launch(launch) = next_control(&lines, "the launch settings")? else {
        bail!("the first control line is not the launch settings");
    };
    let Launch {
        n_machines,
        max_clock_rate,
        max_event_num,
        seed,
        host,
        token_hex,
        connect_timeout_s,
        duration_us,
        logs,
    } = launch;
    let token = token_from_hex(&token_hex).ok_or_else(|| anyhow!("bad run token"))?;
    let node = NodeConfig {
        id,
        n_machines,
        max_clock_rate,
        max_event_num,
        seed,
        listen: resolve(&host, 0)?,
        host,
        token,
        connect_timeout: Duration::from_secs_f64(connect_timeout_s),
        end_grace: Duration::ZERO,
        logs,
    };
    let bound = clocklab_net::bind(node).with_context(|| format!("machine {id} cannot start"))?;
    report(&FromMachine::Bound { port: bound.address().port(), rate: bound.rate() })?;
    let peers = match next_control(&lines, "the peers' addresses") {
        Ok(ToMachine::Peers(mut all)) => {
            all.remove(&id);
            all
        }
        Ok(_) => bail!("expected the peers' addresses"),
        Err(error) => {
            bound.abandon()?;
            return Err(error);
        }
    };
    let connected = bound.connect(&peers).with_context(|| format!("machine {id} cannot connect"))?;
    report(&FromMachine::Ready)?;
    let start_us = match next_control(&lines, "the start instant") {
        Ok(ToMachine::Start(start_us)) => start_us,
        Ok(_) => bail!("expected the start instant"),
        Err(error) => {
            connected.abandon()?;
            return Err(error);
        }
    };
    let summary = connected.run(start_us, duration_us, &lines).with_context(|| format!("machine {id}"))?;
    report(&FromMachine::Done(summary))?;
    Ok(ExitCode::SUCCESS)
}
