//! The supervisor's decisions (spawn, start, supervise, crash, restart,
//! pause, stop, reap), each against fake machine processes: threads that
//! speak the control protocol, write their first and last log lines through
//! the driver as a machine does, and keep a journal of what they were told.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clocklab_config::{Config, RunManifest, RunPlan, RunStatus, layout};
use clocklab_driver::{Driver, DriverParams};
use clocklab_faults::{FaultSpec, RestartClock};
use clocklab_log::{LogFormat, LogWriter};
use clocklab_model::MachineId;
use clocklab_net::{RunSummary, now_us};
use crossbeam_channel::{Receiver, Sender};

use crate::launcher::{Exit, Launcher, Process, Report, Who};
use crate::protocol::{FromMachine, Launch, ToMachine};
use crate::{RunControl, Unobserved, supervisor};

/// How a fake machine behaves.
#[derive(Clone, Debug, Default)]
enum Script {
    /// As a machine does.
    #[default]
    Normal,
    /// It takes this long to listen.
    SlowBind(Duration),
    /// Told its peers, it waits this long, says it failed (blaming this
    /// peer, or of its own error) and exits with 1.
    FailAtPeers { after: Duration, cause: &'static str, blames: Option<MachineId> },
    /// It never exits until killed.
    Stubborn,
}

/// What the fakes were told and did, in order, as `m<id>#<incarnation> <what>`.
#[derive(Clone, Debug, Default)]
struct Journal(Arc<Mutex<Vec<(Instant, String)>>>);

impl Journal {
    fn note(&self, who: Who, what: String) {
        self.0.lock().unwrap().push((Instant::now(), format!("m{}#{} {what}", who.id, who.incarnation)));
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(_, line)| line.clone()).collect()
    }

    fn has(&self, line: &str) -> bool {
        self.lines().iter().any(|l| l == line)
    }

    fn position(&self, line: &str) -> usize {
        self.lines().iter().position(|l| l == line).unwrap_or_else(|| panic!("{line} not in {:#?}", self.lines()))
    }

    /// The lines that begin with `prefix`.
    fn starting(&self, prefix: &str) -> Vec<String> {
        self.lines().into_iter().filter(|l| l.starts_with(prefix)).collect()
    }
}

/// Starts fake machines.
#[derive(Debug, Default)]
struct FakeLauncher {
    scripts: BTreeMap<Who, Script>,
    journal: Journal,
}

#[derive(Debug)]
struct FakeProcess {
    who: Who,
    input: Option<Sender<ToMachine>>,
    killed: Arc<AtomicBool>,
    exit: Arc<Mutex<Option<Exit>>>,
    journal: Journal,
}

impl Process for FakeProcess {
    fn send(&mut self, message: &ToMachine) -> io::Result<()> {
        let input = self.input.as_ref().ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
        // A line is a copy of the message, as over a pipe.
        let line = serde_json::to_string(message).map_err(io::Error::other)?;
        input.send(serde_json::from_str(&line).map_err(io::Error::other)?).map_err(|_| io::ErrorKind::BrokenPipe.into())
    }

    fn close_input(&mut self) {
        self.input = None;
    }

    fn kill(&mut self) {
        self.killed.store(true, Ordering::SeqCst);
        self.input = None;
        self.journal.note(self.who, "killed".into());
        let mut exit = self.exit.lock().unwrap();
        exit.get_or_insert(Exit::Signal(9));
    }

    fn pause(&mut self, pause: bool) -> io::Result<()> {
        self.journal.note(self.who, if pause { "stopped" } else { "continued" }.into());
        Ok(())
    }

    fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        Ok(*self.exit.lock().unwrap())
    }

    fn pid(&self) -> Option<u32> {
        None
    }

    fn last_error(&self) -> Option<String> {
        None
    }
}

