//! The outputs: `summary.json`, `summary.txt`, the CSV tables, the figures
//! (SVG and PNG), the self-contained `report.html` and its text without
//! figures, `report.txt`.
//!
//! The report reads like lab notes ([`notes`]): what was run at the top,
//! then each question of the exercise with its answer, the figures that show
//! it ([`plots`]) and a simple model's prediction beside the measurement.
//! [`view`] formats every number; the HTML comes from one template
//! (`templates/report.html`, rendered by minijinja with HTML escaping), which
//! inlines the figures as SVG and embeds their font, DejaVu Sans, once.

mod between;
mod faults;
pub mod method;
pub mod notes;
pub mod plots;
#[cfg(test)]
mod tests;
pub mod view;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;

use clocklab_config::output;

use crate::AnalyzeError;
use crate::run::{MachineSummary, RunSummary};
use crate::summary::{ExperimentSummary, Summary};
use crate::tables;

pub use plots::NamedFigure;
pub(crate) use plots::safe_name;

/// The files written.
#[derive(Debug)]
pub struct Outputs {
    /// `report.html`.
    pub report: PathBuf,
    /// Every file written, in order.
    pub files: Vec<PathBuf>,
}

/// One machine with its run and experiment.
#[derive(Clone, Copy, Debug)]
pub struct MachineRef<'a> {
    /// The experiment's index in the summary.
    pub experiment_idx: usize,
    /// The experiment.
    pub experiment: &'a ExperimentSummary,
    /// The run.
    pub run: &'a RunSummary,
    /// The machine.
    pub machine: &'a MachineSummary,
}

/// Every machine of every run.
pub fn all_machines(summary: &Summary) -> Vec<MachineRef<'_>> {
    summary
        .experiments
        .iter()
        .enumerate()
        .flat_map(|(experiment_idx, experiment)| {
            experiment.runs.iter().flat_map(move |run| {
                run.machines.iter().map(move |machine| MachineRef { experiment_idx, experiment, run, machine })
            })
        })
        .collect()
}

/// The machines of the runs that enter the aggregates.
pub fn sound_machines(summary: &Summary) -> Vec<MachineRef<'_>> {
    all_machines(summary).into_iter().filter(|m| m.run.is_sound()).collect()
}

/// A run's name with its rate draws: `run_2 (rates 3, 1, 2)`.
pub fn run_label(run: &RunSummary) -> String {
    const SHOWN: usize = 8;
    let rates: Vec<String> = run.machines.iter().take(SHOWN).map(|m| m.rate.to_string()).collect();
    let more =
        if run.machines.len() > SHOWN { format!(", … ({} machines)", run.machines.len()) } else { String::new() };
    match rates.len() {
        0 => format!("{} (no machine)", run.name),
        1 => format!("{} (rate {})", run.name, rates[0]),
        _ => format!("{} (rates {}{more})", run.name, rates.join(", ")),
    }
}

/// The report's template, with the stylesheet it includes.
const TEMPLATE: &str = include_str!("../../templates/report.html");
const STYLESHEET: &str = include_str!("../../templates/report.css");

/// The report's page and its notes as text, with the figures drawn as SVG.
fn build(
    summary: &Summary,
    figures: &[(&NamedFigure, String)],
    omitted: Vec<String>,
    diagrams: &[crate::diagrams::DiagramLink],
) -> view::Page {
    let figure_view = |(figure, svg): &(&NamedFigure, String)| view::FigureView {
        name: figure.name.clone(),
        title: figure.figure.title.clone(),
        caption: figure.caption.clone(),
        svg: svg.clone(),
    };
    let notes = notes::notes(summary)
        .into_iter()
        .map(|note| {
            let figures = figures.iter().filter(|(f, _)| f.section == note.id).map(figure_view).collect();
            view::NoteView { note, figures }
        })
        .collect();
    let run_figures = figures.iter().filter(|(f, _)| f.section == "runs").map(figure_view).collect();
    let mut page = view::page(summary, notes, run_figures, omitted);
    for link in diagrams {
        match page.diagrams.last_mut() {
            Some((experiment, links)) if *experiment == link.experiment => links.push(link.clone()),
            _ => page.diagrams.push((link.experiment.clone(), vec![link.clone()])),
        }
    }
    page
}

