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
        clocklab_analyze::AnalyzeError::NoLogs(_)
        | clocklab_analyze::AnalyzeError::NotAFolder(_)
        | clocklab_analyze::AnalyzeError::Missing(_) => anyhow::Error::new(super::UsageError(error.to_string())),
        other => unwritable(other, out),
    })?;
    // The table is for a person; a closed pipe must not stop the files being written.
    let _ = std::io::stdout().write_all(clocklab_analyze::render_table(&summary).as_bytes());
    // Each error names the file it concerns (under `out`), once.
    let outputs = match diagrams {
        Some(links) => clocklab_analyze::report::write_outputs_with_diagrams(&summary, out, links),
        None => clocklab_analyze::report::write_outputs_with(&summary, out, options),
    }
    .map_err(|error| unwritable(error, out))?;
    Ok(outputs.report)
}

/// `error`; if it is that `out` may not be written to (its permissions, a
/// read-only file system), a usage error that says how to write elsewhere.
fn unwritable(error: clocklab_analyze::AnalyzeError, out: &Path) -> anyhow::Error {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    match &error {
        clocklab_analyze::AnalyzeError::Io { source, .. }
            if matches!(source.kind(), PermissionDenied | ReadOnlyFilesystem) =>
        {
            anyhow::Error::new(super::UsageError(format!(
                "{error}: {source}: the analysis cannot be written into {}; name a folder it can be written to \
                 with --out",
                out.display()
            )))
        }
        _ => anyhow::Error::new(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_folder_that_may_not_be_written_says_to_use_out() {
        let out = Path::new("/results/analysis");
        let denied = |kind| clocklab_analyze::AnalyzeError::Io {
            path: out.join("summary.json"),
            source: std::io::Error::from(kind),
        };
        for kind in [std::io::ErrorKind::PermissionDenied, std::io::ErrorKind::ReadOnlyFilesystem] {
            let error = unwritable(denied(kind), out);
            let usage = error.downcast_ref::<super::super::UsageError>().expect("the user's to fix: exit 2");
            assert!(
                usage.0.contains("/results/analysis/summary.json") && usage.0.contains("with --out"),
                "{}",
                usage.0
            );
        }
        // Any other failure stays what it is.
        let full = unwritable(denied(std::io::ErrorKind::StorageFull), out);
        assert!(full.downcast_ref::<super::super::UsageError>().is_none());
    }
}
