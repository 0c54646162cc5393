//! `clocklab export`: runs in the formats of other tools (ShiViz, Perfetto,
//! CSV, JSON Lines, the reference's logs).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use clocklab_causal::export::{self, ExportError, ExportSummary};
use clocklab_config::output::{self, OutputFile};

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
        (format, Some(path)) => {
            // Written whole or not at all, never through a link planted at its name.
            let parent = parent_of(path);
            output::create_ancestors(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            let mut file = OutputFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut sink = BufWriter::new(&mut file);
            let summary = write_stream(format, &sources, &mut sink, &path.display().to_string())?;
            sink.flush().with_context(|| format!("cannot write {}", path.display()))?;
            drop(sink);
            file.commit().with_context(|| format!("cannot write {}", path.display()))?;
            summary
        }
        (format, None) => {
            let mut sink = BufWriter::new(std::io::stdout().lock());
            match write_stream(format, &sources, &mut sink, "standard output") {
                // A closed pipe (`| head`) ends the export; the reader has what it wanted.
                Err(error)
                    if error
                        .downcast_ref::<ExportError>()
                        .is_some_and(|e| matches!(e, ExportError::Write { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)) =>
                {
                    return Ok(ExitCode::SUCCESS);
                }
                other => other?,
            }
        }
    };
    report(&summary, args.out.as_ref());
    Ok(ExitCode::SUCCESS)
}

/// Writes the runs in `format` to `sink` (`what` names it for messages).
fn write_stream(
    format: Format,
    sources: &[clocklab_causal::RunSource],
    sink: &mut dyn Write,
    what: &str,
) -> anyhow::Result<ExportSummary> {
    let written = match format {
        Format::Shiviz => export::shiviz::write(sources, sink, what),
        Format::Perfetto => export::perfetto::write(sources, sink, what),
        Format::Jsonl => export::table::write(sources, export::table::TableFormat::Jsonl, sink, what),
        Format::Csv => export::table::write(sources, export::table::TableFormat::Csv, sink, what),
        Format::Reference => unreachable!("the reference export writes a folder"),
    };
    written.map_err(export_error)
}

/// The folder `path` is in (the current one for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Writes a folder of files through `write`, into a temporary folder beside
/// `dir`, then moves each experiment's folder into `dir`, which must be new
/// or empty (a usage error, before anything is written, otherwise): a
/// failure to write leaves `dir` as it was; one to move leaves the
/// experiments moved so far.
fn write_folder(
    dir: &Path,
    write: impl FnOnce(&Path) -> Result<ExportSummary, ExportError>,
) -> anyhow::Result<ExportSummary> {
    let parent = parent_of(dir);
    output::create_ancestors(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    // Whatever holds the name already is looked at before anything is written.
    if dir.symlink_metadata().is_ok() {
        output::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // An export mixed into another's runs would be read as one.
        let mut entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            return Err(UsageError(format!(
                "{} is not empty: the reference export writes a folder of its own (remove it, or name a new one \
                 with --out)",
                dir.display()
            ))
            .into());
        }
    }
    let temporary = tempfile::Builder::new()
        .prefix(".clocklab-export-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a folder beside {}", dir.display()))?;
    let summary = write(temporary.path()).map_err(export_error)?;
    // The export's layout: <experiment>/<run>/ under the folder. `dir` is
    // a folder (never a link: refused above, or made here), and empty, so
    // each experiment's folder moves in whole under a name nothing holds.
    output::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for experiment in read_folders(temporary.path())? {
        let target = dir.join(experiment.file_name().unwrap_or_default());
        std::fs::rename(&experiment, &target).with_context(|| format!("cannot write {}", target.display()))?;
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
