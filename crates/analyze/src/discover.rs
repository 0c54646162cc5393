//! Finding runs: a folder is a run if it holds `machine_<id>.log`,
//! `machine_<id>.jsonl` or `process_<id>.log` (the reference's name); an
//! experiment folder holds run folders; a results folder holds experiment
//! folders (its `analysis/` folder is skipped), in the order its
//! `config.toml` lists them when it has one.
//!
//! Damaged folders are reported, never guessed at: a log whose name is not
//! the canonical `machine_<id>` (`machine_01.log`) is ignored when the
//! canonical one exists; a folder reached twice (a symbolic link to another
//! run) is analysed once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::AnalyzeError;

/// One run folder and its machines' log files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    /// The folder's name (`run_3`).
    pub name: String,
    /// The folder.
    pub path: PathBuf,
    /// Each machine's log file, by the id in its name (`.log` preferred over `.jsonl`).
    pub logs: BTreeMap<u32, PathBuf>,
    /// Files that look like logs and were not used, and why.
    pub ignored: Vec<(PathBuf, String)>,
}

/// One experiment folder and its runs, in run order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExperimentDir {
    /// The folder's name, which is the experiment's name.
    pub name: String,
    /// Its runs.
    pub runs: Vec<RunDir>,
}

/// The experiments under `dir`, which is a results, experiment or run folder.
pub fn discover(dir: &Path) -> Result<Vec<ExperimentDir>, AnalyzeError> {
    let io_error = |source| AnalyzeError::Io { path: dir.to_path_buf(), source };
    match clocklab_config::layout::look_at_folder(dir).map_err(io_error)? {
        clocklab_config::layout::Found::Folder => {}
        clocklab_config::layout::Found::NotAFolder => return Err(AnalyzeError::NotAFolder(dir.to_path_buf())),
        clocklab_config::layout::Found::Missing => return Err(AnalyzeError::Missing(dir.to_path_buf())),
    }
    if let Some(run) = run_dir(dir).map_err(io_error)? {
        let (name, _) = clocklab_config::layout::run_names(dir, manifest_of(dir).as_ref());
        return Ok(vec![ExperimentDir { name, runs: vec![run] }]);
    }
    let mut seen = std::collections::BTreeSet::new();
    let runs = runs_in(dir, &mut seen).map_err(io_error)?;
    if !runs.is_empty() {
        return Ok(vec![ExperimentDir { name: folder_name(dir), runs }]);
    }
    let mut experiments = Vec::new();
    for sub in sorted_subfolders(dir).map_err(io_error)? {
        if sub.file_name().is_some_and(|name| name == "analysis") {
            continue;
        }
        let runs = runs_in(&sub, &mut seen).map_err(|source| AnalyzeError::Io { path: sub.clone(), source })?;
        if !runs.is_empty() {
            experiments.push(ExperimentDir { name: folder_name(&sub), runs });
        }
    }
    if experiments.is_empty() {
        return Err(AnalyzeError::NoLogs(dir.to_path_buf()));
    }
    // The configured order, when the results folder says it.
    if let Some(order) = configured_order(dir) {
        experiments.sort_by_key(|e| order.iter().position(|name| *name == e.name).unwrap_or(usize::MAX));
    }
    Ok(experiments)
}

/// The experiments' names in the order the results folder's `config.toml`
/// lists them, if it has a readable one.
fn configured_order(dir: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(dir.join(clocklab_config::layout::CONFIG_FILE)).ok()?;
    let value: toml::Table = text.parse().ok()?;
    let experiments = value.get("experiments")?.as_array()?;
    Some(experiments.iter().filter_map(|e| e.get("name")?.as_str().map(str::to_string)).collect())
}

fn folder_name(dir: &Path) -> String {
    clocklab_config::layout::folder_name(dir).unwrap_or_else(|| "experiment".to_string())
}

/// The run folders directly under `dir`, ordered by run number then name;
/// `seen` holds the folders already taken (by their canonical path).
fn runs_in(dir: &Path, seen: &mut std::collections::BTreeSet<PathBuf>) -> std::io::Result<Vec<RunDir>> {
    let mut runs = Vec::new();
    for sub in sorted_subfolders(dir)? {
        let canonical = sub.canonicalize().unwrap_or_else(|_| sub.clone());
        if let Some(run) = run_dir(&sub)?
            && seen.insert(canonical)
        {
            runs.push(run);
        }
    }
    runs.sort_by(|a, b| (run_number(&a.name), &a.name).cmp(&(run_number(&b.name), &b.name)));
    Ok(runs)
}

fn run_number(name: &str) -> u64 {
    name.strip_prefix("run_").and_then(|k| k.parse().ok()).unwrap_or(u64::MAX)
}

fn sorted_subfolders(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut subs: Vec<PathBuf> =
        std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    subs.sort();
    Ok(subs)
}

