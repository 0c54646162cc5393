//! A run on hosts reached through a real OpenSSH server: `sshd` started by
//! the test on a free loopback port with a host key it generates, a client
//! key it authorises, and an ssh configuration that names the hosts; the
//! machines listen on loopback addresses of their own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::hosts::{assert_checks, manifests, results_dir};
use crate::util::{free_ports, run_clocklab};

/// An `sshd` of the test's own, killed on drop (also when the test fails).
pub struct Sshd {
    child: Child,
    /// The ssh configuration that reaches it as `lab-<anything>`.
    pub config: PathBuf,
}

impl Sshd {
    /// Whether this test can start an sshd: root (it logs in as root), and
    /// the OpenSSH server and client (apt, `.ci/run` installs them).
    pub fn can_start(test: &str) -> bool {
        if !nix::unistd::Uid::effective().is_root() {
            println!("skipped {test}: an sshd that logs in as root needs root");
            return false;
        }
        for (tool, package) in [("/usr/sbin/sshd", "openssh-server"), ("/usr/bin/ssh-keygen", "openssh-client")] {
            assert!(Path::new(tool).exists(), "{test}: {tool} is missing: apt-get install {package}");
        }
        true
    }

    /// Starts sshd on a free port of 127.0.0.1, its files under `dir`.
    pub fn start(dir: &Path) -> Sshd {
        let keygen = |name: &str| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(name))
                .output()
                .unwrap();
            assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        };
        keygen("host_key");
        keygen("client_key");
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let port = free_ports(1)[0];
        let sshd_config = dir.join("sshd_config");
        std::fs::write(
            &sshd_config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin \
                 prohibit-password\nStrictModes no\nUsePAM no\nPidFile none\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n",
                dir.join("host_key").display(),
                dir.join("authorized_keys").display()
            ),
        )
        .unwrap();
        // sshd's privilege separation wants its empty folder.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&sshd_config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let config = dir.join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host lab-*\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {}\n  IdentitiesOnly \
                 yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n",
                dir.join("client_key").display()
            ),
        )
        .unwrap();
        let sshd = Sshd { child, config };
        // Ready once a login goes through.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("ssh").arg("-F").arg(&sshd.config).args(["lab-0", "true"]).output().unwrap();
            if out.status.success() {
                break sshd;
            }
            assert!(Instant::now() < deadline, "sshd does not let us in: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_classic_experiment_runs_on_hosts_reached_through_ssh_and_checks() {
    if !Sshd::can_start("the_classic_experiment_runs_on_hosts_reached_through_ssh_and_checks") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(dir.path());
    let exe = env!("CARGO_BIN_EXE_clocklab");
    let launcher = format!(r#"["ssh", "-F", "{}", "{{host}}", "{exe}"]"#, sshd.config.display());
    let mut text = String::new();
    for (name, address) in [("lab-1", "127.0.0.2"), ("lab-2", "127.0.0.3")] {
        let workdir = dir.path().join(format!("host-{name}"));
        text.push_str(&format!(
            "[[hosts]]\nname = \"{name}\"\naddress = \"{address}\"\nlauncher = {launcher}\nworkdir = \"{}\"\n\n",
            workdir.display()
        ));
    }
    let hosts = dir.path().join("hosts.toml");
    std::fs::write(&hosts, text).unwrap();

    let checked = run_clocklab(&["hosts", "check", hosts.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{said}{}", String::from_utf8_lossy(&checked.stderr));
    assert!(said.contains("lab-1: clocklab 0.1.0, port ") && said.contains("free on 127.0.0.3"), "{said}");

    let out = dir.path().join("out");
    let output = run_clocklab(&[
        "run",
        "--hosts",
        hosts.to_str().unwrap(),
        "--runs",
        "1",
        "--duration",
        "3",
        "--experiment",
        "baseline",
        "--experiment",
        "both",
        "--no-analyze",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = results_dir(&out);
    let runs = manifests(&results);
    assert_eq!(runs.len(), 2);
    for (run, manifest) in &runs {
        crate::hosts::assert_ran_as_planned(run, &manifest.status);
        assert_eq!(manifest.hosts.len(), 2);
        assert_eq!(manifest.hosts[0].launcher, ["ssh", "-F", sshd.config.to_str().unwrap(), "lab-1", exe]);
        for host in &manifest.hosts {
            for id in &host.machines {
                let machine = manifest.machines.iter().find(|m| m.id == *id).unwrap();
                assert!(machine.address.starts_with(&format!("{}:", host.address)), "{machine:?}");
            }
            // Each log came home through ssh, byte for byte the host's.
            let workdir = dir.path().join(format!("host-{}", host.name));
            for id in &host.machines {
                let name = format!("machine_{id}.log");
                let here = std::fs::read(run.join(&name)).unwrap();
                let there = std::fs::read_dir(&workdir).unwrap().flatten().map(|e| e.path().join(&name));
                assert_eq!(there.filter(|p| p.exists() && std::fs::read(p).unwrap() == here).count(), 1, "{name}");
            }
        }
    }
    assert_checks(&results);
}
