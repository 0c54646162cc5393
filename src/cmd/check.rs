//! `clocklab check`: the happens-before checker, over a results, experiment
//! or run folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use clocklab_causal::check::{CheckOptions, RunCheck, check_run};
use clocklab_causal::graph::MessageStatus;
use clocklab_causal::{RunSource, SourceError};
use clocklab_log::thousands;

use super::UsageError;

/// Arguments of `clocklab check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A results folder, an experiment folder or a run folder.
    dir: PathBuf,
    /// The seed of the sample of ticks whose pairs are compared (vector clocks).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Ticks sampled per run for the pair check (1 to 10,000; its pairs are all compared).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    sample: u32,
    /// How many violations to show with their log lines (0 to 1,000).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    show: u32,
}

/// The folder a command reads for `dir`: `dir` itself, or, for the folder
/// `clocklab run --out` wrote into, its newest results folder (said on
/// standard error).
pub fn chosen_folder(dir: &Path) -> PathBuf {
    let chosen = clocklab_analyze::discover::results_folder(dir);
    if chosen != dir {
        clocklab_net::note!(
            "clocklab: {} holds results folders; reading the newest, {}",
            dir.display(),
            chosen.display()
        );
    }
    chosen
}

/// The runs under `dir` (a results, experiment or run folder, or the folder
/// of results folders `run --out` names), opened.
pub fn open_runs(dir: &Path) -> anyhow::Result<Vec<RunSource>> {
    let dir = &chosen_folder(dir);
    let experiments = clocklab_analyze::discover::discover(dir).map_err(analyze_error)?;
    experiments.iter().flat_map(|e| &e.runs).map(|run| RunSource::open(&run.path).map_err(source_error)).collect()
}

/// An analysis' error, with bad input (a path that is no folder of runs)
/// marked as such.
pub fn analyze_error(error: clocklab_analyze::AnalyzeError) -> anyhow::Error {
    if error.is_bad_input() { anyhow::Error::new(UsageError(error.to_string())) } else { error.into() }
}

/// A run folder's error, with bad input marked as such.
pub fn source_error(error: SourceError) -> anyhow::Error {
    if error.is_bad_input() { anyhow::Error::new(UsageError(error.to_string())) } else { anyhow::Error::new(error) }
}

/// Runs `clocklab check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let sources = open_runs(&args.dir)?;
    let options = CheckOptions { seed: args.seed, sample_ticks: args.sample as usize, keep: args.show as usize };
    let mut checks = Vec::new();
    for source in &sources {
        checks.push(check_run(source, &options).map_err(source_error)?);
    }
    print_report(&checks, args.show as usize);
    let failed = checks.iter().any(|check| !check.is_ok());
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `280 processed, 20 unprocessed`.
fn describe_messages(check: &RunCheck) -> String {
    let total: u64 = check.messages.values().sum();
    let parts: Vec<String> = [
        (MessageStatus::Processed, "processed"),
        (MessageStatus::Unprocessed, "unprocessed"),
        (MessageStatus::Lost, "lost by the fault plan"),
        (MessageStatus::Crashed, "taken by a crash"),
        (MessageStatus::Missing, "never received"),
        (MessageStatus::Unknown, "not traceable"),
    ]
    .iter()
    .filter_map(|(status, name)| check.messages.get(status).map(|n| format!("{} {name}", thousands(*n))))
    .collect();
    if parts.is_empty() {
        "no messages".into()
    } else {
        format!("{} messages ({})", thousands(total), parts.join(", "))
    }
}

fn print_report(checks: &[RunCheck], show: usize) {
    let detailed = checks.len() == 1;
    for check in checks {
        let verdict = if check.is_ok() {
            "ok".to_string()
        } else {
            let by: Vec<String> = check
                .tallies
                .iter()
                .filter(|t| t.violations > 0)
                .map(|t| format!("{} {}", t.check.name(), thousands(t.violations)))
                .collect();
            let noun = if check.n_violations == 1 { "violation" } else { "violations" };
            format!("{} {noun} ({})", thousands(check.n_violations), by.join(", "))
        };
        say!(
            "{}: {verdict}: {} events, {} ticks, {}",
            check.label,
            thousands(check.n_events),
            thousands(check.n_ticks),
            describe_messages(check)
        );
        if detailed {
            for tally in &check.tallies {
                let state = match tally.violations {
                    0 => "ok".to_string(),
                    1 => "1 violation".to_string(),
                    n => format!("{} violations", thousands(n)),
                };
                say!("  {:<8} {state}: {}", tally.check.name(), tally.covered);
            }
        } else {
            let names: Vec<&str> = check.tallies.iter().map(|t| t.check.name()).collect();
            say!("  checked: {}", names.join(", "));
        }
        for note in &check.timeline {
            say!("  timeline: {note}");
        }
        for note in &check.clock_sync {
            say!("  clock sync: {note}");
        }
        for note in &check.by_plan {
            say!("  by the fault plan: {note}");
        }
        for note in &check.not_checked {
            say!("  not checked: {note}");
        }
    }
    let shown: Vec<(&str, &clocklab_causal::check::Violation)> =
        checks.iter().flat_map(|c| c.violations.iter().map(move |v| (c.label.as_str(), v))).take(show).collect();
    let total: u64 = checks.iter().map(|c| c.n_violations).sum();
    if !shown.is_empty() {
        say!("");
        say!("violations (the first {} of {}):", shown.len(), thousands(total));
        for (idx, (label, violation)) in shown.iter().enumerate() {
            say!("{}. [{}] {label}: {}", idx + 1, violation.check.name(), violation.message);
            for site in &violation.sites {
                let id = site.id.map_or("line".to_string(), |id| id.to_string());
                say!("     {id:<8} {}:{}: {}", site.path.display(), site.line_no, site.line);
            }
        }
    }
    let events: u64 = checks.iter().map(|c| c.n_events).sum();
    let failed = checks.iter().filter(|c| !c.is_ok()).count();
    let runs = if checks.len() == 1 { "1 run".to_string() } else { format!("{} runs", checks.len()) };
    say!("");
    if total > 0 {
        let violations =
            if total == 1 { "1 violation".to_string() } else { format!("{} violations", thousands(total)) };
        if checks.len() == 1 {
            say!("{violations} in the run");
        } else {
            say!("{violations} in {failed} of {runs}");
        }
    } else if checks.iter().any(|c| !c.not_checked.is_empty()) {
        say!("all that could be checked holds ({runs}, {} events); see \"not checked\" above", thousands(events));
    } else {
        say!("all holds: {runs}, {} events", thousands(events));
    }
}
