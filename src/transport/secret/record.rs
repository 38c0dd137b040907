//! Records (SPEC, "Secret channel"): each direction is a sequence of
//! `length (4 bytes, big-endian) ‖ ChaCha20-Poly1305 ciphertext and tag`,
//! numbered from 0; the nonce is 4 zero bytes and the record's 8-byte
//! big-endian number, the associated data the 4 length bytes. A record with
//! no plaintext ends the direction.
//!
//! [`Sealer`] and [`Opener`] are the pure halves (one key and one counter
//! each); [`SecretTransmitter`] and [`SecretReceiver`] put them on a socket.
//! The sender thread owns the one, the receiver thread the other, so the
//! two directions never share a lock.
//!
//! # The AEAD: AWS-LC's, through `aws-lc-rs`
//!
//! The AEAD is most of this path's cost, so it is AWS-LC's
//! ChaCha20-Poly1305 (`aws_lc_rs::aead::LessSafeKey`): its x86-64
//! assembly sealed 64 KiB records at about 1,550 MiB/s on one core here,
//! against 850 for RustCrypto's `chacha20poly1305`, which it replaced (end
//! to end, with the copies below taken out too, about 27 % less CPU per
//! byte). rustls and rcgen use the same library, so the crate has one.
//! AWS-LC compares the tag in constant time (`CRYPTO_memcmp`).
//!
//! Where the key lives, and what is scrubbed:
//! - The 32 key bytes we derive are in [`Keys`](super::keys::Keys), zeroed
//!   on drop; [`Sealer::new`] and [`Opener::new`] only borrow them.
//! - AWS-LC copies them into an `EVP_AEAD_CTX` that it allocates with
//!   `OPENSSL_malloc`; `aws-lc-rs` frees it on drop with
//!   `EVP_AEAD_CTX_free`, and AWS-LC's `OPENSSL_free` cleanses the whole
//!   allocation before freeing it (unlike OpenSSL's). So the key held in
//!   a [`Sealer`] or [`Opener`] is zeroed when it is dropped.
//! - Each seal and open copies the key and nonce into a stack union that
//!   AWS-LC's C code cleanses afterwards. But the assembly it calls keeps
//!   the key words and the one-time Poly1305 key in its own 320-byte
//!   stack frame and in vector registers, and returns
//!   without clearing them: that much key-derived state stays on the
//!   sender's and the receiver's thread stacks until it is overwritten.
//!   RustCrypto's code, used before, did not scrub its stack either (only
//!   its key struct, on drop).
//! - `ring` (as fast, and what rustls used here before) was not chosen
//!   for the records because its key type cannot be zeroed at all: it has
//!   no `Drop`, so the key it holds stays in memory after it is dropped.
//!
//! AWS-LC decrypts as it authenticates: where a record fails to open, the
//! unauthenticated bytes it wrote are zeroed at once, and the conversation
//! ends with an error.
//!
//! # Copies
//!
//! Sealing reads the plaintext where the input left it and writes the
//! record straight into the batch that goes out in one write; opening
//! writes the plaintext straight into the reader's buffer when the whole
//! record fits there (in place, and copied out, only when it does not).
//! Besides the AEAD, what is left is the kernel's copies in and out.

use crate::transport::{Receive, Transmit};
use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

/// Most plaintext bytes in one record.
pub const MAX_PLAINTEXT: usize = 65_536;
/// The Poly1305 tag at the end of every record.
pub const TAG_LEN: usize = 16;
/// The smallest and largest record lengths (N) allowed on the wire.
pub const MIN_LEN: usize = TAG_LEN;
/// See [`MIN_LEN`].
pub const MAX_LEN: usize = MAX_PLAINTEXT + TAG_LEN;
/// What a record adds to its plaintext: the length and the tag.
pub const OVERHEAD: usize = 4 + TAG_LEN;

/// Why a record could not be taken.
pub const CUT: &str = "the connection was cut: the peer's end was not authenticated";
const FORGED: &str = "a record failed to open: it was changed on the way or forged";
const AFTER_END: &str = "bytes after the peer's end record";
const EXHAUSTED: &str = "record numbers used up";

fn nonce(number: u64) -> Nonce {
    let mut nonce = [0; 12];
    nonce[4..].copy_from_slice(&number.to_be_bytes());
    // Unique: each direction has its own key and never reuses a number.
    Nonce::assume_unique_for_key(nonce)
}

