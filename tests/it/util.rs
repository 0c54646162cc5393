//! What the integration tests share: starting the `clocklab` binary, free
//! ports, and the line-by-line checks of a run's logs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use clocklab_config::{RunStatus, layout};
use clocklab_log::check::{CheckReport, Expectations, check_run};
use clocklab_log::{Event, LogFormat, LogReader, Record};
use clocklab_model::ClockKinds;

/// The `clocklab` binary under test.
pub fn clocklab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clocklab"))
}

/// Runs `clocklab` to the end.
pub fn run_clocklab(args: &[&str]) -> Output {
    clocklab().args(args).output().expect("clocklab starts")
}

/// `n` ports that were free a moment ago (bound on 127.0.0.1:0, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("loopback is available")).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Child processes that are killed if a test fails before it waits for them.
pub struct Processes(pub Vec<Child>);

impl Processes {
    /// Waits for every process, at most `timeout` in all; kills what is left.
    pub fn wait_all(mut self, timeout: Duration) -> Vec<Output> {
        let deadline = Instant::now() + timeout;
        let children = std::mem::take(&mut self.0);
        let mut outputs = Vec::new();
        for mut child in children {
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if child.try_wait().unwrap().is_none() {
                let _ = child.kill();
            }
            outputs.push(child.wait_with_output().unwrap());
        }
        outputs
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The specification's parser regex: every line must still match it.
pub const REFERENCE_REGEX: &str =
    r"(\d+)> Event: (.+?) \| System Time: ([\d-]+ [\d:]+) \| Logical Clock: (\d+) \| Queue Length: (\d+)";

/// A whole clocklab text line, from the first field to the `Timestamp`.
pub const LINE_REGEX: &str = r"^(\d+)> Event: (Initialized on \S+:\d+ with clock rate \d+|Connected to machine \d+ at \S+:\d+|Internal event|Sent message to machine \d+|Sent message to machines \d+(, \d+)+|Processed message from machine \d+ with clock \d+|Disconnected from machine \d+|Behind schedule by \d+ us at tick \d+|Unprocessed message from machine \d+ with clock \d+|Stopped) \| System Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| Logical Clock: \d+ \| Queue Length: \d+ \| Timestamp: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$";

/// Checks every line of a text log against both regexes, and its first and
/// last lines; returns the number of lines.
pub fn check_text_lines(path: &Path, id: u32) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.ends_with('\n'), "{}: the last line is not whole", path.display());
    let reference = regex::Regex::new(REFERENCE_REGEX).unwrap();
    let full = regex::Regex::new(LINE_REGEX).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (idx, line) in lines.iter().enumerate() {
        assert!(
            reference.is_match(line),
            "{}:{}: the reference regex does not match {line:?}",
            path.display(),
            idx + 1
        );
        let captures = full
            .captures(line)
            .unwrap_or_else(|| panic!("{}:{}: not a clocklab line: {line:?}", path.display(), idx + 1));
        assert_eq!(captures[1].parse::<u32>().unwrap(), id, "{}:{}", path.display(), idx + 1);
    }
    assert!(lines[0].contains("> Event: Initialized on "), "{}: first line {:?}", path.display(), lines[0]);
    assert!(lines.last().unwrap().contains("> Event: Stopped |"), "{}: last line {:?}", path.display(), lines.last());
    assert_eq!(lines.iter().filter(|l| l.contains("> Event: Stopped |")).count(), 1, "{}", path.display());
    lines.len()
}

/// Reads a log, asserting that the reader skipped nothing.
pub fn read_log(path: &Path) -> Vec<Record> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = LogReader::new(std::io::BufReader::new(file));
    let records: Vec<Record> = reader.by_ref().map(|line| line.record).collect();
    let diagnostics = reader.into_diagnostics();
    assert_eq!(diagnostics.n_skipped, 0, "{}: {:?}", path.display(), diagnostics.first_skipped);
    assert!(!diagnostics.truncated_last_line, "{}: the last line is cut", path.display());
    records
}

/// Every machine's log in `dir` (`machine_<id>.<ext>`).
pub fn read_logs(dir: &Path, n_machines: u32, format: LogFormat) -> BTreeMap<u32, Vec<Record>> {
    (1..=n_machines).map(|id| (id, read_log(&log_file(dir, id, format)))).collect()
}

/// Machine `id`'s log file in `dir`.
pub fn log_file(dir: &Path, id: u32, format: LogFormat) -> PathBuf {
    dir.join(clocklab_log::file_name(id, format))
}

