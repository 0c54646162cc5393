//! The space-time diagram pages in a real browser: each loads without a
//! console error, reports its run's counts, honours a `#m…e…` selection and
//! a click with the cone that the checker's happens-before gives, and
//! switches axis from the keyboard. Needs Chromium (see `browser.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clocklab_causal::{BuildOptions, EventRef, RunGraph, RunSource};

use crate::browser::{self, Page, file_url};
use crate::util::run_clocklab;

/// A simulated suite of two runs with every clock, analysed: returns the
/// results folder.
fn simulated_results(root: &Path) -> PathBuf {
    let out = root.join("results");
    let args = ["run", "--runtime", "sim", "--clocks", "lamport,vector,hlc", "--seed", "3", "--experiment", "baseline"];
    let output =
        run_clocklab(&[&args[..], &["--runs", "2", "--duration", "30", "--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path()
}

fn wait_ready(page: &Page) {
    page.wait_until(
        "document.body.dataset.state === 'ready' || document.body.dataset.state === 'error'",
        Duration::from_secs(30),
    );
    assert_eq!(page.body_data("state").as_deref(), Some("ready"), "{:?}", page.problems());
}

/// Selects `at` through the address and checks the cone the page reports.
fn assert_selection(page: &Page, source: &RunSource, graph: &RunGraph, at: EventRef) {
    let id = graph.event_id(at).to_string();
    page.eval(&format!("location.hash = '{id}'"));
    page.wait_until(&format!("document.body.dataset.selected === '{id}'"), Duration::from_secs(10));
    assert_cone(page, source, graph, at);
}

/// The page's selection is `at`, with the past and future happens-before
/// gives, and the panel shows its line of the log as it is in the file.
fn assert_cone(page: &Page, source: &RunSource, graph: &RunGraph, at: EventRef) {
    let id = graph.event_id(at).to_string();
    assert_eq!(page.body_data("selected").as_deref(), Some(id.as_str()));
    let cone = graph.cone(at);
    assert_eq!(page.body_data("past"), Some(cone.past_size().to_string()), "{id}");
    assert_eq!(page.body_data("future"), Some(graph.future_size(&cone).to_string()), "{id}");
    assert_eq!(page.text_of("past-size").replace(',', ""), cone.past_size().to_string(), "{id}");
    assert_eq!(page.text_of("future-size").replace(',', ""), graph.future_size(&cone).to_string(), "{id}");
    if graph.row(at).tick {
        let replayed: Vec<String> = graph.replayed(at).unwrap().iter().map(u64::to_string).collect();
        assert_eq!(
            page.body_data("hbVector"),
            Some(replayed.join(",")),
            "{id}: the page's vector is not the replayed one"
        );
    }
    // The panel shows the event's own line of the log, byte for byte.
    page.wait_until(&format!("document.body.dataset.detail === '{id}'"), Duration::from_secs(10));
    let line = page.text_of("sel-line");
    let row = graph.row(at);
    let machine = graph.machines[at.machine as usize].id;
    assert_eq!(line, source.read_lines(machine, &[row.line_no])[&row.line_no], "{id}");
    assert!(line.contains(&format!("Logical Clock: {} |", row.lamport)), "{id}: {line}");
    assert_eq!(page.text_of("sel-file"), format!("machine {machine}'s log, line {}", row.line_no), "{id}");
}

#[test]
fn every_diagram_page_loads_reports_its_counts_and_honours_a_selection() {
    let Some(chromium) = browser::launch() else { return };
    let root = tempfile::tempdir().unwrap();
    let results = simulated_results(root.path());
    let report = std::fs::read_to_string(results.join("analysis/report.html")).unwrap();
    for run in ["run_1", "run_2"] {
        let href = format!("diagrams/baseline/{run}.html");
        assert!(report.contains(&format!("href=\"{href}\"")), "report.html links {href}");
        let source = RunSource::open(&results.join("baseline").join(run)).unwrap();
        let graph = source.graph(BuildOptions { replay: true }).unwrap();
        let page = chromium.open(&file_url(&results.join("analysis").join(&href)));
        wait_ready(&page);
        assert_eq!(page.body_data("events"), Some(graph.n_events().to_string()));
        assert_eq!(page.body_data("messages"), Some(graph.messages.len().to_string()));
        // Shown with thousands separators; the body's data attributes hold the plain numbers.
        assert_eq!(page.text_of("n-events").replace(',', ""), graph.n_events().to_string());
        assert_eq!(page.text_of("n-messages").replace(',', ""), graph.messages.len().to_string());
        assert_eq!(page.text_of("n-ticks").replace(',', ""), graph.n_ticks().to_string());
        // Events across the run: a machine's first line, a receive, a send, the last line.
        let receive = graph.messages.iter().find_map(|m| m.receive).unwrap();
        let send = graph.messages[graph.messages.len() / 2].send;
        let last = *graph.order.last().unwrap();
        for at in [EventRef { machine: 1, pos: 0 }, receive, send, graph.order[graph.order.len() / 3], last] {
            assert_selection(&page, &source, &graph, at);
        }
        // A name that is no event says so.
        page.eval("location.hash = 'm9e1'");
        page.wait_until("document.body.dataset.selected === 'none'", Duration::from_secs(10));
        assert!(page.text_of("sel-none").contains("There is no event m9e1"), "{}", page.text_of("sel-none"));
        assert!(page.problems().is_empty(), "{run}: {:?}", page.problems());
    }
    // A long run: its detail comes in several chunks per machine, each
    // decoded alone; the panel shows each event's own line and vector.
    let out = root.path().join("long");
    let args = ["run", "--runtime", "sim", "--clocks", "lamport,vector,hlc", "--seed", "8", "--experiment", "baseline"];
    let extra = ["--runs", "1", "--duration", "3000", "--no-analyze", "--out", out.to_str().unwrap()];
    let output = run_clocklab(&[&args[..], &extra[..]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let run_dir = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path().join("baseline/run_1");
    let html = root.path().join("long.html");
    let output = run_clocklab(&["diagram", run_dir.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let source = RunSource::open(&run_dir).unwrap();
    let graph = source.graph(BuildOptions { replay: true }).unwrap();
    let longest = (0..graph.machines.len()).max_by_key(|&m| graph.machines[m].rows.len()).unwrap() as u32;
    let n = graph.machines[longest as usize].rows.len() as u32;
    assert!(n > 3 * 4096, "the run is long enough for several chunks: {n}");
    let page = chromium.open(&file_url(&html));
    wait_ready(&page);
    for pos in [4095, 4096, 9000, n - 1] {
        let at = EventRef { machine: longest, pos };
        assert_selection(&page, &source, &graph, at);
        let vector: Vec<String> = graph.vector(at).unwrap().iter().map(u64::to_string).collect();
        let table = page.text_of("clock-table");
        assert!(
            table.contains(&format!("vector clock (log)[{}]", vector.join(", "))),
            "{}: {table}",
            graph.event_id(at)
        );
    }
    assert!(page.problems().is_empty(), "{:?}", page.problems());
}

#[test]
fn clicking_an_event_selects_it_and_keys_move_and_switch_the_view() {
    let Some(chromium) = browser::launch() else { return };
    let root = tempfile::tempdir().unwrap();
    let results = simulated_results(root.path());
    let run_dir = results.join("baseline/run_1");
    let source = RunSource::open(&run_dir).unwrap();
    let graph = source.graph(BuildOptions { replay: true }).unwrap();
    // Open the page on a processed message: the view zooms in to single events around it.
    let receive = graph.messages.iter().filter_map(|m| m.receive).nth(10).unwrap();
    let id = graph.event_id(receive);
    let page = chromium.open(&format!("{}#{id}", file_url(&results.join("analysis/diagrams/baseline/run_1.html"))));
    wait_ready(&page);
    page.wait_until(&format!("document.body.dataset.selected === '{id}'"), Duration::from_secs(10));
    assert_eq!(page.body_data("mode").as_deref(), Some("detail"));
    // Click the nearest event of another machine that is in view.
    let time_us = graph.row(receive).time_us;
    let other = (receive.machine + 1) % graph.machines.len() as u32;
    let target = (0..graph.machines[other as usize].rows.len() as u32)
        .map(|pos| EventRef { machine: other, pos })
        .filter(|&at| graph.row(at).tick)
        .min_by_key(|&at| (graph.row(at).time_us - time_us).abs())
        .unwrap();
    let target_id = graph.event_id(target);
    let position = page.eval(&format!("clocklabDiagram.positionOf('{target_id}')"));
    assert_eq!(position["inView"], serde_json::Value::Bool(true), "{position}");
    page.click(position["x"].as_f64().unwrap(), position["y"].as_f64().unwrap());
    page.wait_until(&format!("document.body.dataset.selected === '{target_id}'"), Duration::from_secs(10));
    assert_cone(&page, &source, &graph, target);
    assert_eq!(page.eval("location.hash").as_str(), Some(format!("#{target_id}").as_str()));
    // `]` selects the next event of the machine; `L` switches to Lamport time.
    page.press("]");
    let next = EventRef { machine: target.machine, pos: target.pos + 1 };
    page.wait_until(&format!("document.body.dataset.selected === '{}'", graph.event_id(next)), Duration::from_secs(10));
    assert_cone(&page, &source, &graph, next);
    // The wheel zooms in around the pointer; a drag pans and selects nothing.
    let before = page.eval("clocklabDiagram.view()");
    let span = |view: &serde_json::Value| view["x1"].as_f64().unwrap() - view["x0"].as_f64().unwrap();
    page.mouse("mouseWheel", 500.0, 300.0, -400.0);
    page.wait_until(
        &format!("clocklabDiagram.view().x1 - clocklabDiagram.view().x0 < {}", span(&before) * 0.8),
        Duration::from_secs(10),
    );
    let zoomed = page.eval("clocklabDiagram.view()");
    page.mouse("mousePressed", 400.0, 300.0, 0.0);
    page.mouse("mouseMoved", 500.0, 300.0, 0.0);
    page.mouse("mouseMoved", 600.0, 300.0, 0.0);
    page.mouse("mouseReleased", 600.0, 300.0, 0.0);
    page.wait_until(
        &format!("clocklabDiagram.view().x0 < {}", zoomed["x0"].as_f64().unwrap()),
        Duration::from_secs(10),
    );
    let dragged = page.eval("clocklabDiagram.view()");
    assert!((span(&dragged) - span(&zoomed)).abs() < 1e-6 * span(&zoomed), "a drag keeps the zoom");
    assert_eq!(page.body_data("selected"), Some(graph.event_id(next).to_string()), "a drag selects nothing");
    page.press("l");
    page.wait_until("clocklabDiagram.view().axis === 'lamport'", Duration::from_secs(10));
    page.press("0");
    page.press("+");
    page.press("ArrowRight");
    page.press("Escape");
    page.wait_until("document.body.dataset.selected === ''", Duration::from_secs(10));
    assert!(page.problems().is_empty(), "{:?}", page.problems());
}

#[test]
fn a_page_of_the_reference_logs_loads_without_messages() {
    let Some(chromium) = browser::launch() else { return };
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("exp_1/run_1");
    std::fs::create_dir_all(&run).unwrap();
    let line = |id: u32, event: &str, second: u32, clock: u64| {
        format!(
            "{id}> Event: {event} | System Time: 2025-02-28 17:42:{second:02} | Logical Clock: {clock} | Queue Length: 0\n"
        )
    };
    for id in [1u32, 2] {
        let mut text = line(id, &format!("Initialized on 1234{id} with clock rate 2"), 3, 0);
        text += &line(id, &format!("Connected to machine {} on port 1234{}", 3 - id, 3 - id), 3, 0);
        for k in 1..=6u64 {
            let event =
                if k % 3 == 0 { format!("Sent message to machine {}", 3 - id) } else { "Internal event".into() };
            text += &line(id, &event, 3 + k as u32 / 2, k);
        }
        text += &line(id, "Processed message", 7, 9);
        text += &line(id, "Stopped", 8, 9);
        std::fs::write(run.join(format!("process_{id}.log")), text).unwrap();
    }
    let html = root.path().join("diagram.html");
    let output = run_clocklab(&["diagram", run.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let page = chromium.open(&format!("{}#m2e9", file_url(&html)));
    wait_ready(&page);
    assert_eq!(page.body_data("events").as_deref(), Some("20"));
    assert_eq!(page.body_data("messages").as_deref(), Some("4"));
    assert!(page.text_of("summary").contains("name no sender"), "{}", page.text_of("summary"));
    // Without pairing, the cone follows program order only.
    page.wait_until("document.body.dataset.selected === 'm2e9'", Duration::from_secs(10));
    assert_eq!(page.body_data("past").as_deref(), Some("8"));
    assert_eq!(page.body_data("future").as_deref(), Some("1"));
    // Its line, in the reference's own wording, whole.
    page.wait_until("document.body.dataset.detail === 'm2e9'", Duration::from_secs(10));
    assert_eq!(
        page.text_of("sel-line"),
        "2> Event: Processed message | System Time: 2025-02-28 17:42:07 | Logical Clock: 9 | Queue Length: 0"
    );
    assert!(page.problems().is_empty(), "{:?}", page.problems());
}

#[test]
fn a_static_svg_draws_every_event_of_its_window() {
    let root = tempfile::tempdir().unwrap();
    let results = simulated_results(root.path());
    let run_dir = results.join("baseline/run_1");
    let source = RunSource::open(&run_dir).unwrap();
    let graph = source.graph(BuildOptions::default()).unwrap();
    let origin = clocklab_causal::diagram::origin_us(&source, &graph);
    let svg = root.path().join("window.svg");
    let output = run_clocklab(&[
        "diagram",
        run_dir.to_str().unwrap(),
        "--from",
        "5",
        "--to",
        "12.5",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(&svg).unwrap();
    // One mark, with a title naming the event, for each event of the window
    // (an unprocessed line has no mark: its arrow ends at Stopped).
    let in_window: Vec<String> = graph
        .order
        .iter()
        .filter(|&&at| {
            let seconds = (graph.row(at).time_us - origin) as f64 / 1e6;
            (5.0..=12.5).contains(&seconds) && graph.row(at).kind != clocklab_causal::Kind::Unprocessed
        })
        .map(|&at| format!("<title>{} ", graph.event_id(at)))
        .collect();
    assert!(!in_window.is_empty());
    for title in &in_window {
        assert!(text.contains(title.as_str()), "{title}");
    }
    assert_eq!(text.matches("<title>m").count(), in_window.len());
    assert!(text.contains("marker-end=\"url(#head)\""), "messages are arrows");
    // A browser reads it as SVG.
    if let Some(chromium) = browser::launch() {
        let page = chromium.open(&file_url(&svg));
        assert_eq!(page.eval("document.documentElement.tagName"), "svg");
        assert_eq!(page.eval("document.querySelectorAll('g > title').length"), in_window.len());
        assert!(page.problems().is_empty(), "{:?}", page.problems());
    }
    // An empty window, or one that holds nothing, is bad input.
    for (from, to) in [("3", "2"), ("500", "600")] {
        let output = run_clocklab(&["diagram", run_dir.to_str().unwrap(), "--from", from, "--to", to]);
        assert_eq!(output.status.code(), Some(2), "{from}..{to}");
    }
}

#[test]
fn a_run_that_cannot_be_read_has_no_diagram_and_the_analysis_goes_on() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("results");
    let args =
        ["run", "--runtime", "sim", "--experiment", "baseline", "--runs", "2", "--duration", "5", "--no-analyze"];
    let output = run_clocklab(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    std::fs::write(results.join("baseline/run_2/manifest.json"), "{ broken").unwrap();
    let output = run_clocklab(&["analyze", results.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = std::fs::read_to_string(results.join("analysis/report.html")).unwrap();
    assert!(report.contains("href=\"diagrams/baseline/run_1.html\""));
    assert!(report.contains("run_2 (no diagram: "), "the report says why run_2 has no diagram");
    assert!(results.join("analysis/diagrams/baseline/run_1.html").is_file());
    assert!(!results.join("analysis/diagrams/baseline/run_2.html").exists());
}

/// The analysis writes each run's page as it reads the run; the page is the
/// one `clocklab diagram` writes of the run alone, byte for byte: for
/// clocklab's logs, for the reference's, and for a run with a log that the
/// analysis leaves out (one its manifest does not list), whose page is
/// drawn from its folder after the analysis.
#[test]
fn the_analysis_writes_the_pages_clocklab_diagram_writes() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("results");
    let args = ["run", "--runtime", "sim", "--clocks", "lamport,vector,hlc", "--experiment", "baseline"];
    let extra = ["--runs", "3", "--duration", "20", "--no-analyze", "--out", out.to_str().unwrap()];
    let output = run_clocklab(&[&args[..], &extra[..]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    // A log the manifest does not list: the analysis ignores it, the page draws it.
    let run_3 = results.join("baseline/run_3");
    let stray = std::fs::read_to_string(run_3.join("machine_1.log")).unwrap().replace("1> Event:", "7> Event:");
    std::fs::write(run_3.join("machine_7.log"), stray).unwrap();
    // The reference's logs, in their own wording.
    let reference = root.path().join("reference/exp/run_1");
    std::fs::create_dir_all(&reference).unwrap();
    for id in [1u32, 2] {
        let mut text = format!(
            "{id}> Event: Initialized on 1234{id} with clock rate 2 | System Time: 2025-02-28 17:42:03 | Logical Clock: 0 | Queue Length: 0\n"
        );
        for k in 1..=9u64 {
            let event = if k % 3 == 0 { "Sent message to machine 1".to_string() } else { "Processed message".into() };
            text += &format!(
                "{id}> Event: {event} | System Time: 2025-02-28 17:42:{:02} | Logical Clock: {k} | Queue Length: {}\n",
                3 + k,
                k % 4
            );
        }
        std::fs::write(reference.join(format!("process_{id}.log")), text).unwrap();
    }
    for (folder, runs) in [
        (results.clone(), vec!["baseline/run_1", "baseline/run_2", "baseline/run_3"]),
        (root.path().join("reference"), vec!["exp/run_1"]),
    ] {
        let output = run_clocklab(&["analyze", folder.to_str().unwrap()]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        for run in runs {
            let alone = root.path().join("alone.html");
            let run_dir = folder.join(run);
            let output = run_clocklab(&["diagram", run_dir.to_str().unwrap(), "--html", alone.to_str().unwrap()]);
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            let analysed = std::fs::read(folder.join("analysis/diagrams").join(format!("{run}.html"))).unwrap();
            assert!(
                analysed == std::fs::read(&alone).unwrap(),
                "{run}: the analysis' page differs from clocklab diagram's"
            );
        }
    }
    let page = std::fs::read_to_string(results.join("analysis/diagrams/baseline/run_3.html")).unwrap();
    assert!(page.contains("\"id\":7"), "the page of run_3 draws the log its manifest does not list");
}

/// Every 64-bit number on a page is exact: a seed past 2^53, and instants
/// of a simulated calendar in the year 9000, whose microseconds are too.
#[test]
fn numbers_past_two_to_the_53_show_exactly() {
    let Some(chromium) = browser::launch() else { return };
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("late.toml");
    let seed: u64 = 16_125_340_619_037_971_083;
    // 9000-01-01T00:00:00Z.
    let epoch_us: i64 = 221_845_392_000_000_000;
    assert!(seed > 1 << 53 && epoch_us > 1 << 53);
    std::fs::write(
        &config,
        format!(
            "runtime = \"sim\"\nclocks = [\"lamport\", \"hlc\"]\n[sim]\nepoch_us = {epoch_us}\n\
             [[experiments]]\nname = \"late\"\nruns = 1\nduration = 5\n"
        ),
    )
    .unwrap();
    let out = root.path().join("results");
    // A TOML integer stops at 2^63: the seed comes from the command line.
    let args =
        ["run", "--config", config.to_str().unwrap(), "--seed", &seed.to_string(), "--out", out.to_str().unwrap()];
    let output = run_clocklab(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let graph = RunSource::open(&results.join("late/run_1")).unwrap().graph(BuildOptions { replay: false }).unwrap();
    let page = chromium.open(&file_url(&results.join("analysis/diagrams/late/run_1.html")));
    wait_ready(&page);
    let header = page.text_of("n-messages-detail");
    assert!(header.contains(&format!("seed {seed}")), "{header}");
    // An event's HLC, to the microsecond, in the panel's tooltip.
    let at = EventRef { machine: 1, pos: 5 };
    let hlc = graph.hlc(at).expect("the run keeps HLC");
    assert!(hlc.l_us > 1 << 53);
    page.eval(&format!("location.hash = '{}'", graph.event_id(at)));
    page.wait_until(&format!("document.body.dataset.detail === '{}'", graph.event_id(at)), Duration::from_secs(10));
    let titles = page.eval("Array.from(document.querySelectorAll('#clock-table tr')).map((r) => r.title).join(' | ')");
    let titles = titles.as_str().unwrap();
    assert!(
        titles.contains(&format!("({} µs since the Unix epoch)", hlc.l_us)),
        "{} {hlc:?}: {titles}",
        graph.event_id(at)
    );
    assert!(page.problems().is_empty(), "{:?}", page.problems());
}
