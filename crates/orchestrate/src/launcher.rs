//! Machine processes, as the supervisor sees them: a [`Launcher`] starts
//! one (`clocklab machine <id> --orchestrated`, [`LocalLauncher`]), and a
//! [`Process`] is its control channel (its stdin), its signals and its exit.
//! What the machine says on its stdout comes back as [`Report`]s on one
//! channel per run, named by [`Who`] said it.

use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use clocklab_config::HostSpec;
use clocklab_model::MachineId;
use crossbeam_channel::Sender;

use crate::control::RunControl;
use crate::protocol::{FromMachine, ToMachine, send_line};

/// How many lines of a machine's stderr are kept for the failure cause.
pub(crate) const STDERR_LINES: usize = 20;

/// Which process a report comes from: a machine, and its incarnation (0
/// for the first process, one more after each restart the fault plan makes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Who {
    /// The machine.
    pub id: MachineId,
    /// Its incarnation.
    pub incarnation: u32,
}

/// What a machine said on stdout, or that its stdout closed.
#[derive(Debug)]
pub enum Report {
    /// A control line.
    Said(FromMachine),
    /// A line that is not one.
    Garbled(String),
    /// Its stdout closed: it exited, or is about to.
    Closed,
}

/// How a machine process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    /// Whether it exited with code 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "{code}"),
            Exit::Signal(signal) => match nix::sys::signal::Signal::try_from(*signal) {
                Ok(name) => write!(f, "signal: {signal} ({name})"),
                Err(_) => write!(f, "signal: {signal}"),
            },
        }
    }
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Code(-1),
        }
    }
}

/// One machine process: what the supervisor does to it.
pub trait Process: Send + std::fmt::Debug {
    /// Sends it a control line.
    fn send(&mut self, message: &ToMachine) -> io::Result<()>;

    /// Closes its input: a machine that sees the end of its input stops.
    fn close_input(&mut self);

    /// Kills it (`SIGKILL`) and reaps it.
    fn kill(&mut self);

    /// Stops (`pause`) or continues it (`SIGSTOP`, `SIGCONT`).
    fn pause(&mut self, pause: bool) -> io::Result<()>;

    /// Reaps it if it has exited.
    fn try_wait(&mut self) -> io::Result<Option<Exit>>;

    /// Its process id, if it has one.
    fn pid(&self) -> Option<u32>;

    /// The last line it wrote on stderr, if any, without the command's own
    /// `clocklab: error: ` prefix.
    fn last_error(&self) -> Option<String>;

    /// Kills it for the fault plan's crash (`SIGKILL`) and reaps it; on
    /// another host its agent also writes its `Crashed` line there.
    fn crash(&mut self) {
        self.kill();
    }

    /// On another host: why its control channel broke before the machine
    /// ended, if it did (its launcher died, or the host went away).
    fn channel_broke(&self) -> Option<String> {
        None
    }

    /// On another host: why the copy of its logs is not whole, if it is not.
    fn copy_failure(&self) -> Option<String> {
        None
    }
}

/// Starts machine processes.
pub trait Launcher: Sync + std::fmt::Debug {
    /// Starts the process of `who`, whose reports go to `reports`; its pid
    /// is registered with `control` before a kill of all could miss it.
    fn spawn(
        &self,
        who: Who,
        reports: &Sender<(Who, Report)>,
        control: &Arc<RunControl>,
    ) -> io::Result<Box<dyn Process>>;

    /// The command that runs a program on `host` (its launcher, `{host}`
    /// and `{clocklab}` filled in), if this launcher reaches other hosts.
    fn host_command(&self, host: &HostSpec) -> Option<Vec<String>> {
        let _ = host;
        None
    }
}

/// Starts `clocklab machine <id> --orchestrated` (the running executable)
/// on this computer, each in its own process group, so that a terminal's
/// Ctrl-C reaches only the orchestrator, which alone decides how runs stop.
#[derive(Debug)]
pub struct LocalLauncher {
    exe: PathBuf,
}

impl LocalLauncher {
    /// A launcher of the executable at `exe`.
    pub fn new(exe: PathBuf) -> LocalLauncher {
        LocalLauncher { exe }
    }
}

impl Launcher for LocalLauncher {
    fn host_command(&self, host: &HostSpec) -> Option<Vec<String>> {
        Some(host.launcher.command(&host.name, &self.exe))
    }

    fn spawn(
        &self,
        who: Who,
        reports: &Sender<(Who, Report)>,
        control: &Arc<RunControl>,
    ) -> io::Result<Box<dyn Process>> {
        let mut child = control.register(|| {
            let child = Command::new(&self.exe)
                .arg("machine")
                .arg(who.id.to_string())
                .arg("--orchestrated")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()?;
            let pid = child.id();
            Ok((child, Some(pid)))
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let reports = reports.clone();
        std::thread::Builder::new().name(format!("machine-{}-stdout", who.id)).spawn(move || {
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
        })?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&lines);
        std::thread::Builder::new().name(format!("machine-{}-stderr", who.id)).spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut kept = kept.lock().expect("stderr lock");
                if kept.len() == STDERR_LINES {
                    kept.remove(0);
                }
                kept.push(line);
            }
        })?;
        Ok(Box::new(LocalProcess { child, stdin, exit: None, stderr: lines, control: Arc::clone(control) }))
    }
}

/// A `clocklab machine` child process.
#[derive(Debug)]
struct LocalProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    exit: Option<Exit>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Reaps are made under its lock (see [`RunControl::kill_all`]).
    control: Arc<RunControl>,
}

impl Process for LocalProcess {
    fn send(&mut self, message: &ToMachine) -> io::Result<()> {
        let stdin =
            self.stdin.as_mut().ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "its input is closed"))?;
        send_line(stdin, message)
    }

    fn close_input(&mut self) {
        self.stdin = None;
    }

    fn kill(&mut self) {
        if self.exit.is_some() {
            return;
        }
        let (child, control) = (&mut self.child, &self.control);
        let pid = Some(child.id());
        self.exit = control.reaping(pid, || {
            let _ = child.kill();
            let exit = child.wait().ok().map(Exit::from);
            (exit, true)
        });
    }

    fn pause(&mut self, pause: bool) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        let signal = if pause { nix::sys::signal::Signal::SIGSTOP } else { nix::sys::signal::Signal::SIGCONT };
        let pid = i32::try_from(self.child.id()).map_err(io::Error::other)?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(io::Error::from)
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
        self.exit = waited;
        Ok(waited)
    }

    fn pid(&self) -> Option<u32> {
        Some(self.child.id())
    }

    fn last_error(&self) -> Option<String> {
        let last = self.stderr.lock().expect("stderr lock").last().cloned()?;
        Some(last.strip_prefix("clocklab: error: ").map(str::to_string).unwrap_or(last))
    }
}
