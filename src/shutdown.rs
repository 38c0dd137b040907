//! Ctrl-C and SIGTERM as a channel event.
//!
//! The trigger holds the only sender of a channel that never carries a
//! message; firing it drops that sender, so every clone of the receiver wakes
//! at once in whatever `select!` it sits in (DESIGN.md, "one mechanism").

use crossbeam_channel::{Receiver, Sender, bounded, never};
use std::sync::Mutex;

/// Fires the shutdown. Held by the signal handler.
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: Mutex<Option<Sender<()>>>,
}

impl ShutdownTrigger {
    /// Fires the shutdown. Returns true the first time, false afterwards (a
    /// second Ctrl-C, which the binary turns into an immediate exit).
    pub fn fire(&self) -> bool {
        // A poisoned lock can only mean a panic while taking the sender; the
        // Option inside is still meaningful.
        let mut sender = match self.sender.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        sender.take().is_some()
    }
}

/// Tells its holders that a shutdown was asked for.
#[derive(Clone, Debug)]
pub struct Shutdown {
    receiver: Receiver<()>,
}

impl Shutdown {
    /// A shutdown that never fires (for library callers that do not need one).
    pub fn never() -> Self {
        Shutdown { receiver: never() }
    }

    /// The receiver to put in a `select!`: it becomes ready (disconnected)
    /// when the shutdown fires.
    pub fn receiver(&self) -> &Receiver<()> {
        &self.receiver
    }
}

/// A connected trigger and receiver.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = bounded(0);
    (
        ShutdownTrigger {
            sender: Mutex::new(Some(sender)),
        },
        Shutdown { receiver },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_and_wakes_every_clone() {
        let (trigger, shutdown) = shutdown_channel();
        let other = shutdown.clone();
        let fired = |s: &Shutdown| {
            matches!(
                s.receiver().try_recv(),
                Err(crossbeam_channel::TryRecvError::Disconnected)
            )
        };
        assert!(!fired(&shutdown));
        assert!(trigger.fire());
        assert!(!trigger.fire());
        assert!(fired(&shutdown));
        assert!(other.receiver().recv().is_err());
        assert!(!fired(&Shutdown::never()));
    }
}
