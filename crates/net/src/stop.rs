//! Stop requests: a channel whose receiving end a waiting machine can sleep
//! on together with its next tick; and the machine's doorbell, rung by what
//! else needs it awake.
//!
//! Every request sent rings a bell (an `eventfd`), and so do news of the
//! peers ([`crate::NewsSender`]) and the last sender going away, so a
//! machine that waits for its next tick sleeps in one `ppoll` on the bell
//! with the tick's instant as the timeout: it wakes for its tick, a stop
//! request or news, never to look for one. The same `ppoll` watches the
//! [`Doorbell`] (rung by the acceptor, the outbox and the connections to
//! restarted peers) and, when the
//! machine asks, its peers' connections: a machine whose next tick is far
//! wakes when something comes, not to look whether it did.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendError, Sender, TryRecvError};
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::node::{StopRequest, instant_of};

/// The shortest wait that ends on the timer rather than on `ppoll`'s
/// timeout: the kernel's slack for a timeout is a thousandth of it, but at
/// least the thread's own (50 us), so below this the timer gains nothing.
const TIMER_FROM: Duration = Duration::from_millis(50);

/// The bell, rung by every request and by the last sender's going.
#[derive(Debug)]
struct Bell(Arc<EventFd>);

impl Bell {
    fn ring(&self) {
        // A full counter (2^64 - 2 rings) still wakes the waiter.
        let _ = self.0.write(1);
    }
}

impl Drop for Bell {
    fn drop(&mut self) {
        // Every sender is gone: the receiver must see it without waiting.
        self.ring();
    }
}

/// The sending end of a stop channel (see [`stop_channel`]).
#[derive(Clone, Debug)]
pub struct StopSender {
    requests: Sender<StopRequest>,
    bell: Arc<Bell>,
}

impl StopSender {
    /// Sends a request and wakes the machine if it waits; an error if the
    /// machine is gone.
    pub fn send(&self, request: StopRequest) -> Result<(), SendError<StopRequest>> {
        self.requests.send(request)?;
        self.bell.ring();
        Ok(())
    }

    /// Wakes the machine without a request, to hear what was sent to it on
    /// another channel (news of its peers, [`crate::NewsSender`]): a machine
    /// between two far ticks looks at it only when woken.
    pub(crate) fn ring(&self) {
        self.bell.ring();
    }
}

/// A machine's doorbell: rung by whatever has something for the machine's
/// processing thread outside its connections' bytes (an event of the
/// acceptor, a peer the outbox declared gone, a connection to a restarted
/// peer made), which then wakes from its wait for the next tick.
#[derive(Clone, Debug)]
pub(crate) struct Doorbell(Arc<EventFd>);

impl Doorbell {
    /// A new doorbell; an error if the system has no file descriptor left.
    pub(crate) fn new() -> std::io::Result<Doorbell> {
        Ok(Doorbell(Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?)))
    }

    /// Rings it: the waiting machine wakes (once for any number of rings).
    pub(crate) fn ring(&self) {
        // A full counter (2^64 - 2 rings) still wakes the waiter.
        let _ = self.0.write(1);
    }
}

/// The receiving end of a stop channel (see [`stop_channel`]).
#[derive(Debug)]
pub struct StopReceiver {
    requests: Receiver<StopRequest>,
    bell: Arc<EventFd>,
    /// The instant a long wait ends, armed for each such wait: `ppoll`'s own
    /// timeout may end up to a thousandth of its length late (the kernel's
    /// slack for it: a millisecond for a one-second tick period), a timer
    /// has no such slack.
    timer: TimerFd,
}

/// A channel of stop requests, for [`crate::Bound::connect`] and
/// [`crate::Connected::run`]. The receiver may be waited on with other
/// channels through [`StopReceiver::channel`].
///
/// # Errors
///
/// The system cannot make an `eventfd` or a timer (no file descriptor left).
pub fn stop_channel() -> std::io::Result<(StopSender, StopReceiver)> {
    let bell = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?);
    let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK)?;
    let (requests, received) = crossbeam_channel::unbounded();
    let receiver = StopReceiver { requests: received, bell, timer };
    Ok((StopSender { requests, bell: Arc::new(Bell(Arc::clone(&receiver.bell))) }, receiver))
}

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The time came.
    Due,
    /// A request to stop at once came (or every sender of requests is gone).
    Stop,
    /// A request to stop at this instant came.
    StopAt(Instant),
    /// The doorbell rang, the stop channel's bell rang without a request,
    /// or the connections watched have bytes.
    Attention,
}

