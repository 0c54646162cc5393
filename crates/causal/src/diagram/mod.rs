//! Space-time diagrams of a run: an interactive, self-contained HTML page
//! ([`write_run_diagram`]) and a static SVG of a window of time
//! ([`svg::render_window`]).
//!
//! The page is one file that loads nothing: its script and style are
//! embedded (`assets/`, hand-written, no framework), and so is the run,
//! as compact binary columns compressed with zlib (see [`data`]), so that
//! a run of a million events opens in well under two seconds. The page
//! draws every event and message when few are in view, and the density of
//! events per pixel when many are; a click (or `#m2e117` in the address)
//! selects an event and shows its causal past and future, computed from
//! happens-before (the same walk as [`RunGraph::cone`]).

pub mod data;
mod page;
pub mod svg;
pub mod text;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clocklab_config::output;
use clocklab_log::{Diagnostics, RunEvent};
use clocklab_model::MachineId;

pub use page::PageWriter;

use crate::graph::RunGraph;
use crate::source::{RunSource, SourceError};

/// The version of the page's data format ([`data`]).
pub const VERSION: u32 = 5;

const PAGE: &str = include_str!("assets/page.html");
const SCRIPT: &str = include_str!("assets/diagram.js");
const STYLE: &str = include_str!("assets/diagram.css");

/// Why a diagram could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DiagramError {
    /// The run could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The page could not be written (what the system said is its source).
    #[error("{path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// What a diagram shows, and where it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagramSummary {
    /// The page.
    pub path: PathBuf,
    /// Events drawn.
    pub n_events: u64,
    /// Messages drawn.
    pub n_messages: u64,
    /// The page's size in bytes.
    pub bytes: u64,
}

/// The instant the diagram's time axis starts from: the run's start from
/// its manifest, else its first tick, else its first line.
pub fn origin_us(source: &RunSource, graph: &RunGraph) -> i64 {
    let rows = || graph.machines.iter().flat_map(|m| &m.rows);
    manifest_start_us(source)
        .or_else(|| rows().filter(|row| row.tick).map(|row| row.time_us).min())
        .or_else(|| rows().map(|row| row.time_us).min())
        .unwrap_or(0)
}

/// The run's start, from its manifest.
fn manifest_start_us(source: &RunSource) -> Option<i64> {
    source.manifest.as_ref().and_then(|m| {
        time::OffsetDateTime::parse(&m.started_at, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| (t.unix_timestamp_nanos() / 1000) as i64)
    })
}

/// Writes the interactive diagram of the run in `source` to `out`.
pub fn write_run_diagram(source: &RunSource, out: &Path) -> Result<DiagramSummary, DiagramError> {
    let (mut events, skipped) = source.events()?;
    let machines: Vec<MachineId> = events.machines().collect();
    let mut page = DiagramFile::create(source, out, &machines)?;
    for event in events.by_ref() {
        page.push(&event)?;
    }
    page.finish(&skipped.get())
}

/// A run's diagram page being written to its file as the run's events are
/// given to it, by a caller that reads them anyway (the analysis): the file
/// is in place once [`DiagramFile::finish`] returns, and never if it was
/// not called.
#[derive(Debug)]
pub struct DiagramFile<'a> {
    path: PathBuf,
    page: PageWriter<'a, BufWriter<output::OutputFile>>,
}

impl<'a> DiagramFile<'a> {
    /// Starts the page of the run in `source` at `out`, with the events of
    /// the logs of `machines` (ids in increasing order) to come.
    pub fn create(source: &'a RunSource, out: &Path, machines: &[MachineId]) -> Result<DiagramFile<'a>, DiagramError> {
        if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            output::create_dir_all(parent).map_err(write_failed(parent))?;
        }
        // Written whole or not at all, never through a link planted at its name.
        let file = output::OutputFile::create(out).map_err(write_failed(out))?;
        let page = PageWriter::new(source, BufWriter::with_capacity(1 << 16, file), machines)
            .map_err(|error| page_failed(error, out))?;
        Ok(DiagramFile { path: out.to_path_buf(), page })
    }

    /// Adds the run's next event.
    pub fn push(&mut self, event: &RunEvent) -> Result<(), DiagramError> {
        self.page.push(event).map_err(|error| page_failed(error, &self.path))
    }

    /// Ends the page and puts it in place; `skipped` is what the readers of
    /// the logs skipped, per machine.
    pub fn finish(self, skipped: &BTreeMap<MachineId, Diagnostics>) -> Result<DiagramSummary, DiagramError> {
        let out = self.path;
        let (n_events, n_messages, writer) = self.page.finish(skipped).map_err(|error| page_failed(error, &out))?;
        let file = writer.into_inner().map_err(|error| write_failed(&out)(error.into_error()))?;
        file.commit().map_err(write_failed(&out))?;
        let bytes = std::fs::metadata(&out).map_err(write_failed(&out))?.len();
        Ok(DiagramSummary { path: out, n_events, n_messages, bytes })
    }
}

/// What a failure to write `path` is.
fn write_failed(path: &Path) -> impl Fn(std::io::Error) -> DiagramError {
    let path = path.to_path_buf();
    move |source| DiagramError::Write { path: path.clone(), source }
}

