//! Run plans: everything a runtime needs to execute one run, with every seed
//! and rate already drawn.

use std::path::{Path, PathBuf};

use clocklab_log::LogFormat;
use clocklab_model::{MachineId, seed};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Experiment};
use crate::layout;

/// One machine of a planned run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachinePlan {
    /// Its number.
    pub id: MachineId,
    /// The seed of its generator (rate draw first, then event draws).
    pub seed: u64,
    /// Its drawn clock rate.
    pub rate: u32,
}

/// One run, ready to execute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// The experiment it belongs to.
    pub experiment: Experiment,
    /// Its number within the experiment, 1-based.
    pub run_idx: u32,
    /// The suite's seed.
    pub suite_seed: u64,
    /// The experiment's seed.
    pub experiment_seed: u64,
    /// The run's seed, from which the machines' and the network's derive.
    pub run_seed: u64,
    /// The machines, by id.
    pub machines: Vec<MachinePlan>,
    /// The address machines listen on.
    pub host: String,
    /// The log files to write.
    pub log_formats: Vec<LogFormat>,
    /// Where the run's files go.
    pub dir: PathBuf,
}

impl RunPlan {
    /// Every seed of the run, for its manifest.
    pub fn seed_tree(&self) -> crate::SeedTree {
        crate::SeedTree {
            suite: self.suite_seed,
            experiment: self.experiment_seed,
            run: self.run_seed,
            machines: self.machines.iter().map(|m| (m.id, m.seed)).collect(),
        }
    }
}

/// Plans every run of `config` under the results folder `out`, all seeds
/// derived from `suite_seed`.
pub fn plan_runs(config: &Config, suite_seed: u64, out: &Path) -> Vec<RunPlan> {
    let mut plans = Vec::new();
    for experiment in &config.experiments {
        let experiment_seed = experiment.seed.unwrap_or_else(|| seed::experiment_seed(suite_seed, &experiment.name));
        for run_idx in 1..=experiment.runs {
            let run_seed = seed::run_seed(experiment_seed, run_idx);
            let machines = (1..=experiment.machines)
                .map(|id| {
                    let machine_seed = seed::machine_seed(run_seed, id);
                    let (_, rate) = seed::start_machine(machine_seed, experiment.max_clock_rate);
                    MachinePlan { id, seed: machine_seed, rate }
                })
                .collect();
            plans.push(RunPlan {
                experiment: experiment.clone(),
                run_idx,
                suite_seed,
                experiment_seed,
                run_seed,
                machines,
                host: config.host.clone(),
                log_formats: config.log_format.formats(),
                dir: layout::run_dir(out, &experiment.name, run_idx),
            });
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_reproduce_and_differ() {
        let config = Config::default();
        let out = Path::new("r");
        let a = plan_runs(&config, 1, out);
        let b = plan_runs(&config, 2, out);
        assert_eq!(a, plan_runs(&config, 1, out));
        assert_ne!(a[0].run_seed, b[0].run_seed);
        let run_seeds: std::collections::BTreeSet<u64> = a.iter().map(|p| p.run_seed).collect();
        assert_eq!(run_seeds.len(), a.len());
        for plan in &a {
            for machine in &plan.machines {
                assert!((1..=plan.experiment.max_clock_rate).contains(&machine.rate));
            }
        }
        assert_eq!(a[7].dir, Path::new("r/small-rate-variation/run_3"));
    }
}
