//! The report's sentences on crafted summaries: overloaded and stable
//! machines, the reference's logs, failed and interrupted runs, one run. Each
//! test checks that what a sentence claims is what the numbers say.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clocklab_config::Experiment;
use clocklab_model::ClockKinds;

use super::notes::notes;
use super::notes_text;
use crate::growth::Growth;
use crate::run::{
    EventMix, JumpStats, LagStats, LoadStats, MachineSeries, MachineSummary, QueueStats, RunInfo, RunSummary,
};
use crate::summary::{ExperimentSummary, Summary};
use crate::words::fixed;

/// A growth of `per_s` ± `se` over the run, said to grow or not.
fn slope(per_s: f64, se: f64, grows: bool) -> Growth {
    Growth { per_s, se, batches: 7, p_value: if grows { 0.001 } else { 0.5 }, over_run: per_s * DURATION_S, grows }
}

/// `report.html` as text.
fn render_html(page: super::view::Page) -> String {
    let mut html = Vec::new();
    super::render_html(page, &mut html).expect("the page renders");
    String::from_utf8(html).expect("the page is UTF-8")
}

const DURATION_S: f64 = 60.0;

/// A machine of rate `rate` in a run whose fastest rate is `fastest`, that
/// received `received` messages over the run; everything else follows from
/// a machine that keeps up, and tests change what they need.
fn machine(id: u32, rate: u32, fastest: u32, received: u64) -> MachineSummary {
    let ticks = u64::from(rate) * DURATION_S as u64;
    let processed = received.min(ticks);
    let rest = ticks - processed;
    let utilisation = received as f64 / (f64::from(rate) * DURATION_S);
    let ratio = f64::from(fastest) / f64::from(rate);
    MachineSummary {
        id,
        rate,
        rate_ratio: ratio,
        ticks,
        expected_ticks: ticks as f64,
        tick_ratio: 1.0,
        final_clock: (ticks as f64 * ratio) as u64,
        clock_rate_per_s: f64::from(fastest),
        jump: JumpStats {
            mean: ratio,
            p50: 1,
            p99: (2.0 * ratio) as u64,
            max: (3.0 * ratio) as u64,
            distribution: BTreeMap::from([(1, ticks / 2), ((2.0 * ratio) as u64, ticks - ticks / 2)]),
        },
        lag: LagStats {
            mean_ticks: ratio - 1.0,
            max_ticks: (3.0 * ratio) as u64,
            mean_s: (ratio - 1.0) / f64::from(fastest),
            max_s: 3.0 * ratio / f64::from(fastest),
            growth: slope(0.001, 0.002, false),
            stationary_ticks: Some(ratio - 1.0),
        },
        queue: QueueStats { mean: 0.3, p99: 2, max: 3, last: 0, growth: slope(-0.001, 0.002, false) },
        load: LoadStats { received, utilisation, overloaded: utilisation > 1.0 },
        events: EventMix { processed, sent: rest * 3 / 10, internal: rest - rest * 3 / 10 },
        messages_sent: rest * 3 / 10,
        messages_processed: processed,
        messages_unprocessed: received - processed,
        messages_lost: 0,
        messages_held: 0,
        crashes: 0,
        clock_resets: Vec::new(),
        hlc: None,
        fluid: None,
        problems: Vec::new(),
    }
}

/// Makes `m` overloaded: its queue grows by `growth` per second.
fn overload(m: &mut MachineSummary, growth: Growth, max: u64, last: u64) {
    m.queue = QueueStats { mean: max as f64 / 2.0, p99: max, max, last, growth };
    m.lag.growth = slope(0.8, 0.05, true);
    m.lag.stationary_ticks = None;
}

fn settings(max_clock_rate: u32, max_event_num: u32) -> Experiment {
    Experiment {
        name: "exp".into(),
        machines: 3,
        max_clock_rate,
        max_event_num,
        runs: 5,
        duration: DURATION_S,
        seed: None,
        control: None,
        clocks: ClockKinds::LAMPORT,
        physical_clock: Default::default(),
        faults: Vec::new(),
    }
}