impl StopReceiver {
    /// The channel itself, to wait on it with others (`crossbeam_channel::select!`).
    pub fn channel(&self) -> &Receiver<StopRequest> {
        &self.requests
    }

    /// The next request, waiting for it; an error once every sender is gone.
    pub fn recv(&self) -> Result<StopRequest, crossbeam_channel::RecvError> {
        self.requests.recv()
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Sleeps until `due`, unless a stop request comes first, or (when
    /// given) `doorbell` rings or `connections` (an epoll set) has bytes to
    /// read. This is the one place where the decision to stop early is
    /// taken: [`StopRequest::Now`], or every sender gone, means stop now;
    /// [`StopRequest::At`] names the instant.
    ///
    /// It sleeps in `ppoll` on the bells, rather than waiting on the channel
    /// with a deadline (a timed receive spins and yields the processor
    /// several times before it parks, and at a thousand ticks a second that
    /// cost more than the tick itself) or sleeping in short slices to look
    /// for a request (a wake-up each, for nothing).
    pub(crate) fn wait_until(
        &self,
        due: Instant,
        doorbell: Option<&Doorbell>,
        connections: Option<BorrowedFd<'_>>,
    ) -> Wake {
        loop {
            match self.requests.try_recv() {
                Ok(StopRequest::Now) | Err(TryRecvError::Disconnected) => return Wake::Stop,
                Ok(StopRequest::At(time_us)) => return Wake::StopAt(instant_of(time_us)),
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= due {
                return Wake::Due;
            }
            let left = due.saturating_duration_since(now).min(Duration::from_secs(1 << 30));
            let timeout = TimeSpec::from_duration(left);
            // For a long wait only (a shorter one's slack is the thread's
            // own 50 us, and arming a timer for each of a thousand ticks a
            // second costs more than it gives), armed afresh, which also
            // clears a past expiry: the wait ends when it fires; if it
            // cannot be armed, `ppoll`'s timeout ends it.
            let timer = (left > TIMER_FROM).then_some(&self.timer).filter(|timer| {
                let once = Expiration::OneShot(TimeSpec::from_duration(left.max(Duration::from_nanos(1))));
                timer.set(once, TimerSetTimeFlags::empty()).is_ok()
            });
            // The bell first, then those given (no allocation per wait).
            let bell = PollFd::new(self.bell.as_fd(), PollFlags::POLLIN);
            let mut all = [bell.clone(), bell.clone(), bell.clone(), bell];
            let mut n = 1;
            let others = [doorbell.map(|d| d.0.as_fd()), connections, timer.map(AsFd::as_fd)];
            for fd in others.into_iter().flatten() {
                all[n] = PollFd::new(fd, PollFlags::POLLIN);
                n += 1;
            }
            let fds = &mut all[..n];
            // With the timer armed, `ppoll`'s own timeout is only a backstop.
            let backstop = TimeSpec::from_duration(left + left / 10 + Duration::from_millis(1));
            match ppoll(fds, Some(if timer.is_some() { backstop } else { timeout }), None) {
                Ok(ready) if ready > 0 => {
                    let rang = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| r.intersects(PollFlags::POLLIN));
                    let stop_bell = rang(&fds[0]);
                    let doorbell_rang = doorbell.is_some() && rang(&fds[1]);
                    let others = fds[1..n - usize::from(timer.is_some())].iter().any(rang);
                    if !stop_bell && !others {
                        // The timer alone: the instant came.
                        continue;
                    }
                    // Quieted before the channel is looked at: a request
                    // sent after this rings again, one sent before is in
                    // the channel.
                    if stop_bell {
                        let _ = self.bell.read();
                    }
                    if let (true, Some(doorbell)) = (doorbell_rang, doorbell) {
                        let _ = doorbell.0.read();
                    }
                    return match self.requests.try_recv() {
                        Ok(StopRequest::Now) | Err(TryRecvError::Disconnected) => Wake::Stop,
                        Ok(StopRequest::At(time_us)) => Wake::StopAt(instant_of(time_us)),
                        Err(TryRecvError::Empty) => Wake::Attention,
                    };
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                // Never seen; a short sleep keeps it from spinning.
                Err(_) => std::thread::sleep(due.saturating_duration_since(now).min(Duration::from_millis(10))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits up to `far` on `stop` while `act` runs on another thread.
    fn wait_while(stop: &StopReceiver, act: impl FnOnce() + Send + 'static) -> Wake {
        let far = Instant::now() + Duration::from_secs(60);
        let acting = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            act();
        });
        let woke = stop.wait_until(far, None, None);
        acting.join().unwrap();
        woke
    }

    #[test]
    fn a_request_wakes_a_wait_for_a_far_tick() {
        let (sender, stop) = stop_channel().unwrap();
        let keep = sender.clone();
        let woke = wait_while(&stop, move || sender.send(StopRequest::At(now_us_plus(1_000_000))).unwrap());
        assert!(matches!(woke, Wake::StopAt(_)), "{woke:?}");
        // The bell is quiet again, so the next wait sleeps instead of spinning.
        assert_eq!(stop.bell.read(), Err(nix::errno::Errno::EAGAIN));
        assert_eq!(stop.wait_until(Instant::now() + Duration::from_millis(20), None, None), Wake::Due);
        let woke = wait_while(&stop, move || keep.send(StopRequest::Now).unwrap());
        assert_eq!(woke, Wake::Stop);
    }

    #[test]
    fn the_last_sender_going_wakes_a_wait_and_stops_it() {
        let (sender, stop) = stop_channel().unwrap();
        let other = sender.clone();
        drop(other);
        let woke = wait_while(&stop, move || drop(sender));
        assert_eq!(woke, Wake::Stop);
    }

    #[test]
    fn the_doorbell_a_ring_and_bytes_each_wake_a_wait_for_a_far_tick() {
        use std::io::Write as _;
        let (sender, stop) = stop_channel().unwrap();
        let far = || Instant::now() + Duration::from_secs(60);
        let soon = || Instant::now() + Duration::from_millis(20);
        // The doorbell, rung from another thread.
        let doorbell = Doorbell::new().unwrap();
        let ringer = doorbell.clone();
        let acting = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            ringer.ring();
        });
        assert_eq!(stop.wait_until(far(), Some(&doorbell), None), Wake::Attention);
        acting.join().unwrap();
        // Quiet again: the next wait sleeps to its instant.
        assert_eq!(stop.wait_until(soon(), Some(&doorbell), None), Wake::Due);
        // The stop channel's bell rung with no request: news sent while the
        // machine waits.
        let (news, heard) = crate::news_channel(sender.clone());
        let telling = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            assert!(news.send(crate::PeerNews::Down { peer: 2 }));
        });
        assert_eq!(stop.wait_until(far(), Some(&doorbell), None), Wake::Attention);
        telling.join().unwrap();
        assert_eq!(heard.try_recv(), Ok(crate::PeerNews::Down { peer: 2 }));
        assert_eq!(stop.wait_until(soon(), Some(&doorbell), None), Wake::Due);
        // Bytes to read on a connection watched; unwatched, they wake nothing.
        let (mut peer, ours) = std::os::unix::net::UnixStream::pair().unwrap();
        peer.write_all(b"x").unwrap();
        assert_eq!(stop.wait_until(soon(), Some(&doorbell), None), Wake::Due);
        assert_eq!(stop.wait_until(far(), Some(&doorbell), Some(ours.as_fd())), Wake::Attention);
        // A request that comes with a ring is the request.
        sender.send(StopRequest::Now).unwrap();
        doorbell.ring();
        assert_eq!(stop.wait_until(far(), Some(&doorbell), None), Wake::Stop);
    }

    fn now_us_plus(us: i64) -> i64 {
        crate::now_us() + us
    }
}
