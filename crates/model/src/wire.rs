//! What travels on a connection: one hello each way when it opens, then
//! frames, one per message.
//!
//! **Hello** (protocol version 3, 31 bytes): magic `CLKL`, the version
//! (`u16`), the sender's machine id (`u32`), the run's 16-byte token, the
//! clocks the run keeps (one byte: bit 0 vector, bit 1 HLC; Lamport is always
//! kept) and the run's number of machines (`u32`); integers big-endian. The
//! connecting side sends its hello; the accepting side checks it against its
//! own and answers with its own, which the connector checks in turn. Both
//! ends must agree on version, token, clocks and number of machines, or the
//! connection is closed before any of its bytes reaches a queue.
//!
//! **Ready.** After the hellos, the connector sends once, before any frame,
//! the instant its machine had every connection of the run up: 8 bytes, a
//! big-endian `i64` of microseconds since the Unix epoch ([`encode_ready`]).
//! Machines started by hand start at the latest of these instants plus a
//! lead, so that all of them start together without an orchestrator.
//!
//! **Frame.** With Lamport's clock alone, a message is exactly the sender's
//! Lamport clock as a 4-byte unsigned integer in network byte order
//! (big-endian), as the specification says. With more clocks, the frame
//! carries every stamp, in this order and all big-endian:
//!
//! | bytes | what |
//! | --- | --- |
//! | 4 | Lamport clock (`u32`, saturated) |
//! | 8 × N | vector clock, component of machine 1 first (`u64` each), if kept |
//! | 8 + 8 | HLC: `l` (`i64`, microseconds since the Unix epoch), then `c` (`u64`), if kept |
//!
//! A frame's length follows from the hello, so frames need no length prefix.
//!
//! **The 32-bit limit.** Clocks are `u64` inside a machine; the Lamport field
//! holds 32 bits. A Lamport clock above `u32::MAX` (over 22 years at 6 ticks
//! per second, or a peer that sent `4,294,967,295`) is sent as `u32::MAX`:
//! the field saturates, never wraps, so a receiver's clock still never goes
//! backwards. [`encode_clock`] and [`FrameCodec::encode`] report the
//! saturation so that the runtime can count it.

use crate::MachineId;
use crate::clockset::{ClockKinds, Stamp};
use crate::hlc::HlcStamp;

/// Bytes of the Lamport field of a frame, which is the whole frame with
/// Lamport's clock alone.
pub const CLOCK_FRAME_LEN: usize = 4;

/// The protocol version this build speaks (3: the ready message after the
/// hello; 2: the hello names the clocks and the number of machines).
pub const PROTOCOL_VERSION: u16 = 3;

/// Bytes of the ready message that follows the hello on a connection.
pub const READY_LEN: usize = 8;

/// The first bytes of every hello.
pub const HELLO_MAGIC: [u8; 4] = *b"CLKL";

/// Bytes in a run token.
pub const TOKEN_LEN: usize = 16;

/// Bytes of a hello that every version shares: magic and version. Reading
/// these first lets a peer of another version be told so at once.
pub const HELLO_HEADER_LEN: usize = 4 + 2;

/// Bytes in a hello: magic, version, machine id, token, clocks, machines.
pub const HELLO_LEN: usize = HELLO_HEADER_LEN + 4 + TOKEN_LEN + 1 + 4;

/// The ready message: the instant the connector's machine had every
/// connection up, in microseconds since the Unix epoch.
pub fn encode_ready(at_us: i64) -> [u8; READY_LEN] {
    at_us.to_be_bytes()
}

/// Decodes a ready message.
pub fn decode_ready(bytes: [u8; READY_LEN]) -> i64 {
    i64::from_be_bytes(bytes)
}

/// A run token as 32 lowercase hexadecimal digits.
pub fn token_to_hex(token: &[u8; TOKEN_LEN]) -> String {
    token.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A run token from 32 hexadecimal digits (either case); `None` for anything else.
pub fn token_from_hex(hex: &str) -> Option<[u8; TOKEN_LEN]> {
    if hex.len() != 2 * TOKEN_LEN || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut token = [0u8; TOKEN_LEN];
    for (idx, byte) in token.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * idx..2 * idx + 2], 16).ok()?;
    }
    Some(token)
}

/// A clock as it goes on the wire, and whether it had to saturate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedClock {
    /// The frame.
    pub frame: [u8; CLOCK_FRAME_LEN],
    /// The clock was above `u32::MAX` and was sent as `u32::MAX`.
    pub saturated: bool,
}

