//! The cross-core message queues and their wake-ups.
//!
//! Every core has one inbound queue that every other core can push to (a lock-free
//! multi-producer queue: `std::sync::mpsc`), so messages from one core to another arrive in
//! the order they were sent. A core that has nothing to do sleeps in its own io_uring ring; a
//! sender wakes it with a `MSG_RING` completion posted into that ring, and only when the
//! receiver said it was about to sleep, so a busy core is never woken. The sleep flag follows
//! the usual store-fence-load handshake on both sides, so no wake-up is ever lost.
//!
//! Under `appendfsync always` a core holds what it sends until its log is durable (see
//! `persist::aof::log`): a reply travelling to another core must not announce a write
//! before the write's record is synced. Held messages are sealed with the sync generation
//! that must complete first and go out, in order, once it has.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// The generation of a held message not yet sealed.
const UNSEALED: u64 = u64::MAX;

/// What one core publishes for the others: whether it sleeps, and the fd of its ring.
#[derive(Default)]
pub struct Signal {
    sleeping: AtomicBool,
    /// Messages pushed and not yet taken: the receiver's "is anything there" check before it
    /// sleeps, without taking a message out.
    queued: AtomicUsize,
    ring_fd: AtomicI32,
}

/// The shared part of the mesh, built once before the cores start.
pub struct MeshBuilder<M> {
    senders: Vec<Sender<M>>,
    receivers: Vec<Option<Receiver<M>>>,
    signals: Arc<[Signal]>,
}

impl<M: Send> MeshBuilder<M> {
    pub fn new(cores: usize) -> MeshBuilder<M> {
        let (senders, receivers) = (0..cores)
            .map(|_| {
                let (tx, rx) = channel();
                (tx, Some(rx))
            })
            .unzip();
        MeshBuilder {
            senders,
            receivers,
            signals: (0..cores).map(|_| Signal::default()).collect(),
        }
    }

    /// The endpoint of core `id`. Each id is taken once.
    pub fn join(&mut self, id: usize) -> Option<Mesh<M>> {
        let receiver = self.receivers.get_mut(id)?.take()?;
        Some(Mesh {
            id,
            senders: self.senders.clone(),
            receiver,
            signals: self.signals.clone(),
            to_wake: RefCell::new(Vec::new()),
            sent: Cell::new(0),
            hold: Cell::new(false),
            held: RefCell::new(VecDeque::new()),
        })
    }

    /// A sender for a thread that is not a core (the metrics endpoint's).
    pub fn outside(&self) -> Outside<M> {
        Outside {
            senders: self.senders.clone(),
            signals: self.signals.clone(),
        }
    }
}

/// Sends messages to the cores from a thread that is not one. It has no ring of its own to
/// post wake-ups with: it tells the caller which ring to wake, and never clears a core's
/// sleep flag, so the cores' own wake-ups of each other are unaffected.
pub struct Outside<M> {
    senders: Vec<Sender<M>>,
    signals: Arc<[Signal]>,
}

impl<M: Send> Outside<M> {
    /// Pushes `msg` to core `to`. Returns the ring fd to wake when that core sleeps, None
    /// when it is awake (it will see the message) or has stopped.
    pub fn send(&self, to: usize, msg: M) -> Option<i32> {
        let (sender, signal) = (self.senders.get(to)?, self.signals.get(to)?);
        signal.queued.fetch_add(1, Ordering::Relaxed);
        if sender.send(msg).is_err() {
            signal.queued.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        // The same handshake as `Mesh::send`.
        fence(Ordering::SeqCst);
        if signal.sleeping.load(Ordering::Relaxed) {
            return Some(signal.ring_fd.load(Ordering::Acquire));
        }
        None
    }
}

/// One core's end of the mesh.
pub struct Mesh<M> {
    id: usize,
    senders: Vec<Sender<M>>,
    receiver: Receiver<M>,
    signals: Arc<[Signal]>,
    /// Ring fds of sleeping cores this core must wake (with `MSG_RING`) before it next waits.
    to_wake: RefCell<Vec<i32>>,
    /// Messages sent, for INFO.
    sent: Cell<u64>,
    /// Messages are held until `release` (the log's group commit).
    hold: Cell<bool>,
    /// Held messages, oldest first, with the sync generation each waits for
    /// ([`UNSEALED`] until the next `seal`).
    held: RefCell<VecDeque<(u64, usize, M)>>,
}

impl<M: Send> Mesh<M> {
    pub fn id(&self) -> usize {
        self.id
    }

