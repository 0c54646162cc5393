//! The happens-before checker: from the logs alone (program order plus the
//! send/receive pairing) it rebuilds happens-before and checks every clock
//! the logs carry against it.
//!
//! - **pairing**: every receive (`Processed` or `Unprocessed`) pairs with a
//!   send, and every message sent is received (in a run that ended cleanly);
//! - **Lamport**: `a → b` implies `L(a) < L(b)`, on every edge between ticks
//!   (program order and processed messages; their closure is happens-before,
//!   so the edges suffice);
//! - **vector** (when the run kept them): every line's vector equals the one
//!   happens-before gives it (replayed from the pairing: the truth), `a → b`
//!   implies `V(a) < V(b)` on every edge, and `a → b` if and only if
//!   `V(a) < V(b)` over the pairs of a seeded sample of ticks;
//! - **HLC** (when kept): `a → b` implies `(l, c)(a) < (l, c)(b)` on every
//!   edge, and on every tick `0 <= l - pt <=` the largest lead any machine's
//!   physical clock had over this one's at that instant (from the manifest's
//!   clock offsets and drifts);
//! - **lines**: every line of every log could be read;
//! - **rules**: the model's rules, line by line, and the accounting per pair
//!   of machines (sent = processed + unprocessed + lost by the fault plan +
//!   taken by crashes), as `clocklab_log::check` has them, against the
//!   run's manifest (a run without one is not checked).
//!
//! What cannot be checked is said, not passed over: the reference's
//! `Processed message` lines name no sender, so their messages cannot be
//! paired.

mod clocks;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clocklab_config::{RunManifest, RunStatus};
use clocklab_log::{EventId, thousands};

use crate::BuildOptions;
use crate::graph::{EventRef, Link, MessageStatus, RunGraph};
use crate::source::{RunSource, SourceError};

/// What a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// Every line could be read.
    Lines,
    /// Receives pair with sends; sends are received.
    Pairing,
    /// Lamport's clock condition.
    Lamport,
    /// The vector clock characterises happens-before.
    Vector,
    /// The hybrid logical clock's order and bound.
    Hlc,
    /// The model's rules, line by line, and the accounting per pair.
    Rules,
}

impl Check {
    /// Every check, in the order they are reported.
    pub const ALL: [Check; 6] = [Check::Lines, Check::Rules, Check::Pairing, Check::Lamport, Check::Vector, Check::Hlc];

    /// Its name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Check::Lines => "lines",
            Check::Pairing => "pairing",
            Check::Lamport => "lamport",
            Check::Vector => "vector",
            Check::Hlc => "hlc",
            Check::Rules => "rules",
        }
    }
}

/// How to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// The seed of the sample of ticks whose pairs are compared.
    pub seed: u64,
    /// How many ticks the sample holds (its pairs are all compared).
    pub sample_ticks: usize,
    /// How many violations are kept with their events' lines.
    pub keep: usize,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions { seed: 0, sample_ticks: 1_000, keep: 10 }
    }
}

/// One event named in a violation: where its line is, and the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The event (none for a line that could not be read).
    pub id: Option<EventId>,
    /// Its log.
    pub path: PathBuf,
    /// Its line number.
    pub line_no: u64,
    /// The line's text.
    pub line: String,
}

/// A rule broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which check.
    pub check: Check,
    /// What is wrong, in a sentence.
    pub message: String,
    /// The events involved (one or two), with their lines.
    pub sites: Vec<Site>,
}

/// What one check covered in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Which check.
    pub check: Check,
    /// What was checked, for people ("2,400 edges").
    pub covered: String,
    /// How many violations it found.
    pub violations: u64,
}

