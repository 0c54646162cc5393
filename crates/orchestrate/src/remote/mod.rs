//! Machines on other hosts: each is started through its host's launcher
//! (`ssh`, `srun`, `kubectl exec -i`, `ip netns exec`, or a command of
//! one's own) as `clocklab agent --machine <id>`, an agent that starts the
//! machine process there and speaks the control protocol for it over the
//! launcher's stdin and stdout.
//!
//! - `RemoteProcess` is such a machine as the supervisor sees it: a kill,
//!   a crash or a pause is a line to its agent, which acts on the machine
//!   process on its host (never on the local launcher, which only carries
//!   bytes); the logs it sends are copied into the run folder as they come
//!   (`copy`), and checked at the end.
//! - `probe`: what is asked of a host before and after a run (its version,
//!   a free port, its clock's offset to this one) and the rest of a
//!   machine's logs after its channel broke.

mod copy;
pub mod probe;

use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use clocklab_log::LogFormat;
use crossbeam_channel::Sender;

use crate::control::RunControl;
use crate::launcher::{Exit, Process, Report, STDERR_LINES, Who};
use crate::protocol::{FromMachine, ToMachine, send_line};
pub(crate) use copy::LocalCopy;
pub use copy::crc_of;

/// How long an agent has, once told to kill its machine, to say how it
/// ended and send the rest of its logs.
const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A launcher's command, with the agent's arguments after it, in its own
/// process group (a terminal's Ctrl-C reaches only the orchestrator); its
/// stdin, stdout and stderr piped.
pub(crate) fn command(launcher: &[String], agent_args: &[String]) -> io::Result<Command> {
    let (program, args) =
        launcher.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "an empty launcher"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .args(agent_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    Ok(command)
}

/// Keeps the last [`STDERR_LINES`] lines of `stderr`, on a thread.
pub(crate) fn keep_stderr(stderr: impl io::Read + Send + 'static, name: String) -> io::Result<Arc<Mutex<Vec<String>>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&lines);
    std::thread::Builder::new().name(name).spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut kept = kept.lock().expect("stderr lock");
            if kept.len() == STDERR_LINES {
                kept.remove(0);
            }
            kept.push(line);
        }
    })?;
    Ok(lines)
}

/// What a remote machine's agent said of itself, beside the machine's reports.
#[derive(Debug, Default)]
struct AgentState {
    /// The machine process's id on its host.
    pid: Option<u32>,
    /// How the machine process ended, as the agent saw it.
    exited: Option<Exit>,
    /// The logs were all sent and the copies checked: how that went.
    shipped: Option<Result<(), String>>,
    /// A copy that could not be made (a gap, a write error).
    copy_failed: Option<String>,
    /// The agent's output closed.
    closed: bool,
}

/// A machine on another host, through its agent.
#[derive(Debug)]
pub(crate) struct RemoteProcess {
    /// The launcher (which runs the agent, or carries its bytes).
    child: Child,
    stdin: Option<ChildStdin>,
    exit: Option<Exit>,
    stderr: Arc<Mutex<Vec<String>>>,
    control: Arc<RunControl>,
    state: Arc<(Mutex<AgentState>, Condvar)>,
}

/// Each log's bytes the orchestrator has: where an agent starts sending.
pub(crate) type ShipFrom = Vec<(LogFormat, u64)>;

/// Starts machine `who` through `launcher` (the host's command, filled
/// in): its agent's reports go to `reports`, and the logs it sends to the
/// copies of `logs`.
pub(crate) fn spawn_machine(
    launcher: &[String],
    who: Who,
    logs: &[(LogFormat, PathBuf)],
    reports: &Sender<(Who, Report)>,
    control: &Arc<RunControl>,
) -> io::Result<(Box<dyn Process>, ShipFrom)> {
    let args = ["agent".to_string(), "--machine".to_string(), who.id.to_string()];
    let mut command = command(launcher, &args)?;
    let mut child = control.register(|| {
        let child = command.spawn()?;
        let pid = child.id();
        Ok((child, Some(pid)))
    })?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = keep_stderr(child.stderr.take().expect("stderr is piped"), format!("agent-{}-stderr", who.id))?;
    let mut copy = LocalCopy::new(logs);
    let ship_from = copy.lengths();
    let state = Arc::new((Mutex::new(AgentState::default()), Condvar::new()));
    let shared = Arc::clone(&state);
    let reports = reports.clone();
    std::thread::Builder::new().name(format!("agent-{}-stdout", who.id)).spawn(move || {
        let (lock, changed) = &*shared;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let report = match serde_json::from_str::<FromMachine>(&line) {
                Ok(FromMachine::Log { format, offset, data }) => {
                    let taken = base64::engine::general_purpose::STANDARD
                        .decode(data.as_bytes())
                        .map_err(|error| format!("bytes of its log that are not base64: {error}"))
                        .and_then(|bytes| copy.append(format, offset, &bytes));
                    if let Err(error) = taken {
                        lock.lock().expect("agent state").copy_failed.get_or_insert(error);
                    }
                    continue;
                }
                Ok(FromMachine::Shipped(ends)) => {
                    let checked = copy.verify(&ends);
                    let mut state = lock.lock().expect("agent state");
                    state.shipped = Some(match state.copy_failed.clone() {
                        Some(failed) => Err(failed),
                        None => checked,
                    });
                    changed.notify_all();
                    continue;
                }
                Ok(FromMachine::Exited { code, signal }) => {
                    let exit = match (code, signal) {
                        (_, Some(signal)) => Exit::Signal(signal),
                        (Some(code), None) => Exit::Code(code),
                        (None, None) => Exit::Code(-1),
                    };
                    lock.lock().expect("agent state").exited = Some(exit);
                    changed.notify_all();
                    continue;
                }
                Ok(FromMachine::Spawned { pid }) => {
                    lock.lock().expect("agent state").pid = Some(pid);
                    continue;
                }
                // The agent's greeting and answers are for probes.
                Ok(FromMachine::Hello { .. } | FromMachine::Pong { .. } | FromMachine::Probed { .. }) => continue,
                Ok(message) => Report::Said(message),
                Err(_) => Report::Garbled(line),
            };
            if reports.send((who, report)).is_err() {
                break;
            }
        }
        let mut state = lock.lock().expect("agent state");
        state.closed = true;
        changed.notify_all();
        drop(state);
        let _ = reports.send((who, Report::Closed));
    })?;
    let process = RemoteProcess { child, stdin, exit: None, stderr, control: Arc::clone(control), state };
    Ok((Box::new(process), ship_from))
}

