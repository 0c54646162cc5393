//! A static space-time diagram of a window of a run, as SVG, for slides and
//! papers: the same marks as the interactive page, every event of the window
//! drawn, and each message that touches the window as an arrow.

use svg::Document;
use svg::node::element::path::Data;
use svg::node::element::{Circle, ClipPath, Definitions, Group, Line, Marker, Path, Rectangle, Text, Title};

use crate::graph::{EventRef, Kind, Message, MessageStatus, RunGraph};

/// The most events a window may hold: past that, marks merge into a smear
/// and the file stops being a figure.
pub const MAX_EVENTS: u64 = 20_000;

/// Why a window cannot be drawn.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WindowError {
    /// `--from` or `--to` is not a number.
    #[error("--from and --to must be numbers of seconds (`inf` reaches the end of the run)")]
    NotANumber,
    /// `--from` is not before `--to`, or not a number.
    #[error("the window {from_s} s to {to_s} s is empty: --from must be before --to")]
    Empty {
        /// Its start.
        from_s: f64,
        /// Its end.
        to_s: f64,
    },
    /// The window holds no event.
    #[error("no event between {from_s} s and {to_s} s (the run spans {first_s:.3} s to {last_s:.3} s from its start)")]
    NoEvents {
        /// Its start.
        from_s: f64,
        /// Its end.
        to_s: f64,
        /// The run's first event.
        first_s: f64,
        /// The run's last event.
        last_s: f64,
    },
    /// The window holds too many events to draw one by one.
    #[error(
        "{n} events between {from_s} s and {to_s} s; a static diagram draws at most {MAX_EVENTS}: choose a shorter window"
    )]
    TooMany {
        /// Its start.
        from_s: f64,
        /// Its end.
        to_s: f64,
        /// Events in it.
        n: u64,
    },
}

const WIDTH: f64 = 1000.0;
const GUTTER: f64 = 110.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 64.0;
const ROW: f64 = 64.0;
const LEGEND: f64 = 56.0;
/// The height of each further row of the legend.
const LEGEND_ROW: f64 = 22.0;
const FONT: &str = "DejaVu Sans, Verdana, sans-serif";

/// The window from `from_s` to `to_s` seconds after `origin_us`, with an
/// open end (`-inf`, `inf`) taken to the run's first or last event: the
/// window a static diagram draws.
pub fn resolve_window(graph: &RunGraph, origin_us: i64, from_s: f64, to_s: f64) -> Result<(f64, f64), WindowError> {
    if from_s.is_nan() || to_s.is_nan() {
        return Err(WindowError::NotANumber);
    }
    if from_s >= to_s {
        return Err(WindowError::Empty { from_s, to_s });
    }
    let times = || graph.order.iter().map(|&at| (graph.row(at).time_us - origin_us) as f64 / 1e6);
    let from = if from_s == f64::NEG_INFINITY { times().fold(f64::INFINITY, f64::min) } else { from_s };
    let to = if to_s == f64::INFINITY { times().fold(f64::NEG_INFINITY, f64::max) } else { to_s };
    match (from, to) {
        // A run whose events all fall at one instant: a millisecond around it.
        (from, to) if from.is_finite() && to.is_finite() && from >= to && (from_s, to_s) != (from, to) => {
            Ok((from.min(to), from.min(to) + 0.001))
        }
        (from, to) if from.is_finite() && to.is_finite() && from < to => Ok((from, to)),
        // `--from inf` or `--to -inf`, or a run without events.
        _ => Err(WindowError::Empty { from_s, to_s }),
    }
}

