//! Which figures the report shows, built from the summary.
//!
//! The figures answer the lab notes' questions by configuration: every
//! machine of every run is one mark placed by its rate ratio r_max / r or
//! its utilisation ρ, beside the simple model's prediction; nothing is
//! pooled across runs that drew different rates. Their number and size are
//! bounded whatever the data: categories are the rates actually seen (in
//! classes when there are many), per-run figures are drawn only for runs
//! that ticked and at most [`MAX_RUN_FIGURES`] of them, runs of many machines
//! are drawn as one band per rate.

use std::collections::BTreeMap;

use super::{MachineRef, all_machines, run_label};
use crate::figures::{
    Bars, DotItem, Dots, Figure, Mark, Panel, Panels, Plot, Quantity, Scatter, ScatterGroup, Shape, Window,
};
use crate::run::{MachineSeries, MachineSummary, RunSummary};
use crate::stats::Series;
use crate::summary::{ExperimentSummary, Summary};

/// At most this many per-run figures in a report.
pub const MAX_RUN_FIGURES: usize = 40;

/// At most this many per-run figures for one experiment.
pub const MAX_RUN_FIGURES_PER_EXPERIMENT: usize = 10;

/// At most this many per-experiment figures of one kind.
pub const MAX_EXPERIMENT_FIGURES: usize = 12;

/// A run with more machines than this is drawn as one band per rate.
pub const MAX_MACHINE_LINES: usize = 12;

/// A figure, its file name (without extension), the report section it
/// belongs to, and a caption.
#[derive(Debug)]
pub struct NamedFigure {
    /// The file name, without extension.
    pub name: String,
    /// The section's anchor.
    pub section: &'static str,
    /// The figure.
    pub figure: Figure,
    /// What it shows and how to read it.
    pub caption: String,
}

/// A name that is safe in a file name.
pub(crate) fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Every figure of the report, and what was left out to keep it bounded.
pub fn figures(summary: &Summary) -> (Vec<NamedFigure>, Vec<String>) {
    let mut out = Vec::new();
    let mut omitted = Vec::new();
    let machines = all_machines(summary);
    let shown_experiments: Vec<&ExperimentSummary> = summary.experiments.iter().take(MAX_EXPERIMENT_FIGURES).collect();
    if summary.experiments.len() > MAX_EXPERIMENT_FIGURES {
        omitted.push(format!(
            "jump histograms are drawn for the first {MAX_EXPERIMENT_FIGURES} experiments of {}",
            summary.experiments.len()
        ));
    }
    for experiment in &shown_experiments {
        if let Some(figure) = jump_histogram(experiment) {
            out.push(figure);
        }
    }
    let groups = experiment_groups(summary);
    if machines.iter().any(|m| m.machine.ticks > 0) {
        out.push(scatter(
            "jump_vs_rate_ratio",
            "jumps",
            "Mean jump per tick against how much slower the machine ticks than its run's fastest",
            "The dashed line is the prediction r_max / r for a machine that keeps up (ρ ≤ 1). Hollow marks are \
             overloaded machines (ρ > 1), grey crosses machines of runs left out of the aggregates.",
            ("rate ratio r_max / r", Quantity::NonNegative),
            ("mean jump per tick", Quantity::NonNegative),
            &groups,
            &machines,
            |m| Some((m.machine.rate_ratio, m.machine.jump.mean)),
            vec![("prediction r_max / r".into(), diagonal(&machines, |m| m.machine.rate_ratio))],
            Vec::new(),
        ));
        out.push(scatter(
            "lag_vs_rate_ratio",
            "lag",
            "Mean lag behind the leader, in seconds (ticks / r_max), against the rate ratio",
            "Each mark is one machine of one run. Hollow marks are overloaded machines (ρ > 1): their lag grows \
             with the run's length.",
            ("rate ratio r_max / r", Quantity::NonNegative),
            ("mean lag (s: ticks / r_max)", Quantity::NonNegative),
            &groups,
            &machines,
            |m| Some((m.machine.rate_ratio, m.machine.lag.mean_s)),
            Vec::new(),
            Vec::new(),
        ));
        out.push(scatter(
            "lag_growth_vs_utilisation",
            "lag",
            "Growth of the lag (the slope through its means over stretches of the run) against the utilisation ρ",
            "A lag that grows (the slope through its means over stretches of the run above zero at p ≤ 5%, and \
             more than a tick over the run) makes its mean depend on the run's length. The dashed line is ρ = 1.",
            ("utilisation ρ = received / (rate × duration)", Quantity::NonNegative),
            ("lag growth (ticks/s)", Quantity::Signed),
            &groups,
            &machines,
            |m| Some((m.machine.load.utilisation, m.machine.lag.growth.per_s)),
            Vec::new(),
            vec![(1.0, "ρ = 1".into())],
        ));
        if machines.iter().any(|m| m.machine.fluid.is_some()) {
            let predicted = |m: &MachineRef| m.machine.fluid.map_or(f64::NAN, |f| f.queue_growth_per_s);
            out.push(scatter(
                "queue_growth_vs_model",
                "queues",
                "Queue growth measured against the fluid model's λ − r, from the rates alone",
                "λ is what the fluid model predicts reaches the machine per second from the run's rates and E \
                 alone, r its rate; the model predicts growth λ − r when λ > r and none otherwise. Marks on the \
                 dashed line agree with the model.",
                ("predicted growth λ − r (messages/s)", Quantity::NonNegative),
                ("measured growth (messages/s)", Quantity::Signed),
                &groups,
                &machines,
                |m| m.machine.fluid.map(|f| (f.queue_growth_per_s, m.machine.queue.growth.per_s)),
                vec![("fluid model λ − r".into(), diagonal(&machines, predicted))],
                Vec::new(),
            ));
        }
        out.push(scatter(
            "queue_max_vs_utilisation",
            "queues",
            "Longest queue against the utilisation ρ",
            "Past ρ = 1 (dashed) a machine receives more than it can process and its queue grows for as long as \
             the run lasts.",
            ("utilisation ρ = received / (rate × duration)", Quantity::NonNegative),
            ("longest queue (messages)", Quantity::Count),
            &groups,
            &machines,
            |m| Some((m.machine.load.utilisation, m.machine.queue.max as f64)),
            Vec::new(),
            vec![(1.0, "ρ = 1".into())],
        ));
        if let Some(figure) = event_mix(summary) {
            out.push(figure);
        }
    }
    if let Some(figure) = concurrency(summary) {
        out.push(figure);
    }
    if let Some(figure) = hlc_against_lamport(summary) {
        out.push(figure);
    }
    run_figures(summary, &mut out, &mut omitted);
    (out, omitted)
}

