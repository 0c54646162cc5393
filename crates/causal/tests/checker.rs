//! The happens-before checker on real files: simulated runs of many seeds
//! pass; a planted violation of each kind is found and shown with its lines;
//! the reference's logs are checked as far as they can be.

use std::path::{Path, PathBuf};

use clocklab_causal::check::{Check, CheckOptions, RunCheck, check_run};
use clocklab_causal::{BuildOptions, RunSource};
use clocklab_config::{Config, DelayDistribution, PhysicalClockSettings, SimSettings, plan_runs};
use clocklab_model::ClockKinds;

/// A simulated run written to `dir`: `machines` machines, every clock unless
/// `clocks` says otherwise, skewed physical clocks.
fn simulate(dir: &Path, seed: u64, machines: u32, clocks: ClockKinds, network: DelayDistribution) -> PathBuf {
    let mut config = Config::default();
    config.experiments.truncate(1);
    let experiment = &mut config.experiments[0];
    experiment.machines = machines;
    experiment.max_clock_rate = 2 + (seed % 5) as u32;
    experiment.max_event_num = 3 + (seed % 8) as u32;
    experiment.duration = 15.0;
    experiment.runs = 1;
    experiment.clocks = clocks;
    experiment.physical_clock = PhysicalClockSettings { offset_ms_max: 250.0, drift_ppm_max: 5_000.0 };
    let plan = plan_runs(&config, seed, dir).remove(0);
    clocklab_sim::run_plan(&plan, &SimSettings { network, ..SimSettings::default() }).unwrap();
    plan.dir
}

fn check(dir: &Path) -> RunCheck {
    check_run(&RunSource::open(dir).unwrap(), &CheckOptions::default()).unwrap()
}

fn networks() -> [DelayDistribution; 3] {
    [
        DelayDistribution::default(),
        DelayDistribution::Constant { delay_us: 0.0 },
        DelayDistribution::Uniform { min_us: 0.0, max_us: 900_000.0 },
    ]
}

#[test]
fn every_simulated_run_of_a_seed_sweep_holds() {
    let root = tempfile::tempdir().unwrap();
    for seed in 0..36u64 {
        let clocks = if seed % 4 == 3 { ClockKinds::LAMPORT } else { ClockKinds::ALL };
        let machines = 2 + (seed % 4) as u32;
        let network = networks()[(seed % 3) as usize];
        let dir = simulate(&root.path().join(seed.to_string()), seed, machines, clocks, network);
        let result = check(&dir);
        assert!(result.is_ok(), "seed {seed}: {:#?}", result.violations);
        let names: Vec<Check> = result.tallies.iter().map(|t| t.check).collect();
        let mut want = vec![Check::Lines, Check::Pairing, Check::Lamport];
        if clocks.vector {
            want.extend([Check::Vector, Check::Hlc]);
        }
        want.push(Check::Rules);
        assert_eq!(names, want, "seed {seed}");
        assert!(result.not_checked.is_empty(), "seed {seed}: {:?}", result.not_checked);
    }
}

#[test]
fn the_cone_of_a_tick_counts_what_its_replayed_vector_counts() {
    let root = tempfile::tempdir().unwrap();
    let dir = simulate(root.path(), 5, 4, ClockKinds::LAMPORT, DelayDistribution::default());
    let graph = RunSource::open(&dir).unwrap().graph(BuildOptions { replay: true }).unwrap();
    for &at in graph.order.iter().step_by(7) {
        let cone = graph.cone(at);
        // The ticks of the past, machine by machine (and the event itself on
        // its own machine), are the replayed vector.
        let vector: Vec<u64> = graph
            .machines
            .iter()
            .enumerate()
            .map(|(idx, machine)| {
                let ticks = machine.rows[..cone.past[idx] as usize].iter().filter(|row| row.tick).count() as u64;
                ticks + u64::from(idx == at.machine as usize && graph.row(at).tick)
            })
            .collect();
        assert_eq!(vector, graph.replayed(at).unwrap(), "{}", graph.event_id(at));
    }
}

