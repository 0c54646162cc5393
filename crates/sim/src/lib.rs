//! The deterministic simulator: the model's machines in virtual time.
//!
//! The simulator drives the same [`clocklab_model::Machine`] as the real
//! runtime, so it follows the same rules by construction; only time and the
//! network are simulated. A run is a discrete-event loop over a heap that
//! holds one pending tick per machine and the messages in flight, so memory
//! grows with the queues, never with the length of the run.
//!
//! Start here: [`run_plan`] simulates one planned run into its folder (logs
//! and `manifest.json`, the same files as a real run). The modules:
//!
//! - [`sim`]: [`Simulation`], the event loop, and the order of simultaneous
//!   events (deliveries before ticks, then by send order or machine id).
//! - [`network`]: [`Network`], the delivery delay (constant, uniform,
//!   exponential) drawn from the run's network generator.
//! - [`sink`]: where lines go: [`LogFiles`] (the run's log files) or
//!   [`CountingSink`] (nothing written; for benchmarks and huge runs).
//!
//! **Determinism.** Every draw comes from the plan's seeds: each machine's
//! generator is `seed::start_machine(machine.seed, max_clock_rate)`, the
//! network's is seeded with `seed::network_seed(run_seed)`; virtual time
//! starts at [`clocklab_config::SimSettings::epoch_us`]. The same plan gives
//! the same bytes.
//!
//! ```
//! use clocklab_config::{Config, SimSettings, plan_runs};
//! use clocklab_sim::{CountingSink, Simulation};
//!
//! let mut config = Config::default();
//! config.experiments.truncate(1);
//! config.experiments[0].duration = 10.0;
//! let plan = &plan_runs(&config, 42, std::path::Path::new("unused"))[0];
//! let mut sink = CountingSink::default();
//! let summary = Simulation::new(plan, &SimSettings::default()).unwrap().run(&mut sink).unwrap();
//! // Every machine makes exactly ceil(rate x duration) ticks.
//! let ticks: u64 = plan.machines.iter().map(|m| u64::from(m.rate) * 10).sum();
//! assert_eq!((summary.ticks, sink.ticks), (ticks, ticks));
//! ```

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::AtomicBool;

use clocklab_config::{MachineOutcome, RunManifest, RunPlan, RunStatus, Runtime, SimSettings, layout};

pub mod bare;
pub mod network;
pub mod sim;
pub mod sink;

pub use network::Network;
pub use sim::{SimError, SimSummary, Simulation, virtual_port};

pub use sink::{CountingSink, LogFiles, Sink};

/// Simulates one planned run: creates `plan.dir`, writes each machine's logs
/// in `plan.log_formats` and `manifest.json` (with `runtime: sim`), and
/// returns the manifest.
///
/// An impossible plan (one that [`Simulation::new`] rejects) is an
/// `InvalidInput` error, and nothing is written.
pub fn run_plan(plan: &RunPlan, settings: &SimSettings) -> io::Result<RunManifest> {
    run_plan_until(plan, settings, &AtomicBool::new(false))
}

/// [`run_plan`], stopping early when `stop` is set (see
/// [`Simulation::run_until`]); the manifest of a stopped run says
/// `interrupted`.
pub fn run_plan_until(plan: &RunPlan, settings: &SimSettings, stop: &AtomicBool) -> io::Result<RunManifest> {
    let simulation =
        Simulation::new(plan, settings).map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    clocklab_config::output::create_dir_all(&plan.dir)?;
    let mut files = LogFiles::create(&plan.dir, plan.experiment.machines, &plan.log_formats)?;
    let summary = simulation.run_until(&mut files, stop)?;
    drop(files);
    let manifest = manifest(plan, settings, &summary);
    layout::write_manifest(&plan.dir, &manifest).map_err(|error| {
        io::Error::new(error.kind(), format!("{}: {error}", layout::manifest_path(&plan.dir).display()))
    })?;
    Ok(manifest)
}

/// The manifest of a simulated run: everything in it follows from the plan
/// and the settings, so it is as reproducible as the logs.
pub fn manifest(plan: &RunPlan, settings: &SimSettings, summary: &SimSummary) -> RunManifest {
    let machines = plan
        .machines
        .iter()
        .map(|machine| MachineOutcome {
            id: machine.id,
            address: match virtual_port(machine.id) {
                Some(port) => format!("{}:{port}", plan.host),
                None => plan.host.clone(),
            },
            rate: machine.rate,
            seed: machine.seed,
            clock_offset_us: machine.clock_offset_us,
            clock_drift_ppm: machine.clock_drift_ppm,
            exit_status: None,
            logs: plan.log_formats.iter().map(|&format| clocklab_log::file_name(machine.id, format)).collect(),
        })
        .collect();
    let mut extra = BTreeMap::new();
    extra.insert(
        "network".to_string(),
        serde_json::to_value(settings.network).expect("a delay distribution always serialises"),
    );
    extra.insert("epoch_us".to_string(), settings.epoch_us.into());
    let mut totals = serde_json::json!({
        "ticks": summary.ticks,
        "lines": summary.lines,
        "messages": summary.messages,
        "unprocessed": summary.unprocessed,
        "max_in_flight": summary.max_in_flight,
        "max_queue_len": summary.max_queue_len,
    });
    // Only when they happened, so that the manifests of ordinary runs keep their bytes.
    for (key, value) in [("refused", summary.refused), ("saturated", summary.saturated)] {
        if value > 0 {
            totals[key] = value.into();
        }
    }
    if let Some(stopped_at_us) = summary.stopped_at_us {
        totals["stopped_at_us"] = stopped_at_us.into();
    }
    extra.insert("totals".to_string(), totals);
    RunManifest {
        clocklab_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime: Runtime::Sim,
        experiment: plan.experiment.clone(),
        run_idx: plan.run_idx,
        seeds: plan.seed_tree(),
        machines,
        started_at: clocklab_log::rfc3339_us(settings.epoch_us),
        ended_at: clocklab_log::rfc3339_us(settings.epoch_us.saturating_add_unsigned(summary.end_us)),
        status: if summary.stopped_at_us.is_some() { RunStatus::Interrupted } else { RunStatus::Ok },
        extra,
        hosts: Vec::new(),
    }
}
