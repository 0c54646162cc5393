//! `clocklab calibrate`: the same plans in both runtimes, compared machine by
//! machine.

use crate::util::run_clocklab;

#[test]
fn calibration_pairs_every_machine_and_writes_its_comparison() {
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().to_str().unwrap();
    let output = run_clocklab(&["calibrate", "--runs", "1", "--duration", "2", "--seed", "7", "--out", out_arg]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("== all machines: 3 machine pairs, 3 with equal tick counts"), "{stdout}");
    // Each runtime's tables are headed by whose they are, real first.
    let real = stdout.find("-- real processes over TCP (").expect("the real runs' tables are named");
    let sim = stdout.find("-- the simulator (").expect("the simulated runs' tables are named");
    assert!(
        real < sim && stdout[real..sim].contains("== baseline") && stdout[sim..].contains("== baseline"),
        "{stdout}"
    );

    let folder = std::fs::read_dir(out.path()).unwrap().next().unwrap().unwrap().path();
    assert!(folder.file_name().unwrap().to_str().unwrap().ends_with("-calibration"));
    for runtime in ["real", "sim"] {
        let run = folder.join(runtime).join("baseline/run_1");
        let logs = clocklab_config::layout::read_run(&run, clocklab_log::LogFormat::Text).unwrap();
        assert_eq!(serde_json::to_value(logs.manifest.runtime).unwrap(), runtime);
        let report = logs.check(1);
        assert!(report.is_ok(), "{runtime}: {:?}", report.violations);
        // A report for each runtime, as `clocklab run` writes one.
        let html = folder.join(runtime).join("analysis/report.html");
        assert!(html.exists(), "{}", html.display());
        assert!(stdout.contains(&format!("report: {}", html.display())), "{stdout}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("calibration.json")).unwrap()).unwrap();
    assert_eq!(json["comparison"]["overall"]["n_machines"], 3);
    assert_eq!(json["comparison"]["unmatched"], 0);
    // The twins drew the same rates and made the same ticks; the event mix of
    // each rate can only differ by the few ticks where timing decided.
    assert_eq!(json["comparison"]["overall"]["same_ticks"], 3);
    let tv = json["comparison"]["overall"]["jump_tv_distance"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&tv), "{tv}");
    let agreement = &json["agreement"];
    assert_eq!(agreement["runs"], 1);
    assert!(agreement["identical_ticks"].as_u64().unwrap() <= agreement["ticks"].as_u64().unwrap());
}
