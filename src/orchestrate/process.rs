//! One machine process of a run, as the orchestrator sees it: spawned in its
//! own process group, its stdout read as reports, its last stderr lines kept
//! as the cause of a failure, and reaped (or killed) whatever happens.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use clocklab_model::MachineId;
use crossbeam_channel::Sender;

use super::protocol::{FromMachine, ToMachine, send_line};
use crate::signals::Interrupt;

/// How many lines of a machine's stderr are kept for the failure cause.
const STDERR_LINES: usize = 20;

/// Which process a report comes from: a machine, and its incarnation (0
/// for the first process, one more after each restart the fault plan makes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Who {
    pub(super) id: MachineId,
    pub(super) incarnation: u32,
}

/// One machine process of a run, as the orchestrator sees it.
pub(super) struct MachineProcess {
    pub(super) id: MachineId,
    pub(super) incarnation: u32,
    /// The fault plan crashed it (a kill that is no failure).
    pub(super) crashed: bool,
    pub(super) child: Child,
    pub(super) stdin: Option<ChildStdin>,
    pub(super) status: Option<ExitStatus>,
    pub(super) stderr: Arc<Mutex<Vec<String>>>,
    pub(super) interrupt: Arc<Interrupt>,
}

impl MachineProcess {
    pub(super) fn send(&mut self, message: &ToMachine) -> anyhow::Result<()> {
        let id = self.id;
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("machine {id}: its input is closed"))?;
        send_line(stdin, message).map_err(|error| anyhow!("machine {id}: cannot send it a control line: {error}"))
    }

    /// The last line the machine wrote on stderr, if any, without the
    /// command's own `clocklab: error: ` prefix.
    pub(super) fn last_error(&self) -> Option<String> {
        let last = self.stderr.lock().expect("stderr lock").last().cloned()?;
        Some(last.strip_prefix("clocklab: error: ").map(str::to_string).unwrap_or(last))
    }

    /// Reaps the process if it has exited (under the interrupt's lock, see
    /// [`Interrupt::children`]).
    pub(super) fn try_reap(&mut self) -> std::io::Result<Option<ExitStatus>> {
        let mut children = self.interrupt.children.lock().expect("the children lock is never poisoned");
        let status = self.child.try_wait()?;
        if let Some(status) = status {
            children.remove(&self.child.id());
            self.status = Some(status);
        }
        Ok(status)
    }

    /// Sends the process a stop or continue signal (a pause the fault plan makes).
    pub(super) fn signal(&self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).context("a process id fits an i32")?);
        nix::sys::signal::kill(pid, signal).with_context(|| format!("machine {}: cannot send it {signal}", self.id))
    }

    /// Kills and reaps the process.
    pub(super) fn kill(&mut self) {
        let mut children = self.interrupt.children.lock().expect("the children lock is never poisoned");
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
        children.remove(&self.child.id());
    }
}

/// A run's children: whatever happens, none outlives the run.
pub(super) struct Children(pub(super) Vec<MachineProcess>);

impl Children {
    /// Tells every machine still running to stop at `at_us` (at once if it
    /// is not ticking yet).
    pub(super) fn stop_all(&mut self, at_us: i64) {
        for process in &mut self.0 {
            if process.status.is_none() {
                // A machine that has exited cannot take it, and needs not.
                let _ = process.send(&ToMachine::Stop(at_us));
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for process in &mut self.0 {
            if process.status.is_none() {
                process.kill();
            }
        }
    }
}

/// What a machine said on stdout, or that its stdout closed.
pub(super) enum Report {
    Said(FromMachine),
    Garbled(String),
    Closed,
}

/// An exit status for the manifest: `0`, or what ended the process.
pub(super) fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => code.to_string(),
        None => format!("{status}"),
    }
}

/// Starts `clocklab machine <id> --orchestrated` with its stdout and stderr read
/// by two threads.
///
/// The machine gets its own process group, so that a terminal's Ctrl-C
/// reaches only the orchestrator, which alone decides how the run stops.
pub(super) fn spawn_machine(
    exe: &Path,
    who: Who,
    reports: &Sender<(Who, Report)>,
    interrupt: &Arc<Interrupt>,
) -> anyhow::Result<MachineProcess> {
    let id = who.id;
    // The pid is registered before the second signal could miss it.
    let mut children = interrupt.children.lock().expect("the children lock is never poisoned");
    let mut child = Command::new(exe)
        .arg("machine")
        .arg(id.to_string())
        .arg("--orchestrated")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start machine {id} ({})", exe.display()))?;
    children.insert(child.id());
    drop(children);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let reports = reports.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let report = match serde_json::from_str::<FromMachine>(&line) {
                Ok(message) => Report::Said(message),
                Err(_) => Report::Garbled(line),
            };
            if reports.send((who, report)).is_err() {
                return;
            }
        }
        let _ = reports.send((who, Report::Closed));
    });
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut kept = kept.lock().expect("stderr lock");
            if kept.len() == STDERR_LINES {
                kept.remove(0);
            }
            kept.push(line);
        }
    });
    Ok(MachineProcess {
        id,
        incarnation: who.incarnation,
        crashed: false,
        child,
        stdin,
        status: None,
        stderr: lines,
        interrupt: Arc::clone(interrupt),
    })
}
