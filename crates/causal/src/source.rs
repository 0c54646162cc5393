//! A run folder as the causal tools read it: its machine logs (clocklab's or
//! the reference's) and its `manifest.json` when it has one.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use clocklab_config::{RunManifest, layout};
use clocklab_log::{Diagnostics, LogReader, ReadLine, RunEvents};
use clocklab_model::MachineId;

use crate::graph::{BuildOptions, RunGraph};

/// Why a run folder cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Nothing has the path.
    #[error("{0} does not exist")]
    Missing(PathBuf),
    /// The path is not a folder.
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    /// The folder holds no machine logs.
    #[error("no logs in {0} (expected machine_<id>.log, machine_<id>.jsonl or process_<id>.log)")]
    NoLogs(PathBuf),
    /// The manifest is there but is not one, or a number in it is out of
    /// its range (the error names the file and the key).
    #[error(transparent)]
    BadManifest(clocklab_config::ConfigError),
    /// A file could not be read (what the system said is its source).
    #[error("{path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

impl SourceError {
    /// Whether the error is the user's input (a wrong path, a damaged
    /// manifest) rather than the system failing.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, SourceError::Io { .. })
    }
}

/// One run folder: its logs by machine id, and its manifest.
#[derive(Clone, Debug)]
pub struct RunSource {
    /// The folder.
    pub path: PathBuf,
    /// `experiment/run_<k>`, for people.
    pub label: String,
    /// Each machine's log file.
    pub logs: BTreeMap<MachineId, PathBuf>,
    /// The manifest, if the folder has one (the reference's runs have none).
    pub manifest: Option<RunManifest>,
}

impl RunSource {
    /// Opens the run folder `dir`.
    pub fn open(dir: &Path) -> Result<RunSource, SourceError> {
        match layout::look_at_folder(dir).map_err(|source| SourceError::Io { path: dir.to_path_buf(), source })? {
            layout::Found::Folder => {}
            layout::Found::NotAFolder => return Err(SourceError::NotAFolder(dir.to_path_buf())),
            layout::Found::Missing => return Err(SourceError::Missing(dir.to_path_buf())),
        }
        let logs = layout::find_logs(dir).map_err(|source| SourceError::Io { path: dir.to_path_buf(), source })?;
        if logs.is_empty() {
            return Err(SourceError::NoLogs(dir.to_path_buf()));
        }
        let manifest_path = layout::manifest_path(dir);
        // Checked against the configuration's ranges before any table is
        // sized by one of its numbers.
        let manifest = match RunManifest::read(&manifest_path) {
            Ok(manifest) => Some(manifest),
            // Machines started by hand write one manifest each: the run's is
            // made from them, so that its rules are checked too.
            Err(error) if error.is_missing() => {
                layout::machines_run_manifest(dir).map_err(|mut damaged| SourceError::BadManifest(damaged.remove(0)))?
            }
            Err(clocklab_config::ConfigError::Read { source, .. }) => {
                return Err(SourceError::Io { path: manifest_path, source });
            }
            Err(error) => return Err(SourceError::BadManifest(error)),
        };
        let (experiment, run_name) = layout::run_names(dir, manifest.as_ref());
        Ok(RunSource { path: dir.to_path_buf(), label: format!("{experiment}/{run_name}"), logs, manifest })
    }

    /// The run's events, merged in time order with each receive paired, and
    /// a handle that holds what each reader skipped once it is exhausted.
    pub fn events(&self) -> Result<(RunEvents<LogLines>, SkippedLines), SourceError> {
        let skipped = SkippedLines::default();
        let mut streams = Vec::new();
        for (&id, path) in &self.logs {
            let file = File::open(path).map_err(|source| SourceError::Io { path: path.clone(), source })?;
            let reader = LogReader::new(BufReader::with_capacity(1 << 16, file));
            streams.push((id, LogLines { machine: id, reader, skipped: skipped.clone() }));
        }
        Ok((RunEvents::new(streams).with_clock_offsets(&self.clock_offsets()), skipped))
    }

    /// Each machine's host's clock offset to the orchestrator's (a run on
    /// several hosts; none otherwise), taken off its lines' times so that
    /// the run's events are on one timeline.
    pub fn clock_offsets(&self) -> BTreeMap<MachineId, i64> {
        self.manifest
            .as_ref()
            .map(|m| m.host_clock_offsets().into_iter().map(|(id, (offset, _))| (id, offset)).collect())
            .unwrap_or_default()
    }

    /// The run's happens-before graph, with what the readers skipped.
    pub fn graph(&self, options: BuildOptions) -> Result<RunGraph, SourceError> {
        let (events, skipped) = self.events()?;
        let mut graph = RunGraph::build(events, options);
        graph.diagnostics = skipped.get();
        Ok(graph)
    }

    /// The text of the given lines (1-based numbers) of machine `id`'s log,
    /// without their newlines; a line that cannot be read is left out, and
    /// one longer than [`clocklab_log::MAX_LINE_BYTES`] is said, not copied.
    pub fn read_lines(&self, id: MachineId, line_nos: &[u64]) -> BTreeMap<u64, String> {
        let mut wanted: Vec<u64> = line_nos.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out = BTreeMap::new();
        let Some(file) = self.logs.get(&id).and_then(|path| File::open(path).ok()) else { return out };
        let mut lines = clocklab_log::RawLines::new(BufReader::new(file));
        let mut line_no = 0u64;
        for want in wanted {
            let line = loop {
                let Ok(Some(line)) = lines.next_line() else { return out };
                line_no += 1;
                if line_no == want {
                    break line;
                }
            };
            out.insert(want, line.to_text());
        }
        out
    }

