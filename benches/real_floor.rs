//! The floor under the real runtime's cost: the least a machine process can
//! do for the same ticks and messages, measured on the same plan.
//!
//! Each machine is a process of its own, with the plan's rate and the
//! model's event draws (seeded as the model seeds them), a TCP connection
//! over loopback to every peer, and a file. Per tick it sleeps until the
//! tick is due, looks once at its peers' connections (one `epoll_wait`, one
//! read per connection with bytes), takes one waiting message or draws an
//! event and sends a 4-byte frame to the peers it names, and writes one
//! line to a file with one `write` (a line of its own, shorter than a log
//! line; nothing reads it). Nothing else: no driver, no clocks but
//! a counter, no stop channel, no fault plan, no threads. What it costs per
//! tick and per message, and how late its ticks run, is the floor that
//! `clocklab bench --runtime real` is to be read against.
//!
//! ```sh
//! cargo bench --bench real_floor -- [MACHINES] [RATES_UP_TO] [SECONDS] [SEED] [CLOCKLAB]
//! ```
//!
//! Defaults: 64 machines, rates up to 1000, 10 seconds, seed 42. Given the
//! path of a clocklab build, it then runs `clocklab bench --runtime real` on
//! the same plan, so that both figures come from the same session.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clocklab_config::{Config, plan_runs};
use clocklab_driver::LatenessRecorder;
use clocklab_model::event::{EventChoice, PeerRing};
use clocklab_model::{schedule, seed};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::resource::{UsageWho, getrusage};
use rand::RngExt;

/// Draws are from 1..=this, as in `clocklab bench`.
const MAX_EVENT_NUM: u32 = 10;

/// The machines start this long after the last one is connected.
const START_DELAY: Duration = Duration::from_millis(300);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    if std::env::args().nth(1).as_deref() == Some("--machine") {
        return machine(&args);
    }
    // `cargo test --benches` runs this with no `--bench`: a minute of 64
    // machines is not a test.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let number = |k: usize, default: u64| -> anyhow::Result<u64> {
        args.get(k).map_or(Ok(default), |arg| {
            arg.parse().with_context(|| format!("argument {}: '{arg}' is not a whole number", k + 1))
        })
    };
    let n = u32::try_from(number(0, 64)?).context("too many machines")?;
    let rates_up_to = u32::try_from(number(1, 1000)?).context("rate too large")?;
    let seconds = number(2, 10)?;
    let seed = number(3, 42)?;
    if !(2..=128).contains(&n) || rates_up_to == 0 || !(1..=600).contains(&seconds) {
        bail!("machines 2 to 128, rates up to 1 or more, seconds 1 to 600");
    }
    floor(n, rates_up_to, seconds, seed)?;
    if let Some(clocklab) = args.get(4) {
        println!();
        let status = Command::new(clocklab)
            .args(["bench", "--runtime", "real", "--sizes", &n.to_string()])
            .args(["--rates-up-to", &rates_up_to.to_string(), "--seconds", &seconds.to_string()])
            .args(["--seed", &seed.to_string()])
            .status()
            .with_context(|| format!("cannot run {clocklab}"))?;
        if !status.success() {
            bail!("{clocklab} bench failed: {status}");
        }
    }
    Ok(())
}

