//! `clocklab run`: the experiment suite, then its analysis.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clocklab_config::{
    CommandRecord, Config, Experiment, OutputEstimate, RunManifest, RunStatus, Runtime, layout, plan_runs,
};
use rand::Rng;

use super::UsageError;

/// Arguments of `clocklab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A configuration file (JSON or TOML); without one, the built-in suite.
    #[arg(long, conflicts_with = "suite")]
    config: Option<PathBuf>,
    /// A built-in suite: `classic` (the exercise's four experiments, the
    /// default) or `faults` (one experiment per kind of fault).
    #[arg(long, value_enum)]
    suite: Option<super::SuiteArg>,
    /// A file of faults (`[[faults]]` entries, JSON or TOML) that every
    /// experiment goes through, in place of its own.
    #[arg(long, value_name = "FILE")]
    faults: Option<PathBuf>,
    /// A file of hosts (`[[hosts]]` entries, JSON or TOML): the machines run
    /// on them, started through each host's launcher, in place of the
    /// configuration's hosts.
    #[arg(long, value_name = "FILE")]
    hosts: Option<PathBuf>,
    /// Run only this experiment (repeat to run several).
    #[arg(long = "experiment", value_name = "NAME")]
    experiments: Vec<String>,
    /// Runs per experiment, overriding the configuration.
    #[arg(long)]
    runs: Option<u32>,
    /// Seconds per run, overriding the configuration.
    #[arg(long)]
    duration: Option<f64>,
    /// Machines per run, overriding the configuration.
    #[arg(long)]
    machines: Option<u32>,
    /// Rates are drawn from 1..=this, overriding the configuration.
    #[arg(long, value_name = "R")]
    max_clock_rate: Option<u32>,
    /// Event draws are from 1..=this, overriding the configuration.
    #[arg(long, value_name = "E")]
    max_event_num: Option<u32>,
    /// How many runs go side by side (real runtime); default: every run of the suite at once.
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
    log_format: Option<super::LogFormatArg>,
    /// The clocks every machine keeps, e.g. `lamport,vector,hlc` (Lamport's is always kept).
    #[arg(long, value_delimiter = ',', value_name = "CLOCKS")]
    clocks: Option<Vec<String>>,
    /// Skip the analysis at the end.
    #[arg(long)]
    no_analyze: bool,
    /// Run even if the logs would be larger than 10 GB or the free space of
    /// the output's disk.
    #[arg(long)]
    yes: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RuntimeArg {
    Real,
    Sim,
}

/// The configuration with the command line's overrides applied and checked,
/// and what the overrides changed.
fn resolve_config(args: &RunArgs) -> anyhow::Result<(Config, CommandRecord)> {
    let mut config = super::load_suite(args.config.as_deref(), args.suite, args.faults.as_deref())?;
    super::keep_experiments(&mut config, &args.experiments)?;
    if let Some(path) = &args.hosts {
        config.hosts = clocklab_config::load_hosts(path).context("invalid hosts")?;
    }
    let clocks = args.clocks.as_deref().map(super::parse_clocks).transpose()?;
    let configured = config.experiments.clone();
    if args.machines.is_some() {
        // `run` picks free ports itself; the file's ports are for machines started by hand.
        config.ports.clear();
    }
    for experiment in &mut config.experiments {
        if let Some(runs) = args.runs {
            experiment.runs = runs;
        }
        if let Some(duration) = args.duration {
            experiment.duration = duration;
        }
        if let Some(machines) = args.machines {
            experiment.machines = machines;
        }
        if let Some(rate) = args.max_clock_rate {
            experiment.max_clock_rate = rate;
        }
        if let Some(max_event_num) = args.max_event_num {
            experiment.max_event_num = max_event_num;
        }
        if let Some(clocks) = clocks {
            experiment.clocks = clocks;
        }
    }
    let record = command_record(args, &configured, &config.experiments);
    if let Some(runtime) = args.runtime {
        config.runtime = match runtime {
            RuntimeArg::Real => Runtime::Real,
            RuntimeArg::Sim => Runtime::Sim,
        };
    }
    if let Some(format) = args.log_format {
        config.log_format = format.formats();
    }
    if let Some(seed) = args.seed {
        config.seed = Some(seed);
    }
    if args.jobs == Some(0) {
        return Err(UsageError("--jobs 0: at least one run must go at a time".into()).into());
    }
    let overridden = args.runs.is_some()
        || args.duration.is_some()
        || args.machines.is_some()
        || args.max_clock_rate.is_some()
        || args.max_event_num.is_some()
        || args.clocks.is_some()
        || args.runtime.is_some();
    let mut source = match (&args.config, overridden) {
        (Some(path), false) => path.display().to_string(),
        (Some(path), true) => format!("{} with the command line", path.display()),
        (None, _) => "the command line".to_string(),
    };
    if let Some(path) = &args.faults {
        source = format!("{source} and the faults of {}", path.display());
    }
    if let Some(path) = &args.hosts {
        source = format!("{source} and the hosts of {}", path.display());
    }
    config.validate(&source).context("invalid configuration")?;
    Ok((config, record))
}

