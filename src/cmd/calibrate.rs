//! `clocklab calibrate`: one experiment in both runtimes with the same seed,
//! compared machine by machine, to show how faithful the simulator is.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clocklab_config::{layout, plan_runs};
use rand::Rng;

use super::UsageError;

/// Arguments of `clocklab calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// A configuration file (JSON or TOML); without one, the built-in suite.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The experiment to run in both runtimes.
    #[arg(long, default_value = "baseline")]
    experiment: String,
    /// Runs, overriding the configuration.
    #[arg(long)]
    runs: Option<u32>,
    /// Seconds per run, overriding the configuration.
    #[arg(long)]
    duration: Option<f64>,
    /// The clocks every machine keeps, e.g. `lamport,vector,hlc`.
    #[arg(long, value_delimiter = ',', value_name = "CLOCKS")]
    clocks: Option<Vec<String>>,
    /// The seed both runtimes share (random, and printed, when absent).
    #[arg(long)]
    seed: Option<u64>,
    /// The folder under which a new results folder is made.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Run even if the logs would be larger than 10 GB or the free space of
    /// the output's disk.
    #[arg(long)]
    yes: bool,
}

/// Runs `clocklab calibrate`.
pub fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let mut config = super::load_config(args.config.as_deref())?;
    let Some(experiment) = config.experiment(&args.experiment).cloned() else {
        let known: Vec<&str> = config.experiments.iter().map(|e| e.name.as_str()).collect();
        return Err(UsageError(format!(
            "--experiment {}: no such experiment (known: {})",
            args.experiment,
            known.join(", ")
        ))
        .into());
    };
    config.experiments = vec![experiment];
    if let Some(runs) = args.runs {
        config.experiments[0].runs = runs;
    }
    if let Some(duration) = args.duration {
        config.experiments[0].duration = duration;
    }
    if let Some(names) = &args.clocks {
        config.experiments[0].clocks = super::parse_clocks(names)?;
    }
    // Calibration runs the experiment in the real runtime too.
    config.runtime = clocklab_config::Runtime::Real;
    config.validate("the command line").context("invalid configuration")?;
    let seed = args.seed.or(config.seed).unwrap_or_else(|| rand::rng().next_u64());
    // Both runtimes write the same logs.
    let estimate = clocklab_config::OutputEstimate::of_plans(&plan_runs(&config, seed, &args.out));
    let both = clocklab_config::OutputEstimate { lines: 2 * estimate.lines, bytes: 2 * estimate.bytes };
    super::check_output_size(both, &args.out, args.yes)?;

    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]"))
        .context("formatting the results folder's name")?;
    let results_dir = layout::create_results_dir(&args.out, &format!("{stamp}-calibration"))
        .with_context(|| format!("cannot create a results folder under {}", args.out.display()))?;
    let (real_dir, sim_dir) = (results_dir.join("real"), results_dir.join("sim"));
    say!("clocklab calibrate: {} in both runtimes, seed {seed}, results in {}", args.experiment, results_dir.display());

    let real_plans = plan_runs(&config, seed, &real_dir);
    let interrupt = crate::signals::Interrupt::install(&results_dir)?;
    let manifests = crate::orchestrate::run_real(&real_plans, &config, usize::MAX, &real_dir, &interrupt)?;
    if let Some(signal) = interrupt.signal() {
        clocklab_net::note!(
            "clocklab: interrupted by {}: the calibration stopped (the real runs so far are in {})",
            crate::signals::signal_name(signal),
            real_dir.display()
        );
        return Ok(ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)));
    }
    if let Some(failed) = manifests.iter().find(|m| !m.status.ran_to_the_end()) {
        anyhow::bail!("real run {} did not finish cleanly: {:?}", failed.run_idx, failed.status);
    }
    for plan in plan_runs(&config, seed, &sim_dir) {
        clocklab_sim::run_plan_until(&plan, &config.sim, interrupt.stop_flag())
            .with_context(|| format!("simulating {}", plan.dir.display()))?;
    }
    interrupt.enter_analysis();
    // A report for each runtime, as `clocklab run` writes one.
    for dir in [&real_dir, &sim_dir] {
        let report = super::analyze::analyze_results(dir, &dir.join(layout::ANALYSIS_DIR))?;
        say!("report: {}", report.display());
    }

    let agreement = tick_agreement(&real_plans, &sim_dir)?;
    let real = clocklab_analyze::analyze(&real_dir).context("analysing the real runs")?;
    let sim = clocklab_analyze::analyze(&sim_dir).context("analysing the simulated runs")?;
    let comparison = clocklab_analyze::compare::compare(&real, &sim);
    let mut table = clocklab_analyze::compare::render_comparison(&comparison, "real", "sim");
    table.push_str(&agreement.describe());
    let json = serde_json::to_string_pretty(&serde_json::json!({ "comparison": comparison, "agreement": agreement }))
        .context("serialising the comparison")?
        + "\n";
    for (name, text) in [("calibration.txt", &table), ("calibration.json", &json)] {
        let path = results_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(table.as_bytes());
    }
    say!("calibration: {}", results_dir.join("calibration.txt").display());
    Ok(ExitCode::SUCCESS)
}

/// How many ticks the two runtimes made identically: same event, same clock,
/// same queue length, at the same place in the log.
#[derive(Debug, Default, serde::Serialize)]
struct Agreement {
    /// Ticks compared (the real runtime's).
    ticks: u64,
    /// Ticks identical in both runtimes.
    identical_ticks: u64,
    /// Runs.
    runs: u64,
    /// Runs whose every tick was identical.
    identical_runs: u64,
}

impl Agreement {
    fn describe(&self) -> String {
        let share = if self.ticks == 0 { 0.0 } else { 100.0 * self.identical_ticks as f64 / self.ticks as f64 };
        format!(
            "identical ticks (event, clock, queue length): {} of {} ({share:.1}%); runs identical tick for tick: {} of {}\n",
            self.identical_ticks, self.ticks, self.identical_runs, self.runs
        )
    }
}

/// Compares the real runs' ticks with their simulated twins', line by line.
fn tick_agreement(real_plans: &[clocklab_config::RunPlan], sim_dir: &std::path::Path) -> anyhow::Result<Agreement> {
    let ticks_of = |path: &std::path::Path| -> anyhow::Result<Vec<clocklab_log::Record>> {
        let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(clocklab_log::LogReader::new(std::io::BufReader::new(file))
            .map(|line| line.record)
            .filter(|record| record.event.is_tick())
            .collect())
    };
    let mut agreement = Agreement::default();
    for plan in real_plans {
        let sim_run = layout::run_dir(sim_dir, &plan.experiment.name, plan.run_idx);
        let mut run_identical = true;
        for machine in &plan.machines {
            let real = ticks_of(&layout::log_path(&plan.dir, machine.id, clocklab_log::LogFormat::Text))?;
            let sim = ticks_of(&layout::log_path(&sim_run, machine.id, clocklab_log::LogFormat::Text))?;
            let same = |a: &clocklab_log::Record, b: &clocklab_log::Record| {
                (&a.event, a.logical_clock, a.queue_length) == (&b.event, b.logical_clock, b.queue_length)
            };
            let identical = real.iter().zip(&sim).filter(|(a, b)| same(a, b)).count() as u64;
            agreement.ticks += real.len() as u64;
            agreement.identical_ticks += identical;
            run_identical &= identical == real.len() as u64 && real.len() == sim.len();
        }
        agreement.runs += 1;
        agreement.identical_runs += u64::from(run_identical);
    }
    Ok(agreement)
}