/// A run of `machines`, each given the fluid model's prediction from the
/// run's rates, as the analysis gives it.
fn run(name: &str, status: &str, mut machines: Vec<MachineSummary>) -> RunSummary {
    if let Some(model) = crate::predict::fluid_of_run(&machines, Some(&settings(6, 10))) {
        for (machine, predicted) in machines.iter_mut().zip(model) {
            machine.fluid = Some(predicted);
        }
    }
    RunSummary {
        name: name.into(),
        path: PathBuf::from(name),
        duration_s: DURATION_S,
        time_precision: "us",
        info: RunInfo {
            status: status.into(),
            cause: (status == "failed").then(|| "machine 2 exited with signal 9".to_string()),
            runtime: "sim".into(),
            suite_seed: Some(42),
            run_seed: Some(7),
            machine_seeds: Default::default(),
            started_at: Some("2026-11-24T04:43:13.000000Z".into()),
            clocklab_version: Some("0.1.0".into()),
            settings: Some(settings(6, 10)),
            clocks: vec!["lamport".into()],
            skew_bound_us: Some(0.0),
            manifest_damaged: false,
            hosts: Vec::new(),
        },
        series: vec![MachineSeries::default(); machines.len()],
        machines,
        causality: None,
        causality_missing: None,
        lines: 0,
        problems: Vec::new(),
        faults: Vec::new(),
        diagnostics: Vec::new(),
        uncounted: Vec::new(),
    }
}

fn summary(experiments: Vec<(&str, Vec<RunSummary>)>) -> Summary {
    Summary {
        experiments: experiments
            .into_iter()
            .map(|(name, runs)| ExperimentSummary::new(name.to_string(), runs))
            .collect(),
        diagnostics: Vec::new(),
        command: None,
    }
}

fn answers(summary: &Summary, id: &str) -> String {
    notes(summary).into_iter().find(|n| n.id == id).map(|n| n.answer.join("\n")).unwrap_or_default()
}

/// A stable run: three machines that keep up.
fn stable_run(name: &str) -> RunSummary {
    run(name, "ok", vec![machine(1, 6, 6, 100), machine(2, 3, 6, 90), machine(3, 2, 6, 80)])
}

#[test]
fn stable_machines_are_said_to_keep_up_and_their_lag_to_be_stationary() {
    let summary = summary(vec![("baseline", vec![stable_run("run_1"), stable_run("run_2"), stable_run("run_3")])]);
    let queues = answers(&summary, "queues");
    assert!(queues.contains("Every machine kept up"), "{queues}");
    assert!(!queues.contains("were overloaded") && !queues.contains("was overloaded"), "{queues}");
    let lag = answers(&summary, "lag");
    assert!(lag.contains("No machine's lag grew"), "{lag}");
    // The slower machines keep up: r_max / r is set beside their mean jump.
    let jumps = notes(&summary).into_iter().find(|n| n.id == "jumps").unwrap();
    let prediction = &jumps.predictions[0];
    assert_eq!((prediction.predicted.as_str(), prediction.over.as_str()), ("2.500", "6 machines"));
    assert_eq!(prediction.measured, "2.500");
}

