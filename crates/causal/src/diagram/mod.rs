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
pub mod svg;

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::graph::{BuildOptions, RunGraph};
use crate::source::{RunSource, SourceError};

const PAGE: &str = include_str!("assets/page.html");
const SCRIPT: &str = include_str!("assets/diagram.js");
const STYLE: &str = include_str!("assets/diagram.css");

/// Why a diagram could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DiagramError {
    /// The run could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The page could not be written.
    #[error("{path}: {source}")]
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
    let started = source.manifest.as_ref().and_then(|m| {
        time::OffsetDateTime::parse(&m.started_at, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| (t.unix_timestamp_nanos() / 1000) as i64)
    });
    let rows = || graph.machines.iter().flat_map(|m| &m.rows);
    started
        .or_else(|| rows().filter(|row| row.tick).map(|row| row.time_us).min())
        .or_else(|| rows().map(|row| row.time_us).min())
        .unwrap_or(0)
}

/// Writes the interactive diagram of the run in `source` to `out`.
pub fn write_run_diagram(source: &RunSource, out: &Path) -> Result<DiagramSummary, DiagramError> {
    let graph = source.graph(BuildOptions::default())?;
    let html = render_page(source, &graph)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|source| DiagramError::Write { path: parent.to_path_buf(), source })?;
    }
    std::fs::write(out, &html).map_err(|source| DiagramError::Write { path: out.to_path_buf(), source })?;
    Ok(DiagramSummary {
        path: out.to_path_buf(),
        n_events: graph.n_events(),
        n_messages: graph.messages.len() as u64,
        bytes: html.len() as u64,
    })
}

/// The page of a run whose graph is built.
pub fn render_page(source: &RunSource, graph: &RunGraph) -> Result<String, SourceError> {
    let origin = origin_us(source, graph);
    let meta = header(source, graph, origin);
    let mut lines = data::EventLines::default();
    for machine in &graph.machines {
        // The lines of the events, in order: the log's lines minus those the
        // reader skipped.
        let mut wanted = machine.rows.iter().map(|row| row.line_no).peekable();
        for (idx, line) in source.raw_lines(machine.id)?.enumerate() {
            let Some(&want) = wanted.peek() else { break };
            if idx as u64 + 1 == want {
                lines.bytes.extend_from_slice(&line);
                lines.ends.push(lines.bytes.len());
                wanted.next();
            }
        }
        // A line that vanished between the two reads is left empty, so that
        // the page's line k stays event k's.
        for _ in wanted {
            lines.ends.push(lines.bytes.len());
        }
    }
    let base64 = base64::engine::general_purpose::STANDARD;
    let draw = base64.encode(data::compress(&data::draw_bytes(graph, origin)));
    let chunks = data::detail_chunks(graph, &lines);
    drop(lines);
    let compressed = compress_all(chunks);
    let mut detail = String::new();
    for (idx, chunk) in compressed.iter().enumerate() {
        detail.push_str(&format!("<script type=\"application/octet-stream\" id=\"detail-{idx}\">"));
        detail.push_str(&base64.encode(chunk));
        detail.push_str("</script>\n");
    }
    // `<` never appears raw inside the script element, so no text can close it.
    let meta = serde_json::to_string(&meta).expect("a header always serialises").replace('<', "\\u003c");
    Ok(fill(
        PAGE,
        &[("@@CSS@@", STYLE), ("@@META@@", &meta), ("@@DRAW@@", &draw), ("@@DETAILS@@", &detail), ("@@JS@@", SCRIPT)],
    ))
}

fn header(source: &RunSource, graph: &RunGraph, origin_us: i64) -> data::Meta {
    let manifest = source.manifest.as_ref();
    let mut notes = Vec::new();
    if data::has_unnamed_receives(graph) {
        notes.push(
            "Its Processed lines name no sender (the reference implementation's logs), so no message can be paired \
             with its receive: no arrows, and cones follow program order only."
                .to_string(),
        );
    }
    let skipped: u64 = graph.diagnostics.values().map(|d| d.n_skipped).sum();
    if skipped > 0 {
        notes.push(format!("{skipped} lines could not be read and are not drawn."));
    }
    let whole_seconds =
        manifest.is_none() && graph.machines.iter().flat_map(|m| &m.rows).all(|row| row.time_us % 1_000_000 == 0);
    data::Meta {
        version: 1,
        title: source.label.replace('/', " / "),
        runtime: manifest
            .and_then(|m| serde_json::to_value(m.runtime).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        seed: manifest.map(|m| m.seeds.suite),
        origin_us,
        whole_seconds,
        machines: graph
            .machines
            .iter()
            .map(|m| data::MetaMachine { id: m.id, rate: m.rate, n_events: m.rows.len() as u64 })
            .collect(),
        n_events: graph.n_events(),
        n_ticks: graph.n_ticks(),
        n_messages: graph.messages.len() as u64,
        messages: data::message_counts(graph),
        vector_width: graph.width,
        detail_chunk: data::DETAIL_CHUNK,
        hlc: graph.machines.iter().any(|m| !m.hlc.is_empty()),
        physical: graph.machines.iter().any(|m| !m.physical_us.is_empty()),
        faults: Vec::new(),
        notes,
    }
}

/// Compresses the chunks, on as many threads as the machine has cores.
fn compress_all(chunks: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, chunks.len().max(1));
    let per_thread = chunks.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .chunks(per_thread)
            .map(|group| scope.spawn(move || group.iter().map(|chunk| data::compress(chunk)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|handle| handle.join().expect("compression does not panic")).collect()
    })
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
        let graph = source.graph(BuildOptions::default()).unwrap();
        let page = render_page(&source, &graph).unwrap();
        assert!(page.contains("\"n_events\":3"), "the run is in the page");
        // No address to load anything from: no URL, no external script or style.
        for needle in ["http:", "https:", "//cdn", "src=", "<link", "import("] {
            assert!(!page.contains(needle), "the page contains {needle}");
        }
    }

    #[test]
    fn the_page_has_a_marker_for_each_part() {
        for marker in ["@@CSS@@", "@@META@@", "@@DRAW@@", "@@DETAILS@@", "@@JS@@"] {
            assert_eq!(PAGE.matches(marker).count(), 1, "{marker}");
        }
        assert!(!SCRIPT.contains("</script"), "the script cannot close its own element");
    }
}