/// The report's text: what was run, and each question with its answer and
/// predictions, without figures.
pub fn notes_text(summary: &Summary) -> String {
    let page = build(summary, &[], Vec::new(), &[]);
    view::notes_text(&page.header, &page.notes)
}

/// Renders `report.html` from its page into `out`, as it goes: the page
/// (with every figure and the font inlined) is never held whole in memory.
/// The page is taken by value: the template reads a copy of it, and holding
/// both would cost a megabyte more.
fn render_html(page: view::Page, out: impl std::io::Write) -> Result<(), minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
    });
    env.add_filter("prose", prose);
    env.add_template("report.html", TEMPLATE).expect("the report's template parses");
    let page_value = minijinja::Value::from(minijinja::value::Serde(&page));
    drop(page);
    let font = base64::engine::general_purpose::STANDARD.encode(dejavu::sans::regular());
    env.get_template("report.html")
        .expect("the template was just added")
        .render_captured_to(
            minijinja::context! {
                page => page_value,
                stylesheet => STYLESHEET,
                font_family => crate::figures::FONT_FAMILY,
                // Marked safe here, not by a filter in the template, which would
                // copy the megabyte of text twice more.
                font_base64 => minijinja::Value::from_safe_string(font),
                machine_columns => view::MACHINE_COLUMNS,
                run_columns => view::RUN_COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>(),
            },
            out,
        )
        .map(drop)
}

/// A sentence of the report as HTML: escaped, and each span between two
/// backticks (a command, a file, a key: how the terminal's text marks
/// them) set as code. A last backtick with no other to close it is kept
/// as it is.
fn prose(text: &str) -> minijinja::Value {
    use std::fmt::Write as _;
    let pieces: Vec<&str> = text.split('`').collect();
    // An even number of pieces means an odd number of backticks: the last
    // one closes no span.
    let closed = if pieces.len() % 2 == 1 { pieces.len() } else { pieces.len() - 1 };
    let mut html = String::with_capacity(text.len() + 16);
    for (k, piece) in pieces.iter().enumerate() {
        let piece = minijinja::HtmlEscape(piece);
        let _ = match k {
            _ if k >= closed => write!(html, "`{piece}"),
            _ if k % 2 == 1 => write!(html, "<code>{piece}</code>"),
            _ => write!(html, "{piece}"),
        };
    }
    minijinja::Value::from_safe_string(html)
}

/// A writer that keeps the first error of the writer under it, for a
/// caller whose own error type hides it.
struct FirstError<W> {
    inner: W,
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> std::io::Write for FirstError<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.inner.write(bytes).map_err(|error| self.keep(error))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(|error| self.keep(error))
    }
}

impl<W> FirstError<W> {
    fn keep(&mut self, error: std::io::Error) -> std::io::Error {
        let kind = error.kind();
        self.error.get_or_insert(error);
        kind.into()
    }
}

/// Draws figures as PNG into `dir`, one after another on one canvas: the
/// next one not taken yet (`next` counts them), so that several threads
/// share the drawing, each with its canvas.
fn draw_pngs(
    figures: &[&NamedFigure],
    dir: &Path,
    next: &AtomicUsize,
    committer: &output::Committer,
) -> Result<(), AnalyzeError> {
    let mut pixels = Vec::new();
    while let Some(figure) = figures.get(next.fetch_add(1, Ordering::Relaxed)) {
        let png = figure.figure.to_png_in(&mut pixels)?;
        let path = dir.join(format!("{}.png", figure.name));
        committer.write_file(&path, &png).map_err(|source| AnalyzeError::Io { path, source })?;
    }
    Ok(())
}

/// Writes every output into `out`, the space-time diagrams of the runs
/// included; returns the report's path and the files. What an earlier
/// analysis into `out` wrote and this one does not is removed, and only
/// that (see [`OUTPUTS_LIST`]).
pub fn write_outputs(summary: &Summary, out: &Path) -> Result<Outputs, AnalyzeError> {
    write_outputs_with(summary, out, &OutputOptions::default())
}

/// What [`write_outputs_with`] leaves out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputOptions {
    /// No space-time diagrams (they are most of the time a large run's
    /// analysis takes).
    pub no_diagrams: bool,
}

