//! Where the simulator's log lines go: counted only (for benchmarks and huge
//! runs), or written to log files like a real run's.

use std::io;
use std::path::{Path, PathBuf};

use clocklab_log::{LineFormatter, LogFormat, Record};

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

mod writer;

mod test_disk;
mod tests;

use writer::{FILE_BUFFER_BYTES, FileWriter, LogFile, with_path};

/// Writes each machine's lines to its log files, one per format.
///
/// Lines are formatted straight into a buffer per file; full buffers go to
/// a writer thread (see `writer`), so the simulation and the file system each
/// have a core. A log holds only whole lines whatever happens: a write error
/// (a full disk) cuts the file back to its last whole line and ends the run
/// with that error, every other file written as far as it goes.
/// [`Sink::finish`] writes the rest and syncs every file.
#[derive(Debug)]
pub struct LogFiles {
    files: Buffered<std::fs::File>,
    n_formats: usize,
}

impl LogFiles {
    /// Creates `machine_<id>.<ext>` in `dir` for machines `1..=n_machines`
    /// and every format in `formats`, each in place of a file of that name
    /// (never through a link: see `clocklab_config::output`).
    pub fn create(dir: &Path, n_machines: u32, formats: &[LogFormat]) -> io::Result<LogFiles> {
        let n_files = n_machines as usize * formats.len();
        let mut files = Vec::with_capacity(n_files);
        for id in 1..=n_machines {
            for &format in formats {
                let path = dir.join(clocklab_log::file_name(id, format));
                let file = clocklab_config::output::create_replacing(&path).map_err(|error| with_path(error, &path))?;
                files.push((file, path, format));
            }
        }
        Ok(LogFiles { files: Buffered::new(files), n_formats: formats.len() })
    }

    /// The files, in machine then format order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.files.paths
    }
}

impl Sink for LogFiles {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let first = (record.machine as usize - 1) * self.n_formats;
        for idx in first..first + self.n_formats {
            self.files.write(idx, record)?;
        }
        Ok(())
    }

    /// Writes every file and syncs it, each as far as it goes (one that fails
    /// keeps its whole lines); returns the first error.
    fn finish(&mut self) -> io::Result<()> {
        self.files.finish()
    }
}

/// Files of lines, each with its format and a buffer the lines are
/// formatted into; full buffers go to the files' [`FileWriter`].
#[derive(Debug)]
struct Buffered<F: LogFile> {
    formatters: Vec<LineFormatter>,
    buffers: Vec<Vec<u8>>,
    writer: FileWriter<F>,
    paths: Vec<PathBuf>,
}

impl<F: LogFile> Buffered<F> {
    fn new(files: Vec<(F, PathBuf, LogFormat)>) -> Buffered<F> {
        let formatters = files.iter().map(|(_, _, format)| LineFormatter::new(*format)).collect();
        let buffers = files.iter().map(|_| Vec::with_capacity(FILE_BUFFER_BYTES + 1024)).collect();
        let paths: Vec<PathBuf> = files.iter().map(|(_, path, _)| path.clone()).collect();
        let writer = FileWriter::new(files.into_iter().map(|(file, _, _)| file).collect(), paths.clone());
        Buffered { formatters, buffers, writer, paths }
    }

    /// Appends `record` to file `idx`.
    fn write(&mut self, idx: usize, record: &Record) -> io::Result<()> {
        let buffer = &mut self.buffers[idx];
        self.formatters[idx].push(buffer, record).map_err(|error| with_path(error, &self.paths[idx]))?;
        if buffer.len() >= FILE_BUFFER_BYTES {
            let full = std::mem::take(buffer);
            match self.writer.hand_over(idx, full) {
                Ok(empty) => self.buffers[idx] = empty,
                // Every other file is written as far as it goes; the error
                // said is that of the first file that failed.
                Err(error) => return Err(self.finish().err().unwrap_or(error)),
            }
        }
        Ok(())
    }

    /// Writes every file and syncs it, each as far as it goes; returns the
    /// first error.
    fn finish(&mut self) -> io::Result<()> {
        for (idx, buffer) in self.buffers.iter_mut().enumerate() {
            if !buffer.is_empty() {
                self.writer.hand_over_last(idx, std::mem::take(buffer));
            }
        }
        self.writer.finish()
    }
}