/// Encodes a Lamport clock as a big-endian `u32`, saturating above `u32::MAX`.
pub fn encode_clock(clock: u64) -> EncodedClock {
    let value = u32::try_from(clock).unwrap_or(u32::MAX);
    EncodedClock { frame: value.to_be_bytes(), saturated: clock > u64::from(u32::MAX) }
}

/// Decodes a Lamport field.
pub fn decode_clock(frame: [u8; CLOCK_FRAME_LEN]) -> u64 {
    u64::from(u32::from_be_bytes(frame))
}

/// The Lamport clock a receiver sees when `clock` is sent: saturated at 32 bits.
pub fn on_the_wire(clock: u64) -> u64 {
    decode_clock(encode_clock(clock).frame)
}

/// The frame layout of a run: which clocks, how many machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCodec {
    kinds: ClockKinds,
    n_machines: usize,
}

impl FrameCodec {
    /// The layout of a run of `n_machines` that keeps `kinds`.
    pub fn new(kinds: ClockKinds, n_machines: u32) -> FrameCodec {
        FrameCodec { kinds, n_machines: n_machines as usize }
    }

    /// The clocks a frame carries.
    pub fn kinds(&self) -> ClockKinds {
        self.kinds
    }

    /// Bytes in one frame.
    pub fn frame_len(&self) -> usize {
        CLOCK_FRAME_LEN + if self.kinds.vector { 8 * self.n_machines } else { 0 } + if self.kinds.hlc { 16 } else { 0 }
    }

    /// Appends the frame of `stamp` to `out`; returns whether the Lamport
    /// field saturated. A part the stamp lacks (a bug in the caller) goes
    /// out as zeros, so the frame always has its length.
    pub fn encode(&self, stamp: &Stamp, out: &mut Vec<u8>) -> bool {
        let lamport = encode_clock(stamp.lamport);
        out.extend_from_slice(&lamport.frame);
        if self.kinds.vector {
            debug_assert!(stamp.vector.is_some(), "a run with vector clocks sends vectors");
            let vector = stamp.vector.as_deref().unwrap_or_default();
            for idx in 0..self.n_machines {
                out.extend_from_slice(&vector.get(idx).copied().unwrap_or(0).to_be_bytes());
            }
        }
        if self.kinds.hlc {
            debug_assert!(stamp.hlc.is_some(), "a run with HLC sends HLC stamps");
            let hlc = stamp.hlc.unwrap_or_default();
            out.extend_from_slice(&hlc.l_us.to_be_bytes());
            out.extend_from_slice(&hlc.c.to_be_bytes());
        }
        lamport.saturated
    }

    /// Decodes one whole frame.
    ///
    /// # Panics
    ///
    /// If `frame` is not [`FrameCodec::frame_len`] bytes long; the
    /// [`FrameDecoder`] only hands over whole frames.
    pub fn decode(&self, frame: &[u8]) -> Stamp {
        assert_eq!(frame.len(), self.frame_len(), "a frame is decoded whole");
        let (lamport, mut rest) = frame.split_at(CLOCK_FRAME_LEN);
        let lamport = decode_clock(lamport.try_into().expect("4 bytes"));
        let mut next_u64 = || {
            let (head, tail) = rest.split_at(8);
            rest = tail;
            u64::from_be_bytes(head.try_into().expect("8 bytes"))
        };
        let vector = self.kinds.vector.then(|| (0..self.n_machines).map(|_| next_u64()).collect());
        let hlc = self.kinds.hlc.then(|| {
            let l_us = next_u64() as i64;
            HlcStamp { l_us, c: next_u64() }
        });
        Stamp { lamport, vector, hlc }
    }

    /// What a receiver gets when `stamp` is sent: the stamp through this
    /// codec (the Lamport field saturated at 32 bits).
    pub fn through_the_wire(&self, stamp: &Stamp) -> Stamp {
        let mut frame = Vec::with_capacity(self.frame_len());
        self.encode(stamp, &mut frame);
        self.decode(&frame)
    }
}