    /// A sender for a helper thread this core starts (MIGRATE's connection).
    pub fn outside(&self) -> Outside<M> {
        Outside {
            senders: self.senders.clone(),
            signals: self.signals.clone(),
        }
    }

    pub fn cores(&self) -> usize {
        self.senders.len()
    }

    /// Publishes this core's ring fd, so others can wake it.
    pub fn set_ring_fd(&self, fd: i32) {
        if let Some(s) = self.signals.get(self.id) {
            s.ring_fd.store(fd, Ordering::Release);
        }
    }

    /// Pushes `msg` to core `to`. Never blocks: queues are unbounded (what a core may have in
    /// flight is bounded by its connections' limits). While anything is held, later messages
    /// are held behind it, so each destination sees them in the order they were sent.
    pub fn send(&self, to: usize, msg: M) {
        if self.hold.get() || !self.held.borrow().is_empty() {
            self.held.borrow_mut().push_back((UNSEALED, to, msg));
            return;
        }
        self.send_now(to, msg);
    }

    /// Holds (or stops holding) what is sent from now on.
    pub fn set_hold(&self, hold: bool) {
        self.hold.set(hold);
    }

    /// The messages held and not yet sealed wait for sync generation `generation`.
    pub fn seal(&self, generation: u64) {
        for m in self.held.borrow_mut().iter_mut().rev() {
            if m.0 != UNSEALED {
                break;
            }
            m.0 = generation;
        }
    }

    /// Sends, in order, the held messages sealed with a generation up to `durable`.
    pub fn release(&self, durable: u64) {
        loop {
            let next = {
                let mut held = self.held.borrow_mut();
                match held.front() {
                    Some(m) if m.0 <= durable => held.pop_front(),
                    _ => None,
                }
            };
            let Some((_, to, msg)) = next else { return };
            self.send_now(to, msg);
        }
    }

    fn send_now(&self, to: usize, msg: M) {
        let (Some(sender), Some(signal)) = (self.senders.get(to), self.signals.get(to)) else {
            return;
        };
        // Counted before it is queued, so the receiver never sees fewer than are there.
        signal.queued.fetch_add(1, Ordering::Relaxed);
        if sender.send(msg).is_err() {
            signal.queued.fetch_sub(1, Ordering::Relaxed);
            return; // that core has stopped
        }
        self.sent.set(self.sent.get() + 1);
        // Pairs with the fence in `prepare_to_sleep`: either the receiver sees our message
        // before it sleeps, or we see it sleeping and wake it.
        fence(Ordering::SeqCst);
        if signal.sleeping.swap(false, Ordering::Relaxed) {
            let fd = signal.ring_fd.load(Ordering::Acquire);
            let mut to_wake = self.to_wake.borrow_mut();
            if !to_wake.contains(&fd) {
                to_wake.push(fd);
            }
        }
    }

    /// Ring fds of the cores to wake: the event loop turns them into `MSG_RING` entries.
    pub fn take_wakes(&self, out: &mut Vec<i32>) {
        out.append(&mut self.to_wake.borrow_mut());
    }

    /// The next message for this core, if any.
    pub fn try_recv(&self) -> Option<M> {
        let msg = self.receiver.try_recv().ok()?;
        if let Some(s) = self.signals.get(self.id) {
            s.queued.fetch_sub(1, Ordering::Relaxed);
        }
        Some(msg)
    }

    /// Whether a message is waiting (for a core that spins before sleeping).
    pub fn has_messages(&self) -> bool {
        self.signals
            .get(self.id)
            .is_some_and(|s| s.queued.load(Ordering::Relaxed) > 0)
    }

