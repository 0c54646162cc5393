//! A machine started by hand, as in the classic exercise: its address and
//! its peers' come from the configuration's `ports`, its settings from the
//! first experiment. The machines connect, agree on one start instant (the
//! latest of their ready instants plus a lead, see
//! `clocklab_net::Connected::agreed_start_us`), tick, and each writes
//! `machine_<id>.json` beside its log: what the analysis needs to know of a
//! run that had no orchestrator.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Context;
use clocklab_config::{Config, MachineCounts, MachineManifest, OutputEstimate, RunStatus, Runtime, layout};
use clocklab_driver::DriverParams;
use clocklab_model::wire::TOKEN_LEN;
use clocklab_model::{MachineId, schedule, seed};
use clocklab_net::{NetError, NodeConfig, RunSummary, StopRequest, now_us};
use rand::Rng;

use super::MachineArgs;
use crate::cmd::UsageError;
use crate::signals::{signal_exit, signal_name, watch_signals};

/// How long before its own deadline a standalone machine takes a peer's clean
/// end as the peer stopping on schedule: machines started by hand agree on
/// their start instant, but on several computers their clocks may disagree a
/// little.
const STANDALONE_END_GRACE: Duration = Duration::from_secs(1);

/// The token of machines started by hand from `config` without a `token`:
/// derived from `host` and `ports`, so no secret; it only keeps out other
/// configurations.
fn derived_token(config: &Config) -> [u8; TOKEN_LEN] {
    let text = format!("clocklab standalone {} {:?}", config.host, config.ports);
    let first = seed::derive(seed::label_of(&text), 1);
    let second = seed::derive(seed::label_of(&text), 2);
    let mut token = [0u8; TOKEN_LEN];
    token[..8].copy_from_slice(&first.to_be_bytes());
    token[8..].copy_from_slice(&second.to_be_bytes());
    token
}

/// Removes what a machine that never ticked wrote, so that the same command
/// can be run again: its log holds nothing of a run.
fn remove_logs(logs: &[(clocklab_log::LogFormat, std::path::PathBuf)]) {
    for (_, path) in logs {
        let _ = std::fs::remove_file(path);
    }
}

