//! `clocklab export`: runs in the formats of other tools (ShiViz, Perfetto,
//! CSV, JSON Lines, the reference's logs).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use clocklab_causal::export::{self, ExportError, ExportSummary};

use super::UsageError;
use super::check::open_runs;

/// Arguments of `clocklab export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A results folder, an experiment folder or a run folder.
    dir: PathBuf,
    /// The format to write.
    #[arg(long, value_enum)]
    format: Format,
    /// The file to write (default: standard output); for `reference`, the folder (required).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A log ShiViz opens as it is: its regex on the first line, one execution per run.
    Shiviz,
    /// Chrome Trace Event Format JSON (ui.perfetto.dev, chrome://tracing): a track per machine, a flow per message.
    Perfetto,
    /// One JSON object per event, with its pairing.
    Jsonl,
    /// One CSV row per event, with its pairing.
    Csv,
    /// Logs the reference implementation's analyzer reads correctly (a folder).
    Reference,
}

/// Runs `clocklab export`.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if args.format == Format::Reference && args.out.is_none() {
        return Err(UsageError("--format reference writes a folder of logs: name it with --out DIR".into()).into());
    }
    let sources = open_runs(&args.dir)?;
    let summary = match (args.format, &args.out) {
        (Format::Reference, Some(dir)) => write_folder(dir, |temporary| export::reference::write(&sources, temporary))?,
        (format, out) => {
            // A file is written under a temporary name beside it and
            // renamed once whole: a failure leaves nothing behind.
            let temporary = match out {
                Some(path) => Some(
                    tempfile::Builder::new()
                        .prefix(".clocklab-export-")
                        .tempfile_in(parent_of(path))
                        .with_context(|| format!("cannot create a file beside {}", path.display()))?,
                ),
                None => None,
            };
            let (mut sink, what): (Box<dyn Write>, String) = match (&temporary, out) {
                (Some(file), Some(path)) => {
                    let file = file.reopen().with_context(|| format!("cannot write beside {}", path.display()))?;
                    (Box::new(BufWriter::new(file)), path.display().to_string())
                }
                _ => (Box::new(BufWriter::new(std::io::stdout().lock())), "standard output".to_string()),
            };
            let written = match format {
                Format::Shiviz => export::shiviz::write(&sources, &mut sink, &what),
                Format::Perfetto => export::perfetto::write(&sources, &mut sink, &what),
                Format::Jsonl => export::table::write(&sources, export::table::TableFormat::Jsonl, &mut sink, &what),
                Format::Csv => export::table::write(&sources, export::table::TableFormat::Csv, &mut sink, &what),
                Format::Reference => unreachable!("the reference export writes a folder"),
            };
            let written = match written {
                // A closed pipe (`| head`) ends the export; the reader has what it wanted.
                Err(ExportError::Write { source, .. })
                    if out.is_none() && source.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    return Ok(ExitCode::SUCCESS);
                }
                other => other.map_err(export_error)?,
            };
            drop(sink);
            if let (Some(file), Some(path)) = (temporary, out) {
                file.persist(path)
                    .map_err(|error| error.error)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            written
        }
    };
    report(&summary, args.out.as_ref());
    Ok(ExitCode::SUCCESS)
}

/// The folder `path` is in (the current one for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Writes a folder of files through `write`, into a temporary folder beside
/// `dir`, then moves each run's folder into place: a failure leaves `dir`
/// as it was.
fn write_folder(
    dir: &Path,
    write: impl FnOnce(&Path) -> Result<ExportSummary, ExportError>,
) -> anyhow::Result<ExportSummary> {
    let parent = parent_of(dir);
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let temporary = tempfile::Builder::new()
        .prefix(".clocklab-export-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a folder beside {}", dir.display()))?;
    let summary = write(temporary.path()).map_err(export_error)?;
    // The export's layout: <experiment>/<run>/ under the folder.
    for experiment in read_folders(temporary.path())? {
        let target = dir.join(experiment.file_name().unwrap_or_default());
        std::fs::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
        for run in read_folders(&experiment)? {
            let target = target.join(run.file_name().unwrap_or_default());
            if target.is_dir() {
                std::fs::remove_dir_all(&target).with_context(|| format!("cannot replace {}", target.display()))?;
            }
            std::fs::rename(&run, &target).with_context(|| format!("cannot write {}", target.display()))?;
        }
    }
    Ok(summary)
}

/// The folders in `dir`.
fn read_folders(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    Ok(entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect())
}

/// Bad input exits with 2, anything else with 1.
fn export_error(error: ExportError) -> anyhow::Error {
    if error.is_bad_input() { anyhow::Error::new(UsageError(error.to_string())) } else { anyhow::Error::new(error) }
}

/// What was written, on standard error (standard output may be the export).
fn report(summary: &ExportSummary, out: Option<&PathBuf>) {
    for note in &summary.notes {
        eprintln!("clocklab export: {note}");
    }
    let target = out.map_or("standard output".to_string(), |p| p.display().to_string());
    let count = |n: u64, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
    eprintln!(
        "clocklab export: {}, {}, {} to {target}",
        count(summary.runs, "run", "runs"),
        count(summary.events, "event", "events"),
        count(summary.messages, "message", "messages")
    );
}
