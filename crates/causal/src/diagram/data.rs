//! The diagram's data: a JSON header and two compressed binary blobs.
//!
//! Events are numbered machine by machine (machine 1's events, then machine
//! 2's, …): the page's global index of event `m<id>e<k>` is the sum of the
//! earlier machines' counts plus `k - 1`. Integer columns are written as
//! LEB128 varints, signed ones zigzag-encoded, and most as the difference
//! from the value before, so that zlib shrinks them to a few bits each.
//!
//! - **draw** (decoded when the page opens): per event its kind byte (bit 7
//!   set on the second line of a reference double send), its true time in
//!   microseconds since the origin, its Lamport clock; then per message its
//!   send, recipient, receive and status.
//! - **detail**, in chunks of [`DETAIL_CHUNK`] events, each decoded when an
//!   event of it is first selected: per event its line number, the length
//!   of its line, queue length, vector clock (sparse changes), HLC and
//!   physical clock; then the events' log lines.
//!
//! Each is a zlib stream, which the browser's `DecompressionStream("deflate")`
//! reads natively.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use serde::Serialize;

use crate::graph::{Link, MessageStatus, RunGraph};

/// The header the page reads first (the `meta` JSON).
#[derive(Clone, Debug, Serialize)]
pub struct Meta {
    /// The data format's version.
    pub version: u32,
    /// `experiment / run_<k>`.
    pub title: String,
    /// `real`, `sim`, or `unknown` without a manifest.
    pub runtime: String,
    /// The suite seed, from the manifest.
    pub seed: Option<u64>,
    /// The origin of the time axis, microseconds since the Unix epoch: the
    /// run's start (manifest), else its first tick.
    pub origin_us: i64,
    /// Whether times are whole seconds (the reference's logs).
    pub whole_seconds: bool,
    /// The machines, in order.
    pub machines: Vec<MetaMachine>,
    /// Events (log lines read).
    pub n_events: u64,
    /// Ticks among them.
    pub n_ticks: u64,
    /// Messages, one per recipient of a send.
    pub n_messages: u64,
    /// Messages by status: processed, unprocessed, lost, unknown.
    pub messages: MetaMessages,
    /// Components of the logged vector clocks (0: none kept).
    pub vector_width: usize,
    /// Events per detail chunk.
    pub detail_chunk: usize,
    /// Whether the lines carry an HLC.
    pub hlc: bool,
    /// Whether the lines carry a physical clock.
    pub physical: bool,
    /// Shaded windows (faults), if any: none are recorded yet.
    pub faults: Vec<FaultWindow>,
    /// Things a reader of the diagram should know (one sentence each).
    pub notes: Vec<String>,
}

/// One machine in the header.
#[derive(Clone, Debug, Serialize)]
pub struct MetaMachine {
    /// Its id.
    pub id: u32,
    /// Its rate.
    pub rate: Option<u32>,
    /// Its events.
    pub n_events: u64,
}

/// The messages' counts by status.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct MetaMessages {
    /// Processed.
    pub processed: u64,
    /// Left unprocessed at the end.
    pub unprocessed: u64,
    /// Never received.
    pub lost: u64,
    /// Sent to a machine whose log names no sender.
    pub unknown: u64,
}

/// A window of time to shade: a fault, on one machine or on all.
#[derive(Clone, Debug, Serialize)]
pub struct FaultWindow {
    /// The machine, or `None` for every machine.
    pub machine: Option<u32>,
    /// Start, microseconds since the Unix epoch.
    pub from_us: i64,
    /// End, microseconds since the Unix epoch.
    pub to_us: i64,
    /// What it was.
    pub label: String,
}

/// The status byte of a message in the data.
pub fn status_code(status: MessageStatus) -> u64 {
    match status {
        MessageStatus::Processed => 0,
        MessageStatus::Unprocessed => 1,
        MessageStatus::Lost => 2,
        MessageStatus::Unknown => 3,
    }
}

/// A growing varint stream.
#[derive(Debug, Default)]
struct Varints(Vec<u8>);

