//! Where results go: `<out>/<experiment>/run_<k>/`, with `machine_<id>.log`
//! (and `.jsonl`) and `manifest.json` in each run folder.
//!
//! Only this module knows the folder layout; readers of results ask it.

use std::io;
use std::path::{Path, PathBuf};

use clocklab_log::LogFormat;
use clocklab_model::MachineId;

/// The manifest's file name in a run folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The configuration's file name in a results folder.
pub const CONFIG_FILE: &str = "config.toml";

/// The folder of run `run_idx` (1-based) of `experiment` under `out`.
pub fn run_dir(out: &Path, experiment: &str, run_idx: u32) -> PathBuf {
    out.join(experiment).join(format!("run_{run_idx}"))
}

/// Machine `id`'s log in `run_dir`.
pub fn log_path(run_dir: &Path, id: MachineId, format: LogFormat) -> PathBuf {
    run_dir.join(clocklab_log::file_name(id, format))
}

/// The manifest of the run in `run_dir`.
pub fn manifest_path(run_dir: &Path) -> PathBuf {
    run_dir.join(MANIFEST_FILE)
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
    fn layout_names() {
        let dir = run_dir(Path::new("out"), "baseline", 3);
        assert_eq!(dir, Path::new("out/baseline/run_3"));
        assert_eq!(log_path(&dir, 2, LogFormat::Text), Path::new("out/baseline/run_3/machine_2.log"));
        assert_eq!(log_path(&dir, 2, LogFormat::Jsonl), Path::new("out/baseline/run_3/machine_2.jsonl"));
        assert_eq!(manifest_path(&dir), Path::new("out/baseline/run_3/manifest.json"));
    }
}
