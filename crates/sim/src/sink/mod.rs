//! Where the simulator's log lines go: counted only (for benchmarks and huge
//! runs), or written to log files like a real run's.

use std::io;
use std::path::{Path, PathBuf};

use clocklab_log::{LineFormatter, LogFormat, Record};
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

mod writer;

use writer::{FILE_BUFFER_BYTES, FileWriter, with_path};

/// Writes each machine's lines to its log files, one per format.
///
/// Lines are formatted straight into a buffer per file; a full buffer goes to
/// a writer thread (see `writer`), so the simulation and the file system each
/// have a core. A log holds only whole lines whatever happens: a write error
/// (a full disk) cuts the file back to its last whole line and ends the run
/// with that error. [`Sink::finish`] writes the rest and syncs every file.
#[derive(Debug)]
pub struct LogFiles {
    /// `formatters[(id - 1) * n_formats + format_idx]`, and the same for
    /// `buffers`.
    formatters: Vec<LineFormatter>,
    buffers: Vec<Vec<u8>>,
    writer: FileWriter<std::fs::File>,
    paths: Vec<PathBuf>,
    n_formats: usize,
}

impl LogFiles {
    /// Creates `machine_<id>.<ext>` in `dir` for machines `1..=n_machines`
    /// and every format in `formats`, each in place of a file of that name
    /// (never through a link: see `clocklab_config::output`).
    pub fn create(dir: &Path, n_machines: u32, formats: &[LogFormat]) -> io::Result<LogFiles> {
        let n_files = n_machines as usize * formats.len();
        let (mut files, mut paths, mut formatters) =
            (Vec::with_capacity(n_files), Vec::with_capacity(n_files), Vec::with_capacity(n_files));
        for id in 1..=n_machines {
            for &format in formats {
                let path = dir.join(clocklab_log::file_name(id, format));
                let file = clocklab_config::output::create_replacing(&path).map_err(|error| with_path(error, &path))?;
                files.push(file);
                paths.push(path);
                formatters.push(LineFormatter::new(format));
            }
        }
        let buffers = (0..n_files).map(|_| Vec::with_capacity(FILE_BUFFER_BYTES + 1024)).collect();
        let writer = FileWriter::new(files, paths.clone());
        Ok(LogFiles { formatters, buffers, writer, paths, n_formats: formats.len() })
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
        for idx in self.range(record.machine) {
            let buffer = &mut self.buffers[idx];
            self.formatters[idx].push(buffer, record).map_err(|error| with_path(error, &self.paths[idx]))?;
            if buffer.len() >= FILE_BUFFER_BYTES {
                let full = std::mem::take(buffer);
                self.buffers[idx] = self.writer.hand_over(idx, full)?;
            }
        }
        Ok(())
    }

    /// Writes every file and syncs it, each as far as it goes (one that fails
    /// keeps its whole lines); returns the first error.
    fn finish(&mut self) -> io::Result<()> {
        for (idx, buffer) in self.buffers.iter_mut().enumerate() {
            if !buffer.is_empty() {
                self.writer.hand_over_last(idx, std::mem::take(buffer));
            }
        }
        self.writer.finish()
    }
}