/// What the flags that set every experiment's value did: the values they
/// set, and per experiment the ones they replaced (`before` as configured,
/// `after` as run).
fn command_record(args: &RunArgs, before: &[Experiment], after: &[Experiment]) -> CommandRecord {
    let set: Vec<(String, String)> = [
        ("runs", args.runs.map(|v| v.to_string())),
        ("duration", args.duration.map(|v| v.to_string())),
        ("machines", args.machines.map(|v| v.to_string())),
        ("max_clock_rate", args.max_clock_rate.map(|v| v.to_string())),
        ("max_event_num", args.max_event_num.map(|v| v.to_string())),
        ("clocks", args.clocks.as_ref().map(|v| v.join(","))),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|value| (key.to_string(), value)))
    .collect();
    let mut replaced = std::collections::BTreeMap::new();
    for (was, is) in before.iter().zip(after) {
        let pairs = [
            ("runs", was.runs.to_string(), is.runs.to_string()),
            ("duration", was.duration.to_string(), is.duration.to_string()),
            ("machines", was.machines.to_string(), is.machines.to_string()),
            ("max_clock_rate", was.max_clock_rate.to_string(), is.max_clock_rate.to_string()),
            ("max_event_num", was.max_event_num.to_string(), is.max_event_num.to_string()),
            ("clocks", was.clocks.names().join(","), is.clocks.names().join(",")),
        ];
        let changed: std::collections::BTreeMap<String, String> =
            pairs.into_iter().filter(|(_, a, b)| a != b).map(|(key, a, _)| (key.to_string(), a)).collect();
        if !changed.is_empty() {
            replaced.insert(is.name.clone(), changed);
        }
    }
    CommandRecord { args: without_out(std::env::args().skip(1)), set, replaced }
}

/// The command's arguments without `--out DIR`: where the results went is
/// the folder that holds the record, and two runs of the same command with
/// the same seed make the same bytes wherever they write.
fn without_out(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for arg in args {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if arg == "--out" {
            skip_next = true;
        } else if !arg.starts_with("--out=") {
            out.push(arg);
        }
    }
    out
}