/// [`write_outputs`], with `options`.
pub fn write_outputs_with(summary: &Summary, out: &Path, options: &OutputOptions) -> Result<Outputs, AnalyzeError> {
    write_all(summary, out, if options.no_diagrams { Diagrams::Leave } else { Diagrams::Write })
}

/// [`write_outputs`], with the space-time diagrams already written as the
/// runs were read ([`crate::analyze_with_diagrams`]): their links, or what
/// stopped one being written, which stops the outputs where the diagrams
/// come (failing to write a page stops the analysis; a damaged run does
/// not).
pub fn write_outputs_with_diagrams(
    summary: &Summary,
    out: &Path,
    diagrams: Vec<crate::PageOutcome>,
) -> Result<Outputs, AnalyzeError> {
    write_all(summary, out, Diagrams::Written(diagrams))
}

/// What becomes of the space-time diagrams.
enum Diagrams {
    /// None.
    Leave,
    /// Written, each run read again.
    Write,
    /// Written already: their links, or what stopped one being written.
    Written(Vec<crate::PageOutcome>),
}

/// Writes every output into `out`.
fn write_all(summary: &Summary, out: &Path, diagrams: Diagrams) -> Result<Outputs, AnalyzeError> {
    // Every file is written whole or not at all, and never through a link
    // planted at its name or its folder's (`clocklab_config::output`).
    output::create_dir_all(out).map_err(io(out))?;
    let figures_dir = out.join("figures");
    output::create_dir(&figures_dir).map_err(io(&figures_dir))?;
    // Each file is synced and put in place on the committer's thread,
    // while the next is made: the outputs are ready once it has finished.
    let committer = output::Committer::start();
    let written = write_files(summary, out, &figures_dir, diagrams, &committer);
    // A file handed over before what stopped the writing, if any, failed
    // first.
    committer.finish().map_err(|error| AnalyzeError::Io { path: error.path, source: error.source })?;
    let written = written?;
    replace_earlier(out, &written.files)?;
    Ok(written)
}

/// The list of what an analysis wrote into its folder, one path relative
/// to the folder a line: how the next analysis into the same folder knows
/// which of the folder's files are the analysis' own to replace.
pub const OUTPUTS_LIST: &str = ".clocklab-outputs";

/// Removes what the analysis before wrote into `out` (by its list) that
/// this one did not write (`files`): a figure of an experiment or run no
/// longer analysed, a diagram page of a run gone, or every page when this
/// one has none; a folder of `diagrams` that this leaves empty goes too.
/// Nothing else is touched: a file the list does not name, a link, any
/// other folder. Then lists this analysis' files for the next.
fn replace_earlier(out: &Path, files: &[PathBuf]) -> Result<(), AnalyzeError> {
    use std::path::Component;
    let list = out.join(OUTPUTS_LIST);
    let ours: BTreeSet<&Path> = files.iter().filter_map(|file| file.strip_prefix(out).ok()).collect();
    let diagrams = out.join("diagrams");
    let earlier = std::fs::read_to_string(&list).unwrap_or_default();
    for relative in earlier.lines().map(Path::new) {
        // Only a plain path below `out`: a damaged list names nothing else.
        let plain = relative.components().all(|part| matches!(part, Component::Normal(_)));
        if !plain || ours.contains(relative) {
            continue;
        }
        let path = out.join(relative);
        if std::fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_file()) {
            std::fs::remove_file(&path).map_err(|source| AnalyzeError::Stale { path: path.clone(), source })?;
            if let Some(folder) = path.parent().filter(|folder| folder.starts_with(&diagrams)) {
                // Each only if it is empty now.
                let _ = std::fs::remove_dir(folder);
                let _ = std::fs::remove_dir(&diagrams);
            }
        }
    }
    let text: String = ours.iter().map(|file| format!("{}\n", file.display())).collect();
    output::write_file(&list, text.as_bytes()).map_err(io(&list))
}

/// What a failure to write `path` is.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AnalyzeError {
    let path = path.to_path_buf();
    move |source| AnalyzeError::Io { path, source }
}

