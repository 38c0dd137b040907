//! `--secret`: duplex's own protocol for a private, authenticated
//! conversation from a few shared words (SPEC, "Secret channel"; vectors in
//! `shared/vectors/secret-1.json`).
//!
//! A file per term of the SPEC: `handshake` (preamble, SPAKE2, the
//! confirmation tags, the 10 s bound), `keys` (the HKDF key schedule),
//! `record` (the sealed records and the two halves that carry them),
//! [`words`] (where the secret comes from), `guard` (a plain connection
//! whose peer speaks this protocol). This file holds the [`Secret`]
//! itself, the guess budget, and `connect`, which runs the handshake and
//! hands back the two halves.
//!
//! The public part is what a caller needs to choose `--secret`: a
//! [`Secret`] (from words, [`words::from_env`], [`words::generate`] or
//! [`words::prompt`]) in a [`SecretSetup`](super::SecretSetup), and the
//! [`HandshakeError`] that [`Error::Handshake`](crate::Error::Handshake)
//! carries. The handshake itself is reached through [`serve`](crate::serve())
//! and [`connect`](crate::connect()). All the cryptography is from crates
//! (`spake2`, `hkdf`, `sha2`, `subtle`, and `aws-lc-rs` for the records'
//! ChaCha20-Poly1305); keys and the secret are zeroed when dropped (see
//! `record` for what AWS-LC does and does not scrub).

pub(crate) mod guard;
pub(crate) mod handshake;
pub(crate) mod keys;
pub(crate) mod record;
pub mod words;

pub use handshake::HandshakeError;
// Not API: for examples/bench's in-process handshake timing only.
pub(crate) use handshake::PREAMBLE;
#[doc(hidden)]
pub use handshake::Role;
pub(crate) use record::{SecretReceiver, SecretTransmitter};

use std::fmt;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use zeroize::Zeroizing;

/// The shared secret: the UTF-8 bytes of the words, trimmed of leading and
/// trailing ASCII whitespace. Zeroed when dropped; never printed by `Debug`.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

/// Why a text cannot be a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmptySecret;

impl fmt::Display for EmptySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the secret is empty")
    }
}

impl std::error::Error for EmptySecret {}

impl Secret {
    /// The secret in `text`: leading and trailing space, tab, CR and LF
    /// removed, nothing else changed. Blank text is refused.
    pub fn new(text: &str) -> Result<Secret, EmptySecret> {
        let trimmed = text.trim_matches([' ', '\t', '\r', '\n']);
        if trimmed.is_empty() {
            return Err(EmptySecret);
        }
        Ok(Secret(Zeroizing::new(trimmed.as_bytes().to_vec())))
    }

    /// The bytes SPAKE2 takes as the password.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How many wrong secrets a server takes, in all, before it stops.
pub const GUESSES: u32 = 3;

/// The server's guess budget, shared by every handshake it runs (one for a
/// whole room). A guess is spent before its tag is compared and given back
/// only when the tag is right, so handshakes running at once never compare
/// more than [`GUESSES`] wrong tags.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct GuessBudget {
    state: Mutex<Spent>,
}

#[derive(Debug, Default)]
struct Spent {
    /// Tags being compared now.
    pending: u32,
    /// Handshakes that failed after the peer's SPAKE2 message.
    wrong: u32,
}

impl GuessBudget {
    /// A full budget of [`GUESSES`].
    pub fn new() -> Self {
        GuessBudget::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spent> {
        // The state is two counters, always consistent: a panic elsewhere
        // while holding the lock leaves nothing half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spends one guess, or `None` when none is left.
    pub fn spend(&self) -> Option<Guess<'_>> {
        let mut spent = self.lock();
        if spent.pending + spent.wrong >= GUESSES {
            return None;
        }
        spent.pending += 1;
        Some(Guess {
            budget: self,
            proved: false,
        })
    }

    /// The wrong secrets so far.
    pub fn wrong(&self) -> u32 {
        self.lock().wrong
    }

    /// Whether all [`GUESSES`] are used up by wrong secrets: the server stops.
    pub fn exhausted(&self) -> bool {
        self.wrong() >= GUESSES
    }
}

/// One spent guess. Dropped without [`Guess::proved`], it counts as wrong.
#[doc(hidden)]
#[derive(Debug)]
pub struct Guess<'a> {
    budget: &'a GuessBudget,
    proved: bool,
}