/// Draws the events of `graph` between `from_s` and `to_s` seconds after
/// `origin_us`, titled `title`.
pub fn render_window(
    graph: &RunGraph,
    title: &str,
    origin_us: i64,
    from_s: f64,
    to_s: f64,
) -> Result<String, WindowError> {
    let (from_s, to_s) = resolve_window(graph, origin_us, from_s, to_s)?;
    let seconds = |at: EventRef| (graph.row(at).time_us - origin_us) as f64 / 1e6;
    let inside = |at: EventRef| (from_s..=to_s).contains(&seconds(at));
    let n = graph.order.iter().filter(|&&at| inside(at)).count() as u64;
    if n == 0 {
        let times = graph.order.iter().map(|&at| seconds(at));
        let first_s = times.clone().fold(f64::INFINITY, f64::min);
        let last_s = times.fold(f64::NEG_INFINITY, f64::max);
        return Err(WindowError::NoEvents { from_s, to_s, first_s, last_s });
    }
    if n > MAX_EVENTS {
        return Err(WindowError::TooMany { from_s, to_s, n });
    }
    let rows = graph.machines.len() as f64;
    // The legend names the ticks and processed messages, and every other
    // mark the window shows.
    let mut shown: Vec<Kind> = graph.order.iter().filter(|&&at| inside(at)).map(|&at| graph.row(at).kind).collect();
    shown.sort_by_key(|&kind| kind as u8);
    shown.dedup();
    // Messages: every one with an end in the window or crossing it.
    let stopped: Vec<Option<EventRef>> = graph
        .machines
        .iter()
        .enumerate()
        .map(|(idx, m)| {
            m.rows
                .iter()
                .rposition(|row| row.kind == Kind::Stopped)
                .map(|pos| EventRef { machine: idx as u32, pos: pos as u32 })
        })
        .collect();
    // Each message drawn: its send and where its line ends, in seconds,
    // and its receiver's row.
    let drawn: Vec<(&Message, f64, f64, usize)> = graph
        .messages
        .iter()
        .filter_map(|message| {
            let to = graph.machine_idx(message.to)?;
            let start = seconds(message.send);
            let end_at = match message.status {
                MessageStatus::Unprocessed => stopped[to].or(message.receive),
                _ => message.receive,
            };
            let end = match (message.status, end_at) {
                (MessageStatus::Unknown, _) => return None,
                (_, Some(at)) => seconds(at),
                (_, None) => start + 0.05 * (to_s - from_s),
            };
            (start.max(end) >= from_s && start.min(end) <= to_s).then_some((message, start, end, to))
        })
        .collect();
    let lines: Vec<MessageStatus> = drawn.iter().map(|(message, ..)| message.status).collect();
    let items = legend_items(&shown, &lines);
    let legend_rows = legend_layout(&items).last().map_or(1, |&(_, row)| row + 1);
    let height = TOP + ROW * rows + LEGEND + LEGEND_ROW * (legend_rows - 1) as f64;
    let plot_w = WIDTH - GUTTER - RIGHT;
    let x_of = |s: f64| GUTTER + (s - from_s) / (to_s - from_s) * plot_w;
    let y_of = |machine: u32| TOP + ROW * (f64::from(machine) + 0.5);

    let mut document = Document::new()
        .set("xmlns", "http://www.w3.org/2000/svg")
        .set("viewBox", (0, 0, WIDTH, height))
        .set("width", WIDTH)
        .set("height", height)
        .set("font-family", FONT)
        .add(Title::new(format!("{title}: {from_s} s to {to_s} s")))
        .add(definitions(height));
    document = document.add(Rectangle::new().set("width", WIDTH).set("height", height).set("fill", "#fff"));
    document = document.add(
        Text::new(format!("{title}: true time {} s to {} s after the start", trim(from_s), trim(to_s)))
            .set("x", 12)
            .set("y", 22)
            .set("font-size", 15)
            .set("font-weight", "bold"),
    );

    // The time axis.
    let mut axis = Group::new().set("font-size", 12).set("fill", "#555");
    for tick in nice_ticks(from_s, to_s, 8) {
        let x = x_of(tick);
        axis = axis
            .add(
                Line::new()
                    .set("x1", x)
                    .set("x2", x)
                    .set("y1", TOP - 12.0)
                    .set("y2", TOP + ROW * rows)
                    .set("stroke", "#eee"),
            )
            .add(Text::new(format!("{} s", trim(tick))).set("x", x).set("y", TOP - 18.0).set("text-anchor", "middle"));
    }
    document = document.add(axis);

    // Machine lines and labels.
    let mut lines = Group::new();
    for (idx, machine) in graph.machines.iter().enumerate() {
        let y = y_of(idx as u32);
        lines = lines.add(
            Text::new(format!("machine {}", machine.id))
                .set("x", 12)
                .set("y", y - 4.0)
                .set("font-size", 13)
                .set("font-weight", "bold"),
        );
        if let Some(rate) = machine.rate {
            lines = lines.add(
                Text::new(format!("rate {rate}/s"))
                    .set("x", 12)
                    .set("y", y + 12.0)
                    .set("font-size", 12)
                    .set("fill", "#666"),
            );
        }
        let (Some(first), Some(last)) = (machine.rows.first(), machine.rows.last()) else { continue };
        let a = x_of(((first.time_us - origin_us) as f64 / 1e6).max(from_s));
        let b = x_of(((last.time_us - origin_us) as f64 / 1e6).min(to_s));
        if a < b {
            lines = lines.add(
                Line::new()
                    .set("x1", a)
                    .set("x2", b)
                    .set("y1", y)
                    .set("y2", y)
                    .set("stroke", "#bbb")
                    .set("stroke-width", 1.5),
            );
        }
    }
    document = document.add(lines);

    let mut arrows = Group::new().set("clip-path", "url(#plot)").set("fill", "none");
    for &(message, start, end, to) in &drawn {
        let (x1, y1, x2, y2) = (x_of(start), y_of(message.send.machine), x_of(end), y_of(to as u32));
        let mut line = Line::new().set("x1", x1).set("y1", y1).set("x2", x2).set("y2", y2);
        line = match message.status {
            MessageStatus::Processed => {
                line.set("stroke", "#555").set("stroke-width", 1.2).set("marker-end", "url(#head)")
            }
            MessageStatus::Unprocessed => line
                .set("stroke", "#c0392b")
                .set("stroke-width", 1.2)
                .set("stroke-dasharray", "5 4")
                .set("marker-end", "url(#head-red)"),
            _ => line.set("stroke", "#c0392b").set("stroke-width", 1.2),
        };
        arrows = arrows.add(line);
        if never_arrived(message.status) {
            let data = Data::new()
                .move_to((x2 - 5.0, y2 - 5.0))
                .line_to((x2 + 5.0, y2 + 5.0))
                .move_to((x2 + 5.0, y2 - 5.0))
                .line_to((x2 - 5.0, y2 + 5.0));
            arrows = arrows.add(Path::new().set("d", data).set("stroke", "#c0392b").set("stroke-width", 2));
        }
    }
    document = document.add(arrows);

    // Marks.
    let mut marks = Group::new();
    for &at in &graph.order {
        if !inside(at) {
            continue;
        }
        let row = graph.row(at);
        let (x, y) = (x_of(seconds(at)), y_of(at.machine));
        let name = format!("{} {} (Lamport {})", graph.event_id(at), row.kind.name(), row.lamport);
        marks = match mark(row.kind, x, y) {
            Some(shape) => marks.add(shape.add(Title::new(name))),
            None => marks,
        };
    }
    document = document.add(marks);
    document = document.add(legend(&items, TOP + ROW * rows + 20.0));
    Ok(document.to_string())
}