/// The scatter groups: one per experiment, then overloaded machines, then
/// machines of runs left out. Returns each group's label and mark.
/// Each experiment's marks: filled for machines that keep up, hollow for
/// overloaded ones (explained by one key entry); grey crosses for machines of
/// runs left out of the aggregates.
fn experiment_groups(summary: &Summary) -> Vec<(String, Mark, bool)> {
    let mut groups = Vec::new();
    for (idx, e) in summary.experiments.iter().enumerate() {
        let colour = if idx >= 7 { idx + 1 } else { idx };
        groups.push((e.name.clone(), Mark { colour, shape: Shape::nth(idx), hollow: false }, true));
        groups.push((format!("{}, overloaded", e.name), Mark { colour, shape: Shape::nth(idx), hollow: true }, false));
    }
    groups.push(("hollow: overloaded (ρ > 1)".into(), Mark { colour: 7, shape: Shape::Circle, hollow: true }, true));
    groups.push(("run left out".into(), Mark { colour: 7, shape: Shape::Cross, hollow: false }, true));
    groups
}

/// Which group of [`experiment_groups`] a machine belongs to.
fn group_of(n_experiments: usize, m: &MachineRef) -> usize {
    if !m.run.is_sound() {
        2 * n_experiments + 1
    } else {
        2 * m.experiment_idx + usize::from(m.machine.load.overloaded)
    }
}

/// The line y = x over the predicted values' range.
fn diagonal(machines: &[MachineRef], x: impl Fn(&MachineRef) -> f64) -> Vec<(f64, f64)> {
    let high = machines.iter().map(&x).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let high = if high > 0.0 { high * 1.05 } else { 1.0 };
    vec![(0.0, 0.0), (high, high)]
}