/// Writes every output into `out`, handing each file to `committer`.
fn write_files(
    summary: &Summary,
    out: &Path,
    figures_dir: &Path,
    diagrams: Diagrams,
    committer: &output::Committer,
) -> Result<Outputs, AnalyzeError> {
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<(), AnalyzeError> {
        let path = out.join(name);
        committer.write_file(&path, bytes).map_err(io(&path))?;
        files.push(path);
        Ok(())
    };
    let json = serde_json::to_string_pretty(summary).expect("a summary always serialises");
    write("summary.json", (json + "\n").as_bytes())?;
    write("summary.txt", tables::render_table(summary).as_bytes())?;
    write("machines.csv", &tables::machines_csv(summary))?;
    write("experiments.csv", &tables::experiments_csv(summary))?;
    write("runs.csv", &tables::runs_csv(summary))?;
    write("jumps.csv", &tables::jumps_csv(summary))?;

    let (figures, omitted) = plots::figures(summary);
    // The PNGs are drawn on a thread of their own (drawing and encoding
    // them is most of the time the outputs take), on one canvas reused from
    // figure to figure, while this thread draws the SVGs and writes the
    // diagrams, then draws PNGs beside it on a canvas of its own (two
    // canvases are still less memory than the analysis of a large run
    // held). The report waits for the PNGs: a canvas is megabytes, and
    // the report's page is too, so they are better not held at once.
    let next_png = AtomicUsize::new(0);
    // The tallest first, so that the two threads end close together rather
    // than one waiting while the other draws a large figure last.
    let mut png_order: Vec<&NamedFigure> = figures.iter().collect();
    png_order.sort_by_key(|figure| std::cmp::Reverse(figure.figure.height()));
    let drawn = std::thread::scope(|scope| {
        let pngs = scope.spawn(|| draw_pngs(&png_order, figures_dir, &next_png, committer));
        let svgs = (|| -> Result<_, AnalyzeError> {
            let mut drawn: Vec<(&NamedFigure, String)> = Vec::with_capacity(figures.len());
            for figure in &figures {
                let svg_path = figures_dir.join(format!("{}.svg", figure.name));
                let svg = figure.figure.to_svg()?;
                committer.write_file(&svg_path, svg.as_bytes()).map_err(io(&svg_path))?;
                files.push(svg_path);
                files.push(figures_dir.join(format!("{}.png", figure.name)));
                drawn.push((figure, svg));
            }
            let diagrams = match diagrams {
                Diagrams::Leave => Vec::new(),
                Diagrams::Write => crate::diagrams::write_diagrams(summary, out)?,
                Diagrams::Written(links) => links.into_iter().collect::<Result<_, _>>()?,
            };
            // By their place in `out` (the pages may have been written
            // through another spelling of it).
            files.extend(diagrams.iter().filter(|d| d.problem.is_none()).map(|d| out.join(&d.href)));
            draw_pngs(&png_order, figures_dir, &next_png, committer)?;
            Ok((drawn, diagrams))
        })();
        let pngs = pngs.join().expect("drawing a figure never panics");
        let drawn = svgs?;
        pngs?;
        Ok::<_, AnalyzeError>(drawn)
    })?;
    let (drawn, diagrams) = drawn;
    let page = build(summary, &drawn, omitted, &diagrams);
    // The page holds its own copy of every figure and what it says of them.
    drop(drawn);
    drop(png_order);
    drop(figures);
    let text = out.join("report.txt");
    committer.write_file(&text, view::notes_text(&page.header, &page.notes).as_bytes()).map_err(io(&text))?;
    files.push(text);
    let report = out.join("report.html");
    let mut file = output::OutputFile::create(&report).map_err(io(&report))?;
    let mut html = std::io::BufWriter::new(FirstError { inner: &mut file, error: None });
    let written = match render_html(page, &mut html) {
        Ok(()) => std::io::Write::flush(&mut html),
        Err(error) if error.kind() == minijinja::ErrorKind::WriteFailure => Err(std::io::ErrorKind::Other.into()),
        Err(error) => panic!("the report's template renders every page: {error:#}"),
    };
    if let Err(error) = written {
        // The system's own error, once: the template engine's wraps it twice.
        let source = html.get_mut().error.take().unwrap_or(error);
        return Err(AnalyzeError::Io { path: report, source });
    }
    drop(html);
    committer.commit(file);
    files.push(report.clone());
    Ok(Outputs { report, files })
}