impl Launcher for FakeLauncher {
    fn spawn(
        &self,
        who: Who,
        reports: &Sender<(Who, Report)>,
        _control: &Arc<RunControl>,
    ) -> io::Result<Box<dyn Process>> {
        let (input, lines) = crossbeam_channel::unbounded();
        let killed = Arc::new(AtomicBool::new(false));
        let exit = Arc::new(Mutex::new(None));
        let fake = Fake {
            who,
            script: self.scripts.get(&who).cloned().unwrap_or_default(),
            lines,
            reports: reports.clone(),
            killed: Arc::clone(&killed),
            exit: Arc::clone(&exit),
            journal: self.journal.clone(),
        };
        self.journal.note(who, "spawned".into());
        std::thread::spawn(move || fake.run());
        Ok(Box::new(FakeProcess { who, input: Some(input), killed, exit, journal: self.journal.clone() }))
    }
}

/// One fake machine's thread.
struct Fake {
    who: Who,
    script: Script,
    lines: Receiver<ToMachine>,
    reports: Sender<(Who, Report)>,
    killed: Arc<AtomicBool>,
    exit: Arc<Mutex<Option<Exit>>>,
    journal: Journal,
}

impl Fake {
    fn say(&self, message: FromMachine) {
        if !self.killed.load(Ordering::SeqCst) {
            let _ = self.reports.send((self.who, Report::Said(message)));
        }
    }

    fn run(self) {
        let code = self.machine();
        if !self.killed.load(Ordering::SeqCst) {
            *self.exit.lock().unwrap() = Some(Exit::Code(code));
        }
        let _ = self.reports.send((self.who, Report::Closed));
    }

    /// The machine's life; its exit code.
    fn machine(&self) -> i32 {
        let Ok(ToMachine::Launch(launch)) = self.lines.recv() else { return 1 };
        let mut driver = driver(&launch, self.who.id);
        self.journal.note(self.who, format!("launched restart={:?}", launch.restart.map(|r| r.at_us)));
        if let Script::SlowBind(delay) = self.script {
            std::thread::sleep(delay);
        }
        if self.killed.load(Ordering::SeqCst) {
            return 1;
        }
        let port = 20_000 + 100 * self.who.id as u16 + self.who.incarnation as u16;
        let log = &launch.logs[0].1;
        let first = match launch.restart {
            None => driver.initialized(now_us(), "127.0.0.1", Some(port)).clone(),
            Some(restart) => {
                driver.start(restart.start_us);
                driver.restarted(now_us(), "127.0.0.1", Some(port), None).clone()
            }
        };
        append(log, &first);
        self.say(FromMachine::Bound { port, rate: driver.rate() });
        let mut deadline = None;
        loop {
            let wait = deadline.map_or(Duration::from_secs(30), |at: i64| {
                Duration::from_micros(u64::try_from(at.saturating_sub(now_us())).unwrap_or(0))
            });
            match self.lines.recv_timeout(wait) {
                Ok(ToMachine::Peers(peers)) => {
                    self.journal.note(self.who, format!("peers {:?}", peers.keys().collect::<Vec<_>>()));
                    if let Script::FailAtPeers { after, cause, blames } = self.script {
                        std::thread::sleep(after);
                        self.say(FromMachine::Failed { cause: cause.into(), blames });
                        return 1;
                    }
                    self.say(FromMachine::Ready);
                }
                Ok(ToMachine::Start(start_us)) => {
                    self.journal.note(self.who, format!("start {start_us}"));
                    deadline = Some(start_us.saturating_add_unsigned(launch.duration_us));
                }
                Ok(ToMachine::Stop(at_us)) => {
                    self.journal.note(self.who, format!("stop {at_us}"));
                    deadline = Some(deadline.map_or(at_us, |d: i64| d.min(at_us)));
                }
                Ok(ToMachine::Rejoin { peer, address }) => {
                    self.journal.note(self.who, format!("rejoin {peer} at {}", address.port()));
                }
                Ok(ToMachine::Down { peer }) => self.journal.note(self.who, format!("down {peer}")),
                // A second launch, or a line for an agent: a machine takes neither.
                Ok(
                    ToMachine::Launch(_)
                    | ToMachine::Ping(_)
                    | ToMachine::Port { .. }
                    | ToMachine::Kill
                    | ToMachine::Crash
                    | ToMachine::Pause(_)
                    | ToMachine::Fetch(_),
                ) => return 1,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) if deadline.is_some() => break,
                Err(_) => {
                    if matches!(self.script, Script::Stubborn) {
                        while !self.killed.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    break;
                }
            }
            if self.killed.load(Ordering::SeqCst) {
                return 1;
            }
        }
        if self.killed.load(Ordering::SeqCst) {
            return 1;
        }
        for record in driver.end(now_us()) {
            append(log, &record);
        }
        self.journal.note(self.who, "done".into());
        self.say(FromMachine::Done(RunSummary { stopped_early: false, ..RunSummary::not_started() }));
        if matches!(self.script, Script::Stubborn) {
            while !self.killed.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            return 1;
        }
        0
    }
}

