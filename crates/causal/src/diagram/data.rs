//! The diagram's data, written in one streaming pass over a run's events:
//! memory holds the compressed output and, per machine, one chunk of lines
//! being filled, never a whole log.
//!
//! Everything is zlib streams (the browser's `DecompressionStream("deflate")`
//! reads them natively) in base64, one `<script type="application/octet-stream">`
//! element each. Integer columns are LEB128 varints, signed ones
//! zigzag-encoded, most as the difference from the value before, so that
//! zlib shrinks them to a few bits each. Events are addressed by (machine
//! position, position on the machine), both from 0.
//!
//! - `draw-<j>`, per machine (decoded when the page opens): per event its
//!   kind byte (bit 7 set on the second line of a reference double send),
//!   its true time (µs, from [`Meta::time_base_us`]) and its Lamport clock,
//!   as differences from the machine's previous event.
//! - `messages` (decoded when the page opens): per message, in the order of
//!   their sends, the sender's position, the send's position on it and the
//!   recipient's position (the number of machines if it has no log).
//! - `receives`: per received message, in the order of the receives, the
//!   message's number (its place in `messages`), the receiver's position, the
//!   receive's position on it and its status (0 processed, 1 unprocessed).
//! - `fates`: per message no log received whose fate the logs tell, its
//!   number and its fate: [`FATE_LOST`] (the fault plan lost it: its
//!   sender's `Lost` line), [`FATE_HELD`] (the plan still held it at the
//!   end: its sender's `Held` line) or [`FATE_CRASHED`] (a crash took it, see
//!   `clocklab_log::incarnations`). Any other message never received is
//!   missing, or unknown when its receiver's log names no senders (listed in
//!   [`Meta::unnamed_receivers`]).
//! - `detail-<j>-<k>`, per machine and chunk of [`DETAIL_CHUNK`] of its events
//!   (decoded when one of them is first selected): per event its line
//!   number, queue length, vector clock (the components that changed since
//!   the previous event of the chunk), HLC and physical clock (microseconds
//!   since the Unix epoch, as exact 64-bit differences, [`Varints::exact`],
//!   which the page reads as `BigInt`s); then the events' log lines, whole,
//!   as templates and numbers ([`super::text`]).

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use serde::Serialize;

/// Events per detail chunk: a selection decodes one chunk, and the writer
/// holds at most one chunk per machine.
pub const DETAIL_CHUNK: usize = 4_096;

/// In `fates`: the fault plan lost the message (the page's status 2).
pub const FATE_LOST: u64 = 2;
/// In `fates`: a crash took the message (the page's status 3).
pub const FATE_CRASHED: u64 = 3;
/// In `fates`: the fault plan still held the message at the end (the page's status 6).
pub const FATE_HELD: u64 = 6;

/// A 64-bit number as JSON text: a browser reads every JSON number as a
/// double, exact only up to 2^53, and a seed or an instant in microseconds
/// can be larger. The page turns these into `BigInt`s where it counts with
/// them.
mod exact {
    use serde::Serializer;

    pub fn serialize<T: std::fmt::Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub mod option {
        use serde::Serializer;

        pub fn serialize<T: std::fmt::Display, S: Serializer>(
            value: &Option<T>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => serializer.collect_str(value),
                None => serializer.serialize_none(),
            }
        }
    }
}

/// The header the page reads (the `meta` JSON), written after the data.
/// Its 64-bit numbers that can pass 2^53 are strings (`exact`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Meta {
    /// The data format's version.
    pub version: u32,
    /// `experiment / run_<k>`.
    pub title: String,
    /// `real`, `sim`, or empty without a manifest.
    pub runtime: String,
    /// The suite seed, from the manifest.
    #[serde(with = "exact::option")]
    pub seed: Option<u64>,
    /// The origin of the time axis, microseconds since the Unix epoch: the
    /// run's start (manifest), else its first tick.
    #[serde(with = "exact")]
    pub origin_us: i64,
    /// What the `draw` times count from, microseconds since the Unix epoch.
    #[serde(with = "exact")]
    pub time_base_us: i64,
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
    /// Messages received (the `receives` records).
    pub n_receives: u64,
    /// Messages whose fate the logs tell though no one received them (the
    /// `fates` records).
    pub n_fates: u64,
    /// Messages by status.
    pub messages: MetaMessages,
    /// Positions of the machines whose logs name no senders.
    pub unnamed_receivers: Vec<usize>,
    /// Components of the logged vector clocks (0: none kept).
    pub vector_width: usize,
    /// Events per detail chunk.
    pub detail_chunk: usize,
    /// The fault plan's windows, shaded (from the manifest).
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
    /// Lost by the fault plan (the senders' `Lost` lines).
    pub lost: u64,
    /// Still held by the fault plan at the end (the senders' `Held` lines).
    pub held: u64,
    /// Taken by a crash.
    pub crashed: u64,
    /// Never received, and nothing in the logs explains it.
    pub missing: u64,
    /// Sent to a machine whose log names no sender.
    pub unknown: u64,
}

