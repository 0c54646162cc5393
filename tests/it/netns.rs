//! Hosts for the tests of runs on several computers: Linux network
//! namespaces on a bridge of their own, each with its own address through a
//! veth pair, made by a test and removed when its guard drops (also when the
//! test fails). They need root; a test that is not root says so and skips.

use std::path::Path;
use std::process::Command;

/// Whether this test can make namespaces: root, and `ip` (iproute2, which
/// apt installs and `.ci/run` does). Not root: it says so and the test skips.
pub fn can_make_namespaces(test: &str) -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        println!("skipped {test}: making network namespaces needs root");
        return false;
    }
    assert!(
        Command::new("ip").arg("-V").output().is_ok_and(|out| out.status.success()),
        "{test}: `ip` is missing: apt-get install iproute2"
    );
    true
}

/// Runs `ip` with `args`; panics with its error if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Network namespaces `clocklab-<tag>-<i>` on the bridge `clbr-<tag>`, with
/// addresses `10.231.<subnet>.<i>`; removed on drop.
#[derive(Debug)]
pub struct Namespaces {
    bridge: String,
    /// The namespaces' names, in order.
    pub names: Vec<String>,
    /// Their addresses, in order.
    pub addresses: Vec<String>,
}

impl Namespaces {
    /// Makes `n` namespaces for test `tag` (at most 5 characters: interface
    /// names are short) on a subnet of their own.
    pub fn create(tag: &str, subnet: u8, n: usize) -> Namespaces {
        assert!(tag.len() <= 5, "short tags: interface names are at most 15 bytes");
        let bridge = format!("clbr-{tag}");
        let names: Vec<String> = (1..=n).map(|i| format!("clocklab-{tag}-{i}")).collect();
        let addresses: Vec<String> = (1..=n).map(|i| format!("10.231.{subnet}.{i}")).collect();
        let guard = Namespaces { bridge: bridge.clone(), names: names.clone(), addresses: addresses.clone() };
        // What a test that was killed left behind goes first.
        guard.remove();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["link", "set", &bridge, "up"]);
        for (i, (name, address)) in names.iter().zip(&addresses).enumerate() {
            let veth = format!("clv-{tag}{}", i + 1);
            ip(&["netns", "add", name]);
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", name]);
            ip(&["link", "set", &veth, "master", &bridge]);
            ip(&["link", "set", &veth, "up"]);
            ip(&["netns", "exec", name, "ip", "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
            ip(&["netns", "exec", name, "ip", "link", "set", "eth0", "up"]);
            ip(&["netns", "exec", name, "ip", "link", "set", "lo", "up"]);
        }
        guard
    }

    /// Writes a hosts file: one `[[hosts]]` per namespace, launched as
    /// `launcher(name)` says (a TOML value), with `workdir` under `dir`.
    pub fn hosts_file(&self, dir: &Path, launcher: impl Fn(&str) -> String) -> std::path::PathBuf {
        let mut text = String::new();
        for (name, address) in self.names.iter().zip(&self.addresses) {
            let workdir = dir.join(format!("host-{name}"));
            text.push_str(&format!(
                "[[hosts]]\nname = \"{name}\"\naddress = \"{address}\"\nlauncher = {}\nworkdir = \"{}\"\n\n",
                launcher(name),
                workdir.display()
            ));
        }
        let path = dir.join("hosts.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Whether process `pid` runs in one of these namespaces.
    pub fn contains(&self, pid: u32) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(inside) = std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino()) else { return false };
        self.names.iter().any(|name| std::fs::metadata(format!("/run/netns/{name}")).is_ok_and(|m| m.ino() == inside))
    }

    fn remove(&self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).output();
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        self.remove();
    }
}
