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
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use clocklab_config::{Config, LogFormats, layout};
use clocklab_driver::DriverParams;
use clocklab_model::wire::TOKEN_LEN;
use clocklab_model::{ClockKinds, MachineId, schedule, seed};
use clocklab_net::{NetError, NodeConfig, RunSummary, StopRequest, now_us};
use crossbeam_channel::{Receiver, Sender};
use rand::Rng;

use super::UsageError;
use crate::orchestrate::{FromMachine, Launch, ToMachine, send_line, token_from_hex};
use crate::signals::{signal_exit, signal_name, watch_signals};

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
    /// The clocks to keep, e.g. `lamport,vector,hlc` (default: the
    /// configuration's `clocks`); every machine of the run needs the same.
    #[arg(long, value_delimiter = ',', value_name = "CLOCKS")]
    clocks: Option<Vec<String>>,
    /// Seconds to wait for every peer to connect (default: the
    /// configuration's `connect_timeout`); also bounds the wait for the
    /// peers' last messages at the end.
    #[arg(long, value_name = "S")]
    connect_timeout: Option<f64>,
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
    let id = args.id;
    let (stop_tx, stop) = crossbeam_channel::unbounded();
    let signalled = Arc::new(AtomicI32::new(0));
    let seen = Arc::clone(&signalled);
    watch_signals(id, move |signal| {
        seen.store(signal, Ordering::SeqCst);
        eprintln!(
            "machine {id}: {}: stopping (the end goes as at the deadline); send it again to exit at once",
            signal_name(signal)
        );
        let _ = stop_tx.send(StopRequest::Now);
    })?;
    let mut config = super::load_config(args.config.as_deref())?;
    if let Some(timeout_s) = args.connect_timeout {
        config.connect_timeout = timeout_s;
        config.validate("--connect-timeout").context("invalid configuration")?;
    }
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
    if let Some(names) = &args.clocks {
        config.experiments[0].clocks = super::parse_clocks(names)?;
    }
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
    let physical = experiment.physical_clock;
    let (clock_offset_us, clock_drift_ppm) = seed::draw_physical_clock(
        machine_seed,
        (physical.offset_ms_max * 1_000.0).round() as i64,
        physical.drift_ppm_max,
    );
    let node = NodeConfig {
        machine: DriverParams {
            id: args.id,
            n_machines,
            max_clock_rate: experiment.max_clock_rate,
            max_event_num: experiment.max_event_num,
            seed: machine_seed,
            clocks: experiment.clocks,
            clock_offset_us,
            clock_drift_ppm,
            queue_cap: config.queue_cap,
        },
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
    let connected = match bound.connect(&peers, &stop) {
        Ok(connected) => connected,
        Err(NetError::Stopped) => {
            eprintln!("machine {id}: stopped before every peer connected; log in {}", args.out.display());
            return Ok(signal_exit(signalled.load(Ordering::SeqCst)));
        }
        Err(error) => return Err(error).with_context(|| format!("machine {id} cannot connect")),
    };
    let duration_us = schedule::duration_us(experiment.duration);
    eprintln!("machine {}: all connected; ticking for {} s", args.id, experiment.duration);
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
    if summary.refused_connections > 0 {
        eprintln!("machine {id}: refused {} connections in all (a bad or missing hello)", summary.refused_connections);
    }
    Ok(signal_exit(signalled.load(Ordering::SeqCst)))
}

/// Reads control lines from stdin on a thread. A `stop` line goes to `stop`
/// as a request for its instant; the end of stdin (the orchestrator is gone)
/// is a request to stop now. Every other line goes, parsed, to the returned
/// channel (a line that does not parse as itself).
fn control_lines(stop: Sender<StopRequest>) -> Receiver<Result<ToMachine, String>> {
    let (sender, receiver) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let sent = match serde_json::from_str::<ToMachine>(&line) {
                Ok(ToMachine::Stop(at_us)) => stop.send(StopRequest::At(at_us)).is_ok(),
                Ok(control) => sender.send(Ok(control)).is_ok(),
                Err(_) => sender.send(Err(line)).is_ok(),
            };
            if !sent {
                break;
            }
        }
        let _ = stop.send(StopRequest::Now);
    });
    receiver
}

/// What came next from the orchestrator.
enum Next {
    /// A control line.
    Control(ToMachine),
    /// A stop request (or a signal, or the end of stdin).
    Stop,
}

