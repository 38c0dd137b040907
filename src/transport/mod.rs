//! The seam between a conversation and the bytes on the wire (DESIGN.md,
//! "Transports: plain, secret, TLS — one seam").
//!
//! A `Connection` is what a handshake yields: a `Receive` half that the
//! receiver thread owns, a `Transmit` half that the sender thread owns, and
//! the socket itself, whose `shutdown(Both)` wakes either half blocked on it.
//! Each half is plain `std::io`: a reader of the peer's plaintext and a writer
//! of ours, so everything above the seam (chat and raw rules, linger, rooms,
//! status lines) reads and writes as it would on a `TcpStream` and does not
//! know which transport it has.
//!
//! The writer half has one extra verb, `Transmit::finish`: the end of our
//! direction. Plain TCP finishes with `shutdown(Write)`; an encrypted
//! transport first sends its authenticated end (the secret channel's end
//! record, TLS's `close_notify`). The reader half reports the peer's
//! authenticated end as EOF (`Ok(0)`), and an end that was not authenticated
//! (the TCP stream cut before it) as an error, so a truncated transfer can
//! never look finished.

mod plain;
pub mod secret;
pub mod tls;

use crate::error::Result;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// How long a handshake may take, from the TCP connection (from `accept`
/// on the server): SPEC says 10 s for both the secret channel and TLS, so a
/// client never waits long in a busy server's backlog without knowing it.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a conversation's bytes cross the wire (SPEC, "Secret channel",
/// "TLS"): the [`ConversationOptions::security`](crate::ConversationOptions::security)
/// of a command. Chosen once
/// per command; each connection gets its own handshake.
///
/// A caller chooses [`Security::Plain`] or [`Security::Secret`]; TLS is
/// chosen with [`ServeOptions::tls`](crate::ServeOptions::tls) and
/// [`ConnectOptions::tls`](crate::ConnectOptions::tls), from which
/// [`serve`](crate::serve()) and [`connect`](crate::connect()) make the
/// [`Security::Tls`] they run with.
///
/// ```
/// use duplex::ConversationOptions;
/// use duplex::transport::secret::Secret;
/// use duplex::transport::{SecretSetup, Security};
///
/// let secret = Secret::new("olive-tundra-marble-quest")?;
/// let options = ConversationOptions {
///     security: Security::Secret(SecretSetup::new(secret)),
///     ..ConversationOptions::default()
/// };
/// # drop(options);
/// # Ok::<(), duplex::transport::secret::EmptySecret>(())
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Security {
    /// Plain TCP: the bytes as they are.
    #[default]
    Plain,
    /// TLS through rustls (`--tls`): the server's certificate or the
    /// client's verification, made ready once per command.
    Tls(TlsSetup),
    /// `--secret`: duplex's own encrypted, authenticated channel.
    Secret(SecretSetup),
}

/// What every `--secret` connection of one command shares: the secret, and
/// the server's guess budget (one for a whole room).
#[derive(Clone, Debug)]
pub struct SecretSetup {
    /// The shared words.
    pub(crate) secret: Arc<secret::Secret>,
    /// Wrong secrets so far; a server stops at three.
    pub(crate) budget: Arc<secret::GuessBudget>,
}

impl SecretSetup {
    /// A setup for `secret` with a full guess budget.
    pub fn new(secret: secret::Secret) -> Self {
        SecretSetup {
            secret: Arc::new(secret),
            budget: Arc::new(secret::GuessBudget::new()),
        }
    }
}

/// TLS made ready for one command (see [`Security::Tls`]): made by
/// [`serve`](crate::serve()) and [`connect`](crate::connect()) from their
/// options' `tls`, and by nothing else.
#[derive(Clone, Debug)]
pub struct TlsSetup(pub(crate) tls::Tls);

/// Which end of the connection we are, for handshakes with roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// We dialled (`connect`).
    Client,
    /// We accepted (`serve`, a room).
    Server,
}