/// Rewrites line `line_no` (from 1) of `path` with `edit`.
fn edit_line(path: &Path, line_no: usize, edit: impl FnOnce(&str) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[line_no - 1] = edit(&lines[line_no - 1]);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// The first line of `path` containing `needle` (number from 1, text).
fn find_line(path: &Path, needle: &str) -> (usize, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let (idx, line) = text.lines().enumerate().find(|(_, l)| l.contains(needle)).unwrap();
    (idx + 1, line.to_string())
}

/// The value of the field `name: value` in a text line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(" | ").find_map(|f| f.strip_prefix(&format!("{name}: "))).unwrap()
}

fn planted_run(root: &Path) -> PathBuf {
    let dir = simulate(root, 7, 3, ClockKinds::ALL, DelayDistribution::default());
    let result = check(&dir);
    assert!(result.is_ok(), "{:#?}", result.violations);
    dir
}

#[test]
fn a_lowered_clock_is_found_on_its_edge() {
    let root = tempfile::tempdir().unwrap();
    let dir = planted_run(root.path());
    // A processed message whose clock is lowered to the sender's: the send
    // no longer comes before it in Lamport's order.
    let log = dir.join("machine_2.log");
    let (line_no, line) = find_line(&log, "Processed message from machine");
    let carried: u64 = line.split("with clock ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let clock = field(&line, "Logical Clock").to_string();
    edit_line(&log, line_no, |l| {
        l.replace(&format!("Logical Clock: {clock} |"), &format!("Logical Clock: {carried} |"))
    });
    let result = check(&dir);
    assert!(!result.is_ok());
    let lamport = result.violations.iter().find(|v| v.check == Check::Lamport).expect("a Lamport violation");
    assert!(
        lamport.message.contains(&format!("Lamport clock {carried} is not below {carried}")),
        "{}",
        lamport.message
    );
    assert_eq!(lamport.sites.len(), 2);
    let receive = &lamport.sites[1];
    assert_eq!((receive.line_no, receive.path.clone()), (line_no as u64, log.clone()));
    assert!(receive.line.contains(&format!("Logical Clock: {carried} |")), "{}", receive.line);
    assert!(lamport.sites[0].line.contains("Sent message to machine"), "{}", lamport.sites[0].line);
}

#[test]
fn a_receive_with_no_send_is_found() {
    let root = tempfile::tempdir().unwrap();
    let dir = planted_run(root.path());
    let log = dir.join("machine_3.log");
    let (line_no, line) = find_line(&log, "Processed message from machine");
    let carried = line.split("with clock ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    edit_line(&log, line_no, |l| l.replace(&format!("with clock {carried} |"), "with clock 999999 |"));
    let result = check(&dir);
    let invented = result
        .violations
        .iter()
        .find(|v| v.check == Check::Pairing && v.message.contains("that no log sent"))
        .unwrap_or_else(|| panic!("{:#?}", result.violations));
    assert_eq!(invented.sites[0].line_no, line_no as u64);
    assert!(invented.sites[0].line.contains("with clock 999999"));
    // Its real send now reaches nobody.
    assert!(result.violations.iter().any(|v| v.message.contains("was never received")), "{:#?}", result.violations);
}

#[test]
fn a_skipped_vector_component_is_found() {
    let root = tempfile::tempdir().unwrap();
    let dir = planted_run(root.path());
    // From its fifth tick on, machine 1's own component skips a value.
    let log = dir.join("machine_1.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut ticks = 0;
    let mut first_bad = 0;
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(idx, line)| {
            if line.contains("Internal event") || line.contains("Sent message") || line.contains("Processed message") {
                ticks += 1;
            }
            if ticks < 5 {
                return line.to_string();
            }
            if first_bad == 0 {
                first_bad = idx + 1;
            }
            let vector = field(line, "Vector Clock");
            let mut values: Vec<u64> =
                vector.trim_matches(['[', ']']).split(", ").map(|v| v.parse().unwrap()).collect();
            values[0] += 1;
            let skipped = format!("[{}]", values.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
            line.replace(&format!("Vector Clock: {vector}"), &format!("Vector Clock: {skipped}"))
        })
        .collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let result = check(&dir);
    let first = result.violations.iter().find(|v| v.check == Check::Vector).expect("a vector violation");
    assert!(first.message.contains("but happens-before gives"), "{}", first.message);
    assert_eq!(first.sites[0].line_no, first_bad as u64);
    assert!(result.tallies.iter().any(|t| t.check == Check::Vector && t.violations > 0));
    // Lamport's clock and the HLC are untouched (the model's rules check
    // the vector clock line by line too).
    assert!(
        result.violations.iter().all(|v| matches!(v.check, Check::Vector | Check::Rules)),
        "{:#?}",
        result.violations
    );
}

#[test]
fn an_hlc_beyond_the_skew_is_found() {
    let root = tempfile::tempdir().unwrap();
    let dir = planted_run(root.path());
    let log = dir.join("machine_2.log");
    let (line_no, line) = find_line(&log, "Internal event");
    let hlc = field(&line, "HLC").to_string();
    let (l, c) = hlc.split_once(':').unwrap();
    let ahead = format!("{}:{c}", l.parse::<i64>().unwrap() + 3_600_000_000);
    edit_line(&log, line_no, |l| l.replace(&format!("HLC: {hlc}"), &format!("HLC: {ahead}")));
    let result = check(&dir);
    assert!(
        result.violations.iter().any(|v| v.check == Check::Hlc && v.message.contains("outside 0..=")),
        "{:#?}",
        result.violations
    );
}

#[test]
fn the_reference_logs_are_checked_as_far_as_they_go() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("exp_1/run_1");
    std::fs::create_dir_all(&run).unwrap();
    let line = |id: u32, event: &str, second: u32, clock: u64, queue: u64| {
        format!(
            "{id}> Event: {event} | System Time: 2025-02-28 17:42:{second:02} | Logical Clock: {clock} | Queue Length: {queue}\n"
        )
    };
    let mut one = line(1, "Initialized on 12345 with clock rate 2", 3, 0, 0);
    one += &line(1, "Connected to machine 2 on port 54321", 3, 0, 0);
    one += &line(1, "Sent message to machine 2", 3, 1, 0);
    one += &line(1, "Sent message to machine 2", 4, 1, 0); // The second line of a double send: one tick.
    one += &line(1, "Internal event", 4, 2, 0);
    one += &line(1, "Stopped", 5, 2, 0);
    one += &line(1, "Internal event", 5, 3, 0); // After Stopped, as the reference does.
    let mut two = line(2, "Initialized on 54321 with clock rate 1", 3, 0, 0);
    two += &line(2, "Connected to machine 1 on port 12345", 3, 0, 0);
    two += &line(2, "Processed message", 4, 2, 1);
    two += &line(2, "Processed message", 5, 3, 0);
    two += &line(2, "Stopped", 5, 3, 0);
    std::fs::write(run.join("process_1.log"), one).unwrap();
    std::fs::write(run.join("process_2.log"), two).unwrap();
    let result = check(&run);
    assert!(result.is_ok(), "{:#?}", result.violations);
    assert_eq!(result.n_ticks, 5);
    assert!(result.not_checked.iter().any(|n| n.contains("name no sender")), "{:?}", result.not_checked);
    // A clock that does not rise on a machine's own line is still caught.
    std::fs::write(
        run.join("process_2.log"),
        std::fs::read_to_string(run.join("process_2.log")).unwrap().replace(
            "Logical Clock: 3 | Queue Length: 0\n2> Event: Stopped",
            "Logical Clock: 2 | Queue Length: 0\n2> Event: Stopped",
        ),
    )
    .unwrap();
    let result = check(&run);
    assert!(
        result.violations.iter().any(|v| v.check == Check::Lamport && v.message.contains("program order")),
        "{:#?}",
        result.violations
    );
}

#[test]
fn an_unreadable_line_is_a_violation_with_its_line_number() {
    let root = tempfile::tempdir().unwrap();
    let dir = planted_run(root.path());
    let log = dir.join("machine_3.log");
    edit_line(&log, 5, |_| "3> Event: something clocklab never writes | System Time: x".to_string());
    let result = check(&dir);
    let unread = result.violations.iter().find(|v| v.check == Check::Lines).expect("a lines violation");
    assert!(unread.message.contains("machine 3's line 5 cannot be read"), "{}", unread.message);
    assert_eq!((unread.sites[0].line_no, unread.sites[0].id), (5, None));
    assert!(unread.sites[0].line.contains("something clocklab never writes"));
}

/// A simulated run of three machines with every clock and `faults`.
fn simulate_with_faults(dir: &Path, seed: u64, faults: Vec<clocklab_faults::FaultSpec>) -> PathBuf {
    let mut config = Config::default();
    config.experiments.truncate(1);
    let experiment = &mut config.experiments[0];
    experiment.max_event_num = 4;
    experiment.duration = 12.0;
    experiment.runs = 1;
    experiment.clocks = ClockKinds::ALL;
    experiment.faults = faults;
    config.validate("test").unwrap();
    let plan = plan_runs(&config, seed, dir).remove(0);
    clocklab_sim::run_plan(&plan, &SimSettings::default()).unwrap();
    plan.dir
}

#[test]
fn what_the_fault_plan_did_is_said_and_not_a_violation() {
    use clocklab_causal::MessageStatus;
    use clocklab_faults::{DelaySpec, FaultSpec, RestartClock};
    let root = tempfile::tempdir().unwrap();
    let slow = FaultSpec::Latency { start: 0.0, end: None, links: None, delay: DelaySpec::Constant { ms: 300.0 } };
    let loss = FaultSpec::Loss { start: 0.0, end: None, links: None, probability: 0.2 };
    for (name, restart_clock) in [("fresh", RestartClock::Fresh), ("recovered", RestartClock::Recovered)] {
        let crash = FaultSpec::Crash { machine: 2, start: 4.0, end: Some(7.0), restart_clock };
        let dir = simulate_with_faults(&root.path().join(name), 3, vec![crash, slow.clone(), loss.clone()]);
        let result = check(&dir);
        assert!(result.is_ok(), "{name}: {:#?}", result.violations);
        let count = |status| result.messages.get(&status).copied().unwrap_or(0);
        assert!(count(MessageStatus::Lost) > 0, "{name}: the loss fault lost messages");
        assert!(count(MessageStatus::Crashed) > 0, "{name}: the crash took messages");
        assert_eq!(count(MessageStatus::Missing), 0, "{name}: every message is accounted for");
        let said = result.by_plan.join("\n");
        assert!(said.contains("lost by the fault plan") && said.contains("taken by crashes"), "{name}: {said}");
        // A fresh clock forgets: the clock laws break after the restart, as
        // the plan meant; a recovered one keeps them.
        let forgot = said.contains("after a fresh restart");
        assert_eq!(forgot, restart_clock == RestartClock::Fresh, "{name}: {said}");
    }
}

#[test]
fn a_missing_tick_breaks_the_models_rules() {
    let root = tempfile::tempdir().unwrap();
    let dir = planted_run(root.path());
    // Machine 3 loses its first internal event: a tick short of its
    // schedule, and every later clock one too high for its lines.
    let log = dir.join("machine_3.log");
    let (line_no, _) = find_line(&log, "Event: Internal event");
    edit_line(&log, line_no, |_| String::new());
    let text = std::fs::read_to_string(&log).unwrap().replace("\n\n", "\n");
    std::fs::write(&log, text).unwrap();
    let options = CheckOptions { keep: 10_000, ..CheckOptions::default() };
    let result = check_run(&RunSource::open(&dir).unwrap(), &options).unwrap();
    let rules: Vec<_> = result.violations.iter().filter(|v| v.check == Check::Rules).collect();
    assert!(rules.iter().any(|v| v.message.starts_with("machine 3")), "{:#?}", result.violations);
    assert!(result.tallies.iter().any(|t| t.check == Check::Rules && t.violations > 0));
}
