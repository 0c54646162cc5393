//! Peers that come and go under the fault plan: a crash is applied from
//! outside the machines (the orchestrator kills the process), a restart is a
//! new process. The orchestrator tells every machine that is up of both
//! ([`PeerNews`]); a machine connects to a restarted peer's new incarnation
//! ([`Reconnects`]) and gives up on one that went down.
//!
//! When each of this happens, and what it writes, the machine's
//! `clocklab_driver::Timeline` decides: it logs `Connected` when a
//! connection is up, `Disconnected` when one it had goes, and a restarted
//! incarnation ([`RestartSpec`]) begins connected to no one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clocklab_model::MachineId;
use clocklab_model::wire::Hello;
use crossbeam_channel::{Receiver, Sender};

use crate::link::{Connector, LinkConfig, LinkEvent};
use crate::{NetError, StopSender};

/// What the orchestrator tells a machine of its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerNews {
    /// A peer restarted after a crash: its new incarnation listens at `address`.
    Rejoin {
        /// The peer.
        peer: MachineId,
        /// Its new address.
        address: SocketAddr,
    },
    /// A peer crashed: its connections are gone, and trying to reach it is vain.
    Down {
        /// The peer.
        peer: MachineId,
    },
}

/// How a machine that crashed comes back (a new process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestartSpec {
    /// The run's start instant, microseconds since the Unix epoch.
    pub start_us: i64,
    /// The planned restart, microseconds after the start: the ticks due
    /// before it are gone.
    pub at_us: u64,
    /// Whether its clocks come back as the log's last line has them (else
    /// they start from 0).
    pub recovered: bool,
}

/// A news channel that never brings news while the sender is kept: for a
/// machine whose peers never crash.
pub fn no_news() -> (Sender<PeerNews>, Receiver<PeerNews>) {
    crossbeam_channel::bounded(1)
}

/// Where the news of a machine's peers is sent (see [`news_channel`]).
#[derive(Clone, Debug)]
pub struct NewsSender {
    news: Sender<PeerNews>,
    stop: StopSender,
}

impl NewsSender {
    /// Tells the machine, and wakes it: a machine between two far ticks
    /// hears its news only when woken. False if it no longer listens (it
    /// stopped ticking, and needs not hear it).
    pub fn send(&self, news: PeerNews) -> bool {
        let sent = self.news.send(news).is_ok();
        self.stop.ring();
        sent
    }
}

/// The news channel of the machine that `stop` sends stop requests to:
/// news sent to it rings that machine's stop channel.
pub fn news_channel(stop: StopSender) -> (NewsSender, Receiver<PeerNews>) {
    let (news, receiver) = crossbeam_channel::unbounded();
    (NewsSender { news, stop }, receiver)
}

/// One connector to a restarted peer.
#[derive(Debug)]
struct Reconnect {
    connector: Connector,
    address: SocketAddr,
    attempt: u64,
    /// Dropped to stop the connector.
    _cancel: Sender<()>,
}

/// The connections to restarted peers being made.
#[derive(Debug)]
pub(crate) struct Reconnects {
    current: BTreeMap<MachineId, Reconnect>,
    /// Connectors given up, joined at the end.
    retired: Vec<Connector>,
    events_tx: Sender<LinkEvent>,
    pub(crate) events: Receiver<LinkEvent>,
    next_attempt: u64,
}

impl Reconnects {
    pub(crate) fn new() -> Reconnects {
        let (events_tx, events) = crossbeam_channel::unbounded();
        Reconnects { current: BTreeMap::new(), retired: Vec::new(), events_tx, events, next_attempt: 0 }
    }

    /// Starts connecting to `peer` at `address`, within `timeout`, giving up
    /// any earlier attempt to reach it.
    pub(crate) fn start(
        &mut self,
        ours: Hello,
        peer: MachineId,
        address: SocketAddr,
        timeout: Duration,
    ) -> Result<(), NetError> {
        self.give_up(peer);
        self.next_attempt += 1;
        let attempt = self.next_attempt;
        let config = LinkConfig {
            ours,
            peer,
            address,
            deadline: Instant::now() + timeout,
            timeout_s: timeout.as_secs_f64(),
            attempt,
        };
        let (cancel, cancelled) = crossbeam_channel::bounded(0);
        let connector = Connector::spawn(config, self.events_tx.clone(), cancelled)?;
        self.current.insert(peer, Reconnect { connector, address, attempt, _cancel: cancel });
        Ok(())
    }

    /// Stops trying to reach `peer` (it went down again, or a newer
    /// incarnation is to be reached).
    pub(crate) fn give_up(&mut self, peer: MachineId) {
        if let Some(old) = self.current.remove(&peer) {
            self.retired.push(old.connector);
        }
    }

    /// The address of the current attempt to reach `peer` if `attempt` is it
    /// (a later event of an attempt given up is stale), and forgets it.
    pub(crate) fn settle(&mut self, peer: MachineId, attempt: u64) -> Option<SocketAddr> {
        match self.current.get(&peer) {
            Some(current) if current.attempt == attempt => {
                let done = self.current.remove(&peer).expect("just found");
                let address = done.address;
                self.retired.push(done.connector);
                Some(address)
            }
            _ => None,
        }
    }

    /// Whether an attempt to reach `peer` is under way.
    pub(crate) fn trying(&self, peer: MachineId) -> bool {
        self.current.contains_key(&peer)
    }

    /// Whether any attempt is under way.
    pub(crate) fn is_idle(&self) -> bool {
        self.current.is_empty()
    }

    /// Stops every connector still trying, and waits for them.
    pub(crate) fn finish(&mut self) {
        let current = std::mem::take(&mut self.current);
        // Dropping each cancel sender stops its connector.
        let connectors: Vec<Connector> = current.into_values().map(|r| r.connector).collect();
        for connector in connectors.into_iter().chain(std::mem::take(&mut self.retired)) {
            connector.join();
        }
    }
}
