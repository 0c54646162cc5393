//! `clocklab calibrate`: one experiment in both runtimes with the same seed,
//! compared machine by machine, to show how faithful the simulator is.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clocklab_config::{RunStatus, layout, plan_runs};
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
    /// The seed both runtimes share (random, and printed, when absent).
    #[arg(long)]
    seed: Option<u64>,
    /// The folder under which a new results folder is made.
    #[arg(long, default_value = "results")]
    out: PathBuf,
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
    config.validate("the command line").context("invalid configuration")?;
    let seed = args.seed.or(config.seed).unwrap_or_else(|| rand::rng().next_u64());

    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]"))
        .context("formatting the results folder's name")?;
    let results_dir = layout::create_results_dir(&args.out, &format!("{stamp}-calibration"))
        .with_context(|| format!("cannot create a results folder under {}", args.out.display()))?;
    let (real_dir, sim_dir) = (results_dir.join("real"), results_dir.join("sim"));
    println!(
        "clocklab calibrate: {} in both runtimes, seed {seed}, results in {}",
        args.experiment,
        results_dir.display()
    );

    let real_plans = plan_runs(&config, seed, &real_dir);
    let manifests = crate::orchestrate::run_real(&real_plans, &config, usize::MAX, &real_dir)?;
    if let Some(failed) = manifests.iter().find(|m| m.status != RunStatus::Ok) {
        anyhow::bail!("real run {} did not finish cleanly: {:?}", failed.run_idx, failed.status);
    }
    for plan in plan_runs(&config, seed, &sim_dir) {
        clocklab_sim::run_plan(&plan, &config.sim).with_context(|| format!("simulating {}", plan.dir.display()))?;
    }

    let real = clocklab_analyze::analyze(&real_dir).context("analysing the real runs")?;
    let sim = clocklab_analyze::analyze(&sim_dir).context("analysing the simulated runs")?;
    let comparison = clocklab_analyze::compare::compare(&real, &sim);
    let table = clocklab_analyze::compare::render_comparison(&comparison, "real", "sim");
    let json = serde_json::to_string_pretty(&comparison).context("serialising the comparison")? + "\n";
    for (name, text) in [("calibration.txt", &table), ("calibration.json", &json)] {
        let path = results_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    print!("{table}");
    println!("calibration: {}", results_dir.join("calibration.txt").display());
    Ok(ExitCode::SUCCESS)
}