/// Splits a byte stream into frames, keeping a partial frame for later.
///
/// Its buffer never holds more than one frame less a byte, whatever a peer sends.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    codec: FrameCodec,
    partial: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder of `codec`'s frames with nothing buffered.
    pub fn new(codec: FrameCodec) -> FrameDecoder {
        FrameDecoder { codec, partial: Vec::with_capacity(codec.frame_len()) }
    }

    /// Feeds `bytes`, calling `on_stamp` for every complete frame in order.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_stamp: impl FnMut(Stamp)) {
        let frame_len = self.codec.frame_len();
        if !self.partial.is_empty() {
            let take = (frame_len - self.partial.len()).min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < frame_len {
                return;
            }
            on_stamp(self.codec.decode(&self.partial));
            self.partial.clear();
        }
        let mut chunks = bytes.chunks_exact(frame_len);
        for chunk in &mut chunks {
            on_stamp(self.codec.decode(chunk));
        }
        self.partial.extend_from_slice(chunks.remainder());
    }

    /// How many bytes of an unfinished frame are held.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

/// The first thing each side of a connection sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version of the sender.
    pub version: u16,
    /// The sender's machine id.
    pub machine: MachineId,
    /// The run's random token: only machines of the same run know it.
    pub token: [u8; TOKEN_LEN],
    /// The clocks the sender's run keeps.
    pub clocks: ClockKinds,
    /// How many machines the sender's run has.
    pub n_machines: u32,
}

/// Why a hello was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HelloError {
    /// The bytes do not start with [`HELLO_MAGIC`]: not a clocklab peer.
    #[error("not a clocklab hello (bad magic bytes)")]
    BadMagic,
    /// The peer speaks another protocol version.
    #[error("protocol version {got}, expected {expected}")]
    Version {
        /// The version received.
        got: u16,
        /// The version this build speaks.
        expected: u16,
    },
    /// The clocks byte has a bit no version knows.
    #[error("unknown clocks in the hello (byte {0:#04x})")]
    UnknownClocks(u8),
    /// The token is not this run's.
    #[error("wrong run token")]
    Token,
    /// The machine id is not one the connection may come from.
    #[error("machine id {0} is not an expected peer")]
    UnknownMachine(MachineId),
    /// The peer keeps other clocks.
    #[error(
        "the peer keeps the clocks {theirs}, this machine keeps {ours}: every machine of a run needs the same `clocks`"
    )]
    Clocks {
        /// The peer's clocks.
        theirs: ClockKinds,
        /// This machine's.
        ours: ClockKinds,
    },
    /// The peer's run has another number of machines.
    #[error("the peer's run has {theirs} machines, this machine's has {ours}")]
    Machines {
        /// The peer's number.
        theirs: u32,
        /// This machine's.
        ours: u32,
    },
}

impl Hello {
    /// A hello from `machine` for the run with `token`, `clocks` and `n_machines`.
    pub fn new(machine: MachineId, token: [u8; TOKEN_LEN], clocks: ClockKinds, n_machines: u32) -> Hello {
        Hello { version: PROTOCOL_VERSION, machine, token, clocks, n_machines }
    }

