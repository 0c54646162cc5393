//! A suite's runs, side by side: at most `jobs` at a time, and only as many
//! as the [`Budget`] of this computer holds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use clocklab_config::{Config, RunManifest, RunPlan, RunStatus, layout};

use crate::budget::{Budget, Cost};
use crate::control::RunControl;
use crate::launcher::Launcher;
use crate::{Observer, supervisor};

/// Runs every plan as real processes started by `launcher`, at most `jobs`
/// at a time and within `budget`; writes each run's manifest (its logs are
/// the machines') and returns the manifests in plan order. A run whose
/// manifest could not be written is returned as failed, with its own first
/// error first. After a stop request no new run starts: the manifests are
/// those of the runs that started.
pub fn run_real(
    plans: &[RunPlan],
    config: &Config,
    jobs: usize,
    launcher: &dyn Launcher,
    control: &Arc<RunControl>,
    budget: &Budget,
    observer: &dyn Observer,
) -> Vec<RunManifest> {
    let jobs = jobs.clamp(1, plans.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<RunManifest>>> = Mutex::new((0..plans.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let idx = next.fetch_add(1, Ordering::Relaxed);
                    let Some(plan) = plans.get(idx) else { break };
                    let cost = Cost::of(plan.experiment.machines);
                    if control.stopped() || !budget.acquire(cost, control) {
                        break;
                    }
                    let mut manifest = supervisor::run_one(plan, config, launcher, control, observer, idx);
                    budget.release(cost);
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
                    observer.finished(idx);
                    slots.lock().expect("no worker panics holding the slots")[idx] = Some(manifest);
                }
            });
        }
    });
    slots.into_inner().expect("no worker panicked").into_iter().flatten().collect()
}
