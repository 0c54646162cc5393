//! What travels on a connection: one hello each way when it opens, then
//! clock frames.
//!
//! **Clock frame.** A message is the sender's logical clock as a 4-byte
//! unsigned integer in network byte order (big-endian). Clocks are `u64`
//! inside a machine; the wire holds 32 bits. A clock above `u32::MAX` (which
//! takes over 22 years at 6 ticks per second, or a peer that sent
//! `4,294,967,295`) is sent as `u32::MAX`: the frame saturates, never wraps,
//! so a receiver's clock still never goes backwards. [`encode_clock`] reports
//! the saturation so that the runtime can count it.
//!
//! **Hello.** The connecting side sends a [`Hello`] (magic, protocol version,
//! its machine id, the run's token); the accepting side checks it and answers
//! with its own. A connection whose hello does not match is closed before any
//! of its bytes reaches the queue.

use crate::MachineId;

/// Bytes in a clock frame.
pub const CLOCK_FRAME_LEN: usize = 4;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The first bytes of every hello.
pub const HELLO_MAGIC: [u8; 4] = *b"CLKL";

/// Bytes in a run token.
pub const TOKEN_LEN: usize = 16;

/// Bytes in a hello: magic, version, machine id, token.
pub const HELLO_LEN: usize = 4 + 2 + 4 + TOKEN_LEN;

/// A clock as it goes on the wire, and whether it had to saturate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedClock {
    /// The frame.
    pub frame: [u8; CLOCK_FRAME_LEN],
    /// The clock was above `u32::MAX` and was sent as `u32::MAX`.
    pub saturated: bool,
}

/// Encodes a clock as a big-endian `u32` frame, saturating above `u32::MAX`.
pub fn encode_clock(clock: u64) -> EncodedClock {
    let value = u32::try_from(clock).unwrap_or(u32::MAX);
    EncodedClock { frame: value.to_be_bytes(), saturated: clock > u64::from(u32::MAX) }
}

/// Decodes a clock frame.
pub fn decode_clock(frame: [u8; CLOCK_FRAME_LEN]) -> u64 {
    u64::from(u32::from_be_bytes(frame))
}

/// Splits a byte stream into clock frames, keeping a partial frame for later.
///
/// Its buffer never holds more than three bytes, whatever a peer sends.
#[derive(Clone, Debug, Default)]
pub struct FrameDecoder {
    partial: [u8; CLOCK_FRAME_LEN],
    partial_len: usize,
}

impl FrameDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Feeds `bytes`, calling `on_clock` for every complete frame in order.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_clock: impl FnMut(u64)) {
        if self.partial_len > 0 {
            let take = (CLOCK_FRAME_LEN - self.partial_len).min(bytes.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&bytes[..take]);
            self.partial_len += take;
            bytes = &bytes[take..];
            if self.partial_len < CLOCK_FRAME_LEN {
                return;
            }
            on_clock(decode_clock(self.partial));
            self.partial_len = 0;
        }
        let mut chunks = bytes.chunks_exact(CLOCK_FRAME_LEN);
        for chunk in &mut chunks {
            on_clock(decode_clock(chunk.try_into().expect("chunks_exact yields whole frames")));
        }
        let rest = chunks.remainder();
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    /// How many bytes of an unfinished frame are held.
    pub fn pending(&self) -> usize {
        self.partial_len
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
    /// The token is not this run's.
    #[error("wrong run token")]
    Token,
    /// The machine id is not one the connection may come from.
    #[error("machine id {0} is not an expected peer")]
    UnknownMachine(MachineId),
}

impl Hello {
    /// A hello from `machine` for the run with `token`.
    pub fn new(machine: MachineId, token: [u8; TOKEN_LEN]) -> Hello {
        Hello { version: PROTOCOL_VERSION, machine, token }
    }

    /// The hello's bytes.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut bytes = [0u8; HELLO_LEN];
        bytes[..4].copy_from_slice(&HELLO_MAGIC);
        bytes[4..6].copy_from_slice(&self.version.to_be_bytes());
        bytes[6..10].copy_from_slice(&self.machine.to_be_bytes());
        bytes[10..].copy_from_slice(&self.token);
        bytes
    }

    /// Parses a hello without judging it; only the magic is checked.
    pub fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Hello, HelloError> {
        if bytes[..4] != HELLO_MAGIC {
            return Err(HelloError::BadMagic);
        }
        let version = u16::from_be_bytes([bytes[4], bytes[5]]);
        let machine = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        let mut token = [0u8; TOKEN_LEN];
        token.copy_from_slice(&bytes[10..]);
        Ok(Hello { version, machine, token })
    }

    /// Checks the hello against this run: version, token, and that the
    /// sender is one of `expected` machines.
    pub fn check(&self, token: &[u8; TOKEN_LEN], expected: impl Fn(MachineId) -> bool) -> Result<(), HelloError> {
        if self.version != PROTOCOL_VERSION {
            return Err(HelloError::Version { got: self.version, expected: PROTOCOL_VERSION });
        }
        // Compare every byte so the time taken says nothing about the token.
        let mismatch = self.token.iter().zip(token).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if mismatch != 0 {
            return Err(HelloError::Token);
        }
        if !expected(self.machine) {
            return Err(HelloError::UnknownMachine(self.machine));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    fn hello_round_trips_and_checks() {
        let token = [7u8; TOKEN_LEN];
        let hello = Hello::new(2, token);
        let decoded = Hello::decode(&hello.encode()).unwrap();
        assert_eq!(decoded, hello);
        assert_eq!(decoded.check(&token, |id| id == 2), Ok(()));
        assert_eq!(decoded.check(&[8u8; TOKEN_LEN], |_| true), Err(HelloError::Token));
        assert_eq!(decoded.check(&token, |id| id == 3), Err(HelloError::UnknownMachine(2)));
        let old = Hello { version: 0, ..hello };
        assert!(matches!(old.check(&token, |_| true), Err(HelloError::Version { got: 0, .. })));
        let mut garbage = hello.encode();
        garbage[0] = b'G';
        assert_eq!(Hello::decode(&garbage), Err(HelloError::BadMagic));
    }

    proptest! {
        #[test]
        fn clocks_round_trip(clock in 0u64..=u64::from(u32::MAX)) {
            let encoded = encode_clock(clock);
            prop_assert!(!encoded.saturated);
            prop_assert_eq!(decode_clock(encoded.frame), clock);
        }

        #[test]
        fn decoder_is_split_agnostic(clocks in proptest::collection::vec(any::<u32>(), 0..50), cuts in proptest::collection::vec(0usize..200, 0..10)) {
            let bytes: Vec<u8> = clocks.iter().flat_map(|c| c.to_be_bytes()).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut decoder = FrameDecoder::new();
            let mut got = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                decoder.feed(&bytes[start..cut], |c| got.push(c));
                start = cut;
            }
            prop_assert_eq!(decoder.pending(), 0);
            let want: Vec<u64> = clocks.into_iter().map(u64::from).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn hello_decode_never_panics(bytes in proptest::array::uniform26(any::<u8>())) {
            let _ = Hello::decode(&bytes);
        }
    }
}
