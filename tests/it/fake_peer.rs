//! Machine 1 of a two-machine run as a real `clocklab machine` process, and
//! machine 2 played by the test over raw sockets: what a hostile or broken
//! peer can do, done on purpose.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use clocklab_log::Record;
use clocklab_model::ClockKinds;
use clocklab_model::wire::{HELLO_LEN, Hello, READY_LEN, TOKEN_LEN, encode_ready};

use crate::util::{finish, free_ports, read_log, spawn_machine, wait_for, write_config};

/// How the fake machine 2 behaves.
#[derive(Clone, Debug)]
pub struct Behaviour<'a> {
    /// Seconds machine 1 ticks.
    pub duration_s: f64,
    /// More keys for machine 1's configuration (`, "key": value`).
    pub extra_config: &'a str,
    /// Machine 1's `--seed`.
    pub seed: u64,
    /// Whether machine 2 reads what machine 1 sends as it comes; if not, it
    /// reads nothing (with a tiny receive buffer) until [`FakePeer::finish`].
    pub reads: bool,
    /// How many of machine 1's connections machine 2 closes during the
    /// hello, without an answer, before it takes one.
    pub closes_first: usize,
    /// The clocks of the run (the configuration must say the same).
    pub clocks: ClockKinds,
}

impl Default for Behaviour<'_> {
    fn default() -> Self {
        Behaviour {
            duration_s: 4.0,
            extra_config: "",
            seed: 8,
            reads: true,
            closes_first: 0,
            clocks: ClockKinds::LAMPORT,
        }
    }
}

/// Machine 1 of a two-machine run as a real process, and machine 2 played by
/// the test over raw sockets.
pub struct FakePeer {
    /// Machine 1's process.
    pub machine: Option<Child>,
    /// Machine 1's log folder.
    pub out: PathBuf,
    /// Machine 1's port.
    pub machine_port: u16,
    /// The run's token.
    pub token: [u8; TOKEN_LEN],
    /// Our sending connection to machine 1, after the hellos.
    to_machine: TcpStream,
    /// Counts the frames machine 1 sends us, to the end of its stream.
    reader: Option<std::thread::JoinHandle<u64>>,
    /// Dropped to let a silent machine 2 read.
    read_now: Option<crossbeam_channel::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl FakePeer {
    /// Starts machine 1 for `duration_s` and connects to it as machine 2.
    pub fn start(duration_s: f64, extra_config: &str) -> FakePeer {
        FakePeer::start_with(&Behaviour { duration_s, extra_config, ..Behaviour::default() })
    }

    /// Starts machine 1 and plays machine 2 as `behaviour` says.
    pub fn start_with(behaviour: &Behaviour<'_>) -> FakePeer {
        let Behaviour { duration_s, extra_config, seed, reads, closes_first, clocks } = *behaviour;
        let frame_len = clocklab_model::wire::FrameCodec::new(clocks, 2).frame_len();
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        if !reads {
            // Inherited by the accepted connection: a few kilobytes fill it.
            nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::RcvBuf, &4096).unwrap();
        }
        let our_port = listener.local_addr().unwrap().port();
        let machine_port = free_ports(1)[0];
        let config = write_config(dir.path(), &[machine_port, our_port], duration_s, extra_config);
        let token = [0x5a; TOKEN_LEN];
        let token_hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let out = dir.path().join("logs");
        let machine = spawn_machine(&["--seed", &seed.to_string(), "--token", &token_hex], &config, &out);
        let (read_now, may_read) = crossbeam_channel::bounded::<()>(0);
        // Machine 1 connects to us: answer its hello, then read its ready
        // message and count its frames.
        let reader = std::thread::spawn(move || {
            for _ in 0..closes_first {
                let (stream, _) = listener.accept().unwrap();
                // Closed with its hello unread: the connection is reset, as by a
                // machine that has no room for it.
                std::thread::sleep(Duration::from_millis(50));
                drop(stream);
            }
            let (mut stream, _) = listener.accept().unwrap();
            let mut hello = [0u8; HELLO_LEN];
            stream.read_exact(&mut hello).unwrap();
            assert_eq!(Hello::decode(&hello).unwrap().machine, 1);
            stream.write_all(&Hello::new(2, token, clocks, 2).encode()).unwrap();
            let mut ready = [0u8; READY_LEN];
            stream.read_exact(&mut ready).unwrap();
            if !reads {
                let _ = may_read.recv();
            }
            let mut bytes = Vec::new();
            // A peer declared gone may see its stream cut, even inside a frame.
            let _ = stream.read_to_end(&mut bytes);
            if reads {
                assert_eq!(bytes.len() % frame_len, 0);
            }
            (bytes.len() / frame_len) as u64
        });
        // We connect to machine 1 once it listens.
        let mut to_machine = None;
        wait_for("machine 1 to listen", Duration::from_secs(10), || {
            to_machine = TcpStream::connect(("127.0.0.1", machine_port)).ok();
            to_machine.is_some()
        });
        let mut to_machine = to_machine.unwrap();
        to_machine.write_all(&Hello::new(2, token, clocks, 2).encode()).unwrap();
        let mut answer = [0u8; HELLO_LEN];
        to_machine.read_exact(&mut answer).unwrap();
        assert_eq!(Hello::decode(&answer).unwrap().machine, 1);
        // Ready at once: machine 1 starts 100 ms after the later of its ready and ours.
        to_machine.write_all(&encode_ready(clocklab_net::now_us())).unwrap();
        FakePeer {
            machine: Some(machine),
            out,
            machine_port,
            token,
            to_machine,
            reader: Some(reader),
            read_now: Some(read_now),
            _dir: dir,
        }
    }

    /// Sends clock frames as machine 2 (a run of Lamport's clock alone).
    pub fn send(&mut self, clocks: impl IntoIterator<Item = u32>) {
        let bytes: Vec<u8> = clocks.into_iter().flat_map(u32::to_be_bytes).collect();
        self.to_machine.write_all(&bytes).unwrap();
    }

    /// Ends our stream after `wait`, waits for machine 1 to exit; returns its
    /// exit code, its stderr, its log, and how many whole frames it sent us
    /// (a silent machine 2 reads them all once machine 1 has exited).
    pub fn finish(&mut self, wait: Duration) -> (Option<i32>, String, Vec<Record>, u64) {
        std::thread::sleep(wait);
        self.to_machine.shutdown(std::net::Shutdown::Write).unwrap();
        let output = finish(self.machine.take().unwrap(), Duration::from_secs(60));
        drop(self.read_now.take());
        let received = self.reader.take().unwrap().join().unwrap();
        let records = read_log(&self.out.join("machine_1.log"));
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned(), records, received)
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        if let Some(machine) = &mut self.machine {
            let _ = machine.kill();
            let _ = machine.wait();
        }
    }
}
