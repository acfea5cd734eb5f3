//! Scripts that run under the lock of every shard (they reach keys of shards they did not
//! declare), batched per core.
//!
//! Taking the lock of every shard costs a round trip to each other core, and releasing it a
//! message to each: with one script per lock, those messages (and the wake-ups of the cores
//! they go to) were most of a cross-shard script's time. So the jobs of one core wait in a
//! queue, and one runner task takes the lock once for up to [`BATCH`] of them and runs them
//! one after another under it, each alone as any script runs. Jobs arriving meanwhile join
//! the queue; the runner releases the lock after a batch, so that other cores' transactions
//! take their turn, and takes it again for what is left.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use futures_channel::oneshot;
use shardis_resp::Reply;

use super::run::{self, Job, Mode, Outcome};
use crate::coord::txn;
use crate::core::{spawn, Core};

/// The most scripts run under one taking of the lock: other cores' transactions wait for the
/// lock meanwhile.
const BATCH: usize = 16;

/// This core's jobs waiting for the lock, and whether a runner is taking care of them.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<(Job, oneshot::Sender<Outcome>)>,
    running: bool,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

/// Runs `job` under the lock of every shard (with the other jobs of this core waiting for it).
pub async fn run(core: &Rc<Core>, job: Job) -> Outcome {
    let (answer, outcome) = oneshot::channel();
    let start = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        q.jobs.push_back((job, answer));
        !std::mem::replace(&mut q.running, true)
    });
    if start {
        let core = core.clone();
        spawn::spawn(async move { runner(&core).await });
    }
    outcome
        .await
        .unwrap_or(Outcome::Done(Reply::err("ERR shard did not answer"), false))
}

/// Runs `job` under the lock of every shard on core `at` (with that core's waiting jobs).
pub async fn run_on(core: &Rc<Core>, at: usize, job: Job) -> Outcome {
    let (answer, rx) = core.answer_channel();
    core.post(
        at,
        Box::new(move |c| {
            let c = c.clone();
            spawn::spawn(async move {
                let outcome = run(&c, job).await;
                c.answer(answer, outcome);
            });
        }),
    );
    rx.await
        .unwrap_or(Outcome::Done(Reply::err("ERR shard did not answer"), false))
}

/// Takes the lock for each batch of the queue until it is empty.
async fn runner(core: &Rc<Core>) {
    loop {
        if QUEUE.with(|q| q.borrow().jobs.is_empty()) {
            QUEUE.with(|q| q.borrow_mut().running = false);
            return;
        }
        let held = txn::lock(core, txn::plan_all(core.shards)).await;
        for _ in 0..BATCH {
            let Some((job, answer)) = QUEUE.with(|q| q.borrow_mut().jobs.pop_front()) else {
                break;
            };
            // The caller may have gone (its connection closed): the script runs anyway, as
            // a command already received does.
            let _ = answer.send(run::run(core, &job, Mode::Locked(held.tx)).await);
        }
        txn::unlock(core, held).await;
    }
}
