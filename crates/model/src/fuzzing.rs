//! The bodies of the fuzz targets in `fuzz/`, shared with the tests that
//! replay their corpus on the stable compiler, so the two cannot drift.
//!
//! Each function takes arbitrary bytes, must never panic on them, and
//! asserts the properties that must hold whatever a peer sends.

use crate::clockset::ClockKinds;
use crate::wire::{
    CLOCK_FRAME_LEN, FrameCodec, FrameDecoder, HELLO_HEADER_LEN, HELLO_LEN, Hello, HelloError, PROTOCOL_VERSION,
    TOKEN_LEN,
};

/// The token the `hello` target checks against.
const TOKEN: [u8; TOKEN_LEN] = *b"clocklab-fuzzing";

/// The `wire_frames` target: a byte stream fed to a [`FrameDecoder`] in
/// chunks whose sizes the input also chooses gives the same stamps as the
/// stream cut into whole frames at once, and every stamp re-encodes to its
/// frame.
///
/// The first byte chooses the clocks (its two low bits) and the number of
/// machines (`2 + (byte >> 2) % 64`); the second says how many of the
/// following bytes are chunk sizes (at most 15); the rest is the stream.
pub fn fuzz_wire_frames(data: &[u8]) {
    let Some((&layout, rest)) = data.split_first() else { return };
    let Some((&n_cuts, rest)) = rest.split_first() else { return };
    let kinds = ClockKinds::from_bits(layout & 0b11).expect("two bits are always a clock set");
    let n_machines = 2 + u32::from(layout >> 2) % 64;
    let codec = FrameCodec::new(kinds, n_machines);
    let n_cuts = usize::from(n_cuts % 16).min(rest.len());
    let (cuts, stream) = rest.split_at(n_cuts);

    let mut decoder = FrameDecoder::new(codec);
    let mut got = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let end = (start + usize::from(cut)).min(stream.len());
        decoder.feed(&stream[start..end], |stamp| got.push(stamp));
        assert!(decoder.pending() < codec.frame_len(), "the decoder holds at most a partial frame");
        start = end;
    }
    decoder.feed(&stream[start..], |stamp| got.push(stamp));

    let frames: Vec<&[u8]> = stream.chunks_exact(codec.frame_len()).collect();
    assert_eq!(got.len(), frames.len(), "one stamp per whole frame");
    for (stamp, frame) in got.iter().zip(&frames) {
        assert_eq!(stamp, &codec.decode(frame), "the stamps depend on how the stream was cut");
        let mut again = Vec::new();
        codec.encode(stamp, &mut again);
        assert_eq!(&again[..], *frame, "a decoded frame re-encodes to its bytes");
        assert!(stamp.lamport <= u64::from(u32::MAX), "the Lamport field holds 32 bits");
        assert_eq!(stamp.vector.as_ref().map(|v| v.len()), kinds.vector.then_some(n_machines as usize));
        assert_eq!(stamp.hlc.is_some(), kinds.hlc);
    }
    assert_eq!(decoder.pending(), stream.len() % codec.frame_len());
}

/// The `hello` target: a connection's first bytes, of any length. The first
/// [`HELLO_LEN`] bytes (if there are that many) are the hello, and what
/// follows is frames, as on a real connection.
///
/// A hello that decodes re-encodes to the same bytes; one that passes the
/// check has this build's version, the run's token, clocks and size, and an
/// expected sender.
pub fn fuzz_hello(data: &[u8]) {
    let Some((header, _)) = data.split_first_chunk::<HELLO_HEADER_LEN>() else { return };
    let header_verdict = Hello::check_header(header);
    let Some((head, rest)) = data.split_first_chunk::<HELLO_LEN>() else {
        // A connection that closes before a whole hello is dropped unread.
        return;
    };
    let hello = match Hello::decode(head) {
        Ok(hello) => hello,
        Err(error) => {
            assert!(
                matches!(error, HelloError::BadMagic | HelloError::UnknownClocks(_)),
                "decode judges only the magic and the clocks byte"
            );
            return;
        }
    };
    assert_eq!(&hello.encode(), head, "a decoded hello re-encodes to its bytes");
    assert_eq!(header_verdict.is_ok(), hello.version == PROTOCOL_VERSION, "the header says what the version says");

    // A run of three machines with every clock, seen from machine 1: 2 and 3 may connect.
    let ours = Hello::new(1, TOKEN, ClockKinds::ALL, 3);
    let expected = |id| id == 2 || id == 3;
    let verdict = hello.check(&ours, expected);
    match verdict {
        Ok(()) => {
            assert_eq!(hello.version, PROTOCOL_VERSION);
            assert_eq!(hello.token, TOKEN);
            assert!(expected(hello.machine));
            assert_eq!((hello.clocks, hello.n_machines), (ClockKinds::ALL, 3));
        }
        Err(HelloError::Version { got, .. }) => assert_ne!(got, PROTOCOL_VERSION),
        Err(HelloError::Token) => assert_ne!(hello.token, TOKEN),
        Err(HelloError::UnknownMachine(id)) => assert!(!expected(id)),
        Err(HelloError::Clocks { theirs, .. }) => assert_ne!(theirs, ClockKinds::ALL),
        Err(HelloError::Machines { theirs, .. }) => assert_ne!(theirs, 3),
        Err(HelloError::BadMagic | HelloError::UnknownClocks(_)) => unreachable!("decode already checked these"),
    }

    // What follows an accepted hello is frames.
    if verdict.is_ok() {
        let codec = FrameCodec::new(hello.clocks, hello.n_machines);
        let mut decoder = FrameDecoder::new(codec);
        let mut n_frames = 0;
        decoder.feed(rest, |_| n_frames += 1);
        assert_eq!(n_frames, rest.len() / codec.frame_len());
        assert!(codec.frame_len() >= CLOCK_FRAME_LEN);
    }
}
