//! A machine's log read and parsed on a thread of its own, handed to the
//! merge in batches of lines.
//!
//! Parsing is about half of an analysis' work and the merge the other half;
//! with each log parsed beside the merge, a run keeps two cores busy, and so
//! does the last run of an experiment, which would otherwise run alone.
//! Memory stays bounded: at most [`BATCHES_AHEAD`] batches of
//! [`BATCH_LINES`] lines wait per log, and only runs of up to
//! [`MAX_PREFETCHED_LOGS`] machines are read this way ([`RunLog`]): a run
//! of a thousand machines would otherwise start a thousand threads, each
//! with its batches, where reading in the merge's thread keeps one buffer
//! per log.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use clocklab_log::{Diagnostics, LogReader, ReadLine};

/// Lines per batch: enough that handing a batch over costs little per line.
const BATCH_LINES: usize = 256;

/// Batches parsed ahead of the merge, per log.
const BATCHES_AHEAD: usize = 2;

/// The most logs of a run read on threads of their own; the logs of larger
/// runs are read in the merge's thread.
pub(crate) const MAX_PREFETCHED_LOGS: usize = 16;

/// The size of each log's read buffer.
const READ_BUFFER_BYTES: usize = 1 << 16;

/// One machine's log, read on its own thread or in the merge's.
#[derive(Debug)]
pub(crate) enum RunLog {
    /// Parsed on a thread of its own.
    Prefetched(PrefetchedLog),
    /// Parsed as the merge asks for lines.
    Direct(LogReader<BufReader<File>>),
}

impl RunLog {
    /// Reads `file`, on a thread of its own if `prefetch`.
    pub(crate) fn open(file: File, prefetch: bool) -> RunLog {
        if prefetch {
            RunLog::Prefetched(PrefetchedLog::spawn(file))
        } else {
            RunLog::Direct(LogReader::new(BufReader::with_capacity(READ_BUFFER_BYTES, file)))
        }
    }

    /// What the reader skipped (see [`PrefetchedLog::into_diagnostics`]).
    pub(crate) fn into_diagnostics(self) -> Diagnostics {
        match self {
            RunLog::Prefetched(log) => log.into_diagnostics(),
            RunLog::Direct(reader) => reader.into_diagnostics(),
        }
    }
}

impl Iterator for RunLog {
    type Item = ReadLine;

    fn next(&mut self) -> Option<ReadLine> {
        match self {
            RunLog::Prefetched(log) => log.next(),
            RunLog::Direct(reader) => reader.next(),
        }
    }
}

/// A log's lines, parsed on their own thread; an iterator over the lines
/// read, like the [`LogReader`] it runs.
#[derive(Debug)]
pub(crate) struct PrefetchedLog {
    batches: Receiver<Vec<ReadLine>>,
    /// The batch being given out (a queue, so that an emptied batch keeps
    /// its allocation), and the way back for emptied batches, to be reused.
    current: VecDeque<ReadLine>,
    spare: SyncSender<Vec<ReadLine>>,
    reader: Option<JoinHandle<Diagnostics>>,
}

impl PrefetchedLog {
    /// Starts reading `file` on a new thread.
    pub(crate) fn spawn(file: File) -> PrefetchedLog {
        let (sender, batches) = sync_channel::<Vec<ReadLine>>(BATCHES_AHEAD);
        let (spare, spares) = sync_channel::<Vec<ReadLine>>(BATCHES_AHEAD);
        let reader = std::thread::spawn(move || {
            let mut lines = LogReader::new(BufReader::with_capacity(READ_BUFFER_BYTES, file));
            loop {
                let mut batch = spares.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH_LINES));
                batch.extend(lines.by_ref().take(BATCH_LINES));
                let last = batch.len() < BATCH_LINES;
                // A merge that stopped early dropped its end: stop reading.
                if (!batch.is_empty() && sender.send(batch).is_err()) || last {
                    break;
                }
            }
            lines.into_diagnostics()
        });
        PrefetchedLog { batches, current: VecDeque::new(), spare, reader: Some(reader) }
    }

    /// What the reader skipped, once the lines are all read (or the merge
    /// stopped early: then what it skipped so far).
    pub(crate) fn into_diagnostics(mut self) -> Diagnostics {
        let reader = self.reader.take().expect("the reader is joined once");
        // Dropping the receiving end unblocks a reader still sending.
        drop(self);
        reader.join().expect("reading a log never panics")
    }
}

impl Iterator for PrefetchedLog {
    type Item = ReadLine;

    fn next(&mut self) -> Option<ReadLine> {
        loop {
            if let Some(line) = self.current.pop_front() {
                return Some(line);
            }
            let batch = self.batches.recv().ok()?;
            // Both conversions keep the allocation, without copying (the
            // emptied queue holds nothing to move).
            let emptied = std::mem::replace(&mut self.current, VecDeque::from(batch));
            // Hand the emptied batch back, if the reader has room for it.
            let _ = self.spare.try_send(Vec::from(emptied));
        }
    }
}