#[test]
fn overloaded_machines_get_the_fluid_model_and_never_a_growth_they_did_not_have() {
    let mut steady = machine(3, 1, 6, 108);
    overload(&mut steady, slope(0.78, 0.02, true), 50, 48);
    // Barely overloaded, and its queue ended lower than it peaked: no growth to claim.
    let mut borderline = machine(3, 2, 6, 122);
    overload(&mut borderline, slope(0.004, 0.01, false), 15, 8);
    let summary = summary(vec![(
        "baseline",
        vec![
            run("run_1", "ok", vec![machine(1, 6, 6, 100), machine(2, 3, 6, 90), steady]),
            run("run_2", "ok", vec![machine(1, 6, 6, 100), machine(2, 4, 6, 90), borderline]),
        ],
    )]);
    let queues = answers(&summary, "queues");
    assert!(queues.contains("2 of 6 machines were overloaded"), "{queues}");
    let first = queues.lines().find(|l| l.contains("baseline run_1")).unwrap();
    // Measured: λ = 108 / 60 = 1.8 per s against r = 1. From the rates (6, 3,
    // 1) and E = 10 alone the model predicts what reaches machine 3.
    let model = crate::predict::fluid(&[6, 3, 1], 10).unwrap()[2];
    assert!(model.queue_growth_per_s > 0.0, "{model:?}");
    let predicted = format!(
        "the fluid model predicts λ = {}/s and a queue growing by {}/s",
        fixed(model.arrival_per_s, 2),
        fixed(model.queue_growth_per_s, 3)
    );
    assert!(first.contains("received 1.80 messages/s") && first.contains(&predicted), "{first}");
    assert!(first.contains("it grew by 0.780 ± 0.020/s, held at most 50 and 48 at its last tick"), "{first}");
    // Measured and predicted overload side by side.
    assert!(queues.contains("From the rates alone, the fluid model predicted"), "{queues}");
    let queue_note = notes(&summary).into_iter().find(|n| n.id == "queues").unwrap();
    assert_eq!(queue_note.predictions[0].quantity, "arrivals at a machine (messages/s)");
    let second = queues.lines().find(|l| l.contains("baseline run_2")).unwrap();
    assert!(second.contains("did not grow measurably"), "{second}");
    assert!(!second.contains("grew by"), "{second}");
    assert!(!second.contains("receives more than it can process"), "{second}");
    let lag = answers(&summary, "lag");
    assert!(lag.contains("The lag of 2 of 6 machines grew (") && lag.contains("All are overloaded"), "{lag}");
    assert!(lag.contains("The other 4 machines have a stationary lag"), "{lag}");
    // The slower machines that keep up are the only ones the jump model speaks for.
    let jumps = notes(&summary).into_iter().find(|n| n.id == "jumps").unwrap();
    assert_eq!(jumps.predictions[0].over, "2 machines");
}

#[test]
fn failed_and_interrupted_runs_are_marked_left_out_and_never_described() {
    let mut dead = machine(2, 1, 6, 50);
    dead.jump.max = 999;
    dead.problems.push("the log ends without Stopped (the machine died or its log was cut)".into());
    let interrupted = run("run_3", "interrupted", vec![machine(1, 6, 6, 10), machine(2, 5, 6, 10)]);
    let summary = summary(vec![(
        "baseline",
        vec![
            stable_run("run_1"),
            run("run_2", "failed", vec![machine(1, 6, 6, 100), dead]),
            interrupted,
            stable_run("run_4"),
        ],
    )]);
    let experiment = &summary.experiments[0];
    assert_eq!(experiment.excluded.len(), 2);
    assert_eq!(experiment.metric("jump_mean").unwrap().n, 2, "only sound runs are aggregated");
    let text = notes_text(&summary);
    assert!(text.contains("2 of 4 runs are left out of the aggregates and marked wherever they appear"), "{text}");
    assert!(text.contains("run_2 (failed: machine 2 exited with signal 9)") && text.contains("run_3 (interrupted)"));
    assert!(!text.contains("999"), "a machine of a failed run is never described: {text}");
    let html = render_html(super::build(&summary, &[], Vec::new(), &[]));
    // Marked wherever it appears: in the status table at the top and the run table.
    assert_eq!(html.matches("<span class=\"status bad\">failed</span>").count(), 2, "{html}");
    assert_eq!(html.matches("<span class=\"status bad\">interrupted</span>").count(), 2);
}

#[test]
fn a_single_run_has_no_interval_and_nothing_to_compare() {
    let summary = summary(vec![("baseline", vec![stable_run("run_1")])]);
    let text = notes_text(&summary);
    assert!(text.contains("Only baseline has runs to aggregate"), "{text}");
    assert!(text.contains("The run finished as planned") && text.contains("1 simulated run:"), "{text}");
    assert!(!text.contains("1 runs") && !text.contains("1 machines"), "{text}");
    assert_eq!(summary.experiments[0].metric("jump_mean").unwrap().ci95, None);
    let html = render_html(super::build(&summary, &[], Vec::new(), &[]));
    assert!(!html.contains("[-"), "no negative bound anywhere");
}

