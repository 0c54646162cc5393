//! What the machines say, in every phase of a run, and the run watched
//! from its start to the moment every machine is done.

use std::time::{Duration, Instant};

use clocklab_driver::Change;
use clocklab_model::MachineId;
use clocklab_net::now_us;

use super::{Phase, STOP_LEAD_US, Supervisor, after, resolve};
use crate::launcher::{Report, Who};
use crate::protocol::{FromMachine, ToMachine};

impl Supervisor<'_> {
    /// Takes one report. Returns what halts the run, if it does: a machine
    /// that got a signal.
    pub(crate) fn on_report(&mut self, who: Who, report: Report) -> Option<String> {
        let current = self.slots.get(&who.id).is_some_and(|slot| slot.incarnation == who.incarnation);
        if !current || self.retired.contains(&who) {
            // A crashed incarnation's last words: it is gone.
            return None;
        }
        let id = who.id;
        match report {
            Report::Said(FromMachine::Bound { port, rate }) => self.bound(who, port, rate),
            Report::Said(FromMachine::Ready) => {
                let slot = self.slots.get_mut(&id).expect("current");
                slot.phase = Phase::Ready;
                if who.incarnation > 0 && !self.stopping {
                    // A restarted machine ticks from its planned restart on.
                    if let Some(start_us) = self.record.start_us
                        && self.send(id, &ToMachine::Start(start_us + self.offset_us(id)))
                    {
                        self.slots.get_mut(&id).expect("current").phase = Phase::Ticking;
                    }
                }
            }
            // It wrote its last lines: the crash kills it now.
            Report::Said(FromMachine::Crashed) => self.kill_for_crash(id),
            Report::Said(FromMachine::Done(summary)) => {
                self.record.summaries.insert(id, summary);
                self.slots.get_mut(&id).expect("current").phase = Phase::Done;
            }
            Report::Said(FromMachine::Signalled { signal }) => return Some(format!("machine {id} got {signal}")),
            Report::Said(FromMachine::Failed { cause, blames }) => {
                self.slots.get_mut(&id).expect("current").failed = Some((cause, blames));
            }
            // An agent's own lines are taken by its process, not reported.
            Report::Said(
                FromMachine::Hello { .. }
                | FromMachine::Pong { .. }
                | FromMachine::Probed { .. }
                | FromMachine::Spawned { .. }
                | FromMachine::Log { .. }
                | FromMachine::Exited { .. }
                | FromMachine::Shipped(_),
            ) => {}
            Report::Garbled(line) => {
                self.record.fail(Some(id), None, format!("machine {id} said something unexpected: {line:?}"));
            }
            Report::Closed => {
                let slot = self.slots.get_mut(&id).expect("current");
                if slot.phase != Phase::Done {
                    slot.phase = Phase::Exited;
                }
            }
        }
        None
    }

    /// Machine `who` listens on `port` and drew `rate`.
    fn bound(&mut self, who: Who, port: u16, rate: u32) {
        let id = who.id;
        let planned = self.slots[&id].plan.rate;
        if rate != planned {
            self.record.fail(
                Some(id),
                None,
                format!("machine {id} drew rate {rate}, the plan says {planned}: the machine and the plan disagree"),
            );
        }
        self.record.ports.insert(id, port);
        // On another host, the machine process's id is known once its agent started it.
        if let Some(pid) = self.slots[&id].process.as_ref().and_then(|process| process.pid()) {
            self.record.pids.insert(id, pid);
        }
        let host = match self.host_of(id) {
            Some(idx) => self.hosts[idx].spec.address.clone(),
            None => self.plan.host.clone(),
        };
        let address = match resolve(&host, port) {
            Ok(address) => address,
            Err(failure) => {
                self.record.fail(Some(id), None, failure.0);
                return;
            }
        };
        let slot = self.slots.get_mut(&id).expect("current");
        slot.address = Some(address);
        slot.phase = Phase::Bound;
        if who.incarnation == 0 || self.stopping {
            return;
        }
        if slot.crash_pending {
            // Its crash came while it started: it has written its first line.
            self.kill_for_crash(id);
            return;
        }
        // A new incarnation: it connects to the peers that are up, and they
        // to it.
        let peers = self.up_addresses(id);
        self.send(id, &ToMachine::Peers(peers.clone()));
        for peer in peers.into_keys() {
            self.send(peer, &ToMachine::Rejoin { peer: id, address });
        }
    }

    /// Watches the run from its start until every machine is done (or the
    /// end's deadline passes), applying the plan's machine faults on time.
    /// `deadline` is when ticking ends.
    pub(crate) fn watch(&mut self, deadline: Instant) {
        let end_deadline =
            after(after(deadline, clocklab_net::longest_end(self.connect_timeout)), Duration::from_secs(5));
        loop {
            if self.finished() {
                break;
            }
            let next_action = if self.stopping { None } else { self.next_action_instant() };
            let wake = [next_action, self.next_crash_by()].into_iter().flatten().fold(end_deadline, Instant::min);
            let mut halt = None;
            crossbeam_channel::select! {
                recv(self.reports) -> report => {
                    let Ok((who, report)) = report else { break };
                    halt = self.on_report(who, report);
                }
                recv(self.control.requested()) -> _ => {
                    if !self.stopping {
                        halt = Some(self.control.cause());
                    }
                }
                default(wake.saturating_duration_since(Instant::now())) => {
                    if Instant::now() >= end_deadline {
                        let late: Vec<MachineId> = self
                            .slots
                            .iter()
                            .filter(|(_, slot)| !matches!(slot.phase, Phase::Done | Phase::Exited | Phase::Down))
                            .map(|(&id, _)| id)
                            .collect();
                        self.record.fail(None, None, format!("machines {late:?} did not finish in time"));
                        break;
                    }
                }
            }
            self.crashes_overdue();
            if !self.stopping {
                self.act_due();
            }
            if let Some(cause) = halt
                && !self.stopping
            {
                self.stopping = true;
                self.record.interrupted.get_or_insert(cause);
                self.stop_all(now_us() + STOP_LEAD_US);
            }
        }
    }

    /// Whether the run is over: no machine is running, and no restart is
    /// still to come.
    fn finished(&self) -> bool {
        let running = self.slots.values().any(|slot| !matches!(slot.phase, Phase::Done | Phase::Exited | Phase::Down));
        let restart_to_come = !self.stopping
            && self.actions[self.next_action..]
                .iter()
                .any(|&(_, _, id, idx)| matches!(self.slots[&id].life.events()[idx].change, Change::Restart { .. }));
        !running && !restart_to_come
    }

    /// When the next action of the plan is due.
    fn next_action_instant(&self) -> Option<Instant> {
        let &(at_us, ..) = self.actions.get(self.next_action)?;
        let due_us = self.record.start_us?.saturating_add_unsigned(at_us);
        let wait_us = u64::try_from(due_us.saturating_sub(now_us())).unwrap_or(0);
        Some(Instant::now() + Duration::from_micros(wait_us))
    }
}
