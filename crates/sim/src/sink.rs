//! Where the simulator's log lines go: counted only (for benchmarks and huge
//! runs), or written to log files like a real run's.

use std::fs::File;
use std::io::{self, Seek as _, Write};
use std::path::{Path, PathBuf};

use clocklab_log::{LogFormat, LogWriter, Record};
use clocklab_model::MachineId;

/// Receives every log line of a simulation, in the order the simulator makes
/// them (each machine's lines in its log order).
pub trait Sink {
    /// Takes one line.
    fn write(&mut self, record: &Record) -> io::Result<()>;

    /// Called once, after the last line.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts lines and ticks, writes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountingSink {
    /// Every line.
    pub lines: u64,
    /// The lines that are ticks (internal, sent, processed).
    pub ticks: u64,
    /// A running sum of the logical clocks written, so that nothing the
    /// simulator computes can be optimised away in a benchmark.
    pub clock_sum: u64,
}

impl Sink for CountingSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.lines += 1;
        self.ticks += u64::from(record.event.is_tick());
        self.clock_sum = self.clock_sum.wrapping_add(record.logical_clock);
        Ok(())
    }
}

/// The buffer of each log file; large enough that a write to the file system
/// carries hundreds of lines.
const FILE_BUFFER_BYTES: usize = 64 * 1024;

/// What a log file needs besides being written: to be cut back to a length,
/// and synced.
pub(crate) trait LogFile: Write {
    /// Cuts the file back to its first `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;

    /// Puts what was written on the disk.
    fn sync(&mut self) -> io::Result<()>;
}

impl LogFile for File {
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        self.seek(io::SeekFrom::Start(len)).map(drop)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

/// A log file behind a buffer of whole lines. When a write to the file
/// fails part way (a full disk), the file is cut back to the last whole line
/// it took, so a log never ends in the middle of a line.
#[derive(Debug)]
pub(crate) struct WholeLines<F: LogFile> {
    file: F,
    buf: Vec<u8>,
    /// Bytes in the file, every one of them in a whole line.
    len: u64,
}

impl<F: LogFile> WholeLines<F> {
    pub(crate) fn new(file: F) -> WholeLines<F> {
        WholeLines { file, buf: Vec::with_capacity(FILE_BUFFER_BYTES), len: 0 }
    }

    /// Writes the buffer to the file; on an error, cuts the file back to its
    /// last whole line and drops the rest of the buffer.
    fn drain(&mut self) -> io::Result<()> {
        let mut written = 0;
        while written < self.buf.len() {
            match self.file.write(&self.buf[written..]) {
                Ok(0) => return Err(self.cut(written, io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.cut(written, error)),
            }
        }
        self.len += written as u64;
        self.buf.clear();
        Ok(())
    }

    /// After `written` bytes of the buffer reached the file and a write
    /// failed with `error`: keeps the whole lines of them, and gives the error
    /// back (the first one: a failed cut says less about the cause).
    fn cut(&mut self, written: usize, error: io::Error) -> io::Error {
        let whole = self.buf[..written].iter().rposition(|&byte| byte == b'\n').map_or(0, |at| at + 1);
        if whole < written {
            let _ = self.file.truncate(self.len + whole as u64);
        }
        self.len += whole as u64;
        self.buf.clear();
        error
    }

    /// Writes what is buffered and syncs the file.
    fn finish(&mut self) -> io::Result<()> {
        self.drain()?;
        self.file.flush()?;
        self.file.sync()
    }

    #[cfg(test)]
    pub(crate) fn into_inner(self) -> F {
        self.file
    }
}

impl<F: LogFile> Write for WholeLines<F> {
    /// Takes a whole line (the log writer hands over one line a call).
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= FILE_BUFFER_BYTES {
            self.drain()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.file.flush()
    }
}

/// Writes each machine's lines to its log files, one per format.
///
/// A log holds only whole lines whatever happens: a write error (a full
/// disk) cuts the file back to its last whole line and ends the run with
/// that error. [`Sink::finish`] syncs every file.
#[derive(Debug)]
pub struct LogFiles {
    /// `writers[(id - 1) * formats.len() + format_idx]`.
    writers: Vec<LogWriter<WholeLines<File>>>,
    paths: Vec<PathBuf>,
    n_formats: usize,
}

impl LogFiles {
    /// Creates `machine_<id>.<ext>` in `dir` for machines `1..=n_machines`
    /// and every format in `formats`, each in place of a file of that name
    /// (never through a link: see `clocklab_config::output`).
    pub fn create(dir: &Path, n_machines: u32, formats: &[LogFormat]) -> io::Result<LogFiles> {
        let mut writers = Vec::with_capacity(n_machines as usize * formats.len());
        let mut paths = Vec::with_capacity(writers.capacity());
        for id in 1..=n_machines {
            for &format in formats {
                let path = dir.join(clocklab_log::file_name(id, format));
                let file = clocklab_config::output::create_replacing(&path).map_err(|error| with_path(error, &path))?;
                writers.push(LogWriter::new(WholeLines::new(file), format));
                paths.push(path);
            }
        }
        Ok(LogFiles { writers, paths, n_formats: formats.len() })
    }