/// A page's failure as a diagram's.
fn page_failed(error: PageError, path: &Path) -> DiagramError {
    match error {
        PageError::Source(error) => error.into(),
        PageError::Write(error) => write_failed(path)(error),
    }
}

/// Why a page could not be written.
#[derive(Debug)]
pub enum PageError {
    /// The run could not be read.
    Source(SourceError),
    /// The page could not be written.
    Write(std::io::Error),
}

impl From<SourceError> for PageError {
    fn from(error: SourceError) -> PageError {
        PageError::Source(error)
    }
}

impl From<std::io::Error> for PageError {
    fn from(error: std::io::Error) -> PageError {
        PageError::Write(error)
    }
}

/// Writes the page of the run in `source` to `out`, in one pass over its
/// events; returns the numbers of events and messages.
pub fn write_page(source: &RunSource, out: &mut impl Write) -> Result<(u64, u64), PageError> {
    let (mut events, skipped) = source.events()?;
    let machines: Vec<MachineId> = events.machines().collect();
    let mut page = PageWriter::new(source, out, &machines)?;
    for event in events.by_ref() {
        page.push(&event)?;
    }
    let (n_events, n_messages, _) = page.finish(&skipped.get())?;
    Ok((n_events, n_messages))
}

/// The header's words: title, runtime, seed, notes.
fn describe(source: &RunSource, meta: &mut data::Meta, skipped: &BTreeMap<MachineId, Diagnostics>, unnamed: bool) {
    let manifest = source.manifest.as_ref();
    meta.title = source.label.replace('/', " / ");
    meta.runtime = manifest
        .and_then(|m| serde_json::to_value(m.runtime).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    meta.seed = manifest.map(|m| m.seeds.suite);
    if let Some(manifest) = manifest {
        let origin = manifest_start_us(source).unwrap_or(meta.origin_us);
        let duration_us = clocklab_model::schedule::duration_us(manifest.experiment.duration);
        let plan = clocklab_faults::FaultPlan::new(&manifest.experiment.faults, 0, duration_us);
        let end_us = origin.saturating_add_unsigned(duration_us);
        meta.faults = plan
            .windows()
            .into_iter()
            .map(|window| data::FaultWindow {
                machines: window.machines,
                from_us: origin + window.start_us as i64,
                to_us: window
                    .end_us
                    .map_or(if window.kind == "clock" { origin + window.start_us as i64 } else { end_us }, |end| {
                        origin + end as i64
                    }),
                label: window.label,
            })
            .collect();
    }
    meta.whole_seconds &= manifest.is_none();
    if unnamed {
        meta.notes.push(
            "Its Processed lines name no sender (the reference implementation's logs), so no message can be paired \
             with its receive: no arrows, and cones follow program order only."
                .to_string(),
        );
    }
    let n_skipped: u64 = skipped.values().map(|d| d.n_skipped).sum();
    if n_skipped > 0 {
        meta.notes.push(format!("{n_skipped} lines could not be read and are not drawn."));
    }
}

/// `template` with each marker replaced by its text; the texts themselves
/// are not searched for markers.
fn fill(template: &str, parts: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + parts.iter().map(|(_, text)| text.len()).sum::<usize>());
    let mut rest = template;
    loop {
        let next = parts.iter().filter_map(|&(marker, text)| rest.find(marker).map(|at| (at, marker, text))).min();
        let Some((at, marker, text)) = next else { break };
        out.push_str(&rest[..at]);
        out.push_str(text);
        rest = &rest[at + marker.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_filled_once_and_texts_left_alone() {
        let page = fill("<a>@@X@@</a><b>@@Y@@</b>", &[("@@X@@", "@@Y@@"), ("@@Y@@", "y")]);
        assert_eq!(page, "<a>@@Y@@</a><b>y</b>");
    }

    #[test]
    fn a_page_loads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let line = |id: u32, event: &str, clock: u64| {
            format!(
                "{id}> Event: {event} | System Time: 2026-01-01 00:00:01 | Logical Clock: {clock} | Queue Length: 0 | Timestamp: 2026-01-01T00:00:01.000000Z\n"
            )
        };
        std::fs::write(
            dir.path().join("machine_1.log"),
            line(1, "Sent message to machine 2", 1) + &line(1, "Stopped", 1),
        )
        .unwrap();
        std::fs::write(dir.path().join("machine_2.log"), line(2, "Processed message from machine 1 with clock 1", 2))
            .unwrap();
        let source = RunSource::open(dir.path()).unwrap();
        let mut page = Vec::new();
        write_page(&source, &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("\"n_events\":3"), "the run is in the page");
        // No address to load anything from: no URL, no external script or style.
        for needle in ["http:", "https:", "//cdn", "src=", "<link", "import("] {
            assert!(!page.contains(needle), "the page contains {needle}");
        }
    }

    #[test]
    fn the_page_has_a_marker_for_each_part() {
        for marker in ["@@CSS@@", "@@DATA@@", "@@JS@@"] {
            assert_eq!(PAGE.matches(marker).count(), 1, "{marker}");
        }
        assert!(!SCRIPT.contains("</script"), "the script cannot close its own element");
    }
}
