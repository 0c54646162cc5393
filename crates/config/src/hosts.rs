//! The hosts a real run's machines go to (`[[hosts]]`, in a configuration
//! or in a file of its own for `clocklab run --hosts`): each host's name,
//! the address its machines listen on, how many machines it takes, the
//! launcher that starts a process there, and where its logs are written.
//!
//! A launcher is a command that carries a process's stdin and stdout to the
//! host: `ssh host`, Slurm's `srun`, `kubectl exec -i`, `ip netns exec`. The
//! orchestrator appends the agent's arguments to it (`agent --machine <id>`);
//! everything else a machine needs goes over its stdin, never on a command
//! line.

use std::path::Path;

use clocklab_model::MachineId;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::limits;
use crate::source::{self, Field, Schema};

/// A launcher built in, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinLauncher {
    /// `ssh -o BatchMode=yes {host} clocklab`.
    Ssh,
    /// `srun --nodelist={host} -N1 -n1 --overlap clocklab`.
    Slurm,
    /// `kubectl exec -i {host} -- clocklab`.
    Kubectl,
    /// `ip netns exec {host} {clocklab}`: a network namespace of this computer.
    Netns,
}

impl BuiltinLauncher {
    /// The command, with `{host}` and `{clocklab}` still to fill in.
    pub fn template(self) -> Vec<String> {
        let words: &[&str] = match self {
            BuiltinLauncher::Ssh => &["ssh", "-o", "BatchMode=yes", "{host}", "clocklab"],
            BuiltinLauncher::Slurm => &["srun", "--nodelist={host}", "-N1", "-n1", "--overlap", "clocklab"],
            BuiltinLauncher::Kubectl => &["kubectl", "exec", "-i", "{host}", "--", "clocklab"],
            BuiltinLauncher::Netns => &["ip", "netns", "exec", "{host}", "{clocklab}"],
        };
        words.iter().map(|word| (*word).to_string()).collect()
    }
}

/// How a host's processes are started: a built-in launcher, or a command of
/// one's own (`["ssh", "-p", "2222", "{host}", "clocklab"]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LauncherSpec {
    /// `ssh`, `slurm`, `kubectl` or `netns`.
    Builtin(BuiltinLauncher),
    /// The command, word by word.
    Command(Vec<String>),
}

impl LauncherSpec {
    /// The command, with `{host}` and `{clocklab}` still to fill in.
    pub fn template(&self) -> Vec<String> {
        match self {
            LauncherSpec::Builtin(builtin) => builtin.template(),
            LauncherSpec::Command(words) => words.clone(),
        }
    }

    /// The command for `host`, `{clocklab}` being the executable at `clocklab`.
    pub fn command(&self, host: &str, clocklab: &Path) -> Vec<String> {
        let clocklab = clocklab.to_string_lossy();
        self.template().iter().map(|word| word.replace("{host}", host).replace("{clocklab}", &clocklab)).collect()
    }
}

/// One `[[hosts]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// What `{host}` becomes in the launcher.
    pub name: String,
    /// Where its machines listen and are reached.
    pub address: String,
    /// How many machines it takes at most; without it, the machines are
    /// spread evenly over the hosts that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machines: Option<u32>,
    /// How its processes are started.
    pub launcher: LauncherSpec,
    /// The folder its logs are written in, on the host (default: a folder
    /// under the host's temporary folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

/// The keys of a `[[hosts]]` entry.
pub(crate) const HOST_FIELDS: &[Field] = &[
    Field::leaf("name"),
    Field::leaf("address"),
    Field::leaf("machines"),
    Field::leaf("launcher"),
    Field::leaf("workdir"),
];

/// A list of hosts.
pub(crate) const HOSTS: Schema = Schema::ArrayOf(&Schema::Table(HOST_FIELDS));

/// A file of hosts alone (`clocklab run --hosts FILE`, `clocklab hosts check FILE`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsFile {
    hosts: Vec<HostSpec>,
}

const HOSTS_FILE_SCHEMA: Schema = Schema::Table(&[Field { name: "hosts", aliases: &[], schema: HOSTS }]);

/// Reads a file of hosts (`[[hosts]]` tables in TOML, or `{"hosts": [...]}`
/// in JSON) and checks every entry.
pub fn load_hosts(path: &Path) -> Result<Vec<HostSpec>, ConfigError> {
    let format = crate::file::format_of(path)?;
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_path_buf(), source })?;
    let file: HostsFile = source::parse(path, &text, format, &HOSTS_FILE_SCHEMA)?;
    check_hosts(&file.hosts, &path.display().to_string())?;
    Ok(file.hosts)
}

