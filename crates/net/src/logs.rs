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

    /// Puts what was written on the disk.
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for File {
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        // The file is opened for appending, so later lines go after the cut.
        self.set_len(len)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
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
    /// it lost are lost, but what it holds stays consistent. Then every file
    /// is synced, so that the log is on the disk before the machine says it
    /// is done (and the analysis reads it); a sync that fails is a write error.
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
            if let Err(source) = file.writer.get_mut().sink.sync()
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use clocklab_log::Event;

    use super::*;

    /// A sink that says what was done to it.
    #[derive(Debug, Clone, Default)]
    struct Watched {
        bytes: Arc<Mutex<Vec<u8>>>,
        synced: Arc<Mutex<bool>>,
        sync_fails: bool,
    }

    impl Write for Watched {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.bytes.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for Watched {
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            self.bytes.lock().unwrap().truncate(len as usize);
            Ok(())
        }

        fn sync(&mut self) -> io::Result<()> {
            if self.sync_fails {
                return Err(io::Error::from_raw_os_error(5));
            }
            *self.synced.lock().unwrap() = true;
            Ok(())
        }
    }

    #[test]
    fn the_end_of_a_log_is_synced_and_a_failed_sync_is_a_write_error() {
        for sync_fails in [false, true] {
            let sink = Watched { sync_fails, ..Watched::default() };
            let mut logs = Logs::over(vec![(LogFormat::Text, PathBuf::from("machine_1.log"), Box::new(sink.clone()))]);
            let line = |event, clock| Record::new(1, event, clock, 0, 1_767_225_600_000_000);
            assert!(logs.write(&line(Event::Internal, 1)));
            assert!(!*sink.synced.lock().unwrap(), "lines are not synced one by one");
            logs.write_stopped(&line(Event::Stopped, 1));
            assert!(String::from_utf8_lossy(&sink.bytes.lock().unwrap()).contains("Stopped"));
            assert_eq!(*sink.synced.lock().unwrap(), !sync_fails);
            match logs.check() {
                Ok(()) => assert!(!sync_fails),
                Err(error) => {
                    assert!(sync_fails);
                    assert!(error.to_string().contains("machine_1.log"), "{error}");
                }
            }
        }
    }
}
