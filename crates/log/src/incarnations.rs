//! A machine's crashes, restarts and reconnections, as its log tells them,
//! and the one rule that says which messages a crash took.
//!
//! A crash ends an incarnation (`Crashed`); the next one begins with
//! `Restarted`, connected to no one: its `Connected` lines come as its
//! connections do (a peer that is down when it restarts is connected when
//! that peer comes back). A `Connected` line to a peer that had gone
//! (`Disconnected`), or any `Connected` line of a restarted incarnation, is
//! a reconnection. A message no log received was taken by a crash when:
//!
//! - its receiver crashed after the send and before the sender reconnected
//!   to the receiver's next incarnation (the message was in the receiver's
//!   queue, on the wire to it, or sent while it was down); or
//! - its sender crashed after the send (the message was still in the
//!   sender's process: its outbox, or held by a fault); or
//! - its sender had restarted and was not yet connected to the receiver
//!   again (no connection carried it).
//!
//! Both the line check (`check`) and the happens-before checker
//! (`clocklab-causal`) ask [`crash_took`].

use std::collections::BTreeMap;

use clocklab_model::MachineId;

use crate::record::{Event, Record};

/// One machine's incarnations; see the [module documentation](self).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Incarnations {
    /// Each crash: when, and when the next incarnation started.
    crashes: Vec<(i64, Option<i64>)>,
    /// Whether each restart kept its clocks (`recovered`), in order.
    recovered: Vec<bool>,
    /// Peers this machine saw go away and not come back yet.
    gone: Vec<MachineId>,
    /// Peers the current incarnation is connected to, once it is a restarted one.
    connected: Option<Vec<MachineId>>,

    /// When this machine connected again to a peer that had gone, per peer.
    reconnected: BTreeMap<MachineId, Vec<i64>>,
}

/// What a line told about the machine's incarnations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// A `Connected` line to a peer that had gone: a reconnection.
    Reconnected,
    /// `Crashed`.
    Crashed,
    /// `Restarted`; `recovered` if it kept its clocks.
    Restarted {
        /// Whether the clocks were recovered (else fresh).
        recovered: bool,
    },
}

impl Incarnations {
    /// Takes the machine's next line.
    pub fn observe(&mut self, record: &Record) -> Change {
        match &record.event {
            Event::Crashed => {
                self.crashes.push((record.time_us, None));
                Change::Crashed
            }
            Event::Restarted { recovered, .. } => {
                if let Some(last) = self.crashes.last_mut()
                    && last.1.is_none()
                {
                    last.1 = Some(record.time_us);
                }
                self.recovered.push(*recovered);
                // The new incarnation is connected to no one yet.
                self.gone.clear();
                self.connected = Some(Vec::new());
                Change::Restarted { recovered: *recovered }
            }
            Event::Disconnected { peer } => {
                if !self.gone.contains(peer) {
                    self.gone.push(*peer);
                }
                if let Some(connected) = &mut self.connected {
                    connected.retain(|p| p != peer);
                }
                Change::None
            }
            Event::Connected { peer, .. } => {
                let was_gone = self.gone.iter().position(|p| p == peer).map(|idx| self.gone.swap_remove(idx));
                let restarted_first = match &mut self.connected {
                    Some(connected) if !connected.contains(peer) => {
                        connected.push(*peer);
                        true
                    }
                    _ => false,
                };
                if was_gone.is_some() || restarted_first {
                    self.reconnected.entry(*peer).or_default().push(record.time_us);
                    Change::Reconnected
                } else {
                    Change::None
                }
            }
            _ => Change::None,
        }
    }

    /// Each crash: when, and when the next incarnation started (none if it
    /// did not).
    pub fn crashes(&self) -> &[(i64, Option<i64>)] {
        &self.crashes
    }

    /// How many restarts began with fresh clocks.
    pub fn fresh_restarts(&self) -> usize {
        self.recovered.iter().filter(|&&recovered| !recovered).count()
    }

    /// When this machine connected again to `peer` after it had gone.
    pub fn reconnections(&self, peer: MachineId) -> &[i64] {
        self.reconnected.get(&peer).map_or(&[], Vec::as_slice)
    }

