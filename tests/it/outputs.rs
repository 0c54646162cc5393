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
        // The list of the analysis' own files is hidden, but no temporary file.
        .filter(|name| name.starts_with('.') && name != clocklab_analyze::report::OUTPUTS_LIST)
        .collect();
    assert!(names.is_empty(), "no temporary file is left: {names:?}");
}

/// `clocklab run` with files limited to `blocks` of 512 bytes, as on a disk
/// that is full: writes past it fail ("File too large") instead of killing.
fn run_on_a_full_disk(blocks: u32, out: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("sh")
        .args(["-c", &format!("ulimit -f {blocks} && trap '' XFSZ && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_clocklab"))
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// Whether the output file at `path` was written to its end.
fn is_whole(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
        Some("png") => bytes.ends_with(&[0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]),
        Some("svg") => bytes.trim_ascii_end().ends_with(b"</svg>"),
        Some("html") => bytes.trim_ascii_end().ends_with(b"</html>"),
        _ => bytes.ends_with(b"\n"),
    }
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(files_under(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn an_analysis_that_fills_the_disk_says_the_runs_are_complete_and_leaves_no_partial_file() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("results");
    // 32 KB a file: room for every log and manifest of the run, not for the report.
    let args = ["--experiment", "baseline", "--runs", "1", "--duration", "2", "--seed", "3"];
    let output = run_on_a_full_disk(64, &out, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let error = stderr.lines().last().unwrap();
    assert!(error.starts_with("clocklab: error: the runs are complete; the analysis failed: "), "{stderr}");
    assert!(error.ends_with(": File too large (os error 27)"), "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "the system's error, once: {stderr}");
    // The runs are whole; so is every file the analysis wrote, and none is left half written.
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let run_dir = results.join("baseline/run_1");
    assert!(run_dir.join("manifest.json").is_file());
    for id in 1..=3 {
        crate::util::check_text_lines(&run_dir.join(format!("machine_{id}.log")), id);
    }
    let written = files_under(&results.join("analysis"));
    assert!(written.iter().any(|path| path.ends_with("summary.json")), "{written:?}");
    for path in &written {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(!name.starts_with('.'), "a temporary file is left: {}", path.display());
        assert!(is_whole(path), "{} is cut short", path.display());
    }
}

#[test]
fn runs_that_could_not_write_their_logs_say_so_before_the_analysis() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("results");
    // 1 KB a file: the logs fill up during the run.
    let output = run_on_a_full_disk(2, &out, &["--experiment", "baseline", "--runs", "1", "--duration", "3"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let failed = lines.iter().position(|l| l.starts_with("clocklab: run failed: baseline/run_1: ")).expect(&stderr);
    assert!(lines[failed].contains("cannot write the log"), "{stderr}");
    assert!(lines[failed].contains("machine_") && lines[failed].contains("File too large (os error 27)"), "{stderr}");
    let last = lines.last().unwrap();
    assert!(last.starts_with("clocklab: error: 1 of 1 runs failed"), "the runs' failure comes first: {stderr}");
    assert!(!last.contains("the runs are complete"), "{stderr}");
}

#[test]
fn a_file_where_an_output_folder_goes_is_named_with_exit_code_2() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("a-file");
    std::fs::write(&file, "mine").unwrap();
    let under = file.join("sub");
    let sim = ["run", "--runtime", "sim", "--experiment", "baseline", "--runs", "1", "--duration", "1"];
    for args in [
        [&sim[..], &["--out", file.to_str().unwrap()]].concat(),
        [&sim[..], &["--out", under.to_str().unwrap()]].concat(),
        vec!["bench", "--duration", "10", "--logs", file.to_str().unwrap()],
    ] {
        let output = run_clocklab(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("{}: is not a folder", file.display())), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    // An export's file goes into folders made for it.
    let results = simulated_results(root.path());
    let csv = root.path().join("new/folders/runs.csv");
    let output =
        run_clocklab(&["export", results.to_str().unwrap(), "--format", "csv", "--out", csv.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(std::fs::read_to_string(&csv).unwrap().starts_with("experiment,"));
}
