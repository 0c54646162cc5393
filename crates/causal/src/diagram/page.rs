//! A run's page written as its events stream by ([`PageWriter`]): by
//! [`super::write_page`], which reads the run for it, or by a caller that
//! reads the run anyway (the analysis) and hands each event on, so that the
//! logs are parsed once for both.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use clocklab_log::{Diagnostics, Event, Incarnations, MessageId, Pairing, RunEvent, TickCounter, crash_took};
use clocklab_model::MachineId;

use super::{PAGE, PageError, SCRIPT, STYLE, data, describe, fill, manifest_start_us};
use crate::graph::Kind;
use crate::source::{RawLines, RunSource};

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

/// A chunk's element id and bytes, on their way to or from the compressor.
type Chunk = (String, Vec<u8>);

/// The page of one run, written to `out` as the run's events are given to
/// it in the run's order ([`PageWriter::push`]), then finished
/// ([`PageWriter::finish`]). It reads each log's lines once more, as text,
/// for the events' detail; memory holds the compressed draw columns and,
/// per machine, one detail chunk being filled, never a whole log.
pub struct PageWriter<'a, W: Write> {
    source: &'a RunSource,
    /// The output (taken back by [`PageWriter::finish`]).
    out: Option<W>,
    raw: RawLines,
    ids: Vec<MachineId>,
    machines: Vec<MachineStream>,
    meta: data::Meta,
    messages: data::Deflated,
    receives: data::Deflated,
    fates: data::Deflated,
    /// Messages sent and not yet received, by name: their number in
    /// `messages` and when they were sent.
    pending: BTreeMap<MessageId, (u64, i64)>,
    unnamed: Vec<MachineId>,
    width: Option<usize>,
    first_tick_us: Option<i64>,
    record: data::Varints,
    /// Chunks written so far (they come back from the compressor in any order).
    written: usize,
    /// Detail chunks are compressed on a thread of their own while this one
    /// goes on; at most a few wait in between.
    to_compress: Option<SyncSender<Chunk>>,
    compressed: Receiver<Chunk>,
    compressor: Option<JoinHandle<()>>,
}

impl<W: Write> std::fmt::Debug for PageWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageWriter").field("run", &self.source.label).field("events", &self.meta.n_events).finish()
    }
}

impl<W: Write> Drop for PageWriter<'_, W> {
    fn drop(&mut self) {
        // The compressor ends when its input does.
        self.to_compress = None;
        if let Some(compressor) = self.compressor.take() {
            let _ = compressor.join();
        }
    }
}

fn hung_up() -> PageError {
    PageError::Write(std::io::Error::other("the compressing thread stopped"))
}

