//! The outputs: figures (SVG and PNG), `summary.json`, the CSV tables and the
//! self-contained `report.html`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::AnalyzeError;
use crate::figures::{CategoryItem, Figure};
use crate::run::RunSummary;
use crate::summary::{METRICS, Summary, describe_diagnostics, experiments_csv, jumps_csv, machines_csv, render_table};

/// A figure with its file name (without extension) and what it shows.
#[derive(Debug)]
pub struct NamedFigure {
    /// The file name, without extension.
    pub name: String,
    /// The report section it belongs to.
    pub section: Section,
    /// The figure.
    pub figure: Figure,
}

/// The report's sections, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Logical clocks over time.
    Clock,
    /// Jump sizes.
    Jumps,
    /// Drift.
    Drift,
    /// Queues.
    Queue,
    /// Event mix.
    Events,
    /// Experiments compared.
    Comparison,
}

/// The files written.
#[derive(Debug)]
pub struct Outputs {
    /// `report.html`.
    pub report: PathBuf,
    /// Every file written, in order.
    pub files: Vec<PathBuf>,
}

pub(crate) fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn machine_label(id: u32, rate: u32) -> String {
    format!("machine {id} (rate {rate})")
}

/// Every figure of the analysis.
pub fn figures(summary: &Summary) -> Vec<NamedFigure> {
    let mut out = Vec::new();
    let max_rate = summary.experiments.iter().flat_map(|e| &e.runs).flat_map(|r| &r.machines).map(|m| m.rate).max();
    let rates: Vec<u32> = (1..=max_rate.unwrap_or(1).max(1)).collect();
    let rate_names: Vec<String> = rates.iter().map(|r| format!("rate {r}")).collect();
    let rate_idx = |rate: u32| rate.saturating_sub(1) as usize;
    for experiment in &summary.experiments {
        let exp = safe_name(&experiment.name);
        for run in &experiment.runs {
            let label = format!("{} / {}", experiment.name, run.name);
            let stem = format!("{exp}_{}", safe_name(&run.name));
            let per_machine = |pick: fn(&crate::run::MachineSeries) -> &crate::stats::Series| {
                run.machines
                    .iter()
                    .zip(&run.series)
                    .map(|(m, s)| (machine_label(m.id, m.rate), pick(s).points()))
                    .collect::<Vec<_>>()
            };
            out.push(NamedFigure {
                name: format!("clock_{stem}"),
                section: Section::Clock,
                figure: Figure::Lines {
                    title: format!("Logical clock over time: {label}"),
                    y_label: "logical clock".into(),
                    series: per_machine(|s| &s.clock),
                },
            });
            out.push(NamedFigure {
                name: format!("drift_{stem}"),
                section: Section::Drift,
                figure: Figure::Lines {
                    title: format!("Drift behind the leading clock: {label}"),
                    y_label: "leader's clock - own clock".into(),
                    series: per_machine(|s| &s.drift),
                },
            });
            out.push(NamedFigure {
                name: format!("queue_{stem}"),
                section: Section::Queue,
                figure: Figure::Lines {
                    title: format!("Queue length over time: {label}"),
                    y_label: "messages waiting".into(),
                    series: per_machine(|s| &s.queue),
                },
            });
        }
        let runs: Vec<String> = experiment.runs.iter().map(|r| r.name.clone()).collect();
        let items = experiment
            .runs
            .iter()
            .enumerate()
            .flat_map(|(run_idx, run)| {
                run.machines.iter().map(move |m| CategoryItem {
                    category: rate_idx(m.rate),
                    group: run_idx,
                    value: m.jump.mean,
                    range: Some((m.jump.p50 as f64, m.jump.max as f64)),
                })
            })
            .collect();
        out.push(NamedFigure {
            name: format!("jumps_{exp}"),
            section: Section::Jumps,
            figure: Figure::Categories {
                title: format!(
                    "Jump per tick by machine, per rate: {} (dot mean, line median to max)",
                    experiment.name
                ),
                y_label: "logical clock jump per tick".into(),
                categories: rate_names.clone(),
                groups: runs,
                items,
            },
        });
        let (bars, values) = experiment
            .runs
            .iter()
            .flat_map(|run| {
                run.machines.iter().map(move |m| {
                    (
                        format!("{}:{} r{}", run.name.trim_start_matches("run_"), m.id, m.rate),
                        vec![m.events.processed as f64, m.events.sent as f64, m.events.internal as f64],
                    )
                })
            })
            .unzip();
        out.push(NamedFigure {
            name: format!("events_{exp}"),
            section: Section::Events,
            figure: Figure::Stacked {
                title: format!("Event mix per machine: {} (bars: run:machine rN = rate N)", experiment.name),
                bars,
                parts: vec!["processed".into(), "sent".into(), "internal".into()],
                values,
            },
        });
    }
    let groups: Vec<String> = summary.experiments.iter().map(|e| e.name.clone()).collect();
    type Pick = fn(&crate::run::MachineSummary) -> (f64, Option<(f64, f64)>);
    let comparisons: [(&str, &str, &str, Pick); 4] = [
        ("compare_jumps", "Mean jump per tick, every machine of every run", "mean jump (line: median to max)", |m| {
            (m.jump.mean, Some((m.jump.p50 as f64, m.jump.max as f64)))
        }),
        ("compare_drift", "Drift behind the leader, every machine of every run", "mean drift (line: to max)", |m| {
            (m.drift.mean, Some((m.drift.mean, m.drift.max as f64)))
        }),
        ("compare_queue", "Queue length, every machine of every run", "mean queue (line: to max)", |m| {
            (m.queue.mean, Some((m.queue.mean, m.queue.max as f64)))
        }),
        ("compare_ticks", "Ticks done / (rate x duration), every machine of every run", "tick ratio", |m| {
            (m.tick_ratio, None)
        }),
    ];
    if !summary.experiments.is_empty() {
        for (name, title, y_label, pick) in comparisons {
            let items = summary
                .experiments
                .iter()
                .enumerate()
                .flat_map(|(group, e)| {
                    e.runs.iter().flat_map(|r| &r.machines).map(move |m| {
                        let (value, range) = pick(m);
                        CategoryItem { category: rate_idx(m.rate), group, value, range }
                    })
                })
                .collect();
            out.push(NamedFigure {
                name: name.to_string(),
                section: Section::Comparison,
                figure: Figure::Categories {
                    title: title.to_string(),
                    y_label: y_label.to_string(),
                    categories: rate_names.clone(),
                    groups: groups.clone(),
                    items,
                },
            });
        }
    }
    out
}

