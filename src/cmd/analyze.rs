//! `clocklab analyze`: statistics, figures and a report from logs.

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
}

/// Runs `clocklab analyze`.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let out = args.out.unwrap_or_else(|| args.dir.join("analysis"));
    let report = analyze_results(&args.dir, &out)?;
    println!("report: {}", report.display());
    Ok(ExitCode::SUCCESS)
}

/// Analyses `dir` into `out`; returns the report's path.
pub fn analyze_results(dir: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    anyhow::bail!("analysis of {} into {} is not built yet", dir.display(), out.display())
}