impl Guess<'_> {
    /// The peer's tag was right: the guess is given back.
    pub fn proved(mut self) {
        self.proved = true;
    }
}

impl Drop for Guess<'_> {
    fn drop(&mut self) {
        let mut spent = self.budget.lock();
        spent.pending = spent.pending.saturating_sub(1);
        if !self.proved {
            spent.wrong += 1;
        }
    }
}

/// Both halves of a secret connection, ready for the pumps.
#[doc(hidden)]
pub struct SecretHalves {
    /// The sender thread's half: Kcs or Ksc out, with its counter.
    pub transmitter: SecretTransmitter,
    /// The receiver thread's half: the other key in, with its counter.
    pub receiver: SecretReceiver,
}

/// Runs the handshake on `socket` as `role` and returns the two halves.
/// `connected` is when TCP connected (the server: when it accepted).
/// Not API: the conversation reaches it through the transport seam; it is
/// public for examples/bench's handshake timing only.
#[doc(hidden)]
pub fn connect(
    socket: &Arc<TcpStream>,
    role: Role,
    secret: &Secret,
    budget: Option<&GuessBudget>,
    connected: Instant,
) -> Result<SecretHalves, HandshakeError> {
    let keys = handshake::run(socket, role, secret, budget, connected)?;
    let (out_key, in_key) = match role {
        Role::Client => (&keys.client_to_server, &keys.server_to_client),
        Role::Server => (&keys.server_to_client, &keys.client_to_server),
    };
    let sealer = record::Sealer::new(out_key).map_err(HandshakeError::Io)?;
    let opener = record::Opener::new(in_key).map_err(HandshakeError::Io)?;
    Ok(SecretHalves {
        transmitter: SecretTransmitter::new(Arc::clone(socket), sealer),
        receiver: SecretReceiver::new(Arc::clone(socket), opener, &[]),
    })
}