/// Writes every output into `out`; returns the report's path and the files.
pub fn write_outputs(summary: &Summary, out: &Path) -> Result<Outputs, AnalyzeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AnalyzeError::Io { path, source }
    };
    let figures_dir = out.join("figures");
    std::fs::create_dir_all(&figures_dir).map_err(io(&figures_dir))?;
    let mut files = Vec::new();
    let mut write = |name: &str, text: &str| -> Result<(), AnalyzeError> {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
        files.push(path);
        Ok(())
    };
    let json = serde_json::to_string_pretty(summary).expect("a summary always serialises");
    write("summary.json", &(json + "\n"))?;
    write("summary.txt", &render_table(summary))?;
    write("machines.csv", &machines_csv(summary))?;
    write("experiments.csv", &experiments_csv(summary))?;
    write("jumps.csv", &jumps_csv(summary))?;

    let figures = figures(summary);
    let mut embedded: Vec<(Section, String, String)> = Vec::new();
    for figure in &figures {
        let svg_path = figures_dir.join(format!("{}.svg", figure.name));
        let png_path = figures_dir.join(format!("{}.png", figure.name));
        let svg = crate::figures::to_svg(&figure.figure)?;
        std::fs::write(&svg_path, &svg).map_err(io(&svg_path))?;
        crate::figures::to_png(&figure.figure, &png_path)?;
        let title = match &figure.figure {
            Figure::Lines { title, .. } | Figure::Categories { title, .. } | Figure::Stacked { title, .. } => {
                title.clone()
            }
        };
        // The report embeds the SVG: a third of the PNG's size, and sharp at any zoom.
        embedded.push((figure.section, title, base64::engine::general_purpose::STANDARD.encode(&svg)));
        files.push(svg_path);
        files.push(png_path);
    }
    let diagrams = crate::diagrams::write_diagrams(summary, out)?;
    files.extend(diagrams.iter().filter(|d| d.problem.is_none()).map(|d| d.path.clone()));
    let report = out.join("report.html");
    std::fs::write(&report, render_html(summary, &embedded, &diagrams)).map_err(io(&report))?;
    files.push(report.clone());
    Ok(Outputs { report, files })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Every (experiment, run, machine) triple, for the sentences.