impl Varints {
    fn unsigned(&mut self, mut value: u64) {
        // JavaScript numbers are exact to 2^53: larger values are clamped
        // (no log comes near: a Lamport clock that large takes centuries).
        value = value.min((1 << 53) - 1);
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn signed(&mut self, value: i64) {
        let clamped = value.clamp(-(1 << 52), (1 << 52) - 1);
        self.unsigned(((clamped << 1) ^ (clamped >> 63)) as u64);
    }
}

/// The global index of each machine's first event.
pub fn machine_offsets(graph: &RunGraph) -> Vec<u64> {
    let mut offsets = Vec::with_capacity(graph.machines.len());
    let mut next = 0u64;
    for machine in &graph.machines {
        offsets.push(next);
        next += machine.rows.len() as u64;
    }
    offsets
}

/// The draw blob, uncompressed.
pub fn draw_bytes(graph: &RunGraph, origin_us: i64) -> Vec<u8> {
    let n_events = graph.n_events() as usize;
    let mut kinds = Vec::with_capacity(n_events);
    let mut times = Varints::default();
    let mut lamports = Varints::default();
    let (mut last_time, mut last_lamport) = (0i64, 0i64);
    for machine in &graph.machines {
        // The page finds events by binary search, so each machine's times
        // and clocks must not go back: a damaged log's are held level.
        let (mut floor_time, mut floor_lamport) = (i64::MIN, 0u64);
        for row in &machine.rows {
            kinds.push(row.kind as u8 | if row.kind.is_tick() && !row.tick { 0x80 } else { 0 });
            let time = (row.time_us - origin_us).max(floor_time);
            floor_time = time;
            times.signed(time - last_time);
            last_time = time;
            let lamport = row.lamport.max(floor_lamport);
            floor_lamport = lamport;
            let lamport = lamport.min((1 << 52) - 1) as i64;
            lamports.signed(lamport - last_lamport);
            last_lamport = lamport;
        }
    }
    let offsets = machine_offsets(graph);
    let global = |at: crate::EventRef| offsets[at.machine as usize] + u64::from(at.pos);
    let mut messages = Varints::default();
    let mut last_send = 0i64;
    for message in &graph.messages {
        let send = global(message.send) as i64;
        messages.signed(send - last_send);
        last_send = send;
        let to = graph.machine_idx(message.to).unwrap_or(graph.machines.len());
        messages.unsigned(to as u64);
        messages.unsigned(message.receive.map_or(0, |at| global(at) + 1));
        messages.unsigned(status_code(message.status));
    }
    let mut out = kinds;
    out.extend(times.0);
    out.extend(lamports.0);
    out.extend(messages.0);
    out
}

/// How many events a detail chunk holds: a selection decodes one chunk,
/// so it stays quick however long the run.
pub const DETAIL_CHUNK: usize = 16_384;

/// The lines of every event, in the page's order: the bytes, and where each
/// event's line ends (`ends[g]` is one past its last byte).
#[derive(Clone, Debug, Default)]
pub struct EventLines {
    /// The lines, one after the other.
    pub bytes: Vec<u8>,
    /// Where each ends.
    pub ends: Vec<usize>,
}

/// The detail chunks, uncompressed: for events `k * DETAIL_CHUNK` on, their
/// columns, then their lines. Differences start afresh in each chunk (and at
/// each machine's first event in it), so a chunk decodes alone.
pub fn detail_chunks(graph: &RunGraph, lines: &EventLines) -> Vec<Vec<u8>> {
    // Each event's place, in the page's order.
    let events: Vec<crate::EventRef> = graph
        .machines
        .iter()
        .enumerate()
        .flat_map(|(machine, m)| {
            (0..m.rows.len()).map(move |pos| crate::EventRef { machine: machine as u32, pos: pos as u32 })
        })
        .collect();
    let mut chunks = Vec::new();
    for (chunk_idx, chunk) in events.chunks(DETAIL_CHUNK).enumerate() {
        let first = chunk_idx * DETAIL_CHUNK;
        let mut out = Varints::default();
        let mut last = 0i64;
        for &at in chunk {
            let line_no = graph.row(at).line_no as i64;
            out.signed(line_no - last);
            last = line_no;
        }
        for (offset, _) in chunk.iter().enumerate() {
            let g = first + offset;
            let start = if g == 0 { 0 } else { lines.ends[g - 1] };
            out.unsigned((lines.ends[g] - start) as u64);
        }
        for &at in chunk {
            out.unsigned(graph.row(at).queue_length);
        }
        if graph.width > 0 {
            // Per event: how many components changed since the previous
            // event of its machine in this chunk, then each as (component,
            // difference).
            let mut previous: Option<(u32, &[u64])> = None;
            for &at in chunk {
                let vector = graph.vector(at).expect("a run with vectors has one on every line");
                let before = match previous {
                    Some((machine, before)) if machine == at.machine => before,
                    _ => &[][..],
                };
                let value = |k: usize| before.get(k).copied().unwrap_or(0);
                let changed: Vec<usize> = (0..graph.width).filter(|&k| vector[k] != value(k)).collect();
                out.unsigned(changed.len() as u64);
                for k in changed {
                    out.unsigned(k as u64);
                    out.signed(vector[k] as i64 - value(k) as i64);
                }
                previous = Some((at.machine, vector));
            }
        }
        let mut last = 0i64;
        for &at in chunk {
            match graph.hlc(at) {
                Some(hlc) => {
                    out.unsigned(1 + hlc.c);
                    out.signed(hlc.l_us - last);
                    last = hlc.l_us;
                }
                None => out.unsigned(0),
            }
        }
        let mut last = 0i64;
        for &at in chunk {
            match graph.physical_us(at) {
                Some(pt) => {
                    out.unsigned(1);
                    out.signed(pt - last);
                    last = pt;
                }
                None => out.unsigned(0),
            }
        }
        let start = if first == 0 { 0 } else { lines.ends[first - 1] };
        let end = lines.ends[first + chunk.len() - 1];
        let mut bytes = out.0;
        bytes.extend_from_slice(&lines.bytes[start..end]);
        chunks.push(bytes);
    }
    chunks
}

/// zlib-compresses `bytes`.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    // Level 6 (zlib's default) shrinks these columns almost as well as 9
    // at a third of the time.
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::new(6));
    encoder.write_all(bytes).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

