//! Signals: what SIGINT and SIGTERM do to `clocklab run` ([`Interrupt`]) and
//! to a `clocklab machine` ([`watch_signals`]).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use anyhow::Context;
use clocklab_orchestrate::RunControl;
use signal_hook::consts::{SIGINT, SIGTERM};

/// What SIGINT and SIGTERM do to `clocklab run` (and `calibrate`): while
/// runs go, the first stops every run cleanly and the second kills every
/// machine and exits; during the analysis, the first ends the command at
/// once (every run is complete by then, and the analysis can be made again).
#[derive(Debug)]
pub struct Interrupt {
    /// What every real run watches, and the machine processes to kill at
    /// the second signal.
    pub control: Arc<RunControl>,
    /// Set by the first signal: what the simulator checks as it goes.
    stop: AtomicBool,
    /// The runs are done and the analysis is going.
    analysing: AtomicBool,
    /// The first signal's number, 0 before it.
    signal: AtomicI32,
}

impl Interrupt {
    /// Installs the handlers; `results_dir` is named when the second signal
    /// ends the command.
    pub fn install(results_dir: &Path) -> anyhow::Result<Arc<Interrupt>> {
        let interrupt = Arc::new(Interrupt {
            control: Arc::new(RunControl::default()),
            stop: AtomicBool::new(false),
            analysing: AtomicBool::new(false),
            signal: AtomicI32::new(0),
        });
        let mut signals =
            signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
                .context("cannot install the signal handlers")?;
        let handler = Arc::clone(&interrupt);
        let results_dir = results_dir.to_path_buf();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if handler.analysing.load(Ordering::SeqCst) {
                        clocklab_net::note!(
                            "clocklab: {} during the analysis: stopping; every run is complete in {} (`clocklab analyze {}` analyses it again)",
                            signal_name(signal),
                            results_dir.display(),
                            results_dir.display()
                        );
                        std::process::exit(128 + signal);
                    }
                    if handler.signal.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                        handler.stop.store(true, Ordering::SeqCst);
                        clocklab_net::note!(
                            "clocklab: {}: stopping every run (each machine drains and writes Stopped); press Ctrl-C again to kill them at once",
                            signal_name(signal)
                        );
                        handler.control.stop(&format!("clocklab run got {}", signal_name(signal)));
                    } else {
                        handler.kill_all_and_exit(signal, &results_dir);
                    }
                }
            })
            .context("cannot start the signal thread")?;
        Ok(interrupt)
    }

    /// The first signal's number, if one came.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// Whether the first signal came.
    pub fn fired(&self) -> bool {
        self.signal().is_some()
    }

    /// Set by the first signal; what a simulation polls to stop early.
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// The runs are over and the analysis starts: from now on a signal ends
    /// the command at once.
    pub fn enter_analysis(&self) {
        self.analysing.store(true, Ordering::SeqCst);
    }

    fn kill_all_and_exit(&self, signal: i32, results_dir: &Path) -> ! {
        let killed = self.control.kill_all();
        clocklab_net::note!(
            "clocklab: {} again: killed {killed} machines; results so far in {} (the logs of runs that were still going may end without Stopped)",
            signal_name(signal),
            results_dir.display()
        );
        std::process::exit(128 + signal);
    }
}

/// The name of a signal `clocklab` handles.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Handles SIGINT and SIGTERM on a thread: the first calls `on_first` (which
/// asks the machine to stop cleanly), the second ends the process at once.
/// Every log line is written whole, so even then no line is cut.
pub fn watch_signals(id: clocklab_model::MachineId, on_first: impl FnOnce(i32) + Send + 'static) -> anyhow::Result<()> {
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("cannot install the signal handlers")?;
    std::thread::Builder::new()
        .name(format!("machine-{id}-signals"))
        .spawn(move || {
            let mut on_first = Some(on_first);
            for signal in signals.forever() {
                match on_first.take() {
                    Some(stop) => stop(signal),
                    None => {
                        clocklab_net::note!("machine {id}: {} again: exiting at once", signal_name(signal));
                        std::process::exit(128 + signal);
                    }
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// The exit code after a stop by `signal` (0 if none came): 128 + its
/// number, as shells report it.
pub fn signal_exit(signal: i32) -> ExitCode {
    if signal == 0 { ExitCode::SUCCESS } else { ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)) }
}
