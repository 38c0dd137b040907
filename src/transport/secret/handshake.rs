//! The handshake (SPEC, "Secret channel"): preamble and SPAKE2 message from
//! both sides at once, then the client's tag Tc, and only once Tc is right
//! the server's tag Ts. The server never sends anything that depends on the
//! key to a peer that has not proved the secret; the client sends no record
//! before it has checked Ts. All of it within 10 s of the TCP connection.
//!
//! SPAKE2 is the `spake2` crate's (Ed25519 group; `connect` is A, `serve`
//! is B); the tags are compared with `subtle`, in constant time.

use super::keys::Keys;
use super::{GuessBudget, Secret};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The first 16 bytes each side sends; it carries the protocol's version.
pub const PREAMBLE: &[u8; 16] = b"duplex-secret-1\n";
/// A SPAKE2 message over Ed25519: a side byte and a point.
pub const MESSAGE_LEN: usize = 33;
/// The handshake must be done this long after the TCP connection.
pub const TIMEOUT: Duration = Duration::from_secs(10);
const ID_CLIENT: &[u8] = b"duplex-client";
const ID_SERVER: &[u8] = b"duplex-server";

/// Which end of the handshake we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `connect`: SPAKE2 side A, proves first.
    Client,
    /// `serve`: SPAKE2 side B, proves second, and counts guesses.
    Server,
}

/// Why a handshake failed. Each is one line for the person.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer's first bytes are not the preamble.
    NotSecret,
    /// A tag did not match, or the peer left after its SPAKE2 message.
    WrongSecret,
    /// Not done within `TIMEOUT`.
    TimedOut,
    /// The peer closed before it had sent its part of the handshake.
    Closed,
    /// The peer had sent its opening and closed before we spoke (it gave up
    /// waiting in the backlog): not a guess.
    LeftEarly,
    /// The peer's SPAKE2 message is not a valid one.
    BadMessage,
    /// The guess budget is spent (by handshakes running at once).
    NoGuessesLeft,
    /// The socket failed.
    Io(io::Error),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::NotSecret => {
                f.write_str("the peer is not using --secret (or another version)")
            }
            HandshakeError::WrongSecret => {
                f.write_str("wrong secret (or someone tried to guess it)")
            }
            HandshakeError::TimedOut => {
                f.write_str("handshake timed out: is the peer using --secret?")
            }
            HandshakeError::Closed => {
                f.write_str("the peer closed the connection during the handshake")
            }
            HandshakeError::LeftEarly => f.write_str(
                "the peer left before the handshake (it waited too long for this server?)",
            ),
            HandshakeError::BadMessage => f.write_str("the peer's handshake message is not valid"),
            HandshakeError::NoGuessesLeft => f.write_str("no guesses left: 3 wrong secrets"),
            HandshakeError::Io(error) => {
                write!(f, "handshake failed: {}", crate::error::describe(error))
            }
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Io(error) => Some(error),
            _ => None,
        }
    }
}

/// Runs the handshake on `stream` and returns the keys. `connected` is when
/// TCP connected (the server: when it accepted); `budget` counts the
/// server's guesses.
pub fn run(
    stream: &TcpStream,
    role: Role,
    secret: &Secret,
    budget: Option<&GuessBudget>,
    connected: Instant,
) -> Result<Keys, HandshakeError> {
    let deadline = connected + TIMEOUT;
    let keys = match role {
        Role::Client => client(stream, secret, deadline),
        Role::Server => server(stream, secret, budget, deadline),
    }?;
    // Records have no deadline of their own: the conversation's timers rule.
    stream.set_read_timeout(None).map_err(HandshakeError::Io)?;
    stream.set_write_timeout(None).map_err(HandshakeError::Io)?;
    Ok(keys)
}

