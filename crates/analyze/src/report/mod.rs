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

mod faults;
pub mod notes;
pub mod plots;
#[cfg(test)]
mod tests;
pub mod view;

use std::path::{Path, PathBuf};

use base64::Engine as _;

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
    figures: &[(NamedFigure, String)],
    omitted: Vec<String>,
    diagrams: &[crate::diagrams::DiagramLink],
) -> view::Page {
    let figure_view = |(figure, svg): &(NamedFigure, String)| view::FigureView {
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

/// Renders `report.html` from its page.
fn render_html(page: &view::Page) -> String {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
    });
    env.add_template("report.html", TEMPLATE).expect("the report's template parses");
    let font = base64::engine::general_purpose::STANDARD.encode(dejavu::sans::regular());
    env.get_template("report.html")
        .expect("the template was just added")
        .render(minijinja::context! {
            page => minijinja::value::Value::from(minijinja::value::Serde(page)),
            stylesheet => STYLESHEET,
            font_family => crate::figures::FONT_FAMILY,
            font_base64 => font,
            machine_columns => view::MACHINE_COLUMNS,
            run_columns => view::RUN_COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>(),
        })
        .expect("the report's template renders every page")
}

/// Writes every output into `out`, the space-time diagrams of the runs
/// included; returns the report's path and the files.
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
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AnalyzeError::Io { path, source }
    };
    let figures_dir = out.join("figures");
    std::fs::create_dir_all(&figures_dir).map_err(io(&figures_dir))?;
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<(), AnalyzeError> {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
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
    let mut drawn: Vec<(NamedFigure, String)> = Vec::with_capacity(figures.len());
    for figure in figures {
        let svg_path = figures_dir.join(format!("{}.svg", figure.name));
        let png_path = figures_dir.join(format!("{}.png", figure.name));
        let svg = figure.figure.to_svg()?;
        std::fs::write(&svg_path, &svg).map_err(io(&svg_path))?;
        figure.figure.to_png(&png_path)?;
        files.push(svg_path);
        files.push(png_path);
        drawn.push((figure, svg));
    }
    let diagrams = if options.no_diagrams { Vec::new() } else { crate::diagrams::write_diagrams(summary, out)? };
    files.extend(diagrams.iter().filter(|d| d.problem.is_none()).map(|d| d.path.clone()));
    let page = build(summary, &drawn, omitted, &diagrams);
    let text = out.join("report.txt");
    std::fs::write(&text, view::notes_text(&page.header, &page.notes)).map_err(io(&text))?;
    files.push(text);
    let report = out.join("report.html");
    std::fs::write(&report, render_html(&page)).map_err(io(&report))?;
    files.push(report.clone());
    Ok(Outputs { report, files })
}
