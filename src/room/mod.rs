//! `duplex serve --room`: many peers at once, lines relayed between them
//! (SPEC, "Room"; issues 4, 9 and 17).
//!
//! ```text
//!  peer A ─read─▶ room-recv ─┐                    ┌─▶ queue ─▶ room-send ─write─▶ peer A
//!  peer B ─read─▶ room-recv ─┼─(id, event)─▶ hub ─┼─▶ queue ─▶ room-send ─write─▶ peer B
//!                            │   ▲   ▲   ▲        └─▶ server's output
//!                 newcomers ─┘   │   │   └ timers (linger, stalled peers)
//!                     server input   Ctrl-C
//! ```
//!
//! Where things are:
//! - `hub.rs`: the thread that called `run`. It alone owns the peer table:
//!   there is no shared list of sockets, so relaying, joining, leaving,
//!   names and eviction are plain single-threaded code, and its `select!`
//!   reads like the SPEC — one arm each for newcomers, peers' lines, peers'
//!   senders ending, the server's input, Ctrl-C and a timer.
//! - `peer.rs`: one peer's state (one enum), its bounded queue, and its two
//!   threads, `room-recv` and `room-send`, which do all of the peer's I/O
//!   through the `Connection` that
//!   `room-recv` makes (a handshake runs there, never on the hub).
//! - `notices.rs`: the text of every notice, and the rule for names.
//! - The line rules are `lines.rs`'s: one goodbye scanner for chat
//!   mode and the room alike, property-tested there for every cut.
//!
//! **One wake-up per batch.** Waking a sleeping sender thread is most of the
//! cost of a busy room, so the hub takes the events of lines already waiting
//! along with the one that woke it (up to `GATHER_EVENTS` /
//! `GATHER_BYTES`), and queues one batch per peer: all of them but the
//! peer's own, in order. A line is copied once, by its receiver, into the
//! buffer that every queue then shares.
//!
//! **Bounded everywhere, fair to readers.** The events channel is bounded: a
//! hub that cannot keep up (its output is slow: SPEC makes the server's
//! stdout the one reader that may slow the room) blocks the receivers, and
//! TCP flow control slows the senders. Each peer's queue has a soft bound;
//! being behind is not being too slow: a peer is evicted when its queue is
//! over the soft bound *and* its sender thread has written nothing for
//! `STALL_GRACE` (1 s), checked when the hub offers it a message and again
//! by the hub's timer, so a peer that stops reading is gone about a second
//! after its last write even if the room falls silent. A queue at the hard
//! bound (`HARD_FACTOR`, 4, times the soft one) is a reader that keeps
//! reading but cannot keep up with a flood (a label makes a 2-byte line ten
//! times longer): the hub then stops taking anyone's lines until it drains,
//! so the flooder's receiver stops reading and TCP slows the flooder, and
//! nobody is evicted for it (issue 17, item 7). Memory stays bounded by the
//! hard bound. Messages are shared by every queue they are in.
//!
//! **Leaving never blocks the hub.** A peer that leaves (goodbye, EOF, error,
//! eviction, line too long, room closing) loses its queue and gets a
//! deadline (its linger); when the deadline passes, its socket is shut down,
//! which wakes whichever thread is still blocked on it. An evicted peer's
//! notice is its sender's last batch. Each thread's last act is an event to
//! the hub, and the hub joins a thread only after that event, so a join
//! waits at most for the thread to return; a thread that panicked is
//! reported on stderr and ends the room with an error (exit 1). A peer is
//! removed from the table (and its socket closed) once both threads are
//! joined; `run` returns once the room is closed and the table is empty.

mod hub;
mod notices;
mod peer;

use crate::console::Console;
use crate::ending::Ending;
use crate::error::{Error, Result};
use crate::net::Acceptor;
use crate::options::{ConversationOptions, RoomOptions};
use std::io;
use std::net::TcpStream;
use std::sync::Arc;

/// The longest line a room relays, not counting its `\n`. A longer one is
/// never relayed, so memory stays bounded and no line is ever cut.
pub const MAX_LINE: usize = 64 * 1024;

/// Whether a room accepts `name` as a peer's name (`/name NAME`): 1 to 24
/// of `A-Z a-z 0-9 _ -`, and not `server`.
pub fn is_valid_name(name: &str) -> bool {
    notices::valid_name(name.as_bytes()).is_some()
}

/// At most this many events of lines, or this many bytes (passed by at most
/// one message), are taken from the events channel and relayed together: one
/// batch per peer, one wake-up of its sender thread.
const GATHER_EVENTS: usize = 64;
const GATHER_BYTES: usize = 256 * 1024;

/// A message to peers: whole lines, shared by every queue it is in. The
/// receiver's buffer itself, moved, not copied, into the `Arc`.
type Bytes = Arc<Vec<u8>>;

/// What the hub queues for a peer at once: the messages of one wake-up, so
/// that its sender thread is woken once for all of them.
type Batch = Vec<Bytes>;

fn batch_len(batch: &[Bytes]) -> usize {
    batch.iter().map(|msg| msg.len()).sum()
}

/// A peer's key in the table; never reused, and increasing, so the table
/// in key order is the order peers came in.
type PeerId = u64;

/// What a peer's threads tell the hub. The receiver's last event is
/// [`PeerEvent::Received`] or [`PeerEvent::NoConnection`], the sender's
/// [`PeerEvent::Sent`].
#[derive(Debug)]
enum PeerEvent {
    /// The connection is made (its handshake, if any, is done).
    Ready(Arc<TcpStream>),
    /// Whole lines from the peer, already labelled.
    Lines(Bytes),
    /// A `/name` line: the name asked for, or `None` when it is not a valid
    /// one. The receiver waits for the hub's answer.
    Name(Option<String>),
    /// The peer sent an empty line; nothing after it is relayed.
    Goodbye,
    /// The peer sent a line longer than [`MAX_LINE`]; nothing from it on is
    /// relayed.
    TooLong,
    /// The receiver thread ended: EOF, or the error that ended it.
    Received(io::Result<()>),
    /// The connection could not be made; the receiver thread has ended.
    NoConnection(Error),
    /// The sender thread ended: it finished, or the error that ended it.
    Sent(io::Result<()>),
}

/// Runs a room on the newcomers `acceptor` hands over (already admitted
/// and tuned) until the server's goodbye (an empty line or the
/// end of `input`), a shutdown, or the output's reader going away.
///
/// Peers' lines go to `output`, labelled; `input`'s lines go to every peer,
/// labelled `[server] `. Input is only taken once the first peer has
/// joined, so what the server says before that waits for it, and an input
/// that ends before anyone came still reaches the first peer (SPEC, "Serve").
/// After that the server talks like any peer: what it says to an empty room
/// reaches nobody, and its goodbye ends the room at once. Joins, leaves,
/// names and evictions are reported through `status`.
pub(crate) fn run(
    acceptor: Acceptor,
    room: &RoomOptions,
    options: &ConversationOptions,
    console: &mut Console<'_>,
) -> Result<Ending> {
    let Console {
        input,
        output,
        shutdown,
        status,
    } = console;
    hub::Hub::new(room, options, input, *output, status, acceptor).run(shutdown)
}