/// The mark of one event.
fn mark(kind: Kind, x: f64, y: f64) -> Option<Group> {
    let group = Group::new();
    Some(match kind {
        Kind::Internal => group.add(
            Circle::new()
                .set("cx", x)
                .set("cy", y)
                .set("r", 3.8)
                .set("fill", "#fff")
                .set("stroke", "#666")
                .set("stroke-width", 1.6),
        ),
        Kind::Sent => group.add(Circle::new().set("cx", x).set("cy", y).set("r", 4.4).set("fill", "#1f6fb4")),
        Kind::Processed => group.add(diamond(x, y, 5.4, "#2e8b3a")),
        Kind::Stopped => group.add(
            Line::new()
                .set("x1", x)
                .set("x2", x)
                .set("y1", y - 11.0)
                .set("y2", y + 11.0)
                .set("stroke", "#222")
                .set("stroke-width", 2.6),
        ),
        Kind::Unprocessed | Kind::Lost | Kind::Held => return None,
        Kind::Crashed => {
            let data = Data::new()
                .move_to((x - 6.0, y - 6.0))
                .line_to((x + 6.0, y + 6.0))
                .move_to((x + 6.0, y - 6.0))
                .line_to((x - 6.0, y + 6.0));
            group.add(Path::new().set("d", data).set("stroke", "#c0392b").set("stroke-width", 2.6).set("fill", "none"))
        }
        Kind::Restarted => group.add(
            Line::new()
                .set("x1", x)
                .set("x2", x)
                .set("y1", y - 11.0)
                .set("y2", y + 11.0)
                .set("stroke", "#c0392b")
                .set("stroke-width", 2.6),
        ),
        Kind::Behind | Kind::ClockChanged => group.add(
            Line::new()
                .set("x1", x)
                .set("x2", x)
                .set("y1", y - 8.0)
                .set("y2", y + 8.0)
                .set("stroke", if kind == Kind::Behind { "#d35400" } else { "#8e44ad" })
                .set("stroke-width", 2.0),
        ),
        Kind::Initialized | Kind::Connected | Kind::Disconnected => group.add(
            Line::new()
                .set("x1", x)
                .set("x2", x)
                .set("y1", y - 5.0)
                .set("y2", y + 5.0)
                .set("stroke", "#999")
                .set("stroke-width", 1.5),
        ),
    })
}

