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
    let report = analyze_results_with(&dir, &out, &options).map_err(|error| unwritable(error, &out))?;
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
    // A folder without logs is the user's to fix.
    let (summary, diagrams) = analysed.map_err(super::check::analyze_error)?;
    // The table is for a person; a closed pipe must not stop the files being written.
    let _ = std::io::stdout().write_all(clocklab_analyze::render_table(&summary).as_bytes());
    // Each error names the file it concerns (under `out`), once.
    let outputs = match diagrams {
        Some(links) => clocklab_analyze::report::write_outputs_with_diagrams(&summary, out, links)?,
        None => clocklab_analyze::report::write_outputs_with(&summary, out, options)?,
    };
    Ok(outputs.report)
}

/// `error`; if it is that a file or folder under `out` may not be written
/// (its permissions, a read-only file system), a usage error that says how
/// to write elsewhere: `clocklab analyze --out` chooses the folder.
fn unwritable(error: anyhow::Error, out: &Path) -> anyhow::Error {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    match error.downcast_ref::<clocklab_analyze::AnalyzeError>() {
        Some(clocklab_analyze::AnalyzeError::Io { path, source })
            if path.starts_with(out) && matches!(source.kind(), PermissionDenied | ReadOnlyFilesystem) =>
        {
            anyhow::Error::new(super::UsageError(format!(
                "{}: {source}: the analysis cannot be written into {}; name a folder it can be written to with \
                 --out",
                path.display(),
                out.display()
            )))
        }
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_folder_that_may_not_be_written_says_to_use_out() {
        let out = Path::new("/results/analysis");
        let denied = |path: &Path, kind| {
            anyhow::Error::new(clocklab_analyze::AnalyzeError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::from(kind),
            })
        };
        for kind in [std::io::ErrorKind::PermissionDenied, std::io::ErrorKind::ReadOnlyFilesystem] {
            let error = unwritable(denied(&out.join("summary.json"), kind), out);
            let usage = error.downcast_ref::<super::super::UsageError>().expect("the user's to fix: exit 2");
            assert!(
                usage.0.contains("/results/analysis/summary.json") && usage.0.contains("with --out"),
                "{}",
                usage.0
            );
        }
        // A run folder that cannot be read is not the output's fault, nor
        // is any other failure.
        let read = unwritable(denied(Path::new("/results/baseline"), std::io::ErrorKind::PermissionDenied), out);
        assert!(read.downcast_ref::<super::super::UsageError>().is_none());
        let full = unwritable(denied(&out.join("report.html"), std::io::ErrorKind::StorageFull), out);
        assert!(full.downcast_ref::<super::super::UsageError>().is_none());
    }
}
