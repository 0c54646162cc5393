//! Where the simulator's log lines go: counted only (for benchmarks and huge
//! runs), or written to log files like a real run's.

use std::fs::File;
use std::io::{self, BufWriter};
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

/// Writes each machine's lines to its log files, one per format.
#[derive(Debug)]
pub struct LogFiles {
    /// `writers[(id - 1) * formats.len() + format_idx]`.
    writers: Vec<LogWriter<BufWriter<File>>>,
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
                writers.push(LogWriter::new(BufWriter::with_capacity(FILE_BUFFER_BYTES, file), format));
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

    fn finish(&mut self) -> io::Result<()> {
        for (writer, path) in self.writers.iter_mut().zip(&self.paths) {
            writer.flush().map_err(|error| with_path(error, path))?;
        }
        Ok(())
    }
}

/// The error with the file it concerns, so the user knows where to look.
fn with_path(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}
