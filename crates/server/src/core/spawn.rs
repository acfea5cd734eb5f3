//! Spawning the core's tasks (the slow paths of connections: transactions, commands across
//! shards, blocking waits), counting every poll so the event loop knows whether it may sleep.
//!
//! The event loop is itself a glommio task that yields after each pass. glommio runs ready
//! tasks in the order they were woken, so if no other task was polled between two of the
//! loop's passes, none was ready, and the loop may sleep in its ring until the next event
//! (every event that can wake a task arrives through that ring: I/O, timers, other cores).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    static POLLS: Cell<u64> = const { Cell::new(0) };
}

/// Task polls on this thread so far.
pub fn polls() -> u64 {
    POLLS.with(Cell::get)
}

struct Counted<F>(F);

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        POLLS.with(|p| p.set(p.get() + 1));
        // SAFETY: structural pinning of the only field; it is never moved out.
        unsafe { self.map_unchecked_mut(|c| &mut c.0) }.poll(cx)
    }
}

/// Runs `fut` on this core as a task of its own.
pub fn spawn(fut: impl Future<Output = ()> + 'static) {
    glommio::spawn_local(Counted(fut)).detach();
}