/// Runs the floor's machines on the plan of `clocklab bench --runtime real`
/// with these settings, and prints what they cost.
fn floor(n: u32, rates_up_to: u32, seconds: u64, seed: u64) -> anyhow::Result<()> {
    // The configuration `clocklab bench --runtime real` writes (`measure` in
    // src/cmd/bench_real.rs: keep the two the same), read the way `clocklab
    // run` reads it: the same plan, the same rates and seeds. A difference
    // shows in the ticks the two print.
    let logs = tempfile::tempdir().context("cannot make a folder for the logs")?;
    let file = logs.path().join("bench.toml");
    let text = format!(
        "machines = {n}\nmax_clock_rate = {rates_up_to}\nmax_event_num = {MAX_EVENT_NUM}\nruns = 1\nduration = {seconds}\n"
    );
    std::fs::write(&file, text)?;
    let config = Config::load(&file)?;
    let plan = plan_runs(&config, seed, logs.path()).remove(0);
    let exe = std::env::current_exe().context("cannot find this program")?;
    let mut children: Vec<Child> = Vec::new();
    for machine in &plan.machines {
        let child = Command::new(&exe)
            .arg("--machine")
            .args([machine.id, n, rates_up_to].map(|v| v.to_string()))
            .args([machine.seed, seconds].map(|v| v.to_string()))
            .arg(logs.path().join(format!("machine_{}.log", machine.id)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start a machine")?;
        children.push(child);
    }
    let mut outputs: Vec<BufReader<_>> = Vec::new();
    let mut ports = Vec::new();
    for child in &mut children {
        let mut output = BufReader::new(child.stdout.take().context("no output")?);
        ports.push(read_line(&mut output)?);
        outputs.push(output);
    }
    let ports = ports.join(" ");
    for child in &mut children {
        writeln!(child.stdin.as_mut().context("no input")?, "{ports}")?;
    }
    for output in &mut outputs {
        if read_line(output)? != "ready" {
            bail!("a machine did not connect");
        }
    }
    let start_us = now_us() + START_DELAY.as_micros() as u64;
    for child in &mut children {
        writeln!(child.stdin.as_mut().context("no input")?, "{start_us}")?;
    }
    let (mut ticks, mut sent, mut behind) = (0u64, 0u64, 0u64);
    let (mut p50s, mut p99s, mut maxes) = (Vec::new(), Vec::new(), Vec::new());
    for output in &mut outputs {
        let line = read_line(output)?;
        let fields: Vec<u64> =
            line.split(' ').map(str::parse).collect::<Result<_, _>>().context("a machine's figures")?;
        let &[machine_ticks, machine_sent, p50, p99, max, machine_behind] = fields.as_slice() else {
            bail!("a machine's figures: {line}")
        };
        (ticks, sent, behind) = (ticks + machine_ticks, sent + machine_sent, behind + machine_behind);
        p50s.push(p50);
        p99s.push(p99);
        maxes.push(max);
    }
    // Every machine keeps its connections open until all are done, so that
    // no send meets a closed peer.
    for child in &mut children {
        writeln!(child.stdin.as_mut().context("no input")?, "exit")?;
    }
    for child in &mut children {
        let status = child.wait()?;
        if !status.success() {
            bail!("a machine failed: {status}");
        }
    }
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let seconds_of = |time: nix::sys::time::TimeVal| time.tv_sec() as f64 + time.tv_usec() as f64 / 1e6;
    let (user, system) = (seconds_of(usage.user_time()), seconds_of(usage.system_time()));
    let cpu_us = (user + system) * 1e6;
    println!(
        "the floor: {n} machines, rates up to {rates_up_to}, {seconds} s, seed {seed} (one process per machine, TCP over loopback)"
    );
    println!(
        "  ticks {ticks}, messages {sent}; cpu {user:.2} s user + {system:.2} s system: {:.1} us/tick, {:.1} us/msg",
        cpu_us / ticks as f64,
        cpu_us / sent.max(1) as f64
    );
    let (p50, p99, max) = (median(&mut p50s), median(&mut p99s), median(&mut maxes));
    println!(
        "  lateness, median / worst machine: p50 {p50} / {} us, p99 {p99} / {} us, max {max} / {} us",
        p50s.last().copied().unwrap_or(0),
        p99s.last().copied().unwrap_or(0),
        maxes.last().copied().unwrap_or(0)
    );
    match behind {
        0 => println!("  status: ok (no machine fell behind by more than one tick period)"),
        _ => println!("  status: degraded ({behind} of {n} machines fell behind by more than one tick period)"),
    }
    Ok(())
}

/// One machine: `id n rates_up_to machine_seed seconds log`, its port on
/// its output, then the peers' ports and the start instant on its input.
fn machine(args: &[String]) -> anyhow::Result<()> {
    let [id, n, rates_up_to, machine_seed, seconds, log] = args else { bail!("a machine's arguments: {args:?}") };
    let (id, n): (u32, u32) = (id.parse()?, n.parse()?);
    let (mut rng, rate) = seed::start_machine(machine_seed.parse()?, rates_up_to.parse()?);
    let seconds: u64 = seconds.parse()?;
    let ring = PeerRing::new(id, n);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut input = BufReader::new(std::io::stdin().lock());
    println!("{}", listener.local_addr()?.port());
    let ports: Vec<u16> = read_line(&mut input)?.split(' ').map(str::parse).collect::<Result<_, _>>()?;
    // To each peer, by id; from each peer, in the epoll set. Every machine
    // connects before it accepts: the listening socket's backlog (128)
    // holds the n - 1 connections meanwhile, hence at most 128 machines.
    let mut to: Vec<Option<TcpStream>> = Vec::new();
    for (k, &port) in ports.iter().enumerate() {
        let stream = (k as u32 + 1 != id).then(|| TcpStream::connect(("127.0.0.1", port))).transpose()?;
        if let Some(stream) = &stream {
            stream.set_nodelay(true)?;
        }
        to.push(stream);
    }
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let mut from =
        Peers { streams: Vec::new(), partial: vec![0; n as usize - 1], buffer: vec![0; 64 * 1024], queue: 0 };
    for k in 0..n - 1 {
        let (stream, _) = listener.accept()?;
        stream.set_nonblocking(true)?;
        epoll.add(stream.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, u64::from(k)))?;
        from.streams.push(stream);
    }
    println!("ready");
    let start_us: u64 = read_line(&mut input)?.parse()?;
    let mut file = File::create(log)?;
    let (mut sent, mut clock) = (0u64, 0u64);
    let mut lateness = LatenessRecorder::default();
    let mut ready = vec![EpollEvent::empty(); n as usize];
    let mut line = Vec::with_capacity(256);
    for k in 0..schedule::n_ticks(rate, seconds * 1_000_000) {
        let due_us = start_us + schedule::tick_offset_us(k, rate);
        let now = now_us();
        if now < due_us {
            std::thread::sleep(Duration::from_micros(due_us - now));
        }
        lateness.record(Duration::from_micros(now_us().saturating_sub(due_us)));
        let n_ready = epoll.wait(&mut ready, EpollTimeout::ZERO)?;
        for event in &ready[..n_ready] {
            from.read(event.data() as usize)?;
        }
        clock += 1;
        let event = if from.queue > 0 {
            from.queue -= 1;
            "processed"
        } else {
            match EventChoice::from_draw(rng.random_range(1..=MAX_EVENT_NUM)) {
                EventChoice::Send(recipients) => {
                    let frame = (clock as u32).to_be_bytes();
                    for peer in ring.resolve(recipients) {
                        if let Some(stream) = &mut to[peer as usize - 1] {
                            stream.write_all(&frame)?;
                            sent += 1;
                        }
                    }
                    "sent"
                }
                _ => "internal",
            }
        };
        line.clear();
        log_line(&mut line, id, clock, event, from.queue)?;
        file.write_all(&line)?;
    }
    let summary = lateness.summary();
    // Behind its schedule by more than a tick period: what makes a
    // clocklab run `degraded`.
    let behind = summary.max_us > 1_000_000 / u64::from(rate);
    println!("{} {sent} {} {} {} {}", summary.ticks, summary.p50_us, summary.p99_us, summary.max_us, u64::from(behind));
    // Until every machine is done, what comes is read and queued (as a
    // clocklab machine reads its peers to the end of their streams), then
    // what is left in the queue is logged, a line each, and a last line.
    const INPUT: u64 = u64::MAX;
    epoll.add(input.get_ref().as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, INPUT))?;
    'drain: loop {
        let n_ready = epoll.wait(&mut ready, EpollTimeout::NONE)?;
        for event in &ready[..n_ready] {
            match event.data() {
                INPUT => break 'drain,
                k => from.read(k as usize)?,
            }
        }
    }
    read_line(&mut input)?;
    line.clear();
    for _ in 0..from.queue {
        log_line(&mut line, id, clock, "unprocessed", 0)?;
    }
    log_line(&mut line, id, clock, "stopped", 0)?;
    file.write_all(&line)?;
    Ok(())
}

