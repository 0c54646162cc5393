//! `clocklab analyze`: statistics, figures and a report from logs.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

/// Arguments of `clocklab analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A results folder, an experiment folder or a run folder.
    dir: PathBuf,
    /// Where to write the analysis (default: `<DIR>/analysis`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Leave out the space-time diagrams (`analysis/diagrams/`): the
    /// analysis of a very long run is then faster.
    #[arg(long)]
    no_diagrams: bool,
}

/// Runs `clocklab analyze`.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let dir = super::check::chosen_folder(&args.dir);
    let out = args.out.unwrap_or_else(|| dir.join("analysis"));
    let options = clocklab_analyze::report::OutputOptions { no_diagrams: args.no_diagrams };
    let report = analyze_results_with(&dir, &out, &options)?;
    // A closed pipe (`| head`) is not a failure: the files are written.
    let _ = writeln!(std::io::stdout(), "report: {}", report.display());
    Ok(ExitCode::SUCCESS)
}

/// Analyses `dir` into `out`, prints the summary table; returns the report's path.
pub fn analyze_results(dir: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    analyze_results_with(dir, out, &clocklab_analyze::report::OutputOptions::default())
}

/// [`analyze_results`], leaving out what `options` say.
fn analyze_results_with(
    dir: &Path,
    out: &Path,
    options: &clocklab_analyze::report::OutputOptions,
) -> anyhow::Result<PathBuf> {
    // The diagram pages are written as the runs are read, into `out`.
    let analysed = if options.no_diagrams {
        clocklab_analyze::analyze(dir).map(|summary| (summary, None))
    } else {
        clocklab_analyze::analyze_with_diagrams(dir, out).map(|(summary, links)| (summary, Some(links)))
    };
    let (summary, diagrams) = analysed.map_err(|error| match error {
        // A folder without logs is the user's to fix.
        clocklab_analyze::AnalyzeError::NoLogs(_) | clocklab_analyze::AnalyzeError::NotAFolder(_) => {
            anyhow::Error::new(super::UsageError(error.to_string()))
        }
        other => anyhow::Error::new(other),
    })?;
    // The table is for a person; a closed pipe must not stop the files being written.
    let _ = std::io::stdout().write_all(clocklab_analyze::render_table(&summary).as_bytes());
    // Each error names the file it concerns (under `out`), once.
    let outputs = match diagrams {
        Some(links) => clocklab_analyze::report::write_outputs_with_diagrams(&summary, out, links)?,
        None => clocklab_analyze::report::write_outputs_with(&summary, out, options)?,
    };
    Ok(outputs.report)
}
