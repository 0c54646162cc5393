//! The start of a run: every machine spawned and launched, then bound,
//! given its peers' addresses, connected, and given one start instant.

use std::time::{Duration, Instant};

use clocklab_model::MachineId;
use clocklab_net::now_us;

use super::{Halt, Phase, START_LEAD_US, Supervisor, after};
use crate::Observer;
use crate::launcher::{Report, Who};
use crate::protocol::ToMachine;

impl Supervisor<'_> {
    /// Takes the run's machines through launch, bind, connect and the start
    /// instant; returns when ticking ends.
    pub(crate) fn start(&mut self, observer: &dyn Observer, idx: usize) -> Result<Instant, Halt> {
        if let Err(error) = clocklab_config::output::create_dir_all(&self.plan.dir) {
            self.record.fail(None, None, format!("cannot create {}: {error}", self.plan.dir.display()));
            return Err(Halt::Failed);
        }
        if !self.hosts.is_empty() {
            // Every host answers before any machine starts: its version, a
            // free port, its clock.
            self.probe_hosts()?;
        }
        let ids: Vec<MachineId> = self.slots.keys().copied().collect();
        for &id in &ids {
            if let Err(failure) = self.spawn(id, 0, None) {
                self.record.fail(Some(id), None, failure.0);
                return Err(Halt::Failed);
            }
        }
        let bound_by = after(Instant::now(), self.connect_timeout);
        self.wait_for(Phase::Bound, bound_by, "its port")?;
        let addresses = self.up_addresses(0);
        for &id in &ids {
            let mut peers = addresses.clone();
            peers.remove(&id);
            self.send(id, &ToMachine::Peers(peers));
        }
        let ready_by = after(Instant::now(), self.connect_timeout + Duration::from_secs(1));
        self.wait_for(Phase::Ready, ready_by, "its connections")?;

        let start_us = now_us() + START_LEAD_US;
        self.record.start_us = Some(start_us);
        for &id in &ids {
            // Each machine is told the instant in its host's clock.
            self.send(id, &ToMachine::Start(start_us + self.offset_us(id)));
            self.slots.get_mut(&id).expect("listed").phase = Phase::Ticking;
        }
        let lead = u64::try_from(START_LEAD_US).unwrap_or(0);
        let deadline = after(Instant::now(), Duration::from_micros(self.plan.duration_us().saturating_add(lead)));
        observer.started(idx, deadline);
        Ok(deadline)
    }

    /// Waits until every machine has reached `phase`, or `deadline`; a
    /// machine whose output closes first has failed. A stop request, or a
    /// machine that reports a signal, ends the wait.
    fn wait_for(&mut self, phase: Phase, deadline: Instant, what: &str) -> Result<(), Halt> {
        let reached = |slot: &super::Slot| match phase {
            Phase::Bound => matches!(slot.phase, Phase::Bound | Phase::Ready),
            _ => slot.phase == phase,
        };
        while !self.slots.values().all(reached) {
            let (who, report) = crossbeam_channel::select! {
                recv(self.reports) -> report => match report {
                    Ok(report) => report,
                    Err(_) => unreachable!("the supervisor keeps a sender of its reports"),
                },
                recv(self.control.requested()) -> _ => return Err(Halt::Interrupted(self.control.cause())),
                default(deadline.saturating_duration_since(Instant::now())) => {
                    let pending: Vec<MachineId> =
                        self.slots.iter().filter(|(_, slot)| !reached(slot)).map(|(&id, _)| id).collect();
                    self.record.fail(None, None, format!("machines {pending:?} did not report {what} in time"));
                    return Err(Halt::Failed);
                }
            };
            let closed = matches!(report, Report::Closed);
            if let Some(cause) = self.on_report(who, report) {
                return Err(Halt::Interrupted(cause));
            }
            if closed {
                self.exited_early(who, what);
                return Err(Halt::Failed);
            }
        }
        if self.record.failures.is_empty() { Ok(()) } else { Err(Halt::Failed) }
    }

    /// Machine `who` exited before it reported `what`: the failure says why,
    /// as the machine said it, or as its last error line.
    fn exited_early(&mut self, who: Who, what: &str) {
        let id = who.id;
        // Its last words may still be on their way: give them a moment.
        let by = Instant::now() + Duration::from_millis(50);
        while let Ok((other, report)) = self.reports.recv_deadline(by) {
            let _ = self.on_report(other, report);
            if self.slots[&id].failed.is_some() {
                break;
            }
        }
        let slot = &self.slots[&id];
        let (cause, blames) = match &slot.failed {
            Some((cause, blames)) => (cause.clone(), *blames),
            None => {
                (slot.process.as_ref().and_then(|p| p.last_error()).unwrap_or_else(|| "no error message".into()), None)
            }
        };
        self.record.fail(Some(id), blames, format!("machine {id} exited before it reported {what}: {cause}"));
    }
}