    /// The files, in machine then format order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    fn range(&self, id: MachineId) -> std::ops::Range<usize> {
        let first = (id as usize - 1) * self.n_formats;
        first..first + self.n_formats
    }
}

impl Sink for LogFiles {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let range = self.range(record.machine);
        for idx in range {
            let result = self.writers[idx].write(record);
            result.map_err(|error| with_path(error, &self.paths[idx]))?;
        }
        Ok(())
    }

    /// Writes and syncs every file, each as far as it goes (one that fails
    /// keeps its whole lines); returns the first error.
    fn finish(&mut self) -> io::Result<()> {
        let mut first_error = None;
        for (writer, path) in self.writers.iter_mut().zip(&self.paths) {
            if let Err(error) = writer.get_mut().finish() {
                first_error.get_or_insert_with(|| with_path(error, path));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The error with the file it concerns, so the user knows where to look.
fn with_path(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clocklab_log::{Event, LogReader};

    /// A file on a disk with room for `room` bytes: a write past it takes
    /// what fits, then fails as a full disk does.
    #[derive(Debug, Default)]
    struct FullDisk {
        bytes: Vec<u8>,
        room: usize,
        synced: bool,
    }

    impl Write for FullDisk {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let fits = bytes.len().min(self.room - self.bytes.len());
            if fits == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            self.bytes.extend_from_slice(&bytes[..fits]);
            Ok(fits)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl LogFile for FullDisk {
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            self.bytes.truncate(len as usize);
            Ok(())
        }

        fn sync(&mut self) -> io::Result<()> {
            self.synced = true;
            Ok(())
        }
    }

    fn line(k: u64) -> Record {
        Record::new(1, Event::Internal, k, 0, 1_767_225_600_000_000 + k as i64 * 1_000)
    }

    #[test]
    fn a_full_disk_leaves_whole_lines() {
        for room in [0, 1, 100, 150_000, 200_001] {
            let mut writer = LogWriter::new(WholeLines::new(FullDisk { room, ..FullDisk::default() }), LogFormat::Text);
            let mut error = None;
            for k in 1..=5_000 {
                if let Err(failed) = writer.write(&line(k)) {
                    error = Some(failed);
                    break;
                }
            }
            let error = error.or_else(|| writer.get_mut().finish().err()).expect("the disk fills");
            assert_eq!(error.raw_os_error(), Some(28), "the disk's own error: {error}");
            let file = writer.into_inner().into_inner();
            assert!(file.bytes.len() <= room);
            assert!(file.bytes.is_empty() || file.bytes.ends_with(b"\n"), "room {room}: the last line is whole");
            let mut reader = LogReader::new(&file.bytes[..]);
            let clocks: Vec<u64> = reader.by_ref().map(|l| l.record.logical_clock).collect();
            assert_eq!(reader.diagnostics().n_skipped, 0);
            assert!(!reader.diagnostics().truncated_last_line);
            assert_eq!(
                clocks,
                (1..=clocks.len() as u64).collect::<Vec<_>>(),
                "room {room}: every line kept is in order"
            );
            assert!(room < 150_000 || clocks.len() > 1_000, "room {room}: what fitted was kept");
        }
    }

    #[test]
    fn a_log_with_room_is_written_whole_and_synced() {
        let mut writer =
            LogWriter::new(WholeLines::new(FullDisk { room: usize::MAX, ..FullDisk::default() }), LogFormat::Text);
        for k in 1..=2_000 {
            writer.write(&line(k)).unwrap();
        }
        writer.get_mut().finish().unwrap();
        let file = writer.into_inner().into_inner();
        assert!(file.synced);
        assert_eq!(LogReader::new(&file.bytes[..]).count(), 2_000);
    }
}
