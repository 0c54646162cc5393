//! Runs plans with the real runtime: one `clocklab machine` process per
//! machine, several runs side by side.
//!
//! **Control protocol.** The orchestrator starts `clocklab machine <id>
//! --orchestrated` (the same executable) and talks to it over its stdin and
//! stdout, one JSON object per line ([`ToMachine`], [`FromMachine`]):
//!
//! 1. `launch` (everything the machine needs, the run token included: the
//!    token never touches the disk) → the machine binds port 0, so the system
//!    picks a free port and no two runs can collide, and answers `bound` with
//!    its port and drawn rate.
//! 2. `peers` (every machine's address, once all are bound) → the machine
//!    connects to every peer and answers `ready` once every connection is up.
//! 3. `start` (one wall-clock instant a little ahead, the same for the whole
//!    run: the start barrier) → the machine ticks until start + duration,
//!    drains, writes `Stopped` and answers `done` with its summary (tick
//!    lateness included).
//!
//! `stop` (an instant, the same for the whole run) tells a machine to stop
//! ticking then, or at once if it has not started; it ends as at the deadline
//! and answers `done`. The end of stdin is a stop request too: if the
//! orchestrator dies, its machines stop cleanly and no child outlives it. A
//! machine that gets SIGINT or SIGTERM itself answers `signalled` and stops;
//! the orchestrator then stops the rest of its run.
//!
//! **Interruption.** Machines run in their own process groups, so a
//! terminal's Ctrl-C reaches only the orchestrator, which alone decides: the
//! first SIGINT or SIGTERM stops every running run (each machine drains, logs
//! what is unprocessed and writes `Stopped`), starts no new one, and marks the
//! manifests `interrupted`; the second kills every machine at once and exits.
//! On every error path the machines are told to stop, and a guard kills and
//! reaps any that do not exit.

//!
//! The modules: [`protocol`] (the control lines), [`process`] (one machine
//! process: spawning, its output, reaping), [`run`] (one run from launch to
//! its record), [`manifest`] (the record as `manifest.json`), [`progress`]
//! (the progress bar); this file is the worker pool that runs the plans.

mod faults;
mod manifest;
mod process;
mod progress;
pub mod protocol;
mod run;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clocklab_config::{Config, RunManifest, RunPlan, RunStatus, layout};
use clocklab_net::LatenessSummary;

use crate::signals::Interrupt;
use progress::Progress;
pub use protocol::{FromMachine, Launch, ToMachine, send_line};

/// Runs every plan as real processes, `jobs` runs at a time; writes each run's
/// logs and manifest and returns the manifests in plan order (a run whose
/// manifest could not be written is returned as failed, with its own first
/// error first). After an
/// interruption no new run starts: the manifests are those of the runs that
/// started.
pub fn run_real(
    plans: &[RunPlan],
    config: &Config,
    jobs: usize,
    results_dir: &Path,
    interrupt: &Arc<Interrupt>,
) -> anyhow::Result<Vec<RunManifest>> {
    let exe = std::env::current_exe().context("cannot find the clocklab executable to start machines")?;
    let jobs = jobs.clamp(1, plans.len().max(1));
    let progress = Progress::new(plans, jobs);
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<RunManifest>>> = Mutex::new((0..plans.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let idx = next.fetch_add(1, Ordering::Relaxed);
                        let Some(plan) = plans.get(idx) else { break };
                        if interrupt.fired() {
                            break;
                        }
                        let mut manifest = run::run_one(&exe, plan, config, &progress, idx, interrupt);
                        if let Err(error) = layout::write_manifest(&plan.dir, &manifest) {
                            // The run's own first error (a full disk, often) stays the
                            // cause; that its record could not be kept comes after.
                            let path = layout::manifest_path(&plan.dir);
                            let unwritten = format!("its {} could not be written: {error}", path.display());
                            manifest.status = RunStatus::Failed {
                                cause: match &manifest.status {
                                    RunStatus::Failed { cause } => format!("{cause}; and {unwritten}"),
                                    _ => unwritten,
                                },
                            };
                        }
                        progress.finished(idx);
                        slots.lock().expect("no worker panics holding the slots")[idx] = Some(manifest);
                    }
                })
            })
            .collect();
        while !workers.iter().all(|worker| worker.is_finished()) {
            progress.refresh();
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    progress.bar.finish_and_clear();
    let manifests = slots
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|slot| match slot {
            Some(manifest) => Ok(Some(manifest)),
            None if interrupt.fired() => Ok(None),
            None => Err(anyhow!("a run was never started")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    print_lateness(&manifests, results_dir);
    Ok(manifests)
}

/// Prints one line: the worst p50, p99 and maximum tick lateness of all machines.
fn print_lateness(manifests: &[RunManifest], results_dir: &Path) {
    let summaries: Vec<LatenessSummary> = manifests
        .iter()
        .filter_map(|m| m.extra.get("tick_lateness_us"))
        .filter_map(|value| serde_json::from_value::<BTreeMap<String, LatenessSummary>>(value.clone()).ok())
        .flat_map(BTreeMap::into_values)
        .collect();
    if summaries.is_empty() {
        return;
    }
    let worst = |f: fn(&LatenessSummary) -> u64| summaries.iter().map(f).max().unwrap_or(0);
    say!(
        "tick lateness over {} machines: worst p50 {} us, worst p99 {} us, max {} us (per machine in each manifest.json under {})",
        summaries.len(),
        worst(|s| s.p50_us),
        worst(|s| s.p99_us),
        worst(|s| s.max_us),
        results_dir.display()
    );
}
