//! The core's timers: sleeps for tasks (blocking commands' timeouts, the server clock), fired
//! by the event loop, whose wait for I/O ends at the earliest deadline.
//!
//! glommio's own timers cannot be used: they only fire when glommio's reactor runs, and a
//! core that sleeps in its own ring never enters it.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Pending deadlines, earliest first.
#[derive(Default)]
pub struct Timers {
    heap: RefCell<BinaryHeap<Reverse<(Instant, u64)>>>,
    /// The waker of each live timer; a timer dropped before firing leaves its heap entry
    /// behind, skipped when it comes up.
    wakers: RefCell<HashMap<u64, Waker>>,
    next_id: Cell<u64>,
}

impl Timers {
    /// A future that completes at `deadline`.
    pub fn sleep_until(self: &Rc<Self>, deadline: Instant) -> Sleep {
        Sleep {
            timers: self.clone(),
            deadline,
            id: None,
        }
    }

    /// A future that completes after `d`.
    pub fn sleep(self: &Rc<Self>, d: Duration) -> Sleep {
        self.sleep_until(Instant::now() + d)
    }

    /// The earliest live deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut heap = self.heap.borrow_mut();
        let wakers = self.wakers.borrow();
        while let Some(Reverse((at, id))) = heap.peek().copied() {
            if wakers.contains_key(&id) {
                return Some(at);
            }
            heap.pop();
        }
        None
    }

    /// Wakes every timer whose deadline has passed. Returns how many fired.
    pub fn fire(&self, now: Instant) -> usize {
        let mut due = Vec::new();
        {
            let mut heap = self.heap.borrow_mut();
            let mut wakers = self.wakers.borrow_mut();
            while let Some(Reverse((at, id))) = heap.peek().copied() {
                if at > now {
                    break;
                }
                heap.pop();
                if let Some(w) = wakers.remove(&id) {
                    due.push(w);
                }
            }
        }
        let n = due.len();
        for w in due {
            w.wake();
        }
        n
    }

    fn register(&self, deadline: Instant, waker: Waker) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.heap.borrow_mut().push(Reverse((deadline, id)));
        self.wakers.borrow_mut().insert(id, waker);
        id
    }
}

/// See [`Timers::sleep_until`].
pub struct Sleep {
    timers: Rc<Timers>,
    deadline: Instant,
    id: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(id) = self.id.take() {
                self.timers.wakers.borrow_mut().remove(&id);
            }
            return Poll::Ready(());
        }
        match self.id {
            Some(id) => {
                if let Some(w) = self.timers.wakers.borrow_mut().get_mut(&id) {
                    w.clone_from(cx.waker());
                    return Poll::Pending;
                }
                // Fired early (clock granularity): register again.
                let id = self.timers.register(self.deadline, cx.waker().clone());
                self.id = Some(id);
            }
            None => {
                let id = self.timers.register(self.deadline, cx.waker().clone());
                self.id = Some(id);
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.timers.wakers.borrow_mut().remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn timers_fire_in_order_and_dropped_ones_never() {
        let timers = Rc::new(Timers::default());
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let start = Instant::now();
        let mut a = Box::pin(timers.sleep_until(start + Duration::from_secs(10)));
        let mut b = Box::pin(timers.sleep_until(start + Duration::from_secs(5)));
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert!(b.as_mut().poll(&mut cx).is_pending());
        assert_eq!(timers.next_deadline(), Some(start + Duration::from_secs(5)));
        drop(b);
        assert_eq!(
            timers.next_deadline(),
            Some(start + Duration::from_secs(10))
        );
        assert_eq!(timers.fire(start + Duration::from_secs(6)), 0);
        assert_eq!(timers.fire(start + Duration::from_secs(11)), 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(timers.next_deadline(), None);
    }
}
