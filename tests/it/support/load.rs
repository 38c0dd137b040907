//! Tests whose premise is timing run apart from the rest.
//!
//! All tests share one binary and run many at a time, mostly waiting on
//! IO. A few assert that something happens within a short time, or that a
//! flood of a fixed size is read before a grace period runs out; on two
//! loaded cores, the tests next door can stretch those. Such a test calls
//! [`alone`] first: it waits until no test that does not hold it has a
//! child running, and while it runs, those tests wait before starting
//! their first child. The tests that hold it run beside each other: they
//! are few and light (the `alone` module, which starts first).
//!
//! Every child the harness spawns holds a [`Busy`] for its test's thread; a
//! thread that already holds one never waits for another (it would wait for
//! itself), so a test is never held up half way, only before it starts.
//! A test whose children only wait out a fixed bound calls [`idle`]: its
//! children count for nothing.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

#[derive(Default)]
struct State {
    /// Children running, per test thread.
    busy: HashMap<ThreadId, usize>,
    /// The threads that run apart now ([`alone`]).
    alone: Vec<ThreadId>,
    /// Threads waiting to run alone.
    waiting: usize,
    /// Test threads whose children only wait ([`idle`]).
    idle: Vec<ThreadId>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static CHANGED: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, Option<State>> {
    // A test that failed holding it leaves nothing inconsistent behind.
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wait(guard: MutexGuard<'static, Option<State>>) -> MutexGuard<'static, Option<State>> {
    CHANGED
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held by every running child of the harness (see the module docs).
pub struct Busy(Option<ThreadId>);

/// A [`Busy`] for the current thread, after waiting for a test that runs
/// alone (unless it is this one, or this thread already has children).
pub fn busy() -> Busy {
    let me = thread::current().id();
    let mut guard = lock();
    loop {
        let state = guard.get_or_insert_with(State::default);
        if state.alone.contains(&me) || state.idle.contains(&me) {
            return Busy(None);
        }
        let mine = state.busy.get(&me).copied().unwrap_or(0);
        if mine > 0 || (state.alone.is_empty() && state.waiting == 0) {
            state.busy.insert(me, mine + 1);
            return Busy(Some(me));
        }
        guard = wait(guard);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let Some(thread) = self.0 else { return };
        let mut guard = lock();
        let Some(state) = guard.as_mut() else { return };
        if let Some(n) = state.busy.get_mut(&thread) {
            *n -= 1;
            if *n == 0 {
                state.busy.remove(&thread);
                CHANGED.notify_all();
            }
        }
    }
}

/// Held by a test whose children do nothing but wait out a fixed bound
/// (seconds of it): they load nothing, so they neither wait for a test that
/// runs alone nor keep one waiting.
#[must_use]
pub struct Idle(ThreadId);

/// Marks the current test's children as idle (see [`Idle`]).
pub fn idle() -> Idle {
    let me = thread::current().id();
    lock().get_or_insert_with(State::default).idle.push(me);
    Idle(me)
}

impl Drop for Idle {
    fn drop(&mut self) {
        if let Some(state) = lock().as_mut() {
            state.idle.retain(|&t| t != self.0);
        }
    }
}

/// Held by a test whose premise is timing: no child of a test that does
/// not hold it runs while it is held.
#[must_use]
pub struct Alone(ThreadId);

/// Waits until no test but those that hold [`Alone`] has a child running
/// (their children are not counted in `busy`), then holds the others off.
pub fn alone() -> Alone {
    let me = thread::current().id();
    let mut guard = lock();
    guard.get_or_insert_with(State::default).waiting += 1;
    loop {
        let state = guard.get_or_insert_with(State::default);
        if !state.busy.keys().any(|&t| t != me) {
            state.waiting -= 1;
            state.alone.push(me);
            return Alone(me);
        }
        guard = wait(guard);
    }
}

impl Drop for Alone {
    fn drop(&mut self) {
        if let Some(state) = lock().as_mut() {
            state.alone.retain(|&t| t != self.0);
        }
        CHANGED.notify_all();
    }
}
