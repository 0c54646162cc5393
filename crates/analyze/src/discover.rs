//! Finding runs: a folder is a run if it holds `machine_<id>.log`,
//! `machine_<id>.jsonl` or `process_<id>.log` (the reference's name); an
//! experiment folder holds run folders; a results folder holds experiment
//! folders (its `analysis/` folder is skipped).

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
    if !dir.is_dir() {
        return Err(AnalyzeError::NotAFolder(dir.to_path_buf()));
    }
    if let Some(run) = run_dir(dir).map_err(io_error)? {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|path| path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "experiment".to_string());
        return Ok(vec![ExperimentDir { name, runs: vec![run] }]);
    }
    let runs = runs_in(dir).map_err(io_error)?;
    if !runs.is_empty() {
        return Ok(vec![ExperimentDir { name: folder_name(dir), runs }]);
    }
    let mut experiments = Vec::new();
    for sub in sorted_subfolders(dir).map_err(io_error)? {
        if sub.file_name().is_some_and(|name| name == "analysis") {
            continue;
        }
        let runs = runs_in(&sub).map_err(|source| AnalyzeError::Io { path: sub.clone(), source })?;
        if !runs.is_empty() {
            experiments.push(ExperimentDir { name: folder_name(&sub), runs });
        }
    }
    if experiments.is_empty() {
        return Err(AnalyzeError::NoLogs(dir.to_path_buf()));
    }
    Ok(experiments)
}

fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .as_deref()
        .unwrap_or(dir)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "experiment".to_string())
}

/// The run folders directly under `dir`, ordered by run number then name.
fn runs_in(dir: &Path) -> std::io::Result<Vec<RunDir>> {
    let mut runs = Vec::new();
    for sub in sorted_subfolders(dir)? {
        if let Some(run) = run_dir(&sub)? {
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

/// `dir` as a run, if it holds machine logs.
fn run_dir(dir: &Path) -> std::io::Result<Option<RunDir>> {
    let logs = clocklab_config::layout::find_logs(dir)?;
    if logs.is_empty() {
        return Ok(None);
    }
    Ok(Some(RunDir { name: folder_name(dir), path: dir.to_path_buf(), logs }))
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

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(discover(empty.path()), Err(AnalyzeError::NoLogs(_))));
    }
}
