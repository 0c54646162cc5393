//! A run whose machines are on other hosts: each host asked before the
//! start (its version, a free port, its clock) and after the end (its
//! clock again); instants told to a machine in its host's clock; a machine
//! whose channel broke fetched again, and its host named when that fails.

use std::time::Duration;

use clocklab_config::RunStatus;
use clocklab_model::MachineId;

use super::{Halt, Supervisor};
use crate::protocol::{Fetch, Remote};
use crate::remote::probe::{self, ClockOffset};

impl Supervisor<'_> {
    /// The index of the host machine `id` runs on, if the run has hosts.
    pub(crate) fn host_of(&self, id: MachineId) -> Option<usize> {
        self.hosts.iter().position(|host| host.machines.contains(&id))
    }

    /// Machine `id`'s host's clock minus the orchestrator's, as measured at
    /// the start: what turns an instant of the orchestrator's into one of
    /// the host's (0 on this computer).
    pub(crate) fn offset_us(&self, id: MachineId) -> i64 {
        self.host_of(id).and_then(|idx| self.record.clocks.get(&idx)).map_or(0, |clock| clock.offset_us)
    }

    /// How long a host has to answer: its launcher may have to log in.
    fn host_timeout(&self) -> Duration {
        self.connect_timeout.max(Duration::from_secs(10))
    }

    /// Asks every host, side by side, for its version, a free port and its
    /// clock's offset; a host that fails them fails the run, named.
    pub(crate) fn probe_hosts(&mut self) -> Result<(), Halt> {
        let timeout = self.host_timeout();
        let asked: Vec<(String, Vec<String>)> =
            self.hosts.iter().zip(&self.host_commands).map(|(h, c)| (h.spec.address.clone(), c.clone())).collect();
        let answers = probe::probe_all(&asked, timeout);
        for (idx, answer) in answers.into_iter().enumerate() {
            match answer {
                Ok(answer) => {
                    self.record.clocks.insert(idx, answer.clock);
                }
                Err(cause) => {
                    let host = &self.hosts[idx].spec.name;
                    self.record.fail(None, None, format!("host {host}: {cause}"));
                }
            }
        }
        if self.record.failures.is_empty() { Ok(()) } else { Err(Halt::Failed) }
    }

    /// Measures every host's clock again at the end (a host that cannot be
    /// asked keeps its start's offset alone).
    pub(crate) fn measure_end_clocks(&mut self) {
        if self.hosts.is_empty() || self.record.start_us.is_none() {
            return;
        }
        let timeout = self.host_timeout();
        let lost = &self.record.lost;
        let answers: Vec<Option<ClockOffset>> = std::thread::scope(|scope| {
            let asked: Vec<_> = self
                .host_commands
                .iter()
                .enumerate()
                .map(|(idx, command)| {
                    scope.spawn(move || {
                        if lost.contains_key(&idx) {
                            return None;
                        }
                        probe::measure_clock(command, timeout).ok()
                    })
                })
                .collect();
            asked.into_iter().map(|asked| asked.join().ok().flatten()).collect()
        });
        for (idx, answer) in answers.into_iter().enumerate() {
            if let Some(clock) = answer {
                self.record.clocks_end.insert(idx, clock);
            }
        }
    }

    /// Machine `id`'s control channel broke (`why`) before it ended: it is
    /// gone, as a peer that stopped reading is. The rest of its logs is
    /// fetched through its host's launcher, from the bytes that arrived; if
    /// that fails too, its host is lost. What arrived is kept either way.
    pub(crate) fn channel_broke(&mut self, id: MachineId, why: String) {
        let Some(idx) = self.host_of(id) else { return };
        let host = self.hosts[idx].spec.clone();
        let machine = &self.slots[&id].plan;
        let logs: Vec<_> = self
            .plan
            .log_formats
            .iter()
            .map(|&f| (f, clocklab_config::layout::log_path(&self.plan.dir, machine.id, f)))
            .collect();
        let fetch = Fetch {
            machine: id,
            remote: Remote {
                workdir: host.workdir.as_ref().map(std::path::PathBuf::from),
                run_key: self.run_key.clone(),
                ship_from: Vec::new(),
            },
            quiet_us: u64::try_from(clocklab_net::longest_end(self.connect_timeout).as_micros()).unwrap_or(u64::MAX),
        };
        let timeout = clocklab_net::longest_end(self.connect_timeout) + self.host_timeout();
        let said = match probe::fetch(&self.host_commands[idx], fetch, &logs, timeout) {
            Ok(bytes) => format!(
                "machine {id} on host {}: its control channel broke ({why}); it stopped, and the rest of its log \
                 ({bytes} bytes) was fetched again",
                host.name
            ),
            Err(cause) => {
                let lost = format!(
                    "host {} lost: machine {id}'s control channel broke ({why}), and its logs could not be fetched \
                     again ({cause}); what arrived of them is kept",
                    host.name
                );
                self.record.lost.entry(idx).or_insert_with(|| lost.clone());
                lost
            }
        };
        self.record.gone.insert(id, said);
    }

    /// How a run that nothing failed or interrupted ended: `degraded` if a
    /// host was lost or a machine's channel broke (naming them), or if a
    /// machine fell behind; `ok` otherwise.
    pub(crate) fn gone_status(&self) -> RunStatus {
        let behind = RunStatus::from_behind(&self.record.summaries.iter().map(|(&id, s)| (id, s.behind)).collect());
        if self.record.gone.is_empty() {
            return behind;
        }
        let lateness_us_max = match &behind {
            RunStatus::Degraded { lateness_us_max, .. } => *lateness_us_max,
            _ => 0,
        };
        let mut causes: Vec<String> = self.record.lost.values().cloned().collect();
        for (id, said) in &self.record.gone {
            let lost_with_host = self.host_of(*id).is_some_and(|idx| self.record.lost.contains_key(&idx));
            if !lost_with_host {
                causes.push(said.clone());
            }
        }
        if let RunStatus::Degraded { cause, .. } = behind {
            causes.push(cause);
        }
        RunStatus::Degraded { cause: causes.join("; "), lateness_us_max }
    }
}