#[allow(clippy::too_many_arguments)] // Each figure states its texts, axes and lines; a struct would only rename them.
fn scatter(
    name: &str,
    section: &'static str,
    title: &str,
    caption: &str,
    x: (&str, Quantity),
    y: (&str, Quantity),
    groups: &[(String, Mark, bool)],
    machines: &[MachineRef],
    point: impl Fn(&MachineRef) -> Option<(f64, f64)>,
    lines: Vec<(String, Vec<(f64, f64)>)>,
    verticals: Vec<(f64, String)>,
) -> NamedFigure {
    let n_experiments = (groups.len() - 2) / 2;
    let mut points: Vec<Vec<(f64, f64)>> = vec![Vec::new(); groups.len()];
    for m in machines.iter().filter(|m| m.machine.ticks > 0) {
        if let Some((px, py)) = point(m).filter(|p| p.0.is_finite() && p.1.is_finite()) {
            points[group_of(n_experiments, m)].push((px, py));
        }
    }
    let any_overloaded = (0..n_experiments).any(|e| !points[2 * e + 1].is_empty());
    let key = 2 * n_experiments;
    let groups = groups
        .iter()
        .zip(points)
        .enumerate()
        .filter(|(idx, (_, points))| !points.is_empty() || (*idx == key && any_overloaded))
        .map(|(_, ((label, mark, in_legend), points))| ScatterGroup {
            label: label.clone(),
            mark: *mark,
            points,
            in_legend: *in_legend,
        })
        .collect();
    NamedFigure {
        name: name.to_string(),
        section,
        caption: caption.to_string(),
        figure: Figure {
            title: title.to_string(),
            plot: Plot::Scatter(Scatter {
                x_label: x.0.to_string(),
                y_label: y.0.to_string(),
                x_quantity: x.1,
                y_quantity: y.1,
                groups,
                lines,
                verticals,
            }),
        },
    }
}

/// The bins of a jump-size histogram: 1 to 8 one by one, then powers of two.
fn jump_bin(jump: u64) -> (u64, u64) {
    if jump <= 8 {
        (jump, jump)
    } else {
        let high = jump.next_power_of_two();
        (high / 2 + 1, high)
    }
}

fn bin_name((low, high): (u64, u64)) -> String {
    if low == high { low.to_string() } else { format!("{low}–{high}") }
}

/// Which group a machine belongs to.
type GroupOf = Box<dyn Fn(&MachineSummary) -> usize>;

/// A machine's rate group in a figure: its rate when the figure shows few
/// distinct rates, otherwise a class of its rate ratio.
fn rate_groups(machines: &[&MachineSummary]) -> (Vec<String>, GroupOf) {
    const MAX_RATES: usize = 8;
    let rates: Vec<u32> =
        machines.iter().map(|m| m.rate).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if rates.len() <= MAX_RATES {
        let names = rates.iter().map(|r| format!("rate {r}")).collect();
        return (names, Box::new(move |m: &MachineSummary| rates.iter().position(|&r| r == m.rate).unwrap_or(0)));
    }
    let limits = [1.0, 2.0, 4.0, 8.0, f64::INFINITY];
    let names = vec![
        "r = r_max".to_string(),
        "r_max / r ≤ 2".to_string(),
        "r_max / r ≤ 4".to_string(),
        "r_max / r ≤ 8".to_string(),
        "r_max / r > 8".to_string(),
    ];
    (names, Box::new(move |m: &MachineSummary| limits.iter().position(|&l| m.rate_ratio <= l).unwrap_or(4)))
}

fn jump_histogram(experiment: &ExperimentSummary) -> Option<NamedFigure> {
    let machines: Vec<&MachineSummary> =
        experiment.runs.iter().filter(|r| r.is_sound()).flat_map(|r| &r.machines).filter(|m| m.ticks > 0).collect();
    if machines.is_empty() {
        return None;
    }
    let (groups, group_of) = rate_groups(&machines);
    // (bin) → ticks per group.
    let mut counts: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
    let mut totals = vec![0u64; groups.len()];
    for m in &machines {
        let group = group_of(m);
        for (&jump, &n) in &m.jump.distribution {
            counts.entry(jump_bin(jump)).or_insert_with(|| vec![0; groups.len()])[group] += n;
            totals[group] += n;
        }
    }
    let categories: Vec<String> = counts.keys().map(|&bin| bin_name(bin)).collect();
    let values = counts
        .values()
        .map(|row| row.iter().zip(&totals).map(|(&n, &t)| if t == 0 { 0.0 } else { n as f64 / t as f64 }).collect())
        .collect();
    Some(NamedFigure {
        name: format!("jumps_{}", safe_name(&experiment.name)),
        section: "jumps",
        caption: format!(
            "How often each jump size occurred in {}, as a share of the ticks of the machines of each rate \
             (runs that enter the aggregates). Sizes above 8 are grouped in powers of two.",
            experiment.name
        ),
        figure: Figure {
            title: format!("Jump sizes in {}", experiment.name),
            plot: Plot::Bars(Bars {
                x_label: "jump of the logical clock on one tick".into(),
                y_label: "share of the ticks".into(),
                quantity: Quantity::Share,
                categories,
                groups,
                values,
                spans: Vec::new(),
                stacked: false,
            }),
        },
    })
}