fn diamond(x: f64, y: f64, r: f64, fill: &str) -> Path {
    let data = Data::new().move_to((x, y - r)).line_to((x + r, y)).line_to((x, y + r)).line_to((x - r, y)).close();
    Path::new().set("d", data).set("fill", fill)
}

fn definitions(height: f64) -> Definitions {
    let head = |id: &str, color: &str| {
        Marker::new()
            .set("id", id)
            .set("viewBox", (0, 0, 10, 10))
            .set("refX", 14)
            .set("refY", 5)
            .set("markerWidth", 7)
            .set("markerHeight", 7)
            .set("orient", "auto-start-reverse")
            .add(Path::new().set("d", "M 0 0 L 10 5 L 0 10 z").set("fill", color.to_string()))
    };
    Definitions::new().add(head("head", "#555")).add(head("head-red", "#c0392b")).add(
        ClipPath::new().set("id", "plot").add(
            Rectangle::new()
                .set("x", GUTTER - 6.0)
                .set("y", 0)
                .set("width", WIDTH - GUTTER - RIGHT + 12.0)
                .set("height", height),
        ),
    )
}

/// Whether a message of this status never arrived (its line ends in a cross).
fn never_arrived(status: MessageStatus) -> bool {
    matches!(status, MessageStatus::Lost | MessageStatus::Crashed | MessageStatus::Missing | MessageStatus::Held)
}

/// One item of the legend: a mark and what it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    /// An event's mark.
    Event(Kind),
    /// A processed message's arrow.
    Message,
    /// An unprocessed message's dashed line.
    Unprocessed,
    /// A message that never arrived: its line ends in a cross.
    NeverArrived,
}

/// The legend's items for a window that shows `kinds` of events and
/// draws `lines` (the status of each message drawn): the ticks and
/// processed messages always, then each other mark the window holds.
fn legend_items(kinds: &[Kind], lines: &[MessageStatus]) -> Vec<Item> {
    let mut items =
        vec![Item::Event(Kind::Internal), Item::Event(Kind::Sent), Item::Event(Kind::Processed), Item::Message];
    if lines.contains(&MessageStatus::Unprocessed) {
        items.push(Item::Unprocessed);
    }
    if lines.iter().any(|&status| never_arrived(status)) {
        items.push(Item::NeverArrived);
    }
    for kind in [Kind::Crashed, Kind::Restarted, Kind::Behind, Kind::ClockChanged, Kind::Connected, Kind::Stopped] {
        let lifecycle = kind == Kind::Connected
            && kinds.iter().any(|k| matches!(k, Kind::Initialized | Kind::Connected | Kind::Disconnected));
        if kinds.contains(&kind) || lifecycle {
            items.push(Item::Event(kind));
        }
    }
    items
}

/// What an item says, and the width it takes.
fn item_label(item: Item) -> (&'static str, f64) {
    match item {
        Item::Event(Kind::Internal) => ("internal", 90.0),
        Item::Event(Kind::Sent) => ("send", 70.0),
        Item::Event(Kind::Processed) => ("processed", 105.0),
        Item::Message => ("message", 95.0),
        Item::Unprocessed => ("unprocessed (ends at Stopped)", 215.0),
        Item::NeverArrived => ("never arrived (lost, held, crashed, missing)", 300.0),
        Item::Event(Kind::Crashed) => ("crash", 70.0),
        Item::Event(Kind::Restarted) => ("restart", 80.0),
        Item::Event(Kind::Behind) => ("behind schedule", 135.0),
        Item::Event(Kind::ClockChanged) => ("clock changed", 125.0),
        Item::Event(Kind::Stopped) => ("Stopped", 80.0),
        Item::Event(_) => ("start, connection", 145.0),
    }
}

