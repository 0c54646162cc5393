//! Run plans: everything a runtime needs to execute one run, with every seed
//! and rate already drawn.

use std::path::{Path, PathBuf};

use clocklab_log::LogFormat;
use clocklab_model::{MachineId, seed};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Experiment};
use crate::layout;

/// One machine of a planned run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachinePlan {
    /// Its number.
    pub id: MachineId,
    /// The seed of its generator (rate draw first, then event draws).
    pub seed: u64,
    /// Its drawn clock rate.
    pub rate: u32,
    /// Its physical clock's drawn offset from true time at the start, in microseconds.
    #[serde(default)]
    pub clock_offset_us: i64,
    /// Its physical clock's drawn drift, in parts per million.
    #[serde(default)]
    pub clock_drift_ppm: f64,
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
    /// How many messages a machine's queue holds before it refuses more.
    pub queue_cap: usize,
    /// How long after ticking ends a message may still leave, in
    /// microseconds (`connect_timeout`): one the fault plan releases later
    /// is held at the end (`clocklab_driver::is_held`).
    pub drain_us: u64,
    /// Where the run's files go.
    pub dir: PathBuf,
}

impl RunPlan {
    /// The driver parameters of machine `machine` of this run.
    pub fn driver_params(&self, machine: &MachinePlan) -> clocklab_driver::DriverParams {
        clocklab_driver::DriverParams {
            id: machine.id,
            n_machines: self.experiment.machines,
            max_clock_rate: self.experiment.max_clock_rate,
            max_event_num: self.experiment.max_event_num,
            seed: machine.seed,
            clocks: self.experiment.clocks,
            clock_offset_us: machine.clock_offset_us,
            clock_drift_ppm: machine.clock_drift_ppm,
            queue_cap: self.queue_cap,
        }
    }

    /// How long the machines tick, in microseconds.
    pub fn duration_us(&self) -> u64 {
        clocklab_model::schedule::duration_us(self.experiment.duration)
    }

    /// The run's fault plan: the network's decisions and the machines' faults.
    pub fn fault_plan(&self) -> clocklab_faults::FaultPlan {
        clocklab_faults::FaultPlan::new(&self.experiment.faults, self.run_seed, self.duration_us())
    }

    /// The run's times, for a start at true time `start_us`.
    pub fn run_times(&self, start_us: i64) -> clocklab_driver::RunTimes {
        clocklab_driver::RunTimes { start_us, duration_us: self.duration_us(), drain_us: self.drain_us }
    }

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

/// What runs will write, estimated before they start: log lines and bytes.
///
/// Every machine writes `Initialized`, one `Connected` per peer, exactly
/// `ceil(rate x duration)` ticks and `Stopped`; what it leaves unprocessed at
/// the end depends on the run and is not counted, so the estimate is a floor
/// for runs whose queues grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputEstimate {
    /// Log lines, over every machine and format.
    pub lines: u64,
    /// Bytes of logs.
    pub bytes: u64,
}

impl OutputEstimate {
    /// One machine of a run of `experiment` at `rate`, writing `formats`,
    /// whose physical clock is written when `physical_clock`.
    pub fn machine(experiment: &Experiment, rate: u32, formats: &[LogFormat], physical_clock: bool) -> OutputEstimate {
        let duration_us = clocklab_model::schedule::duration_us(experiment.duration);
        let lines = u64::from(experiment.machines)
            .saturating_add(1)
            .saturating_add(clocklab_model::schedule::n_ticks(rate, duration_us));
        let line_bytes: u64 = formats
            .iter()
            .map(|&format| {
                clocklab_log::typical_line_bytes(format, experiment.machines, experiment.clocks, physical_clock)
            })
            .sum();
        OutputEstimate { lines: lines.saturating_mul(formats.len() as u64), bytes: lines.saturating_mul(line_bytes) }
    }

    /// Every machine of every plan.
    pub fn of_plans(plans: &[RunPlan]) -> OutputEstimate {
        let mut total = OutputEstimate::default();
        for plan in plans {
            for machine in &plan.machines {
                let physical = plan.driver_params(machine).writes_physical_clock();
                let one = OutputEstimate::machine(&plan.experiment, machine.rate, &plan.log_formats, physical);
                total.lines = total.lines.saturating_add(one.lines);
                total.bytes = total.bytes.saturating_add(one.bytes);
            }
        }
        total
    }
}