/// A ChaCha20-Poly1305 key in AWS-LC's hands. Only fails for a key that is
/// not 32 bytes, which the type rules out; handled all the same.
fn cipher(key: &[u8; 32]) -> io::Result<LessSafeKey> {
    UnboundKey::new(&CHACHA20_POLY1305, key)
        .map(LessSafeKey::new)
        .map_err(|_| invalid("could not set up the record cipher"))
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Seals one direction's records: its key and its next record number.
pub struct Sealer {
    cipher: LessSafeKey,
    next: u64,
}

impl Sealer {
    /// A direction's sealer, at record 0.
    pub fn new(key: &[u8; 32]) -> io::Result<Sealer> {
        Ok(Sealer {
            cipher: cipher(key)?,
            next: 0,
        })
    }

    /// Seals `plaintext` (at most [`MAX_PLAINTEXT`] bytes; empty: the end
    /// record) into `record`, exactly `plaintext.len() + OVERHEAD` bytes:
    /// one record on the wire. The cipher reads the plaintext where it is
    /// and writes the ciphertext in its place on the wire: no copy first.
    pub fn seal(&mut self, plaintext: &[u8], record: &mut [u8]) -> io::Result<()> {
        debug_assert!(plaintext.len() <= MAX_PLAINTEXT);
        let length =
            u32::try_from(plaintext.len() + TAG_LEN).map_err(|_| invalid("a record too long"))?;
        if record.len() != plaintext.len() + OVERHEAD {
            return Err(invalid("a record buffer of the wrong size"));
        }
        let number = self.next;
        // 2^64 records cannot be sent in practice; never reuse a nonce anyway.
        self.next = number.checked_add(1).ok_or_else(|| invalid(EXHAUSTED))?;
        let length = length.to_be_bytes();
        let (head, rest) = record.split_at_mut(4);
        head.copy_from_slice(&length);
        let (ciphertext, tag) = rest.split_at_mut(plaintext.len());
        self.cipher
            .seal_out_of_place_scatter(
                nonce(number),
                Aad::from(length),
                plaintext,
                ciphertext,
                &[],
                tag,
            )
            .map_err(|_| invalid("could not seal a record"))
    }

    /// Appends `plaintext` to `out` as one record on the wire (see
    /// [`Sealer::seal`]).
    pub fn seal_into(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let start = out.len();
        out.resize(start + plaintext.len() + OVERHEAD, 0);
        self.seal(plaintext, &mut out[start..])
    }
}

/// Opens one direction's records: its key and the number it expects next.
pub struct Opener {
    cipher: LessSafeKey,
    next: u64,
}

impl Opener {
    /// A direction's opener, expecting record 0.
    pub fn new(key: &[u8; 32]) -> io::Result<Opener> {
        Ok(Opener {
            cipher: cipher(key)?,
            next: 0,
        })
    }

    /// Checks the 4 length bytes as soon as they are read: N in 16..=65552.
    pub fn check_length(length: [u8; 4]) -> io::Result<usize> {
        let n = u32::from_be_bytes(length) as usize;
        if (MIN_LEN..=MAX_LEN).contains(&n) {
            Ok(n)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a record length out of range ({n} bytes; 16 to 65552 allowed)"),
            ))
        }
    }

    /// Opens the record `length ‖ body` in place; on success the plaintext
    /// is `body[..body.len() - 16]`. On failure `body` is zeroed: nothing
    /// of a record that does not open is kept, let alone shown.
    pub fn open_in_place(&mut self, length: [u8; 4], body: &mut [u8]) -> io::Result<usize> {
        let Some(plain) = body.len().checked_sub(TAG_LEN) else {
            return Err(invalid(FORGED));
        };
        let number = self.number()?;
        let opened = self
            .cipher
            .open_in_place(nonce(number), Aad::from(length), body)
            .is_ok();
        self.opened(opened, body)?;
        Ok(plain)
    }

    /// Opens the record `length ‖ body` into `out[..body.len() - 16]`,
    /// which must be there; `body` is left as it is. On failure that part
    /// of `out` is zeroed.
    pub fn open_into(&mut self, length: [u8; 4], body: &[u8], out: &mut [u8]) -> io::Result<usize> {
        let Some(plain) = body.len().checked_sub(TAG_LEN) else {
            return Err(invalid(FORGED));
        };
        let Some(out) = out.get_mut(..plain) else {
            return Err(invalid("no room to open a record into"));
        };
        let number = self.number()?;
        let (ciphertext, tag) = body.split_at(plain);
        let opened = self
            .cipher
            .open_separate_gather(nonce(number), Aad::from(length), ciphertext, tag, out)
            .is_ok();
        self.opened(opened, out)?;
        Ok(plain)
    }

    /// The number the next record must have.
    fn number(&self) -> io::Result<u64> {
        // Past 2^64 - 1 records nothing opens: a nonce is never reused.
        if self.next == u64::MAX {
            return Err(invalid(EXHAUSTED));
        }
        Ok(self.next)
    }

    /// After an attempt to open the record into `out`: counts it, or, as
    /// AWS-LC decrypts while it authenticates, zeroes the unauthenticated
    /// bytes it left there. (AWS-LC compares the tag in constant time.)
    fn opened(&mut self, opened: bool, out: &mut [u8]) -> io::Result<()> {
        if opened {
            self.next += 1;
            Ok(())
        } else {
            out.fill(0);
            Err(invalid(FORGED))
        }
    }
}

