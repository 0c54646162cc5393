//! One row per event with its pairing, as CSV or JSON Lines: for notebooks,
//! spreadsheets and other tools.
//!
//! Columns: `experiment`, `run`, `event` (`m2e117`), `machine`, `index`
//! (its place among the machine's lines, from 1), `line` (its line number
//! in its log), `kind`, `tick`, `time_us` (true time, µs since the Unix
//! epoch), `lamport`, `queue_length`, `vector` (when kept), `hlc_l_us`,
//! `hlc_c`, `physical_clock_us` (when kept), then the pairing: `messages`
//! (a send's messages, `m1e5-to-m2`, one per recipient; a receive's
//! message), `peer_events` (a send's receives, in the same order, empty
//! where a message was never received; a receive's send), and
//! `message_status` (`processed`, `unprocessed`, `lost` or `unknown`, per
//! message). In CSV, lists are space-separated and a vector is
//! `[1, 2, 3]`; in JSON Lines they are arrays.

use std::io::Write;

use serde::Serialize;

use crate::export::{ExportError, ExportSummary, run_label, write_error};
use crate::graph::{BuildOptions, EventRef, Link, Message, MessageStatus, RunGraph};
use crate::source::RunSource;

/// The table's two forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// One row.
#[derive(Debug, Serialize)]
struct Row<'a> {
    experiment: &'a str,
    run: &'a str,
    event: String,
    machine: u32,
    index: u64,
    line: u64,
    kind: &'static str,
    tick: bool,
    time_us: i64,
    lamport: u64,
    queue_length: u64,
    vector: Option<Vec<u64>>,
    hlc_l_us: Option<i64>,
    hlc_c: Option<u64>,
    physical_clock_us: Option<i64>,
    messages: Vec<String>,
    peer_events: Vec<String>,
    message_status: Vec<&'static str>,
}

/// The CSV form of a row: lists as text.
#[derive(Debug, Serialize)]
struct CsvRow<'a> {
    experiment: &'a str,
    run: &'a str,
    event: &'a str,
    machine: u32,
    index: u64,
    line: u64,
    kind: &'static str,
    tick: bool,
    time_us: i64,
    lamport: u64,
    queue_length: u64,
    vector: String,
    hlc_l_us: Option<i64>,
    hlc_c: Option<u64>,
    physical_clock_us: Option<i64>,
    messages: String,
    peer_events: String,
    message_status: String,
}

impl<'a> From<&'a Row<'a>> for CsvRow<'a> {
    fn from(row: &'a Row<'a>) -> CsvRow<'a> {
        CsvRow {
            experiment: row.experiment,
            run: row.run,
            event: &row.event,
            machine: row.machine,
            index: row.index,
            line: row.line,
            kind: row.kind,
            tick: row.tick,
            time_us: row.time_us,
            lamport: row.lamport,
            queue_length: row.queue_length,
            vector: row.vector.as_ref().map_or(String::new(), |v| format!("{v:?}")),
            hlc_l_us: row.hlc_l_us,
            hlc_c: row.hlc_c,
            physical_clock_us: row.physical_clock_us,
            messages: row.messages.join(" "),
            peer_events: row.peer_events.join(" "),
            message_status: row.message_status.join(" "),
        }
    }
}

/// A message's name: its send and its recipient (`m1e5-to-m2`).
pub fn message_name(graph: &RunGraph, message: &Message) -> String {
    format!("{}-to-m{}", graph.event_id(message.send), message.to)
}

/// A message status's word.
pub fn status_name(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Processed => "processed",
        MessageStatus::Unprocessed => "unprocessed",
        MessageStatus::Lost => "lost",
        MessageStatus::Held => "held",
        MessageStatus::Crashed => "crashed",
        MessageStatus::Missing => "missing",
        MessageStatus::Unknown => "unknown",
    }
}

fn row<'a>(graph: &RunGraph, at: EventRef, experiment: &'a str, run: &'a str) -> Row<'a> {
    let event_row = graph.row(at);
    let id = graph.event_id(at);
    let (mut messages, mut peer_events, mut message_status) = (Vec::new(), Vec::new(), Vec::new());
    match event_row.link {
        Link::Sends { first, n } => {
            for message in &graph.messages[first as usize..(first + n) as usize] {
                messages.push(message_name(graph, message));
                peer_events.push(message.receive.map_or(String::new(), |r| graph.event_id(r).to_string()));
                message_status.push(status_name(message.status));
            }
        }
        Link::Receives(idx) | Link::Drops(idx) => {
            let message = &graph.messages[idx as usize];
            messages.push(message_name(graph, message));
            peer_events.push(graph.event_id(message.send).to_string());
            message_status.push(status_name(message.status));
        }
        Link::Unmatched | Link::Unnamed | Link::None => {}
    }
    let hlc = graph.hlc(at);
    Row {
        experiment,
        run,
        event: id.to_string(),
        machine: id.machine,
        index: id.index,
        line: event_row.line_no,
        kind: event_row.kind.name(),
        tick: event_row.tick,
        time_us: event_row.time_us,
        lamport: event_row.lamport,
        queue_length: event_row.queue_length,
        vector: graph.vector(at).map(<[u64]>::to_vec),
        hlc_l_us: hlc.map(|h| h.l_us),
        hlc_c: hlc.map(|h| h.c),
        physical_clock_us: graph.physical_us(at),
        messages,
        peer_events,
        message_status,
    }
}

/// Writes one row per event of the runs in `sources`, in each run's merged
/// time order, to `out` (`what` names it in errors).
pub fn write(
    sources: &[RunSource],
    format: TableFormat,
    out: &mut dyn Write,
    what: &str,
) -> Result<ExportSummary, ExportError> {
    let io = write_error(what);
    let summary = match format {
        TableFormat::Csv => {
            let mut csv = csv::Writer::from_writer(&mut *out);
            let summary =
                for_each_row(sources, |row| csv.serialize(CsvRow::from(row)).map_err(|error| io(csv_io(error))))?;
            csv.flush().map_err(&io)?;
            summary
        }
        TableFormat::Jsonl => for_each_row(sources, |row| {
            serde_json::to_writer(&mut *out, row).map_err(|error| io(error.into()))?;
            out.write_all(b"\n").map_err(&io)
        })?,
    };
    out.flush().map_err(&io)?;
    Ok(summary)
}

/// The I/O error inside a CSV error (a row always serialises).
fn csv_io(error: csv::Error) -> std::io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// Calls `emit` with every row of the runs, in order.
fn for_each_row(
    sources: &[RunSource],
    mut emit: impl FnMut(&Row) -> Result<(), ExportError>,
) -> Result<ExportSummary, ExportError> {
    let mut summary = ExportSummary::default();
    for source in sources {
        let graph = source.graph(BuildOptions::default())?;
        let label = run_label(source);
        let (experiment, run) = label.rsplit_once('/').unwrap_or(("", &label));
        for &at in &graph.order {
            emit(&row(&graph, at, experiment, run))?;
            summary.events += 1;
        }
        summary.messages += graph.messages.len() as u64;
        summary.runs += 1;
    }
    Ok(summary)
}