/// The outcome of checking one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCheck {
    /// `experiment/run_<k>`.
    pub label: String,
    /// Events (lines read).
    pub n_events: u64,
    /// Ticks among them.
    pub n_ticks: u64,
    /// Messages, by what became of them.
    pub messages: BTreeMap<MessageStatus, u64>,
    /// Each check that ran (a clock the logs do not keep has none).
    pub tallies: Vec<Tally>,
    /// What could not be checked, and why.
    pub not_checked: Vec<String>,
    /// What broke a rule, or went unreceived, because the fault plan meant
    /// it to (messages it lost, messages crashes took, clocks a fresh
    /// restart reset): said, and not counted as violations.
    pub by_plan: Vec<String>,
    /// A run on several hosts: each host's clock offset, with which its
    /// lines were placed on one timeline, and its uncertainty, for people.
    pub timeline: Vec<String>,
    /// Receives that land before their sends on that timeline: the hosts'
    /// clocks were not in step (said with the numbers; the clocks'
    /// causality is checked apart from the time, so this is no violation).
    pub clock_sync: Vec<String>,
    /// The first violations, with their lines.
    pub violations: Vec<Violation>,
    /// How many violations in all.
    pub n_violations: u64,
}

impl RunCheck {
    /// Whether every rule holds.
    pub fn is_ok(&self) -> bool {
        self.n_violations == 0
    }
}

/// A violation before its events' lines are read.
#[derive(Clone, Debug)]
struct Found {
    check: Check,
    message: String,
    events: Vec<EventRef>,
    /// A line that could not be read: (machine position, line number).
    unread: Option<(usize, u64)>,
}

/// Gathers violations: counts them all, keeps the first few.
#[derive(Debug)]
struct Findings {
    keep: usize,
    kept: Vec<Found>,
    counts: BTreeMap<Check, u64>,
    /// Per check, the rule breaks after a fresh restart (expected).
    expected: BTreeMap<Check, u64>,
}

impl Findings {
    fn new(keep: usize) -> Findings {
        Findings { keep, kept: Vec::new(), counts: BTreeMap::new(), expected: BTreeMap::new() }
    }

    /// A rule break: expected when `forgetful` (an event after a fresh
    /// restart is involved), a violation otherwise.
    fn add_unless_forgetful(
        &mut self,
        check: Check,
        forgetful: bool,
        events: &[EventRef],
        message: impl FnOnce() -> String,
    ) {
        if forgetful {
            *self.expected.entry(check).or_insert(0) += 1;
        } else {
            self.add(check, events, message);
        }
    }

    fn add(&mut self, check: Check, events: &[EventRef], message: impl FnOnce() -> String) {
        *self.counts.entry(check).or_insert(0) += 1;
        if self.kept.len() < self.keep {
            self.kept.push(Found { check, message: message(), events: events.to_vec(), unread: None });
        }
    }

    fn count(&self, check: Check) -> u64 {
        self.counts.get(&check).copied().unwrap_or(0)
    }
}

/// Checks the run in `source`.
pub fn check_run(source: &RunSource, options: &CheckOptions) -> Result<RunCheck, SourceError> {
    let graph = source.graph(BuildOptions { replay: true })?;
    let mut findings = Findings::new(options.keep);
    let mut tallies = Vec::new();
    let mut not_checked = Vec::new();
    check_lines(&graph, &mut findings, &mut tallies, &mut not_checked);
    check_pairing(&graph, source.manifest.as_ref(), &mut findings, &mut tallies, &mut not_checked);
    clocks::check_lamport(&graph, &mut findings, &mut tallies);
    clocks::check_vector(&graph, options, &mut findings, &mut tallies, &mut not_checked);
    clocks::check_hlc(&graph, source.manifest.as_ref(), &mut findings, &mut tallies, &mut not_checked);
    // Last: its violations name no event, so those that do are kept first.
    check_rules(source, &mut findings, &mut tallies, &mut not_checked)?;
    let mut by_plan = Vec::new();
    pairing_by_plan(&graph, &mut by_plan);
    for (check, n) in &findings.expected {
        by_plan.push(format!(
            "{}: {} {} events after a fresh restart, as the fault plan meant (a fresh clock forgets; not \
             violations)",
            check.name(),
            thousands(*n),
            if *n == 1 { "rule break involves" } else { "rule breaks involve" }
        ));
    }
    let n_violations = findings.counts.values().sum();
    let violations = with_lines(source, &graph, findings.kept);
    Ok(RunCheck {
        label: source.label.clone(),
        n_events: graph.n_events(),
        n_ticks: graph.n_ticks(),
        messages: graph.message_counts(),
        tallies,
        not_checked,
        by_plan,
        timeline: timeline(source),
        clock_sync: clock_sync(&graph, source),
        violations,
        n_violations,
    })
}

