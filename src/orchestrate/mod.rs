//! Real runs, from the command line: the orchestrator
//! (`clocklab_orchestrate`) with this executable's machines, a progress bar
//! and one line of tick lateness at the end.

mod progress;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clocklab_config::{Config, RunManifest, RunPlan};
use clocklab_net::LatenessSummary;
use clocklab_orchestrate::{Budget, LocalLauncher};

use crate::signals::Interrupt;
use progress::Progress;

/// Runs every plan as real processes of this executable, `jobs` runs at a
/// time within `budget`; see `clocklab_orchestrate::run_real`.
pub fn run_real(
    plans: &[RunPlan],
    config: &Config,
    jobs: usize,
    budget: &Budget,
    results_dir: &Path,
    interrupt: &Arc<Interrupt>,
) -> anyhow::Result<Vec<RunManifest>> {
    let exe = std::env::current_exe().context("cannot find the clocklab executable to start machines")?;
    let launcher = LocalLauncher::new(exe);
    let progress = Progress::new(plans, jobs.clamp(1, plans.len().max(1)));
    let manifests = std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            clocklab_orchestrate::run_real(plans, config, jobs, &launcher, &interrupt.control, budget, &progress)
        });
        while !running.is_finished() {
            progress.refresh();
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        running.join().expect("the orchestrator does not panic")
    });
    progress.bar.finish_and_clear();
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
