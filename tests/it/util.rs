//! What the integration tests share: starting the `clocklab` binary, free
//! ports, and the line-by-line checks of a run's logs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use clocklab_log::check::{CheckReport, Expectations, check_run};
use clocklab_log::{LogFormat, LogReader, Record};
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
pub const LINE_REGEX: &str = r"^(\d+)> Event: (Initialized on \S+:\d+ with clock rate \d+|Connected to machine \d+ at \S+:\d+|Internal event|Sent message to machine \d+|Sent message to machines \d+(, \d+)+|Processed message from machine \d+ with clock \d+|Disconnected from machine \d+|Unprocessed message from machine \d+ with clock \d+|Stopped) \| System Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| Logical Clock: \d+ \| Queue Length: \d+ \| Timestamp: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$";

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
    let expect = Expectations { n_machines, duration_s, tick_tolerance: 1, allow_loss: false, clocks };
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