/// Checks every host's values against their ranges: names and addresses
/// given, unique names, a launcher that names a command, a workdir that is
/// an absolute path.
pub fn check_hosts(hosts: &[HostSpec], source: &str) -> Result<(), ConfigError> {
    let fail = |key: String, value: String, reason: &str| {
        Err(ConfigError::Invalid { file: source.to_string(), key, value, reason: reason.to_string() })
    };
    if hosts.len() > limits::HOSTS_MAX {
        return fail("hosts".into(), format!("({} hosts)", hosts.len()), "must list at most 1000 hosts");
    }
    for (idx, host) in hosts.iter().enumerate() {
        let key = |name: &str| format!("hosts[{idx}].{name}");
        let text_ok =
            |text: &str| !text.trim().is_empty() && text.len() <= limits::HOST_LEN_MAX && !text.contains('\n');
        if !text_ok(&host.name) {
            return fail(key("name"), format!("{:?}", host.name), "must name the host (1..=253 bytes, one line)");
        }
        if hosts[..idx].iter().any(|other| other.name == host.name) {
            return fail(key("name"), format!("{:?}", host.name), "is used twice: each host needs its own name");
        }
        if !text_ok(&host.address) {
            return fail(
                key("address"),
                format!("{:?}", host.address),
                "must be the address its machines listen on (1..=253 bytes)",
            );
        }
        if let Some(machines) = host.machines
            && !(1..=limits::REAL_MACHINES_MAX).contains(&machines)
        {
            return fail(
                key("machines"),
                machines.to_string(),
                "must be a number of machines in 1..=100 (each is a process of the host's, with two connections per peer)",
            );
        }
        let template = host.launcher.template();
        if template.is_empty() || template.len() > 64 || template[0].trim().is_empty() {
            return fail(
                key("launcher"),
                format!("{template:?}"),
                "must be ssh, slurm, kubectl, netns, or a command of 1..=64 words that starts with a program",
            );
        }
        if let Some(workdir) = &host.workdir
            && (!workdir.starts_with('/') || workdir.len() > 4096)
        {
            return fail(key("workdir"), format!("{workdir:?}"), "must be an absolute path on the host");
        }
    }
    Ok(())
}

/// How many machines each host takes in a run of `n_machines`: dealt one at
/// a time to the hosts in turn, skipping a host once it has its `machines`;
/// so hosts that do not say get an even share, and counts that add up to
/// `n_machines` are taken as they are. `None` if the hosts cannot take them.
pub fn share(hosts: &[HostSpec], n_machines: u32) -> Option<Vec<u32>> {
    let mut counts = vec![0u32; hosts.len()];
    let mut left = n_machines;
    while left > 0 {
        let before = left;
        for (count, host) in counts.iter_mut().zip(hosts) {
            if left > 0 && host.machines.is_none_or(|cap| *count < cap) {
                *count += 1;
                left -= 1;
            }
        }
        if left == before {
            return None;
        }
    }
    // The real runtime's limit holds on each host.
    counts.iter().all(|&count| count <= limits::REAL_MACHINES_MAX).then_some(counts)
}

/// Which machines each host runs, in host order: consecutive ids, as
/// [`share`] counts them. `None` if the hosts cannot take them.
pub fn place(hosts: &[HostSpec], n_machines: u32) -> Option<Vec<Vec<MachineId>>> {
    let counts = share(hosts, n_machines)?;
    let mut next: MachineId = 1;
    Some(
        counts
            .into_iter()
            .map(|count| {
                let ids = (next..next + count).collect();
                next += count;
                ids
            })
            .collect(),
    )
}

/// A host of a run, and the machines it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunHost {
    /// The host as configured.
    pub spec: HostSpec,
    /// The machines it runs, in order.
    pub machines: Vec<MachineId>,
}

