//! A machine started by `clocklab run`: its settings come over stdin, one
//! JSON line at a time, and it reports on stdout (see `crate::orchestrate`).

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clocklab_driver::DriverParams;
use clocklab_model::{ClockKinds, MachineId};
use clocklab_net::{NetError, NewsSender, NodeConfig, PeerNews, RunSummary, StopReceiver, StopRequest, StopSender};
use crossbeam_channel::Receiver;

use crate::signals::{signal_name, watch_signals};
use clocklab_orchestrate::protocol::{FromMachine, Launch, ToMachine, send_line};

/// Reads control lines from stdin on a thread. A `stop` line goes to `stop`
/// as a request for its instant, `rejoin` and `down` lines to `news` (which
/// wakes the machine to hear them); the
/// end of stdin (the orchestrator is gone) is a request to stop now. Every
/// other line goes, parsed, to the returned channel (a line that does not
/// parse as itself).
fn control_lines(stop: StopSender, news: NewsSender) -> anyhow::Result<Receiver<Result<ToMachine, String>>> {
    let (sender, receiver) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let sent = match serde_json::from_str::<ToMachine>(&line) {
                    Ok(ToMachine::Stop(at_us)) => stop.send(StopRequest::At(at_us)).is_ok(),
                    // A machine that no longer ticks needs not hear it.
                    Ok(ToMachine::Rejoin { peer, address }) => {
                        news.send(PeerNews::Rejoin { peer, address });
                        true
                    }
                    Ok(ToMachine::Down { peer }) => {
                        news.send(PeerNews::Down { peer });
                        true
                    }
                    Ok(control) => sender.send(Ok(control)).is_ok(),
                    Err(_) => sender.send(Err(line)).is_ok(),
                };
                if !sent {
                    break;
                }
            }
            let _ = stop.send(StopRequest::Now);
        })
        .context("cannot start the thread that reads the orchestrator's lines")?;
    Ok(receiver)
}

/// What came next from the orchestrator.
enum Next {
    /// A control line.
    Control(ToMachine),
    /// A stop request (or a signal, or the end of stdin).
    Stop,
}

/// The next control line, or a stop request.
///
/// A control line sent before a stop request wins, whatever order the two
/// channels are read in (the request is put back for the next phase): a
/// machine told `start` then `stop` ticks until the stop instant like the
/// rest of its run, instead of leaving them to send to a machine that left.
fn next_control(
    controls: &Receiver<Result<ToMachine, String>>,
    stop: &StopReceiver,
    stop_again: &StopSender,
    what: &str,
) -> anyhow::Result<Next> {
    let control = crossbeam_channel::select! {
        recv(controls) -> control => control,
        recv(stop.channel()) -> request => match controls.try_recv() {
            Ok(control) => {
                if let Ok(request) = request {
                    let _ = stop_again.send(request);
                }
                Ok(control)
            }
            Err(_) => return Ok(Next::Stop),
        },
    };
    match control {
        Ok(Ok(control)) => Ok(Next::Control(control)),
        Ok(Err(line)) => bail!("bad control line {line:?} (expected {what})"),
        Err(_) => bail!("the orchestrator went away before sending {what}"),
    }
}

/// Tells the orchestrator `message`. An orchestrator that cannot be told is
/// gone: the end of this machine's stdin stops it cleanly, with its log
/// whole, so a report that fails is no error of the machine (an orphan
/// exits 0, never with a panic on its closed stdout or stderr).
fn report(message: &FromMachine) {
    let _ = send_line(&mut std::io::stdout().lock(), message);
}

/// Runs an orchestrated machine. A machine that fails tells the
/// orchestrator why, and which peer it blames if it failed of a peer's going
/// (the orchestrator names the first machine that failed of its own error
/// as its run's cause).
pub(super) fn run(id: MachineId) -> anyhow::Result<ExitCode> {
    let result = run_machine(id);
    if let Err(error) = &result {
        let blames = error.chain().find_map(|cause| cause.downcast_ref::<NetError>()).and_then(NetError::blames);
        report(&FromMachine::Failed { cause: format!("{error:#}"), blames });
    }
    result
}

