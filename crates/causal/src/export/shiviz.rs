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
//!
//! A machine that crashed and restarted is one host per incarnation:
//! `machine_2`, then `machine_2#2`, each counting its own ticks from 1, so
//! that ShiViz draws the restart as the second host taking over from the
//! first. A fresh restart's logged vector forgets the machine's past, which
//! ShiViz cannot follow, so a run with a restart gets the vectors
//! happens-before gives (the replayed ones, which count across the
//! incarnations in program order), each machine's component split among
//! its incarnations.

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

/// The host of incarnation `incarnation` (from 1) of machine `id`:
/// `machine_2`, then `machine_2#2` after its first restart.
pub fn incarnation_host(id: u32, incarnation: usize) -> String {
    if incarnation <= 1 { host(id) } else { format!("{}#{incarnation}", host(id)) }
}

/// Per machine, the ticks of each incarnation, and per row the incarnation
/// (from 1) it belongs to.
struct Incarnations {
    ticks: Vec<Vec<u64>>,
    of_row: Vec<Vec<usize>>,
}

impl Incarnations {
    fn of(graph: &RunGraph) -> Incarnations {
        let mut ticks = Vec::new();
        let mut of_row = Vec::new();
        for machine in &graph.machines {
            let mut counts = vec![0u64];
            let mut rows = Vec::with_capacity(machine.rows.len());
            for row in &machine.rows {
                if row.kind == crate::graph::Kind::Restarted {
                    counts.push(0);
                }
                if row.tick {
                    *counts.last_mut().expect("one incarnation at least") += 1;
                }
                rows.push(counts.len());
            }
            ticks.push(counts);
            of_row.push(rows);
        }
        Incarnations { ticks, of_row }
    }

    fn restarted(&self) -> bool {
        self.ticks.iter().any(|counts| counts.len() > 1)
    }
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
        let incarnations = Incarnations::of(&graph);
        let logged = graph.width > 0 && !incarnations.restarted();
        let mut ticks = vec![0u64; graph.machines.len()];
        for &at in &graph.order {
            let row = graph.row(at);
            if !row.tick {
                continue;
            }
            let m = at.machine as usize;
            let incarnation = incarnations.of_row[m][at.pos as usize];
            ticks[m] += 1;
            // Its place among its incarnation's ticks: program order puts
            // every tick of the earlier incarnations before it.
            let within = ticks[m] - incarnations.ticks[m][..incarnation - 1].iter().sum::<u64>();
            let clock = if logged {
                clock_json(&graph, at, within)
            } else {
                replayed_clock_json(&graph, &incarnations, at, incarnation, within)
            }
            .map_err(|message| ExportError::Unfit { run: label.clone(), message })?;
            let id = graph.machines[m].id;
            let text = lines.line(id, row.line_no).unwrap_or_default();
            write!(out, "{} {clock} {} ", incarnation_host(id, incarnation), graph.event_id(at)).map_err(&io)?;
            out.write_all(&text).map_err(&io)?;
            out.write_all(b"\n").map_err(&io)?;
            summary.events += 1;
        }
        summary.messages += graph.message_counts().get(&crate::graph::MessageStatus::Processed).copied().unwrap_or(0);
        if incarnations.restarted() {
            summary.notes.push(format!(
                "{label}: a machine restarted: each incarnation is a host of its own (machine_<id>#2 for the \
                 second), with the vector clocks happens-before gives"
            ));
        } else if !logged {
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

/// The event's logged vector clock as ShiViz's JSON object (zero components
/// left out), checked against ShiViz's rules: its own component is its
/// `tick`-th.
fn clock_json(graph: &RunGraph, at: EventRef, tick: u64) -> Result<String, String> {
    let vector = graph.vector(at).expect("a run with vectors has one on every line");
    let components: Vec<(String, u64)> =
        vector.iter().enumerate().map(|(idx, &value)| (host(idx as u32 + 1), value)).collect();
    own_and_json(graph, at, &host(graph.machines[at.machine as usize].id), tick, &components)
}

/// The vector happens-before gives the event, each machine's component
/// (its ticks in the event's causal past, a prefix of its ticks in program
/// order) split among its incarnations; checked as [`clock_json`].
fn replayed_clock_json(
    graph: &RunGraph,
    incarnations: &Incarnations,
    at: EventRef,
    incarnation: usize,
    tick: u64,
) -> Result<String, String> {
    let replayed = graph.replayed(at).expect("the graph was built with replay");
    let mut components = Vec::new();
    for ((machine, &total), counts) in graph.machines.iter().zip(replayed).zip(&incarnations.ticks) {
        let mut before = 0u64;
        for (k, &n) in counts.iter().enumerate() {
            components.push((incarnation_host(machine.id, k + 1), total.saturating_sub(before).min(n)));
            before += n;
        }
    }
    let own = incarnation_host(graph.machines[at.machine as usize].id, incarnation);
    own_and_json(graph, at, &own, tick, &components)
}

/// `components` (host, value) as ShiViz's JSON object, zero components left
/// out, once `own`'s is found to be `tick`.
fn own_and_json(
    graph: &RunGraph,
    at: EventRef,
    own: &str,
    tick: u64,
    components: &[(String, u64)],
) -> Result<String, String> {
    let own_value = components.iter().find(|(host, _)| host == own).map(|(_, v)| *v);
    if own_value != Some(tick) {
        return Err(format!(
            "{} is {own}'s tick {tick}, but its vector clock has {} for {own}: ShiViz needs the own component to \
             count the ticks (run `clocklab check` on the run)",
            graph.event_id(at),
            own_value.map_or("no component".to_string(), |v| v.to_string())
        ));
    }
    let fields: Vec<String> =
        components.iter().filter(|(_, value)| *value > 0).map(|(host, value)| format!("\"{host}\":{value}")).collect();
    Ok(format!("{{{}}}", fields.join(",")))
}
