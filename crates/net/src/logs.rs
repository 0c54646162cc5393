//! A machine's log files: one writer per format over an unbuffered file, so
//! that each line is one `write` and a killed process leaves whole lines; a
//! write error (a full disk) cuts the line it cut off and ends the machine as
//! at the deadline.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

use clocklab_log::{LogFormat, LogWriter, Record};

use crate::NetError;

/// Where log lines go: a file, or (in tests) a writer that fails on demand.
pub(crate) trait Sink: Write + Send + std::fmt::Debug {
    /// Cuts the sink back to its first `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl Sink for File {
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        // The file is opened for appending, so later lines go after the cut.
        self.set_len(len)
    }
}

/// A sink that counts the bytes it took, to know where the last whole line ends.
#[derive(Debug)]
struct Counted {
    sink: Box<dyn Sink>,
    len: u64,
}

impl Write for Counted {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.sink.write(bytes)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

/// One log file.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    writer: LogWriter<Counted>,
    /// A write failed: no more lines go here, except a last try at `Stopped`.
    failed: bool,
    /// The logical clock of the last line written whole.
    last_clock: u64,
}

impl LogFile {
    /// Writes one line; a line cut by a failure is cut off, so that the file
    /// holds only whole lines.
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let before = self.writer.get_mut().len;
        let result = self.writer.write(record);
        if result.is_ok() {
            self.last_clock = record.logical_clock;
        } else {
            let counted = self.writer.get_mut();
            if counted.len > before && counted.sink.truncate(before).is_ok() {
                counted.len = before;
            }
        }
        result
    }
}

/// A machine's log files: one writer per format over an unbuffered file, so
/// that each line is one `write` and a killed process leaves whole lines.
///
/// A write error does not end the machine on the spot: the file is marked
/// failed, the error is kept, and the machine stops ticking and ends as at the
/// deadline, so its peers still get every message and what was written stays
/// readable.
#[derive(Debug)]
pub(crate) struct Logs {
    files: Vec<LogFile>,
    /// The first write error.
    failure: Option<NetError>,
}

impl Logs {
    /// Creates the log files, which must not exist yet.
    pub(crate) fn create(files: &[(LogFormat, PathBuf)]) -> Result<Logs, NetError> {
        Logs::open(files, false)
    }

    /// Opens the log files of an earlier incarnation of the machine (a
    /// restart after a crash), to write after their last line.
    pub(crate) fn append(files: &[(LogFormat, PathBuf)]) -> Result<Logs, NetError> {
        Logs::open(files, true)
    }

    fn open(files: &[(LogFormat, PathBuf)], existing: bool) -> Result<Logs, NetError> {
        let mut sinks: Vec<(LogFormat, PathBuf, Box<dyn Sink>, u64)> = Vec::new();
        for (format, path) in files {
            let failed = |source| NetError::Log { path: path.clone(), source };
            let file = OpenOptions::new().append(true).create_new(!existing).open(path).map_err(failed)?;
            let len = file.metadata().map_err(failed)?.len();
            sinks.push((*format, path.clone(), Box::new(file), len));
        }
        Ok(Logs::over_from(sinks))
    }

    #[cfg(test)]
    pub(crate) fn over(sinks: Vec<(LogFormat, PathBuf, Box<dyn Sink>)>) -> Logs {
        Logs::over_from(sinks.into_iter().map(|(format, path, sink)| (format, path, sink, 0)).collect())
    }

    /// Logs over `sinks`, each holding its given number of bytes already.
    fn over_from(sinks: Vec<(LogFormat, PathBuf, Box<dyn Sink>, u64)>) -> Logs {
        let files = sinks
            .into_iter()
            .map(|(format, path, sink, len)| LogFile {
                path,
                writer: LogWriter::new(Counted { sink, len }, format),
                failed: false,
                last_clock: 0,
            })
            .collect();
        Logs { files, failure: None }
    }

    /// The first file's path (where a restarted machine reads its clocks back).
    pub(crate) fn first_path(&self) -> Option<&std::path::Path> {
        self.files.first().map(|file| file.path.as_path())
    }

    /// Writes one line to every file that has not failed; returns whether
    /// every file took it.
    pub(crate) fn write(&mut self, record: &Record) -> bool {
        for file in &mut self.files {
            if file.failed {
                continue;
            }
            if let Err(source) = file.write(record) {
                file.failed = true;
                // The error is the machine's last word, once: the end goes as at
                // the deadline, then the error is returned.
                self.failure.get_or_insert(NetError::Log { path: file.path.clone(), source });
            }
        }
        self.failure.is_none()
    }

    /// Writes `Stopped` to every file, those that failed before included
    /// (the cause, such as a full disk, may have passed). A failed file's
    /// `Stopped` carries the Lamport clock of its last whole line: the lines
    /// it lost are lost, but what it holds stays consistent.
    pub(crate) fn write_stopped(&mut self, stopped: &Record) {
        for file in &mut self.files {
            let mut record = stopped.clone();
            if file.failed {
                record.logical_clock = file.last_clock;
            }
            if let Err(source) = file.write(&record)
                && !file.failed
            {
                file.failed = true;
                self.failure.get_or_insert(NetError::Log { path: file.path.clone(), source });
            }
        }
    }

    /// Whether a write has failed.
    pub(crate) fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// The first write error, if any, taken out.
    pub(crate) fn check(&mut self) -> Result<(), NetError> {
        match self.failure.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