#[cfg(test)]
mod vectors {
    //! `tests/vectors/secret-1.json` (a copy of `shared/vectors/`),
    //! reproduced: the key schedule from its fixed K, and every record.
    use super::keys::Keys;
    use super::record::{Opener, Sealer};
    use super::{PREAMBLE, handshake};
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../../../tests/vectors/secret-1.json")).unwrap()
    }

    fn hex(value: &Value) -> Vec<u8> {
        let text = value.as_str().unwrap();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_preamble_and_message_length() {
        let v = vectors();
        assert_eq!(hex(&v["preamble_hex"]), PREAMBLE);
        assert_eq!(v["spake2"]["message_len"], handshake::MESSAGE_LEN);
    }

    #[test]
    fn the_key_schedule() {
        let v = vectors();
        let keys = Keys::derive(&hex(&v["K_hex"]));
        assert_eq!(keys.client_confirm.to_vec(), hex(&v["Tc_hex"]));
        assert_eq!(keys.server_confirm.to_vec(), hex(&v["Ts_hex"]));
        assert_eq!(keys.client_to_server.to_vec(), hex(&v["Kcs_hex"]));
        assert_eq!(keys.server_to_client.to_vec(), hex(&v["Ksc_hex"]));
    }

    #[test]
    fn every_record_seals_and_opens() {
        let v = vectors();
        let keys = Keys::derive(&hex(&v["K_hex"]));
        let key = |direction: &str| match direction {
            "client to server" => keys.client_to_server,
            "server to client" => keys.server_to_client,
            other => panic!("direction {other}"),
        };
        let mut sealers = std::collections::HashMap::new();
        let mut openers = std::collections::HashMap::new();
        let records = v["records"].as_array().unwrap();
        assert_eq!(records.len(), 5);
        for record in records {
            let direction = record["direction"].as_str().unwrap();
            let plaintext = record["plaintext"].as_str().unwrap().as_bytes();
            let wire = hex(&record["wire_hex"]);
            let sealer = sealers
                .entry(direction)
                .or_insert_with(|| Sealer::new(&key(direction)).unwrap());
            let mut sealed = Vec::new();
            sealer.seal_into(plaintext, &mut sealed).unwrap();
            assert_eq!(sealed, wire, "record {record}");

            let opener = openers
                .entry(direction)
                .or_insert_with(|| Opener::new(&key(direction)).unwrap());
            let length: [u8; 4] = wire[..4].try_into().unwrap();
            assert_eq!(Opener::check_length(length).unwrap(), wire.len() - 4);
            let mut body = wire[4..].to_vec();
            let n = opener.open_in_place(length, &mut body).unwrap();
            assert_eq!(&body[..n], plaintext);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transmit;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    /// Runs a client and a server handshake over loopback.
    fn pair(
        client_secret: &str,
        server_secret: &str,
        budget: &GuessBudget,
    ) -> (
        Result<SecretHalves, HandshakeError>,
        Result<SecretHalves, HandshakeError>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client_secret = Secret::new(client_secret).unwrap();
        let server_secret = Secret::new(server_secret).unwrap();
        thread::scope(|scope| {
            let client = scope.spawn(move || {
                let socket = Arc::new(TcpStream::connect(addr).unwrap());
                connect(&socket, Role::Client, &client_secret, None, Instant::now())
            });
            let (stream, _) = listener.accept().unwrap();
            let socket = Arc::new(stream);
            let server = connect(
                &socket,
                Role::Server,
                &server_secret,
                Some(budget),
                Instant::now(),
            );
            drop(socket);
            (client.join().unwrap(), server)
        })
    }

    #[test]
    fn the_same_words_talk_both_ways_and_end_authenticated() {
        let budget = GuessBudget::new();
        let (client, server) = pair("olive-tundra", " olive-tundra\n", &budget);
        let (mut client, mut server) = (client.unwrap(), server.unwrap());
        client.transmitter.write_all(b"hello\n").unwrap();
        client.transmitter.finish().unwrap();
        server.transmitter.write_all(&vec![7; 200_000]).unwrap();
        server.transmitter.finish().unwrap();
        let mut buf = vec![0; 300_000];
        let n = server.receiver.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\n");
        assert_eq!(server.receiver.read(&mut buf).unwrap(), 0);
        let mut got = 0;
        loop {
            match client.receiver.read(&mut buf[got..]).unwrap() {
                0 => break,
                n => got += n,
            }
        }
        assert_eq!(got, 200_000);
        assert_eq!(budget.wrong(), 0);
    }

    #[test]
    fn wrong_words_fail_on_both_sides_and_count_one_guess() {
        let budget = GuessBudget::new();
        let (client, server) = pair("olive-tundra", "olive-tundrA", &budget);
        assert!(
            matches!(client, Err(HandshakeError::WrongSecret)),
            "{:?}",
            client.err()
        );
        assert!(
            matches!(server, Err(HandshakeError::WrongSecret)),
            "{:?}",
            server.err()
        );
        assert_eq!(budget.wrong(), 1);
        assert!(!budget.exhausted());
    }

    #[test]
    fn three_guesses_in_all_and_none_compared_past_them() {
        let budget = GuessBudget::new();
        let held: Vec<Guess<'_>> = (0..3).map(|_| budget.spend().unwrap()).collect();
        assert!(budget.spend().is_none(), "a fourth tag compared at once");
        let mut held = held.into_iter();
        held.next().unwrap().proved();
        assert_eq!(budget.wrong(), 0);
        drop(held);
        assert_eq!(budget.wrong(), 2);
        drop(budget.spend().unwrap());
        assert!(budget.exhausted());
        assert!(budget.spend().is_none());
    }
}
