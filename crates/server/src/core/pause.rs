//! CLIENT PAUSE on one core. The pause is server-wide: CLIENT PAUSE and CLIENT UNPAUSE set
//! every core's copy before they answer, and each core ends it alone at its deadline (all
//! cores read the same wall clock). While a pause is on, the event loop holds the commands it
//! covers (parsed, waiting, not refused), and the shard neither expires nor evicts keys:
//! Redis keeps the dataset still while clients are paused. A FAILOVER holds writes the same
//! way, apart from CLIENT PAUSE (CLIENT UNPAUSE does not end it).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use futures_lite::future;

use super::{spawn, wall_ms, Core};

/// What a pause covers, least to most restrictive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseMode {
    #[default]
    Off,
    /// Commands that may write or replicate (writes, PUBLISH, PFCOUNT, scripts that may
    /// write, an EXEC queuing any of those).
    Write,
    /// Every command.
    All,
}

/// This core's copy of the pause.
#[derive(Default)]
pub struct Pause {
    mode: Cell<PauseMode>,
    /// Wall-clock ms at which it ends.
    end_ms: Cell<u64>,
    /// Dropping it ends the task waiting for the deadline: one such task per core at most,
    /// however many pauses and extensions come.
    timer: RefCell<Option<oneshot::Sender<()>>>,
    /// A FAILOVER holds writes until it ends, apart from CLIENT PAUSE (Redis's
    /// `PAUSE_DURING_FAILOVER`): CLIENT UNPAUSE and a deadline do not end it.
    failover: Cell<bool>,
}

impl Core {
    /// Pauses clients until `end_ms` (wall clock): a pause already on is only made longer
    /// and more restrictive, never less (Redis's `pauseClients`). A deadline already past
    /// pauses nothing.
    pub fn pause_clients(self: &Rc<Self>, mode: PauseMode, end_ms: u64) {
        let p = &self.pause;
        let end = p.end_ms.get().max(end_ms);
        let now = wall_ms();
        if end < now || mode == PauseMode::Off {
            return;
        }
        p.mode.set(p.mode.get().max(mode));
        if end > p.end_ms.get() {
            p.end_ms.set(end);
            self.arm_pause_timer(Duration::from_millis(end - now));
        }
        self.shard.borrow_mut().pause_expiry(true);
    }

    /// Lifts the pause on time although no command arrives: the event loop wakes for the
    /// timer, and `pause_mode` lifts the pause (the loop then serves the held clients). A
    /// timer armed before is cancelled.
    fn arm_pause_timer(self: &Rc<Self>, after: Duration) {
        let (cancel, cancelled) = oneshot::channel::<()>();
        *self.pause.timer.borrow_mut() = Some(cancel);
        // A deadline past what the clock can express: only UNPAUSE ends the pause.
        let Some(at) = Instant::now().checked_add(after) else {
            return;
        };
        let core = self.clone();
        spawn::spawn(async move {
            let due = future::or(
                async {
                    core.timers.sleep_until(at).await;
                    true
                },
                async {
                    let _ = cancelled.await;
                    false
                },
            )
            .await;
            if due {
                core.pause_mode();
            }
        });
    }

    /// Ends the pause (CLIENT UNPAUSE, or its deadline): the held clients run again, unless
    /// a FAILOVER holds them.
    pub fn unpause_clients(&self) {
        self.pause.mode.set(PauseMode::Off);
        self.pause.end_ms.set(0);
        self.pause.timer.borrow_mut().take();
        self.shard
            .borrow_mut()
            .pause_expiry(self.pause.failover.get());
    }

    /// Holds (or releases) writes for a FAILOVER, whatever CLIENT PAUSE does meanwhile.
    pub fn pause_for_failover(&self, on: bool) {
        self.pause.failover.set(on);
        let client_pause = self.pause.mode.get() != PauseMode::Off;
        self.shard.borrow_mut().pause_expiry(on || client_pause);
    }

    /// What the pause covers now; lifts CLIENT PAUSE once its deadline has passed.
    pub fn pause_mode(&self) -> PauseMode {
        let mut mode = self.pause.mode.get();
        if mode != PauseMode::Off && wall_ms() >= self.pause.end_ms.get() {
            self.unpause_clients();
            mode = PauseMode::Off;
        }
        if self.pause.failover.get() {
            mode = mode.max(PauseMode::Write);
        }
        mode
    }
}