/// Each host's clock offset, as the timeline takes it.
fn timeline(source: &RunSource) -> Vec<String> {
    let Some(manifest) = &source.manifest else { return Vec::new() };
    manifest
        .hosts
        .iter()
        .map(|host| {
            let signed = |us: i64| format!("{}{}", if us < 0 { "-" } else { "+" }, thousands(us.unsigned_abs()));
            let end = host.clock_offset_end_us.map_or(String::new(), |end| format!(", {} µs at the end", signed(end)));
            format!(
                "host {} (machines {:?}): its clock {} µs ± {} µs from the orchestrator's{end}; its lines' \
                 times are taken back by it",
                host.name,
                host.machines,
                signed(host.clock_offset_us),
                thousands(host.uncertainty_us().unsigned_abs())
            )
        })
        .collect()
}

/// Receives that, on the one timeline, land before their sends.
fn clock_sync(graph: &RunGraph, source: &RunSource) -> Vec<String> {
    let (mut early, mut received, mut worst_us, mut worst) = (0u64, 0u64, 0i64, None);
    for message in &graph.messages {
        let Some(receive) = message.receive else { continue };
        received += 1;
        let ahead_us = graph.row(message.send).time_us - graph.row(receive).time_us;
        if ahead_us > 0 {
            early += 1;
            if ahead_us > worst_us {
                (worst_us, worst) = (ahead_us, Some((message.send, receive)));
            }
        }
    }
    let Some((send, receive)) = worst else { return Vec::new() };
    let uncertainty = source
        .manifest
        .as_ref()
        .filter(|m| !m.hosts.is_empty())
        .map(|m| {
            let most = m.hosts.iter().map(|h| h.uncertainty_us()).max().unwrap_or(0);
            format!("the hosts' offsets are known within ±{most} µs")
        })
        .unwrap_or_else(|| "the machines share one clock".into());
    vec![format!(
        "{} of {} receives land before their sends on the run's timeline, by up to {} µs ({} before {}; {uncertainty}): \
         a clock-sync problem, not a causality violation",
        thousands(early),
        thousands(received),
        thousands(worst_us as u64),
        graph.event_id(receive),
        graph.event_id(send),
    )]
}

/// Reads the lines of the kept violations' events.
fn with_lines(source: &RunSource, graph: &RunGraph, found: Vec<Found>) -> Vec<Violation> {
    let mut wanted: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for f in &found {
        for &at in &f.events {
            wanted.entry(at.machine as usize).or_default().push(graph.row(at).line_no);
        }
        if let Some((machine, line_no)) = f.unread {
            wanted.entry(machine).or_default().push(line_no);
        }
    }
    let lines: BTreeMap<usize, BTreeMap<u64, String>> = wanted
        .into_iter()
        .map(|(machine, line_nos)| (machine, source.read_lines(graph.machines[machine].id, &line_nos)))
        .collect();
    let site = |machine: usize, line_no: u64, id: Option<EventId>| {
        let path = source.logs.get(&graph.machines[machine].id).cloned().unwrap_or_default();
        let line = lines.get(&machine).and_then(|l| l.get(&line_no)).cloned().unwrap_or_default();
        Site { id, path, line_no, line }
    };
    found
        .into_iter()
        .map(|f| {
            let mut sites: Vec<Site> = f
                .events
                .iter()
                .map(|&at| site(at.machine as usize, graph.row(at).line_no, Some(graph.event_id(at))))
                .collect();
            if let Some((machine, line_no)) = f.unread {
                sites.push(site(machine, line_no, None));
            }
            Violation { check: f.check, message: f.message, sites }
        })
        .collect()
}