/// The sending half of a secret connection, owned by the sender thread.
pub struct SecretTransmitter {
    socket: Arc<TcpStream>,
    sealer: Sealer,
    /// Records on their way out, `out[..used]`; allocated (and zeroed)
    /// once, so sending neither allocates nor fills.
    out: Vec<u8>,
    finished: bool,
}

/// How much plaintext one write gathers (several records, one syscall).
const WRITE_BATCH: usize = 16 * MAX_PLAINTEXT;

impl SecretTransmitter {
    /// Seals what is transmitted with `sealer` and writes it to `socket`.
    pub fn new(socket: Arc<TcpStream>, sealer: Sealer) -> Self {
        SecretTransmitter {
            socket,
            sealer,
            out: vec![0; WRITE_BATCH + WRITE_BATCH / MAX_PLAINTEXT * OVERHEAD],
            finished: false,
        }
    }

    /// Seals up to [`WRITE_BATCH`] bytes of `bufs` (in order, as records of
    /// at most 64 KiB) and writes them all, in one write where the socket
    /// takes it. Returns how many plaintext bytes went out.
    fn send(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.finished {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "this direction has ended",
            ));
        }
        let (mut taken, mut used) = (0, 0);
        for buf in bufs {
            let room = WRITE_BATCH - taken;
            if room == 0 {
                break;
            }
            let buf = &buf[..buf.len().min(room)];
            for piece in buf.chunks(MAX_PLAINTEXT) {
                let end = used + piece.len() + OVERHEAD;
                self.sealer.seal(piece, &mut self.out[used..end])?;
                used = end;
            }
            taken += buf.len();
        }
        // Once sealed, a record's number is spent: it must go out whole, so
        // this writes all of it even though `write` may return short.
        (&*self.socket).write_all(&self.out[..used])?;
        Ok(taken)
    }
}

impl Write for SecretTransmitter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.send(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transmit for SecretTransmitter {
    /// Ends our direction: the end record, then `shutdown(Write)`. A peer
    /// already gone is not an error here: the receiving half says how.
    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let end = &mut self.out[..OVERHEAD];
        self.sealer.seal(&[], end)?;
        let gone = |error: &io::Error| {
            matches!(
                error.kind(),
                io::ErrorKind::NotConnected
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
            )
        };
        match (&*self.socket).write_all(&self.out[..OVERHEAD]) {
            Err(error) if gone(&error) => return Ok(()),
            other => other?,
        }
        match self.socket.shutdown(Shutdown::Write) {
            Err(error) if gone(&error) => Ok(()),
            other => other,
        }
    }
}

/// The receiving half of a secret connection, owned by the receiver thread.
pub struct SecretReceiver {
    socket: Arc<TcpStream>,
    opener: Opener,
    /// Bytes read from the socket: `buf[start..end]` not yet taken.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// An opened record's plaintext not yet handed out: `buf[plain]`;
    /// `start` is past that record.
    plain: std::ops::Range<usize>,
    /// A record that failed after some plaintext of this `read` was
    /// already handed out: reported by the next call.
    failure: Option<io::Error>,
    ended: bool,
}

/// How long the receiver waits for the peer's EOF after its end record.
const EOF_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// How much the receiver reads at once: 16 full records per syscall, so
/// that one `read` can hand a whole megabyte of plaintext to the output
/// (each hand-over there costs a thread switch).
const READ_BUFFER: usize = 16 * (MAX_LEN + 4);

impl SecretReceiver {
    /// Opens records from `socket` with `opener`. `early` is what the
    /// handshake already read past its own bytes (normally nothing).
    pub fn new(socket: Arc<TcpStream>, opener: Opener, early: &[u8]) -> Self {
        let mut buf = vec![0; READ_BUFFER.max(early.len())];
        buf[..early.len()].copy_from_slice(early);
        SecretReceiver {
            socket,
            opener,
            buf,
            start: 0,
            end: early.len(),
            plain: 0..0,
            failure: None,
            ended: false,
        }
    }
}

