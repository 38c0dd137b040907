//! [`Console`]: the local end of every conversation, in one value.

use crate::input::Input;
use crate::output::Output;
use crate::shutdown::Shutdown;
use crate::status::Status;
use std::fmt;

/// The local end of a conversation: where the lines to send come from, where
/// the peer's bytes go, what ends it early, and where status lines are
/// written.
///
/// For the binary these are stdin, stdout, Ctrl-C and stderr (or the
/// terminal view); an embedding program or a test brings its own. Every
/// entry point that talks to a peer ([`run_on`](crate::run_on),
/// [`serve`](crate::serve()), [`connect`](crate::connect()),
/// [`conversation::run`](crate::conversation::run)) takes one, and what it
/// did not send stays in the [`Input`] for the next one.
///
/// [`Console::new`] gives a shutdown that never fires and no status lines;
/// [`with_shutdown`](Console::with_shutdown) and
/// [`with_status`](Console::with_status) change that.
///
/// ```
/// use duplex::{Console, Input, Status, shutdown_channel};
///
/// let mut input = Input::silent();
/// let mut shown = Vec::new();
/// let (trigger, shutdown) = shutdown_channel();
/// let console = Console::new(&mut input, &mut shown)
///     .with_shutdown(shutdown)
///     .with_status(Status::stderr(false));
/// # drop((console, trigger));
/// ```
pub struct Console<'a> {
    pub(crate) input: &'a mut Input,
    pub(crate) output: &'a mut dyn Output,
    pub(crate) shutdown: Shutdown,
    pub(crate) status: Status,
}

impl<'a> Console<'a> {
    /// Lines to send from `input`, the peer's bytes to `output` (any
    /// `Write + Send`, such as a `Vec<u8>`, is an [`Output`]); no shutdown,
    /// and no status lines.
    pub fn new(input: &'a mut Input, output: &'a mut dyn Output) -> Self {
        Console {
            input,
            output,
            shutdown: Shutdown::never(),
            status: Status::stderr(true),
        }
    }

    /// Ends whatever runs on this console (gracefully, within `--linger`)
    /// when `shutdown` fires.
    pub fn with_shutdown(self, shutdown: Shutdown) -> Self {
        Console { shutdown, ..self }
    }

    /// Writes status lines (`listening on ADDR`, `connection from …`) to
    /// `status`.
    pub fn with_status(self, status: Status) -> Self {
        Console { status, ..self }
    }
}

impl fmt::Debug for Console<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("input", &self.input)
            .field("shutdown", &self.shutdown)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}