fn client(stream: &TcpStream, secret: &Secret, deadline: Instant) -> Result<Keys, HandshakeError> {
    let (spake, message) = Spake2::<Ed25519Group>::start_a(
        &Password::new(secret.bytes()),
        &Identity::new(ID_CLIENT),
        &Identity::new(ID_SERVER),
    );
    send_opening(stream, &message, deadline)?;
    let theirs = read_opening(stream, &[], deadline)?;
    let k = Zeroizing::new(
        spake
            .finish(&theirs)
            .map_err(|_| HandshakeError::BadMessage)?,
    );
    let keys = Keys::derive(&k);
    write_by(stream, &keys.client_confirm, deadline)?;
    let mut ts = [0; 32];
    match read_by(stream, &mut ts, deadline) {
        Ok(()) => {}
        // The server closes when our Tc is wrong: so is our secret.
        Err(Short::Eof) => return Err(HandshakeError::WrongSecret),
        Err(other) => return Err(other.into()),
    }
    if bool::from(ts.ct_eq(&keys.server_confirm)) {
        Ok(keys)
    } else {
        Err(HandshakeError::WrongSecret)
    }
}

fn server(
    stream: &TcpStream,
    secret: &Secret,
    budget: Option<&GuessBudget>,
    deadline: Instant,
) -> Result<Keys, HandshakeError> {
    let (spake, message) = Spake2::<Ed25519Group>::start_b(
        &Password::new(secret.bytes()),
        &Identity::new(ID_CLIENT),
        &Identity::new(ID_SERVER),
    );
    // A client that gave up while it waited in the backlog has sent its
    // opening and closed before we said a word: it never saw our message, so
    // it cannot have sent a tag, and its leaving is no guess (the guess
    // budget is for peers that could have tried a secret).
    let early = already_sent(stream)?;
    if early.closed {
        // Still say our part (SPEC: each side sends its opening without
        // waiting): a plain client whose line and EOF came first learns
        // from our preamble that the server wants --secret. It may be gone
        // already; then the write fails, and that changes nothing.
        let _ = send_opening(stream, &message, deadline);
        return Err(
            if PREAMBLE.starts_with(&early.bytes[..early.len.min(PREAMBLE.len())]) {
                HandshakeError::LeftEarly
            } else {
                HandshakeError::NotSecret
            },
        );
    }
    send_opening(stream, &message, deadline)?;
    let theirs = read_opening(stream, &early.bytes[..early.len], deadline)?;
    // From here on, whatever goes wrong is a guess, and it is counted before
    // the tag is compared: handshakes running at once cannot compare more
    // wrong tags than the budget allows.
    let guess = match budget {
        Some(budget) => Some(budget.spend().ok_or(HandshakeError::NoGuessesLeft)?),
        None => None,
    };
    let k = Zeroizing::new(
        spake
            .finish(&theirs)
            .map_err(|_| HandshakeError::WrongSecret)?,
    );
    let keys = Keys::derive(&k);
    let mut tc = [0; 32];
    match read_by(stream, &mut tc, deadline) {
        Ok(()) => {}
        Err(Short::Eof) => return Err(HandshakeError::WrongSecret),
        Err(other) => return Err(other.into()),
    }
    if !bool::from(tc.ct_eq(&keys.client_confirm)) {
        return Err(HandshakeError::WrongSecret);
    }
    if let Some(guess) = guess {
        guess.proved();
    }
    write_by(stream, &keys.server_confirm, deadline)?;
    Ok(keys)
}

/// Our preamble and SPAKE2 message, in one write.
fn send_opening(
    stream: &TcpStream,
    message: &[u8],
    deadline: Instant,
) -> Result<(), HandshakeError> {
    let mut opening = Vec::with_capacity(PREAMBLE.len() + message.len());
    opening.extend_from_slice(PREAMBLE);
    opening.extend_from_slice(message);
    write_by(stream, &opening, deadline)
}

/// What the peer sent before we spoke, read without waiting, and whether it
/// has closed already.
struct Early {
    bytes: [u8; PREAMBLE.len() + MESSAGE_LEN],
    len: usize,
    closed: bool,
}

