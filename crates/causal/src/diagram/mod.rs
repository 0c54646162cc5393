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
pub mod text;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clocklab_config::output;
use clocklab_log::{Diagnostics, Event, Incarnations, MessageId, Pairing, TickCounter, crash_took};
use clocklab_model::MachineId;

use crate::graph::{Kind, RunGraph};
use crate::source::{RawLines, RunSource, SourceError};

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
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DiagramError::Write { path: path.clone(), source }
    };
    if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        output::create_dir_all(parent).map_err(failed(parent))?;
    }
    // Written whole or not at all, never through a link planted at its name.
    let mut file = output::OutputFile::create(out).map_err(failed(out))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 16, &mut file);
    let (n_events, n_messages) = match write_page(source, &mut writer) {
        Ok(counts) => counts,
        Err(PageError::Source(error)) => return Err(error.into()),
        Err(PageError::Write(error)) => return Err(failed(out)(error)),
    };
    writer.flush().map_err(failed(out))?;
    drop(writer);
    file.commit().map_err(failed(out))?;
    let bytes = std::fs::metadata(out).map_err(failed(out))?.len();
    Ok(DiagramSummary { path: out.to_path_buf(), n_events, n_messages, bytes })
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

/// One machine's part of the page, as its events stream by.
#[derive(Debug, Default)]
struct MachineStream {
    id: MachineId,
    rate: Option<u32>,
    n_events: u64,
    draw: data::Deflated,
    last_time: i64,
    last_lamport: i64,
    ticks: TickCounter,
    incarnations: Incarnations,
    chunk: data::DetailChunk,
    n_chunks: usize,
}

/// Writes the page of the run in `source` to `out`, in one pass over its
/// events; returns the numbers of events and messages.
pub fn write_page(source: &RunSource, out: &mut impl Write) -> Result<(u64, u64), PageError> {
    // Detail chunks are compressed on a second thread while this one reads
    // the logs; at most a few wait in between.
    std::thread::scope(|scope| {
        let (to_compress, chunks_in) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(4);
        let (compressed_out, compressed) = std::sync::mpsc::channel::<(String, Vec<u8>)>();
        scope.spawn(move || {
            for (id, bytes) in chunks_in {
                if compressed_out.send((id, data::compress_detail(&bytes))).is_err() {
                    break;
                }
            }
        });
        write_page_with(source, out, &to_compress, &compressed).inspect_err(|_| drop(to_compress))
    })
}