impl Receive for SecretReceiver {}

impl Read for SecretReceiver {
    /// Plaintext in; `Ok(0)` only at the peer's authenticated end.
    ///
    /// Blocks on the socket only while nothing has been handed out; after
    /// that it goes on opening the records already read, as many as `out`
    /// takes, so a bulk transfer moves in large pieces and a chat line is
    /// not held back waiting for more.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(error) = self.failure.take() {
            return Err(error);
        }
        let mut given = 0;
        while given < out.len() {
            if !self.plain.is_empty() {
                let n = self.plain.len().min(out.len() - given);
                out[given..given + n]
                    .copy_from_slice(&self.buf[self.plain.start..self.plain.start + n]);
                self.plain.start += n;
                given += n;
                continue;
            }
            if self.ended || (given > 0 && !self.data_record_buffered()) {
                break;
            }
            match self.next_record(&mut out[given..]) {
                Ok(direct) => given += direct,
                Err(error) if given == 0 => return Err(error),
                Err(error) => {
                    self.failure = Some(error);
                    break;
                }
            }
        }
        Ok(given)
    }
}

impl SecretReceiver {
    /// Whether a whole record that is not the end record is already read,
    /// so opening it needs no socket call. (The end record waits for the
    /// peer's EOF; a record too long or too short is an error, left to the
    /// next `read`.)
    fn data_record_buffered(&self) -> bool {
        let have = &self.buf[self.start..self.end];
        match have.first_chunk::<4>() {
            Some(length) => {
                let n = u32::from_be_bytes(*length) as usize;
                n > MIN_LEN && n <= MAX_LEN && have.len() >= 4 + n
            }
            None => false,
        }
    }

    /// Reads and opens the next record. Its plaintext goes straight into
    /// `out` when it fits there (returns how many bytes), or else is
    /// opened in place to `plain` (returns 0); the end record sets `ended`
    /// (once the peer's EOF follows it).
    fn next_record(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.fill(4)?;
        let length: [u8; 4] = self.buf[self.start..self.start + 4]
            .try_into()
            .map_err(|_| invalid(CUT))?;
        let n = Opener::check_length(length)?;
        self.fill(4 + n)?;
        let body = self.start + 4..self.start + 4 + n;
        let plain = n - TAG_LEN;
        let direct = if plain <= out.len() {
            self.opener
                .open_into(length, &self.buf[body.clone()], out)?
        } else {
            self.opener
                .open_in_place(length, &mut self.buf[body.clone()])?;
            self.plain = body.start..body.start + plain;
            0
        };
        self.start = body.end;
        if plain == 0 {
            self.expect_eof()?;
            self.ended = true;
        }
        Ok(direct)
    }

    /// Nothing may follow the end record but the peer's EOF, which it sends
    /// right after it. A peer that holds its side open is waited for only
    /// [`EOF_GRACE`]: its end is authenticated already. (Only this thread
    /// reads the socket, so the read timeout is ours to set.)
    fn expect_eof(&mut self) -> io::Result<()> {
        if self.end > self.start {
            return Err(invalid(AFTER_END));
        }
        self.socket.set_read_timeout(Some(EOF_GRACE))?;
        let mut byte = [0; 1];
        loop {
            match (&*self.socket).read(&mut byte) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(invalid(AFTER_END)),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    tracing::debug!("no EOF after the peer's end record; ending anyway");
                    return Ok(());
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads until `buf[start..]` holds at least `want` bytes. An EOF before
    /// that is a cut: the peer's end was not authenticated.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.end - self.start >= want {
            return Ok(());
        }
        // Only called with no plaintext pending, so `buf[..start]` is free:
        // move the partial record to the front when the room after it is
        // short of a whole record, so each read can take many.
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.buf.len() - self.end < MAX_LEN + 4 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < want {
            match (&*self.socket).read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, CUT)),
                Ok(n) => self.end += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_outside_16_to_65552_are_refused() {
        assert!(Opener::check_length(15u32.to_be_bytes()).is_err());
        assert_eq!(Opener::check_length(16u32.to_be_bytes()).unwrap(), 16);
        assert_eq!(
            Opener::check_length(65_552u32.to_be_bytes()).unwrap(),
            65_552
        );
        assert!(Opener::check_length(65_553u32.to_be_bytes()).is_err());
        assert!(Opener::check_length(u32::MAX.to_be_bytes()).is_err());
    }