/// Every line could be read.
fn check_lines(graph: &RunGraph, findings: &mut Findings, tallies: &mut Vec<Tally>, not_checked: &mut Vec<String>) {
    let mut n_lines = 0;
    for (machine, events) in graph.machines.iter().enumerate() {
        let Some(diagnostics) = graph.diagnostics.get(&events.id) else { continue };
        n_lines += diagnostics.n_lines;
        for (line_no, reason) in &diagnostics.first_skipped {
            *findings.counts.entry(Check::Lines).or_insert(0) += 1;
            if findings.kept.len() < findings.keep {
                findings.kept.push(Found {
                    check: Check::Lines,
                    message: format!("machine {}'s line {line_no} cannot be read: {reason}", events.id),
                    events: Vec::new(),
                    unread: Some((machine, *line_no)),
                });
            }
        }
        // Skipped lines beyond the reader's first few are counted, not kept.
        let more = diagnostics.n_skipped.saturating_sub(diagnostics.first_skipped.len() as u64);
        *findings.counts.entry(Check::Lines).or_insert(0) += more;
        if diagnostics.truncated_last_line {
            not_checked.push(format!(
                "machine {}'s last line was cut off (its writer stopped mid-line); it was left out",
                events.id
            ));
        }
    }
    tallies.push(Tally {
        check: Check::Lines,
        covered: format!("{} lines, {} events", thousands(n_lines), thousands(graph.n_events())),
        violations: findings.count(Check::Lines),
    });
}

/// The model's rules and the accounting per pair, against the manifest.
fn check_rules(
    source: &RunSource,
    findings: &mut Findings,
    tallies: &mut Vec<Tally>,
    not_checked: &mut Vec<String>,
) -> Result<(), SourceError> {
    let Some(manifest) = &source.manifest else {
        not_checked.push(
            "rules: without manifest.json the run's parameters (machines, duration, clocks) are unknown, so the \
             model's rules and the accounting per pair are not checked"
                .into(),
        );
        return Ok(());
    };
    // The simulator makes every tick exactly; real time may be a tick off.
    let expect = manifest.expectations(u64::from(manifest.runtime != clocklab_config::Runtime::Sim));
    let (events, _) = source.events()?;
    let report = clocklab_log::check::check_events(events, &expect);
    for violation in report.violations {
        findings.add(Check::Rules, &[], || violation);
    }
    let count = |map: &BTreeMap<(u32, u32), u64>| map.values().sum::<u64>();
    let (sent, received) = (count(&report.sent), count(&report.received));
    let (lost, crashed, held) = (count(&report.lost), count(&report.crash_lost), count(&report.held));
    let mut losses = if lost + crashed > 0 {
        format!(" + {} lost by the fault plan + {} taken by crashes", thousands(lost), thousands(crashed))
    } else {
        String::new()
    };
    if held > 0 {
        losses.push_str(&format!(" + {} held at the end", thousands(held)));
    }
    tallies.push(Tally {
        check: Check::Rules,
        covered: format!(
            "{} machines' lines against the model; per pair, {} sent = {} processed or unprocessed{losses}",
            report.ticks.len(),
            thousands(sent),
            thousands(received)
        ),
        violations: findings.count(Check::Rules),
    });
    Ok(())
}