#[test]
fn reference_logs_say_what_they_do_not_record() {
    let mut reference = stable_run("run_1");
    reference.info = RunInfo {
        status: "unknown".into(),
        runtime: "reference".into(),
        clocks: vec!["lamport".into()],
        started_at: Some("2025-02-28T19:03:43.000000Z".into()),
        ..RunInfo::default()
    };
    reference.time_precision = "s";
    reference.causality_missing = Some("the logs' receives do not name their senders".into());
    let summary = summary(vec![("exp_3", vec![reference])]);
    let text = notes_text(&summary);
    assert!(text.contains("of the Python reference implementation, without a manifest"), "{text}");
    assert!(text.contains("Started 2025-02-28 19:03:43 UTC."), "{text}");
    assert!(text.contains("do not record max_event_num"), "{text}");
    assert!(
        text.contains(
            "Concurrency cannot be measured for 1 run: the logs' receives do not name their senders (1 run)."
        ),
        "{text}"
    );
    assert!(text.contains("whether they finished as planned is not known"), "{text}");
    assert!(!text.contains("Suite seed"), "{text}");
    let html = render_html(super::build(&summary, &[], Vec::new(), &[]));
    assert!(html.contains("not recorded (rates 2–6 seen)"), "the parameters say where they come from");
}

#[test]
fn experiments_are_called_different_by_the_permutation_test_only() {
    let bigger = |name: &str| {
        let mut r = stable_run(name);
        for m in &mut r.machines {
            m.jump.mean *= 3.0;
        }
        r
    };
    let names = ["run_1", "run_2", "run_3", "run_4", "run_5"];
    let summary = summary(vec![
        ("baseline", names.iter().map(|n| stable_run(n)).collect()),
        ("other", names.iter().map(|n| bigger(n)).collect()),
    ]);
    let text = answers(&summary, "experiments");
    let line = text.lines().find(|l| l.starts_with("other against baseline")).unwrap();
    // Five runs apart from five: only the split that is the data (and its
    // mirror) is as extreme, p = 2/252. (The mean jump is tick-weighted.)
    assert!(line.contains("mean jump 4.91 against 1.64: +3.27 [") && line.contains("], higher (p = 0.008)"), "{line}");
    // The crafted experiments share their settings, which the sentence says.
    assert!(line.contains("(the same settings: the two are copies of one experiment"), "{line}");
    assert!(
        line.contains("mean lag 0.17 s against 0.17 s: 0.00 s [0.00, 0.00], no difference shown (p = 1.000)"),
        "{line}"
    );
    // Three runs against three can never make p ≤ 5%: no row, one sentence.
    let few = |name: &str| names[..3].iter().map(|n| if name == "few" { bigger(n) } else { stable_run(n) }).collect();
    let small = self::summary(vec![("baseline", few("baseline")), ("few", few("few"))]);
    let text = answers(&small, "experiments");
    assert!(!text.lines().any(|l| l.starts_with("few against")), "{text}");
    assert!(text.contains("few has too few runs that enter the aggregates for the permutation test ever"), "{text}");
    assert!(!text.contains("too few runs for an interval"), "{text}");
}

#[test]
fn a_variation_is_set_beside_its_control_run_by_run() {
    let mut control = settings(6, 10);
    control.name = "no-faults".into();
    let mut varied = control.clone();
    varied.name = "lossy".into();
    varied.control = Some("no-faults".into());
    let with = |name: &str, settings: &Experiment, jump: f64| {
        let mut r = stable_run(name);
        r.info.settings = Some(settings.clone());
        r.machines.iter_mut().for_each(|m| m.jump.mean = jump);
        r
    };
    let summary =
        summary(vec![("no-faults", vec![with("run_1", &control, 1.5)]), ("lossy", vec![with("run_1", &varied, 2.0)])]);
    let text = answers(&summary, "experiments");
    assert!(
        text.contains(
            "lossy against its control no-faults on the same seeds (run_1 of each): mean jump 2.00 against 1.50 \
             (+0.50)"
        ),
        "{text}"
    );
    assert!(!text.contains("Only no-faults has runs"), "{text}");
}

