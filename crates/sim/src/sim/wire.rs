//! The event heap and the simulated wire: pending ticks, faults and
//! deliveries, in virtual time.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use clocklab_driver::Due;
use clocklab_model::{MachineId, Stamp};

use crate::network::Network;

/// What happens at a point of virtual time.
///
/// A delivery names only its link: the message itself waits in the link's
/// queue, so that the heap's entries stay small (the heap moves them on
/// every push and pop).
#[derive(Clone, Copy, Debug)]
pub(super) enum Payload {
    /// Machine `id`'s timeline is due (a change of its life, or a tick):
    /// each machine has one such entry in the heap while it has anything to do.
    Wake { id: MachineId },
    /// The oldest message on the link from `from` to `to` arrives at `to`'s queue.
    Delivery { from: MachineId, to: MachineId },
}

/// A pending event, ordered by its key alone.
///
/// The key is `time_us << 64 | class << 62 | order`: earlier first; at the
/// same microsecond, deliveries (class 0, in the order they were sent) come
/// before the changes of machines' lives (class 1, a crash, a restart, a
/// pause, a clock fault), and those before ticks (class 2), each by machine
/// id. So a message that arrives at the instant of a tick is already in the
/// queue when the tick runs, a machine that crashes at the instant of its
/// tick does not tick, and the order of simultaneous events never depends on
/// anything but the seed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    pub(super) key: u128,
    pub(super) payload: Payload,
}

const CHANGE_CLASS: u128 = 1 << 62;
const TICK_CLASS: u128 = 2 << 62;

impl Pending {
    pub(super) fn time_us(&self) -> u64 {
        (self.key >> 64) as u64
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest event.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// The heap key of machine `id`'s timeline, due at `time_us` for `due`.
pub(super) fn wake_key(time_us: u64, due: Due, id: MachineId) -> u128 {
    let class = match due {
        Due::Change => CHANGE_CLASS,
        Due::Tick => TICK_CLASS,
    };
    u128::from(time_us) << 64 | class | u128::from(id)
}

/// A message on the wire: what it carries, and the incarnation of its
/// receiver it was sent to (one that crashed since never gets it).
#[derive(Clone, Debug)]
pub(super) struct InFlight {
    pub(super) stamp: Stamp,
    pub(super) incarnation: u32,
    /// When the fault plan let it leave, microseconds after the start.
    pub(super) release_us: u64,
    /// Its sender crashed before it left: it never arrives.
    pub(super) dropped: bool,
}

/// The messages in flight from one sender to one receiver, oldest first, and
/// when the last of them arrives.
#[derive(Clone, Debug)]
struct Link {
    to: MachineId,
    last_arrival_us: u64,
    messages: VecDeque<InFlight>,
}

/// When a message sent now arrives: the network's delay, a latency fault's
/// extra delay, not before a partition that holds it heals.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Hold {
    /// A latency fault's extra delay, in microseconds.
    pub(super) extra_delay_us: u64,
    /// A partition holds it until then (0: none).
    pub(super) until_us: u64,
}

/// The most emptied link queues kept for reuse: enough for every link of a
/// run of dozens of machines to come and go without an allocation, few
/// enough that memory never grows with the square of the machines.
const SPARE_QUEUES_MAX: usize = 4_096;

/// The wire: messages in flight, in a heap with the pending ticks and faults.
#[derive(Debug)]
pub(super) struct Wire {
    pub(super) heap: BinaryHeap<Pending>,
    network: Network,
    /// Per sender (`links[from - 1]`), the links with messages in flight: a
    /// later message never arrives before an earlier one on its link, as on a
    /// TCP connection. A link is dropped when its last message arrives, so
    /// memory grows with the machines and the messages in flight, never with
    /// the square of the machines.
    links: Vec<Vec<Link>>,
    /// Queues of links that emptied, kept for the next links to empty ones
    /// (a link is made and dropped as often as messages cross it alone).
    spare: Vec<VecDeque<InFlight>>,
    /// Messages sent so far; also the order of simultaneous deliveries.
    n_sent: u64,
    pub(super) in_flight: u64,
    pub(super) max_in_flight: u64,
}

impl Wire {
    /// An empty wire for `n_machines`, its delays drawn by `network`.
    pub(super) fn new(n_machines: usize, network: Network) -> Wire {
        Wire {
            heap: BinaryHeap::with_capacity(n_machines * 2),
            network,
            links: vec![Vec::new(); n_machines],
            spare: Vec::new(),
            n_sent: 0,
            in_flight: 0,
            max_in_flight: 0,
        }
    }

    /// Puts a message from `from` to `to` on the wire at `now_us`.
    pub(super) fn send(&mut self, now_us: u64, from: MachineId, to: MachineId, message: InFlight, hold: Hold) {
        let links = &mut self.links[from as usize - 1];
        let delay_us = self.network.draw_delay_us().saturating_add(hold.extra_delay_us);
        let earliest_us = now_us.saturating_add(delay_us).max(hold.until_us);
        let arrival_us = match links.iter_mut().find(|link| link.to == to) {
            Some(link) => {
                link.last_arrival_us = earliest_us.max(link.last_arrival_us);
                link.messages.push_back(message);
                link.last_arrival_us
            }
            None => {
                let mut messages = self.spare.pop().unwrap_or_default();
                messages.push_back(message);
                links.push(Link { to, last_arrival_us: earliest_us, messages });
                earliest_us
            }
        };
        // Fewer than 2^62 messages fit in any run, so the order never spills into the class bits.
        // On one link arrivals never decrease and the order rises with every
        // send, so the heap gives a link's messages in the order they were sent.
        let key = u128::from(arrival_us) << 64 | u128::from(self.n_sent);
        self.n_sent += 1;
        self.heap.push(Pending { key, payload: Payload::Delivery { from, to } });
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
    }

    /// Machine `from` crashed at `at_us`: its messages that the fault plan
    /// had not released by then never leave.
    pub(super) fn sender_crashed(&mut self, from: MachineId, at_us: u64) {
        for link in &mut self.links[from as usize - 1] {
            for message in link.messages.iter_mut().filter(|message| message.release_us > at_us) {
                message.dropped = true;
            }
        }
    }

    /// The oldest message in flight from `from` to `to`, which has arrived.
    pub(super) fn arrived(&mut self, from: MachineId, to: MachineId) -> InFlight {
        self.in_flight -= 1;
        let links = &mut self.links[from as usize - 1];
        let idx = links.iter().position(|link| link.to == to).expect("a delivery has its link");
        let message = links[idx].messages.pop_front().expect("a delivery has its message");
        if links[idx].messages.is_empty() {
            let link = links.swap_remove(idx);
            if self.spare.len() < SPARE_QUEUES_MAX {
                self.spare.push(link.messages);
            }
        }
        message
    }
}
