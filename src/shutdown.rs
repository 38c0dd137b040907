//! Ctrl-C and SIGTERM as a channel event, and the policy for them: the
//! first one closes every conversation gracefully, a second one exits 130 at
//! once ([`ShutdownTrigger::interrupt`]; SPEC, "Endings").
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

    /// Ctrl-C or SIGTERM, whether from the signal handler or typed in the
    /// terminal view: the first fires the graceful shutdown; a second one
    /// runs `before_exit` (the binary restores the terminal there) and
    /// exits 130 at once, whatever the conversations are doing.
    pub fn interrupt(&self, before_exit: impl FnOnce()) {
        if !self.fire() {
            self.quit(before_exit);
        }
    }

    /// Quits at once, as a second Ctrl-C does: fires the shutdown (for
    /// anything still watching it), runs `before_exit`, and exits 130. For
    /// a Ctrl-C the view was told to take as "quit now".
    pub fn quit(&self, before_exit: impl FnOnce()) -> ! {
        self.fire();
        before_exit();
        std::process::exit(130);
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

/// A connected trigger and receiver: firing the trigger ends everything
/// that runs with a clone of the [`Shutdown`], gracefully (within
/// `--linger`), with [`Ending::Interrupted`](crate::Ending::Interrupted).
///
/// ```
/// use duplex::{Console, Ending, Input, ServeOptions, shutdown_channel};
/// use std::sync::mpsc;
/// use std::thread;
/// use std::time::Duration;
///
/// let (trigger, shutdown) = shutdown_channel();
/// let options = ServeOptions { bind: "127.0.0.1".into(), ..ServeOptions::default() };
/// let (done_tx, done) = mpsc::channel();
/// thread::spawn(move || {
///     let (mut input, mut shown) = (Input::silent(), Vec::new());
///     let mut console = Console::new(&mut input, &mut shown).with_shutdown(shutdown);
///     let _ = done_tx.send(duplex::serve(&options, &mut console));
/// });
///
/// assert!(trigger.fire(), "the first fire");
/// assert!(!trigger.fire(), "a second one is what the binary turns into exit(130)");
/// assert_eq!(done.recv_timeout(Duration::from_secs(10))??, Ending::Interrupted);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