fn all_machines(summary: &Summary) -> Vec<(&str, &RunSummary, &crate::run::MachineSummary)> {
    summary
        .experiments
        .iter()
        .flat_map(|e| e.runs.iter().flat_map(move |r| r.machines.iter().map(move |m| (e.name.as_str(), r, m))))
        .collect()
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 }
}

/// The plain sentences of each section, computed from the data.
fn sentences(summary: &Summary, section: Section) -> Vec<String> {
    let machines = all_machines(summary);
    let mut out = Vec::new();
    let Some(first) = machines.first() else { return out };
    match section {
        Section::Clock => {
            out.push(
                "Each machine's logical clock against real time. A Lamport clock only moves forward: by one on \
                 its own events, and up to a sender's value plus one when it processes a message, so slow \
                 machines are pulled up towards fast ones."
                    .into(),
            );
            let worst = machines.iter().min_by(|a, b| a.2.tick_ratio.total_cmp(&b.2.tick_ratio)).unwrap_or(first);
            let best = machines.iter().max_by(|a, b| a.2.tick_ratio.total_cmp(&b.2.tick_ratio)).unwrap_or(first);
            if (best.2.tick_ratio - worst.2.tick_ratio).abs() < 0.0005 {
                out.push(format!(
                    "Every machine did {:.1}% of the ticks its rate × duration asks for: the absolute schedule \
                     loses no ticks.",
                    100.0 * worst.2.tick_ratio
                ));
            } else {
                out.push(format!(
                    "Machines did between {:.1}% ({} {} machine {}, rate {}) and {:.1}% of the ticks their rate × \
                     duration asks for; a machine that falls short loses ticks to its schedule.",
                    100.0 * worst.2.tick_ratio,
                    worst.0,
                    worst.1.name,
                    worst.2.id,
                    worst.2.rate,
                    100.0 * best.2.tick_ratio
                ));
            }
        }
        Section::Jumps => {
            out.push(
                "A jump is how much the logical clock rose on one tick. It is 1 for an internal event or a send; \
                 it is larger when a processed message carried a clock ahead of the local one. Jumps are \
                 measured per tick (a double send in the reference's logs is one tick), from the clock at start."
                    .into(),
            );
            let ticks: u64 = machines.iter().map(|m| m.2.ticks).sum();
            let ones: u64 = machines.iter().map(|m| m.2.jump.distribution.get(&1).copied().unwrap_or(0)).sum();
            let big = machines.iter().max_by_key(|m| m.2.jump.max).unwrap_or(first);
            out.push(format!(
                "Here {:.1}% of all {ticks} ticks were jumps of 1; the largest jump, {}, was on the rate-{} \
                 machine {} of {} {}: slow machines make the big jumps when they catch up with fast senders.",
                percent(ones, ticks),
                big.2.jump.max,
                big.2.rate,
                big.2.id,
                big.0,
                big.1.name
            ));
        }
        Section::Drift => {
            out.push(
                "Drift is how far a machine's logical clock is behind the largest clock of its run at the same \
                 instant (god's-eye view through system time), as a step function of time; its mean is weighted \
                 by time."
                    .into(),
            );
            let worst = machines.iter().max_by_key(|m| m.2.drift.max).unwrap_or(first);
            out.push(format!(
                "The largest drift, {}, was the rate-{} machine {} of {} {} (its mean drift {:.1}).",
                worst.2.drift.max, worst.2.rate, worst.2.id, worst.0, worst.1.name, worst.2.drift.mean
            ));
            if summary.experiments.iter().any(|e| e.whole_seconds()) {
                out.push(
                    "Some logs carry whole-second times only (the reference implementation's): their drift is \
                     precise to one second, so a machine can look behind by what it did within that second."
                        .into(),
                );
            }
        }
        Section::Queue => {
            out.push(
                "Queue length is how many messages waited when a machine ticked. A machine whose queue keeps \
                 growing receives more messages than it can process at its rate; it grows by 10 or more over a run \
                 is counted as not keeping up."
                    .into(),
            );
            let growing: Vec<_> = machines.iter().filter(|m| !m.2.queue.keeps_up).collect();
            if growing.is_empty() {
                let top = machines.iter().max_by_key(|m| m.2.queue.max).unwrap_or(first);
                out.push(format!(
                    "Every queue kept up; the longest was {} messages (rate-{} machine {} of {} {}).",
                    top.2.queue.max, top.2.rate, top.2.id, top.0, top.1.name
                ));
            }
            for m in growing.iter().take(8) {
                out.push(format!(
                    "In {} {} the rate-{} machine {}'s queue grew to {} (about {:.2} messages per second) and \
                     ended at {}: it receives more than it can process.",
                    m.0, m.1.name, m.2.rate, m.2.id, m.2.queue.max, m.2.queue.growth_per_s, m.2.queue.last
                ));
            }
            if growing.len() > 8 {
                out.push(format!("{} more machines did not keep up (see the table).", growing.len() - 8));
            }
        }
        Section::Events => {
            out.push(
                "The event mix is how each machine spent its ticks: processing a message, sending, or an internal \
                 event. A machine only sends or does internal work when its queue is empty."
                    .into(),
            );
            for e in &summary.experiments {
                let ms: Vec<_> = e.runs.iter().flat_map(|r| &r.machines).collect();
                let ticks: u64 = ms.iter().map(|m| m.ticks).sum();
                let unprocessed: u64 = ms.iter().map(|m| m.messages_unprocessed).sum();
                out.push(format!(
                    "In {}: {:.0}% processed, {:.0}% sent, {:.0}% internal; {} messages sent, {} processed, {} \
                     left unprocessed at the end.",
                    e.name,
                    percent(ms.iter().map(|m| m.events.processed).sum(), ticks),
                    percent(ms.iter().map(|m| m.events.sent).sum(), ticks),
                    percent(ms.iter().map(|m| m.events.internal).sum(), ticks),
                    ms.iter().map(|m| m.messages_sent).sum::<u64>(),
                    ms.iter().map(|m| m.messages_processed).sum::<u64>(),
                    unprocessed
                ));
            }
        }
        Section::Comparison => {
            out.push(
                "Each dot is one machine of one run, placed by its drawn rate (a category) and coloured by \
                 experiment; nothing is pooled across machines. A smaller rate variation narrows the gap between \
                 fast and slow machines; fewer internal events mean more messages, so more catching up and, for a \
                 slow machine, a queue that can outgrow it."
                    .into(),
            );
            if let Some(base) = summary.experiments.first() {
                for e in summary.experiments.iter().skip(1) {
                    let get = |x: &crate::summary::ExperimentSummary, k: &str| x.metric(k).map_or(0.0, |s| s.mean);
                    out.push(format!(
                        "{} against {}: mean jump {:.2} vs {:.2}, largest drift {:.1} vs {:.1}, largest queue {:.1} \
                         vs {:.1} (means over runs).",
                        e.name,
                        base.name,
                        get(e, "jump_mean"),
                        get(base, "jump_mean"),
                        get(e, "drift_max"),
                        get(base, "drift_max"),
                        get(e, "queue_max"),
                        get(base, "queue_max")
                    ));
                }
            }
        }
    }
    out
}