/// The connections from a machine's peers, and the messages they brought.
struct Peers {
    streams: Vec<TcpStream>,
    /// Per connection, the bytes of a frame cut by a read.
    partial: Vec<usize>,
    buffer: Vec<u8>,
    queue: u64,
}

impl Peers {
    /// One read of connection `k`: its whole frames go to the queue; a
    /// frame cut by the read waits for its other bytes.
    fn read(&mut self, k: usize) -> anyhow::Result<()> {
        match (&self.streams[k]).read(&mut self.buffer) {
            Ok(bytes) => {
                let whole = self.partial[k] + bytes;
                (self.queue, self.partial[k]) = (self.queue + whole as u64 / 4, whole % 4);
                Ok(())
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// A line of the floor's own, not a clocklab log line (nothing reads it),
/// as long as a log line of the text format with Lamport's clock (150
/// bytes), the time written in it twice.
fn log_line(line: &mut Vec<u8>, id: u32, clock: u64, event: &str, queue: u64) -> std::io::Result<()> {
    let now = now_us();
    let text = format!("{id} {event} at {} s | clock {clock} | queue {queue} | at {now} us", now / 1_000_000);
    writeln!(line, "{text:<150}")
}

fn read_line(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        bail!("the other end closed");
    }
    Ok(line.trim_end().to_string())
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_micros() as u64)
}

/// The median of `values`, which are left sorted.
fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}