/// Every receive pairs with a send; every send is received.
fn check_pairing(
    graph: &RunGraph,
    manifest: Option<&RunManifest>,
    findings: &mut Findings,
    tallies: &mut Vec<Tally>,
    not_checked: &mut Vec<String>,
) {
    let (mut receives, mut unnamed) = (0u64, 0u64);
    for &at in &graph.order {
        let row = graph.row(at);
        match row.link {
            Link::Receives(_) => receives += 1,
            Link::Unnamed => unnamed += 1,
            Link::Unmatched => {
                receives += 1;
                let from = row.peer.map_or("an unnamed machine".to_string(), |id| format!("machine {id}"));
                findings.add(Check::Pairing, &[at], || {
                    format!(
                        "{} received a message from {from} that no log sent (no send to it with that clock)",
                        graph.event_id(at)
                    )
                });
            }
            Link::None | Link::Sends { .. } | Link::Drops(_) => {}
        }
    }
    let status = manifest.map(|m| &m.status);
    let losses_expected = matches!(status, Some(RunStatus::Failed { .. } | RunStatus::Interrupted));
    // Machines gone mid-run (their hosts' channels broke) took what was on
    // its way to them and what they had not sent on.
    let gone = manifest.map(RunManifest::gone_machines).unwrap_or_default();
    let (mut lost, mut unknown, mut to_gone) = (0u64, 0u64, 0u64);
    for message in &graph.messages {
        match message.status {
            MessageStatus::Missing if gone.contains(&message.to) => to_gone += 1,
            MessageStatus::Missing => {
                lost += 1;
                if !losses_expected {
                    findings.add(Check::Pairing, &[message.send], || {
                        format!(
                            "{}'s message to machine {} was never received (neither processed nor left unprocessed)",
                            graph.event_id(message.send),
                            message.to
                        )
                    });
                }
            }
            MessageStatus::Unknown => unknown += 1,
            MessageStatus::Processed
            | MessageStatus::Unprocessed
            | MessageStatus::Lost
            | MessageStatus::Crashed
            | MessageStatus::Held => {}
        }
    }
    if lost > 0 && losses_expected {
        let how = match status {
            Some(RunStatus::Interrupted) => "was interrupted",
            _ => "failed",
        };
        not_checked.push(format!(
            "{} messages were never received: the run {how} (see its manifest.json), so losses are expected",
            thousands(lost)
        ));
    }
    if to_gone > 0 {
        not_checked.push(format!(
            "{} messages to machines {gone:?} were never received: those machines were gone mid-run (their hosts' \
             control channels broke; see the manifest's hosts), so their losses, and their ticks after it, are \
             expected",
            thousands(to_gone)
        ));
    }
    if unnamed > 0 {
        not_checked.push(format!(
            "{} receives name no sender (the reference implementation's `Processed message`): they cannot be paired \
             with their sends, so no message edge of happens-before is known and the clocks are checked on program \
             order only",
            thousands(unnamed)
        ));
    }
    if unknown > 0 {
        not_checked.push(format!(
            "{} messages went to machines whose logs name no sender: whether they arrived cannot be checked",
            thousands(unknown)
        ));
    }
    let unnamed_part =
        if unnamed > 0 { format!(" ({} more name no sender)", thousands(unnamed)) } else { String::new() };
    tallies.push(Tally {
        check: Check::Pairing,
        covered: format!(
            "{} receives paired{unnamed_part}; {} of {} messages accounted for",
            thousands(receives),
            thousands(graph.messages.len() as u64 - unknown - lost - to_gone),
            thousands(graph.messages.len() as u64)
        ),
        violations: findings.count(Check::Pairing),
    });
}

/// What the fault plan explains about the messages: those it lost (their
/// senders' `Lost` lines), those it still held at the end (`Held` lines) and
/// those crashes took.
fn pairing_by_plan(graph: &RunGraph, by_plan: &mut Vec<String>) {
    let counts = graph.message_counts();
    let count = |status| counts.get(&status).copied().unwrap_or(0);
    let (lost, crashed) = (count(MessageStatus::Lost), count(MessageStatus::Crashed));
    if lost > 0 {
        by_plan.push(format!(
            "pairing: {} messages lost by the fault plan (their senders' `Lost` lines)",
            thousands(lost)
        ));
    }
    let held = count(MessageStatus::Held);
    if held > 0 {
        by_plan.push(format!(
            "pairing: {} messages the fault plan still held when the run's drain ended (their senders' `Held` lines)",
            thousands(held)
        ));
    }
    if crashed > 0 {
        by_plan.push(format!(
            "pairing: {} messages taken by crashes (in a crashed receiver's queue or on their way to it, or still in a \
             crashed sender)",
            thousands(crashed)
        ));
    }
}