fn event_mix(summary: &Summary) -> Option<NamedFigure> {
    const MAX_BARS: usize = 36;
    let mut categories = Vec::new();
    let mut values = Vec::new();
    let mut spans = Vec::new();
    for experiment in &summary.experiments {
        let machines: Vec<&MachineSummary> =
            experiment.runs.iter().filter(|r| r.is_sound()).flat_map(|r| &r.machines).collect();
        let (names, group_of) = rate_groups(&machines);
        let mut rows = vec![[0u64; 3]; names.len()];
        for m in &machines {
            let row = &mut rows[group_of(m)];
            row[0] += m.events.processed;
            row[1] += m.events.sent;
            row[2] += m.events.internal;
        }
        let before = categories.len();
        for (name, row) in names.iter().zip(rows) {
            let total: u64 = row.iter().sum();
            if total > 0 && categories.len() < MAX_BARS {
                categories.push(name.replace("rate ", "r = "));
                values.push(row.iter().map(|&n| n as f64 / total as f64).collect());
            }
        }
        if categories.len() > before {
            spans.push((experiment.name.clone(), categories.len() - before));
        }
    }
    (!categories.is_empty()).then(|| NamedFigure {
        name: "event_mix".into(),
        section: "events",
        caption: "Each bar is every machine of one rate in one experiment (runs that enter the aggregates): the \
                  share of their ticks that processed a message, sent, or was internal."
            .into(),
        figure: Figure {
            title: "What the ticks were spent on, by experiment and rate".into(),
            plot: Plot::Bars(Bars {
                x_label: String::new(),
                y_label: "share of the ticks".into(),
                quantity: Quantity::Share,
                categories,
                groups: vec!["processed".into(), "sent".into(), "internal".into()],
                values,
                spans,
                stacked: true,
            }),
        },
    })
}

fn concurrency(summary: &Summary) -> Option<NamedFigure> {
    let mut items = Vec::new();
    let categories: Vec<String> = summary.experiments.iter().map(|e| e.name.clone()).collect();
    for (idx, experiment) in summary.experiments.iter().enumerate() {
        for causality in experiment.runs.iter().filter(|r| r.is_sound()).filter_map(|r| r.causality.as_ref()) {
            items.push(DotItem { category: idx, group: 0, value: causality.concurrent_share, range: None });
            items.push(DotItem { category: idx, group: 1, value: causality.false_ordering_share, range: None });
        }
    }
    (!items.is_empty()).then(|| NamedFigure {
        name: "concurrency".into(),
        section: "causality",
        caption: "One dot per run: the share of pairs of events on different machines that are concurrent, and \
                  the share that Lamport's clock orders although they are concurrent."
            .into(),
        figure: Figure {
            title: "Concurrent pairs of events, and Lamport's false ordering, per run".into(),
            plot: Plot::Dots(Dots {
                y_label: "share of the pairs".into(),
                quantity: Quantity::Share,
                categories,
                groups: vec!["concurrent".into(), "concurrent, yet ordered by Lamport".into()],
                items,
            }),
        },
    })
}

/// The windows of the run's faults, to shade on its time series: from the
/// start to the end (a heal, a restart, a resume; the run's end for a fault
/// that lasts), an instant for a clock fault.
fn fault_windows(run: &RunSummary) -> Vec<Window> {
    use crate::faults::Effect;
    let end_s = run_end_s(run);
    // Whole seconds without decimals: the legend is narrow.
    let secs = |s: f64| if s.fract() == 0.0 { format!("{s}") } else { crate::words::fixed(s, 1) };
    run.faults
        .iter()
        .map(|fault| {
            let machine = fault.machines.first().map_or(String::new(), |m| format!(" of machine {m}"));
            let kind = match fault.effect {
                Effect::Partition { .. } => "partition".to_string(),
                Effect::Loss { .. } => "loss".to_string(),
                Effect::Latency { .. } => "latency".to_string(),
                Effect::Crash { .. } => format!("crash{machine}"),
                Effect::Pause { .. } => format!("pause{machine}"),
                Effect::Clock { .. } => format!("clock step{machine}"),
            };
            let instant = matches!(fault.effect, Effect::Clock { .. });
            let to_s = fault.end_s.unwrap_or(if instant { fault.start_s } else { end_s });
            let when = if instant {
                format!("at {} s", secs(fault.start_s))
            } else {
                format!("{}–{} s", secs(fault.start_s), secs(to_s))
            };
            Window { from_s: fault.start_s, to_s, label: format!("{kind}, {when}") }
        })
        .collect()
}

