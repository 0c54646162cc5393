//! One module per subcommand: its arguments and what it does.

pub mod agent;
pub mod analyze;
pub mod bench;
pub mod bench_real;
pub mod calibrate;
pub mod check;
pub mod config;
pub mod diagram;
pub mod export;
pub mod hosts;
pub mod machine;
pub mod run;
pub mod study;

use std::path::Path;

use anyhow::Context;
use clocklab_config::{Config, ConfigError, LogFormats, OutputEstimate, limits};

/// Bad input that is the user's to fix: exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error: 2 for bad input (a link or a folder planted
/// where an output goes included), 1 for anything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let bad_input = error.chain().any(|cause| {
        cause.is::<ConfigError>() || cause.is::<UsageError>() || clocklab_config::output::refusal(cause).is_some()
    });
    if bad_input { 2 } else { 1 }
}

/// The log files to write, as the command line names them.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    /// `machine_<id>.log`.
    Text,
    /// `machine_<id>.jsonl`.
    Jsonl,
    /// Both.
    Both,
}

impl LogFormatArg {
    /// The configuration's form.
    pub fn formats(self) -> LogFormats {
        match self {
            LogFormatArg::Text => LogFormats::Text,
            LogFormatArg::Jsonl => LogFormats::Jsonl,
            LogFormatArg::Both => LogFormats::Both,
        }
    }
}

/// The clock set named on the command line (`--clocks lamport,vector,hlc`).
pub fn parse_clocks(names: &[String]) -> anyhow::Result<clocklab_model::ClockKinds> {
    clocklab_model::ClockKinds::parse(names.iter().map(String::as_str))
        .map_err(|error| UsageError(format!("--clocks {}: {error}", names.join(","))).into())
}

/// The configuration from `path`, or the built-in one.
/// A built-in suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SuiteArg {
    /// The exercise's four experiments.
    Classic,
    /// One experiment per kind of fault: a partition, a lossy link, a crash
    /// with fresh and with recovered clocks, a pause, a clock step.
    Faults,
}

/// The configuration of `--config` or `--suite` (the classic suite when
/// neither), every experiment put through the faults of `--faults` if given.
pub fn load_suite(config: Option<&Path>, suite: Option<SuiteArg>, faults: Option<&Path>) -> anyhow::Result<Config> {
    let mut config = match suite {
        Some(SuiteArg::Faults) => Config::faults_suite(),
        Some(SuiteArg::Classic) | None => load_config(config)?,
    };
    if let Some(path) = faults {
        let faults = clocklab_config::load_faults(path).context("invalid faults")?;
        for experiment in &mut config.experiments {
            experiment.faults.clone_from(&faults);
        }
    }
    Ok(config)
}

/// Keeps only the experiments named by `--experiment` (all when none is
/// named); an unknown name is bad input that lists the known ones.
pub fn keep_experiments(config: &mut Config, names: &[String]) -> anyhow::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    for name in names {
        if config.experiment(name).is_none() {
            let known: Vec<&str> = config.experiments.iter().map(|e| e.name.as_str()).collect();
            return Err(
                UsageError(format!("--experiment {name}: no such experiment (known: {})", known.join(", "))).into()
            );
        }
    }
    config.experiments.retain(|e| names.contains(&e.name));
    Ok(())
}

pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Config::load(path).context("invalid configuration"),
        None => Ok(Config::default()),
    }
}

/// Refuses a run whose estimated output is above
/// [`limits::OUTPUT_BYTES_MAX`] or the free space of the disk under `out`,
/// unless `yes` (`--yes`): bad input, before anything is written, saying the
/// estimate.
pub fn check_output_size(estimate: OutputEstimate, out: &Path, yes: bool) -> anyhow::Result<()> {
    let free = free_bytes(out);
    let limit = free.map_or(limits::OUTPUT_BYTES_MAX, |free| free.min(limits::OUTPUT_BYTES_MAX));
    if estimate.bytes <= limit || yes {
        return Ok(());
    }
    let free = free.map_or_else(String::new, |free| format!(", {} free on the disk of {}", bytes(free), out.display()));
    Err(UsageError(format!(
        "this would write about {} of logs ({} lines), more than the limit of {}{free}: shorten it (duration, runs, \
         machines, max_clock_rate), or pass --yes to run it anyway",
        bytes(estimate.bytes),
        estimate.lines,
        bytes(limits::OUTPUT_BYTES_MAX),
    ))
    .into())
}

/// The bytes free for this user on the disk that holds `path` (or its
/// nearest existing parent), if the system says.
fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|dir| dir.as_os_str().is_empty() || dir.exists())?;
    let existing = if existing.as_os_str().is_empty() { Path::new(".") } else { existing };
    let stat = nix::sys::statvfs::statvfs(existing).ok()?;
    #[allow(clippy::unnecessary_cast)] // `fsblkcnt_t` and `c_ulong` are narrower than `u64` on some systems.
    let free = (stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64);
    Some(free)
}

/// A size in bytes for a person: `12.3 GB`.
pub fn bytes(n: u64) -> String {
    let units = [(1e18, "EB"), (1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB")];
    let size = n as f64;
    match units.iter().find(|(scale, _)| size >= *scale) {
        Some((scale, unit)) => format!("{:.1} {unit}", size / scale),
        None => format!("{:.1} kB", size / 1e3),
    }
}

/// The room this computer has for the real runs of `plans` (its limits on
/// tasks and open files, measured now); a run that does not fit even alone
/// is bad input, refused before anything is written.
pub fn real_budget(plans: &[clocklab_config::RunPlan]) -> anyhow::Result<clocklab_orchestrate::Budget> {
    let limits = clocklab_orchestrate::Limits::measure();
    clocklab_orchestrate::Budget::for_plans(plans, &limits).map_err(|too_large| UsageError(too_large.0).into())
}
