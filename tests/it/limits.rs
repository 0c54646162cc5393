//! Real runs within this computer's limits on tasks: in a cgroup whose
//! `pids.max` holds only some runs at once, a suite runs in batches, and a
//! run that cannot fit alone is refused before anything is written, naming
//! the limit. Needs root and a pids cgroup it can make (cgroup v1 or v2);
//! says so and skips where it cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

use clocklab_config::{RunManifest, layout};

/// A pids cgroup made for a test, removed at the end.
struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// Makes a cgroup limited to `max` tasks, if this machine lets us.
    fn new(max: u64) -> Option<PidsCgroup> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making a cgroup needs root");
            return None;
        }
        let name = format!("clocklab-test-{}-{max}", std::process::id());
        for parent in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
            let parent = Path::new(parent);
            if !parent.join("cgroup.procs").exists() {
                continue;
            }
            // On cgroup v2 the pids controller must be on for the children.
            let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+pids");
            let dir = parent.join(&name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            if std::fs::write(dir.join("pids.max"), max.to_string()).is_ok() {
                return Some(PidsCgroup { dir });
            }
            let _ = std::fs::remove_dir(&dir);
        }
        eprintln!("skipped: no pids cgroup can be made here");
        None
    }

    /// Runs `clocklab` with `args` inside the cgroup.
    fn clocklab(&self, args: &[&str]) -> std::process::Output {
        let procs = self.dir.join("cgroup.procs");
        let script = format!("echo $$ > {} && exec \"$0\" \"$@\"", procs.display());
        Command::new("sh").arg("-c").arg(script).arg(env!("CARGO_BIN_EXE_clocklab")).args(args).output().unwrap()
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Empty once its processes are gone.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[test]
fn a_suite_runs_in_batches_within_the_task_limit_and_a_run_too_large_is_refused() {
    // Room for three and a half runs of 12 machines, as the budget counts
    // them, beside the 512 tasks it keeps in reserve: three run at once, the
    // fourth waits.
    let run_tasks = clocklab_orchestrate::budget::Cost::of(12).tasks;
    let Some(cgroup) = PidsCgroup::new(512 + run_tasks * 7 / 2) else { return };
    let tmp = tempfile::tempdir().unwrap();

    // 60 machines need about 60 x (2 x 59 + 8) = 7,560 tasks: refused before
    // anything is written.
    let out = tmp.path().join("refused");
    let refused = cgroup.clocklab(&[
        "run",
        "--machines",
        "60",
        "--experiment",
        "baseline",
        "--runs",
        "1",
        "--duration",
        "1",
        "--no-analyze",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pids.max") && stderr.contains("60 machines"), "{stderr}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(), "nothing is written");

    // Four runs of 12 machines (about 360 tasks each) in about 1,080: three
    // at a time, the fourth after one of them ended.
    let out = tmp.path().join("batches");
    let batched = cgroup.clocklab(&[
        "run",
        "--machines",
        "12",
        "--runs",
        "1",
        "--duration",
        "1.5",
        "--no-analyze",
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(batched.status.success(), "{}", String::from_utf8_lossy(&batched.stderr));
    let results = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let mut spans: Vec<(String, String)> = Vec::new();
    for experiment in ["baseline", "small-rate-variation", "fewer-internal-events", "both"] {
        let dir = layout::run_dir(&results, experiment, 1);
        let manifest = RunManifest::from_json(&std::fs::read_to_string(layout::manifest_path(&dir)).unwrap()).unwrap();
        assert!(manifest.status.ran_to_the_end(), "{experiment}: {:?}", manifest.status);
        spans.push((manifest.started_at, manifest.ended_at));
    }
    spans.sort();
    let (last_start, _) = spans.last().unwrap().clone();
    assert!(
        spans[..3].iter().any(|(_, ended)| *ended <= last_start),
        "the fourth run waited for one of the first three to end: {spans:#?}"
    );
}