/// Runs a machine started by hand.
pub(super) fn run(args: MachineArgs) -> anyhow::Result<ExitCode> {
    let id = args.id;
    let (stop_tx, stop) = clocklab_net::stop_channel().context("cannot make the stop channel")?;
    let signalled = Arc::new(AtomicI32::new(0));
    let seen = Arc::clone(&signalled);
    watch_signals(id, move |signal| {
        seen.store(signal, Ordering::SeqCst);
        clocklab_net::note!(
            "machine {id}: {}: stopping (the end goes as at the deadline); send it again to exit at once",
            signal_name(signal)
        );
        let _ = stop_tx.send(StopRequest::Now);
    })?;
    let mut config = crate::cmd::load_config(args.config.as_deref())?;
    let source =
        args.config.as_ref().map_or_else(|| "the built-in configuration".to_string(), |p| p.display().to_string());
    // A machine is a process of the real runtime, whatever the file says.
    config.runtime = Runtime::Real;
    if let Some(names) = &args.clocks {
        config.experiments[0].clocks = crate::cmd::parse_clocks(names)?;
    }
    match args.connect_timeout {
        Some(timeout_s) => {
            config.connect_timeout = timeout_s;
            config.validate("the command line").context("invalid configuration")?;
        }
        None => config.validate(&source).context("invalid configuration")?,
    }
    if config.ports.is_empty() {
        return Err(UsageError(format!(
            "machine {id}: {source} lists no `ports`; a machine started by hand needs one port per machine"
        ))
        .into());
    }
    let n_machines = config.ports.len() as u32;
    if !(1..=n_machines).contains(&id) {
        return Err(UsageError(format!(
            "machine {id}: {source} lists {n_machines} ports, so the machine id must be in 1..={n_machines}"
        ))
        .into());
    }
    let token = match (&args.token, &config.token) {
        (Some(hex), _) => Some(
            clocklab_model::wire::token_from_hex(hex)
                .ok_or_else(|| UsageError(format!("--token {hex:?}: expected {} hexadecimal digits", 2 * TOKEN_LEN)))?,
        ),
        (None, Some(hex)) => Some(clocklab_model::wire::token_from_hex(hex).context("the validated token")?),
        (None, None) => None,
    };
    let mut experiment = config.experiments[0].clone();
    experiment.machines = n_machines;
    let (seed_note, machine_seed) = match args.seed {
        Some(run_seed) => ("from --seed", seed::machine_seed(run_seed, id)),
        None => ("random", rand::rng().next_u64()),
    };
    let formats = args.log_format.map_or(config.log_format, |format| format.formats()).formats();
    let physical = experiment.physical_clock;
    let (clock_offset_us, clock_drift_ppm) = seed::draw_physical_clock(
        machine_seed,
        (physical.offset_ms_max * 1_000.0).round() as i64,
        physical.drift_ppm_max,
    );
    let params = DriverParams {
        id,
        n_machines,
        max_clock_rate: experiment.max_clock_rate,
        max_event_num: experiment.max_event_num,
        seed: machine_seed,
        clocks: experiment.clocks,
        clock_offset_us,
        clock_drift_ppm,
        queue_cap: config.queue_cap,
    };
    let (_, rate) = seed::start_machine(machine_seed, experiment.max_clock_rate);
    let estimate = OutputEstimate::machine(&experiment, rate, &formats, params.writes_physical_clock());
    crate::cmd::check_output_size(estimate, &args.out, args.yes)?;
    let logs: Vec<_> = formats.iter().map(|&f| (f, layout::log_path(&args.out, id, f))).collect();
    let manifest_path = layout::machine_manifest_path(&args.out, id);
    for path in logs.iter().map(|(_, path)| path).chain([&manifest_path]) {
        if path.exists() {
            return Err(UsageError(format!(
                "{} exists: clocklab never overwrites a log or its manifest; move it away or pick another --out",
                path.display()
            ))
            .into());
        }
    }
    let token = token.unwrap_or_else(|| {
        clocklab_net::note!(
            "machine {id}: {source} has no `token`, so any program on this computer that can read it can join this \
             run as one of its machines; `clocklab config --init FILE` writes a configuration with a secret token"
        );
        derived_token(&config)
    });
    clocklab_config::output::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let port_of = |peer: MachineId| config.ports[peer as usize - 1];
    let mut peers = BTreeMap::new();
    for peer in (1..=n_machines).filter(|&p| p != id) {
        peers.insert(peer, super::resolve(&config.host, port_of(peer))?);
    }
    let duration_us = schedule::duration_us(experiment.duration);
    let node = NodeConfig {
        machine: params,
        listen: super::resolve(&config.host, port_of(id))?,
        host: config.host.clone(),
        token,
        connect_timeout: Duration::from_secs_f64(config.connect_timeout),
        end_grace: STANDALONE_END_GRACE,
        logs: logs.clone(),
        duration_us,
        faults: Vec::new(),
        run_seed: 0,
    };
    let bound = clocklab_net::bind(node).with_context(|| format!("machine {id} cannot start"))?;
    let port = bound.address().port();
    clocklab_net::note!(
        "machine {id}: listening on {}, clock rate {}, seed {machine_seed} ({seed_note}); waiting for machines {:?}",
        bound.address(),
        bound.rate(),
        peers.keys().collect::<Vec<_>>()
    );
    let connected = match bound.connect(&peers, &stop) {
        Ok(connected) => connected,
        Err(error) => {
            // Nothing ticked: the log holds no run, and would only stop the
            // same command from being run again.
            remove_logs(&logs);
            if let NetError::Stopped = error {
                clocklab_net::note!("machine {id}: stopped before every peer connected; no log kept");
                return Ok(signal_exit(signalled.load(Ordering::SeqCst)));
            }
            return Err(error).with_context(|| format!("machine {id} cannot connect (no log kept)"));
        }
    };
    let start_us = connected.agreed_start_us();
    clocklab_net::note!(
        "machine {id}: every machine connected and ready; ticking for {} s from {}",
        experiment.duration,
        clocklab_log::rfc3339_us(start_us)
    );
    let (_keep, news) = clocklab_net::no_news();
    let summary = connected.run(start_us, &stop, news).with_context(|| format!("machine {id}"))?;
    let signal = signalled.load(Ordering::SeqCst);
    let manifest = MachineManifest {
        clocklab_version: env!("CARGO_PKG_VERSION").to_string(),
        id,
        n_machines,
        host: config.host.clone(),
        port,
        rate,
        seed: machine_seed,
        max_clock_rate: experiment.max_clock_rate,
        max_event_num: experiment.max_event_num,
        clocks: experiment.clocks,
        experiment: Some(experiment.name.clone()),
        clock_offset_us,
        clock_drift_ppm,
        duration: experiment.duration,
        started_at: clocklab_log::rfc3339_us(start_us),
        deadline_at: clocklab_log::rfc3339_us(start_us.saturating_add_unsigned(duration_us)),
        ended_at: clocklab_log::rfc3339_us(now_us()),
        status: machine_status(id, &summary, signal),
        counts: MachineCounts {
            ticks: summary.ticks,
            sent: summary.sent,
            processed: summary.processed,
            unprocessed: summary.unprocessed,
            refused: summary.refused,
            unsent: summary.unsent.clone(),
            disconnected: summary.disconnected.clone(),
            refused_connections: summary.refused_connections,
            stopped_early: summary.stopped_early,
        },
        tick_lateness_us: summary.lateness,
    };
    let written = layout::write_machine_manifest(&args.out, &manifest);
    report_end(id, &summary, &manifest, &args.out);
    written.with_context(|| format!("cannot write {}", manifest_path.display()))?;
    if let RunStatus::Failed { cause } = &manifest.status {
        // The log is whole, but the run lost messages: not a success.
        anyhow::bail!("{cause}");
    }
    Ok(signal_exit(signal))
}

