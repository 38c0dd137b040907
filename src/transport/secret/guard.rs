//! A plain connection whose peer speaks `--secret` (SPEC, "Everything else
//! is unchanged"): a plain `connect` to a secret server says "the server
//! wants --secret", a plain `serve` whose peer opens with the preamble says
//! "the peer wants --secret", and neither shows the handshake's bytes.
//!
//! The guard holds back the first bytes only while they could still be the
//! preamble, and lets them through at the first byte that differs (or at
//! the peer's EOF), so a plain conversation sees every byte as before.

use super::PREAMBLE;
use crate::transport::{Receive, Side};
use std::io::{self, Read};
use std::net::TcpStream;

/// A plain receiving half that refuses a peer speaking the secret channel.
pub struct PreambleGuard {
    inner: Box<dyn Receive>,
    /// Who we are: it decides what the refusal says.
    side: Side,
    held: [u8; PREAMBLE.len()],
    /// `held[..len]` came in and matches the preamble so far.
    len: usize,
    /// `held[given..len]` is still to be handed out, once decided.
    given: usize,
    decided: bool,
}

impl PreambleGuard {
    /// Guards `inner`, the plain half of a connection made as `side`.
    pub fn new(inner: Box<dyn Receive>, side: Side) -> Self {
        PreambleGuard {
            inner,
            side,
            held: [0; PREAMBLE.len()],
            len: 0,
            given: 0,
            decided: false,
        }
    }

    fn refusal(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            match self.side {
                Side::Client => "the server wants --secret",
                Side::Server => "the peer wants --secret",
            },
        )
    }
}

impl Read for PreambleGuard {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.decided {
            // Read into what is left of the preamble's length, so no byte
            // past it is taken before we know.
            let n = self.inner.read(&mut self.held[self.len..])?;
            let start = self.len;
            self.len += n;
            if n == 0 || self.held[start..self.len] != PREAMBLE[start..self.len] {
                self.decided = true;
            } else if self.len == PREAMBLE.len() {
                return Err(self.refusal());
            } else {
                // Still a prefix of the preamble: hold it, read more.
                return self.read(buf);
            }
        }
        if self.given < self.len {
            let n = (self.len - self.given).min(buf.len());
            buf[..n].copy_from_slice(&self.held[self.given..self.given + n]);
            self.given += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl Receive for PreambleGuard {
    /// The plain socket, as for any plain connection, but only once the
    /// guard has decided and handed out what it held: until then the
    /// opening bytes must come through `read` here, to be checked.
    fn plain_socket(&self) -> Option<&TcpStream> {
        if self.decided && self.given == self.len {
            self.inner.plain_socket()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Connection;
    use std::io::Write;
    use std::net::TcpListener;

    fn guarded(sent: &[u8], side: Side) -> io::Result<Vec<u8>> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        peer.write_all(sent).unwrap();
        drop(peer);
        let mut guard = PreambleGuard::new(Connection::plain(ours).receiver, side);
        let mut got = Vec::new();
        guard.read_to_end(&mut got)?;
        Ok(got)
    }

    #[test]
    fn the_preamble_is_refused_and_anything_else_passes_whole() {
        let error = guarded(b"duplex-secret-1\n0123", Side::Client).unwrap_err();
        assert_eq!(error.to_string(), "the server wants --secret");
        let error = guarded(b"duplex-secret-1\n", Side::Server).unwrap_err();
        assert_eq!(error.to_string(), "the peer wants --secret");
        assert_eq!(
            guarded(b"duplex-secret-2\nx", Side::Client).unwrap(),
            b"duplex-secret-2\nx"
        );
        assert_eq!(guarded(b"dup", Side::Client).unwrap(), b"dup");
        assert_eq!(guarded(b"hello\n", Side::Client).unwrap(), b"hello\n");
        assert_eq!(guarded(b"", Side::Client).unwrap(), b"");
    }
}
