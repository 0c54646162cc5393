//! The ShiViz export: a log that ShiViz (DistributedClocks/shiviz) opens as
//! it is.
//!
//! ShiViz reads a file whose first line is its parser regex and whose
//! second line is the delimiter between executions; each event is one line
//! matched by the regex, naming its host and carrying its vector clock as a
//! JSON object. Its rules: a host appears in its own clock, and its own
//! component starts at 1 and rises by exactly 1 per event. So only ticks are
//! ShiViz events (the lines that are not ticks do not move a vector clock),
//! one execution per run. Vector clocks come from the log when the run kept
//! them, and are replayed from happens-before otherwise (the same vectors,
//! see [`VectorReplay`](crate::VectorReplay)); a logged vector that breaks
//! ShiViz's rules is refused rather than written. The text of each event is
//! its line in the log, after its event id.

use std::io::Write;

use crate::export::{ExportError, ExportSummary, run_label, write_error};
use crate::graph::{BuildOptions, EventRef, RunGraph};
use crate::source::{RawLines, RunSource};

/// The parser regex, as ShiViz reads it from the first line (ShiViz adds
/// `^` and `$`). No unnamed groups: ShiViz rewrites them.
pub const PARSER: &str = r"(?<host>\S+) (?<clock>\{.*?\}) (?<event>.*)";

/// The delimiter between executions, from the second line.
pub const DELIMITER: &str = r"=== (?<trace>.+) ===";

/// A machine's host name in ShiViz.
pub fn host(id: u32) -> String {
    format!("machine_{id}")
}

/// Writes the runs in `sources` as one ShiViz log to `out` (`what` names it in errors).
pub fn write(sources: &[RunSource], out: &mut dyn Write, what: &str) -> Result<ExportSummary, ExportError> {
    let io = write_error(what);
    writeln!(out, "{PARSER}").map_err(&io)?;
    writeln!(out, "{DELIMITER}").map_err(&io)?;
    let mut summary = ExportSummary::default();
    for source in sources {
        let graph = source.graph(BuildOptions { replay: true })?;
        let label = run_label(source);
        writeln!(out, "=== {label} ===").map_err(&io)?;
        let mut lines = RawLines::open(source)?;
        let logged = graph.width > 0;
        let mut ticks = vec![0u64; graph.machines.len()];
        for &at in &graph.order {
            let row = graph.row(at);
            if !row.tick {
                continue;
            }
            ticks[at.machine as usize] += 1;
            let clock = clock_json(&graph, at, logged, ticks[at.machine as usize])
                .map_err(|message| ExportError::Unfit { run: label.clone(), message })?;
            let id = graph.machines[at.machine as usize].id;
            let text = lines.line(id, row.line_no).unwrap_or_default();
            write!(out, "{} {clock} {} ", host(id), graph.event_id(at)).map_err(&io)?;
            out.write_all(&text).map_err(&io)?;
            out.write_all(b"\n").map_err(&io)?;
            summary.events += 1;
        }
        summary.messages += graph.message_counts().get(&crate::graph::MessageStatus::Processed).copied().unwrap_or(0);
        if !logged {
            summary
                .notes
                .push(format!("{label}: the run kept no vector clocks; they were replayed from happens-before"));
        }
        if graph.machines.iter().flat_map(|m| &m.rows).any(|row| row.link == crate::graph::Link::Unnamed) {
            summary.notes.push(format!(
                "{label}: its receives name no sender (the reference's logs), so ShiViz shows no messages"
            ));
        }
        summary.runs += 1;
    }
    out.flush().map_err(&io)?;
    Ok(summary)
}

/// The event's vector clock as ShiViz's JSON object (zero components left
/// out), checked against ShiViz's rules: its own component is its `tick`-th.
fn clock_json(graph: &RunGraph, at: EventRef, logged: bool, tick: u64) -> Result<String, String> {
    // (machine id, value) per component.
    let components: Vec<(u32, u64)> = if logged {
        let vector = graph.vector(at).expect("a run with vectors has one on every line");
        vector.iter().enumerate().map(|(idx, &value)| (idx as u32 + 1, value)).collect()
    } else {
        let replayed = graph.replayed(at).expect("the graph was built with replay");
        graph.machines.iter().zip(replayed).map(|(m, &value)| (m.id, value)).collect()
    };
    let own = graph.machines[at.machine as usize].id;
    let own_value = components.iter().find(|(id, _)| *id == own).map(|&(_, v)| v);
    if own_value != Some(tick) {
        return Err(format!(
            "{} is machine {own}'s tick {tick}, but its logged vector clock has {} for machine {own}: ShiViz needs \
             the own component to count the ticks (run `clocklab check` on the run)",
            graph.event_id(at),
            own_value.map_or("no component".to_string(), |v| v.to_string())
        ));
    }
    let fields: Vec<String> = components
        .iter()
        .filter(|&&(_, value)| value > 0)
        .map(|&(id, value)| format!("\"{}\":{value}", host(id)))
        .collect();
    Ok(format!("{{{}}}", fields.join(",")))
}
