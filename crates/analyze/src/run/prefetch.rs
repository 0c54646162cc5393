//! A machine's log read and parsed on a thread of its own, handed to the
//! merge in batches of lines.
//!
//! Parsing is about half of an analysis' work and the merge the other half;
//! with each log parsed beside the merge, a run keeps two cores busy. Handing
//! lines over costs about 13 % more CPU time, so a log is read in the
//! merge's thread while every core has a run of its own, and ahead, from
//! where it is, once a core has none ([`RunLog::read_ahead`]): in the last
//! runs of an analysis, or in a lone run.
//!
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

/// One machine's log, read in the merge's thread until it is told to read
/// ahead on a thread of its own ([`RunLog::read_ahead`]).
#[derive(Debug)]
pub(crate) struct RunLog {
    /// The reader, while it reads in the merge's thread.
    direct: Option<LogReader<BufReader<File>>>,
    /// The reader's thread, once it reads ahead (the reader moved there).
    ahead: Option<PrefetchedLog>,
}

impl RunLog {
    /// Reads `file`, in the merge's thread for now.
    pub(crate) fn open(file: File) -> RunLog {
        RunLog { direct: Some(LogReader::new(BufReader::with_capacity(READ_BUFFER_BYTES, file))), ahead: None }
    }

    /// Reads the rest of the log on a thread of its own (if it does not
    /// already): the same lines, in the same order.
    pub(crate) fn read_ahead(&mut self) {
        if let Some(reader) = self.direct.take() {
            self.ahead = Some(PrefetchedLog::spawn(reader));
        }
    }

    /// What the reader skipped (see [`PrefetchedLog::into_diagnostics`]).
    pub(crate) fn into_diagnostics(self) -> Diagnostics {
        match self.ahead {
            Some(log) => log.into_diagnostics(),
            None => self.direct.map(LogReader::into_diagnostics).unwrap_or_default(),
        }
    }
}

impl Iterator for RunLog {
    type Item = ReadLine;

    fn next(&mut self) -> Option<ReadLine> {
        match &mut self.ahead {
            Some(log) => log.next(),
            None => self.direct.as_mut()?.next(),
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
    /// Goes on with `lines` on a new thread.
    fn spawn(mut lines: LogReader<BufReader<File>>) -> PrefetchedLog {
        let (sender, batches) = sync_channel::<Vec<ReadLine>>(BATCHES_AHEAD);
        let (spare, spares) = sync_channel::<Vec<ReadLine>>(BATCHES_AHEAD);
        let reader = std::thread::spawn(move || {
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use clocklab_log::{Event, LogFormat, LogWriter, Record};

    use super::*;

    /// A log of `n` ticks with a damaged line every 1,000.
    fn write_log(path: &std::path::Path, n: u64) {
        let mut writer = LogWriter::new(File::create(path).unwrap(), LogFormat::Text);
        let init = Event::Initialized { host: None, port: Some(5000), rate: 2 };
        writer.write(&Record::new(1, init, 0, 0, 1_795_495_393_000_000)).unwrap();
        for k in 1..=n {
            writer.write(&Record::new(1, Event::Internal, k, 0, 1_795_495_393_000_000 + k as i64 * 500)).unwrap();
            if k % 1_000 == 0 {
                writer.flush().unwrap();
                writer.get_mut().write_all(b"not a line of a log\n").unwrap();
            }
        }
        writer.flush().unwrap();
    }

    #[test]
    fn reading_ahead_from_any_line_gives_the_same_lines_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("machine_1.log");
        // Several batches, and the last one short.
        let n = 3 * BATCH_LINES as u64 * (BATCHES_AHEAD as u64 + 1) + 17;
        write_log(&path, n);
        let all: Vec<ReadLine> = RunLog::open(File::open(&path).unwrap()).collect();
        assert_eq!(all.len() as u64, n + 1);
        let mut direct = RunLog::open(File::open(&path).unwrap());
        direct.by_ref().for_each(drop);
        let skipped = direct.into_diagnostics();
        assert_eq!(skipped.n_skipped, n / 1_000, "{skipped:?}");
        for from in [0, 1, BATCH_LINES, 1_500, all.len() - 1, all.len()] {
            let mut log = RunLog::open(File::open(&path).unwrap());
            let mut lines: Vec<ReadLine> = log.by_ref().take(from).collect();
            log.read_ahead();
            log.read_ahead();
            lines.extend(log.by_ref());
            assert!(lines == all, "the lines read ahead from line {from} differ");
            assert_eq!(log.into_diagnostics(), skipped, "from line {from}");
        }
        // A merge that stops early: the reader stops too, with what it skipped so far.
        let mut log = RunLog::open(File::open(&path).unwrap());
        log.read_ahead();
        assert_eq!(log.next(), Some(all[0].clone()));
        assert!(log.into_diagnostics().n_skipped <= skipped.n_skipped);
    }
}