/// The driver of a launched machine, as `clocklab machine` makes it.
fn driver(launch: &Launch, id: MachineId) -> Driver {
    let params = DriverParams::new(id, launch.n_machines, launch.max_clock_rate, launch.max_event_num, launch.seed);
    Driver::new(params, now_us()).unwrap()
}

fn append(path: &std::path::Path, record: &clocklab_log::Record) {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    LogWriter::new(file, LogFormat::Text).write(record).unwrap();
}

/// Three machines for `duration_s` under `faults`, in `dir`.
fn plan(dir: &std::path::Path, duration_s: f64, faults: Vec<FaultSpec>) -> (RunPlan, Config) {
    let mut config = Config::default();
    config.experiments.truncate(1);
    config.connect_timeout = 2.0;
    let experiment = &mut config.experiments[0];
    (experiment.runs, experiment.duration, experiment.faults) = (1, duration_s, faults);
    config.validate("test").unwrap();
    (clocklab_config::plan_runs(&config, 7, dir).remove(0), config)
}

fn crash(machine: MachineId, start: f64, end: Option<f64>) -> FaultSpec {
    FaultSpec::Crash { machine, start, end, restart_clock: RestartClock::Fresh }
}

/// Runs `plan` with fakes scripted by `scripts`; stops the run after
/// `stop_after` if given.
fn supervise(
    plan: &RunPlan,
    config: &Config,
    scripts: &[(Who, Script)],
    stop_after: Option<Duration>,
) -> (RunManifest, Journal) {
    let launcher = FakeLauncher { scripts: scripts.iter().cloned().collect(), journal: Journal::default() };
    let control = Arc::new(RunControl::default());
    let manifest = std::thread::scope(|scope| {
        if let Some(after) = stop_after {
            let control = Arc::clone(&control);
            scope.spawn(move || {
                std::thread::sleep(after);
                control.stop("a test's stop");
            });
        }
        supervisor::run_one(plan, config, &launcher, &control, &Unobserved, 0)
    });
    (manifest, launcher.journal)
}

fn who(id: MachineId, incarnation: u32) -> Who {
    Who { id, incarnation }
}

fn log_events(plan: &RunPlan, id: MachineId) -> Vec<String> {
    let text = std::fs::read_to_string(layout::log_path(&plan.dir, id, LogFormat::Text)).unwrap();
    text.lines().map(|line| line.split(" | ").next().unwrap().to_string()).collect()
}

