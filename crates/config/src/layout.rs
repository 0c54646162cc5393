//! Where results go: `<out>/<experiment>/run_<k>/`, with `machine_<id>.log`
//! (and `.jsonl`) and `manifest.json` in each run folder; `config.toml` and
//! `analysis/` beside the experiments. A machine started by hand writes
//! `machine_<id>.json` (its [`MachineManifest`]) beside its log. A run folder
//! of the reference implementation holds `process_<id>.log` instead.
//!
//! Only this module knows the folder layout; readers of results ask it, and
//! experiment names are checked against it ([`check_experiment_name`]).
//! Manifests are written atomically, as every output is ([`crate::output`]):
//! a reader (or a full disk) never sees half of one.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use clocklab_log::LogFormat;
use clocklab_model::MachineId;

use crate::{MachineManifest, RunManifest};

/// The manifest's file name in a run folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The configuration's file name in a results folder.
pub const CONFIG_FILE: &str = "config.toml";

/// The analysis' folder in a results folder.
pub const ANALYSIS_DIR: &str = "analysis";

/// What the command line changed, in a results folder ([`crate::CommandRecord`]).
pub const COMMAND_FILE: &str = "command.json";

/// Names that a results folder holds beside its experiments, which an
/// experiment must therefore not take.
const RESERVED_NAMES: &[&str] = &[ANALYSIS_DIR, CONFIG_FILE, MANIFEST_FILE, COMMAND_FILE];

/// Why `name` cannot name an experiment's folder, if it cannot: it must be
/// letters, digits, `-`, `_` or `.`, not start with a dot (so not `.` or
/// `..`), hold at most [`crate::limits::NAME_LEN_MAX`] bytes, and not be a
/// name the results folder uses itself (`analysis`, `config.toml`, …) or a
/// run folder's (`run_<k>`).
pub fn check_experiment_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty (it names a folder)".into());
    }
    if name.len() > crate::limits::NAME_LEN_MAX {
        return Err(format!("must be at most {} bytes long (it names a folder)", crate::limits::NAME_LEN_MAX));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) || name.starts_with('.') {
        return Err("must be letters, digits, '-', '_' or '.', not starting with '.' (it names a folder)".into());
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_NAMES.contains(&lower.as_str()) {
        return Err(format!("is a name the results folder uses itself (reserved: {})", RESERVED_NAMES.join(", ")));
    }
    if lower.strip_prefix("run_").is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())) {
        return Err("looks like a run folder (run_<k>), which an experiment folder holds".into());
    }
    Ok(())
}

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

/// Machine `id`'s manifest in `dir` (beside its log): `machine_<id>.json`.
pub fn machine_manifest_path(dir: &Path, id: MachineId) -> PathBuf {
    dir.join(format!("machine_{id}.json"))
}

/// Writes `manifest` as the manifest of the run in `run_dir`, atomically.
pub fn write_manifest(run_dir: &Path, manifest: &RunManifest) -> io::Result<()> {
    write_atomically(&manifest_path(run_dir), manifest.to_json().as_bytes())
}

/// Writes what the command line changed into the results folder `dir`, atomically.
pub fn write_command(dir: &Path, record: &crate::CommandRecord) -> io::Result<()> {
    write_atomically(&dir.join(COMMAND_FILE), record.to_json().as_bytes())
}

/// What the command line changed in the results folder `dir`, if it says.
pub fn read_command(dir: &Path) -> Option<crate::CommandRecord> {
    crate::CommandRecord::from_json(&std::fs::read_to_string(dir.join(COMMAND_FILE)).ok()?)
}

/// Writes `manifest` beside machine `manifest.id`'s log in `dir`, atomically.
pub fn write_machine_manifest(dir: &Path, manifest: &MachineManifest) -> io::Result<()> {
    write_atomically(&machine_manifest_path(dir, manifest.id), manifest.to_json().as_bytes())
}

/// The standalone machines' manifests in `dir`, by id, and the errors of
/// those that could not be read, are not machine manifests or hold a number
/// out of its range (each checked as [`MachineManifest::read`] does). One
/// whose id is not its file name's is left out.
pub fn read_machine_manifests(dir: &Path) -> (BTreeMap<MachineId, MachineManifest>, Vec<crate::ConfigError>) {
    let mut manifests = BTreeMap::new();
    let mut damaged = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return (manifests, damaged) };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix("machine_"))
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<MachineId>().ok())
        else {
            continue;
        };
        match MachineManifest::read(&entry.path()) {
            Ok(manifest) if manifest.id == id => {
                manifests.insert(id, manifest);
            }
            Ok(_) => {}
            Err(error) => damaged.push(error),
        }
    }
    (manifests, damaged)
}