/// The messages' counts in the header's form.
pub fn message_counts(graph: &RunGraph) -> MetaMessages {
    let counts = graph.message_counts();
    let get = |status| counts.get(&status).copied().unwrap_or(0);
    MetaMessages {
        processed: get(MessageStatus::Processed),
        unprocessed: get(MessageStatus::Unprocessed),
        lost: get(MessageStatus::Lost),
        unknown: get(MessageStatus::Unknown),
    }
}

/// Whether any receive of the run names no sender.
pub fn has_unnamed_receives(graph: &RunGraph) -> bool {
    graph.machines.iter().flat_map(|m| &m.rows).any(|row| row.link == Link::Unnamed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_the_way_the_page_reads_them() {
        let mut out = Varints::default();
        for value in [0i64, 1, -1, 63, -64, 64, 1_000_000, -1_000_000, 1 << 40] {
            out.signed(value);
        }
        out.unsigned(300);
        // The page's decoder, in Rust: LEB128, then zigzag by arithmetic.
        let mut bytes = out.0.iter();
        let mut read = || {
            let (mut value, mut scale) = (0u64, 1u64);
            for &byte in bytes.by_ref() {
                value += u64::from(byte & 0x7f) * scale;
                scale *= 128;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            value
        };
        let unzig = |v: u64| if v % 2 == 0 { (v / 2) as i64 } else { -(v.div_ceil(2) as i64) };
        let decoded: Vec<i64> = (0..9).map(|_| unzig(read())).collect();
        assert_eq!(decoded, [0, 1, -1, 63, -64, 64, 1_000_000, -1_000_000, 1 << 40]);
        assert_eq!(read(), 300);
    }
}
