//! `clocklab study`: the analysis' statistics measured against the
//! simulator (coverage of intervals, false positives of comparisons, the
//! lag-growth test's errors), printed, and written as the tables the
//! analysis ships.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use clocklab_analyze::coverage::{ComparisonRow, CoverageRow, GrowthRow, KEPT, write_tsv};
use clocklab_analyze::words::{count, fixed};
use clocklab_config::{Config, Experiment, Runtime};
use clocklab_study::{Options, comparison, coverage, growth};

use super::UsageError;

/// Arguments of `clocklab study`.
#[derive(Debug, Args)]
pub struct StudyArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// How often each metric's 95% interval holds the truth (the mean of many runs).
    Coverage(Common),
    /// How often identical experiments are called different, and how often a
    /// difference's interval holds the true difference.
    Comparison(Common),
    /// How often the lag-growth test flags a stable machine (ρ ≤ 0.9) and
    /// catches an overloaded one (ρ ≥ 1.1), by run length.
    LagGrowth(GrowthArgs),
}

/// What every study takes.
#[derive(Debug, Args)]
struct Common {
    /// A configuration file (JSON or TOML); without one, the built-in suite.
    #[arg(long, conflicts_with = "suite")]
    config: Option<PathBuf>,
    /// A built-in suite: `classic` (the default) or `faults`.
    #[arg(long, value_enum)]
    suite: Option<super::SuiteArg>,
    /// Study only this experiment (repeat to study several; default: all).
    #[arg(long = "experiment", value_name = "NAME")]
    experiments: Vec<String>,
    /// Groups of runs, each giving one interval or one test (1 to 100,000).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    groups: u32,
    /// Runs per group (2 to 1,000; default: each experiment's `runs`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1_000))]
    runs: Option<u32>,
    /// Seconds per run, overriding the configuration.
    #[arg(long)]
    duration: Option<f64>,
    /// Runs whose mean is the truth (1 to 1,000,000).
    #[arg(long, default_value_t = 4_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    truth_runs: u32,
    /// The study's seed: the same seed prints the same table.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads (default: the computer's cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_024))]
    jobs: Option<u32>,
    /// Also write the table here, as the analysis reads it (`crates/analyze/data/`).
    #[arg(long, value_name = "FILE")]
    table: Option<PathBuf>,
}

/// Arguments of `clocklab study lag-growth`.
#[derive(Debug, Args)]
struct GrowthArgs {
    #[command(flatten)]
    common: Common,
    /// The run lengths to study, in seconds.
    #[arg(long, value_delimiter = ',', default_value = "20,60,180")]
    durations: Vec<f64>,
}

