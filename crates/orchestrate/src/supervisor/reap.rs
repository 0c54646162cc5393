//! The end of a run: every machine process reaped, killed if it does not
//! exit, and how each ended recorded.

use std::time::{Duration, Instant};

use clocklab_model::MachineId;

use super::{EXIT_TIMEOUT, Phase, Supervisor};
use crate::launcher::Exit;

impl Supervisor<'_> {
    /// Closes every machine's input (harmless now: every machine still
    /// alive has stopped, or is told to by it), waits for each to exit
    /// within [`EXIT_TIMEOUT`] while taking its last reports, kills what is
    /// left, and records how each ended.
    pub(crate) fn reap(&mut self) {
        for slot in self.slots.values_mut() {
            if let Some(process) = slot.process.as_mut() {
                process.close_input();
            }
        }
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let ids: Vec<MachineId> = self.slots.keys().copied().collect();
        let mut exits: Vec<(MachineId, Option<Exit>)> = Vec::new();
        for id in ids {
            let exit = loop {
                let Some(process) = self.slots.get_mut(&id).and_then(|slot| slot.process.as_mut()) else {
                    break None;
                };
                match process.try_wait() {
                    Ok(Some(exit)) => break Some(exit),
                    Ok(None) if Instant::now() < deadline => {
                        // Its last reports (a summary, a failure) come meanwhile.
                        if let Ok((who, report)) = self.reports.recv_timeout(Duration::from_millis(5)) {
                            let _ = self.on_report(who, report);
                        }
                    }
                    Ok(None) => {
                        self.record.fail(Some(id), None, format!("machine {id} did not exit after it stopped; killed"));
                        process.kill();
                        break process.try_wait().ok().flatten();
                    }
                    Err(error) => {
                        self.record.fail(Some(id), None, format!("machine {id}: cannot wait for it: {error}"));
                        break None;
                    }
                }
            };
            exits.push((id, exit));
        }
        // Reports that came with the exits.
        while let Ok((who, report)) = self.reports.try_recv() {
            let _ = self.on_report(who, report);
        }
        for (id, exit) in exits {
            let Some(exit) = exit else { continue };
            self.ended(id, exit);
        }
    }

    /// Records how machine `id`'s last process ended.
    fn ended(&mut self, id: MachineId, exit: Exit) {
        let slot = &self.slots[&id];
        if let Some(process) = &slot.process {
            if let Some(why) = process.channel_broke() {
                // Its host's launcher died: the machine is gone, not failed.
                self.record.exit_statuses.insert(id, format!("its control channel broke: {why}"));
                self.channel_broke(id, why);
                return;
            }
            if let Some(why) = process.copy_failure() {
                self.record.fail(Some(id), None, format!("machine {id}: its logs did not arrive whole: {why}"));
            }
        }
        let slot = &self.slots[&id];
        self.record.exit_statuses.insert(id, exit.to_string());
        let (cause, blames) = match &slot.failed {
            Some((cause, blames)) => (Some(cause.clone()), *blames),
            None => (slot.process.as_ref().and_then(|p| p.last_error()), None),
        };
        let cause = cause.unwrap_or_else(|| "no error message".into());
        let done = slot.phase == Phase::Done;
        // A machine whose failure is told already (it exited while the run
        // started) is not told twice.
        if self.record.failures.iter().any(|failed| failed.machine == Some(id)) && !exit.success() {
            return;
        }
        match exit {
            Exit::Signal(_) => {
                self.record.fail(
                    Some(id),
                    None,
                    format!("machine {id} was killed ({exit}); its log ends where it died"),
                );
            }
            Exit::Code(_) if !exit.success() => {
                self.record.fail(Some(id), blames, format!("machine {id} failed ({exit}): {cause}"));
            }
            Exit::Code(_) if !done && !self.record.called_off => {
                self.record.fail(Some(id), None, format!("machine {id} exited without its summary"));
            }
            Exit::Code(_) => {}
        }
    }
}