/// The seed of `experiment`: its own fixed `seed`, else its control's (the
/// control's fixed seed when the configuration has one, so that a
/// variation keeps its control's draws), else derived from `suite_seed` and
/// the name of the control or, without one, its own.
pub fn experiment_seed(config: &Config, experiment: &Experiment, suite_seed: u64) -> u64 {
    if let Some(fixed) = experiment.seed {
        return fixed;
    }
    match &experiment.control {
        Some(control) => match config.experiment(control).and_then(|c| c.seed) {
            Some(fixed) => fixed,
            None => seed::experiment_seed(suite_seed, control),
        },
        None => seed::experiment_seed(suite_seed, &experiment.name),
    }
}

/// Plans every run of `config` under the results folder `out`, all seeds
/// derived from `suite_seed`.
pub fn plan_runs(config: &Config, suite_seed: u64, out: &Path) -> Vec<RunPlan> {
    let mut plans = Vec::new();
    for experiment in &config.experiments {
        let experiment_seed = experiment_seed(config, experiment, suite_seed);
        for run_idx in 1..=experiment.runs {
            let run_seed = seed::run_seed(experiment_seed, run_idx);
            let machines = (1..=experiment.machines)
                .map(|id| {
                    let machine_seed = seed::machine_seed(run_seed, id);
                    let (_, rate) = seed::start_machine(machine_seed, experiment.max_clock_rate);
                    let physical = experiment.physical_clock;
                    let offset_us_max = (physical.offset_ms_max * 1_000.0).round() as i64;
                    let (clock_offset_us, clock_drift_ppm) =
                        seed::draw_physical_clock(machine_seed, offset_us_max, physical.drift_ppm_max);
                    MachinePlan { id, seed: machine_seed, rate, clock_offset_us, clock_drift_ppm }
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
                queue_cap: config.queue_cap,
                drain_us: clocklab_model::schedule::duration_us(config.connect_timeout),
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

    #[test]
    fn a_variation_draws_its_controls_seeds() {
        let config = Config::faults_suite();
        let plans = plan_runs(&config, 5, Path::new("r"));
        let control = &plans[0];
        assert_eq!(control.experiment.name, "no-faults");
        for plan in &plans[1..] {
            assert_eq!(plan.experiment.control.as_deref(), Some("no-faults"));
            // The same seeds and rates; what the settings change (clock-step's
            // physical clocks) is drawn apart.
            let draws = |p: &RunPlan| p.machines.iter().map(|m| (m.seed, m.rate)).collect::<Vec<_>>();
            assert_eq!((plan.run_seed, draws(plan)), (control.run_seed, draws(control)), "{}", plan.experiment.name);
        }
        // Without a control, every experiment draws its own.
        let mut alone = config.clone();
        alone.experiments.iter_mut().for_each(|e| e.control = None);
        let plans = plan_runs(&alone, 5, Path::new("r"));
        assert_ne!(plans[0].run_seed, plans[1].run_seed);
    }

    #[test]
    fn the_output_estimate_counts_every_line_a_run_writes() {
        let mut config = Config::default();
        config.experiments.truncate(1);
        config.experiments[0].runs = 2;
        config.experiments[0].duration = 10.0;
        let plans = plan_runs(&config, 3, Path::new("r"));
        let estimate = OutputEstimate::of_plans(&plans);
        // Initialized, two Connected, the ticks and Stopped, per machine.
        let ticks: u64 = plans.iter().flat_map(|p| &p.machines).map(|m| u64::from(m.rate) * 10).sum();
        assert_eq!(estimate.lines, 6 * 4 + ticks);
        let per_line = estimate.bytes as f64 / estimate.lines as f64;
        assert!((120.0..200.0).contains(&per_line), "{per_line} bytes a line");
        // Both formats write every line twice; JSON lines are longer.
        config.log_format = crate::LogFormats::Both;
        let both = OutputEstimate::of_plans(&plan_runs(&config, 3, Path::new("r")));
        assert_eq!(both.lines, 2 * estimate.lines);
        assert!(both.bytes > 2 * estimate.bytes);
        // A year at a million ticks a second does not overflow.
        config.experiments[0].duration = crate::limits::DURATION_S_MAX;
        config.experiments[0].max_clock_rate = crate::limits::MAX_CLOCK_RATE_MAX;
        let huge = OutputEstimate::of_plans(&plan_runs(&config, 3, Path::new("r")));
        assert!(huge.bytes > 1_000_000_000_000_000, "{huge:?}");
    }
}