/// The hosts of a run of `n_machines` and the machines each runs (a host
/// that takes none is left out); empty if there are no hosts, or if they
/// cannot take the machines (which validation refuses).
pub fn run_hosts(hosts: &[HostSpec], n_machines: u32) -> Vec<RunHost> {
    let Some(placed) = place(hosts, n_machines) else { return Vec::new() };
    hosts
        .iter()
        .zip(placed)
        .filter(|(_, machines)| !machines.is_empty())
        .map(|(spec, machines)| RunHost { spec: spec.clone(), machines })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, machines: Option<u32>) -> HostSpec {
        HostSpec {
            name: name.into(),
            address: "10.0.0.1".into(),
            machines,
            launcher: LauncherSpec::Builtin(BuiltinLauncher::Ssh),
            workdir: None,
        }
    }

    #[test]
    fn machines_are_spread_evenly_within_each_host_s_capacity() {
        let even = [host("a", None), host("b", None), host("c", None)];
        assert_eq!(place(&even, 7).unwrap(), [vec![1, 2, 3], vec![4, 5], vec![6, 7]]);
        let capped = [host("a", Some(1)), host("b", None)];
        assert_eq!(place(&capped, 5).unwrap(), [vec![1], vec![2, 3, 4, 5]]);
        let exact = [host("a", Some(10)), host("b", Some(2))];
        assert_eq!(share(&exact, 12).unwrap(), [10, 2]);
        assert_eq!(share(&exact, 13), None, "more machines than the hosts take");
        // Fewer machines than hosts: the last hosts take none.
        assert_eq!(share(&even, 2).unwrap(), [1, 1, 0]);
        // One host past the real runtime's limit.
        assert_eq!(share(&[host("a", None)], 101), None);
    }

    #[test]
    fn the_built_in_launchers_expand_as_documented() {
        let exe = Path::new("/opt/clocklab/bin/clocklab");
        let command = |builtin| LauncherSpec::Builtin(builtin).command("lab-07", exe);
        assert_eq!(command(BuiltinLauncher::Ssh), ["ssh", "-o", "BatchMode=yes", "lab-07", "clocklab"]);
        assert_eq!(
            command(BuiltinLauncher::Slurm),
            ["srun", "--nodelist=lab-07", "-N1", "-n1", "--overlap", "clocklab"]
        );
        assert_eq!(command(BuiltinLauncher::Kubectl), ["kubectl", "exec", "-i", "lab-07", "--", "clocklab"]);
        assert_eq!(command(BuiltinLauncher::Netns), ["ip", "netns", "exec", "lab-07", "/opt/clocklab/bin/clocklab"]);
        let own = LauncherSpec::Command(vec!["ssh".into(), "-p".into(), "2222".into(), "{host}".into(), "cl".into()]);
        assert_eq!(own.command("h", exe), ["ssh", "-p", "2222", "h", "cl"]);
    }

    #[test]
    fn a_hosts_file_is_read_and_its_values_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.toml");
        std::fs::write(
            &path,
            "[[hosts]]\nname = \"lab-07\"\naddress = \"10.0.0.7\"\nmachines = 10\nlauncher = \"ssh\"\n\
             workdir = \"/var/tmp/clocklab\"\n\n[[hosts]]\nname = \"lab-08\"\naddress = \"10.0.0.8\"\n\
             launcher = [\"ssh\", \"-p\", \"2222\", \"{host}\", \"clocklab\"]\n",
        )
        .unwrap();
        let hosts = load_hosts(&path).unwrap();
        assert_eq!(hosts[0].machines, Some(10));
        assert_eq!(hosts[0].launcher, LauncherSpec::Builtin(BuiltinLauncher::Ssh));
        assert_eq!(hosts[1].launcher.template()[2], "2222");
        let cases = [
            ("[[hosts]]\nname = \"a\"\naddress = \"x\"\nlauncher = \"rsh\"\n", "key `hosts[0].launcher`"),
            (
                "[[hosts]]\nname = \"a\"\naddress = \"x\"\nlauncher = \"ssh\"\n[[hosts]]\nname = \"a\"\naddress = \"y\"\nlauncher = \"ssh\"\n",
                "key `hosts[1].name` = \"a\": is used twice",
            ),
            ("[[hosts]]\nname = \"a\"\naddress = \"\"\nlauncher = \"ssh\"\n", "key `hosts[0].address` = \"\""),
            ("[[hosts]]\nname = \"a\"\naddress = \"x\"\nlauncher = []\n", "key `hosts[0].launcher` = []"),
            (
                "[[hosts]]\nname = \"a\"\naddress = \"x\"\nlauncher = \"ssh\"\nmachines = 0\n",
                "key `hosts[0].machines` = 0: must be a number of machines in 1..=100",
            ),
            (
                "[[hosts]]\nname = \"a\"\naddress = \"x\"\nlauncher = \"ssh\"\nworkdir = \"tmp\"\n",
                "key `hosts[0].workdir` = \"tmp\": must be an absolute path",
            ),
            ("[[hosts]]\nname = \"a\"\naddres = \"x\"\nlauncher = \"ssh\"\n", "unknown key `hosts[0].addres`"),
        ];
        for (text, want) in cases {
            std::fs::write(&path, text).unwrap();
            let message = load_hosts(&path).unwrap_err().to_string();
            assert!(message.contains(want), "{text}: {message}");
            assert!(message.starts_with(&path.display().to_string()), "{message}");
        }
    }

    #[test]
    fn the_kubernetes_recipe_s_hosts_are_its_stateful_set_s_pods_reached_with_kubectl_exec() {
        let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes");
        let hosts = load_hosts(&recipe.join("hosts.toml")).unwrap();
        let manifest = std::fs::read_to_string(recipe.join("clocklab-hosts.yaml")).unwrap();
        // A StatefulSet `clocklab` names its pods clocklab-0, clocklab-1, …: one host each.
        assert!(manifest.contains("kind: StatefulSet\nmetadata:\n  name: clocklab\n"), "{manifest}");
        assert!(manifest.contains(&format!("  replicas: {}\n", hosts.len())), "one pod per host");
        assert!(manifest.contains("command: [\"sleep\", \"infinity\"]"), "idle pods");
        let exe = Path::new("/usr/local/bin/clocklab");
        for (idx, host) in hosts.iter().enumerate() {
            let pod = format!("clocklab-{idx}");
            assert_eq!(host.name, pod);
            assert_eq!(
                host.launcher.command(&host.name, exe),
                ["kubectl", "exec", "-i", pod.as_str(), "--", "clocklab"]
            );
            assert!(host.address.parse::<std::net::IpAddr>().is_ok(), "{host:?}");
            assert!(manifest.contains(&format!("mountPath: {}\n", host.workdir.as_deref().unwrap())), "{host:?}");
        }
        assert_eq!(share(&hosts, 30).unwrap(), [10, 10, 10]);
    }
}
