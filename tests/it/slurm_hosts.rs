//! A run on a host reached through Slurm: a one-node cluster of the test's
//! own (munged with a key it makes, slurmctld and slurmd in the foreground
//! with a minimal `slurm.conf` on free loopback ports), and the built-in
//! `slurm` launcher (`srun --nodelist={host} -N1 -n1 --overlap clocklab`),
//! with this build's `clocklab` first on the `PATH` its jobs inherit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::hosts::{assert_checks, manifests, results_dir};
use crate::util::{clocklab, free_ports};

/// The name of the cluster's one node: what `{host}` becomes.
const NODE: &str = "clocklab-node";

/// munged, slurmctld and slurmd, stopped on drop (also when the test fails).
struct Cluster {
    daemons: Vec<Child>,
    /// The `slurm.conf` the cluster runs by (`SLURM_CONF` for its clients).
    conf: PathBuf,
}

impl Cluster {
    /// Whether this test can start a cluster: root (slurmd starts jobs as
    /// any user), and Slurm and munge (apt, `.ci/run` installs them).
    fn can_start(test: &str) -> bool {
        if !nix::unistd::Uid::effective().is_root() {
            println!("skipped {test}: slurmd needs root");
            return false;
        }
        for (tool, package) in [
            ("/usr/sbin/slurmctld", "slurm-wlm"),
            ("/usr/sbin/slurmd", "slurm-wlm"),
            ("/usr/bin/srun", "slurm-client"),
            ("/usr/sbin/munged", "munge"),
            ("/usr/sbin/mungekey", "munge"),
        ] {
            assert!(Path::new(tool).exists(), "{test}: {tool} is missing: apt-get install {package}");
        }
        true
    }

    /// Starts the cluster, its files under `dir`, and waits until a job runs.
    fn start(dir: &Path) -> Cluster {
        let key = dir.join("munge.key");
        let made = Command::new("mungekey").args(["-c", "-b", "1024", "-k"]).arg(&key).output().unwrap();
        assert!(made.status.success(), "mungekey: {}", String::from_utf8_lossy(&made.stderr));
        let socket = dir.join("munge.sock");
        let file = |name: &str| dir.join(name).display().to_string();
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).unwrap());
        let mut cluster = Cluster { daemons: Vec::new(), conf: dir.join("slurm.conf") };
        cluster.daemons.push(
            Command::new("munged")
                .args(["-F", "-f", &format!("--key-file={}", key.display())])
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--log-file={}", file("munged.log")))
                .arg(format!("--pid-file={}", file("munged.pid")))
                .arg(format!("--seed-file={}", file("munged.seed")))
                .stdout(Stdio::null())
                .stderr(log("munged.out"))
                .spawn()
                .unwrap(),
        );
        for folder in ["state", "spool"] {
            std::fs::create_dir_all(dir.join(folder)).unwrap();
        }
        let ports = free_ports(2);
        // One node that takes many one-task jobs side by side: its CPUs are
        // what this file says (`config_overrides`), not what the computer has.
        std::fs::write(
            &cluster.conf,
            format!(
                "ClusterName=clocklab\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={}\nSlurmdPort={}\n\
                 AuthType=auth/munge\nAuthInfo=socket={}\nCredType=cred/munge\nSlurmUser=root\nSlurmdUser=root\n\
                 StateSaveLocation={}\nSlurmdSpoolDir={}\nSlurmctldPidFile={}\nSlurmdPidFile={}\n\
                 ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSwitchType=switch/none\nMpiDefault=none\n\
                 ReturnToService=2\nSchedulerType=sched/builtin\nSelectType=select/cons_tres\n\
                 SelectTypeParameters=CR_Core\nSlurmdParameters=config_overrides\nJobCompType=jobcomp/none\n\
                 AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\n\
                 InactiveLimit=0\nKillWait=5\nMinJobAge=10\n\
                 NodeName={NODE} NodeAddr=127.0.0.1 CPUs=64 Sockets=1 CoresPerSocket=64 ThreadsPerCore=1 \
                 RealMemory=1000 State=UNKNOWN\n\
                 PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES\n",
                ports[0],
                ports[1],
                socket.display(),
                file("state"),
                file("spool"),
                file("slurmctld.pid"),
                file("slurmd.pid"),
            ),
        )
        .unwrap();
        let conf = cluster.conf.clone();
        cluster.daemons.push(
            Command::new("slurmctld")
                .args(["-D", "-i", "-f"])
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(log("slurmctld.log"))
                .spawn()
                .unwrap(),
        );
        cluster.daemons.push(
            Command::new("slurmd")
                .args(["-D", "-N", NODE, "-f"])
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(log("slurmd.log"))
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("srun")
                .args([&format!("--nodelist={NODE}"), "-N1", "-n1", "--overlap", "true"])
                .env("SLURM_CONF", &conf)
                .output()
                .unwrap();
            if out.status.success() {
                break cluster;
            }
            assert!(Instant::now() < deadline, "no job runs: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // slurmd and slurmctld first, then munged; each asked to stop, then killed.
        for child in self.daemons.iter_mut().rev() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn the_classic_experiment_runs_on_a_slurm_node_and_checks() {
    if !Cluster::can_start("the_classic_experiment_runs_on_a_slurm_node_and_checks") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path());
    let workdir = dir.path().join("work");
    let hosts = dir.path().join("hosts.toml");
    std::fs::write(
        &hosts,
        format!(
            "[[hosts]]\nname = \"{NODE}\"\naddress = \"127.0.0.5\"\nlauncher = \"slurm\"\nworkdir = \"{}\"\n",
            workdir.display()
        ),
    )
    .unwrap();
    // The built-in launcher runs `clocklab` from the PATH: this build's.
    let exe = Path::new(env!("CARGO_BIN_EXE_clocklab"));
    let path = format!("{}:{}", exe.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let out = dir.path().join("out");
    let output = clocklab()
        .args(["run", "--hosts", hosts.to_str().unwrap(), "--runs", "1", "--duration", "3"])
        .args(["--experiment", "baseline", "--experiment", "both", "--no-analyze", "--out", out.to_str().unwrap()])
        .env("SLURM_CONF", &cluster.conf)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = results_dir(&out);
    let runs = manifests(&results);
    assert_eq!(runs.len(), 2);
    for (run, manifest) in &runs {
        crate::hosts::assert_ran_as_planned(run, &manifest.status);
        let host = &manifest.hosts[0];
        assert_eq!(host.launcher, ["srun", &format!("--nodelist={NODE}"), "-N1", "-n1", "--overlap", "clocklab"]);
        assert_eq!(host.machines.len(), manifest.machines.len());
        assert!(manifest.machines.iter().all(|m| m.address.starts_with("127.0.0.5:")), "{:?}", manifest.machines);
        // The logs were written on the node's workdir and came home whole.
        for id in &host.machines {
            let name = format!("machine_{id}.log");
            let here = std::fs::read(run.join(&name)).unwrap();
            let there = std::fs::read_dir(&workdir).unwrap().flatten().map(|e| e.path().join(&name));
            assert_eq!(there.filter(|p| p.exists() && std::fs::read(p).unwrap() == here).count(), 1, "{name}");
        }
    }
    assert_checks(&results);
}