    #[test]
    fn a_flipped_bit_or_a_replayed_record_does_not_open() {
        let key = [7; 32];
        let mut sealer = Sealer::new(&key).unwrap();
        let mut wire = Vec::new();
        sealer.seal_into(b"first", &mut wire).unwrap();
        let mut first = wire.clone();
        let length: [u8; 4] = wire[..4].try_into().unwrap();

        let mut flipped = wire.clone();
        flipped[6] ^= 1;
        assert!(
            Opener::new(&key)
                .unwrap()
                .open_in_place(length, &mut flipped[4..])
                .is_err()
        );

        let mut opener = Opener::new(&key).unwrap();
        assert_eq!(opener.open_in_place(length, &mut first[4..]).unwrap(), 5);
        assert_eq!(&first[4..9], b"first");
        // The same record again is record 1's nonce now: it does not open.
        let mut again = wire.clone();
        assert!(opener.open_in_place(length, &mut again[4..]).is_err());
    }

    /// A receiver over loopback whose peer wrote `wire` and closed.
    fn receiver_of(wire: &[u8], key: &[u8; 32]) -> SecretReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        peer.write_all(wire).unwrap();
        drop(peer);
        SecretReceiver::new(Arc::new(ours), Opener::new(key).unwrap(), &[])
    }

    #[test]
    fn one_read_takes_every_record_already_read_and_stops_at_a_forged_one() {
        let key = [5; 32];
        let mut sealer = Sealer::new(&key).unwrap();
        let mut wire = Vec::new();
        for piece in [&b"one "[..], b"two ", b"three"] {
            sealer.seal_into(piece, &mut wire).unwrap();
        }
        let good = wire.len();
        sealer.seal_into(b"forged", &mut wire).unwrap();
        wire[good + 6] ^= 1;
        let mut receiver = receiver_of(&wire, &key);
        receiver.fill(wire.len()).unwrap();
        let mut buf = [0; 64];
        assert_eq!(receiver.read(&mut buf).unwrap(), 13);
        assert_eq!(&buf[..13], b"one two three");
        let error = receiver.read(&mut buf).unwrap_err();
        assert_eq!(error.to_string(), FORGED);
    }

    #[test]
    fn a_reader_with_little_room_gets_every_byte_and_a_forgery_leaves_zeros() {
        let key = [3; 32];
        let mut sealer = Sealer::new(&key).unwrap();
        let text: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        sealer.seal_into(&text[..600], &mut wire).unwrap();
        sealer.seal_into(&text[600..], &mut wire).unwrap();
        sealer.seal_into(b"", &mut wire).unwrap();
        // 7 bytes at a time: each record is opened in place, handed out in
        // pieces.
        let mut receiver = receiver_of(&wire, &key);
        let (mut got, mut piece) = (Vec::new(), [0; 7]);
        loop {
            match receiver.read(&mut piece).unwrap() {
                0 => break,
                n => got.extend_from_slice(&piece[..n]),
            }
        }
        assert_eq!(got, text);

        // Opened into the caller's buffer, a forged record leaves zeros.
        let mut forged = Vec::new();
        Sealer::new(&key)
            .unwrap()
            .seal_into(b"secret words", &mut forged)
            .unwrap();
        forged[5] ^= 1;
        let length: [u8; 4] = forged[..4].try_into().unwrap();
        let mut out = [0xaa; 12];
        let mut opener = Opener::new(&key).unwrap();
        assert!(opener.open_into(length, &forged[4..], &mut out).is_err());
        assert_eq!(out, [0; 12]);
        let mut body = forged[4..].to_vec();
        assert!(opener.open_in_place(length, &mut body).is_err());
        assert!(body.iter().all(|&b| b == 0));
    }

    #[test]
    fn only_the_peers_eof_may_follow_its_end_record() {
        let key = [9; 32];
        let mut sealer = Sealer::new(&key).unwrap();
        let mut wire = Vec::new();
        sealer.seal_into(b"hi", &mut wire).unwrap();
        sealer.seal_into(b"", &mut wire).unwrap();
        let mut buf = [0; 16];

        let mut clean = receiver_of(&wire, &key);
        assert_eq!(clean.read(&mut buf).unwrap(), 2);
        assert_eq!(clean.read(&mut buf).unwrap(), 0);

        wire.push(b'x');
        let mut trailing = receiver_of(&wire, &key);
        assert_eq!(trailing.read(&mut buf).unwrap(), 2);
        let error = trailing.read(&mut buf).unwrap_err();
        assert_eq!(error.to_string(), AFTER_END);

        let mut cut = receiver_of(&wire[..wire.len() - 21], &key);
        assert_eq!(cut.read(&mut buf).unwrap(), 2);
        assert_eq!(cut.read(&mut buf).unwrap_err().to_string(), CUT);
    }
}