/// The next control line, or a stop request.
///
/// A control line sent before a stop request wins, whatever order the two
/// channels are read in (the request is put back for the next phase): a
/// machine told `start` then `stop` ticks until the stop instant like the
/// rest of its run, instead of leaving them to send to a machine that left.
fn next_control(
    controls: &Receiver<Result<ToMachine, String>>,
    stop: &Receiver<StopRequest>,
    stop_again: &Sender<StopRequest>,
    what: &str,
) -> anyhow::Result<Next> {
    let control = crossbeam_channel::select! {
        recv(controls) -> control => control,
        recv(stop) -> request => match controls.try_recv() {
            Ok(control) => {
                if let Ok(request) = request {
                    let _ = stop_again.send(request);
                }
                Ok(control)
            }
            Err(_) => return Ok(Next::Stop),
        },
    };
    match control {
        Ok(Ok(control)) => Ok(Next::Control(control)),
        Ok(Err(line)) => bail!("bad control line {line:?} (expected {what})"),
        Err(_) => bail!("the orchestrator went away before sending {what}"),
    }
}

fn report(message: &FromMachine) -> anyhow::Result<()> {
    send_line(&mut std::io::stdout().lock(), message).context("cannot report to the orchestrator")
}

fn run_orchestrated(id: MachineId) -> anyhow::Result<ExitCode> {
    let (stop_tx, stop) = crossbeam_channel::unbounded();
    let controls = control_lines(stop_tx.clone());
    let on_signal = stop_tx.clone();
    watch_signals(id, move |signal| {
        // The orchestrator hears of it first, and stops the rest of the run.
        let _ = report(&FromMachine::Signalled { signal: signal_name(signal).to_string() });
        let _ = on_signal.send(StopRequest::Now);
    })?;
    let launch = match next_control(&controls, &stop, &stop_tx, "the launch settings")? {
        Next::Control(ToMachine::Launch(launch)) => launch,
        Next::Control(_) => bail!("the first control line is not the launch settings"),
        Next::Stop => return Ok(ExitCode::SUCCESS),
    };
    let Launch {
        n_machines,
        max_clock_rate,
        max_event_num,
        seed,
        clocks,
        clock_offset_us,
        clock_drift_ppm,
        host,
        token_hex,
        connect_timeout_s,
        queue_cap,
        duration_us,
        logs,
    } = launch;
    let token = token_from_hex(&token_hex).ok_or_else(|| anyhow!("bad run token"))?;
    let clocks = ClockKinds::parse(clocks.iter().map(String::as_str))?;
    let node = NodeConfig {
        machine: DriverParams {
            id,
            n_machines,
            max_clock_rate,
            max_event_num,
            seed,
            clocks,
            clock_offset_us,
            clock_drift_ppm,
            queue_cap,
        },
        listen: resolve(&host, 0)?,
        host,
        token,
        connect_timeout: Duration::from_secs_f64(connect_timeout_s),
        end_grace: Duration::ZERO,
        logs,
    };
    let bound = clocklab_net::bind(node).with_context(|| format!("machine {id} cannot start"))?;
    report(&FromMachine::Bound { port: bound.address().port(), rate: bound.rate() })?;
    let stopped = || report(&FromMachine::Done(RunSummary::not_started())).map(|()| ExitCode::SUCCESS);
    let peers = match next_control(&controls, &stop, &stop_tx, "the peers' addresses") {
        Ok(Next::Control(ToMachine::Peers(mut all))) => {
            all.remove(&id);
            all
        }
        Ok(Next::Stop) => {
            bound.abandon()?;
            return stopped();
        }
        Ok(Next::Control(_)) => {
            bound.abandon()?;
            bail!("expected the peers' addresses");
        }
        Err(error) => {
            bound.abandon()?;
            return Err(error);
        }
    };
    let connected = match bound.connect(&peers, &stop) {
        Ok(connected) => connected,
        Err(NetError::Stopped) => return stopped(),
        // A peer told to stop while we were connecting closes on us: with a
        // stop request of our own waiting, that is the stop, not a failure.
        Err(_) if !stop.is_empty() => return stopped(),
        Err(error) => return Err(error).with_context(|| format!("machine {id} cannot connect")),
    };
    report(&FromMachine::Ready)?;
    let start_us = match next_control(&controls, &stop, &stop_tx, "the start instant") {
        Ok(Next::Control(ToMachine::Start(start_us))) => start_us,
        Ok(Next::Stop) => {
            connected.abandon()?;
            return stopped();
        }
        Ok(Next::Control(_)) => {
            connected.abandon()?;
            bail!("expected the start instant");
        }
        Err(error) => {
            connected.abandon()?;
            return Err(error);
        }
    };
    let summary = connected.run(start_us, duration_us, &stop).with_context(|| format!("machine {id}"))?;
    report(&FromMachine::Done(summary))?;
    Ok(ExitCode::SUCCESS)
}
