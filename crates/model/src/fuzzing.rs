//! The bodies of the fuzz targets in `fuzz/`, shared with the tests that
//! replay their corpus on the stable compiler, so the two cannot drift.
//!
//! Each function takes arbitrary bytes, must never panic on them, and
//! asserts the properties that must hold whatever a peer sends.

use crate::wire::{
    CLOCK_FRAME_LEN, FrameDecoder, HELLO_LEN, Hello, HelloError, PROTOCOL_VERSION, TOKEN_LEN, decode_clock,
};

/// The token the `hello` target checks against.
const TOKEN: [u8; TOKEN_LEN] = *b"clocklab-fuzzing";

/// The `wire_frames` target: a byte stream fed to a [`FrameDecoder`] in
/// chunks whose sizes the input also chooses gives the same clocks as the
/// stream cut into whole frames at once.
///
/// The first byte says how many of the following bytes are chunk sizes (at
/// most 15); the rest is the stream.
pub fn fuzz_wire_frames(data: &[u8]) {
    let Some((&n_cuts, rest)) = data.split_first() else { return };
    let n_cuts = usize::from(n_cuts % 16).min(rest.len());
    let (cuts, stream) = rest.split_at(n_cuts);

    let mut decoder = FrameDecoder::new();
    let mut got = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let end = (start + usize::from(cut)).min(stream.len());
        decoder.feed(&stream[start..end], |clock| got.push(clock));
        assert!(decoder.pending() < CLOCK_FRAME_LEN, "the decoder holds at most a partial frame");
        start = end;
    }
    decoder.feed(&stream[start..], |clock| got.push(clock));

    let want: Vec<u64> = stream
        .chunks_exact(CLOCK_FRAME_LEN)
        .map(|frame| decode_clock(frame.try_into().expect("whole frame")))
        .collect();
    assert_eq!(got, want, "the clocks depend on how the stream was cut");
    assert_eq!(decoder.pending(), stream.len() % CLOCK_FRAME_LEN);
    assert!(got.iter().all(|&clock| clock <= u64::from(u32::MAX)), "a frame holds 32 bits");
}

/// The `hello` target: a connection's first bytes, of any length. The first
/// [`HELLO_LEN`] bytes (if there are that many) are the hello, and what
/// follows is clock frames, as on a real connection.
///
/// A hello that decodes re-encodes to the same bytes; one that passes the
/// check has this build's version, the run's token and an expected sender.
pub fn fuzz_hello(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<HELLO_LEN>() else {
        // A connection that closes before a whole hello is dropped unread.
        return;
    };
    let hello = match Hello::decode(head) {
        Ok(hello) => hello,
        Err(error) => {
            assert_eq!(error, HelloError::BadMagic, "decode judges only the magic");
            return;
        }
    };
    assert_eq!(&hello.encode(), head, "a decoded hello re-encodes to its bytes");

    // A run of three machines, seen from machine 1: 2 and 3 may connect.
    let expected = |id| id == 2 || id == 3;
    let verdict = hello.check(&TOKEN, expected);
    match verdict {
        Ok(()) => {
            assert_eq!(hello.version, PROTOCOL_VERSION);
            assert_eq!(hello.token, TOKEN);
            assert!(expected(hello.machine));
        }
        Err(HelloError::Version { got, .. }) => assert_ne!(got, PROTOCOL_VERSION),
        Err(HelloError::Token) => assert_ne!(hello.token, TOKEN),
        Err(HelloError::UnknownMachine(id)) => assert!(!expected(id)),
        Err(HelloError::BadMagic) => unreachable!("decode already checked the magic"),
    }
    // The same hello checked against its own token fails only on version or sender.
    let own = hello.check(&hello.token, |_| true);
    assert_eq!(own.is_ok(), hello.version == PROTOCOL_VERSION);

    // What follows an accepted hello is clock frames.
    if verdict.is_ok() {
        let mut decoder = FrameDecoder::new();
        let mut n_frames = 0;
        decoder.feed(rest, |_| n_frames += 1);
        assert_eq!(n_frames, rest.len() / CLOCK_FRAME_LEN);
    }
}