/// Runs the handshake `security` asks for over `stream`, as `side`, and
/// yields the connection the conversation runs on. Every handshake is
/// bounded by [`HANDSHAKE_TIMEOUT`]; plain TCP has none and returns at once.
///
/// A plain connection is guarded against a peer that speaks `--secret`
/// ([`secret::guard`]); a secret one runs its handshake here, so a failed
/// handshake never reaches the pumps.
pub(crate) fn establish(stream: TcpStream, side: Side, security: &Security) -> Result<Connection> {
    match security {
        Security::Plain => {
            let mut connection = Connection::plain(stream);
            connection.receiver =
                Box::new(secret::guard::PreambleGuard::new(connection.receiver, side));
            Ok(connection)
        }
        Security::Tls(TlsSetup(tls)) => tls.establish(stream, side),
        Security::Secret(setup) => {
            let connected = std::time::Instant::now();
            let peer = stream.peer_addr().map_err(|source| crate::Error::Local {
                op: "could not read the peer's address",
                source,
            })?;
            let socket = Arc::new(stream);
            let (role, budget) = match side {
                Side::Client => (secret::Role::Client, None),
                Side::Server => (secret::Role::Server, Some(&*setup.budget)),
            };
            let halves = secret::connect(&socket, role, &setup.secret, budget, connected)
                .map_err(|source| crate::Error::Handshake { peer, source })?;
            Ok(Connection {
                socket,
                receiver: Box::new(halves.receiver),
                transmitter: Box::new(halves.transmitter),
            })
        }
    }
}

/// The receiving half of a connection: the peer's plaintext, in order.
///
/// `read` returning `Ok(0)` means the peer ended its direction and, where
/// the transport can tell, proved it; an end that was not proved is an
/// `Err`.
pub(crate) trait Receive: Read + Send {
    /// The socket itself, when bytes cross it unchanged (plain TCP), for
    /// paths that move bytes without copying them through user space.
    fn plain_socket(&self) -> Option<&TcpStream> {
        None
    }
}

/// The sending half of a connection: our plaintext, in order.
///
/// `write` may take fewer bytes than offered, as [`Write`] allows;
/// `write_vectored` lets a caller with many small buffers (a room's batch of
/// lines) hand them over in one call.
pub(crate) trait Transmit: Write + Send {
    /// Ends our direction for good: sends the transport's authenticated end,
    /// if it has one, then shuts the socket down for writing. Nothing may be
    /// written after it. A peer that has already gone is not an error here;
    /// the receiving half reports how it went.
    fn finish(&mut self) -> io::Result<()>;

    /// The socket itself, when bytes cross it unchanged (plain TCP).
    fn plain_socket(&self) -> Option<&TcpStream> {
        None
    }
}

/// One connection, ready for a conversation: two halves and the socket that
/// wakes them.
pub(crate) struct Connection {
    /// The socket both halves use. `shutdown(Both)` on it wakes a half
    /// blocked in a read or a write: that is every conversation's way out.
    pub(crate) socket: Arc<TcpStream>,
    /// What the peer sends, for the receiver thread.
    pub(crate) receiver: Box<dyn Receive>,
    /// What we send, for the sender thread.
    pub(crate) transmitter: Box<dyn Transmit>,
}

impl Connection {
    /// A plain TCP connection: bytes cross the socket as they are.
    pub(crate) fn plain(stream: TcpStream) -> Connection {
        plain::connection(stream)
    }

    /// Shuts the socket down both ways, waking both halves. A socket whose
    /// peer is already gone is fine.
    #[cfg(test)]
    pub(crate) fn wake(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

impl From<TcpStream> for Connection {
    fn from(stream: TcpStream) -> Self {
        Connection::plain(stream)
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn plain_halves_carry_bytes_and_finish_is_the_peers_eof() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut ours = establish(client, Side::Client, &Security::Plain).unwrap();
        let mut theirs = Connection::from(server);
        assert!(ours.transmitter.plain_socket().is_some());

        ours.transmitter.write_all(b"hello").unwrap();
        ours.transmitter.finish().unwrap();
        let mut got = Vec::new();
        theirs.receiver.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello");

        // Our receiving side is still open after our finish.
        theirs.transmitter.write_all(b"reply").unwrap();
        theirs.wake();
        let mut reply = Vec::new();
        ours.receiver.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"reply");
        // The guard shows the socket once the opening bytes have passed it.
        assert!(ours.receiver.plain_socket().is_some());
    }
}
