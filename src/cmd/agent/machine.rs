//! The agent's machine: `clocklab machine <id> --orchestrated` started on
//! this host, its logs in the host's folder for the run, the orchestrator's
//! lines handed to it and its lines handed back, its logs sent home as they
//! grow; kills, crashes and pauses acted on it here.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clocklab_model::MachineId;
use clocklab_net::now_us;
use clocklab_orchestrate::protocol::{FromMachine, Launch, ToMachine, send_line};
use crossbeam_channel::Receiver;
use nix::sys::signal::Signal;

use super::ship::Shipper;
use super::{Out, say};

/// How often the logs are looked at for new lines.
const SHIP_EVERY: Duration = Duration::from_millis(50);

/// What the orchestrator asked of the machine process, for its end.
#[derive(Debug, Default)]
struct Asked {
    /// The plan's crash: the instant of the kill (this host's clock), 0 if none.
    crash_at_us: AtomicI64,
    /// The run's start by this host's clock (for a crash's line).
    start_us: AtomicI64,
}

/// Starts machine `id` as `launch` says, and serves it until it ends.
pub(super) fn run(
    id: MachineId,
    mut launch: Launch,
    lines: &Receiver<(i64, String)>,
    out: &Out,
) -> anyhow::Result<ExitCode> {
    let remote = launch.remote.take().context("launch settings without the host's folder")?;
    let dir = super::host_dir(&remote)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    launch.logs =
        launch.logs.iter().map(|&(format, _)| (format, dir.join(clocklab_log::file_name(id, format)))).collect();
    let exe = std::env::current_exe().context("cannot find the clocklab executable to start the machine")?;
    let mut child = Command::new(exe)
        .args(["machine", &id.to_string(), "--orchestrated"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the machine process")?;
    say(out, &FromMachine::Spawned { pid: child.id() });
    let mut machine_in = child.stdin.take().expect("stdin is piped");
    send_line(&mut machine_in, &ToMachine::Launch(Box::new(clone_launch(&launch)?)))
        .context("cannot give the machine its settings")?;
    let machine_out = child.stdout.take().expect("stdout is piped");
    let child = Arc::new(Mutex::new(child));
    let asked = Arc::new(Asked::default());
    if let Some(restart) = &launch.restart {
        asked.start_us.store(restart.start_us, Ordering::SeqCst);
    }

    // The machine's lines go to the orchestrator as they are.
    let relay_out = Arc::clone(out);
    let relay = std::thread::Builder::new().name("agent-relay".into()).spawn(move || {
        for line in BufReader::new(machine_out).lines() {
            let Ok(line) = line else { break };
            let mut out = relay_out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    })?;
    // The orchestrator's lines go to the machine, or act on it.
    let (control_child, control_asked, control_out) = (Arc::clone(&child), Arc::clone(&asked), Arc::clone(out));
    let control_lines = lines.clone();
    std::thread::Builder::new().name("agent-control".into()).spawn(move || {
        serve(machine_in, &control_lines, &control_child, &control_asked, &control_out);
    })?;
    // The logs go home as they grow.
    let shipping = Arc::new(AtomicBool::new(true));
    let shipper = Shipper::new(&launch.logs, &remote.ship_from);
    let (ship_out, still) = (Arc::clone(out), Arc::clone(&shipping));
    let shipper = std::thread::Builder::new().name("agent-ship".into()).spawn(move || {
        let mut shipper = shipper;
        while still.load(Ordering::SeqCst) {
            let _ = shipper.ship(&ship_out, true);
            std::thread::sleep(SHIP_EVERY);
        }
        shipper
    })?;

    let status = wait(&child);
    let _ = relay.join();
    let crash_at_us = asked.crash_at_us.load(Ordering::SeqCst);
    let paths: Vec<&std::path::Path> = launch.logs.iter().map(|(_, path)| path.as_path()).collect();
    if crash_at_us != 0 {
        // The plan's crash: the line the machine did not write, it gets here.
        let start_us = asked.start_us.load(Ordering::SeqCst);
        clocklab_orchestrate::crash_line::write_crash_line_of(&launch, id, start_us, crash_at_us)
            .context("cannot write the machine's crash to its log")?;
    } else if !status.success() {
        clocklab_orchestrate::crash_line::cut_partial_lines(&paths)
            .context("cannot cut a killed machine's last line")?;
    }
    shipping.store(false, Ordering::SeqCst);
    let mut shipper = shipper.join().map_err(|_| anyhow::anyhow!("the log shipper panicked"))?;
    shipper.ship(out, false).context("cannot read the machine's logs")?;
    use std::os::unix::process::ExitStatusExt;
    say(out, &FromMachine::Exited { code: status.code(), signal: status.signal() });
    say(out, &FromMachine::Shipped(shipper.ends().context("cannot read the machine's logs")?));
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Takes the orchestrator's lines until the end of its input: a clock
/// exchange is answered, a kill, crash or pause acts on the machine
/// process, every other line goes to the machine. At the end, a paused
/// machine goes on and its input closes: it stops by itself and ends its log.
fn serve(mut machine_in: ChildStdin, lines: &Receiver<(i64, String)>, child: &Mutex<Child>, asked: &Asked, out: &Out) {
    while let Ok((t2, line)) = lines.recv() {
        match serde_json::from_str::<ToMachine>(&line) {
            Ok(ToMachine::Ping(t1)) => say(out, &FromMachine::Pong { t1, t2, t3: now_us() }),
            Ok(ToMachine::Pause(pause)) => signal(child, if pause { Signal::SIGSTOP } else { Signal::SIGCONT }),
            Ok(ToMachine::Kill) => signal(child, Signal::SIGKILL),
            Ok(ToMachine::Crash) => {
                asked.crash_at_us.store(now_us(), Ordering::SeqCst);
                signal(child, Signal::SIGKILL);
            }
            message => {
                if let Ok(ToMachine::Start(start_us)) = message {
                    asked.start_us.store(start_us, Ordering::SeqCst);
                }
                if machine_in.write_all(line.as_bytes()).and_then(|()| machine_in.write_all(b"\n")).is_err() {
                    // The machine has exited: its end is on its way.
                    continue;
                }
                let _ = machine_in.flush();
            }
        }
    }
    signal(child, Signal::SIGCONT);
    drop(machine_in);
}

/// Sends `signal` to the machine process, unless it was reaped (its
/// process id may be another's by then).
fn signal(child: &Mutex<Child>, signal: Signal) {
    let mut child = child.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if matches!(child.try_wait(), Ok(None))
        && let Ok(pid) = i32::try_from(child.id())
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Waits for the machine process to end, without holding it from [`signal`].
fn wait(child: &Mutex<Child>) -> ExitStatus {
    loop {
        {
            let mut child = child.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) => {}
                Err(_) => {
                    return child.wait().unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(1 << 8));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A copy of the launch settings (they go to the machine, and are kept for its crash).
fn clone_launch(launch: &Launch) -> anyhow::Result<Launch> {
    Ok(serde_json::from_value(serde_json::to_value(launch)?)?)
}
