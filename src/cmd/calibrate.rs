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
    #[arg(long, conflicts_with = "suite")]
    config: Option<PathBuf>,
    /// A built-in suite: `classic` (the default) or `faults`.
    #[arg(long, value_enum)]
    suite: Option<super::SuiteArg>,
    /// A file of faults (`[[faults]]` entries) the experiment goes through
    /// in both runtimes, in place of its own.
    #[arg(long, value_name = "FILE")]
    faults: Option<PathBuf>,
    /// The experiment to run in both runtimes (default: `baseline`, or the
    /// first of `--suite faults`).
    #[arg(long)]
    experiment: Option<String>,
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
    let mut config = super::load_suite(args.config.as_deref(), args.suite, args.faults.as_deref())?;
    let name = match (&args.experiment, args.suite) {
        (Some(name), _) => name.clone(),
        (None, Some(super::SuiteArg::Faults)) => config.experiments[0].name.clone(),
        (None, _) => "baseline".to_string(),
    };
    let Some(experiment) = config.experiment(&name).cloned() else {
        let known: Vec<&str> = config.experiments.iter().map(|e| e.name.as_str()).collect();
        return Err(UsageError(format!("--experiment {name}: no such experiment (known: {})", known.join(", "))).into());
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
    let budget = super::real_budget(&plan_runs(&config, seed, &args.out))?;

    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]"))
        .context("formatting the results folder's name")?;
    let results_dir = layout::create_results_dir(&args.out, &format!("{stamp}-calibration"))
        .with_context(|| format!("cannot create a results folder under {}", args.out.display()))?;
    let (real_dir, sim_dir) = (results_dir.join("real"), results_dir.join("sim"));
    say!("clocklab calibrate: {} in both runtimes, seed {seed}, results in {}", name, results_dir.display());

    let real_plans = plan_runs(&config, seed, &real_dir);
    let interrupt = crate::signals::Interrupt::install(&results_dir)?;
    let manifests = crate::orchestrate::run_real(&real_plans, &config, usize::MAX, &budget, &real_dir, &interrupt)?;
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
    for (dir, runtime) in [(&real_dir, "real processes over TCP"), (&sim_dir, "the simulator")] {
        // The tables below are headed by the experiment alone: say whose they are.
        say!("-- {runtime} ({}):", dir.display());
        let report = super::analyze::analyze_results(dir, &dir.join(layout::ANALYSIS_DIR))?;
        say!("report: {}", report.display());
    }

    let agreement = tick_agreement(&real_plans, &sim_dir)?;
    let real = clocklab_analyze::analyze(&real_dir).context("analysing the real runs")?;
    let sim = clocklab_analyze::analyze(&sim_dir).context("analysing the simulated runs")?;
    let comparison = clocklab_analyze::compare::compare(&real, &sim);
    let mut table = clocklab_analyze::compare::render_comparison(&comparison, "real", "sim");
    table.push_str(&agreement.describe());
    table.push_str(&describe_faults(&real, &sim));
    let json = serde_json::to_string_pretty(&serde_json::json!({ "comparison": comparison, "agreement": agreement }))
        .context("serialising the comparison")?
        + "\n";
    for (name, text) in [("calibration.txt", &table), ("calibration.json", &json)] {
        let path = results_dir.join(name);
        clocklab_config::output::write_file(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(table.as_bytes());
    }
    say!("calibration: {}", results_dir.join("calibration.txt").display());
    Ok(ExitCode::SUCCESS)
}

/// What each fault did in the two runtimes, run by run, number by number
/// (empty without faults).
fn describe_faults(real: &clocklab_analyze::Summary, sim: &clocklab_analyze::Summary) -> String {
    use std::fmt::Write as _;
    let runs = |summary: &clocklab_analyze::Summary| {
        summary
            .experiments
            .iter()
            .flat_map(|e| e.runs.iter().map(|r| (r.name.clone(), r.faults.clone())))
            .collect::<Vec<_>>()
    };
    let mut out = String::new();
    for ((run, real_faults), (_, sim_faults)) in runs(real).into_iter().zip(runs(sim)) {
        for (real_fault, sim_fault) in real_faults.iter().zip(&sim_faults) {
            if out.is_empty() {
                let _ = writeln!(out, "\n{:<32} {:>10}  {:>10}", "what each fault did", "real", "sim");
            }
            let _ = writeln!(out, "{run}: {}", real_fault.label);
            let fields = |fault: &clocklab_analyze::faults::FaultEffect| match serde_json::to_value(&fault.effect) {
                Ok(serde_json::Value::Object(fields)) => fields,
                _ => serde_json::Map::new(),
            };
            let (real_fields, sim_fields) = (fields(real_fault), fields(sim_fault));
            for (key, value) in real_fields.iter().filter(|(key, _)| key.as_str() != "kind") {
                let show = |v: Option<&serde_json::Value>| match v {
                    Some(serde_json::Value::Number(n)) => n.as_f64().map_or_else(
                        || n.to_string(),
                        |x| {
                            if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.3}") }
                        },
                    ),
                    Some(serde_json::Value::Null) | None => "-".to_string(),
                    Some(other) => other.to_string(),
                };
                let _ = writeln!(out, "  {key:<30} {:>10}  {:>10}", show(Some(value)), show(sim_fields.get(key)));
            }
        }
    }
    out
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
