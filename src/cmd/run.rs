//! `clocklab run`: the experiment suite, then its analysis.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clocklab_config::{Config, LogFormats, RunStatus, Runtime, layout, plan_runs};
use rand::Rng;

use super::UsageError;

/// Arguments of `clocklab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A configuration file (JSON or TOML); without one, the built-in suite.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run only this experiment (repeat to run several).
    #[arg(long = "experiment", value_name = "NAME")]
    experiments: Vec<String>,
    /// Runs per experiment, overriding the configuration.
    #[arg(long)]
    runs: Option<u32>,
    /// Seconds per run, overriding the configuration.
    #[arg(long)]
    duration: Option<f64>,
    /// How many runs go side by side (real runtime); default: all of an experiment's.
    #[arg(long)]
    jobs: Option<usize>,
    /// The suite's seed: the same seed reproduces every rate and event draw.
    #[arg(long)]
    seed: Option<u64>,
    /// The folder under which a new results folder is made.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Real processes over TCP, or the deterministic simulator.
    #[arg(long, value_enum)]
    runtime: Option<RuntimeArg>,
    /// Which log files to write.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// The clocks every machine keeps, e.g. `lamport,vector,hlc` (Lamport's is always kept).
    #[arg(long, value_delimiter = ',', value_name = "CLOCKS")]
    clocks: Option<Vec<String>>,
    /// Skip the analysis at the end.
    #[arg(long)]
    no_analyze: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RuntimeArg {
    Real,
    Sim,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Jsonl,
    Both,
}

/// The configuration with the command line's overrides applied and checked.
fn resolve_config(args: &RunArgs) -> anyhow::Result<Config> {
    let mut config = super::load_config(args.config.as_deref())?;
    if !args.experiments.is_empty() {
        for name in &args.experiments {
            if config.experiment(name).is_none() {
                let known: Vec<&str> = config.experiments.iter().map(|e| e.name.as_str()).collect();
                return Err(UsageError(format!(
                    "--experiment {name}: no such experiment (known: {})",
                    known.join(", ")
                ))
                .into());
            }
        }
        config.experiments.retain(|e| args.experiments.contains(&e.name));
    }
    let clocks = args.clocks.as_deref().map(super::parse_clocks).transpose()?;
    for experiment in &mut config.experiments {
        if let Some(runs) = args.runs {
            experiment.runs = runs;
        }
        if let Some(duration) = args.duration {
            experiment.duration = duration;
        }
        if let Some(clocks) = clocks {
            experiment.clocks = clocks;
        }
    }
    if let Some(runtime) = args.runtime {
        config.runtime = match runtime {
            RuntimeArg::Real => Runtime::Real,
            RuntimeArg::Sim => Runtime::Sim,
        };
    }
    if let Some(format) = args.log_format {
        config.log_format = match format {
            LogFormatArg::Text => LogFormats::Text,
            LogFormatArg::Jsonl => LogFormats::Jsonl,
            LogFormatArg::Both => LogFormats::Both,
        };
    }
    if let Some(seed) = args.seed {
        config.seed = Some(seed);
    }
    if args.jobs == Some(0) {
        return Err(UsageError("--jobs 0: at least one run must go at a time".into()).into());
    }
    config.validate("the command line").context("invalid configuration")?;
    Ok(config)
}

/// Runs `clocklab run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = resolve_config(&args)?;
    let suite_seed = config.seed.unwrap_or_else(|| rand::rng().next_u64());
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]"))
        .context("formatting the results folder's name")?;
    let results_dir = layout::create_results_dir(&args.out, &stamp)
        .with_context(|| format!("cannot create a results folder under {}", args.out.display()))?;
    std::fs::write(results_dir.join("config.toml"), config.to_toml())
        .with_context(|| format!("cannot write {}", results_dir.join("config.toml").display()))?;
    let plans = plan_runs(&config, suite_seed, &results_dir);
    // The handlers go in before the first line, so that a signal from then
    // on always stops the runs cleanly.
    let interrupt = match config.runtime {
        Runtime::Real => Some(crate::signals::Interrupt::install(&results_dir)?),
        Runtime::Sim => None,
    };
    say!("clocklab: {} runs, seed {suite_seed}, results in {}", plans.len(), results_dir.display());

    let manifests = match (config.runtime, &interrupt) {
        (Runtime::Real, Some(interrupt)) => {
            let jobs = args.jobs.unwrap_or(usize::MAX);
            crate::orchestrate::run_real(&plans, &config, jobs, &results_dir, interrupt)?
        }
        (Runtime::Real, None) => unreachable!("the real runtime always has its handlers"),
        (Runtime::Sim, _) => plans
            .iter()
            .map(|plan| {
                clocklab_sim::run_plan(plan, &config.sim).with_context(|| format!("simulating {}", plan.dir.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    };

    let failed: Vec<String> = manifests
        .iter()
        .filter_map(|m| match &m.status {
            RunStatus::Ok => None,
            RunStatus::Failed { cause } => Some(format!("{}/run_{}: {cause}", m.experiment.name, m.run_idx)),
            RunStatus::Interrupted => Some(format!("{}/run_{}: interrupted", m.experiment.name, m.run_idx)),
        })
        .collect();
    if let Some(signal) = interrupt.as_ref().and_then(|i| i.signal()) {
        let interrupted = manifests.iter().filter(|m| m.status == RunStatus::Interrupted).count();
        eprintln!(
            "clocklab: interrupted by {}: {interrupted} runs stopped early (each manifest.json says \"interrupted\"), {} finished, {} never started",
            crate::signals::signal_name(signal),
            manifests.len() - interrupted,
            plans.len() - manifests.len()
        );
        say!("results: {}", results_dir.display());
        return Ok(ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)));
    }
    say!("results: {}", results_dir.display());
    if !args.no_analyze {
        let report = super::analyze::analyze_results(&results_dir, &results_dir.join("analysis"))?;
        say!("report: {}", report.display());
    }
    if !failed.is_empty() {
        for line in &failed {
            eprintln!("clocklab: run failed: {line}");
        }
        anyhow::bail!("{} of {} runs failed (see each run's manifest.json)", failed.len(), manifests.len());
    }
    Ok(ExitCode::SUCCESS)
}
