//! Connecting a bound machine to its peers, and to a restarted peer again:
//! every connection up both ways, hellos exchanged, and each machine's
//! ready instant known, within the connect timeout.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use clocklab_model::MachineId;
use crossbeam_channel::Receiver;

use super::{Bound, Connected, checked_after, now_us};
use crate::accept::Inbound;
use crate::link::{Connector, LinkConfig, LinkEvent};
use crate::peers::{PeerNews, Reconnects};
use crate::send::Outbox;
use crate::stop::StopReceiver;
use crate::ticking::NetEffects;
use crate::{MissingPeer, NetError};

/// What is known of each peer while connecting.
#[derive(Debug, Default)]
struct Joining {
    /// Our connections to the peers that are up, hellos exchanged.
    up: BTreeMap<MachineId, std::net::TcpStream>,
    /// The outbox, once every connection is up both ways.
    outbox: Option<Outbox>,
    /// Peers whose connection to us passed its hello.
    joined: BTreeSet<MachineId>,
    /// Each machine's ready instant.
    ready_us: BTreeMap<MachineId, i64>,
    /// What arrived early: replayed before the first tick.
    early: VecDeque<Inbound>,
}

impl Bound {
    /// Connects to every peer (each in its own thread, retrying while the
    /// peer is not up or closes the connection during the hello) and waits
    /// until every peer has connected back, within the connect timeout; then
    /// writes one `Connected` line per peer, tells every peer it is ready,
    /// and waits for every peer's ready message, within the same timeout.
    ///
    /// Any message on `stop`, or its senders all gone, abandons the attempt
    /// ([`NetError::Stopped`]). On every error the log ends with `Stopped`,
    /// and a timeout names every peer that is missing, and why.
    pub fn connect(
        mut self,
        peers: &BTreeMap<MachineId, SocketAddr>,
        stop: &StopReceiver,
    ) -> Result<Connected, NetError> {
        let mut connector = None;
        let mut joining = Joining::default();
        // Dropped when connecting ends, which stops every connector still trying.
        let (cancel, cancelled) = crossbeam_channel::bounded::<()>(0);
        let result = self.try_connect(peers, stop, &cancelled, &mut connector, &mut joining);
        drop(cancel);
        if let Some(connector) = connector {
            connector.join();
        }
        match (result, joining.outbox) {
            (Ok(()), Some(outbox)) => Ok(Connected {
                bound: self,
                outbox,
                peers: peers.keys().copied().collect(),
                early: joining.early,
                ready_us: joining.ready_us,
            }),
            (result, outbox) => {
                if let Some(outbox) = outbox {
                    outbox.abort();
                }
                // Best effort: the error to report is the first one.
                let _ = self.abandon();
                Err(result.err().unwrap_or(NetError::Stopped))
            }
        }
    }

