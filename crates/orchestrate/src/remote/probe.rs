//! What is asked of a host's agent (`clocklab agent`, without a machine),
//! through the host's launcher: before a run, its version, a free port of
//! its address and its clock's offset to this computer's; after it, the
//! offset again (the drift shows); and, when a machine's channel broke, the
//! rest of its logs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use clocklab_log::LogFormat;
use clocklab_net::now_us;
use crossbeam_channel::Receiver;

use super::LocalCopy;
use crate::protocol::{Fetch, FromMachine, ToMachine, send_line};

/// How many four-timestamp exchanges a clock measurement makes; the one
/// with the shortest round trip is kept.
pub const CLOCK_EXCHANGES: usize = 16;

/// A host's clock against this computer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockOffset {
    /// The host's clock minus this one's, in microseconds.
    pub offset_us: i64,
    /// Half the round trip of the exchange it comes from: the offset is
    /// within this of the truth, whatever the path's asymmetry.
    pub uncertainty_us: i64,
}

impl ClockOffset {
    /// The offset of the best of `exchanges` (`t1`, `t2`, `t3`, `t4`): the
    /// one with the shortest round trip, `(t4 - t1) - (t3 - t2)`, as NTP
    /// takes it: `((t2 - t1) + (t3 - t4)) / 2`.
    pub fn best_of(exchanges: &[[i64; 4]]) -> Option<ClockOffset> {
        exchanges
            .iter()
            .map(|&[t1, t2, t3, t4]| {
                let round_trip = ((t4 - t1) - (t3 - t2)).max(0);
                let offset = ((t2 - t1) + (t3 - t4)).div_euclid(2);
                (round_trip, offset)
            })
            .min_by_key(|&(round_trip, _)| round_trip)
            .map(|(round_trip, offset_us)| ClockOffset { offset_us, uncertainty_us: (round_trip + 1) / 2 })
    }
}

/// What a host answered before a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostProbe {
    /// Its clocklab version.
    pub version: String,
    /// A port of its address that was free.
    pub port: u16,
    /// Its clock against this computer's.
    pub clock: ClockOffset,
}

/// An agent without a machine, through a launcher.
struct AgentLink {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl AgentLink {
    fn start(launcher: &[String]) -> Result<AgentLink, String> {
        let mut command = super::command(launcher, &["agent".to_string()]).map_err(|error| error.to_string())?;
        let mut child = command.spawn().map_err(|error| format!("cannot start `{}`: {error}", launcher.join(" ")))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = super::keep_stderr(child.stderr.take().expect("stderr is piped"), "probe-stderr".into())
            .map_err(|error| error.to_string())?;
        let (sender, lines) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("probe-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|error| error.to_string())?;
        Ok(AgentLink { child, stdin, lines, stderr })
    }

    fn send(&mut self, message: &ToMachine) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("its input is closed")?;
        send_line(stdin, message).map_err(|error| format!("cannot write to its launcher: {error}"))
    }

    /// The next line the agent says, by `deadline`.
    fn recv(&mut self, deadline: Instant, what: &str) -> Result<FromMachine, String> {
        match self.lines.recv_deadline(deadline) {
            Ok(line) => serde_json::from_str(&line).map_err(|_| format!("it said {line:?}, not {what}")),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(format!("no {what} in time{}", self.said())),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                let exit = self.finish();
                Err(format!("its launcher ended ({exit}) before {what}{}", self.said()))
            }
        }
    }

    /// What the launcher or the agent said last on stderr, for a failure.
    fn said(&self) -> String {
        // The stderr thread may still be reading the last words.
        std::thread::sleep(Duration::from_millis(20));
        let lines = self.stderr.lock().expect("stderr lock");
        match lines.last() {
            Some(line) => format!(": {line}"),
            None => String::new(),
        }
    }

    /// Closes its input and waits for it to exit (at most 2 s, then it is killed).
    fn finish(&mut self) -> String {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return crate::launcher::Exit::from(status).to_string(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return "killed".into();
                }
            }
        }
    }

    /// Greets the agent: its version.
    fn hello(&mut self, deadline: Instant) -> Result<String, String> {
        match self.recv(deadline, "its greeting")? {
            FromMachine::Hello { version, .. } => Ok(version),
            other => Err(format!("it said {other:?} before its greeting")),
        }
    }

    /// [`CLOCK_EXCHANGES`] four-timestamp exchanges, the best kept.
    fn clock(&mut self, deadline: Instant) -> Result<ClockOffset, String> {
        let mut exchanges = Vec::with_capacity(CLOCK_EXCHANGES);
        for _ in 0..CLOCK_EXCHANGES {
            let t1 = now_us();
            self.send(&ToMachine::Ping(t1))?;
            match self.recv(deadline, "an answer to its clock's exchange")? {
                FromMachine::Pong { t1: back, t2, t3 } if back == t1 => exchanges.push([t1, t2, t3, now_us()]),
                other => return Err(format!("it answered {other:?} to a clock exchange")),
            }
        }
        Ok(ClockOffset::best_of(&exchanges).expect("exchanges were made"))
    }
}

