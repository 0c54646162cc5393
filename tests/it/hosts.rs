//! Runs on several hosts, for real, on one computer: hosts as network
//! namespaces (each with its own address on a bridge), reached through the
//! `netns` launcher or a launcher of the test's own; `clocklab hosts check`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clocklab_config::{RunManifest, RunStatus};

use crate::netns::{Namespaces, can_make_namespaces};
use crate::util::{clocklab, run_clocklab};

/// The one results folder under `out`.
pub fn results_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.remove(0)
}

/// The manifests of every run under `results`.
pub fn manifests(results: &Path) -> Vec<(PathBuf, RunManifest)> {
    let mut found = Vec::new();
    for experiment in std::fs::read_dir(results).unwrap().flatten().filter(|e| e.path().is_dir()) {
        for run in std::fs::read_dir(experiment.path()).unwrap().flatten() {
            let path = run.path().join("manifest.json");
            if path.exists() {
                found.push((run.path(), RunManifest::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap()));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// `clocklab check DIR` passes: exit 0, every run holds.
pub fn assert_checks(dir: &Path) -> String {
    let out = run_clocklab(&["check", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("all holds"), "{stdout}");
    stdout
}

/// A run that ended as planned: `ok`, or `degraded` only because a machine
/// fell behind its schedule (the test shares the CPU), never for a host.
pub fn assert_ran_as_planned(run: &Path, status: &RunStatus) {
    match status {
        RunStatus::Ok => {}
        RunStatus::Degraded { cause, .. } if cause.contains("fell behind its schedule") && !cause.contains("host") => {}
        other => panic!("{}: {other:?}", run.display()),
    }
}

/// Every log of every run is byte for byte its host's copy, in the host's
/// workdir (`host-<name>` under `dir`).
fn assert_logs_came_home(dir: &Path, results: &Path) {
    for (run, manifest) in manifests(results) {
        for host in &manifest.hosts {
            let workdir = dir.join(format!("host-{}", host.name));
            for &id in &host.machines {
                let name = format!("machine_{id}.log");
                let here = std::fs::read(run.join(&name)).unwrap();
                let there: Vec<PathBuf> = std::fs::read_dir(&workdir)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path().join(&name))
                    .filter(|p| p.exists() && std::fs::read(p).unwrap() == here)
                    .collect();
                assert_eq!(there.len(), 1, "{}: {name} is not its host's copy", run.display());
                assert!(here.ends_with(b"\n") && !here.is_empty());
            }
        }
    }
}

#[test]
fn three_namespace_hosts_run_the_classic_experiment_and_the_fault_suite_and_check() {
    if !can_make_namespaces("three_namespace_hosts_run_the_classic_experiment_and_the_fault_suite_and_check") {
        return;
    }
    let hosts = Namespaces::create("three", 1, 3);
    let dir = tempfile::tempdir().unwrap();
    let file = hosts.hosts_file(dir.path(), |_| "\"netns\"".into());

    // The classic experiment, while every process of the run is looked at:
    // no command line carries the token or a setting.
    let out = dir.path().join("classic");
    let mut run = clocklab()
        .args(["run", "--hosts", file.to_str().unwrap(), "--experiment", "baseline", "--runs", "1"])
        .args(["--duration", "3", "--no-analyze", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while run.try_wait().unwrap().is_none() && Instant::now() < deadline {
        // This run's processes: itself, and those in its hosts (other
        // tests run the same commands side by side).
        for (pid, cmdline) in clocklab_processes() {
            if pid == run.id() || hosts.contains(pid) {
                seen.insert(cmdline);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = run.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let exe = env!("CARGO_BIN_EXE_clocklab");
    let agents = [1, 2, 3].map(|id| format!("{exe} agent --machine {id}"));
    let machines = [1, 2, 3].map(|id| format!("{exe} machine {id} --orchestrated"));
    for cmdline in &seen {
        let allowed = cmdline.starts_with(&format!("{exe} run --hosts"))
            || cmdline == &format!("{exe} agent")
            || agents.contains(cmdline)
            || machines.contains(cmdline);
        assert!(allowed, "a command line with more than it needs: {cmdline}");
    }
    assert!(seen.iter().any(|c| agents.contains(c)) && seen.iter().any(|c| machines.contains(c)), "{seen:?}");
    let results = results_dir(&out);
    let runs = manifests(&results);
    let (run, manifest) = &runs[0];
    assert_ran_as_planned(run, &manifest.status);
    let placed: Vec<(String, Vec<u32>)> = manifest.hosts.iter().map(|h| (h.name.clone(), h.machines.clone())).collect();
    assert_eq!(placed, [1, 2, 3].map(|i| (format!("clocklab-three-{i}"), vec![i])));
    for (host, machine) in manifest.hosts.iter().zip(&manifest.machines) {
        assert!(machine.address.starts_with(&format!("{}:", host.address)), "{host:?} {machine:?}");
        assert_eq!(host.launcher, ["ip", "netns", "exec", &host.name, exe]);
        // One computer, one clock: the offsets are 0 within their uncertainty.
        assert!(host.clock_offset_uncertainty_us > 0, "{host:?}");
        assert!(host.clock_offset_us.abs() <= host.clock_offset_uncertainty_us + 1_000, "{host:?}");
        assert!(host.clock_offset_end_us.is_some_and(|end| end.abs() <= 2_000), "{host:?}");
    }
    assert_checks(&results);
    assert_logs_came_home(dir.path(), &results);

    // The fault suite: partitions, losses, crashes and restarts, a pause,
    // clock steps, with exact accounting.
    let out = dir.path().join("faults");
    let output = run_clocklab(&[
        "run",
        "--hosts",
        file.to_str().unwrap(),
        "--suite",
        "faults",
        "--no-analyze",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = results_dir(&out);
    for (run, manifest) in manifests(&results) {
        assert_ran_as_planned(&run, &manifest.status);
        assert_eq!(manifest.hosts.len(), 3);
    }
    let checked = assert_checks(&results);
    assert!(checked.contains("taken by a crash"), "{checked}");
    assert_logs_came_home(dir.path(), &results);
    // The faults acted on the machine processes on their hosts: the crashed
    // machine's host wrote its `Crashed` line, and a new incarnation was
    // started there (its log is its host's, byte for byte, above); the
    // paused machine (the agent, which `ip netns exec` becomes, went on)
    // wrote nothing for most of the 8 s of its pause (a loaded CPU may
    // deliver the stop late).
    let crashed = crate::util::read_log(&results.join("crash-fresh/run_1/machine_2.log"));
    let events: Vec<&str> = crashed.iter().map(|r| r.event.kind()).collect();
    assert!(events.contains(&"crashed") && events.contains(&"restarted"), "{events:?}");
    let paused = crate::util::read_log(&results.join("long-pause/run_1/machine_1.log"));
    let gap = paused.windows(2).map(|pair| pair[1].time_us - pair[0].time_us).max().unwrap();
    assert!(gap >= 6_000_000, "machine 1's longest silence: {gap} µs");
}

/// Every `clocklab` process, with its command line.
fn clocklab_processes() -> Vec<(u32, String)> {
    let exe = env!("CARGO_BIN_EXE_clocklab");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim_end().to_string();
        if cmdline.starts_with(exe) {
            found.push((pid, cmdline));
        }
    }
    found
}

#[test]
fn hosts_check_names_the_host_and_the_cause() {
    if !can_make_namespaces("hosts_check_names_the_host_and_the_cause") {
        return;
    }
    let hosts = Namespaces::create("check", 2, 1);
    let dir = tempfile::tempdir().unwrap();
    let file = hosts.hosts_file(dir.path(), |_| "\"netns\"".into());
    let out = run_clocklab(&["hosts", "check", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = regex::Regex::new(
        r"^clocklab-check-1: clocklab 0\.1\.0, port \d+ free on 10\.231\.2\.1, clock [+-]\d+ µs \(± \d+ µs\) against this computer's\n$",
    )
    .unwrap();
    assert!(line.is_match(&stdout), "{stdout}");

    // A host that cannot be reached, one whose address is not its own, one
    // with another version of clocklab: each named, with its cause; exit 2.
    let bad = dir.path().join("bad.toml");
    let other_version = r#"["sh", "-c", "echo '{\"hello\":{\"version\":\"0.0.9\",\"pid\":1}}'; cat >/dev/null", "sh"]"#;
    std::fs::write(
        &bad,
        format!(
            "[[hosts]]\nname = \"gone\"\naddress = \"10.231.2.1\"\nlauncher = \"netns\"\n\n\
             [[hosts]]\nname = \"{}\"\naddress = \"10.231.2.77\"\nlauncher = \"netns\"\n\n\
             [[hosts]]\nname = \"old\"\naddress = \"10.231.2.1\"\nlauncher = {other_version}\n",
            hosts.names[0]
        ),
    )
    .unwrap();
    let results = dir.path().join("results");
    let run = ["run", "--hosts", bad.to_str().unwrap(), "--duration", "1", "--runs", "1", "--out"];
    for args in [vec!["hosts", "check", bad.to_str().unwrap()], [&run[..], &[results.to_str().unwrap()]].concat()] {
        let out = run_clocklab(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                "host gone: its launcher ended (255) before its greeting: Cannot open network namespace \"gone\""
            ),
            "{stderr}"
        );
        assert!(
            stderr.contains(
                "host clocklab-check-1: no port of 10.231.2.77 can be bound there: Cannot assign requested address"
            ),
            "{stderr}"
        );
        assert!(stderr.contains("host old: it runs clocklab 0.0.9, this is clocklab 0.1.0"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert!(!dir.path().join("results").exists(), "nothing is written before the hosts answer");
}
