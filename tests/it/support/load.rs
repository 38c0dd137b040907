//! Tests that load the machine, and tests whose premise is timing.
//!
//! All tests share one binary and run many at a time, mostly waiting on
//! IO. A few push tens of MiB or flood as fast as they can ([`heavy`]); a
//! few assert that something happens within a short time, or that a flood
//! of a fixed size is read before a grace period runs out ([`alone`]). A
//! heavy test next door on two loaded cores can stretch those, so they
//! take the lock alone; heavy tests share it with each other and everyone
//! else ignores it.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static LOAD: RwLock<()> = RwLock::new(());

/// Held by a test that loads the machine (a big transfer, a flood).
pub fn heavy() -> RwLockReadGuard<'static, ()> {
    // A test that failed holding it leaves nothing behind to protect.
    LOAD.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held by a test whose premise is timing: no heavy test runs meanwhile.
pub fn alone() -> RwLockWriteGuard<'static, ()> {
    LOAD.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
