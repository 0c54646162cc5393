//! Where results go: `<out>/<experiment>/run_<k>/`, with `machine_<id>.log`
//! (and `.jsonl`) and `manifest.json` in each run folder. A run folder of the
//! reference implementation holds `process_<id>.log` instead.
//!
//! Only this module knows the folder layout; readers of results ask it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use clocklab_log::LogFormat;
use clocklab_model::MachineId;

/// The manifest's file name in a run folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The folder of run `run_idx` (1-based) of `experiment` under `out`.
pub fn run_dir(out: &Path, experiment: &str, run_idx: u32) -> PathBuf {
    out.join(experiment).join(format!("run_{run_idx}"))
}

/// Machine `id`'s log in `run_dir`.
pub fn log_path(run_dir: &Path, id: MachineId, format: LogFormat) -> PathBuf {
    run_dir.join(clocklab_log::file_name(id, format))
}

/// Machine `id`'s log in a run folder laid out as the reference
/// implementation's (`process_<id>.log`).
pub fn reference_log_path(run_dir: &Path, id: MachineId) -> PathBuf {
    run_dir.join(format!("process_{id}.log"))
}

/// The manifest of the run in `run_dir`.
pub fn manifest_path(run_dir: &Path) -> PathBuf {
    run_dir.join(MANIFEST_FILE)
}

/// The machine logs in a run folder, by machine id: `machine_<id>.log`,
/// `machine_<id>.jsonl` or the reference's `process_<id>.log`; when a
/// machine has both, the text log is preferred. Empty if `dir` holds none.
pub fn find_logs(dir: &Path) -> io::Result<BTreeMap<MachineId, PathBuf>> {
    // (preference, path): a lower preference wins, so `.log` beats `.jsonl`.
    let mut found: BTreeMap<MachineId, (u8, PathBuf)> = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some((id, preference)) = log_file_id(name) else { continue };
        if found.get(&id).is_none_or(|(existing, _)| preference < *existing) {
            found.insert(id, (preference, path));
        }
    }
    Ok(found.into_iter().map(|(id, (_, path))| (id, path)).collect())
}

/// The machine id a log file's name carries, and how much it is preferred.
fn log_file_id(name: &str) -> Option<(MachineId, u8)> {
    let (stem, preference) =
        if let Some(stem) = name.strip_suffix(".log") { (stem, 0) } else { (name.strip_suffix(".jsonl")?, 1) };
    let id = stem.strip_prefix("machine_").or_else(|| (preference == 0).then(|| stem.strip_prefix("process_"))?)?;
    Some((id.parse().ok()?, preference))
}

/// Creates a new, empty results folder `<parent>/<stamp>` (adding `-2`, `-3`,
/// … if it exists), never touching earlier results.
pub fn create_results_dir(parent: &Path, stamp: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(parent)?;
    for attempt in 1u32.. {
        let name = if attempt == 1 { stamp.to_string() } else { format!("{stamp}-{attempt}") };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    unreachable!("u32 attempts are never exhausted")
}

/// A run folder read back: its manifest and each machine's records.
#[derive(Debug)]
pub struct RunLogs {
    /// The manifest.
    pub manifest: crate::RunManifest,
    /// Each machine's records, in file order.
    pub logs: std::collections::BTreeMap<MachineId, Vec<clocklab_log::Record>>,
    /// What the reader skipped, per machine.
    pub diagnostics: std::collections::BTreeMap<MachineId, clocklab_log::Diagnostics>,
}

impl RunLogs {
    /// The expectations of the log check for this run.
    pub fn expectations(&self, tick_tolerance: u64) -> clocklab_log::check::Expectations {
        clocklab_log::check::Expectations {
            n_machines: self.manifest.experiment.machines,
            duration_s: self.manifest.experiment.duration,
            tick_tolerance,
            allow_loss: self.manifest.status != crate::RunStatus::Ok,
            clocks: self.manifest.experiment.clocks,
        }
    }

    /// Runs the log check on this run.
    pub fn check(&self, tick_tolerance: u64) -> clocklab_log::check::CheckReport {
        clocklab_log::check::check_run(&self.logs, &self.expectations(tick_tolerance))
    }
}

/// Reads a run folder written by either runtime: `manifest.json` and every
/// machine's log in `format`.
pub fn read_run(run_dir: &Path, format: LogFormat) -> io::Result<RunLogs> {
    let manifest_file = manifest_path(run_dir);
    let text = std::fs::read_to_string(&manifest_file)?;
    let manifest = crate::RunManifest::from_json(&text)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {error}", manifest_file.display())))?;
    let mut logs = std::collections::BTreeMap::new();
    let mut diagnostics = std::collections::BTreeMap::new();
    for machine in &manifest.machines {
        let file = std::fs::File::open(log_path(run_dir, machine.id, format))?;
        let mut reader = clocklab_log::LogReader::new(io::BufReader::new(file));
        let records: Vec<_> = reader.by_ref().map(|line| line.record).collect();
        logs.insert(machine.id, records);
        diagnostics.insert(machine.id, reader.into_diagnostics());
    }
    Ok(RunLogs { manifest, logs, diagnostics })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_dirs_are_never_reused() {
        let parent = tempfile::tempdir().unwrap();
        let first = create_results_dir(parent.path(), "2026-11-24T04-43-13").unwrap();
        std::fs::write(first.join("keep"), "x").unwrap();
        let second = create_results_dir(parent.path(), "2026-11-24T04-43-13").unwrap();
        assert_ne!(first, second);
        assert!(second.ends_with("2026-11-24T04-43-13-2"));
        assert!(first.join("keep").exists());
    }

    #[test]
    fn log_file_names() {
        assert_eq!(log_file_id("machine_2.log"), Some((2, 0)));
        assert_eq!(log_file_id("machine_12.jsonl"), Some((12, 1)));
        assert_eq!(log_file_id("process_3.log"), Some((3, 0)));
        assert_eq!(log_file_id("process_3.jsonl"), None);
        assert_eq!(log_file_id("manifest.json"), None);
        assert_eq!(log_file_id("machine_x.log"), None);
    }

    #[test]
    fn finds_the_logs_of_a_run_and_prefers_text() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["machine_1.log", "machine_1.jsonl", "machine_2.jsonl", "manifest.json", "notes.txt"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let logs = find_logs(dir.path()).unwrap();
        assert_eq!(logs.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert!(logs[&1].ends_with("machine_1.log"));
        assert!(logs[&2].ends_with("machine_2.jsonl"));
    }

    #[test]
    fn layout_names() {
        let dir = run_dir(Path::new("out"), "baseline", 3);
        assert_eq!(dir, Path::new("out/baseline/run_3"));
        assert_eq!(log_path(&dir, 2, LogFormat::Text), Path::new("out/baseline/run_3/machine_2.log"));
        assert_eq!(log_path(&dir, 2, LogFormat::Jsonl), Path::new("out/baseline/run_3/machine_2.jsonl"));
        assert_eq!(manifest_path(&dir), Path::new("out/baseline/run_3/manifest.json"));
    }
}