fn render_html(
    summary: &Summary,
    figures: &[(Section, String, String)],
    diagrams: &[crate::diagrams::DiagramLink],
) -> String {
    let mut h = String::new();
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>clocklab analysis</title>\n<style>\n\
         body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\n\
         h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\n\
         table{border-collapse:collapse;font-size:.85em;margin:1em 0}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}\n\
         th{background:#f3f3f3}td.l,th.l{text-align:left}tr.bad td{background:#fff0f0}\n\
         td{white-space:nowrap}figure{margin:.5em 0}figure img{width:100%;border:1px solid #eee}\n\
         div.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:.5em}\n\
         p.note{color:#555;font-size:.9em}\n</style>\n</head>\n<body>\n<h1>clocklab analysis</h1>\n",
    );
    let n_runs: usize = summary.experiments.iter().map(|e| e.runs.len()).sum();
    let _ = writeln!(
        h,
        "<p>{} experiments, {} runs. Every statistic is per machine and run, keyed by the machine's drawn rate.</p>",
        summary.experiments.len(),
        n_runs
    );
    let sections = [
        (Section::Clock, "clock", "Logical clocks and ticks"),
        (Section::Jumps, "jumps", "Jump size per tick"),
        (Section::Drift, "drift", "Drift between machines"),
        (Section::Queue, "queue", "Queue length"),
        (Section::Events, "events", "Event mix and messages"),
        (Section::Comparison, "comparison", "Experiments compared"),
    ];
    h.push_str("<p>Sections: <a href=\"#machines\">per machine and run</a>");
    for (_, anchor, heading) in sections {
        let _ = write!(h, " · <a href=\"#{anchor}\">{}</a>", escape(&heading.to_lowercase()));
    }
    h.push_str("</p>\n<h2 id=\"machines\">Per machine and run</h2>\n");
    machine_table(&mut h, summary);
    for (section, anchor, heading) in sections {
        let _ = writeln!(h, "<h2 id=\"{anchor}\">{}</h2>", escape(heading));
        for sentence in sentences(summary, section) {
            let _ = writeln!(h, "<p>{}</p>", escape(&sentence));
        }
        if section == Section::Comparison {
            aggregate_table(&mut h, summary);
        }
        // Per-run figures are many and alike: two side by side.
        let grid = matches!(section, Section::Clock | Section::Drift | Section::Queue);
        h.push_str(if grid { "<div class=\"grid\">\n" } else { "<div>\n" });
        for (_, title, svg) in figures.iter().filter(|f| f.0 == section) {
            let _ = writeln!(
                h,
                "<figure><img alt=\"{t}\" title=\"{t}\" src=\"data:image/svg+xml;base64,{svg}\"></figure>",
                t = escape(title)
            );
        }
        h.push_str("</div>\n");
    }
    crate::diagrams::render_links(&mut h, diagrams, escape);
    if !summary.diagnostics.is_empty() {
        h.push_str(
            "<h2>Log problems</h2>\n<p>These lines were skipped or ignored; none stopped the analysis.</p>\n<ul>\n",
        );
        for d in &summary.diagnostics {
            let _ = writeln!(h, "<li>{}</li>", escape(&describe_diagnostics(d)));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn machine_table(h: &mut String, summary: &Summary) {
    h.push_str(
        "<table><tr><th class=\"l\">experiment</th><th class=\"l\">run</th><th>machine</th><th>rate</th>\
         <th>ticks / expected</th><th>clock / s</th><th>jump mean</th><th>p50</th><th>p99</th><th>max</th>\
         <th>drift mean</th><th>max</th><th>queue mean</th><th>p99</th><th>max</th><th>growth / s</th>\
         <th>processed / sent / internal</th><th>messages sent</th><th>unprocessed</th></tr>\n",
    );
    for e in &summary.experiments {
        for r in &e.runs {
            for m in &r.machines {
                let _ = writeln!(
                    h,
                    "<tr{}><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{} / {:.0}</td>\
                     <td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td>\
                     <td>{:.2}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{} / {} / {}</td><td>{}</td><td>{}</td></tr>",
                    if m.queue.keeps_up { "" } else { " class=\"bad\"" },
                    escape(&e.name),
                    escape(&r.name),
                    m.id,
                    m.rate,
                    m.ticks,
                    m.expected_ticks,
                    m.clock_rate_per_s,
                    m.jump.mean,
                    m.jump.p50,
                    m.jump.p99,
                    m.jump.max,
                    m.drift.mean,
                    m.drift.max,
                    m.queue.mean,
                    m.queue.p99,
                    m.queue.max,
                    m.queue.growth_per_s,
                    m.events.processed,
                    m.events.sent,
                    m.events.internal,
                    m.messages_sent,
                    m.messages_unprocessed
                );
            }
        }
    }
    h.push_str("</table>\n<p class=\"note\">Rows in red: the queue did not keep up.</p>\n");
}

fn aggregate_table(h: &mut String, summary: &Summary) {
    h.push_str("<table><tr><th class=\"l\">metric</th>");
    for e in &summary.experiments {
        let _ = write!(h, "<th>{}</th>", escape(&e.name));
    }
    h.push_str("</tr>\n");
    for (metric, meaning) in METRICS {
        let _ = write!(h, "<tr><td class=\"l\" title=\"{}\">{metric}</td>", escape(meaning));
        for e in &summary.experiments {
            match e.metric(metric) {
                Some(s) => {
                    let ci = s.ci95.map(|[l, u]| format!("<br>95% CI [{l:.2}, {u:.2}]")).unwrap_or_default();
                    let _ = write!(h, "<td>{:.3} ± {:.3}{ci}</td>", s.mean, s.sd);
                }
                None => h.push_str("<td></td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str(
        "</table>\n<p class=\"note\">Mean ± standard deviation across runs; the 95% confidence interval \
        (Student's t) where there are at least three runs. Hover a metric for how a run's value is computed.</p>\n",
    );
}