/// The run (kept HLC, sound) whose Lamport lag grows fastest: its lag
/// beside its HLC offsets, with the skew bound.
fn hlc_against_lamport(summary: &Summary) -> Option<NamedFigure> {
    let (experiment, run) = summary
        .experiments
        .iter()
        .flat_map(|e| e.runs.iter().map(move |r| (e, r)))
        .filter(|(_, r)| r.is_sound() && r.machines.iter().any(|m| m.hlc.is_some()))
        .max_by(|a, b| max_lag_growth(a.1).total_cmp(&max_lag_growth(b.1)))?;
    let lines = run_lines(run);
    let mut panels = vec![panel(run, "lag (ticks)", Quantity::Count, |s| &s.lag, None)];
    panels.push(hlc_panel(run));
    Some(NamedFigure {
        name: format!("hlc_{}_{}", safe_name(&experiment.name), safe_name(&run.name)),
        section: "causality",
        caption: format!(
            "{} {}: Lamport's lag behind the leader (top) against how far each HLC runs ahead of its machine's \
             physical clock (bottom), with the skew bound (dashed): the largest difference between two machines' \
             physical clocks over the run.",
            experiment.name, run.name
        ),
        figure: Figure {
            title: format!("Lamport's lag and HLC's offset: {}", run_title(experiment, run)),
            plot: Plot::Panels(Panels { x_end_s: run_end_s(run), lines, panels, windows: fault_windows(run) }),
        },
    })
}

fn max_lag_growth(run: &RunSummary) -> f64 {
    run.machines.iter().map(|m| m.lag.growth.per_s).fold(f64::NEG_INFINITY, f64::max)
}

/// A run's title: its name, rate draws and status.
pub(crate) fn run_title(experiment: &ExperimentSummary, run: &RunSummary) -> String {
    let status = if run.is_sound() {
        run.info.status.clone()
    } else {
        format!("{}, left out of the aggregates", if run.info.is_sound() { "damaged log" } else { &run.info.status })
    };
    let status = if status == "unknown" { "no manifest".to_string() } else { status };
    format!("{} / {} ({status})", experiment.name, run_label(run))
}

/// The end of a run's time axis: its duration, or its last tick if later
/// (a real run's clock starts when its first machine logs, before ticking).
fn run_end_s(run: &RunSummary) -> f64 {
    let last = run.series.iter().filter_map(|s| s.clock.points().last().map(|p| p.0)).fold(0.0, f64::max);
    run.duration_s.max(last)
}

/// The legend of a run's figure: its machines, or its rates when it has many.
fn run_lines(run: &RunSummary) -> Vec<String> {
    if run.machines.len() <= MAX_MACHINE_LINES {
        run.machines.iter().map(|m| format!("machine {} (rate {})", m.id, m.rate)).collect()
    } else {
        let machines: Vec<&MachineSummary> = run.machines.iter().collect();
        let (names, group_of) = rate_groups(&machines);
        names
            .iter()
            .enumerate()
            .map(|(idx, name)| {
                let n = machines.iter().filter(|m| group_of(m) == idx).count();
                format!("{name}: {} (range)", crate::words::count(n as u64, "machine"))
            })
            .collect()
    }
}

/// The panel of HLC's `l − pt`, with the run's skew bound.
fn hlc_panel(run: &RunSummary) -> Panel {
    panel(
        run,
        "HLC l − pt (ms)",
        Quantity::NonNegative,
        |s| &s.hlc_offset_ms,
        run.info.skew_bound_us.map(|bound| (bound / 1e3, "skew bound".to_string())),
    )
}

