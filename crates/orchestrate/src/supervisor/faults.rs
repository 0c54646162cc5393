//! The plan's machine faults, applied to the processes as each machine's
//! `clocklab_driver::Life` says (the machine's own timeline says the same,
//! and keeps its ticks and lines to it):
//!
//! - a crash kills the process (`SIGKILL`) once the machine says it wrote
//!   its last lines (its own timeline crashes it at the same instant), or
//!   [`super::CRASH_GRACE`] after the instant; if it had not written its
//!   `Crashed` line by then, the supervisor writes it. Its peers hear
//!   `down`. A crash due before a new incarnation listens waits until it
//!   does (it has written its first line), or until its next restart.
//! - a restart spawns the next incarnation, which connects to the peers
//!   that are up; they hear `rejoin` with its address once it listens.
//! - a pause stops the process (`SIGSTOP`) and continues it (`SIGCONT`).

use clocklab_driver::Change;
use clocklab_model::MachineId;
use clocklab_net::{RestartSpec, now_us};

use super::{Phase, Supervisor};
use crate::crash_line::write_crash_line;
use crate::launcher::Who;
use crate::protocol::ToMachine;

impl Supervisor<'_> {
    /// Takes the actions of the plan that are due by now.
    pub(crate) fn act_due(&mut self) {
        let Some(start_us) = self.record.start_us else { return };
        let since_us = u64::try_from(now_us().saturating_sub(start_us)).unwrap_or(0);
        while let Some(&(at_us, _, id, idx)) = self.actions.get(self.next_action) {
            if at_us > since_us {
                break;
            }
            self.next_action += 1;
            match self.slots[&id].life.events()[idx].change {
                Change::Crash { .. } => self.crash(id),
                Change::Restart { recovered, .. } => {
                    // The new incarnation's schedule, in its host's clock.
                    let start_us = start_us + self.offset_us(id);
                    self.restart(id, RestartSpec { start_us, at_us, recovered });
                }
                Change::Pause { .. } => self.pause(id, true),
                Change::Resume { .. } => self.pause(id, false),
                Change::Clock { .. } => {}
            }
        }
    }

    /// Machine `id` crashes now.
    fn crash(&mut self, id: MachineId) {
        let slot = self.slots.get_mut(&id).expect("a machine of the plan");
        match slot.phase {
            // It cannot crash twice, nor once it ended.
            Phase::Down | Phase::Done | Phase::Exited => {}
            // It has not written its first line yet.
            Phase::Launched => slot.crash_pending = true,
            // It writes its last lines, and says so.
            Phase::Bound | Phase::Ready | Phase::Ticking => {
                slot.crash_by = Some(std::time::Instant::now() + super::CRASH_GRACE);
            }
        }
    }

    /// Kills machine `id`'s process for the plan's crash, writes its
    /// `Crashed` line if it had not, and tells its peers.
    pub(crate) fn kill_for_crash(&mut self, id: MachineId) {
        let slot = self.slots.get_mut(&id).expect("a machine of the plan");
        let Some(mut process) = slot.process.take() else { return };
        process.crash();
        let who = Who { id, incarnation: slot.incarnation };
        (slot.phase, slot.address, slot.crash_pending, slot.crash_by, slot.paused) =
            (Phase::Down, None, false, None, false);
        self.record.exit_statuses.insert(id, "killed by the fault plan (a crash)".into());
        self.retired.insert(who);
        let machine = slot.plan.clone();
        let start_us = self.record.start_us.unwrap_or_else(now_us);
        if let Err(failure) = write_crash_line(self.plan, &machine, start_us, now_us()) {
            self.record.fail(Some(id), None, failure.0);
        }
        let peers: Vec<MachineId> = self
            .slots
            .iter()
            .filter(|&(&peer, slot)| peer != id && slot.phase.is_up())
            .map(|(&peer, _)| peer)
            .collect();
        for peer in peers {
            self.send(peer, &ToMachine::Down { peer: id });
        }
    }

    /// Machine `id` restarts now, as `restart` says.
    fn restart(&mut self, id: MachineId, restart: RestartSpec) {
        let slot = &self.slots[&id];
        if slot.crash_pending || slot.crash_by.is_some() {
            // The incarnation the plan crashed never listened, or never said
            // it crashed: it goes now.
            self.kill_for_crash(id);
        }
        let slot = &self.slots[&id];
        if slot.phase != Phase::Down {
            return;
        }
        let incarnation = slot.incarnation + 1;
        if let Err(failure) = self.spawn(id, incarnation, Some(restart)) {
            self.record.fail(Some(id), None, failure.0);
            self.slots.get_mut(&id).expect("a machine of the plan").phase = Phase::Exited;
        }
    }

    /// Kills the machines whose crash is due and that did not say they
    /// wrote their last lines in time.
    pub(crate) fn crashes_overdue(&mut self) {
        let now = std::time::Instant::now();
        let overdue: Vec<MachineId> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.crash_by.is_some_and(|by| by <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in overdue {
            self.kill_for_crash(id);
        }
    }

    /// When the next overdue crash is due, if any is waiting.
    pub(crate) fn next_crash_by(&self) -> Option<std::time::Instant> {
        self.slots.values().filter_map(|slot| slot.crash_by).min()
    }

    /// Stops (`pause`) or continues machine `id`'s process.
    fn pause(&mut self, id: MachineId, pause: bool) {
        let slot = self.slots.get_mut(&id).expect("a machine of the plan");
        if !slot.phase.is_up() || slot.paused == pause {
            return;
        }
        let Some(process) = slot.process.as_mut() else { return };
        match process.pause(pause) {
            Ok(()) => slot.paused = pause,
            Err(error) => {
                let what = if pause { "stop" } else { "continue" };
                self.record.fail(
                    Some(id),
                    None,
                    format!("machine {id}: cannot {what} it for the plan's pause: {error}"),
                );
            }
        }
    }
}