/// [`write_page`], with the chunk compressor's two ends.
fn write_page_with(
    source: &RunSource,
    out: &mut impl Write,
    to_compress: &std::sync::mpsc::SyncSender<(String, Vec<u8>)>,
    compressed: &std::sync::mpsc::Receiver<(String, Vec<u8>)>,
) -> Result<(u64, u64), PageError> {
    let hung_up = || PageError::Write(std::io::Error::other("the compressing thread stopped"));
    // Chunks written so far (they come back from the compressor in any order).
    let mut written = 0usize;
    let (before_data, after_data) = PAGE.split_once("@@DATA@@").expect("the page has a data marker");
    out.write_all(fill(before_data, &[("@@CSS@@", STYLE)]).as_bytes())?;
    let (mut events, skipped) = source.events()?;
    let mut raw = RawLines::open(source)?;
    let ids: Vec<MachineId> = events.machines().collect();
    let index_of = |id: MachineId| ids.binary_search(&id).ok();
    let mut machines: Vec<MachineStream> = ids.iter().map(|&id| MachineStream { id, ..Default::default() }).collect();
    let mut meta =
        data::Meta { version: 5, detail_chunk: data::DETAIL_CHUNK, whole_seconds: true, ..Default::default() };
    let (mut messages, mut receives, mut fates) =
        (data::Deflated::default(), data::Deflated::default(), data::Deflated::default());
    // Messages sent and not yet received, by name: their number in
    // `messages` and when they were sent.
    let mut pending: BTreeMap<MessageId, (u64, i64)> = BTreeMap::new();
    let mut unnamed: Vec<MachineId> = Vec::new();
    let mut width: Option<usize> = None;
    let mut first_tick_us = None;
    let mut record = data::Varints::default();
    for event in events.by_ref() {
        let j = index_of(event.id.machine).expect("events come from the run's machines");
        let pos = event.id.index - 1;
        let line = &event.record;
        // The first line decides whether the run keeps vector clocks.
        let width = *width.get_or_insert_with(|| line.vector_clock.as_ref().map_or(0, Vec::len));
        if meta.n_events == 0 {
            meta.time_base_us = line.time_us;
        }
        meta.n_events += 1;
        meta.whole_seconds &= line.time_us % 1_000_000 == 0;
        let machine = &mut machines[j];
        machine.n_events += 1;
        if let Event::Initialized { rate, .. } = line.event {
            machine.rate.get_or_insert(rate);
        }
        machine.incarnations.observe(line);
        // The draw columns: kind, time and clock as differences. The page
        // finds events by binary search, so a damaged log's times and
        // clocks are held level rather than let go back.
        let tick = line.event.is_tick() && !machine.ticks.continues_tick(line);
        meta.n_ticks += u64::from(tick);
        if tick {
            first_tick_us.get_or_insert(line.time_us);
        }
        let kind = Kind::of(&line.event) as u8 | if line.event.is_tick() && !tick { 0x80 } else { 0 };
        let time = (line.time_us - meta.time_base_us).max(machine.last_time);
        let lamport = (line.logical_clock.min((1 << 52) - 1) as i64).max(machine.last_lamport);
        record.0.clear();
        record.0.push(kind);
        record.signed(time - machine.last_time);
        record.signed(lamport - machine.last_lamport);
        machine.draw.push(&record.0);
        (machine.last_time, machine.last_lamport) = (time, lamport);
        // The detail: the line and every clock it carries.
        let text = raw.line(event.id.machine, event.line_no).unwrap_or_default();
        let detail = data::EventDetail {
            line_no: event.line_no,
            line: &text,
            queue_length: line.queue_length,
            vector: line.vector_clock.as_deref(),
            hlc: line.hlc,
            physical_us: line.physical_clock_us,
        };
        machine.chunk.push(&detail, width);
        if machine.chunk.len == data::DETAIL_CHUNK {
            let id = format!("detail-{j}-{}", machine.n_chunks);
            to_compress.send((id, machine.chunk.take_bytes(width))).map_err(|_| hung_up())?;
            machine.n_chunks += 1;
            while let Ok((id, bytes)) = compressed.try_recv() {
                data::write_element(out, &id, &bytes)?;
                written += 1;
            }
        }
        // Messages: numbered at their send, tied to their receive.
        match (&line.event, &event.pairing) {
            (Event::Sent { to }, _) => {
                for &peer in to {
                    record.0.clear();
                    record.unsigned(j as u64);
                    record.unsigned(pos);
                    record.unsigned(index_of(peer).unwrap_or(ids.len()) as u64);
                    messages.push(&record.0);
                    if !unnamed.contains(&peer) {
                        pending.insert(MessageId { send: event.id, to: peer }, (meta.n_messages, line.time_us));
                    }
                    meta.n_messages += 1;
                }
            }
            (Event::Processed { .. } | Event::Unprocessed { .. }, Pairing::Paired(sent)) => {
                if let Some((number, _)) = pending.remove(&sent.id) {
                    let processed = matches!(line.event, Event::Processed { .. });
                    record.0.clear();
                    record.unsigned(number);
                    record.unsigned(j as u64);
                    record.unsigned(pos);
                    record.unsigned(u64::from(!processed));
                    receives.push(&record.0);
                    meta.n_receives += 1;
                    if processed {
                        meta.messages.processed += 1;
                    } else {
                        meta.messages.unprocessed += 1;
                    }
                }
            }
            (Event::Lost { .. } | Event::Held { .. }, Pairing::Paired(sent)) => {
                if let Some((number, _)) = pending.remove(&sent.id) {
                    let held = matches!(event.record.event, Event::Held { .. });
                    record.0.clear();
                    record.unsigned(number);
                    record.unsigned(if held { data::FATE_HELD } else { data::FATE_LOST });
                    fates.push(&record.0);
                    meta.n_fates += 1;
                    if held {
                        meta.messages.held += 1;
                    } else {
                        meta.messages.lost += 1;
                    }
                }
            }
            (_, Pairing::Unnamed) if !unnamed.contains(&event.id.machine) => {
                // Messages to this machine can never pair: stop keeping them.
                unnamed.push(event.id.machine);
                pending.retain(|message, _| message.to != event.id.machine);
            }
            _ => {}
        }
    }
    // What the logs say of the messages no one received: a crash took them,
    // or nothing explains them.
    let incarnations = |id: MachineId| index_of(id).map(|j| &machines[j].incarnations);
    let mut taken: Vec<u64> = pending
        .iter()
        .filter(|&(message, &(_, sent_us))| {
            crash_took(incarnations(message.send.machine), incarnations(message.to), message.to, sent_us)
        })
        .map(|(_, &(number, _))| number)
        .collect();
    taken.sort_unstable();
    for number in taken {
        record.0.clear();
        record.unsigned(number);
        record.unsigned(data::FATE_CRASHED);
        fates.push(&record.0);
        meta.n_fates += 1;
        meta.messages.crashed += 1;
    }
    meta.messages.missing = pending.len() as u64 - meta.messages.crashed;
    meta.messages.unknown = meta.n_messages
        - meta.messages.processed
        - meta.messages.unprocessed
        - meta.messages.lost
        - meta.messages.crashed
        - meta.messages.missing;
    meta.vector_width = width.unwrap_or(0);
    for (j, machine) in machines.iter_mut().enumerate() {
        if machine.chunk.len > 0 {
            let id = format!("detail-{j}-{}", machine.n_chunks);
            to_compress.send((id, machine.chunk.take_bytes(meta.vector_width))).map_err(|_| hung_up())?;
            machine.n_chunks += 1;
        }
    }
    let n_chunks: usize = machines.iter().map(|m| m.n_chunks).sum();
    while written < n_chunks {
        // Everything sent is compressed and comes back, in some order.
        let (id, bytes) = compressed.recv().map_err(|_| hung_up())?;
        data::write_element(out, &id, &bytes)?;
        written += 1;
    }
    for (j, machine) in machines.iter_mut().enumerate() {
        data::write_element(out, &format!("draw-{j}"), &std::mem::take(&mut machine.draw).finish())?;
    }
    data::write_element(out, "messages", &messages.finish())?;
    data::write_element(out, "receives", &receives.finish())?;
    data::write_element(out, "fates", &fates.finish())?;
    meta.origin_us = manifest_start_us(source).or(first_tick_us).unwrap_or(meta.time_base_us);
    meta.machines =
        machines.iter().map(|m| data::MetaMachine { id: m.id, rate: m.rate, n_events: m.n_events }).collect();
    meta.unnamed_receivers = unnamed.iter().filter_map(|&id| index_of(id)).collect();
    describe(source, &mut meta, &skipped.get(), !unnamed.is_empty());
    // `<` never appears raw inside the script element, so no text can close it.
    let json = serde_json::to_string(&meta).expect("a header always serialises").replace('<', "\\u003c");
    writeln!(out, "<script type=\"application/json\" id=\"meta\">{json}</script>")?;
    out.write_all(fill(after_data, &[("@@JS@@", SCRIPT)]).as_bytes())?;
    Ok((meta.n_events, meta.n_messages))
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