/// A window of time to shade: a fault, on one machine or on all.
#[derive(Clone, Debug, Serialize)]
pub struct FaultWindow {
    /// The machines it concerns (empty: every machine).
    pub machines: Vec<u32>,
    /// Start, microseconds since the Unix epoch.
    #[serde(with = "exact")]
    pub from_us: i64,
    /// End, microseconds since the Unix epoch.
    #[serde(with = "exact")]
    pub to_us: i64,
    /// What it was (`partition [1] | [2, 3], hold`).
    pub label: String,
}

/// A growing varint stream.
#[derive(Debug, Default)]
pub struct Varints(pub Vec<u8>);

impl Varints {
    /// Appends an unsigned value.
    pub fn unsigned(&mut self, mut value: u64) {
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

    /// Appends a signed value, zigzag-encoded.
    pub fn signed(&mut self, value: i64) {
        let clamped = value.clamp(-(1 << 52), (1 << 52) - 1);
        self.unsigned(((clamped << 1) ^ (clamped >> 63)) as u64);
    }

    /// Appends the difference `value − last` whole, zigzag-encoded modulo
    /// 2^64 (the page adds it back with 64-bit `BigInt` arithmetic): for
    /// instants, which a late calendar or an HLC's 0 puts beyond 2^53 apart.
    pub fn exact(&mut self, value: i64, last: i64) {
        let difference = value.wrapping_sub(last);
        let mut zigzag = ((difference << 1) ^ (difference >> 63)) as u64;
        loop {
            let byte = (zigzag & 0x7f) as u8;
            zigzag >>= 7;
            if zigzag == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
}

/// A zlib stream being written into memory.
///
/// Small writes are gathered first: the encoder works per call, and a call
/// per event costs more than the compression itself.
#[derive(Debug)]
pub struct Deflated {
    encoder: ZlibEncoder<Vec<u8>>,
    staged: Vec<u8>,
}

/// How many bytes are gathered before they go to the encoder.
const STAGED_BYTES: usize = 1 << 16;

impl Default for Deflated {
    fn default() -> Deflated {
        // Level 3: the draw columns are a small part of a page now that
        // the detail's lines are templates and numbers, and level 6 took
        // three times as long for columns a fifth smaller (BENCHMARKS.md).
        Deflated::with_level(3)
    }
}

impl Deflated {
    /// A stream at zlib's `level` (0 to 9).
    pub fn with_level(level: u32) -> Deflated {
        Deflated { encoder: ZlibEncoder::new(Vec::new(), Compression::new(level)), staged: Vec::new() }
    }

    /// Compresses `bytes` on.
    pub fn push(&mut self, bytes: &[u8]) {
        self.staged.extend_from_slice(bytes);
        if self.staged.len() >= STAGED_BYTES {
            self.encoder.write_all(&self.staged).expect("writing to memory cannot fail");
            self.staged.clear();
        }
    }

    /// The compressed stream.
    pub fn finish(mut self) -> Vec<u8> {
        self.encoder.write_all(&self.staged).expect("writing to memory cannot fail");
        self.encoder.finish().expect("writing to memory cannot fail")
    }
}

/// Writes one data element: `<script type="application/octet-stream" id=…>`
/// with `compressed` in base64.
pub fn write_element(out: &mut impl Write, id: &str, compressed: &[u8]) -> std::io::Result<()> {
    write!(out, "<script type=\"application/octet-stream\" id=\"{id}\">")?;
    {
        let mut encoder = base64::write::EncoderWriter::new(&mut *out, &base64::engine::general_purpose::STANDARD);
        encoder.write_all(compressed)?;
        encoder.finish()?;
    }
    out.write_all(b"</script>\n")
}

/// One detail chunk of one machine, being filled.
#[derive(Debug, Default)]
pub struct DetailChunk {
    /// Events in it so far.
    pub len: usize,
    line_nos: Varints,
    queues: Varints,
    vectors: Varints,
    hlc: Varints,
    physical: Varints,
    text: super::text::LineTexts,
    last_line_no: i64,
    last_vector: Vec<u64>,
    last_hlc_us: i64,
    last_physical_us: i64,
}

/// What the detail of one event is made of.
#[derive(Debug)]
pub struct EventDetail<'a> {
    /// Its line number.
    pub line_no: u64,
    /// Its line.
    pub line: &'a [u8],
    /// Its queue length.
    pub queue_length: u64,
    /// Its vector clock, when the run keeps them (`width` components; a line
    /// without one is given zeros).
    pub vector: Option<&'a [u64]>,
    /// Its HLC.
    pub hlc: Option<clocklab_model::HlcStamp>,
    /// Its physical clock.
    pub physical_us: Option<i64>,
}

impl DetailChunk {
    /// Adds one event.
    pub fn push(&mut self, event: &EventDetail, width: usize) {
        self.len += 1;
        self.line_nos.signed(event.line_no as i64 - self.last_line_no);
        self.last_line_no = event.line_no as i64;
        self.text.push(event.line);
        self.queues.unsigned(event.queue_length);
        if width > 0 {
            self.last_vector.resize(width, 0);
            // A line without a vector of the run's width counts as zeros.
            let vector = event.vector.filter(|v| v.len() == width);
            let entry = |k: usize| vector.map_or(0, |v| v[k]);
            let changed = (0..width).filter(|&k| entry(k) != self.last_vector[k]);
            self.vectors.unsigned(changed.count() as u64);
            for k in 0..width {
                let (value, last) = (entry(k), self.last_vector[k]);
                if value != last {
                    self.vectors.unsigned(k as u64);
                    self.vectors.signed(value as i64 - last as i64);
                    self.last_vector[k] = value;
                }
            }
        }
        match event.hlc {
            Some(hlc) => {
                self.hlc.unsigned(1 + hlc.c);
                self.hlc.exact(hlc.l_us, self.last_hlc_us);
                self.last_hlc_us = hlc.l_us;
            }
            None => self.hlc.unsigned(0),
        }
        match event.physical_us {
            Some(pt) => {
                self.physical.unsigned(1);
                self.physical.exact(pt, self.last_physical_us);
                self.last_physical_us = pt;
            }
            None => self.physical.unsigned(0),
        }
    }

    /// The chunk's bytes, uncompressed; it starts afresh.
    pub fn take_bytes(&mut self, width: usize) -> Vec<u8> {
        let chunk = std::mem::take(self);
        let mut bytes = Vec::with_capacity(chunk.line_nos.0.len() * 32);
        for part in [&chunk.line_nos, &chunk.queues] {
            bytes.extend_from_slice(&part.0);
        }
        if width > 0 {
            bytes.extend_from_slice(&chunk.vectors.0);
        }
        bytes.extend_from_slice(&chunk.hlc.0);
        bytes.extend_from_slice(&chunk.physical.0);
        chunk.text.write_to(&mut bytes);
        bytes
    }
}

/// Compresses detail chunks, at level 2: chunks are decoded one at a time
/// on a click, and compressing them is most of the cost of a page; level 3
/// made them a tenth smaller at half again the time (BENCHMARKS.md).
///
/// One compressor serves every chunk of a page: a fresh one allocates and
/// clears its window and tables (a third of a megabyte) per chunk, which
/// cost more than compressing a small chunk.
#[derive(Debug)]
pub struct DetailCompressor {
    encoder: ZlibEncoder<Vec<u8>>,
}

impl Default for DetailCompressor {
    fn default() -> DetailCompressor {
        DetailCompressor { encoder: ZlibEncoder::new(Vec::new(), Compression::new(DETAIL_LEVEL)) }
    }
}

impl DetailCompressor {
    /// `bytes` as a zlib stream of their own.
    pub fn compress(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.encoder.write_all(bytes).expect("writing to memory cannot fail");
        // Finishes the stream and starts the next one, in a buffer of about
        // the size the next chunk's will be.
        self.encoder.reset(Vec::with_capacity(bytes.len() / 4)).expect("writing to memory cannot fail")
    }
}

/// zlib's level for the detail chunks.
const DETAIL_LEVEL: u32 = 2;

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

    #[test]
    fn each_chunk_is_a_stream_of_its_own_whatever_came_before() {
        use std::io::Read as _;
        // Chunks that share text, so that a window kept from the chunk
        // before would show in the bytes.
        let chunks: Vec<Vec<u8>> = (0..4u32)
            .map(|k| {
                let line = format!("{k}> Event: Internal event | Logical Clock: {} | Queue Length: 0\n", k * 7);
                line.repeat(200 + 50 * k as usize).into_bytes()
            })
            .chain([Vec::new(), b"x".to_vec()])
            .collect();
        let mut shared = DetailCompressor::default();
        for chunk in &chunks {
            let compressed = shared.compress(chunk);
            assert_eq!(compressed, DetailCompressor::default().compress(chunk), "as from a fresh compressor");
            let mut decoded = Vec::new();
            flate2::read::ZlibDecoder::new(compressed.as_slice()).read_to_end(&mut decoded).unwrap();
            assert_eq!(&decoded, chunk);
        }
    }
}
