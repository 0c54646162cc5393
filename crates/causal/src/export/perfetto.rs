//! The Perfetto export: Chrome Trace Event Format JSON, which
//! ui.perfetto.dev and `chrome://tracing` open.
//!
//! Each run is a process (`pid`), each machine a thread of it (`tid` = its
//! id), so each machine has its own track. Every line is a complete event
//! (`"ph": "X"`) at its true time, in microseconds since the run's start;
//! a tick lasts half its machine's tick period so that it can be seen and
//! clicked, any other line a microsecond. Its arguments carry every clock
//! the line carries. Every message that was received (processed, or left in
//! the queue at the end) is one flow: a flow start (`"ph": "s"`) at its send
//! and a flow end (`"ph": "f"`, bound to the enclosing slice) at its receive.

use std::io::Write;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::export::{ExportError, ExportSummary, run_label, write_error};
use crate::graph::{BuildOptions, EventRef, Kind, MessageStatus, RunGraph};
use crate::source::RunSource;

/// One trace event.
#[derive(Debug, Serialize)]
struct TraceEvent<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    cat: &'a str,
    ph: &'a str,
    pid: u64,
    tid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bp: Option<&'a str>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    args: Map<String, Value>,
}

impl<'a> TraceEvent<'a> {
    fn new(name: &'a str, ph: &'a str, pid: u64, tid: u32) -> TraceEvent<'a> {
        TraceEvent { name, cat: "", ph, pid, tid, ts: None, dur: None, id: None, bp: None, args: Map::new() }
    }
}

/// Writes the trace events one by one inside `{"traceEvents": [...]}`.
struct Writer<'w> {
    out: &'w mut dyn Write,
    first: bool,
    what: &'w str,
}

impl Writer<'_> {
    fn event(&mut self, event: &TraceEvent) -> Result<(), ExportError> {
        let io = write_error(self.what);
        self.out.write_all(if self.first { b"\n" } else { b",\n" }).map_err(&io)?;
        self.first = false;
        serde_json::to_writer(&mut *self.out, event).map_err(|error| io(error.into()))
    }
}

/// Writes the runs in `sources` as one trace to `out` (`what` names it in errors).
pub fn write(sources: &[RunSource], out: &mut dyn Write, what: &str) -> Result<ExportSummary, ExportError> {
    let io = write_error(what);
    out.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[").map_err(&io)?;
    let mut writer = Writer { out, first: true, what };
    let mut summary = ExportSummary::default();
    let mut flow_id = 0u64;
    for (run_idx, source) in sources.iter().enumerate() {
        let pid = run_idx as u64 + 1;
        let graph = source.graph(BuildOptions::default())?;
        let origin = crate::diagram::origin_us(source, &graph);
        let label = run_label(source);
        let mut meta = TraceEvent::new("process_name", "M", pid, 0);
        meta.args.insert("name".into(), json!(label));
        writer.event(&meta)?;
        let mut order = TraceEvent::new("process_sort_index", "M", pid, 0);
        order.args.insert("sort_index".into(), json!(pid));
        writer.event(&order)?;
        for machine in &graph.machines {
            let mut name = TraceEvent::new("thread_name", "M", pid, machine.id);
            let rate = machine.rate.map_or(String::new(), |rate| format!(" (rate {rate}/s)"));
            name.args.insert("name".into(), json!(format!("machine {}{rate}", machine.id)));
            writer.event(&name)?;
            let mut sort = TraceEvent::new("thread_sort_index", "M", pid, machine.id);
            sort.args.insert("sort_index".into(), json!(machine.id));
            writer.event(&sort)?;
        }
        let ts = |at: EventRef| (graph.row(at).time_us - origin) as f64;
        for &at in &graph.order {
            writer.event(&slice(&graph, at, pid, ts(at)))?;
            summary.events += 1;
        }
        for message in &graph.messages {
            let (Some(receive), MessageStatus::Processed | MessageStatus::Unprocessed) =
                (message.receive, message.status)
            else {
                continue;
            };
            flow_id += 1;
            let name = if message.status == MessageStatus::Processed { "message" } else { "message (unprocessed)" };
            let sender = graph.machines[message.send.machine as usize].id;
            let receiver = graph.machines[receive.machine as usize].id;
            let mut start = TraceEvent::new(name, "s", pid, sender);
            start.cat = "message";
            start.ts = Some(ts(message.send));
            start.id = Some(flow_id);
            writer.event(&start)?;
            let mut end = TraceEvent::new(name, "f", pid, receiver);
            end.cat = "message";
            end.ts = Some(ts(receive));
            end.id = Some(flow_id);
            end.bp = Some("e");
            writer.event(&end)?;
            summary.messages += 1;
        }
        summary.runs += 1;
    }
    writer.out.write_all(b"\n]}\n").map_err(&io)?;
    writer.out.flush().map_err(&io)?;
    Ok(summary)
}

/// The slice of one line, with its clocks as arguments.
fn slice<'g>(graph: &'g RunGraph, at: EventRef, pid: u64, ts: f64) -> TraceEvent<'g> {
    let row = graph.row(at);
    let machine = &graph.machines[at.machine as usize];
    let name = match row.kind {
        Kind::Internal => "internal",
        Kind::Sent => "send",
        Kind::Processed => "processed",
        other => other.name(),
    };
    let mut event = TraceEvent::new(name, "X", pid, machine.id);
    event.cat = if row.tick { "tick" } else { "line" };
    event.ts = Some(ts);
    // Half the tick period, so that a tick is a visible slice that never
    // overlaps the next; a line that is not a tick takes a microsecond.
    event.dur = Some(match (row.tick, machine.rate) {
        (true, Some(rate)) if rate > 0 => 500_000.0 / f64::from(rate),
        _ => 1.0,
    });
    let args = &mut event.args;
    args.insert("event".into(), json!(graph.event_id(at).to_string()));
    args.insert("line".into(), json!(row.line_no));
    args.insert("lamport".into(), json!(row.lamport));
    args.insert("queue_length".into(), json!(row.queue_length));
    if let Some(peer) = row.peer {
        args.insert("peer".into(), json!(peer));
    }
    if let crate::graph::Link::Sends { first, n } = row.link {
        let to: Vec<u32> = graph.messages[first as usize..(first + n) as usize].iter().map(|m| m.to).collect();
        args.insert("to".into(), json!(to));
    }
    if let Some(vector) = graph.vector(at) {
        args.insert("vector".into(), json!(vector));
    }
    if let Some(hlc) = graph.hlc(at) {
        args.insert("hlc".into(), json!(format!("{}:{}", hlc.l_us, hlc.c)));
    }
    if let Some(pt) = graph.physical_us(at) {
        args.insert("physical_clock_us".into(), json!(pt));
    }
    args.insert("time_us".into(), json!(row.time_us));
    event
}