#[test]
fn every_machine_is_started_at_one_instant_and_the_run_ends_when_all_are_done() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, config) = plan(tmp.path(), 0.3, vec![]);
    let (manifest, journal) = supervise(&plan, &config, &[], None);
    assert_eq!(manifest.status, RunStatus::Ok, "{:?}", manifest.extra.get("failures"));
    let starts: Vec<String> = journal.starting("m").into_iter().filter(|l| l.contains(" start ")).collect();
    assert_eq!(starts.len(), 3);
    let instants: std::collections::BTreeSet<&str> = starts.iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(instants.len(), 1, "one start instant: {starts:?}");
    for id in 1..=3 {
        let peers: Vec<u32> = (1..=3).filter(|&p| p != id).collect();
        assert!(journal.has(&format!("m{id}#0 peers {peers:?}")), "{:#?}", journal.lines());
        assert!(journal.has(&format!("m{id}#0 done")));
        assert_eq!(manifest.machines[id as usize - 1].exit_status.as_deref(), Some("0"));
    }
}

#[test]
fn a_crash_kills_the_process_writes_its_line_and_tells_its_peers() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, config) = plan(tmp.path(), 0.4, vec![crash(2, 0.1, None)]);
    let (manifest, journal) = supervise(&plan, &config, &[], None);
    assert_eq!(manifest.status, RunStatus::Ok, "{:?}", manifest.extra.get("failures"));
    let killed = journal.position("m2#0 killed");
    assert!(journal.position("m1#0 down 2") > killed && journal.position("m3#0 down 2") > killed);
    // The fake did not write its `Crashed` line: the supervisor did, once.
    let events = log_events(&plan, 2);
    assert_eq!(events.last().unwrap(), "2> Event: Crashed", "{events:?}");
    assert_eq!(events.iter().filter(|e| e.ends_with("Crashed")).count(), 1);
    assert_eq!(manifest.machines[1].exit_status.as_deref(), Some("killed by the fault plan (a crash)"));
}

#[test]
fn a_restart_spawns_the_next_incarnation_which_joins_the_peers_that_are_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, config) = plan(tmp.path(), 0.5, vec![crash(2, 0.1, Some(0.2))]);
    let (manifest, journal) = supervise(&plan, &config, &[], None);
    assert_eq!(manifest.status, RunStatus::Ok, "{:?}", manifest.extra.get("failures"));
    assert!(journal.has("m2#1 launched restart=Some(200000)"), "{:#?}", journal.lines());
    assert!(journal.has("m2#1 peers [1, 3]"));
    // Its peers connect to its new address (port 20201).
    assert!(journal.has("m1#0 rejoin 2 at 20201") && journal.has("m3#0 rejoin 2 at 20201"));
    let start = journal.starting("m1#0 start")[0].clone();
    assert!(journal.has(&start.replace("m1#0", "m2#1")), "the same start instant: {:#?}", journal.lines());
    assert!(journal.has("m2#1 done"));
    let events = log_events(&plan, 2);
    let crashed = events.iter().position(|e| e.ends_with("Crashed")).unwrap();
    assert!(events[crashed + 1].contains("Restarted"), "{events:?}");
}

#[test]
fn machines_restarting_together_each_join_the_other_once_it_listens() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, config) = plan(tmp.path(), 0.5, vec![crash(1, 0.1, Some(0.2)), crash(2, 0.1, Some(0.2))]);
    // Machine 2's new incarnation listens later than machine 1's.
    let scripts = [(who(2, 1), Script::SlowBind(Duration::from_millis(60)))];
    let (manifest, journal) = supervise(&plan, &config, &scripts, None);
    assert_eq!(manifest.status, RunStatus::Ok, "{:?}", manifest.extra.get("failures"));
    assert!(journal.has("m1#1 peers [3]"), "machine 2 is not up yet: {:#?}", journal.lines());
    assert!(journal.has("m2#1 peers [1, 3]"), "{:#?}", journal.lines());
    assert!(journal.has("m1#1 rejoin 2 at 20201") && journal.has("m3#0 rejoin 2 at 20201"));
    assert!(journal.has("m1#1 done") && journal.has("m2#1 done"));
}

