//! How a conversation (or a room) ended normally: the reason its status line
//! gives, and what the binary turns into an exit code. Failures are
//! [`Error`](crate::Error)s instead.

use std::fmt;

/// How a conversation ended normally. Failures are [`Error`](crate::Error)s instead.
///
/// The binary exits 130 for [`Ending::Interrupted`] and 0 for the others;
/// `Display` is the reason the status line gives.
///
/// ```
/// use duplex::{Console, ConversationOptions, Ending, Input, conversation};
/// use std::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let peer = TcpStream::connect(addr)?;
/// let (stream, _) = listener.accept()?;
/// drop(peer); // the peer closes at once
///
/// let (mut input, mut shown) = (Input::silent(), Vec::new());
/// let mut console = Console::new(&mut input, &mut shown);
/// let ending = conversation::run(stream, addr, &ConversationOptions::default(), &mut console)?;
/// assert_eq!(ending, Ending::PeerClosed);
/// assert_eq!(ending.to_string(), "peer closed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// We sent an empty line.
    Goodbye,
    /// Our input ended.
    EndOfInput,
    /// The peer sent an empty line.
    PeerGoodbye,
    /// The peer closed its side (EOF).
    PeerClosed,
    /// After our goodbye the peer stayed silent for `--linger` without closing.
    LingerExpired,
    /// No traffic either way for `--idle-timeout`.
    IdleTimeout,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Whoever read our output stopped reading.
    OutputClosed,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ending::Goodbye => "goodbye",
            Ending::EndOfInput => "end of input",
            Ending::PeerGoodbye => "peer said goodbye",
            Ending::PeerClosed => "peer closed",
            Ending::LingerExpired => "linger expired",
            Ending::IdleTimeout => "idle timeout",
            Ending::Interrupted => "interrupted",
            Ending::OutputClosed => "output closed",
        })
    }
}