/// Writes `bytes` to `path` so that `path` is either what it was or all of
/// `bytes`, never a part, and never through a link planted at its name (see
/// [`crate::output`]).
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    crate::output::write_file(path, bytes)
}

/// The manifest of the run in `run_dir` when it has no `manifest.json` but
/// the manifests of machines started by hand ([`RunManifest::of_machines`]);
/// `Ok(None)` when it has none.
///
/// # Errors
///
/// Every machine manifest that cannot be read or breaks a range.
pub fn machines_run_manifest(run_dir: &Path) -> Result<Option<RunManifest>, Vec<crate::ConfigError>> {
    let folder = run_dir.file_name().map_or_else(|| "machines".into(), |n| n.to_string_lossy().into_owned());
    let (manifests, damaged) = read_machine_manifests(run_dir);
    if !damaged.is_empty() {
        return Err(damaged);
    }
    Ok(RunManifest::of_machines(&manifests, &folder))
}

/// The machine logs in a run folder, by machine id: `machine_<id>.log`,
/// `machine_<id>.jsonl` or the reference's `process_<id>.log`; when a
/// machine has both, the text log is preferred. Empty if `dir` holds none.
pub fn find_logs(dir: &Path) -> io::Result<BTreeMap<MachineId, PathBuf>> {
    Ok(find_logs_reporting(dir)?.logs)
}

/// The logs of a run folder, and the files that look like logs and were not used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FoundLogs {
    /// The machine logs, by machine id.
    pub logs: BTreeMap<MachineId, PathBuf>,
    /// Files that look like logs and were left out, and why.
    pub ignored: Vec<(PathBuf, String)>,
}

/// [`find_logs`], saying which files it left out: a log whose name is not
/// the canonical `machine_<id>` (`machine_01.log`) loses to the canonical
/// one; `machine_<id>.jsonl` beside `machine_<id>.log` is expected and not
/// reported.
pub fn find_logs_reporting(dir: &Path) -> io::Result<FoundLogs> {
    // (preference, path): a lower preference wins, so the canonical name
    // beats a padded one and `.log` beats `.jsonl`.
    let mut found: BTreeMap<MachineId, (u8, PathBuf)> = BTreeMap::new();
    let mut ignored = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some((id, preference)) = log_file_id(name) else { continue };
        match found.get(&id) {
            Some((existing, _)) if *existing <= preference => ignored.push(path),
            _ => {
                if let Some((_, replaced)) = found.insert(id, (preference, path)) {
                    ignored.push(replaced);
                }
            }
        }
    }
    let is_other_format = |path: &Path, used: &Path| used.with_extension("") == path.with_extension("");
    let ignored = ignored
        .into_iter()
        .filter_map(|path| {
            let (id, _) = path.file_name().and_then(|n| n.to_str()).and_then(log_file_id)?;
            let (_, used) = found.get(&id)?;
            (!is_other_format(&path, used)).then(|| {
                let why = format!("machine {id}'s log is {}", used.display());
                (path, why)
            })
        })
        .collect();
    Ok(FoundLogs { logs: found.into_iter().map(|(id, (_, path))| (id, path)).collect(), ignored })
}

/// The machine id a log file's name carries, and how much it is preferred:
/// the canonical `.log` first, then `.jsonl`, then a name whose number is
/// written another way (`machine_01.log`).
fn log_file_id(name: &str) -> Option<(MachineId, u8)> {
    let (stem, format) =
        if let Some(stem) = name.strip_suffix(".log") { (stem, 0) } else { (name.strip_suffix(".jsonl")?, 1) };
    let number = stem.strip_prefix("machine_").or_else(|| (format == 0).then(|| stem.strip_prefix("process_"))?)?;
    let id: MachineId = number.parse().ok()?;
    let canonical = id.to_string() == number;
    Some((id, if canonical { format } else { 2 + format }))
}

/// Creates a new, empty results folder `<parent>/<stamp>` (adding `-2`, `-3`,
/// … if it exists), never touching earlier results.
pub fn create_results_dir(parent: &Path, stamp: &str) -> io::Result<PathBuf> {
    crate::output::create_ancestors(parent)?;
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

/// What is at a path given as a folder to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// A folder (or a link to one).
    Folder,
    /// Something else.
    NotAFolder,
    /// Nothing.
    Missing,
}