impl Drop for AgentLink {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Asks a host, through `launcher`, its version (which must be this one),
/// a free port of `address`, and its clock's offset, within `timeout`.
pub fn probe(launcher: &[String], address: &str, timeout: Duration) -> Result<HostProbe, String> {
    let deadline = Instant::now() + timeout;
    let mut agent = AgentLink::start(launcher)?;
    let version = agent.hello(deadline)?;
    let ours = env!("CARGO_PKG_VERSION");
    if version != ours {
        return Err(format!(
            "it runs clocklab {version}, this is clocklab {ours}: install the same version on every host"
        ));
    }
    agent.send(&ToMachine::Port { address: address.to_string() })?;
    let port = match agent.recv(deadline, "a free port")? {
        FromMachine::Probed { port: Some(port), .. } => port,
        FromMachine::Probed { error, .. } => {
            return Err(format!("no port of {address} can be bound there: {}", error.unwrap_or_default()));
        }
        other => return Err(format!("it answered {other:?} when asked for a port")),
    };
    let clock = agent.clock(deadline)?;
    Ok(HostProbe { version, port, clock })
}

/// A host's clock's offset to this computer's, through `launcher`.
pub fn measure_clock(launcher: &[String], timeout: Duration) -> Result<ClockOffset, String> {
    let deadline = Instant::now() + timeout;
    let mut agent = AgentLink::start(launcher)?;
    agent.hello(deadline)?;
    agent.clock(deadline)
}

/// Fetches the rest of a machine's logs through `launcher` into the copies
/// of `logs`, from the bytes they hold; returns how many bytes came. The
/// agent waits for the logs to end (their last line `Stopped` or
/// `Crashed`) or to go quiet for `fetch.quiet_us`.
pub(crate) fn fetch(
    launcher: &[String],
    mut fetch: Fetch,
    logs: &[(LogFormat, PathBuf)],
    timeout: Duration,
) -> Result<u64, String> {
    let deadline = Instant::now() + timeout;
    let mut copy = LocalCopy::new(logs);
    let before: u64 = copy.lengths().iter().map(|(_, len)| len).sum();
    fetch.remote.ship_from = copy.lengths();
    let mut agent = AgentLink::start(launcher)?;
    agent.hello(deadline)?;
    agent.send(&ToMachine::Fetch(Box::new(fetch)))?;
    loop {
        match agent.recv(deadline, "the rest of its logs")? {
            FromMachine::Log { format, offset, data } => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .map_err(|error| format!("bytes of its log that are not base64: {error}"))?;
                copy.append(format, offset, &bytes)?;
            }
            FromMachine::Shipped(ends) => {
                copy.verify(&ends)?;
                let after: u64 = copy.lengths().iter().map(|(_, len)| len).sum();
                return Ok(after - before);
            }
            FromMachine::Failed { cause, .. } => return Err(cause),
            other => return Err(format!("it said {other:?} while sending logs")),
        }
    }
}

/// Probes every host side by side (see [`probe`]), each through its
/// command (its launcher, filled in); the answers in the hosts' order.
pub fn probe_all(hosts: &[(String, Vec<String>)], timeout: Duration) -> Vec<Result<HostProbe, String>> {
    std::thread::scope(|scope| {
        let asked: Vec<_> =
            hosts.iter().map(|(address, command)| scope.spawn(move || probe(command, address, timeout))).collect();
        asked.into_iter().map(|asked| asked.join().unwrap_or_else(|_| Err("its probe panicked".into()))).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_with_the_shortest_round_trip_gives_the_offset() {
        // A host 2.5 s ahead; the first exchange waited 40 ms on the way
        // back, the second only 1 ms each way.
        let ahead = 2_500_000;
        let slow = [0, 1_000 + ahead, 1_100 + ahead, 41_100];
        let quick = [100_000, 101_000 + ahead, 101_050 + ahead, 102_050];
        let best = ClockOffset::best_of(&[slow, quick]).unwrap();
        assert_eq!(best, ClockOffset { offset_us: ahead, uncertainty_us: 1_000 });
        let only_slow = ClockOffset::best_of(&[slow]).unwrap();
        assert_eq!(only_slow.uncertainty_us, 20_500);
        assert!((only_slow.offset_us - ahead).abs() <= only_slow.uncertainty_us);
        assert_eq!(ClockOffset::best_of(&[]), None);
    }
}