/// One `Initialized … with clock rate 4294967295` line, or a run of twenty
/// distinct rates, gives figures of bounded size whose categories are the
/// rates seen (in classes past eight).
#[test]
fn figures_stay_bounded_whatever_the_rates() {
    let mut machines: Vec<MachineSummary> = (1..=19).map(|rate| machine(rate, rate, u32::MAX, 10)).collect();
    machines.push(machine(20, u32::MAX, u32::MAX, 10));
    let summary = summary(vec![("huge", vec![run("run_1", "ok", machines)])]);
    let (figures, _) = super::plots::figures(&summary);
    assert!(!figures.is_empty());
    for figure in &figures {
        if let crate::figures::Plot::Bars(bars) = &figure.figure.plot {
            assert!(bars.groups.len() <= 8 && bars.categories.len() <= 64, "{}: {:?}", figure.name, bars.groups);
        }
        let svg = figure.figure.to_svg().unwrap();
        assert!(svg.len() < 2_000_000, "{} is {} bytes", figure.name, svg.len());
    }
    // A few rates: exactly the rates seen, no empty column.
    let few = summary_of_rates(&[1, 3, 6]);
    let (figures, _) = super::plots::figures(&few);
    let histogram = figures.iter().find(|f| f.name.starts_with("jumps_")).unwrap();
    let crate::figures::Plot::Bars(bars) = &histogram.figure.plot else { panic!("a histogram is bars") };
    assert_eq!(bars.groups, ["rate 1", "rate 3", "rate 6"]);
}

fn summary_of_rates(rates: &[u32]) -> Summary {
    let fastest = rates.iter().copied().max().unwrap_or(1);
    let machines = rates.iter().enumerate().map(|(idx, &rate)| machine(idx as u32 + 1, rate, fastest, 10)).collect();
    summary(vec![("few", vec![run("run_1", "ok", machines)])])
}

/// A count of one reads in the singular everywhere: one slower machine, one
/// other machine, one growing lag, one run.
#[test]
fn counts_of_one_read_in_the_singular() {
    let mut growing = machine(2, 1, 6, 100);
    overload(&mut growing, slope(0.8, 0.05, true), 40, 40);
    let summary = summary(vec![("baseline", vec![run("run_1", "ok", vec![machine(1, 6, 6, 20), growing])])]);
    let text = notes_text(&summary);
    assert!(text.contains("the 1 slower machine "), "{text}");
    assert!(text.contains("The other 1 machine has a stationary lag"), "{text}");
    let plural_after_one = plurals_after_one(&text);
    assert!(plural_after_one.is_empty(), "{plural_after_one:?} in {text}");
}

/// Every "1 <noun>s" in `text`, for the nouns the report counts.
fn plurals_after_one(text: &str) -> Vec<String> {
    let nouns = ["machines", "runs", "ticks", "violations", "ones", "messages", "pairs", "experiments", "have"];
    let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == '(' || c == ',').collect();
    words
        .windows(2)
        .filter(|w| w[0] == "1" && nouns.contains(&w[1].trim_end_matches(['.', ':', ';', ')'])))
        .map(|w| w.join(" "))
        .collect()
}

#[test]
fn code_in_a_sentence_is_set_as_code_and_escaped() {
    assert_eq!(super::prose("a `b<c>` d").to_string(), "a <code>b&lt;c&gt;</code> d");
    assert_eq!(super::prose("`x` and `y`").to_string(), "<code>x</code> and <code>y</code>");
    // A backtick with none to close it stays.
    assert_eq!(super::prose("a `b` c `d").to_string(), "a <code>b</code> c `d");
    assert_eq!(super::prose("no code & more").to_string(), "no code &amp; more");
    let summary = summary(vec![("baseline", vec![stable_run("run_1"), stable_run("run_2")])]);
    let text = notes_text(&summary);
    assert!(text.contains("`clocklab run --seed 42`"), "{text}");
    let html = render_html(super::build(&summary, &[], Vec::new(), &[]));
    assert!(html.contains("<code>clocklab run --seed 42</code>"), "{html}");
    assert!(!html.contains('`'), "a backtick is left in the page");
}

#[test]
fn a_long_run_name_keeps_the_terminal_table_in_columns() {
    let name = "started 2026-12-08 00:44:58 UTC";
    let summary = summary(vec![("lab", vec![run(name, "ok", vec![machine(1, 6, 6, 10), machine(2, 3, 6, 10)])])]);
    let table = crate::tables::render_table(&summary);
    let lines: Vec<&str> = table.lines().filter(|l| l.starts_with("run ") || l.starts_with(name)).collect();
    assert_eq!(lines.len(), 3, "{table}");
    // Every row ends its `left` column where the header does.
    let width = |line: &str| line.chars().count();
    assert!(lines.iter().all(|l| width(l) == width(lines[0])), "{table}");
}
