//! What stops a real suite from outside: the first stop request (a signal to
//! `clocklab run`) stops every run cleanly; after it, [`RunControl::kill_all`]
//! kills every machine process at once.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crossbeam_channel::{Receiver, Sender};

/// The stop request every run of a suite watches, and the machine
/// processes not reaped yet.
#[derive(Debug)]
pub struct RunControl {
    /// Dropped by the stop request, which every wait of every run sees as
    /// its receiver disconnecting.
    first_sender: Mutex<Option<Sender<()>>>,
    first: Receiver<()>,
    /// What asked to stop, once something did.
    cause: Mutex<Option<String>>,
    /// The process ids of the machines not reaped yet. A pid is removed under
    /// this lock when its process is reaped, so that [`RunControl::kill_all`]
    /// never kills a process that is not ours.
    children: Mutex<BTreeSet<u32>>,
}

impl Default for RunControl {
    fn default() -> RunControl {
        let (sender, first) = crossbeam_channel::bounded(0);
        RunControl {
            first_sender: Mutex::new(Some(sender)),
            first,
            cause: Mutex::new(None),
            children: Mutex::new(BTreeSet::new()),
        }
    }
}

impl RunControl {
    /// Asks every run to stop (`cause` goes in their manifests); returns
    /// whether this was the first request.
    pub fn stop(&self, cause: &str) -> bool {
        let mut current = self.cause.lock().expect("the cause lock is never poisoned");
        if current.is_some() {
            return false;
        }
        *current = Some(cause.to_string());
        drop(self.first_sender.lock().expect("the stop lock is never poisoned").take());
        true
    }

    /// Whether a stop was asked.
    pub fn stopped(&self) -> bool {
        self.cause.lock().expect("the cause lock is never poisoned").is_some()
    }

    /// What asked to stop (empty before anything did).
    pub fn cause(&self) -> String {
        self.cause.lock().expect("the cause lock is never poisoned").clone().unwrap_or_default()
    }

    /// A receiver that disconnects when a stop is asked: for `select!`.
    pub fn requested(&self) -> &Receiver<()> {
        &self.first
    }

    /// Kills every machine process not reaped yet (`SIGKILL`); returns how
    /// many. The lock is kept to the end: no pid in the set can be reaped
    /// (and reused) while it is killed.
    pub fn kill_all(&self) -> usize {
        let children = self.children.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for &pid in children.iter() {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        children.len()
    }

    /// Runs `spawn` under the children's lock and registers the pid it
    /// returns, so that a kill of all never misses it.
    pub(crate) fn register<T>(&self, spawn: impl FnOnce() -> std::io::Result<(T, Option<u32>)>) -> std::io::Result<T> {
        let mut children = self.children.lock().expect("the children lock is never poisoned");
        let (spawned, pid) = spawn()?;
        children.extend(pid);
        Ok(spawned)
    }

    /// Runs `reap` under the children's lock; when it reaps the process,
    /// its pid leaves the set.
    pub(crate) fn reaping<T>(&self, pid: Option<u32>, reap: impl FnOnce() -> (T, bool)) -> T {
        let mut children = self.children.lock().expect("the children lock is never poisoned");
        let (result, reaped) = reap();
        if let (Some(pid), true) = (pid, reaped) {
            children.remove(&pid);
        }
        result
    }
}
