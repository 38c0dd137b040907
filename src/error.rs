//! The one error type of duplex: what failed, on which address, and why.
//!
//! Normal endings of a conversation (goodbye, end of input, a timeout) are not
//! errors; they are [`crate::Ending`] values. An [`Error`] is something that
//! makes `duplex` exit 1: it could not bind, resolve or connect, the peer reset
//! the connection, or local I/O failed.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can make a `duplex` run fail.
///
/// `Display` is one line that says what failed and why (the binary prints
/// it after `duplex: `); `source()` is `None`, so a printer of the chain
/// says the cause once. [`Error::io_error`] gives the I/O error to act on.
///
/// ```
/// use duplex::{ConnectOptions, Console, Error, Input};
/// use std::io::ErrorKind;
/// use std::net::TcpListener;
///
/// // A port nobody listens on any more.
/// let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
/// let options = ConnectOptions::new("127.0.0.1", port);
/// let (mut input, mut shown) = (Input::empty(), Vec::new());
/// let mut console = Console::new(&mut input, &mut shown);
/// let error = duplex::connect(&options, &mut console).unwrap_err();
///
/// assert!(matches!(error, Error::Connect { .. }));
/// assert_eq!(error.io_error().map(|e| e.kind()), Some(ErrorKind::ConnectionRefused));
/// assert_eq!(error.to_string(), format!("could not connect to 127.0.0.1:{port}: connection refused"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The host name could not be resolved to any address.
    Resolve {
        /// The host and port as given.
        target: String,
        /// Why resolution failed.
        source: io::Error,
    },
    /// Every resolved address refused or timed out.
    Connect {
        /// The host and port as given.
        target: String,
        /// Every address that was tried, in order.
        tried: Vec<SocketAddr>,
        /// The error of the last attempt.
        source: io::Error,
    },
    /// The listening socket could not be created.
    Bind {
        /// The address we tried to listen on.
        addr: String,
        /// Why it failed.
        source: io::Error,
    },
    /// Accepting a connection failed in a way that ends the server.
    Accept(io::Error),
    /// A conversation broke: the peer reset it, or a socket operation failed.
    Conversation {
        /// The peer's address.
        peer: SocketAddr,
        /// What we were doing.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// TLS could not be set up, or a handshake failed or did not verify.
    Tls(crate::transport::tls::TlsError),
    /// The `--secret` handshake with a peer failed: wrong secret, a peer
    /// not using `--secret`, a timeout.
    Handshake {
        /// The peer's address.
        peer: SocketAddr,
        /// What went wrong.
        source: crate::transport::secret::HandshakeError,
    },
    /// Three wrong secrets: the server stopped listening.
    TooManyGuesses,
    /// Reading our input or writing our output failed.
    Local {
        /// What we were doing.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Resolve { target, source } => {
                write!(f, "could not resolve {target}: {}", plainly(source))
            }
            Error::Connect {
                target,
                tried,
                source,
            } => {
                write!(f, "could not connect to {target}")?;
                if tried.len() > 1 {
                    let list: Vec<String> = tried.iter().map(ToString::to_string).collect();
                    write!(f, " (tried {})", list.join(", "))?;
                }
                write!(f, ": {}", plainly(source))
            }
            Error::Bind { addr, source } => {
                write!(f, "could not listen on {addr}: {}", plainly(source))
            }
            Error::Accept(source) => write!(f, "could not accept: {}", plainly(source)),
            Error::Conversation { peer, op, source } => {
                write!(
                    f,
                    "conversation with {peer} failed {op}: {}",
                    describe(source)
                )
            }
            Error::Tls(error) => write!(f, "{error}"),
            Error::Handshake { peer, source } => write!(f, "{source} ({peer})"),
            Error::TooManyGuesses => {
                f.write_str("3 wrong secrets: stopped so that nobody can keep guessing")
            }
            Error::Local { op, source } => write!(f, "{op}: {}", plainly(source)),
        }
    }
}

/// The message is self-contained: it already says the cause in plain words
/// (`describe`), so `source()` is `None` and a printer of the chain
/// (anyhow, eyre, `{:#}`) shows the cause once (the API guidelines'
/// C-GOOD-ERR: one or the other, never both). The I/O error itself stays
/// reachable through [`Error::io_error`].
impl std::error::Error for Error {}

impl Error {
    /// The underlying I/O error, for callers that act on its kind (a TLS
    /// failure has none).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Resolve { source, .. }
            | Error::Connect { source, .. }
            | Error::Bind { source, .. }
            | Error::Accept(source)
            | Error::Conversation { source, .. }
            | Error::Local { source, .. } => Some(source),
            Error::Tls(_) => None,
            Error::Handshake { .. } => None,
            Error::TooManyGuesses => None,
        }
    }
}

/// A conversation's I/O error as a person wants to read it: `connection
/// reset by peer`, not `Connection reset by peer (os error 104)`.
///
/// A conversation socket times out only when keepalive or the user timeout
/// (`--keepalive`, see `net::tune`) gave up on a peer that stopped
/// answering: that reads "peer vanished" (SPEC, "Connections").
pub fn describe(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::TimedOut {
        return "peer vanished".to_owned();
    }
    plainly(error)
}

/// An I/O error as a person wants to read it: `connection refused`, not
/// `Connection refused (os error 111)`. A dial that timed out says so.
fn plainly(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("{:?}", error.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_plainly() {
        let refused = io::Error::from_raw_os_error(111);
        assert_eq!(describe(&refused), "connection refused");
        let custom = io::Error::other("Odd thing");
        assert_eq!(describe(&custom), "odd thing");
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(describe(&timed_out), "peer vanished");
        let dial = Error::Connect {
            target: "h:1".into(),
            tried: Vec::new(),
            source: io::Error::new(io::ErrorKind::TimedOut, "timed out"),
        };
        assert_eq!(dial.to_string(), "could not connect to h:1: timed out");
    }

    #[test]
    fn the_cause_is_told_once() {
        let error = Error::Local {
            op: "could not write output",
            source: io::Error::from_raw_os_error(32),
        };
        assert_eq!(error.to_string(), "could not write output: broken pipe");
        assert!(std::error::Error::source(&error).is_none());
        assert_eq!(
            error.io_error().map(io::Error::kind),
            Some(io::ErrorKind::BrokenPipe)
        );
    }
}