/// What is at `dir`; an error only if the system cannot say (a folder
/// above it that may not be searched, say).
pub fn look_at_folder(dir: &Path) -> io::Result<Found> {
    match std::fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => Ok(Found::Folder),
        Ok(_) => Ok(Found::NotAFolder),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Found::Missing),
        Err(error) => Err(error),
    }
}

/// The name of the folder `dir`, resolved first (so that `.` and `..` have
/// theirs), if it has one.
pub fn folder_name(dir: &Path) -> Option<String> {
    let resolved = dir.canonicalize().ok();
    resolved.as_deref().unwrap_or(dir).file_name().map(|name| name.to_string_lossy().into_owned())
}

/// A run folder's experiment and run, as every command names them: the
/// experiment its manifest names (else the folder it is in, else
/// `experiment`), and the run its folder's name (else `run`), or, for
/// machines started by hand, the instant they started.
pub fn run_names(dir: &Path, manifest: Option<&RunManifest>) -> (String, String) {
    let experiment = match manifest {
        Some(manifest) => manifest.experiment.name.clone(),
        None => dir
            .canonicalize()
            .ok()
            .and_then(|path| path.parent().and_then(Path::file_name).map(|name| name.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "experiment".to_string()),
    };
    let run = match manifest {
        Some(manifest) if manifest.started_by_hand() => manifest.run_name(),
        _ => folder_name(dir).unwrap_or_else(|| "run".to_string()),
    };
    (experiment, run)
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
        self.manifest.expectations(tick_tolerance)
    }

    /// Runs the log check on this run.
    pub fn check(&self, tick_tolerance: u64) -> clocklab_log::check::CheckReport {
        clocklab_log::check::check_run(&self.logs, &self.expectations(tick_tolerance))
    }
}

/// Reads a run folder written by either runtime: `manifest.json` and every
/// machine's log in `format`.
pub fn read_run(run_dir: &Path, format: LogFormat) -> io::Result<RunLogs> {
    let manifest = crate::RunManifest::read(&manifest_path(run_dir)).map_err(|error| match error {
        crate::ConfigError::Read { source, .. } => source,
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    })?;
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
        assert_eq!(log_file_id("machine_01.log"), Some((1, 2)), "a padded name loses to the canonical one");
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
    fn experiment_names_are_checked_against_the_layout() {
        for good in ["baseline", "small-rate-variation", "a.b_c", "run_x", "analysis2", "Run_1b"] {
            assert_eq!(check_experiment_name(good), Ok(()), "{good}");
        }
        for (bad, reason) in [
            ("", "must not be empty"),
            ("..", "not starting with '.'"),
            (".", "not starting with '.'"),
            (".hidden", "not starting with '.'"),
            ("a/b", "letters, digits"),
            ("a\\b", "letters, digits"),
            ("a b", "letters, digits"),
            ("analysis", "reserved"),
            ("Analysis", "reserved"),
            ("config.toml", "reserved"),
            ("manifest.json", "reserved"),
            ("run_3", "run folder"),
        ] {
            let error = check_experiment_name(bad).unwrap_err();
            assert!(error.contains(reason), "{bad:?}: {error}");
        }
        assert!(check_experiment_name(&"x".repeat(101)).unwrap_err().contains("at most 100 bytes"));
    }

    #[test]
    fn manifests_are_replaced_whole_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["m.json"], "no temporary file is left");
        // A folder that does not exist: an error, and nothing written.
        assert!(write_atomically(&dir.path().join("missing/m.json"), b"x").is_err());
    }

    #[test]
    fn layout_names() {
        let dir = run_dir(Path::new("out"), "baseline", 3);
        assert_eq!(dir, Path::new("out/baseline/run_3"));
        assert_eq!(log_path(&dir, 2, LogFormat::Text), Path::new("out/baseline/run_3/machine_2.log"));
        assert_eq!(log_path(&dir, 2, LogFormat::Jsonl), Path::new("out/baseline/run_3/machine_2.jsonl"));
        assert_eq!(manifest_path(&dir), Path::new("out/baseline/run_3/manifest.json"));
        assert_eq!(machine_manifest_path(Path::new("logs"), 2), Path::new("logs/machine_2.json"));
    }
}