    /// How long the machine was down, in microseconds: from each crash to
    /// its restart, and from a crash without restart to `end_us` (none:
    /// counted as nothing).
    pub fn down_us(&self, end_us: Option<i64>) -> i64 {
        self.crashes.iter().map(|&(crash, restart)| (restart.or(end_us).unwrap_or(crash) - crash).max(0)).sum()
    }
}

/// Whether a crash took the message `from` sent to `to` at `sent_us` that no
/// log received (see the [module documentation](self)); `None` for a
/// machine whose log is missing.
pub fn crash_took(sender: Option<&Incarnations>, receiver: Option<&Incarnations>, to: MachineId, sent_us: i64) -> bool {
    let receiver_took = receiver.is_some_and(|receiver| {
        let reconnections = sender.map_or(&[][..], |sender| sender.reconnections(to));
        receiver.crashes.iter().any(|&(crash, _)| {
            let reconnected = reconnections.iter().copied().find(|&at| at >= crash).unwrap_or(i64::MAX);
            sent_us < reconnected
        })
    });
    let sender_took = sender.is_some_and(|sender| {
        let reconnections = sender.reconnections(to);
        sender.crashes.iter().any(|&(crash, restart)| {
            // Still in the sender's process when it crashed; or sent by its
            // next incarnation before it was connected to the receiver.
            sent_us <= crash
                || restart.is_some_and(|restart| {
                    restart <= sent_us
                        && reconnections.iter().copied().find(|&at| at >= restart).is_none_or(|at| sent_us < at)
                })
        })
    });
    receiver_took || sender_took
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(event: Event, t: i64) -> Record {
        Record::new(1, event, 0, 0, t)
    }

    #[test]
    fn a_crash_takes_what_was_sent_before_the_reconnection() {
        // Machine 2 crashes at 100 and restarts at 200; machine 1 sees it go
        // and reconnects at 210.
        let mut receiver = Incarnations::default();
        assert_eq!(receiver.observe(&rec(Event::Crashed, 100)), Change::Crashed);
        let restarted = Event::Restarted { host: None, port: None, rate: 1, recovered: false };
        assert_eq!(receiver.observe(&rec(restarted, 200)), Change::Restarted { recovered: false });
        let mut sender = Incarnations::default();
        assert_eq!(sender.observe(&rec(Event::Disconnected { peer: 2 }, 100)), Change::None);
        let connected = Event::Connected { peer: 2, host: None, port: None };
        assert_eq!(sender.observe(&rec(connected, 210)), Change::Reconnected);
        for (sent_us, took) in [(50, true), (150, true), (209, true), (210, false), (300, false)] {
            assert_eq!(crash_took(Some(&sender), Some(&receiver), 2, sent_us), took, "sent at {sent_us}");
        }
        assert_eq!(receiver.down_us(None), 100);
        assert_eq!(receiver.fresh_restarts(), 1);
    }

    #[test]
    fn a_restarted_incarnation_reconnects_as_its_connections_come() {
        // Machine 1 crashes at 100 and restarts at 200, while machine 2 is
        // down; it connects to machine 3 at once and to machine 2 at 250.
        let mut one = Incarnations::default();
        one.observe(&rec(Event::Crashed, 100));
        let restarted = Event::Restarted { host: None, port: None, rate: 1, recovered: true };
        one.observe(&rec(restarted, 200));
        let connected = |peer| Event::Connected { peer, host: None, port: None };
        assert_eq!(one.observe(&rec(connected(3), 200)), Change::Reconnected);
        assert_eq!(one.observe(&rec(connected(2), 250)), Change::Reconnected);
        assert_eq!(one.observe(&rec(connected(2), 260)), Change::None, "already connected");
        // What it sent to machine 2 before its connection was up went nowhere.
        for (sent_us, took) in [(210, true), (249, true), (250, false), (300, false)] {
            assert_eq!(crash_took(Some(&one), None, 2, sent_us), took, "sent at {sent_us}");
        }
        assert!(!crash_took(Some(&one), None, 3, 210));
    }

    #[test]
    fn a_sender_crash_takes_what_it_still_held() {
        let mut sender = Incarnations::default();
        sender.observe(&rec(Event::Crashed, 100));
        assert!(crash_took(Some(&sender), None, 2, 100));
        assert!(!crash_took(Some(&sender), None, 2, 101));
        assert_eq!(sender.down_us(Some(160)), 60);
        assert!(!crash_took(None, None, 2, 0), "no crash, nothing taken");
    }
}