/// `dir` as a run, if it holds machine logs. A run of machines started by
/// hand is named after when they started, which their manifests say, not
/// after the folder they wrote to.
fn run_dir(dir: &Path) -> std::io::Result<Option<RunDir>> {
    let found = clocklab_config::layout::find_logs_reporting(dir)?;
    if found.logs.is_empty() {
        return Ok(None);
    }
    let (_, name) = clocklab_config::layout::run_names(dir, manifest_of(dir).as_ref());
    Ok(Some(RunDir { name, path: dir.to_path_buf(), logs: found.logs, ignored: found.ignored }))
}

/// The run manifest of `dir` for its names: its `manifest.json`, or that of
/// machines started by hand; none if neither can be read (the analysis
/// reports a damaged one).
fn manifest_of(dir: &Path) -> Option<clocklab_config::RunManifest> {
    use clocklab_config::{RunManifest, layout};
    match RunManifest::read(&layout::manifest_path(dir)) {
        Ok(manifest) => Some(manifest),
        Err(error) if error.is_missing() => layout::machines_run_manifest(dir).ok().flatten(),
        Err(_) => None,
    }
}

/// The folder to read when `dir` is the folder `clocklab run --out` wrote
/// into: it holds results folders (each with its `config.toml`) and no run
/// of its own, and the newest of them (their names are their start
/// instants) is the one meant. Any other folder is itself.
pub fn results_folder(dir: &Path) -> PathBuf {
    let is_results = |path: &Path| path.join(clocklab_config::layout::CONFIG_FILE).is_file();
    if is_results(dir) || clocklab_config::layout::find_logs(dir).is_ok_and(|logs| !logs.is_empty()) {
        return dir.to_path_buf();
    }
    match sorted_subfolders(dir) {
        Ok(subs) => subs.into_iter().rfind(|sub| is_results(sub)).unwrap_or_else(|| dir.to_path_buf()),
        Err(_) => dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_runs_at_every_level_and_prefers_text() {
        let root = tempfile::tempdir().unwrap();
        for (experiment, run) in
            [("baseline", "run_1"), ("baseline", "run_10"), ("baseline", "run_2"), ("both", "run_1")]
        {
            let dir = root.path().join(experiment).join(run);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("machine_1.log"), "").unwrap();
            std::fs::write(dir.join("machine_1.jsonl"), "").unwrap();
            std::fs::write(dir.join("machine_2.jsonl"), "").unwrap();
        }
        std::fs::create_dir_all(root.path().join("analysis/figures")).unwrap();
        let experiments = discover(root.path()).unwrap();
        assert_eq!(experiments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["baseline", "both"]);
        let runs: Vec<&str> = experiments[0].runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(runs, ["run_1", "run_2", "run_10"]);
        let logs = &experiments[0].runs[0].logs;
        assert!(logs[&1].ends_with("machine_1.log"));
        assert!(logs[&2].ends_with("machine_2.jsonl"));

        let one = discover(&root.path().join("both")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name, "both");
        let run = discover(&root.path().join("baseline/run_2")).unwrap();
        assert_eq!(run[0].name, "baseline");
        assert_eq!(run[0].runs.len(), 1);

        // A results folder's configuration gives the experiments' order.
        std::fs::write(
            root.path().join("config.toml"),
            "[[experiments]]\nname = \"both\"\nmachines = 3\nmax_clock_rate = 3\nmax_event_num = 5\nruns = 1\nduration = 1.0\n\n\
             [[experiments]]\nname = \"baseline\"\nmachines = 3\nmax_clock_rate = 6\nmax_event_num = 10\nruns = 1\nduration = 1.0\n",
        )
        .unwrap();
        let ordered = discover(root.path()).unwrap();
        assert_eq!(ordered.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["both", "baseline"]);

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(discover(empty.path()), Err(AnalyzeError::NoLogs(_))));
    }

    #[test]
    fn damaged_folders_are_taken_once_and_odd_names_are_reported() {
        let root = tempfile::tempdir().unwrap();
        let run = root.path().join("baseline/run_1");
        std::fs::create_dir_all(&run).unwrap();
        for name in ["machine_1.log", "machine_01.log", "machine_2.log", "machine_2.jsonl"] {
            std::fs::write(run.join(name), "").unwrap();
        }
        // A second name for the same run folder.
        std::os::unix::fs::symlink(&run, root.path().join("baseline/run_2")).unwrap();
        std::fs::write(
            root.path().join("config.toml"),
            "[[experiments]]\nname = \"zeta\"\n[[experiments]]\nname = \"baseline\"\n",
        )
        .unwrap();
        let zeta = root.path().join("zeta/run_1");
        std::fs::create_dir_all(&zeta).unwrap();
        std::fs::write(zeta.join("machine_1.log"), "").unwrap();
        let experiments = discover(root.path()).unwrap();
        assert_eq!(
            experiments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["zeta", "baseline"],
            "the configured order"
        );
        let baseline = &experiments[1];
        assert_eq!(baseline.runs.len(), 1, "the linked folder is the same run");
        let run = &baseline.runs[0];
        assert!(run.logs[&1].ends_with("machine_1.log"));
        assert_eq!(run.ignored.len(), 1, "{:?}", run.ignored);
        assert!(run.ignored[0].0.ends_with("machine_01.log") && run.ignored[0].1.contains("machine_1.log"));
    }
}