    /// Each machine's log as raw lines (without newlines), in file order,
    /// for a caller that copies them: see [`RunSource::read_lines`] for a
    /// few. A line longer than [`clocklab_log::MAX_LINE_BYTES`] (which the
    /// reader skips) is never held: it comes as a sentence saying so.
    pub fn raw_lines(&self, id: MachineId) -> Result<impl Iterator<Item = Vec<u8>> + use<>, SourceError> {
        let path = self.logs.get(&id).cloned().unwrap_or_default();
        let file = File::open(&path).map_err(|source| SourceError::Io { path, source })?;
        let mut lines = clocklab_log::RawLines::new(BufReader::with_capacity(1 << 16, file));
        Ok(std::iter::from_fn(move || match lines.next_line() {
            Ok(Some(clocklab_log::RawLine::Text(bytes))) => Some(bytes.to_vec()),
            Ok(Some(line)) => Some(line.to_text().into_bytes()),
            Ok(None) | Err(_) => None,
        }))
    }
}

/// One machine's raw lines and the number of the next one.
type RawStream = (clocklab_log::RawLines<BufReader<File>>, u64);

/// Every machine's log as raw lines, for a caller that wants the text of
/// events in a run's order (in which each machine's line numbers only rise).
pub struct RawLines {
    /// Per machine: its lines and the number of the next one.
    streams: BTreeMap<MachineId, RawStream>,
}

impl std::fmt::Debug for RawLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawLines").field("machines", &self.streams.keys().collect::<Vec<_>>()).finish()
    }
}

impl RawLines {
    /// Opens every log of `source`.
    pub fn open(source: &RunSource) -> Result<RawLines, SourceError> {
        let mut streams: BTreeMap<MachineId, RawStream> = BTreeMap::new();
        for (&id, path) in &source.logs {
            let file = File::open(path).map_err(|source| SourceError::Io { path: path.clone(), source })?;
            streams.insert(id, (clocklab_log::RawLines::new(BufReader::with_capacity(1 << 16, file)), 1));
        }
        Ok(RawLines { streams })
    }

    /// Line `line_no` of machine `id`'s log, if it is at or after the last
    /// line asked for (lines before it are gone): its bytes, borrowed from
    /// the reader (no copy per line), or for a line longer than
    /// [`clocklab_log::MAX_LINE_BYTES`], a sentence saying so.
    pub fn line(&mut self, id: MachineId, line_no: u64) -> Option<Cow<'_, [u8]>> {
        let (lines, next) = self.streams.get_mut(&id)?;
        while *next < line_no {
            lines.next_line().ok()??;
            *next += 1;
        }
        if *next != line_no {
            return None;
        }
        *next += 1;
        match lines.next_line().ok()?? {
            clocklab_log::RawLine::Text(bytes) => Some(Cow::Borrowed(bytes)),
            line => Some(Cow::Owned(line.to_text().into_bytes())),
        }
    }
}

/// What the readers of a run skipped, per machine (filled in as each reader
/// reaches the end of its log).
#[derive(Clone, Debug, Default)]
pub struct SkippedLines(Rc<RefCell<BTreeMap<MachineId, Diagnostics>>>);

impl SkippedLines {
    /// The diagnostics so far, per machine.
    pub fn get(&self) -> BTreeMap<MachineId, Diagnostics> {
        self.0.borrow().clone()
    }
}

/// One machine's log, line by line, for [`RunEvents`].
#[derive(Debug)]
pub struct LogLines {
    machine: MachineId,
    reader: LogReader<BufReader<File>>,
    skipped: SkippedLines,
}

impl Iterator for LogLines {
    type Item = ReadLine;

    fn next(&mut self) -> Option<ReadLine> {
        let line = self.reader.next();
        if line.is_none() {
            self.skipped.0.borrow_mut().insert(self.machine, self.reader.diagnostics().clone());
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_past_the_limit_is_never_copied_whole() {
        let dir = tempfile::tempdir().unwrap();
        let line = |k: u64| {
            format!(
                "1> Event: Internal event | System Time: 2026-11-24 04:43:13 | Logical Clock: {k} | Queue Length: 0 \
                 | Timestamp: 2026-11-24T04:43:13.{k:06}Z\n"
            )
        };
        let mut log = line(1).into_bytes();
        // A hole of NUL bytes in the middle of the log, as a crash can leave.
        log.extend(std::iter::repeat_n(0u8, 40 * clocklab_log::MAX_LINE_BYTES));
        log.push(b'\n');
        log.extend_from_slice(line(2).as_bytes());
        std::fs::write(dir.path().join("machine_1.log"), &log).unwrap();
        let source = RunSource::open(dir.path()).unwrap();

        let raw: Vec<Vec<u8>> = source.raw_lines(1).unwrap().collect();
        let lengths: Vec<usize> = raw.iter().map(Vec::len).collect();
        assert_eq!(raw.len(), 3, "one item a line, the long one included: {lengths:?}");
        assert!(lengths.iter().all(|&len| len <= clocklab_log::MAX_LINE_BYTES), "{lengths:?}");
        assert_eq!(raw[2], line(2).trim_end().as_bytes());

        let shown = source.read_lines(1, &[2, 3]);
        assert_eq!(
            shown[&2],
            format!(
                "(a line of {} bytes, longer than the 65536 a log line may have: not shown)",
                40 * clocklab_log::MAX_LINE_BYTES
            )
        );
        assert_eq!(shown[&3], line(2).trim_end());
    }
}