/// Each item's place: its x and its row, rows filled left to right.
fn legend_layout(items: &[Item]) -> Vec<(f64, usize)> {
    let mut places = Vec::with_capacity(items.len());
    let (mut x, mut row) = (GUTTER, 0);
    for &item in items {
        let (_, width) = item_label(item);
        if x + width > WIDTH - RIGHT && x > GUTTER {
            (x, row) = (GUTTER, row + 1);
        }
        places.push((x, row));
        x += width;
    }
    places
}

fn legend(items: &[Item], top: f64) -> Group {
    let mut group = Group::new().set("font-size", 12).set("fill", "#333");
    for (&item, &(x, row)) in items.iter().zip(&legend_layout(items)) {
        let y = top + LEGEND_ROW * row as f64;
        let line = |color: &str| {
            Line::new()
                .set("x1", x - 6.0)
                .set("x2", x + 10.0)
                .set("y1", y)
                .set("y2", y)
                .set("stroke", color.to_string())
        };
        let shape = match item {
            Item::Event(kind) => mark(kind, x + 4.0, y).unwrap_or_default(),
            Item::Message => Group::new().add(line("#555").set("marker-end", "url(#head)")),
            Item::Unprocessed => Group::new().add(line("#c0392b").set("stroke-dasharray", "4 3")),
            Item::NeverArrived => {
                let cross = Data::new()
                    .move_to((x + 6.0, y - 5.0))
                    .line_to((x + 16.0, y + 5.0))
                    .move_to((x + 16.0, y - 5.0))
                    .line_to((x + 6.0, y + 5.0));
                Group::new().add(line("#c0392b").set("x2", x + 11.0)).add(
                    Path::new().set("d", cross).set("stroke", "#c0392b").set("stroke-width", 2).set("fill", "none"),
                )
            }
        };
        let (label, _) = item_label(item);
        let text_x = if item == Item::NeverArrived { x + 20.0 } else { x + 14.0 };
        group = group.add(shape).add(Text::new(label).set("x", text_x).set("y", y + 4.0));
    }
    group
}

/// Ticks at 1, 2 or 5 times a power of ten.
fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let raw = (hi - lo) / count as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|&s| s >= raw).unwrap_or(raw);
    let mut out = Vec::new();
    let mut value = (lo / step).ceil() * step;
    while value <= hi + step * 1e-9 {
        out.push(value);
        value += step;
    }
    out
}

/// A number of seconds without trailing zeros.
fn trim(value: f64) -> String {
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".into() } else { text.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legend_names_the_marks_the_window_holds_in_rows_that_fit() {
        let plain =
            legend_items(&[Kind::Internal, Kind::Sent, Kind::Processed, Kind::Stopped], &[MessageStatus::Processed]);
        assert!(!plain.contains(&Item::Event(Kind::Crashed)) && !plain.contains(&Item::NeverArrived));
        assert_eq!(legend_layout(&plain).last().map(|&(_, row)| row), Some(0), "one row");
        // A window in the middle of a run: no Unprocessed line of its own,
        // but dashed lines of messages that end at the run's end cross it.
        let kinds = [Kind::Sent, Kind::Crashed, Kind::Restarted, Kind::Behind, Kind::ClockChanged];
        let faulted = legend_items(&kinds, &[MessageStatus::Unprocessed, MessageStatus::Lost]);
        for item in [Kind::Crashed, Kind::Restarted, Kind::Behind, Kind::ClockChanged].map(Item::Event) {
            assert!(faulted.contains(&item), "{item:?} in {faulted:?}");
        }
        assert!(faulted.contains(&Item::NeverArrived) && faulted.contains(&Item::Unprocessed));
        let places = legend_layout(&faulted);
        assert!(places.last().unwrap().1 >= 1, "wrapped: {places:?}");
        for (&item, &(x, _)) in faulted.iter().zip(&places) {
            assert!(x + item_label(item).1 <= WIDTH - RIGHT, "{item:?} at {x} runs past the edge");
        }
    }

    #[test]
    fn ticks_and_numbers_read_well() {
        assert_eq!(nice_ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(trim(2.5), "2.5");
        assert_eq!(trim(3.0), "3");
        assert_eq!(trim(-0.0), "0");
    }
}