impl RemoteProcess {
    /// Waits until the agent said how the machine ended and sent its logs,
    /// or its output closed, at most [`AGENT_TIMEOUT`].
    fn wait_for_agent(&self) {
        let (lock, changed) = &*self.state;
        let deadline = Instant::now() + AGENT_TIMEOUT;
        let mut state = lock.lock().expect("agent state");
        while state.shipped.is_none() && !state.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = changed.wait_timeout(state, left).expect("agent state").0;
        }
    }

    /// Ends the launcher: its input closed, it has [`AGENT_TIMEOUT`] to
    /// exit, then it is killed (the agent, on its host, then sees the end of
    /// its input and stops its machine).
    fn end_launcher(&mut self) -> Option<Exit> {
        self.stdin = None;
        let (child, control) = (&mut self.child, &self.control);
        let pid = Some(child.id());
        let deadline = Instant::now() + AGENT_TIMEOUT;
        control.reaping(pid, || {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => return (Some(Exit::from(status)), true),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    Ok(None) => {
                        let _ = child.kill();
                        return (child.wait().ok().map(Exit::from), true);
                    }
                    Err(_) => return (None, false),
                }
            }
        })
    }

    /// Tells the agent `message` about its machine, waits for it to say how
    /// the machine ended and to send its logs, then ends the launcher.
    fn end_with(&mut self, message: &ToMachine) {
        if self.exit.is_some() {
            return;
        }
        if self.send(message).is_ok() {
            self.wait_for_agent();
        }
        let launcher = self.end_launcher();
        let agent = self.state.0.lock().expect("agent state").exited;
        self.exit = agent.or(launcher).or(Some(Exit::Signal(9)));
    }
}

impl Process for RemoteProcess {
    fn send(&mut self, message: &ToMachine) -> io::Result<()> {
        let stdin =
            self.stdin.as_mut().ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "its input is closed"))?;
        send_line(stdin, message)
    }

    fn close_input(&mut self) {
        self.stdin = None;
    }

    fn kill(&mut self) {
        self.end_with(&ToMachine::Kill);
    }

    fn crash(&mut self) {
        self.end_with(&ToMachine::Crash);
    }

    fn pause(&mut self, pause: bool) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        self.send(&ToMachine::Pause(pause))
    }

    fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        let (child, control) = (&mut self.child, &self.control);
        let pid = Some(child.id());
        let waited = control.reaping(pid, || match child.try_wait() {
            Ok(Some(status)) => (Ok(Some(Exit::from(status))), true),
            other => (other.map(|_| None), false),
        })?;
        let Some(launcher) = waited else { return Ok(None) };
        // The launcher is gone; what the agent said came before its end.
        let (lock, _) = &*self.state;
        let deadline = Instant::now() + Duration::from_millis(500);
        while !lock.lock().expect("agent state").closed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.exit = Some(lock.lock().expect("agent state").exited.unwrap_or(launcher));
        Ok(self.exit)
    }

    fn pid(&self) -> Option<u32> {
        self.state.0.lock().expect("agent state").pid
    }

    fn last_error(&self) -> Option<String> {
        let last = self.stderr.lock().expect("stderr lock").last().cloned()?;
        Some(last.strip_prefix("clocklab: error: ").map(str::to_string).unwrap_or(last))
    }

    fn channel_broke(&self) -> Option<String> {
        let state = self.state.0.lock().expect("agent state");
        if state.exited.is_some() {
            return None;
        }
        let said = self.last_error().map(|line| format!(": {line}")).unwrap_or_default();
        Some(match self.exit {
            Some(exit) => format!("its launcher ended ({exit}) before the machine did{said}"),
            None => format!("its launcher's output closed before the machine ended{said}"),
        })
    }

    fn copy_failure(&self) -> Option<String> {
        let state = self.state.0.lock().expect("agent state");
        match &state.shipped {
            Some(Err(error)) => Some(error.clone()),
            Some(Ok(())) => None,
            None if state.exited.is_some() => {
                Some(state.copy_failed.clone().unwrap_or_else(|| "its agent did not send the end of its logs".into()))
            }
            None => state.copy_failed.clone(),
        }
    }
}