    /// Announces that this core is about to sleep. Returns false (and stays awake) when a
    /// message is already waiting.
    pub fn prepare_to_sleep(&self) -> bool {
        let Some(s) = self.signals.get(self.id) else {
            return true;
        };
        s.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if s.queued.load(Ordering::Relaxed) > 0 {
            s.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// This core is awake again: senders need not wake it.
    pub fn awake(&self) {
        if let Some(s) = self.signals.get(self.id) {
            s.sleeping.store(false, Ordering::Relaxed);
        }
    }

    /// Messages this core has sent.
    pub fn sent(&self) -> u64 {
        self.sent.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_arrive_in_order_and_sleepers_are_woken_once() {
        let mut builder = MeshBuilder::<u32>::new(2);
        let a = builder.join(0).expect("core 0");
        let b = builder.join(1).expect("core 1");
        assert!(builder.join(1).is_none(), "an endpoint is taken once");
        b.set_ring_fd(42);
        assert!(b.prepare_to_sleep());
        a.send(1, 1);
        a.send(1, 2);
        let mut wakes = Vec::new();
        a.take_wakes(&mut wakes);
        assert_eq!(wakes, vec![42], "one wake-up for a sleeping core");
        assert_eq!(b.try_recv(), Some(1));
        assert_eq!(b.try_recv(), Some(2));
        assert_eq!(b.try_recv(), None);
        b.awake();
        a.send(1, 3);
        a.take_wakes(&mut wakes);
        assert_eq!(wakes, vec![42], "no wake-up for an awake core");
        assert!(
            !b.prepare_to_sleep(),
            "a queued message keeps the core awake"
        );
    }

    #[test]
    fn held_messages_go_out_in_order_once_their_generation_is_durable() {
        let mut builder = MeshBuilder::<u32>::new(2);
        let a = builder.join(0).expect("core 0");
        let b = builder.join(1).expect("core 1");
        a.send(1, 1);
        a.set_hold(true);
        a.send(1, 2);
        a.seal(1);
        a.send(1, 3);
        a.seal(2);
        a.send(1, 4);
        assert_eq!(b.try_recv(), Some(1));
        assert_eq!(b.try_recv(), None, "held until released");
        a.release(0);
        assert_eq!(b.try_recv(), None, "generation 1 is not durable yet");
        a.release(1);
        assert_eq!(b.try_recv(), Some(2));
        assert_eq!(b.try_recv(), None, "3 waits for generation 2");
        a.set_hold(false);
        a.send(1, 5);
        assert_eq!(b.try_recv(), None, "a message is never sent past held ones");
        a.release(5);
        assert_eq!(b.try_recv(), Some(3));
        assert_eq!(b.try_recv(), None, "unsealed messages wait for their seal");
        a.seal(3);
        a.release(3);
        assert_eq!(b.try_recv(), Some(4));
        assert_eq!(b.try_recv(), Some(5));
        assert_eq!(b.try_recv(), None);
        a.send(1, 6);
        assert_eq!(b.try_recv(), Some(6), "nothing held: sent at once");
    }

    #[test]
    fn an_outside_sender_names_the_ring_of_a_sleeping_core() {
        let mut builder = MeshBuilder::<u32>::new(2);
        let outside = builder.outside();
        let a = builder.join(0).expect("core 0");
        let b = builder.join(1).expect("core 1");
        b.set_ring_fd(42);
        assert_eq!(outside.send(1, 7), None, "an awake core needs no wake-up");
        assert!(!b.prepare_to_sleep(), "the queued message keeps it awake");
        assert_eq!(b.try_recv(), Some(7));
        b.awake();
        assert!(b.prepare_to_sleep());
        assert_eq!(outside.send(1, 8), Some(42));
        // The flag stays for the cores: another core's message still wakes it.
        a.send(1, 9);
        let mut wakes = Vec::new();
        a.take_wakes(&mut wakes);
        assert_eq!(wakes, vec![42]);
        assert_eq!(outside.send(5, 1), None, "no such core");
    }

    #[test]
    fn cross_thread_handshake_never_loses_a_message() {
        let mut builder = MeshBuilder::<u64>::new(2);
        let a = builder.join(0).expect("core 0");
        let b = builder.join(1).expect("core 1");
        let n = 20_000u64;
        let producer = std::thread::spawn(move || {
            let mut woken = 0;
            let mut wakes = Vec::new();
            for i in 0..n {
                a.send(1, i);
                a.take_wakes(&mut wakes);
                woken += wakes.len();
                wakes.clear();
            }
            woken
        });
        let mut next = 0;
        while next < n {
            match b.try_recv() {
                Some(v) => {
                    assert_eq!(v, next);
                    next += 1;
                }
                None => {
                    // "Sleep": if nothing was queued, the producer must see us sleeping.
                    if b.prepare_to_sleep() {
                        std::thread::yield_now();
                    }
                    b.awake();
                }
            }
        }
        let _ = producer.join().expect("producer");
    }
}