/// [`run`], but for the report of a failure.
fn run_machine(id: MachineId) -> anyhow::Result<ExitCode> {
    let (stop_tx, stop) = clocklab_net::stop_channel().context("cannot make the stop channel")?;
    let (news_tx, news) = clocklab_net::news_channel(stop_tx.clone());
    let controls = control_lines(stop_tx.clone(), news_tx)?;
    let on_signal = stop_tx.clone();
    watch_signals(id, move |signal| {
        // The orchestrator hears of it first, and stops the rest of the run.
        report(&FromMachine::Signalled { signal: signal_name(signal).to_string() });
        let _ = on_signal.send(StopRequest::Now);
    })?;
    let launch = match next_control(&controls, &stop, &stop_tx, "the launch settings")? {
        Next::Control(ToMachine::Launch(launch)) => *launch,
        Next::Control(_) => bail!("the first control line is not the launch settings"),
        Next::Stop => return Ok(ExitCode::SUCCESS),
    };
    let Launch {
        n_machines,
        max_clock_rate,
        max_event_num,
        seed,
        clocks,
        clock_offset_us,
        clock_drift_ppm,
        host,
        token_hex,
        connect_timeout_s,
        queue_cap,
        duration_us,
        logs,
        faults,
        run_seed,
        restart,
        remote: _,
    } = launch;
    let token = clocklab_model::wire::token_from_hex(&token_hex).ok_or_else(|| anyhow!("bad run token"))?;
    let clocks = ClockKinds::parse(clocks.iter().map(String::as_str))?;
    let node = NodeConfig {
        machine: DriverParams {
            id,
            n_machines,
            max_clock_rate,
            max_event_num,
            seed,
            clocks,
            clock_offset_us,
            clock_drift_ppm,
            queue_cap,
        },
        listen: super::resolve(&host, 0)?,
        host,
        token,
        connect_timeout: Duration::try_from_secs_f64(connect_timeout_s).context("bad connect timeout")?,
        end_grace: Duration::ZERO,
        logs,
        duration_us,
        faults,
        run_seed,
    };
    let bound = match restart {
        None => clocklab_net::bind(node),
        Some(restart) => clocklab_net::bind_restarted(node, restart),
    }
    .with_context(|| format!("machine {id} cannot start"))?;
    report(&FromMachine::Bound { port: bound.address().port(), rate: bound.rate() });
    let stopped = || {
        report(&FromMachine::Done(RunSummary::not_started()));
        Ok(ExitCode::SUCCESS)
    };
    let peers = match next_control(&controls, &stop, &stop_tx, "the peers' addresses") {
        Ok(Next::Control(ToMachine::Peers(mut all))) => {
            all.remove(&id);
            all
        }
        Ok(Next::Stop) => {
            bound.abandon()?;
            return stopped();
        }
        Ok(Next::Control(_)) => {
            bound.abandon()?;
            bail!("expected the peers' addresses");
        }
        Err(error) => {
            bound.abandon()?;
            return Err(error);
        }
    };
    let connecting = match restart {
        None => bound.connect(&peers, &stop),
        // A new incarnation connects to the peers that are up, and ticks from
        // its planned restart on.
        Some(_) => bound.rejoin(&peers, &stop, &news),
    };
    let connected = match connecting {
        Ok(connected) => connected,
        Err(NetError::Stopped) => return stopped(),
        // A peer told to stop while we were connecting closes on us: with a
        // stop request of our own waiting, that is the stop, not a failure.
        Err(_) if !stop.is_empty() => return stopped(),
        Err(error) => return Err(error).with_context(|| format!("machine {id} cannot connect")),
    };
    report(&FromMachine::Ready);
    let start_us = match next_control(&controls, &stop, &stop_tx, "the start instant") {
        Ok(Next::Control(ToMachine::Start(start_us))) => start_us,
        Ok(Next::Stop) => {
            connected.abandon()?;
            return stopped();
        }
        Ok(Next::Control(_)) => {
            connected.abandon()?;
            bail!("expected the start instant");
        }
        Err(error) => {
            connected.abandon()?;
            return Err(error);
        }
    };
    let summary = connected.run(start_us, &stop, news).with_context(|| format!("machine {id}"))?;
    if summary.crashed {
        // Its log ends with `Crashed`: it waits to be killed, or for the end
        // of its input (the orchestrator is gone).
        report(&FromMachine::Crashed);
        while let Ok(request) = stop.recv() {
            if request == StopRequest::Now {
                break;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    report(&FromMachine::Done(summary));
    Ok(ExitCode::SUCCESS)
}