/// One panel of a run's figure.
fn panel(
    run: &RunSummary,
    y_label: &str,
    quantity: Quantity,
    pick: fn(&MachineSeries) -> &Series,
    reference: Option<(f64, String)>,
) -> Panel {
    let mut out = Panel { y_label: y_label.into(), quantity, series: Vec::new(), bands: Vec::new(), reference };
    if run.machines.len() <= MAX_MACHINE_LINES {
        out.series = run.series.iter().enumerate().map(|(idx, s)| (idx, pick(s).points())).collect();
        return out;
    }
    // Many machines: one band per rate group, from the smallest to the
    // largest value of its machines on a common time grid.
    const GRID: usize = 300;
    let end = run_end_s(run);
    let grid: Vec<f64> = (0..=GRID).map(|k| end * k as f64 / GRID as f64).collect();
    let machines: Vec<&MachineSummary> = run.machines.iter().collect();
    let (names, group_of) = rate_groups(&machines);
    for group in 0..names.len() {
        let members: Vec<Vec<f64>> = run
            .machines
            .iter()
            .zip(&run.series)
            .filter(|(m, _)| group_of(m) == group)
            .map(|(_, s)| resample(&pick(s).points(), &grid))
            .collect();
        if members.is_empty() {
            continue;
        }
        let band = grid
            .iter()
            .enumerate()
            .map(|(k, &t)| {
                let values = members.iter().map(|m| m[k]);
                let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
                (t, low, high)
            })
            .collect();
        out.bands.push((group, band));
    }
    out
}

/// A step function's value at each time of `grid` (0 before its first point).
fn resample(points: &[(f64, f64)], grid: &[f64]) -> Vec<f64> {
    let mut idx = 0;
    let mut value = 0.0;
    grid.iter()
        .map(|&t| {
            while idx < points.len() && points[idx].0 <= t {
                value = points[idx].1;
                idx += 1;
            }
            value
        })
        .collect()
}

fn run_figures(summary: &Summary, out: &mut Vec<NamedFigure>, omitted: &mut Vec<String>) {
    let mut drawn = 0;
    let mut skipped_empty = 0;
    let mut skipped_cap = 0;
    for experiment in &summary.experiments {
        let mut here = 0;
        for run in &experiment.runs {
            if run.machines.iter().all(|m| m.ticks == 0) {
                skipped_empty += 1;
                continue;
            }
            if here >= MAX_RUN_FIGURES_PER_EXPERIMENT || drawn >= MAX_RUN_FIGURES {
                skipped_cap += 1;
                continue;
            }
            here += 1;
            drawn += 1;
            let mut panels = vec![
                panel(run, "logical clock", Quantity::Count, |s| &s.clock, None),
                panel(run, "lag (ticks)", Quantity::Count, |s| &s.lag, None),
                panel(run, "queue", Quantity::Count, |s| &s.queue, None),
            ];
            if run.machines.iter().any(|m| m.hlc.is_some()) {
                panels.push(hlc_panel(run));
            }
            out.push(NamedFigure {
                name: format!("run_{}_{}", safe_name(&experiment.name), safe_name(&run.name)),
                section: "runs",
                caption: String::new(),
                figure: Figure {
                    title: run_title(experiment, run),
                    plot: Plot::Panels(Panels {
                        x_end_s: run_end_s(run),
                        lines: run_lines(run),
                        panels,
                        windows: fault_windows(run),
                    }),
                },
            });
        }
    }
    if skipped_empty > 0 {
        omitted.push(format!(
            "{} without a single tick {} no figure",
            crate::words::count(skipped_empty as u64, "run"),
            if skipped_empty == 1 { "has" } else { "have" }
        ));
    }
    if skipped_cap > 0 {
        omitted.push(format!(
            "per-run figures are drawn for at most {MAX_RUN_FIGURES_PER_EXPERIMENT} runs of an experiment and \
             {MAX_RUN_FIGURES} in all; {} more {} theirs in summary.json and the CSV tables",
            crate::words::count(skipped_cap as u64, "run"),
            if skipped_cap == 1 { "has" } else { "have" }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_bins_are_bounded() {
        assert_eq!(jump_bin(1), (1, 1));
        assert_eq!(jump_bin(8), (8, 8));
        assert_eq!(jump_bin(9), (9, 16));
        assert_eq!(jump_bin(16), (9, 16));
        assert_eq!(jump_bin(17), (17, 32));
        assert_eq!(bin_name(jump_bin(1000)), "513–1024");
        let bins: std::collections::BTreeSet<_> = (1..1_000_000u64).step_by(7).map(jump_bin).collect();
        assert!(bins.len() < 30, "{}", bins.len());
    }

    #[test]
    fn resampling_a_step_function() {
        assert_eq!(resample(&[(1.0, 5.0), (2.0, 7.0)], &[0.0, 1.0, 1.5, 3.0]), [0.0, 5.0, 5.0, 7.0]);
    }
}
