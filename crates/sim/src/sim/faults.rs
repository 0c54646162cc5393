//! What a machine's faults do in virtual time, as the fault plan schedules
//! them (`clocklab_faults::FaultPlan::machine_faults`).
//!
//! - A crash: the machine writes `Crashed`, its queue is gone, and so is
//!   every message on the wire to it (they were sent to an incarnation that
//!   no longer exists); its peers see its connections end (`Disconnected`).
//! - A restart: a new incarnation writes `Restarted` (its clocks fresh or
//!   recovered as they were at the crash) and `Connected` to every peer; each
//!   peer connects to it again (`Connected`, a reconnection). Its schedule
//!   goes on from the restart: the ticks due while it was down are gone.
//! - A pause: the machine does not tick until the pause ends; then it runs
//!   the ticks it missed back to back, and says it fell behind (`Behind`),
//!   as a real process does after `SIGSTOP` and `SIGCONT`. Messages reach its
//!   queue meanwhile, as they reach a stopped process's socket.
//! - A clock fault: the machine's physical clock steps or takes a new drift
//!   (`Physical clock ...`).

use std::io;

use clocklab_driver::ClockSnapshot;
use clocklab_faults::{MachineFault, RestartClock};
use clocklab_model::{MachineId, schedule};

use super::wire::{Payload, Pending, fault_key, tick_key};
use super::{SimSummary, Simulation, virtual_port, write};
use crate::sink::Sink;

impl Simulation {
    /// Machine `id`'s fault number `idx` happens at `now_us`.
    pub(super) fn fault<S: Sink + ?Sized>(
        &mut self,
        sink: &mut S,
        summary: &mut SimSummary,
        now_us: u64,
        id: MachineId,
        idx: u32,
    ) -> io::Result<()> {
        let at = self.at(now_us);
        let fault = self.machines[id as usize - 1].faults[idx as usize];
        match fault {
            MachineFault::Crash { restart, .. } => {
                let sim = &mut self.machines[id as usize - 1];
                let (line, lost) = sim.driver.crashed(at);
                // A recovering machine reads its clocks back from this line.
                sim.snapshot = Some(ClockSnapshot::of(line));
                write(sink, summary, line)?;
                summary.crash_lost += lost;
                sim.down = true;
                sim.incarnation += 1;
                for peer in self.machines.iter_mut().filter(|peer| !peer.down) {
                    write(sink, summary, peer.driver.disconnected(at, id))?;
                }
                if let Some((restart_us, _)) = restart {
                    let key = fault_key(restart_us, id, idx);
                    self.wire.heap.push(Pending { key, payload: Payload::Restart { id, idx } });
                }
            }
            MachineFault::Pause { until_us, .. } => {
                self.machines[id as usize - 1].paused_until_us = Some(until_us);
            }
            MachineFault::Clock { step_us, drift_ppm, .. } => {
                let sim = &mut self.machines[id as usize - 1];
                write(sink, summary, sim.driver.clock_changed(at, at, step_us, drift_ppm))?;
            }
        }
        Ok(())
    }

    /// Machine `id` restarts at `now_us` after the crash of its fault number `idx`.
    pub(super) fn restart<S: Sink + ?Sized>(
        &mut self,
        sink: &mut S,
        summary: &mut SimSummary,
        now_us: u64,
        id: MachineId,
        idx: u32,
    ) -> io::Result<()> {
        let at = self.at(now_us);
        let n_machines = self.machines.len() as MachineId;
        let MachineFault::Crash { restart: Some((_, clock)), .. } = self.machines[id as usize - 1].faults[idx as usize]
        else {
            unreachable!("only a crash with a restart schedules one")
        };
        let sim = &mut self.machines[id as usize - 1];
        let snapshot = sim.snapshot.take();
        let recovered = match clock {
            RestartClock::Recovered => snapshot.as_ref(),
            RestartClock::Fresh => None,
        };
        write(sink, summary, sim.driver.restarted(at, &self.host, virtual_port(id), recovered))?;
        sim.down = false;
        for peer in (1..=n_machines).filter(|&peer| peer != id) {
            write(sink, summary, sim.driver.connected(at, peer, &self.host, virtual_port(peer)))?;
        }
        // Its schedule goes on from the restart.
        let rate = sim.driver.rate();
        sim.next_tick = schedule::n_ticks(rate, now_us);
        if sim.next_tick < sim.n_ticks {
            let due_us = schedule::tick_offset_us(sim.next_tick, rate);
            let incarnation = sim.incarnation;
            self.wire.heap.push(Pending { key: tick_key(due_us, id), payload: Payload::Tick { id, incarnation } });
        }
        for (peer_idx, peer) in self.machines.iter_mut().enumerate() {
            if peer_idx as MachineId + 1 != id && !peer.down {
                write(sink, summary, peer.driver.connected(at, id, &self.host, virtual_port(id)))?;
            }
        }
        Ok(())
    }
}
