//! `clocklab export`: the vector clocks of a ShiViz export are clocklab's,
//! and the real ShiViz opens it (when `../shared` is there, as in CI); the
//! Perfetto trace has one flow per paired message; the tables pair every
//! message; the reference's logs read as the reference's analyzer needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clocklab_causal::graph::MessageStatus;
use clocklab_causal::{BuildOptions, RunGraph, RunSource};

use crate::browser::{self, file_url};
use crate::util::{REFERENCE_REGEX, run_clocklab};

/// A simulated results folder of two experiments and two runs each.
fn simulated(root: &Path, clocks: &str) -> PathBuf {
    let out = root.join("results");
    let args = ["run", "--runtime", "sim", "--clocks", clocks, "--seed", "5", "--runs", "2", "--duration", "20"];
    let experiments = ["--experiment", "baseline", "--experiment", "both", "--no-analyze"];
    let output = run_clocklab(&[&args[..], &experiments[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path()
}

/// The runs of a results folder, in the export's order, with their graphs.
fn graphs(results: &Path) -> Vec<(String, RunGraph)> {
    let mut out = Vec::new();
    for experiment in ["baseline", "both"] {
        for run in ["run_1", "run_2"] {
            let source = RunSource::open(&results.join(experiment).join(run)).unwrap();
            out.push((source.label.clone(), source.graph(BuildOptions { replay: true }).unwrap()));
        }
    }
    out
}

fn export(dir: &Path, format: &str, out: &Path) {
    let output = run_clocklab(&["export", dir.to_str().unwrap(), "--format", format, "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{format}: {}", String::from_utf8_lossy(&output.stderr));
}

/// ShiViz's executions: label → (host, event id, vector as host → value) per event.
type Executions = BTreeMap<String, Vec<(String, String, BTreeMap<String, u64>)>>;

/// Parses a ShiViz export the way ShiViz does: regex and delimiter from the
/// first two lines.
fn parse_shiviz(text: &str) -> Executions {
    let mut lines = text.lines();
    let parser = lines.next().unwrap().replace("(?<", "(?P<");
    let delimiter = lines.next().unwrap().replace("(?<", "(?P<");
    let parser = regex::Regex::new(&format!("^{parser}$")).unwrap();
    let delimiter = regex::Regex::new(&format!("^{delimiter}$")).unwrap();
    let mut executions = Executions::new();
    let mut current = None;
    for line in lines {
        if let Some(captures) = delimiter.captures(line) {
            current = Some(captures["trace"].to_string());
            executions.insert(captures["trace"].to_string(), Vec::new());
            continue;
        }
        let captures = parser.captures(line).unwrap_or_else(|| panic!("not a ShiViz event: {line}"));
        let clock: BTreeMap<String, u64> = serde_json::from_str(&captures["clock"]).unwrap();
        let id = captures["event"].split(' ').next().unwrap().to_string();
        executions.get_mut(current.as_ref().unwrap()).unwrap().push((captures["host"].to_string(), id, clock));
    }
    executions
}

/// Checks a ShiViz export against the graphs: one event per tick, each with
/// the vector clock happens-before gives, ShiViz's rules kept.
fn assert_shiviz_matches(executions: &Executions, graphs: &[(String, RunGraph)]) {
    let labels: std::collections::BTreeSet<&String> = graphs.iter().map(|(label, _)| label).collect();
    assert_eq!(executions.keys().collect::<std::collections::BTreeSet<_>>(), labels);
    for (label, graph) in graphs {
        let events = &executions[label];
        assert_eq!(events.len() as u64, graph.n_ticks(), "{label}");
        let mut own = BTreeMap::new();
        for (host, id, clock) in events {
            let at = graph.event_ref(id.parse_id()).unwrap();
            let want: BTreeMap<String, u64> = graph
                .machines
                .iter()
                .zip(graph.replayed(at).unwrap())
                .filter(|&(_, &value)| value > 0)
                .map(|(m, &value)| (format!("machine_{}", m.id), value))
                .collect();
            assert_eq!(clock, &want, "{label} {id}");
            // ShiViz's rules: the host is in its own clock, which counts its events from 1.
            let count = own.entry(host.clone()).or_insert(0u64);
            *count += 1;
            assert_eq!(clock.get(host), Some(&*count), "{label} {id}");
        }
    }
}

trait ParseId {
    fn parse_id(&self) -> clocklab_log::EventId;
}

impl ParseId for String {
    fn parse_id(&self) -> clocklab_log::EventId {
        let (machine, index) = self.trim_start_matches('m').split_once('e').unwrap();
        clocklab_log::EventId { machine: machine.parse().unwrap(), index: index.parse().unwrap() }
    }
}

#[test]
fn shiviz_vectors_are_clocklabs_whether_logged_or_replayed() {
    let root = tempfile::tempdir().unwrap();
    for clocks in ["lamport,vector,hlc", "lamport"] {
        let results = simulated(&root.path().join(clocks.replace(',', "-")), clocks);
        let file = root.path().join(format!("{}.shiviz", clocks.replace(',', "-")));
        export(&results, "shiviz", &file);
        let graphs = graphs(&results);
        let executions = parse_shiviz(&std::fs::read_to_string(&file).unwrap());
        assert_shiviz_matches(&executions, &graphs);
        if clocks.contains("vector") {
            // With vectors in the logs, those are what the export carries, and they are the replayed ones.
            for (label, graph) in &graphs {
                for (_, id, clock) in &executions[label] {
                    let logged = graph.vector(graph.event_ref(id.parse_id()).unwrap()).unwrap();
                    assert_eq!(clock.values().sum::<u64>(), logged.iter().sum::<u64>(), "{label} {id}");
                }
            }
        }
    }
}

#[test]
fn a_logged_vector_that_breaks_shivizs_rules_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let results = simulated(root.path(), "lamport,vector,hlc");
    let log = results.join("both/run_2/machine_2.log");
    let text = std::fs::read_to_string(&log).unwrap();
    // Machine 2's first tick claims its second own event.
    let line = text.lines().find(|l| l.contains("Internal event") || l.contains("Sent message")).unwrap();
    let vector = line.split("Vector Clock: ").nth(1).unwrap().split(']').next().unwrap().to_string() + "]";
    let mut values: Vec<u64> = vector.trim_matches(['[', ']']).split(", ").map(|v| v.parse().unwrap()).collect();
    values[1] += 1;
    let skipped = format!("[{}]", values.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
    std::fs::write(&log, text.replacen(&format!("Vector Clock: {vector}"), &format!("Vector Clock: {skipped}"), 1))
        .unwrap();
    let output = run_clocklab(&[
        "export",
        results.to_str().unwrap(),
        "--format",
        "shiviz",
        "--out",
        root.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("both/run_2: m2e") && stderr.contains("ShiViz needs the own component"), "{stderr}");
    // Nothing is left behind, neither the file nor its temporary.
    let left: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["results"], "a failed export left {left:?}");
}

/// The faults suite's crash-fresh run (machine 2 back with its clocks at
/// 0), simulated: its results folder and the run's graph.
fn crash_fresh(root: &Path) -> (PathBuf, RunGraph) {
    let out = root.join("results");
    let args = ["run", "--runtime", "sim", "--suite", "faults", "--experiment", "crash-fresh", "--seed", "5"];
    let output = run_clocklab(&[&args[..], &["--no-analyze", "--out", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let graph =
        RunSource::open(&results.join("crash-fresh/run_1")).unwrap().graph(BuildOptions { replay: true }).unwrap();
    (results, graph)
}

/// A fresh restart's logged vectors forget the machine's past; the export
/// makes each incarnation a host, with happens-before's vectors split among
/// them, ShiViz's rules kept for every host.
#[test]
fn each_incarnation_of_a_restarted_machine_is_a_host_of_its_own() {
    let root = tempfile::tempdir().unwrap();
    let (results, graph) = crash_fresh(root.path());
    let file = root.path().join("crash.shiviz");
    let output =
        run_clocklab(&["export", results.to_str().unwrap(), "--format", "shiviz", "--out", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let executions = parse_shiviz(&std::fs::read_to_string(&file).unwrap());
    let events = &executions["crash-fresh/run_1"];
    assert_eq!(events.len() as u64, graph.n_ticks());
    let hosts: std::collections::BTreeSet<&str> = events.iter().map(|(host, _, _)| host.as_str()).collect();
    assert_eq!(hosts.into_iter().collect::<Vec<_>>(), ["machine_1", "machine_2", "machine_2#2", "machine_3"]);
    let mut own = BTreeMap::new();
    for (host, id, clock) in events {
        let count = own.entry(host.clone()).or_insert(0u64);
        *count += 1;
        assert_eq!(clock.get(host), Some(&*count), "{id}: {host} counts its own events from 1");
        // Each machine's incarnations add up to what happens-before gives.
        let at = graph.event_ref(id.parse_id()).unwrap();
        for (machine, &value) in graph.machines.iter().zip(graph.replayed(at).unwrap()) {
            let name = format!("machine_{}", machine.id);
            let split: u64 =
                clock.iter().filter(|(h, _)| **h == name || h.starts_with(&format!("{name}#"))).map(|(_, v)| v).sum();
            assert_eq!(split, value, "{id}: {name}");
        }
    }
    // The second incarnation's first event has the first's whole past.
    let first = events.iter().find(|(host, _, _)| host == "machine_2#2").unwrap();
    assert_eq!(first.2.get("machine_2"), own.get("machine_2"), "{first:?}");
}

/// The real ShiViz, beside the repository in CI (`None`, said, elsewhere).
fn shiviz_page() -> Option<PathBuf> {
    let shiviz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/shiviz/index.html");
    if !shiviz.is_file() {
        eprintln!("skipped: ShiViz is not at {} (it is beside the repository in CI)", shiviz.display());
        return None;
    }
    Some(shiviz)
}

/// Opens `file` in the real ShiViz as a user does (it reads the regex and
/// the delimiter from the file's first two lines) and returns each view's
/// label, sorted hosts and number of nodes; no error may show.
fn shiviz_views(chromium: &browser::Chromium, shiviz: &Path, file: &Path) -> Vec<(String, Vec<String>, u64)> {
    let page = chromium.open(&file_url(shiviz));
    page.eval("$('.try').click()");
    page.tab.wait_for_element("#file").unwrap().set_input_files(&[file.to_str().unwrap()]).unwrap();
    page.wait_until(
        "$('.error').is(':visible') || (typeof SearchBar !== 'undefined' && !!SearchBar.getInstance().getGlobal())",
        Duration::from_secs(30),
    );
    assert_eq!(
        page.eval("$('.error').is(':visible')"),
        serde_json::Value::Bool(false),
        "{}",
        page.eval("$('#errorbox').text()")
    );
    let views = page.eval(
        "SearchBar.getInstance().getGlobal().getViews().map(v => [v.getLabel(), v.getModel().getHosts().slice().sort(), v.getModel().getNodes().length])",
    );
    assert!(page.problems().is_empty(), "{:?}", page.problems());
    serde_json::from_value(views).unwrap()
}

#[test]
fn shiviz_opens_the_export_with_every_host_and_event() {
    let Some(shiviz) = shiviz_page() else { return };
    let Some(chromium) = browser::launch() else { return };
    let root = tempfile::tempdir().unwrap();
    let results = simulated(root.path(), "lamport,vector,hlc");
    let file = root.path().join("export.shiviz");
    export(&results, "shiviz", &file);
    let want: Vec<(String, Vec<String>, u64)> = graphs(&results)
        .iter()
        .map(|(label, graph)| {
            (label.clone(), graph.machines.iter().map(|m| format!("machine_{}", m.id)).collect(), graph.n_ticks())
        })
        .collect();
    assert_eq!(shiviz_views(&chromium, &shiviz, &file), want);
}

/// The real ShiViz opens the export of a run with a fresh restart: the
/// crash is the second incarnation's host taking over.
#[test]
fn shiviz_opens_a_run_with_a_fresh_restart() {
    let Some(shiviz) = shiviz_page() else { return };
    let Some(chromium) = browser::launch() else { return };
    let root = tempfile::tempdir().unwrap();
    let (results, graph) = crash_fresh(root.path());
    let file = root.path().join("crash.shiviz");
    export(&results, "shiviz", &file);
    let hosts = ["machine_1", "machine_2", "machine_2#2", "machine_3"].map(String::from).to_vec();
    assert_eq!(shiviz_views(&chromium, &shiviz, &file), [("crash-fresh/run_1".to_string(), hosts, graph.n_ticks())]);
}

#[test]
fn perfetto_has_a_track_per_machine_and_one_flow_per_paired_message() {
    let root = tempfile::tempdir().unwrap();
    let results = simulated(root.path(), "lamport,vector,hlc");
    let file = root.path().join("trace.json");
    export(&results, "perfetto", &file);
    let trace: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let graphs = graphs(&results);
    for (pid, (label, graph)) in graphs.iter().enumerate() {
        let pid = pid as u64 + 1;
        let of_run: Vec<&serde_json::Value> = events.iter().filter(|e| e["pid"] == pid).collect();
        let process = of_run.iter().find(|e| e["name"] == "process_name").unwrap();
        assert_eq!(process["args"]["name"], label.as_str());
        let threads: Vec<u64> =
            of_run.iter().filter(|e| e["name"] == "thread_name").map(|e| e["tid"].as_u64().unwrap()).collect();
        assert_eq!(threads, graph.machines.iter().map(|m| u64::from(m.id)).collect::<Vec<_>>());
        let slices = of_run.iter().filter(|e| e["ph"] == "X").count() as u64;
        assert_eq!(slices, graph.n_events(), "{label}");
        // Every tick carries its clocks.
        let tick = of_run.iter().find(|e| e["cat"] == "tick").unwrap();
        for arg in ["lamport", "vector", "hlc", "physical_clock_us", "event"] {
            assert!(!tick["args"][arg].is_null(), "{label}: {arg} missing in {tick}");
        }
        let paired = graph
            .messages
            .iter()
            .filter(|m| matches!(m.status, MessageStatus::Processed | MessageStatus::Unprocessed))
            .count();
        let starts: Vec<u64> = of_run.iter().filter(|e| e["ph"] == "s").map(|e| e["id"].as_u64().unwrap()).collect();
        let ends: Vec<u64> = of_run.iter().filter(|e| e["ph"] == "f").map(|e| e["id"].as_u64().unwrap()).collect();
        assert_eq!(starts.len(), paired, "{label}: one flow per paired message");
        assert_eq!(starts, ends, "{label}: each flow starts and ends once");
        assert!(of_run.iter().filter(|e| e["ph"] == "f").all(|e| e["bp"] == "e"));
        // Each flow goes from its send (track and time) to its receive.
        let source = RunSource::open(&results.join(label)).unwrap();
        let origin = clocklab_causal::diagram::origin_us(&source, graph) as f64;
        let mut want: Vec<(u64, i64, u64, i64)> = graph
            .messages
            .iter()
            .filter_map(|m| {
                let receive = m.receive?;
                let (send_row, receive_row) = (graph.row(m.send), graph.row(receive));
                let id = |at: clocklab_causal::EventRef| u64::from(graph.machines[at.machine as usize].id);
                Some((id(m.send), send_row.time_us, id(receive), receive_row.time_us))
            })
            .collect();
        let flow = |ph: &str, id: u64| {
            let e = of_run.iter().find(|e| e["ph"] == ph && e["id"] == id).unwrap();
            (e["tid"].as_u64().unwrap(), (e["ts"].as_f64().unwrap() + origin) as i64)
        };
        let mut shown: Vec<(u64, i64, u64, i64)> = starts
            .iter()
            .map(|&id| {
                let ((from, sent), (to, received)) = (flow("s", id), flow("f", id));
                (from, sent, to, received)
            })
            .collect();
        want.sort_unstable();
        shown.sort_unstable();
        assert_eq!(shown, want, "{label}");
    }
}

#[test]
fn tables_give_every_event_its_pairing() {
    let root = tempfile::tempdir().unwrap();
    let results = simulated(root.path(), "lamport,vector,hlc");
    let run = results.join("baseline/run_1");
    let graph = RunSource::open(&run).unwrap().graph(BuildOptions::default()).unwrap();
    let jsonl = root.path().join("events.jsonl");
    export(&run, "jsonl", &jsonl);
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len() as u64, graph.n_events());
    let by_event: BTreeMap<String, &serde_json::Value> =
        rows.iter().map(|r| (r["event"].as_str().unwrap().to_string(), r)).collect();
    // Each message appears at its send and at its receive, naming the other.
    for message in &graph.messages {
        let send = graph.event_id(message.send).to_string();
        let name = format!("{send}-to-m{}", message.to);
        let send_row = by_event[&send];
        let slot = send_row["messages"].as_array().unwrap().iter().position(|m| m == name.as_str()).unwrap();
        if let Some(receive) = message.receive {
            let receive = graph.event_id(receive).to_string();
            assert_eq!(send_row["peer_events"][slot], receive.as_str());
            assert_eq!(by_event[&receive]["peer_events"][0], send.as_str());
            assert_eq!(by_event[&receive]["messages"][0], name.as_str());
        }
    }
    let csv_file = root.path().join("events.csv");
    export(&run, "csv", &csv_file);
    let mut reader = csv::Reader::from_path(&csv_file).unwrap();
    let headers = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (record, row) in records.iter().zip(&rows) {
        assert_eq!(&record[column("event")], row["event"].as_str().unwrap());
        let messages: Vec<&str> = row["messages"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        assert_eq!(&record[column("messages")], messages.join(" "));
    }
}

#[test]
fn the_reference_export_reads_as_the_reference_reads_its_own_logs() {
    let root = tempfile::tempdir().unwrap();
    let results = simulated(root.path(), "lamport");
    let out = root.path().join("reference");
    let output = run_clocklab(&["export", results.to_str().unwrap(), "--format", "reference"]);
    assert_eq!(output.status.code(), Some(2), "--out is required");
    let output =
        run_clocklab(&["export", results.to_str().unwrap(), "--format", "reference", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Into a folder that holds files (this export): refused before anything
    // is written, naming the folder.
    let before = folder_bytes(&out);
    let again =
        run_clocklab(&["export", results.to_str().unwrap(), "--format", "reference", "--out", out.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{said}");
    assert!(said.contains(&format!("{} is not empty", out.display())), "{said}");
    assert_eq!(folder_bytes(&out), before, "the folder is as it was");
    // The summary counts the messages it wrote: one Sent line each.
    let messages: usize = graphs(&results).iter().map(|(_, graph)| graph.messages.len()).sum();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!(", {messages} messages to ")), "{messages}: {stderr}");
    assert!(
        std::fs::read_dir(root.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.'))
    );
    let pattern = regex::Regex::new(REFERENCE_REGEX).unwrap();
    for (label, graph) in graphs(&results) {
        let dir = out.join(&label);
        for machine in &graph.machines {
            let text = std::fs::read_to_string(dir.join(format!("process_{}.log", machine.id))).unwrap();
            // What the reference's analyzer does: match each line, skip
            // Initialized, Connected and Stopped, count the rest as events
            // and those with "Sent" as messages.
            let mut events = 0u64;
            let mut sent = 0u64;
            for line in text.lines() {
                let captures = pattern.captures(line).unwrap_or_else(|| panic!("{label}: {line}"));
                let event = &captures[2];
                assert!(!event.contains("Unprocessed") && !event.contains("machines"), "{label}: {line}");
                if ["Initialized", "Connected", "Stopped"].iter().any(|skip| event.contains(skip)) {
                    continue;
                }
                events += 1;
                sent += u64::from(event.contains("Sent"));
            }
            let ticks = machine.rows.iter().filter(|r| r.tick).count() as u64;
            let messages = graph
                .messages
                .iter()
                .filter(|m| m.send.machine as usize == graph.machine_idx(machine.id).unwrap())
                .count() as u64;
            let sends = machine.rows.iter().filter(|r| r.kind == clocklab_causal::Kind::Sent).count() as u64;
            assert_eq!(sent, messages, "{label} machine {}: one Sent line per recipient", machine.id);
            // As in the reference's own logs: a send to two machines is two lines.
            assert_eq!(events, ticks + messages - sends, "{label} machine {}", machine.id);
        }
    }
    // clocklab's analysis reads the export back as the reference's logs and
    // finds the same ticks (a double send's two lines are one tick).
    for (label, graph) in graphs(&results) {
        let summary = clocklab_analyze::analyze(&out.join(&label)).unwrap();
        let run = &summary.experiments[0].runs[0];
        for (machine, events) in run.machines.iter().zip(&graph.machines) {
            assert_eq!(
                machine.ticks,
                events.rows.iter().filter(|r| r.tick).count() as u64,
                "{label} machine {}",
                machine.id
            );
        }
    }
}

/// Every file under `dir`, by path, with its bytes.
fn folder_bytes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    crate::util::files_under(dir).into_iter().map(|path| (path.clone(), std::fs::read(&path).unwrap())).collect()
}
