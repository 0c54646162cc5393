//! `clocklab agent [--machine ID]`: what `clocklab run --hosts` starts on
//! another host, through that host's launcher; it speaks the control
//! protocol over its stdin and stdout (see `clocklab_orchestrate::protocol`).
//!
//! It says `hello` first, then answers clock exchanges (`ping`) and port
//! checks (`port`), and sends a machine's logs when asked (`fetch`). With
//! `--machine`, its `launch` line starts the machine process on this host
//! (`machine` module): the agent hands it its lines, acts on it for the
//! orchestrator (a kill, a crash, a pause act on the machine process here,
//! not on the launcher that carries the bytes), and sends its logs home as
//! they grow (`ship`). The end of its input stops it, and its machine.

mod machine;
mod ship;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use clocklab_net::now_us;
use clocklab_orchestrate::protocol::{Fetch, FromMachine, Remote, ToMachine, send_line};
use crossbeam_channel::Receiver;

/// Arguments of `clocklab agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Start this machine when its launch settings come (its settings and
    /// token come over stdin, never on the command line).
    #[arg(long)]
    machine: Option<u32>,
}

/// Where the agent's lines go: its stdout, shared by its threads.
pub(crate) type Out = Arc<Mutex<std::io::Stdout>>;

/// Says one line. An orchestrator that cannot be told is gone: the end of
/// this agent's input stops it.
pub(crate) fn say(out: &Out, message: &FromMachine) {
    let mut out = out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = send_line(&mut *out, message);
}

/// The lines of stdin, each with the instant it was read (by this host's
/// clock), on a thread; the channel closes at the end of stdin.
fn read_stdin() -> anyhow::Result<Receiver<(i64, String)>> {
    let (sender, lines) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("agent-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if sender.send((now_us(), line)).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the thread that reads the orchestrator's lines")?;
    Ok(lines)
}

/// The folder of a run's logs on this host.
pub(crate) fn host_dir(remote: &Remote) -> anyhow::Result<PathBuf> {
    let base = remote.workdir.clone().unwrap_or_else(|| std::env::temp_dir().join("clocklab"));
    if remote.run_key.is_empty() || remote.run_key.contains('/') || remote.run_key.starts_with('.') {
        bail!("bad run folder {:?}", remote.run_key);
    }
    Ok(base.join(&remote.run_key))
}

/// Runs `clocklab agent`.
pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    say(&out, &FromMachine::Hello { version: env!("CARGO_PKG_VERSION").to_string(), pid: std::process::id() });
    let lines = read_stdin()?;
    // The end of stdin before a launch: the orchestrator is done with us.
    while let Ok((t2, line)) = lines.recv() {
        match serde_json::from_str::<ToMachine>(&line) {
            Ok(ToMachine::Ping(t1)) => say(&out, &FromMachine::Pong { t1, t2, t3: now_us() }),
            Ok(ToMachine::Port { address }) => {
                let bound = std::net::TcpListener::bind((address.as_str(), 0)).and_then(|l| l.local_addr());
                let answer = match bound {
                    Ok(bound) => FromMachine::Probed { port: Some(bound.port()), error: None },
                    Err(error) => FromMachine::Probed { port: None, error: Some(error.to_string()) },
                };
                say(&out, &answer);
            }
            Ok(ToMachine::Fetch(fetch)) => {
                if let Err(error) = send_rest(&fetch, &out) {
                    say(&out, &FromMachine::Failed { cause: format!("{error:#}"), blames: None });
                }
            }
            Ok(ToMachine::Launch(launch)) => match args.machine {
                Some(id) => return machine::run(id, *launch, &lines, &out),
                None => bail!("launch settings, but no --machine to launch"),
            },
            Ok(other) => bail!("unexpected control line before the launch: {other:?}"),
            Err(_) => bail!("bad control line {line:?}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends the rest of a machine's logs (a `fetch`): it follows them until
/// the machine has ended them (`Stopped`) or they go quiet, then sends
/// their ends.
fn send_rest(fetch: &Fetch, out: &Out) -> anyhow::Result<()> {
    let dir = host_dir(&fetch.remote)?;
    let logs: Vec<_> = fetch
        .remote
        .ship_from
        .iter()
        .map(|&(format, _)| (format, dir.join(clocklab_log::file_name(fetch.machine, format))))
        .collect();
    let mut shipper = ship::Shipper::new(&logs, &fetch.remote.ship_from);
    let quiet = Duration::from_micros(fetch.quiet_us);
    let mut sizes = shipper.sizes();
    let mut since = Instant::now();
    while !shipper.ended() && since.elapsed() < quiet {
        shipper.ship(out, true).context("cannot read the logs")?;
        std::thread::sleep(Duration::from_millis(50));
        let now = shipper.sizes();
        if now != sizes {
            (sizes, since) = (now, Instant::now());
        }
    }
    shipper.ship(out, false).context("cannot read the logs")?;
    say(out, &FromMachine::Shipped(shipper.ends().context("cannot read the logs")?));
    Ok(())
}
