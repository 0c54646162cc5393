//! The 32-bit wire limit: clocks are `u64` inside a machine, a frame holds a
//! `u32`. A clock past the limit saturates on the wire; nothing wraps, nothing
//! panics, and no machine's clock ever goes backwards.

use clocklab_model::wire::{FrameCodec, FrameDecoder, encode_clock};
use clocklab_model::{ClockKinds, LamportClock, Machine, MachineParams, TickEvent, seed};

const WIRE_MAX: u64 = u32::MAX as u64; // 4,294,967,295

/// Every tick sends (`max_event_num` 3), so each tick after the first is a send.
fn always_sending(id: u32) -> Machine<LamportClock> {
    Machine::new(MachineParams { id, n_machines: 3, rate: 1, max_event_num: 3 }, LamportClock::default()).unwrap()
}

/// The clocks in `bytes`, as a receiving connection of a Lamport-only run decodes them.
fn frames(bytes: &[u8]) -> Vec<u64> {
    let mut clocks = Vec::new();
    FrameDecoder::new(FrameCodec::new(ClockKinds::LAMPORT, 3)).feed(bytes, |stamp| clocks.push(stamp.lamport));
    clocks
}

#[test]
fn receiving_the_largest_wire_clock_goes_past_it_without_wrapping() {
    let mut machine = always_sending(1);
    let mut rng = seed::rng_from_seed(1);
    let received = frames(&[0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(received, [4_294_967_295]);

    machine.deliver(0, 2, received[0]);
    let tick = machine.tick(0, &mut rng);
    assert_eq!(tick.event, TickEvent::Processed { from: 2, stamp: 4_294_967_295 });
    assert_eq!(tick.clock, 4_294_967_296, "max(0, 4294967295) + 1, in u64");

    // The next send carries 4,294,967,297, which the wire cannot hold: it saturates.
    let tick = machine.tick(0, &mut rng);
    let TickEvent::Sent { stamp, .. } = tick.event else { panic!("max_event_num 3 always sends: {tick:?}") };
    assert_eq!((stamp, tick.clock), (4_294_967_297, 4_294_967_297));
    let encoded = encode_clock(stamp);
    assert_eq!(encoded.frame, [0xFF, 0xFF, 0xFF, 0xFF]);
    assert!(encoded.saturated, "the runtime is told so that it can count it");
    assert_eq!(frames(&encoded.frame), [WIRE_MAX]);
}

#[test]
fn clocks_past_the_limit_keep_rising_and_receivers_never_go_back() {
    let mut sender = always_sending(1);
    let mut receiver = always_sending(2);
    let mut rng = seed::rng_from_seed(2);
    sender.deliver(0, 3, WIRE_MAX);
    sender.tick(0, &mut rng);
    receiver.deliver(0, 3, WIRE_MAX - 10);
    receiver.tick(0, &mut rng);

    let mut last_sender = sender.clock();
    let mut last_receiver = receiver.clock();
    for _ in 0..1_000 {
        let tick = sender.tick(0, &mut rng);
        let TickEvent::Sent { stamp, .. } = tick.event else { panic!("always sends") };
        assert_eq!(tick.clock, last_sender + 1, "the sender's clock moves by one, past u32::MAX");
        last_sender = tick.clock;
        let on_the_wire = frames(&encode_clock(stamp).frame);
        assert_eq!(on_the_wire, [WIRE_MAX], "every frame past the limit is saturated, none wraps to 0");

        receiver.deliver(0, 1, on_the_wire[0]);
        let tick = receiver.tick(0, &mut rng);
        assert!(matches!(tick.event, TickEvent::Processed { from: 1, stamp: WIRE_MAX }));
        assert_eq!(tick.clock, last_receiver.max(WIRE_MAX) + 1, "Lamport's rule on the saturated value");
        assert!(tick.clock > last_receiver);
        last_receiver = tick.clock;
    }
    assert_eq!(last_sender, WIRE_MAX + 1 + 1_000);
}

#[test]
fn clocks_below_the_limit_are_exact() {
    for clock in [0, 1, 17, WIRE_MAX - 1, WIRE_MAX] {
        let encoded = encode_clock(clock);
        assert!(!encoded.saturated);
        assert_eq!(frames(&encoded.frame), [clock]);
    }
}