impl<'a, W: Write> PageWriter<'a, W> {
    /// Starts the page of the run in `source`, whose events will come from
    /// the logs of `machines` (in id order), and writes its head.
    pub fn new(source: &'a RunSource, mut out: W, machines: &[MachineId]) -> Result<PageWriter<'a, W>, PageError> {
        let (before_data, _) = PAGE.split_once("@@DATA@@").expect("the page has a data marker");
        out.write_all(fill(before_data, &[("@@CSS@@", STYLE)]).as_bytes())?;
        let raw = RawLines::open(source)?;
        let (to_compress, chunks_in) = std::sync::mpsc::sync_channel::<Chunk>(4);
        let (compressed_out, compressed) = std::sync::mpsc::channel::<Chunk>();
        let compressor = std::thread::spawn(move || {
            let mut compressor = data::DetailCompressor::default();
            for (id, bytes) in chunks_in {
                if compressed_out.send((id, compressor.compress(&bytes))).is_err() {
                    break;
                }
            }
        });
        Ok(PageWriter {
            source,
            out: Some(out),
            raw,
            ids: machines.to_vec(),
            machines: machines.iter().map(|&id| MachineStream { id, ..Default::default() }).collect(),
            meta: data::Meta {
                version: super::VERSION,
                detail_chunk: data::DETAIL_CHUNK,
                whole_seconds: true,
                ..Default::default()
            },
            // Level 1: these columns come out no larger than at 6, in a
            // fifth of the time (BENCHMARKS.md).
            messages: data::Deflated::with_level(1),
            receives: data::Deflated::with_level(1),
            fates: data::Deflated::with_level(1),
            pending: BTreeMap::new(),
            unnamed: Vec::new(),
            width: None,
            first_tick_us: None,
            record: data::Varints::default(),
            written: 0,
            to_compress: Some(to_compress),
            compressed,
            compressor: Some(compressor),
        })
    }

    fn index_of(&self, id: MachineId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// Sends a full chunk to the compressor, and writes those it has done.
    fn send_chunk(&mut self, id: String, bytes: Vec<u8>) -> Result<(), PageError> {
        self.to_compress.as_ref().ok_or_else(hung_up)?.send((id, bytes)).map_err(|_| hung_up())?;
        while let Ok((id, bytes)) = self.compressed.try_recv() {
            data::write_element(self.out.as_mut().expect("the output is there until the end"), &id, &bytes)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Adds the run's next event.
    pub fn push(&mut self, event: &RunEvent) -> Result<(), PageError> {
        let j = self.index_of(event.id.machine).expect("events come from the run's machines");
        let pos = event.id.index - 1;
        let line = &event.record;
        // The first line decides whether the run keeps vector clocks.
        let width = *self.width.get_or_insert_with(|| line.vector_clock.as_ref().map_or(0, Vec::len));
        let meta = &mut self.meta;
        if meta.n_events == 0 {
            meta.time_base_us = line.time_us;
        }
        meta.n_events += 1;
        meta.whole_seconds &= line.time_us % 1_000_000 == 0;
        let machine = &mut self.machines[j];
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
            self.first_tick_us.get_or_insert(line.time_us);
        }
        let kind = Kind::of(&line.event) as u8 | if line.event.is_tick() && !tick { 0x80 } else { 0 };
        let time = (line.time_us - meta.time_base_us).max(machine.last_time);
        let lamport = (line.logical_clock.min((1 << 52) - 1) as i64).max(machine.last_lamport);
        let record = &mut self.record;
        record.0.clear();
        record.0.push(kind);
        record.signed(time - machine.last_time);
        record.signed(lamport - machine.last_lamport);
        machine.draw.push(&record.0);
        (machine.last_time, machine.last_lamport) = (time, lamport);
        // The detail: the line and every clock it carries.
        let text = self.raw.line(event.id.machine, event.line_no).unwrap_or_default();
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
            let bytes = machine.chunk.take_bytes(width);
            machine.n_chunks += 1;
            self.send_chunk(id, bytes)?;
        }
        self.message(event, j, pos);
        Ok(())
    }

    /// Messages: numbered at their send, tied to their receive.
    fn message(&mut self, event: &RunEvent, j: usize, pos: u64) {
        let line = &event.record;
        let (meta, record) = (&mut self.meta, &mut self.record);
        match (&line.event, &event.pairing) {
            (Event::Sent { to }, _) => {
                for &peer in to {
                    record.0.clear();
                    record.unsigned(j as u64);
                    record.unsigned(pos);
                    let to = self.ids.binary_search(&peer).unwrap_or(self.ids.len());
                    record.unsigned(to as u64);
                    self.messages.push(&record.0);
                    if !self.unnamed.contains(&peer) {
                        self.pending.insert(MessageId { send: event.id, to: peer }, (meta.n_messages, line.time_us));
                    }
                    meta.n_messages += 1;
                }
            }
            (Event::Processed { .. } | Event::Unprocessed { .. }, Pairing::Paired(sent)) => {
                if let Some((number, _)) = self.pending.remove(&sent.id) {
                    let processed = matches!(line.event, Event::Processed { .. });
                    record.0.clear();
                    record.unsigned(number);
                    record.unsigned(j as u64);
                    record.unsigned(pos);
                    record.unsigned(u64::from(!processed));
                    self.receives.push(&record.0);
                    meta.n_receives += 1;
                    if processed {
                        meta.messages.processed += 1;
                    } else {
                        meta.messages.unprocessed += 1;
                    }
                }
            }
            (Event::Lost { .. } | Event::Held { .. }, Pairing::Paired(sent)) => {
                if let Some((number, _)) = self.pending.remove(&sent.id) {
                    let held = matches!(line.event, Event::Held { .. });
                    record.0.clear();
                    record.unsigned(number);
                    record.unsigned(if held { data::FATE_HELD } else { data::FATE_LOST });
                    self.fates.push(&record.0);
                    meta.n_fates += 1;
                    if held {
                        meta.messages.held += 1;
                    } else {
                        meta.messages.lost += 1;
                    }
                }
            }
            (_, Pairing::Unnamed) if !self.unnamed.contains(&event.id.machine) => {
                // Messages to this machine can never pair: stop keeping them.
                self.unnamed.push(event.id.machine);
                self.pending.retain(|message, _| message.to != event.id.machine);
            }
            _ => {}
        }
    }

    /// Writes the rest of the page, once every event was pushed; `skipped`
    /// is what the readers of the logs skipped, per machine. Returns the
    /// numbers of events and messages, and the output.
    pub fn finish(mut self, skipped: &BTreeMap<MachineId, Diagnostics>) -> Result<(u64, u64, W), PageError> {
        // What the logs say of the messages no one received: a crash took them,
        // or nothing explains them.
        let incarnations = |id: MachineId| self.ids.binary_search(&id).ok().map(|j| &self.machines[j].incarnations);
        let mut taken: Vec<u64> = self
            .pending
            .iter()
            .filter(|&(message, &(_, sent_us))| {
                crash_took(incarnations(message.send.machine), incarnations(message.to), message.to, sent_us)
            })
            .map(|(_, &(number, _))| number)
            .collect();
        taken.sort_unstable();
        let meta = &mut self.meta;
        for number in taken {
            self.record.0.clear();
            self.record.unsigned(number);
            self.record.unsigned(data::FATE_CRASHED);
            self.fates.push(&self.record.0);
            meta.n_fates += 1;
            meta.messages.crashed += 1;
        }
        meta.messages.missing = self.pending.len() as u64 - meta.messages.crashed;
        meta.messages.unknown = meta.n_messages
            - meta.messages.processed
            - meta.messages.unprocessed
            - meta.messages.lost
            - meta.messages.crashed
            - meta.messages.missing;
        meta.vector_width = self.width.unwrap_or(0);
        let width = meta.vector_width;
        for j in 0..self.machines.len() {
            let machine = &mut self.machines[j];
            if machine.chunk.len > 0 {
                let id = format!("detail-{j}-{}", machine.n_chunks);
                let bytes = machine.chunk.take_bytes(width);
                machine.n_chunks += 1;
                self.send_chunk(id, bytes)?;
            }
        }
        let n_chunks: usize = self.machines.iter().map(|m| m.n_chunks).sum();
        while self.written < n_chunks {
            // Everything sent is compressed and comes back, in some order.
            let (id, bytes) = self.compressed.recv().map_err(|_| hung_up())?;
            data::write_element(self.out.as_mut().expect("the output is there until the end"), &id, &bytes)?;
            self.written += 1;
        }
        let out = self.out.as_mut().expect("the output is there until the end");
        for (j, machine) in self.machines.iter_mut().enumerate() {
            data::write_element(out, &format!("draw-{j}"), &std::mem::take(&mut machine.draw).finish())?;
        }
        data::write_element(out, "messages", &std::mem::take(&mut self.messages).finish())?;
        data::write_element(out, "receives", &std::mem::take(&mut self.receives).finish())?;
        data::write_element(out, "fates", &std::mem::take(&mut self.fates).finish())?;
        let meta = &mut self.meta;
        meta.origin_us = manifest_start_us(self.source).or(self.first_tick_us).unwrap_or(meta.time_base_us);
        meta.machines =
            self.machines.iter().map(|m| data::MetaMachine { id: m.id, rate: m.rate, n_events: m.n_events }).collect();
        meta.unnamed_receivers = self.unnamed.iter().filter_map(|id| self.ids.binary_search(id).ok()).collect();
        describe(self.source, meta, skipped, !self.unnamed.is_empty());
        // `<` never appears raw inside the script element, so no text can close it.
        let json = serde_json::to_string(&*meta).expect("a header always serialises").replace('<', "\\u003c");
        writeln!(out, "<script type=\"application/json\" id=\"meta\">{json}</script>")?;
        let (_, after_data) = PAGE.split_once("@@DATA@@").expect("the page has a data marker");
        out.write_all(fill(after_data, &[("@@JS@@", SCRIPT)]).as_bytes())?;
        let counts = (meta.n_events, meta.n_messages);
        // The compressor is done: its input ends here.
        self.to_compress = None;
        if let Some(compressor) = self.compressor.take() {
            compressor.join().map_err(|_| hung_up())?;
        }
        let out = self.out.take().expect("the output is there until the end");
        Ok((counts.0, counts.1, out))
    }
}