#[test]
fn a_run_whose_machines_all_crashed_goes_on_to_their_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let faults = (1..=3).map(|id| crash(id, 0.1, Some(0.25))).collect();
    let (plan, config) = plan(tmp.path(), 0.5, faults);
    let (manifest, journal) = supervise(&plan, &config, &[], None);
    assert_eq!(manifest.status, RunStatus::Ok, "{:?}", manifest.extra.get("failures"));
    for id in 1..=3 {
        assert!(journal.has(&format!("m{id}#0 killed")) && journal.has(&format!("m{id}#1 done")));
    }
}

#[test]
fn a_crash_before_a_new_incarnation_listens_waits_until_it_does() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, config) = plan(tmp.path(), 0.6, vec![crash(2, 0.1, Some(0.2)), crash(2, 0.22, None)]);
    let scripts = [(who(2, 1), Script::SlowBind(Duration::from_millis(100)))];
    let (manifest, journal) = supervise(&plan, &config, &scripts, None);
    assert_eq!(manifest.status, RunStatus::Ok, "{:?}", manifest.extra.get("failures"));
    assert!(journal.has("m2#1 killed"));
    // It wrote its first line, then the supervisor its crash: no line after a crash but a restart.
    let events = log_events(&plan, 2);
    let restarted = events.iter().position(|e| e.contains("Restarted")).unwrap();
    assert_eq!(events[restarted + 1..], ["2> Event: Crashed"], "{events:?}");
}

#[test]
fn a_pause_stops_and_continues_the_process() {
    let tmp = tempfile::tempdir().unwrap();
    let pause = FaultSpec::Pause { machine: 3, start: 0.1, end: 0.2 };
    let (plan, config) = plan(tmp.path(), 0.4, vec![pause]);
    let (manifest, journal) = supervise(&plan, &config, &[], None);
    assert_eq!(manifest.status, RunStatus::Ok, "{:?}", manifest.extra.get("failures"));
    assert!(journal.position("m3#0 stopped") < journal.position("m3#0 continued"));
}

#[test]
fn a_stop_request_stops_every_machine_at_one_instant() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, config) = plan(tmp.path(), 30.0, vec![]);
    let (manifest, journal) = supervise(&plan, &config, &[], Some(Duration::from_millis(400)));
    assert_eq!(manifest.status, RunStatus::Interrupted);
    let stops: std::collections::BTreeSet<String> =
        journal.lines().into_iter().filter(|l| l.contains(" stop ")).map(|l| l[5..].to_string()).collect();
    assert_eq!(stops.len(), 1, "{:#?}", journal.lines());
    assert_eq!(manifest.extra["interrupted_by"], "a test's stop");
}

#[test]
fn a_machine_that_does_not_exit_is_killed_at_the_reap() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, config) = plan(tmp.path(), 0.2, vec![]);
    let (manifest, journal) = supervise(&plan, &config, &[(who(1, 0), Script::Stubborn)], None);
    assert!(journal.has("m1#0 killed"));
    let RunStatus::Failed { cause } = manifest.status else { panic!("{:?}", manifest.status) };
    assert!(cause.contains("machine 1 did not exit after it stopped"), "{cause}");
}

#[test]
fn a_failed_start_names_the_machine_that_failed_not_the_peers_that_saw_it_go() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, config) = plan(tmp.path(), 1.0, vec![]);
    let blames_3 =
        |after| Script::FailAtPeers { after, cause: "machine 3 went away before the run started", blames: Some(3) };
    let scripts = [
        // The peers fail first, blaming machine 3; machine 3 fails of its own error.
        (who(1, 0), blames_3(Duration::ZERO)),
        (who(2, 0), blames_3(Duration::from_millis(10))),
        (
            who(3, 0),
            Script::FailAtPeers {
                after: Duration::from_millis(80),
                cause: "cannot start a thread for the connection to machine 2: Resource temporarily unavailable (os error 11)",
                blames: None,
            },
        ),
    ];
    let (manifest, _) = supervise(&plan, &config, &scripts, None);
    let RunStatus::Failed { cause } = manifest.status else { panic!("{:?}", manifest.status) };
    assert!(cause.starts_with("machine 3 failed") && cause.contains("os error 11"), "{cause}");
}