/// Runs the log check and asserts it passes, with equal message counts.
pub fn assert_sound(logs: &BTreeMap<u32, Vec<Record>>, duration_s: f64) -> CheckReport {
    assert_sound_with(logs, duration_s, ClockKinds::LAMPORT)
}

/// [`assert_sound`] for a run that keeps `clocks`.
pub fn assert_sound_with(logs: &BTreeMap<u32, Vec<Record>>, duration_s: f64, clocks: ClockKinds) -> CheckReport {
    let n_machines = logs.len() as u32;
    let expect = Expectations { tick_tolerance: 1, ..Expectations::new(n_machines, duration_s, clocks) };
    let report = check_run(logs, &expect);
    assert!(report.is_ok(), "{:#?}", report.violations);
    assert_eq!(report.sent, report.received, "sent and received counts per pair");
    report
}

/// The rate a log's `Initialized` line records.
pub fn logged_rate(records: &[Record]) -> u32 {
    match &records[0].event {
        clocklab_log::Event::Initialized { rate, .. } => *rate,
        other => panic!("the first record is {other:?}"),
    }
}

/// The processes whose parent is `pid`, with their command lines (arguments
/// joined by spaces).
pub fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // The fields after the command name, which may hold spaces: state, ppid, ...
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let ppid = after.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            children.push((child, cmdline.trim_end().to_string()));
        }
    }
    children.sort();
    children
}

/// Whether `pid` is a live `clocklab` process (not a zombie, not another
/// program that took the number since).
pub fn clocklab_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rfind(')').and_then(|i| stat[i + 2..].chars().next());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    state != Some('Z') && String::from_utf8_lossy(&cmdline).contains("clocklab")
}

/// Waits until `done` holds, polling; panics with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("the process exists");
}

