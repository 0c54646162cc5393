//! The orchestrator of the real runtime: a run's machines as processes,
//! started, driven over their stdin and stdout, faulted as the plan says,
//! and reaped, several runs side by side.
//!
//! Start here: [`run_real`] runs a suite's plans, each under a supervisor
//! (`supervisor`: start, watch, the plan's machine faults, reap, the
//! manifest). The modules:
//!
//! - [`protocol`]: the control lines between the orchestrator and a machine.
//! - [`launcher`]: how a machine process is started ([`LocalLauncher`]:
//!   `clocklab machine <id> --orchestrated` on this computer) and what the
//!   supervisor does to one ([`Process`]: send, kill, pause, reap).
//! - [`control`]: the stop request every run watches ([`RunControl`]).
//! - [`budget`]: this computer's limits on tasks and files, and the runs
//!   admitted within them.
//! - [`crash_line`]: the `Crashed` line of a machine killed before it wrote it.
//! - [`remote`]: machines on other hosts, through each host's launcher and
//!   an agent there (`clocklab agent`): their logs sent home as they grow,
//!   their hosts' clocks measured.
//!
//! When a machine crashes, restarts or pauses, its `clocklab_driver::Life`
//! says, as its own timeline does: the supervisor only acts on the process.
//!
//! ```
//! use clocklab_orchestrate::protocol::{ToMachine, send_line};
//!
//! let mut line = Vec::new();
//! send_line(&mut line, &ToMachine::Start(1_767_225_600_000_000)).unwrap();
//! assert_eq!(line, b"{\"start\":1767225600000000}\n");
//! let back: ToMachine = serde_json::from_slice(&line).unwrap();
//! assert!(matches!(back, ToMachine::Start(1_767_225_600_000_000)));
//! ```

pub mod budget;
pub mod control;
pub mod crash_line;
pub mod launcher;
mod pool;
pub mod protocol;
pub mod remote;
mod supervisor;
#[cfg(test)]
mod tests;

use std::time::Instant;

pub use budget::{Budget, Limits, TooLarge};
pub use control::RunControl;
pub use launcher::{Exit, Launcher, LocalLauncher, Process, Report, Who};
pub use pool::run_real;

/// Why a step of a run failed: a sentence for its manifest and for a person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// Follows a suite's runs (a progress bar).
pub trait Observer: Sync {
    /// Run number `idx` (in plan order) started ticking; it ends at `deadline`.
    fn started(&self, idx: usize, deadline: Instant);

    /// Run number `idx` is over, its manifest written.
    fn finished(&self, idx: usize);
}

/// An observer that notes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unobserved;

impl Observer for Unobserved {
    fn started(&self, _idx: usize, _deadline: Instant) {}

    fn finished(&self, _idx: usize) {}
}