    /// The hello's bytes.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut bytes = [0u8; HELLO_LEN];
        bytes[..4].copy_from_slice(&HELLO_MAGIC);
        bytes[4..6].copy_from_slice(&self.version.to_be_bytes());
        bytes[6..10].copy_from_slice(&self.machine.to_be_bytes());
        bytes[10..26].copy_from_slice(&self.token);
        bytes[26] = self.clocks.to_bits();
        bytes[27..31].copy_from_slice(&self.n_machines.to_be_bytes());
        bytes
    }

    /// Checks the first [`HELLO_HEADER_LEN`] bytes: the magic, and that the
    /// version is this build's (the rest of another version's hello may
    /// have another length).
    pub fn check_header(bytes: &[u8; HELLO_HEADER_LEN]) -> Result<(), HelloError> {
        if bytes[..4] != HELLO_MAGIC {
            return Err(HelloError::BadMagic);
        }
        let got = u16::from_be_bytes([bytes[4], bytes[5]]);
        if got != PROTOCOL_VERSION {
            return Err(HelloError::Version { got, expected: PROTOCOL_VERSION });
        }
        Ok(())
    }

    /// Parses a hello without judging it; only the magic and the clocks
    /// byte are checked.
    pub fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Hello, HelloError> {
        if bytes[..4] != HELLO_MAGIC {
            return Err(HelloError::BadMagic);
        }
        let version = u16::from_be_bytes([bytes[4], bytes[5]]);
        let machine = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        let mut token = [0u8; TOKEN_LEN];
        token.copy_from_slice(&bytes[10..26]);
        let clocks = ClockKinds::from_bits(bytes[26]).ok_or(HelloError::UnknownClocks(bytes[26]))?;
        let n_machines = u32::from_be_bytes([bytes[27], bytes[28], bytes[29], bytes[30]]);
        Ok(Hello { version, machine, token, clocks, n_machines })
    }

    /// Checks the hello against this machine's own (`ours`): version,
    /// token, clocks and number of machines must match, and the sender must
    /// be one of the `expected` machines.
    pub fn check(&self, ours: &Hello, expected: impl Fn(MachineId) -> bool) -> Result<(), HelloError> {
        if self.version != PROTOCOL_VERSION {
            return Err(HelloError::Version { got: self.version, expected: PROTOCOL_VERSION });
        }
        // Compare every byte so the time taken says nothing about the token.
        let mismatch = self.token.iter().zip(&ours.token).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if mismatch != 0 {
            return Err(HelloError::Token);
        }
        if !expected(self.machine) {
            return Err(HelloError::UnknownMachine(self.machine));
        }
        if self.clocks != ours.clocks {
            return Err(HelloError::Clocks { theirs: self.clocks, ours: ours.clocks });
        }
        if self.n_machines != ours.n_machines {
            return Err(HelloError::Machines { theirs: self.n_machines, ours: ours.n_machines });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn lamport_codec() -> FrameCodec {
        FrameCodec::new(ClockKinds::LAMPORT, 3)
    }

    #[test]
    fn clock_is_big_endian() {
        assert_eq!(encode_clock(0x0102_0304).frame, [1, 2, 3, 4]);
        assert_eq!(decode_clock([0, 0, 0, 17]), 17);
    }

    #[test]
    fn clock_saturates_at_the_wire_limit() {
        let max = encode_clock(u64::from(u32::MAX));
        assert_eq!((max.frame, max.saturated), ([0xff; 4], false));
        let above = encode_clock(u64::from(u32::MAX) + 1);
        assert_eq!((above.frame, above.saturated), ([0xff; 4], true));
        assert_eq!(decode_clock(above.frame), 4_294_967_295);
    }

    #[test]
    fn lamport_alone_is_the_four_byte_clock() {
        let codec = lamport_codec();
        assert_eq!(codec.frame_len(), 4);
        let mut frame = Vec::new();
        assert!(!codec.encode(&Stamp::lamport(0x0102_0304), &mut frame));
        assert_eq!(frame, [1, 2, 3, 4]);
        assert_eq!(codec.decode(&frame), Stamp::lamport(0x0102_0304));
    }

    #[test]
    fn every_clock_has_its_place_in_the_frame() {
        let codec = FrameCodec::new(ClockKinds::ALL, 2);
        assert_eq!(codec.frame_len(), 4 + 16 + 16);
        let stamp = Stamp {
            lamport: 7,
            vector: Some(Arc::from([3u64, 4].as_slice())),
            hlc: Some(HlcStamp { l_us: 1_795_495_393_482_951, c: 2 }),
        };
        let mut frame = Vec::new();
        codec.encode(&stamp, &mut frame);
        assert_eq!(&frame[..12], &[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&frame[frame.len() - 8..], &[0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(codec.decode(&frame), stamp);
        // The Lamport field saturates whatever else the frame carries.
        let big = Stamp { lamport: u64::MAX, ..stamp };
        assert_eq!(codec.through_the_wire(&big).lamport, u64::from(u32::MAX));
    }

    #[test]
    fn hello_round_trips_and_checks() {
        let token = [7u8; TOKEN_LEN];
        let ours = Hello::new(1, token, ClockKinds::ALL, 3);
        let hello = Hello::new(2, token, ClockKinds::ALL, 3);
        let decoded = Hello::decode(&hello.encode()).unwrap();
        assert_eq!(decoded, hello);
        assert_eq!(decoded.check(&ours, |id| id == 2), Ok(()));
        assert_eq!(decoded.check(&Hello { token: [8; TOKEN_LEN], ..ours }, |_| true), Err(HelloError::Token));
        assert_eq!(decoded.check(&ours, |id| id == 3), Err(HelloError::UnknownMachine(2)));
        let lamport_only = Hello { clocks: ClockKinds::LAMPORT, ..ours };
        let error = decoded.check(&lamport_only, |_| true).unwrap_err();
        assert_eq!(error, HelloError::Clocks { theirs: ClockKinds::ALL, ours: ClockKinds::LAMPORT });
        assert!(error.to_string().contains("lamport,vector,hlc") && error.to_string().contains("keeps lamport:"));
        assert_eq!(
            decoded.check(&Hello { n_machines: 4, ..ours }, |_| true),
            Err(HelloError::Machines { theirs: 3, ours: 4 })
        );
        let old = Hello { version: 1, ..hello };
        assert!(matches!(old.check(&ours, |_| true), Err(HelloError::Version { got: 1, .. })));
        let mut garbage = hello.encode();
        garbage[0] = b'G';
        assert_eq!(Hello::decode(&garbage), Err(HelloError::BadMagic));
        let mut bad_clocks = hello.encode();
        bad_clocks[26] = 0x80;
        assert_eq!(Hello::decode(&bad_clocks), Err(HelloError::UnknownClocks(0x80)));
    }

    #[test]
    fn a_peer_of_an_older_version_is_told_by_its_header() {
        let mut header = [0u8; HELLO_HEADER_LEN];
        header[..4].copy_from_slice(&HELLO_MAGIC);
        for old in [1, 2] {
            header[5] = old;
            let got = u16::from(old);
            assert_eq!(Hello::check_header(&header), Err(HelloError::Version { got, expected: 3 }));
        }
        header[5] = 3;
        assert_eq!(Hello::check_header(&header), Ok(()));
    }

    #[test]
    fn ready_and_tokens_round_trip() {
        let at_us = 1_795_495_393_482_913;
        assert_eq!(encode_ready(at_us), [0x00, 0x06, 0x60, 0xfe, 0x59, 0x1f, 0xd8, 0xa1]);
        assert_eq!(decode_ready(encode_ready(at_us)), at_us);
        let token = [0xab; TOKEN_LEN];
        assert_eq!(token_to_hex(&token), "ab".repeat(16));
        assert_eq!(token_from_hex(&"AB".repeat(16)), Some(token));
        for bad in ["", "ab", &"zz".repeat(16), &"ab".repeat(17), &"+a".repeat(16)] {
            assert_eq!(token_from_hex(bad), None, "{bad:?}");
        }
    }

    fn any_kinds() -> impl Strategy<Value = ClockKinds> {
        (0u8..4).prop_map(|bits| ClockKinds::from_bits(bits).expect("two bits"))
    }

    fn stamp_for(kinds: ClockKinds, n: usize) -> impl Strategy<Value = Stamp> {
        (any::<u32>(), proptest::collection::vec(any::<u64>(), n), any::<i64>(), any::<u64>()).prop_map(
            move |(lamport, vector, l_us, c)| Stamp {
                lamport: u64::from(lamport),
                vector: kinds.vector.then(|| Arc::from(vector.as_slice())),
                hlc: kinds.hlc.then_some(HlcStamp { l_us, c }),
            },
        )
    }

    proptest! {
        #[test]
        fn clocks_round_trip(clock in 0u64..=u64::from(u32::MAX)) {
            let encoded = encode_clock(clock);
            prop_assert!(!encoded.saturated);
            prop_assert_eq!(decode_clock(encoded.frame), clock);
        }

        #[test]
        fn frames_round_trip_whatever_the_clocks(
            (kinds, n, stamps) in (any_kinds(), 2usize..70).prop_flat_map(|(kinds, n)| {
                (Just(kinds), Just(n), proptest::collection::vec(stamp_for(kinds, n), 0..8))
            }),
            cuts in proptest::collection::vec(0usize..2_000, 0..10),
        ) {
            let codec = FrameCodec::new(kinds, n as u32);
            let mut bytes = Vec::new();
            for stamp in &stamps {
                let before = bytes.len();
                codec.encode(stamp, &mut bytes);
                prop_assert_eq!(bytes.len() - before, codec.frame_len());
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut decoder = FrameDecoder::new(codec);
            let mut got = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                decoder.feed(&bytes[start..cut], |stamp| got.push(stamp));
                prop_assert!(decoder.pending() < codec.frame_len());
                start = cut;
            }
            prop_assert_eq!(decoder.pending(), 0);
            prop_assert_eq!(got, stamps);
        }

        #[test]
        fn hello_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), HELLO_LEN)) {
            let bytes: [u8; HELLO_LEN] = bytes.try_into().unwrap();
            if let Ok(hello) = Hello::decode(&bytes) {
                prop_assert_eq!(hello.encode(), bytes);
            }
        }
    }
}
