//! Where clocklab writes: never through a link planted where an output goes
//! (exit code 2, naming the path), and never a half-written file.

use std::path::{Path, PathBuf};

use crate::util::run_clocklab;

/// A simulated results folder with one run of `baseline`.
fn simulated_results(root: &Path) -> PathBuf {
    let out = root.join("out");
    let args = ["run", "--runtime", "sim", "--experiment", "baseline", "--runs", "1", "--duration", "2", "--seed", "5"];
    let output = run_clocklab(&[&args[..], &["--no-analyze", "--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path()
}

/// The files under `dir` and what they hold.
fn contents(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn assert_refused(args: &[&str], link: &Path) {
    let output = run_clocklab(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(&format!("{}: is a symbolic link", link.display())), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn links_planted_where_outputs_go_are_refused_and_never_written_through() {
    let root = tempfile::tempdir().unwrap();
    let results = simulated_results(root.path());
    let run_dir = results.join("baseline/run_1");
    let victim = root.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "precious").unwrap();
    let untouched = contents(&victim);
    let keep = victim.join("keep.txt");

    // An `analysis` link in a results folder.
    let analysis = results.join("analysis");
    std::os::unix::fs::symlink(&victim, &analysis).unwrap();
    assert_refused(&["analyze", results.to_str().unwrap()], &analysis);
    // A `diagram.html` link in a run folder.
    let page = run_dir.join("diagram.html");
    std::os::unix::fs::symlink(&keep, &page).unwrap();
    assert_refused(&["diagram", run_dir.to_str().unwrap()], &page);
    // Exports, a static diagram and a starter configuration named by a link.
    let link = root.path().join("link");
    std::os::unix::fs::symlink(&keep, &link).unwrap();
    let (results_arg, link_arg) = (results.to_str().unwrap(), link.to_str().unwrap());
    assert_refused(&["export", results_arg, "--format", "csv", "--out", link_arg], &link);
    assert_refused(&["diagram", run_dir.to_str().unwrap(), "--from", "0", "--to", "1", "--svg", link_arg], &link);
    let folder_link = root.path().join("folder-link");
    std::os::unix::fs::symlink(&victim, &folder_link).unwrap();
    assert_refused(
        &["export", results_arg, "--format", "reference", "--out", folder_link.to_str().unwrap()],
        &folder_link,
    );
    let init = run_clocklab(&["config", "--init", link_arg]);
    assert_eq!(init.status.code(), Some(2), "{}", String::from_utf8_lossy(&init.stderr));

    assert_eq!(contents(&victim), untouched, "nothing was written through a link");
    // Without the links, the same commands write their outputs.
    std::fs::remove_file(&analysis).unwrap();
    std::fs::remove_file(&page).unwrap();
    let output = run_clocklab(&["analyze", results_arg, "--no-diagrams"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(analysis.join("report.html").is_file());
    let names: Vec<String> = std::fs::read_dir(&analysis)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "no temporary file is left: {names:?}");
}