/// Runs `clocklab run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (config, command) = resolve_config(&args)?;
    let suite_seed = config.seed.unwrap_or_else(|| rand::rng().next_u64());
    // The plans are drawn before anything is written, to estimate the output.
    let planned = plan_runs(&config, suite_seed, &args.out);
    let estimate = OutputEstimate::of_plans(&planned);
    super::check_output_size(estimate, &args.out, args.yes)?;
    // Every host answers before anything is written: reachable, the same
    // version, a free port, its clock.
    if !config.hosts.is_empty() {
        let file = args.hosts.clone().or_else(|| args.config.clone()).unwrap_or_default();
        let timeout = std::time::Duration::from_secs_f64(config.connect_timeout.max(10.0));
        super::hosts::check(&file, &config.hosts, timeout, false)?;
    }
    // Real runs must fit this computer's limits on processes, threads and files.
    let budget = match config.runtime {
        Runtime::Real => Some(super::real_budget(&planned)?),
        Runtime::Sim => None,
    };
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]"))
        .context("formatting the results folder's name")?;
    let results_dir = layout::create_results_dir(&args.out, &stamp)
        .with_context(|| format!("cannot create a results folder under {}", args.out.display()))?;
    let config_path = results_dir.join(layout::CONFIG_FILE);
    clocklab_config::output::write_file(&config_path, config.to_toml().as_bytes())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    layout::write_command(&results_dir, &command)
        .with_context(|| format!("cannot write {}", results_dir.join(layout::COMMAND_FILE).display()))?;
    let plans = plan_runs(&config, suite_seed, &results_dir);
    // The handlers go in before the first line, so that a signal from then
    // on always stops the runs cleanly.
    let interrupt = crate::signals::Interrupt::install(&results_dir)?;
    say!(
        "clocklab: {}, seed {suite_seed}, results in {} (about {} of logs)",
        clocklab_analyze::words::count(plans.len() as u64, "run"),
        results_dir.display(),
        super::bytes(estimate.bytes)
    );

    let manifests = match config.runtime {
        Runtime::Real => {
            let jobs = args.jobs.unwrap_or(usize::MAX);
            let budget = budget.as_ref().expect("measured for a real suite");
            crate::orchestrate::run_real(&plans, &config, jobs, budget, &results_dir, &interrupt)?
        }
        Runtime::Sim => {
            let mut manifests = Vec::new();
            for plan in &plans {
                if interrupt.fired() {
                    break;
                }
                let manifest = clocklab_sim::run_plan_until(plan, &config.sim, interrupt.stop_flag())
                    .with_context(|| format!("simulating {}", plan.dir.display()))?;
                manifests.push(manifest);
            }
            manifests
        }
    };

    if let Some(signal) = interrupt.signal() {
        let interrupted = manifests.iter().filter(|m| m.status == RunStatus::Interrupted).count();
        clocklab_net::note!(
            "clocklab: interrupted by {}: {} stopped early ({} manifest.json says \"interrupted\"), {} finished, {} never started",
            crate::signals::signal_name(signal),
            clocklab_analyze::words::count(interrupted as u64, "run"),
            if interrupted == 1 { "its" } else { "each" },
            manifests.len() - interrupted,
            plans.len() - manifests.len()
        );
        say!("results: {}", results_dir.display());
        return Ok(ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)));
    }
    say!("results: {}", results_dir.display());
    for manifest in &manifests {
        if let RunStatus::Degraded { cause, .. } = &manifest.status {
            clocklab_net::note!("clocklab: run degraded: {}: {cause}", run_name(manifest));
        }
    }
    // What went wrong with the runs is said first: a run whose logs or
    // manifest could not be written (a full disk) names the file and the
    // system's error, before the analysis (which may fail for the same cause)
    // has its say.
    let failed: Vec<String> = manifests
        .iter()
        .filter_map(|m| match &m.status {
            RunStatus::Ok | RunStatus::Degraded { .. } => None,
            RunStatus::Failed { cause } => Some(format!("{}: {cause}", run_name(m))),
            RunStatus::Interrupted => Some(format!("{}: interrupted", run_name(m))),
        })
        .collect();
    for line in &failed {
        clocklab_net::note!("clocklab: run failed: {line}");
    }
    let runs_failed =
        || anyhow::anyhow!("{} of {} runs failed (see each run's manifest.json)", failed.len(), manifests.len());
    if !args.no_analyze {
        interrupt.enter_analysis();
        // Every run has ended and its logs and manifest are on the disk
        // (synced) before the analysis reads them.
        match super::analyze::analyze_results(&results_dir, &results_dir.join(layout::ANALYSIS_DIR)) {
            Ok(report) => say!("report: {}", report.display()),
            Err(error) if failed.is_empty() => return Err(error.context("the runs are complete; the analysis failed")),
            Err(error) => return Err(error.context(format!("{}; the analysis failed too", runs_failed()))),
        }
    }
    if !failed.is_empty() {
        return Err(runs_failed());
    }
    Ok(ExitCode::SUCCESS)
}

/// `experiment/run_<k>`: how the command names a run.
fn run_name(manifest: &RunManifest) -> String {
    format!("{}/run_{}", manifest.experiment.name, manifest.run_idx)
}