fn already_sent(stream: &TcpStream) -> Result<Early, HandshakeError> {
    let mut early = Early {
        bytes: [0; PREAMBLE.len() + MESSAGE_LEN],
        len: 0,
        closed: false,
    };
    stream.set_nonblocking(true).map_err(HandshakeError::Io)?;
    let result = (|| {
        while early.len < early.bytes.len() {
            match (&*stream).read(&mut early.bytes[early.len..]) {
                Ok(0) => {
                    early.closed = true;
                    return Ok(());
                }
                Ok(n) => early.len += n,
                Err(error) => match error.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => return Ok(()),
                    io::ErrorKind::ConnectionReset => {
                        early.closed = true;
                        return Ok(());
                    }
                    _ => return Err(HandshakeError::Io(error)),
                },
            }
        }
        // The whole opening is here: is the peer's EOF right behind it?
        // (Peeking takes nothing: a byte here is read again below.)
        let mut next = [0; 1];
        match stream.peek(&mut next) {
            Ok(0) => early.closed = true,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => early.closed = true,
            Err(error) => return Err(HandshakeError::Io(error)),
        }
        Ok(())
    })();
    stream.set_nonblocking(false).map_err(HandshakeError::Io)?;
    result.map(|()| early)
}

/// The peer's preamble (refused at its first wrong byte) and its message;
/// `early` is what of them was read already.
fn read_opening(
    stream: &TcpStream,
    early: &[u8],
    deadline: Instant,
) -> Result<[u8; MESSAGE_LEN], HandshakeError> {
    let (early_preamble, early_message) = early.split_at(early.len().min(PREAMBLE.len()));
    if !PREAMBLE.starts_with(early_preamble) {
        return Err(HandshakeError::NotSecret);
    }
    let mut preamble = [0; PREAMBLE.len()];
    preamble[..early_preamble.len()].copy_from_slice(early_preamble);
    let mut got = early_preamble.len();
    while got < preamble.len() {
        match read_some(stream, &mut preamble[got..], deadline)? {
            0 if got == 0 => return Err(HandshakeError::Closed),
            0 => return Err(HandshakeError::NotSecret),
            n => got += n,
        }
        if preamble[..got] != PREAMBLE[..got] {
            return Err(HandshakeError::NotSecret);
        }
    }
    let mut message = [0; MESSAGE_LEN];
    message[..early_message.len()].copy_from_slice(early_message);
    match read_by(stream, &mut message[early_message.len()..], deadline) {
        Ok(()) => Ok(message),
        Err(Short::Eof) => Err(HandshakeError::Closed),
        Err(other) => Err(other.into()),
    }
}

/// How reading a fixed number of bytes failed.
enum Short {
    /// EOF before all of them.
    Eof,
    Failed(HandshakeError),
}

impl From<Short> for HandshakeError {
    fn from(read: Short) -> Self {
        match read {
            Short::Eof => HandshakeError::Closed,
            Short::Failed(error) => error,
        }
    }
}

fn read_by(stream: &TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), Short> {
    let mut got = 0;
    while got < buf.len() {
        match read_some(stream, &mut buf[got..], deadline) {
            Ok(0) => return Err(Short::Eof),
            Ok(n) => got += n,
            Err(error) => return Err(Short::Failed(error)),
        }
    }
    Ok(())
}

/// One read, bounded by the deadline.
fn read_some(
    mut stream: &TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, HandshakeError> {
    loop {
        let left = remaining(deadline)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(HandshakeError::Io)?;
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(error) => match error.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    return Err(HandshakeError::TimedOut);
                }
                // A reset before the handshake is done is the peer leaving.
                io::ErrorKind::ConnectionReset => return Ok(0),
                _ => return Err(HandshakeError::Io(error)),
            },
        }
    }
}

fn write_by(mut stream: &TcpStream, bytes: &[u8], deadline: Instant) -> Result<(), HandshakeError> {
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(HandshakeError::Io)?;
    stream.write_all(bytes).map_err(|error| match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HandshakeError::TimedOut,
        _ => HandshakeError::Io(error),
    })
}

fn remaining(deadline: Instant) -> Result<Duration, HandshakeError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(HandshakeError::TimedOut)
    } else {
        Ok(left)
    }
}