    fn try_connect(
        &mut self,
        peers: &BTreeMap<MachineId, SocketAddr>,
        stop: &StopReceiver,
        cancelled: &Receiver<()>,
        connector: &mut Option<Connector>,
        joining: &mut Joining,
    ) -> Result<(), NetError> {
        let id = self.config.id();
        let expected: BTreeSet<MachineId> = (1..=self.config.machine.n_machines).filter(|&peer| peer != id).collect();
        let given: BTreeSet<MachineId> = peers.keys().copied().collect();
        if given != expected {
            return Err(NetError::Peers {
                expected: expected.into_iter().collect(),
                given: given.into_iter().collect(),
            });
        }
        let timeout_s = self.config.connect_timeout.as_secs_f64();
        let deadline = checked_after(Instant::now(), self.config.connect_timeout);
        let (events_tx, events) = crossbeam_channel::unbounded();
        let links = peers
            .iter()
            .map(|(&peer, &address)| LinkConfig {
                ours: self.config.hello(),
                peer,
                address,
                deadline,
                timeout_s,
                attempt: 0,
            })
            .collect();
        *connector = Some(Connector::spawn_many(links, events_tx.clone(), cancelled.clone())?);
        drop(events_tx);
        let mut failures: BTreeMap<MachineId, String> = BTreeMap::new();
        let all_up = |joining: &Joining| {
            (joining.up.len() == expected.len() || joining.outbox.is_some()) && joining.joined.len() == expected.len()
        };
        // First every connection, both ways; then every peer's ready message.
        while !all_up(joining) || joining.ready_us.len() < expected.len() + 1 {
            if all_up(joining) && !joining.ready_us.contains_key(&id) {
                for (&peer, address) in peers {
                    let host = address.ip().to_string();
                    let mut effects = NetEffects::lines(&mut self.logs);
                    let _ = self.timeline.connected(now_us(), peer, (&host, Some(address.port())), &mut effects);
                }
                self.logs.check()?;
                let peer_ids = self.config.peer_ids();
                let streams = std::mem::take(&mut joining.up);
                let doorbell = &self.context.doorbell;
                let outbox = Outbox::start(id, &peer_ids, streams, self.config.stall_limit(), doorbell)?;
                let ready_us = now_us();
                joining.ready_us.insert(id, ready_us);
                outbox.send_ready(ready_us);
                joining.outbox = Some(outbox);
                continue;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            crossbeam_channel::select! {
                recv(events) -> event => match event {
                    Ok(LinkEvent::Up { peer, stream, .. }) => {
                        joining.up.insert(peer, stream);
                    }
                    Ok(LinkEvent::Failed { error: NetError::Stopped, .. }) => return Err(NetError::Stopped),
                    // An answer that is not the peer's hello will not change: give up now.
                    Ok(LinkEvent::Failed { error: error @ NetError::HelloRefused { .. }, .. }) => return Err(error),
                    Ok(LinkEvent::Failed { peer, error, .. }) => {
                        failures.insert(peer, error.to_string());
                    }
                    // Every link has reported: wait for the rest until the deadline.
                    Err(_) => crossbeam_channel::select! {
                        recv(stop.channel()) -> _ => return Err(NetError::Stopped),
                        recv(self.inbound) -> event => self.on_joining(event, joining)?,
                        default(remaining) => {}
                    },
                },
                recv(self.inbound) -> event => self.on_joining(event, joining)?,
                recv(stop.channel()) -> _ => return Err(NetError::Stopped),
                default(remaining) => {}
            }
            if Instant::now() >= deadline && (!all_up(joining) || joining.ready_us.len() < expected.len() + 1) {
                let connected = |peer: &MachineId| joining.outbox.is_some() || joining.up.contains_key(peer);
                let missing = expected
                    .iter()
                    .filter_map(|&peer| {
                        let reason = if !connected(&peer) {
                            failures.get(&peer).cloned().unwrap_or_else(|| {
                                connector.as_ref().map_or_else(String::new, |connector| connector.last_error(peer))
                            })
                        } else if !joining.joined.contains(&peer) {
                            "it took our connection but did not connect back".into()
                        } else if !joining.ready_us.contains_key(&peer) {
                            "connected both ways, but it never said it was ready (it is still waiting for \
                             another machine)"
                                .into()
                        } else {
                            return None;
                        };
                        Some(MissingPeer { peer, address: peers[&peer], reason })
                    })
                    .collect();
                return Err(NetError::NotConnected { missing, timeout_s });
            }
        }
        Ok(())
    }

    /// Takes one event from the acceptor while connecting.
    fn on_joining(
        &mut self,
        event: Result<Inbound, crossbeam_channel::RecvError>,
        joining: &mut Joining,
    ) -> Result<(), NetError> {
        match event {
            Ok(Inbound::Joined { from }) => {
                joining.joined.insert(from);
            }
            Ok(Inbound::Ready { from, at_us }) => {
                joining.ready_us.insert(from, at_us);
            }
            Ok(Inbound::Closed { from, .. }) if !joining.ready_us.contains_key(&from) => {
                // A connection the peer gave up on (its answer came too late
                // on a busy computer): it connects again, or the connect
                // deadline names it. A peer that died fails its run anyway.
                joining.joined.remove(&from);
            }
            Ok(other) => joining.early.push_back(other),
            Err(_) => unreachable!("the acceptor keeps a sender for the life of the process"),
        }
        Ok(())
    }

    /// Ends the machine before it ticked (its run was called off): writes `Stopped`.
    pub fn abandon(mut self) -> Result<(), NetError> {
        let mut effects = NetEffects::lines(&mut self.logs);
        effects.ending = true;
        let _ = self.timeline.end(now_us(), &mut effects);
        self.logs.check()
    }

    /// Connects a restarted incarnation to `peers` (those of the run that
    /// are up, and where they listen): one connection to each, logged
    /// `Connected` as it comes up and handed to the outbox. `news` may bring
    /// a peer that restarts meanwhile (it is connected too) or goes down
    /// (it is given up). Returns when every peer is connected or given up,
    /// or at the connect timeout (what is sent to a peer not connected by
    /// then is lost, until it restarts); the ticks due meanwhile run late,
    /// as the restart's.
    ///
    /// Any message on `stop`, or its senders all gone, abandons the attempt
    /// ([`NetError::Stopped`]), and the log ends with `Stopped`.
    pub fn rejoin(
        mut self,
        peers: &BTreeMap<MachineId, SocketAddr>,
        stop: &StopReceiver,
        news: &Receiver<PeerNews>,
    ) -> Result<Connected, NetError> {
        let id = self.config.id();
        let (peer_ids, stall_limit) = (self.config.peer_ids(), self.config.stall_limit());
        let outbox = match Outbox::start(id, &peer_ids, BTreeMap::new(), stall_limit, &self.context.doorbell) {
            Ok(outbox) => outbox,
            Err(error) => {
                let _ = self.abandon();
                return Err(error);
            }
        };
        let mut reconnects = Reconnects::new();
        let mut early = VecDeque::new();
        let result = self.try_rejoin(peers, stop, news, &outbox, &mut reconnects, &mut early);
        reconnects.finish();
        match result {
            Ok(()) => {
                let since_start = now_us().saturating_sub(self.timeline.start_us());
                self.timeline.hold_back_until(u64::try_from(since_start).unwrap_or(0));
                Ok(Connected { bound: self, outbox, peers: Vec::new(), early, ready_us: BTreeMap::new() })
            }
            Err(error) => {
                outbox.abort();
                let _ = self.abandon();
                Err(error)
            }
        }
    }

    fn try_rejoin(
        &mut self,
        peers: &BTreeMap<MachineId, SocketAddr>,
        stop: &StopReceiver,
        news: &Receiver<PeerNews>,
        outbox: &Outbox,
        reconnects: &mut Reconnects,
        early: &mut VecDeque<Inbound>,
    ) -> Result<(), NetError> {
        let hello = self.config.hello();
        let timeout = self.config.connect_timeout;
        for (&peer, &address) in peers.iter().filter(|&(&peer, _)| peer != self.config.id()) {
            reconnects.start(hello, peer, address, timeout)?;
        }
        let deadline = checked_after(Instant::now(), timeout);
        while !reconnects.is_idle() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            crossbeam_channel::select! {
                recv(reconnects.events) -> event => match event {
                    Ok(LinkEvent::Up { peer, stream, attempt }) => {
                        let Some(address) = reconnects.settle(peer, attempt) else { continue };
                        let now = now_us();
                        let host = address.ip().to_string();
                        let mut effects = NetEffects::lines(&mut self.logs);
                        let _ = self.timeline.connected(now, peer, (&host, Some(address.port())), &mut effects);
                        self.logs.check()?;
                        outbox.reconnect(peer, stream, now);
                    }
                    Ok(LinkEvent::Failed { peer, error, attempt }) => {
                        if reconnects.settle(peer, attempt).is_some() {
                            crate::note!("machine {}: cannot connect to machine {peer}: {error}", self.config.id());
                        }
                    }
                    Err(_) => break,
                },
                recv(news) -> news => match news {
                    Ok(PeerNews::Rejoin { peer, address }) => reconnects.start(hello, peer, address, timeout)?,
                    Ok(PeerNews::Down { peer }) => reconnects.give_up(peer),
                    Err(_) => {}
                },
                recv(self.inbound) -> event => match event {
                    Ok(event) => early.push_back(event),
                    Err(_) => unreachable!("the acceptor keeps a sender for the life of the process"),
                },
                recv(stop.channel()) -> _ => return Err(NetError::Stopped),
                default(remaining) => {}
            }
        }
        for peer in (1..=self.config.machine.n_machines).filter(|&peer| reconnects.trying(peer)) {
            crate::note!(
                "machine {}: machine {peer} did not take a connection within the connect timeout; it is connected                  when it is next heard of",
                self.config.id()
            );
        }
        Ok(())
    }
}