/// Runs `clocklab study`.
pub fn run(args: StudyArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let scratch = clocklab_study::scratch_folder().context("cannot make a scratch folder for the study's runs")?;
    match args.what {
        What::Coverage(common) => {
            let (experiments, options) = resolve(&common)?;
            say!("{}", heading("coverage of the 95% intervals", &experiments, &options));
            let mut rows = Vec::new();
            for (experiment, options) in &experiments_with_runs(&experiments, &options) {
                rows.extend(coverage::coverage(experiment, options, scratch.path())?);
            }
            print_coverage(&rows);
            finish(&common, &experiments, &options, &rows, started)?;
        }
        What::Comparison(common) => {
            let (experiments, options) = resolve(&common)?;
            say!("{}", heading("comparisons between experiments", &experiments, &options));
            let mut rows = Vec::new();
            let mut first: Option<(Experiment, coverage::Sampled, Vec<f64>)> = None;
            for (experiment, options) in &experiments_with_runs(&experiments, &options) {
                let sampled = coverage::sample(experiment, options, "groups", scratch.path())?;
                let copy = coverage::sample_groups(experiment, options, "copy", scratch.path())?;
                let truths = coverage::truths(&sampled.truth);
                rows.extend(comparison::rows(
                    (experiment, &sampled.groups, &truths),
                    (experiment, &copy, &truths),
                    options,
                ));
                match &first {
                    Some((base, base_sampled, base_truths)) => rows.extend(comparison::rows(
                        (experiment, &sampled.groups, &truths),
                        (base, &base_sampled.groups, base_truths),
                        options,
                    )),
                    None => first = Some((experiment.clone(), sampled, truths)),
                }
            }
            print_comparison(&rows);
            finish(&common, &experiments, &options, &rows, started)?;
        }
        What::LagGrowth(growth_args) => {
            let (experiments, options) = resolve(&growth_args.common)?;
            if let Some(bad) = growth_args.durations.iter().find(|d| !(d.is_finite() && **d > 0.0 && **d <= 3_600.0)) {
                return Err(UsageError(format!("--durations {bad}: a run length is from 0 to 3,600 s")).into());
            }
            let lengths: Vec<String> = growth_args.durations.iter().map(|d| format!("{} s", fixed(*d, 0))).collect();
            say!(
                "clocklab study: the lag-growth test, in the simulator: {} of {} per experiment at {}, seed {}",
                count(u64::from(options.groups), "group"),
                if options.runs == 0 { "its runs".to_string() } else { count(u64::from(options.runs), "run") },
                lengths.join(", "),
                options.seed
            );
            let names: Vec<String> = experiments.iter().map(|e| e.name.clone()).collect();
            let mut rows = Vec::new();
            for &duration in &growth_args.durations {
                let mut runs = Vec::new();
                for (experiment, options) in &experiments_with_runs(&experiments, &options) {
                    let experiment = Experiment { duration, ..experiment.clone() };
                    runs.extend(coverage::sample_groups(&experiment, options, "lag-growth", scratch.path())?);
                }
                rows.push(growth::row(&names, duration, &runs));
            }
            print_growth(&rows);
            finish(&growth_args.common, &experiments, &options, &rows, started)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The experiments to study, checked, and the study's size.
fn resolve(common: &Common) -> anyhow::Result<(Vec<Experiment>, Options)> {
    let mut config: Config = super::load_suite(common.config.as_deref(), common.suite, None)?;
    super::keep_experiments(&mut config, &common.experiments)?;
    for experiment in &mut config.experiments {
        if let Some(duration) = common.duration {
            experiment.duration = duration;
        }
        if let Some(runs) = common.runs {
            experiment.runs = runs;
        }
    }
    // The study runs in the simulator, whose limits apply.
    config.runtime = Runtime::Sim;
    config.validate("the command line").context("invalid study")?;
    let threads =
        common.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize);
    let options = Options {
        groups: common.groups,
        runs: common.runs.unwrap_or(0),
        truth_runs: common.truth_runs,
        seed: common.seed,
        threads,
    };
    Ok((config.experiments, options))
}

/// Each experiment with the study's options, its own `runs` per group
/// unless `--runs` set them all.
fn experiments_with_runs(experiments: &[Experiment], options: &Options) -> Vec<(Experiment, Options)> {
    experiments
        .iter()
        .map(|e| {
            (e.clone(), Options { runs: if options.runs == 0 { e.runs.max(2) } else { options.runs }, ..*options })
        })
        .collect()
}

/// What is studied, in a line.
fn heading(what: &str, experiments: &[Experiment], options: &Options) -> String {
    let runs =
        if options.runs == 0 { "the experiment's runs".to_string() } else { count(u64::from(options.runs), "run") };
    let durations: std::collections::BTreeSet<String> = experiments.iter().map(|e| fixed(e.duration, 0)).collect();
    format!(
        "clocklab study: {what}, in the simulator: {} of {runs} ({} s each), truths from {}, seed {}, {}",
        count(u64::from(options.groups), "group"),
        durations.into_iter().collect::<Vec<_>>().join(", "),
        count(u64::from(options.truth_runs), "run"),
        options.seed,
        count(options.threads as u64, "thread")
    )
}

fn percent(part: u32, whole: u32) -> String {
    if whole == 0 { "—".to_string() } else { format!("{:.1}%", 100.0 * f64::from(part) / f64::from(whole)) }
}

/// Marks a coverage outside [`KEPT`].
fn mark(covered: u32, groups: u32) -> &'static str {
    let share = if groups == 0 { 0.0 } else { f64::from(covered) / f64::from(groups) };
    if (KEPT.0..=KEPT.1).contains(&share) { "" } else { "  *" }
}

fn print_coverage(rows: &[CoverageRow]) {
    say!(
        "{:<22} {:<17} {:>12} {:>9} {:>7} {:>7} {:>7}",
        "experiment",
        "metric",
        "truth",
        "coverage",
        "below",
        "above",
        "groups"
    );
    for row in rows {
        say!(
            "{:<22} {:<17} {:>12} {:>9} {:>7} {:>7} {:>7}{}",
            row.experiment,
            row.metric,
            fixed(row.truth, 4),
            percent(row.covered, row.groups),
            percent(row.below, row.groups),
            percent(row.above, row.groups),
            row.groups,
            mark(row.covered, row.groups)
        );
    }
    say!("* outside 93–97%: the report prints the measured coverage beside such an interval");
}

fn print_comparison(rows: &[ComparisonRow]) {
    say!(
        "{:<22} {:<22} {:<17} {:>9} {:>12} {:>9} {:>7} {:>7} {:>7}",
        "experiment",
        "against",
        "metric",
        "different",
        "truth",
        "coverage",
        "below",
        "above",
        "groups"
    );
    for row in rows {
        let against = if row.against == row.experiment { "(a copy)".to_string() } else { row.against.clone() };
        say!(
            "{:<22} {:<22} {:<17} {:>9} {:>12} {:>9} {:>7} {:>7} {:>7}",
            row.experiment,
            against,
            row.metric,
            percent(row.called_different, row.groups),
            fixed(row.truth, 4),
            percent(row.covered, row.groups),
            percent(row.below, row.groups),
            percent(row.above, row.groups),
            row.groups
        );
    }
    say!(
        "different: groups called different at 5% (against a copy, a false positive); coverage: of the difference's interval"
    );
}

fn print_growth(rows: &[GrowthRow]) {
    say!("{:>10} {:>8} {:>16} {:>11} {:>16}", "duration", "stable", "called growing", "overloaded", "called growing");
    for row in rows {
        say!(
            "{:>10} {:>8} {:>16} {:>11} {:>16}",
            format!("{} s", fixed(row.duration_s, 0)),
            row.stable,
            percent(row.stable_flagged, row.stable),
            row.overloaded,
            percent(row.overloaded_flagged, row.overloaded)
        );
    }
    say!("stable: ρ ≤ 0.9 (called growing: false positives); overloaded: ρ ≥ 1.1 (called growing: power)");
}

/// Writes the table if asked, and says how long the study took.
fn finish<T: serde::Serialize>(
    common: &Common,
    experiments: &[Experiment],
    options: &Options,
    rows: &[T],
    started: Instant,
) -> anyhow::Result<()> {
    if let Some(path) = &common.table {
        let names: Vec<&str> = experiments.iter().map(|e| e.name.as_str()).collect();
        let command: Vec<String> = std::env::args().skip(1).collect();
        let comments = vec![
            format!("Written by `clocklab {}` (clocklab {}).", command.join(" "), env!("CARGO_PKG_VERSION")),
            format!("Experiments {}; {} groups, seed {}.", names.join(", "), options.groups, options.seed),
        ];
        write_table(path, &write_tsv(&comments, rows))?;
        say!("table: {}", path.display());
    }
    let _ = std::io::stdout().flush();
    say!("took {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn write_table(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
