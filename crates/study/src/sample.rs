//! Simulated runs of one experiment, analysed as the report analyses them.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clocklab_analyze::run::RunSummary;
use clocklab_config::{Config, Experiment, SimSettings, plan_runs};

/// Why a study could not run.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// A run could not be simulated, its logs written or read back.
    #[error("simulating {run}")]
    Run {
        /// The run's folder.
        run: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// Simulates `runs` runs of `experiment`, seeded from `suite_seed`, in
/// folders under `scratch` (each removed once analysed), on `threads`
/// threads; returns their summaries in run order, without the time series
/// (only the figures need them).
pub fn simulate(
    experiment: &Experiment,
    suite_seed: u64,
    runs: u32,
    threads: usize,
    scratch: &Path,
) -> Result<Vec<RunSummary>, StudyError> {
    let mut experiment = experiment.clone();
    experiment.runs = runs;
    let config = Config { experiments: vec![experiment], ..Config::default() };
    let plans = plan_runs(&config, suite_seed, scratch);
    let results: Mutex<Vec<Option<RunSummary>>> = Mutex::new(vec![None; plans.len()]);
    let failure: Mutex<Option<StudyError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let settings = SimSettings::default();
    let work = || {
        loop {
            let idx = next.fetch_add(1, Ordering::Relaxed);
            let Some(plan) = plans.get(idx) else { break };
            let failed = |source| StudyError::Run { run: plan.dir.display().to_string(), source };
            let outcome = clocklab_sim::run_plan(plan, &settings).map_err(failed).and_then(|_| {
                let experiments = clocklab_analyze::discover::discover(&plan.dir)
                    .map_err(|error| failed(std::io::Error::other(error.to_string())))?;
                let mut summary = clocklab_analyze::run::analyze_run_in_one_thread(&experiments[0].runs[0]);
                summary.series = Vec::new();
                std::fs::remove_dir_all(&plan.dir).map_err(failed)?;
                Ok(summary)
            });
            match outcome {
                Ok(summary) => results.lock().expect("no thread panics holding the lock")[idx] = Some(summary),
                Err(error) => {
                    failure.lock().expect("no thread panics holding the lock").get_or_insert(error);
                    break;
                }
            }
            if failure.lock().expect("no thread panics holding the lock").is_some() {
                break;
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.max(1) {
            scope.spawn(work);
        }
        work();
    });
    if let Some(error) = failure.into_inner().expect("no thread panicked") {
        return Err(error);
    }
    Ok(results.into_inner().expect("no thread panicked").into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_come_back_analysed_in_order_and_leave_nothing_behind() {
        let mut experiment = Config::default().experiments.remove(0);
        experiment.duration = 1.0;
        let scratch = tempfile::tempdir().unwrap();
        let runs = simulate(&experiment, 3, 6, 2, scratch.path()).unwrap();
        assert_eq!(runs.len(), 6);
        let again = simulate(&experiment, 3, 6, 1, scratch.path()).unwrap();
        let rates = |runs: &[RunSummary]| -> Vec<Vec<u32>> {
            runs.iter().map(|r| r.machines.iter().map(|m| m.rate).collect()).collect()
        };
        assert_eq!(rates(&runs), rates(&again), "the same seed gives the same runs, whatever the threads");
        assert!(runs.iter().all(|r| r.is_sound() && r.series.is_empty()));
        assert_eq!(
            std::fs::read_dir(scratch.path())
                .unwrap()
                .flat_map(|e| std::fs::read_dir(e.unwrap().path()))
                .flatten()
                .count(),
            0
        );
    }
}