/// Writes a standalone configuration and returns its path: `ports`, rates
/// up to 6, `max_event_num` 10, `duration_s`, and the keys of `extra`
/// (`, "key": value, ...`), which win.
pub fn write_config(dir: &Path, ports: &[u16], duration_s: f64, extra: &str) -> PathBuf {
    let path = dir.join("config.json");
    let mut config = serde_json::json!({
        "host": "127.0.0.1", "ports": ports, "machines": ports.len(), "max_clock_rate": 6, "max_event_num": 10,
        "duration": duration_s,
    });
    let extra: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&format!("{{{}}}", extra.trim().trim_start_matches(','))).expect("extra keys");
    for (key, value) in extra {
        config[key] = value;
    }
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Starts `clocklab machine 1 <args> --config <config> --out <out>` with its
/// output captured.
pub fn spawn_machine(args: &[&str], config: &Path, out: &Path) -> Child {
    clocklab()
        .args(["machine", "1"])
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` at most `timeout`, then kills it; returns its output.
pub fn finish(child: Child, timeout: Duration) -> Output {
    Processes(vec![child]).wait_all(timeout).pop().unwrap()
}

/// The tick events of a log.
pub fn ticks(records: &[Record]) -> u64 {
    records.iter().filter(|r| r.event.is_tick()).count() as u64
}

/// The drawn rate in a log's first line.
pub fn rate_of(records: &[Record]) -> u32 {
    match records[0].event {
        Event::Initialized { rate, .. } => rate,
        ref other => panic!("first record {other:?}"),
    }
}

/// Asserts that none of `pids` is a live clocklab process.
pub fn assert_no_orphans(pids: &[u32]) {
    for &pid in pids {
        // A process being reaped by init may take a moment to go.
        wait_for(&format!("process {pid} to be gone"), Duration::from_secs(5), || !clocklab_alive(pid));
    }
}

/// The machine pids a manifest records.
pub fn manifest_pids(run_dir: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(layout::manifest_path(run_dir)).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let pids = manifest["extra"]["pids"].as_object().expect("the manifest records the pids");
    pids.values().map(|p| p.as_u64().unwrap() as u32).collect()
}

// --- Ports and peers ------------------------------------------------------

/// A `clocklab run` started in the background, its results folder found.
pub struct BackgroundRun {
    child: Option<Child>,
    /// The folder under which the run makes its results folder.
    pub out: PathBuf,
    stdout: BufReader<std::process::ChildStdout>,
}

impl BackgroundRun {
    /// Starts `clocklab run --no-analyze` with `args` under `out` and waits
    /// for its first line (its signal handlers are in place by then).
    pub fn start(out: &Path, args: &[&str]) -> BackgroundRun {
        BackgroundRun::start_with(out, &[&["--no-analyze"], args].concat())
    }

    /// Starts `clocklab run` with `args` under `out` and waits for its first line.
    pub fn start_with(out: &Path, args: &[&str]) -> BackgroundRun {
        let mut child = clocklab()
            .args(["run", "--out"])
            .arg(out)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(first.starts_with("clocklab: "), "{first:?}");
        BackgroundRun { child: Some(child), out: out.to_path_buf(), stdout }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The folder of run 1 of `experiment`.
    pub fn run_dir(&self, experiment: &str) -> PathBuf {
        let results = std::fs::read_dir(&self.out).unwrap().next().unwrap().unwrap().path();
        layout::run_dir(&results, experiment, 1)
    }

    /// Waits until each of the `n` machines has ticked (a line after its
    /// `Connected` lines).
    pub fn wait_ticking(&self, experiment: &str, n: u32) -> PathBuf {
        let run_dir = self.run_dir(experiment);
        wait_for("every machine to tick", Duration::from_secs(30), || {
            (1..=n).all(|id| {
                let text = std::fs::read_to_string(layout::log_path(&run_dir, id, LogFormat::Text)).unwrap_or_default();
                text.lines().count() > n as usize
            })
        });
        run_dir
    }

    /// Reads the command's stdout until a line starts with `prefix`.
    pub fn wait_line(&mut self, prefix: &str) {
        let mut line = String::new();
        while !line.starts_with(prefix) {
            line.clear();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "no line {prefix:?} before the end of stdout");
        }
    }

    /// Waits for the command to exit; returns its exit code, stdout and stderr.
    pub fn wait(mut self, timeout: Duration) -> (Option<i32>, String, String) {
        let output = finish(self.child.take().unwrap(), timeout);
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (output.status.code(), rest, String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

impl Drop for BackgroundRun {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The machine processes of a running `clocklab run`, by id.
pub fn machine_pids(orchestrator: u32, n: u32) -> BTreeMap<u32, u32> {
    let mut pids = BTreeMap::new();
    wait_for("the machine processes", Duration::from_secs(10), || {
        for (pid, cmdline) in children_of(orchestrator) {
            let words: Vec<&str> = cmdline.split(' ').collect();
            if let Some(idx) = words.iter().position(|w| *w == "machine") {
                pids.insert(words[idx + 1].parse().unwrap(), pid);
            }
        }
        pids.len() == n as usize
    });
    pids
}

/// The log check with strict accounting (sent = processed + unprocessed per
/// pair) and any tick count: the runs it is for stopped early.
pub fn assert_accounted(logs: &BTreeMap<u32, Vec<Record>>, what: &str) {
    let expect =
        Expectations { tick_tolerance: u64::MAX, ..Expectations::new(logs.len() as u32, 1.0, ClockKinds::LAMPORT) };
    let report = check_run(logs, &expect);
    // A machine stopped before it connected to every peer has fewer
    // `Connected` lines; that is no fault when nothing ticked.
    let never_ticked = logs.values().all(|records| ticks(records) == 0);
    let violations: Vec<&String> =
        report.violations.iter().filter(|v| !(never_ticked && v.contains("peers, expected"))).collect();
    assert!(violations.is_empty(), "{what}: {violations:#?}");
    assert_eq!(report.sent, report.received, "{what}");
}

/// Checks an interrupted run's folder: every log whole and ending with
/// `Stopped`, the accounting exact, the manifest `interrupted`, no process left.
pub fn assert_interrupted_cleanly(run_dir: &Path, n: u32, what: &str) -> RunStatus {
    for id in 1..=n {
        let path = layout::log_path(run_dir, id, LogFormat::Text);
        check_text_lines(&path, id);
    }
    let logs = read_logs(run_dir, n, LogFormat::Text);
    assert_accounted(&logs, what);
    let manifest =
        clocklab_config::RunManifest::from_json(&std::fs::read_to_string(layout::manifest_path(run_dir)).unwrap())
            .unwrap();
    assert_no_orphans(&manifest_pids(run_dir));
    manifest.status
}

/// Every file under `dir`, in order of path.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every `.rs` file under `dir`, with its code outside unit tests: the text
/// before its first `#[cfg(test)]`, or nothing for a file that is a test
/// module itself (`#![cfg(test)]`). For the checks of what the runtimes'
/// own code may do.
pub fn code_outside_tests(dir: &Path) -> Vec<(PathBuf, String)> {
    let rust = files_under(dir).into_iter().filter(|path| path.extension().is_some_and(|e| e == "rs"));
    rust.map(|path| {
        let text = std::fs::read_to_string(&path).unwrap();
        let code = if text.lines().any(|line| line.trim() == "#![cfg(test)]") {
            String::new()
        } else {
            text.split("#[cfg(test)]").next().unwrap().to_string()
        };
        (path, code)
    })
    .collect()
}
