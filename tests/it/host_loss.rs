//! Failures of a run on several hosts, for real, on namespace hosts: a
//! machine whose launcher dies mid-run (its control channel breaks) stops
//! by itself on its host and ends its log, which is fetched again from
//! where it stopped; a host that cannot be reached again is lost, named,
//! and what arrived of its logs kept; the other hosts lose nothing.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clocklab_config::{RunManifest, RunStatus};

use crate::hosts::{manifests, results_dir};
use crate::netns::{Namespaces, can_make_namespaces};
use crate::util::{Processes, clocklab, clocklab_alive, run_clocklab};

/// The process whose command line is `cmdline` in network namespace
/// `namespace`, if one runs (other tests' hosts run the same commands).
fn process(cmdline: &str, namespace: &str) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let wanted = std::fs::metadata(format!("/run/netns/{namespace}")).ok()?.ino();
    std::fs::read_dir("/proc").unwrap().flatten().find_map(|entry| {
        let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
        let line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let inside = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?.ino() == wanted;
        (inside && String::from_utf8_lossy(&line).replace('\0', " ").trim_end() == cmdline).then_some(pid)
    })
}

/// Waits, at most 30 s, for a process with command line `cmdline` in `namespace`.
fn wait_for(cmdline: &str, namespace: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = process(cmdline, namespace) {
            return pid;
        }
        assert!(Instant::now() < deadline, "no process {cmdline} in {namespace}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a run of 4 machines for 6 s on the two hosts of `hosts` (killed
/// if the test fails before it ends).
fn start_run(hosts: &Path, out: &Path) -> Processes {
    let run = clocklab()
        .args(["run", "--hosts", hosts.to_str().unwrap(), "--experiment", "baseline", "--runs", "1"])
        .args(["--duration", "6", "--machines", "4", "--max-clock-rate", "10", "--no-analyze"])
        .args(["--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Processes(vec![run])
}

/// Machine 3's agent and machine process on host `namespace`, once it has ticked for a while.
fn machine_3(namespace: &str) -> (u32, u32) {
    let exe = env!("CARGO_BIN_EXE_clocklab");
    let agent = wait_for(&format!("{exe} agent --machine 3"), namespace);
    let machine = wait_for(&format!("{exe} machine 3 --orchestrated"), namespace);
    std::thread::sleep(Duration::from_secs(3));
    (agent, machine)
}

fn kill(pid: u32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
}

/// Waits for the run to end (at most 60 s); its one manifest, and what it said on stderr.
fn finish(run: Processes, out: &Path) -> (std::path::PathBuf, RunManifest, String) {
    let output = run.wait_all(Duration::from_secs(60)).remove(0);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let (dir, manifest) = manifests(&results_dir(out)).remove(0);
    (dir, manifest, stderr)
}

/// The last line of machine `id`'s log in `dir`.
fn last_line(dir: &Path, id: u32) -> String {
    let log = std::fs::read_to_string(dir.join(format!("machine_{id}.log"))).unwrap();
    assert!(log.ends_with('\n'), "machine {id}'s log ends in a whole line");
    log.lines().last().unwrap().to_string()
}

/// `clocklab check` holds for what could be checked, and puts the messages
/// machine 3 never received down to its being gone. With `surely_lost`
/// there are some (its log was cut short, so what was sent to it after its
/// last line that arrived is missing); otherwise there may be none: a
/// machine that stops by itself logs what it had queued, and only a message
/// on its way at that instant is lost with it, which a slow or busy
/// computer may well not have.
fn assert_checks_with_machine_3_gone(results: &Path, surely_lost: bool) {
    let out = run_clocklab(&["check", results.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    let explained = "messages to machines [3] were never received: those machines were gone mid-run";
    if surely_lost || said.contains("never received") {
        assert!(said.contains("all that could be checked holds"), "{said}");
        assert!(said.contains(explained), "{said}");
    } else {
        assert!(said.contains("all holds: 1 run"), "{said}");
    }
}

#[test]
fn a_machine_whose_launcher_dies_stops_by_itself_and_its_log_is_fetched_again() {
    if !can_make_namespaces("a_machine_whose_launcher_dies_stops_by_itself_and_its_log_is_fetched_again") {
        return;
    }
    let hosts = Namespaces::create("gone", 4, 2);
    let dir = tempfile::tempdir().unwrap();
    let file = hosts.hosts_file(dir.path(), |_| "\"netns\"".into());
    let out = dir.path().join("out");
    let run = start_run(&file, &out);
    let (agent, machine) = machine_3(&hosts.names[1]);
    // The launcher (`ip netns exec` becomes the agent) dies: the machine's
    // control channel breaks. The machine process, on its host, stops by
    // itself within its drain and ends its log.
    kill(agent);
    let deadline = Instant::now() + Duration::from_secs(10);
    while clocklab_alive(machine) {
        assert!(Instant::now() < deadline, "machine 3 outlived its control channel");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (run_dir, manifest, stderr) = finish(run, &out);
    let host = &hosts.names[1];
    let RunStatus::Degraded { cause, .. } = &manifest.status else { panic!("{:?}", manifest.status) };
    assert!(cause.starts_with(&format!("machine 3 on host {host}: its control channel broke")), "{cause}");
    assert!(cause.contains("it stopped, and the rest of its log") && cause.contains("was fetched again"), "{cause}");
    assert!(stderr.contains("run degraded"), "{stderr}");
    assert_eq!(manifest.hosts[1].gone, [3]);
    assert_eq!(manifest.hosts[1].lost, None);
    // Every log is whole: machine 3's ends with its own `Stopped`, and is
    // byte for byte its host's copy.
    for id in 1..=4 {
        assert!(last_line(&run_dir, id).starts_with(&format!("{id}> Event: Stopped |")), "machine {id}");
    }
    let here = std::fs::read(run_dir.join("machine_3.log")).unwrap();
    let workdir = dir.path().join(format!("host-{host}"));
    let there = std::fs::read_dir(&workdir).unwrap().flatten().map(|e| e.path().join("machine_3.log")).next().unwrap();
    assert_eq!(here, std::fs::read(there).unwrap());
    assert_checks_with_machine_3_gone(&results_dir(&out), false);
}

#[test]
fn a_host_lost_mid_run_is_named_and_what_arrived_of_its_logs_kept() {
    if !can_make_namespaces("a_host_lost_mid_run_is_named_and_what_arrived_of_its_logs_kept") {
        return;
    }
    let hosts = Namespaces::create("lost", 5, 2);
    let dir = tempfile::tempdir().unwrap();
    let file = hosts.hosts_file(dir.path(), |_| "\"netns\"".into());
    let out = dir.path().join("out");
    let run = start_run(&file, &out);
    let (agent, _) = machine_3(&hosts.names[1]);
    // The host goes away (its namespace can no longer be entered), and its
    // launcher of machine 3 dies: the rest of machine 3's log cannot be fetched.
    let host = hosts.names[1].clone();
    let gone = std::process::Command::new("ip").args(["netns", "del", &host]).output().unwrap();
    assert!(gone.status.success(), "{}", String::from_utf8_lossy(&gone.stderr));
    kill(agent);
    let (run_dir, manifest, _) = finish(run, &out);
    let RunStatus::Degraded { cause, .. } = &manifest.status else { panic!("{:?}", manifest.status) };
    assert!(cause.starts_with(&format!("host {host} lost: machine 3's control channel broke")), "{cause}");
    assert!(cause.contains(&format!("Cannot open network namespace \"{host}\"")), "{cause}");
    assert!(cause.contains("what arrived of them is kept"), "{cause}");
    let lost = &manifest.hosts[1];
    assert!(lost.lost.as_deref() == Some(cause.as_str()) && lost.gone == [3], "{lost:?}");
    assert_eq!(lost.clock_offset_end_us, None, "a lost host's clock is not measured at the end");
    // What arrived of machine 3's log is kept, in whole lines; the other
    // machines, machine 4 on the same host included, lose nothing.
    let kept = last_line(&run_dir, 3);
    assert!(kept.starts_with("3> Event: ") && !kept.contains("Stopped"), "{kept}");
    for id in [1, 2, 4] {
        assert!(last_line(&run_dir, id).starts_with(&format!("{id}> Event: Stopped |")), "machine {id}");
    }
    assert_checks_with_machine_3_gone(&results_dir(&out), true);
}