/// How the run went, as this machine saw it: the gravest of a peer gone (or
/// messages unsent), a signal, and falling behind.
fn machine_status(id: MachineId, summary: &RunSummary, signal: i32) -> RunStatus {
    if !summary.disconnected.is_empty() || summary.unsent_total() > 0 {
        return RunStatus::Failed {
            cause: format!(
                "machine {id} lost machines {:?} before the deadline ({} messages to them unsent)",
                summary.disconnected,
                summary.unsent_total()
            ),
        };
    }
    if signal != 0 {
        return RunStatus::Interrupted;
    }
    RunStatus::from_behind(&BTreeMap::from([(id, summary.behind)]))
}

/// The machine's last words on stderr.
fn report_end(id: MachineId, summary: &RunSummary, manifest: &MachineManifest, out: &Path) {
    clocklab_net::note!(
        "machine {id}: stopped after {} ticks; sent {}, processed {}, unprocessed {}; tick lateness p50 {} us, p99 {} us, max {} us; {}; log and machine_{id}.json in {}",
        summary.ticks,
        summary.sent,
        summary.processed,
        summary.unprocessed,
        summary.lateness.p50_us,
        summary.lateness.p99_us,
        summary.lateness.max_us,
        match &manifest.status {
            RunStatus::Ok => "status ok".to_string(),
            RunStatus::Interrupted => "status interrupted".to_string(),
            RunStatus::Failed { cause } | RunStatus::Degraded { cause, .. } =>
                format!("status {}: {cause}", manifest.status.name()),
        },
        out.display()
    );
    if summary.refused_connections > 0 {
        clocklab_net::note!(
            "machine {id}: refused {} connections in all (a bad or missing hello)",
            summary.refused_connections
        );
    }
}
