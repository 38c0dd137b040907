//! `duplex serve --room`: many peers at once, lines relayed between them
//! (SPEC, "Room"; issue 4).
//!
//! ```text
//!  peer A ─read─▶ room-recv ─┐                    ┌─▶ queue ─▶ room-send ─write─▶ peer A
//!  peer B ─read─▶ room-recv ─┼─(id, event)─▶ hub ─┼─▶ queue ─▶ room-send ─write─▶ peer B
//!                            │   ▲   ▲   ▲        └─▶ server's output
//!                 newcomers ─┘   │   │   └ timers (linger, stalled peers)
//!                     server input   Ctrl-C
//! ```
//!
//! **What this module owns.** The hub is the thread that called [`run`]. It
//! alone owns the peer table: there is no shared list of sockets, so relaying,
//! joining, leaving and eviction are plain single-threaded code, and the
//! `select!` in `Hub::run` reads like the SPEC — one arm each for newcomers
//! ([`Acceptor`]), peer events, the server's input, Ctrl-C and a timer
//! (the linger of leaving peers, the grace of peers behind).
//!
//! **Per peer**, two named threads share the socket as `Arc<TcpStream>` (no
//! `try_clone`, which costs a descriptor each):
//! - `room-recv` reads the socket, cuts whole lines (at most [`MAX_LINE`]
//!   bytes), labels them `[ADDR] `, neutralises them ([`crate::render`]: a
//!   CRLF becomes `\n`, controls are shown) and sends each read's worth of
//!   whole lines to the hub as one event. It also finds the peer's goodbye (an empty line;
//!   EOF) and a line that is too long; after either it reads and discards
//!   until EOF, so that closing never turns into a reset.
//! - `room-send` is `for batch in queue { write_all }` (gathering what is
//!   already waiting into one vectored write, and stamping each `writev` that
//!   makes progress), then `shutdown(Write)`: dropping the hub's end of the
//!   queue *is* the half-close.
//!
//! **One wake-up per batch.** Waking a sleeping sender thread is most of the
//! cost of a busy room, so the hub takes the events of lines already waiting
//! along with the one that woke it (up to `GATHER_EVENTS` /
//! `GATHER_BYTES`), and queues one batch per peer: all of them but the
//! peer's own, in order.
//!
//! **Bounded everywhere.** The events channel is bounded: a hub that cannot
//! keep up (its output is slow: SPEC makes the server's stdout the one reader
//! that may slow the room) blocks the receivers, and TCP flow control slows
//! the senders. Each peer's queue is bounded in messages and in bytes, and the
//! hub never waits on it. Being behind is not being too slow: in a burst, a
//! peer that reads but is short of CPU falls behind for a moment. So a peer is
//! evicted when its queue is over the soft bound (`QUEUE_MESSAGES`,
//! `QUEUE_BYTES`) *and* its sender thread has written nothing for
//! `STALL_GRACE` (the sender stamps each write that makes progress), or at
//! once when its queue reaches `HARD_FACTOR` times the soft bound. Eviction
//! is `shutdown(Both)` first, which wakes the sender thread stuck in its
//! write, so one peer that stops reading never stalls the others, and memory
//! stays bounded by the hard bound. Both are checked when the hub offers the
//! peer a message, and a peer found behind is checked again by the hub's
//! timer when it would have been stalled for the grace period, so a peer
//! that stops reading is gone about `STALL_GRACE` after its last write
//! even if the room falls silent. Messages are `Arc<[u8]>`, shared by every
//! queue they are in.
//!
//! **Leaving never blocks the hub.** A peer that leaves (goodbye, EOF, error,
//! eviction, line too long, room closing) loses its queue sender and gets a
//! deadline (its linger); when the deadline passes, its socket is shut down,
//! which wakes whichever thread is still blocked on it. Each thread's last act
//! is an event to the hub, and the hub joins a thread only after that event,
//! so a join waits at most for the thread to return. A peer is removed from
//! the table (and its socket closed) once both threads are joined; [`run`]
//! returns once the room is closed and the table is empty.

use crate::conversation::Ending;
use crate::error::{Error, Result, describe};
use crate::input::{Chunk, Input};
use crate::net::{Accepted, Acceptor};
use crate::options::{ConversationOptions, RoomOptions};
use crate::render;
use crate::shutdown::Shutdown;
use crate::status::Status;
use crossbeam_channel::{
    Receiver, RecvError, Sender, TrySendError, at, bounded, never, select, unbounded,
};
use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The longest line a room relays, not counting its `\n`. A longer one is
/// never relayed, so memory stays bounded and no line is ever cut.
pub const MAX_LINE: usize = 64 * 1024;

/// One `read` of a peer's socket. Small, because there are two threads and a
/// buffer per peer and chat lines are short.
const READ_BUFFER: usize = 16 * 1024;

/// Batches (each one or more messages of whole lines) a peer's queue holds
/// before the peer counts as behind: from then on, it is too slow if its
/// sender thread makes no progress for [`STALL_GRACE`].
const QUEUE_MESSAGES: usize = 8192;

/// Bytes a peer's queue holds before the peer counts as behind (a single
/// larger message is still taken by an empty queue). Messages are shared
/// between queues, so the bounds are on the room's memory, not each peer's:
/// what is live is the tail of one stream of messages, as long as the
/// longest queue.
const QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// How long a peer that is behind may go without its sender thread writing
/// anything before it counts as too slow. Long enough for a reader that is
/// merely short of CPU in a burst; short enough that a peer that stopped
/// reading is gone within about a second of falling behind.
const STALL_GRACE: Duration = Duration::from_secs(1);

/// A queue this many times the soft bound is too slow whatever its progress:
/// the hard bound on the room's memory.
const HARD_FACTOR: usize = 4;

/// Events waiting for the hub; a full channel blocks the receiver threads.
const EVENTS: usize = 256;

/// At most this many events of lines, or this many bytes (passed by at most
/// one message), are taken from the events channel and relayed together: one
/// batch per peer, one wake-up of its sender thread.
const GATHER_EVENTS: usize = 64;
const GATHER_BYTES: usize = 256 * 1024;

/// How much a sender thread gathers from its queue into one write (passed
/// by at most one batch).
const WRITE_BATCH: usize = 64 * 1024;

/// Stack of each peer thread: they keep their buffers on the heap, and 500
/// peers are 1000 threads.
const PEER_STACK: usize = 128 * 1024;

/// Peers being turned away (room full) that may hold threads at once; beyond
/// that a newcomer's connection is just closed.
const REFUSING_MAX: usize = 64;

/// The server's own label.
const SERVER_LABEL: &[u8] = b"[server] ";

/// A message to peers: whole lines, shared by every queue it is in.
type Bytes = Arc<[u8]>;

/// What the hub queues for a peer at once: the messages of one wake-up, so
/// that its sender thread is woken once for all of them.
type Batch = Vec<Bytes>;

fn batch_len(batch: &[Bytes]) -> usize {
    batch.iter().map(|msg| msg.len()).sum()
}

/// A peer's key in the table; never reused.
type PeerId = u64;

/// What a peer's threads tell the hub. Each thread's last event is
/// [`PeerEvent::Received`] or [`PeerEvent::Sent`].
#[derive(Debug)]
enum PeerEvent {
    /// Whole lines from the peer, already labelled.
    Lines(Bytes),
    /// The peer sent an empty line; nothing after it is relayed.
    Goodbye,
    /// The peer sent a line longer than [`MAX_LINE`]; nothing from it on is
    /// relayed.
    TooLong,
    /// The receiver thread ended: EOF, or the error that ended it.
    Received(io::Result<()>),
    /// The sender thread ended: it half-closed, or the error that ended it.
    Sent(io::Result<()>),
}

/// Runs a room on `acceptor`'s newcomers until the server's goodbye (an empty line or the
/// end of `input`), a shutdown, or the output's reader going away.
///
/// Peers' lines go to `output`, labelled; `input`'s lines go to every peer,
/// labelled `[server] `. Input is only taken once the first peer has
/// joined, so what the server says before that waits for it, and an input
/// that ends before anyone came still reaches the first peer (SPEC, "Serve").
/// After that the server talks like any peer: what it says to an empty room
/// reaches nobody, and its goodbye ends the room at once. Joins, leaves and
/// evictions are reported through `status`.
pub fn run(
    acceptor: Acceptor,
    room: &RoomOptions,
    options: &ConversationOptions,
    input: &mut Input,
    output: &mut (dyn Write + Send),
    shutdown: &Shutdown,
    status: &Status,
) -> Result<Ending> {
    let (events_tx, events) = bounded(EVENTS);
    let (held, input_rx) = input.for_select();
    let hub = Hub {
        room,
        options,
        input,
        input_rx: Some(input_rx),
        held,
        server: LineCutter::default(),
        output,
        output_dirty: false,
        output_open: true,
        status,
        events_tx,
        peers: HashMap::new(),
        next_id: 0,
        active: 0,
        anyone_joined: false,
        acceptor: Some(acceptor),
        ending: None,
        failure: None,
    };
    hub.run(&events, shutdown)
}

/// What woke the hub.
enum Wake {
    Accepted(std::result::Result<Accepted, RecvError>),
    Event((PeerId, PeerEvent)),
    Input(std::result::Result<Chunk, RecvError>),
    Interrupted,
    Timer,
}

/// When a leaving peer's socket is shut down if it has not closed by then.
#[derive(Clone, Copy, Debug)]
enum Deadline {
    /// At this instant (after its goodbye, eviction, Ctrl-C).
    At(Instant),
    /// After the server's goodbye: once the peer has been silent for
    /// `--linger` since this instant (a reply still arriving is not cut).
    Silence(Instant),
}

/// What the hub and a peer's sender thread share.
#[derive(Debug)]
struct SendState {
    /// Bytes in the queue, not yet written.
    queued: AtomicUsize,
    /// The origin of `progress`.
    epoch: Instant,
    /// When the peer was last seen keeping up, in milliseconds since
    /// `epoch`: its sender thread's last `write` that took something, or the
    /// hub finding nothing queued. Only ever moves forward.
    progress: AtomicU64,
    /// Held by the sender thread while it writes, so the hub can tell that
    /// the socket is at a line boundary before it writes a last notice.
    writing: Mutex<()>,
}

impl SendState {
    fn new() -> SendState {
        SendState {
            queued: AtomicUsize::new(0),
            epoch: Instant::now(),
            progress: AtomicU64::new(0),
            writing: Mutex::new(()),
        }
    }

    /// The peer is keeping up as of `now`.
    fn progressed(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis();
        self.progress
            .fetch_max(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// When the peer was last seen keeping up.
    fn stalled_since(&self) -> Instant {
        self.epoch + Duration::from_millis(self.progress.load(Ordering::Relaxed))
    }

    /// How long the peer has gone without keeping up, as of `now`.
    fn stalled_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stalled_since())
    }
}

/// One entry of the peer table.
struct Peer {
    addr: SocketAddr,
    stream: Arc<TcpStream>,
    /// The hub's end of the peer's queue; `None` once it is leaving.
    queue: Option<Sender<Batch>>,
    shared: Arc<SendState>,
    /// In the room: gets relayed lines, and its lines are relayed.
    active: bool,
    /// Left because the room is closing: what it still sends is shown on the
    /// server's output (SPEC, "Saying goodbye"), though relayed to nobody.
    show: bool,
    deadline: Option<Deadline>,
    /// Its queue was over the soft bound when last looked at: the hub then
    /// checks it again when it would have been stalled for [`STALL_GRACE`].
    behind: bool,
    last_heard: Instant,
    recv: Option<JoinHandle<()>>,
    send: Option<JoinHandle<()>>,
}

impl Peer {
    /// Queues `msg` unless the peer is too slow to take it (false): its
    /// queue is over the soft bound and its sender has been stalled for
    /// [`STALL_GRACE`], or its queue is at the hard bound.
    fn offer(&mut self, batch: Batch, now: Instant) -> bool {
        let Some(queue) = &self.queue else {
            return true;
        };
        let len = batch_len(&batch);
        let queued = self.shared.queued.load(Ordering::Relaxed);
        if queued == 0 {
            // Nothing waiting: whatever came before has been written.
            self.shared.progressed(now);
        }
        let batches = queue.len();
        let over = |factor: usize| {
            batches >= factor * QUEUE_MESSAGES
                || (queued > 0 && queued + len > factor * QUEUE_BYTES)
        };
        self.behind = over(1);
        if self.behind && (over(HARD_FACTOR) || self.shared.stalled_for(now) >= STALL_GRACE) {
            return false;
        }
        self.push(queue, batch, len)
    }

    /// When the peer, being behind, counts as too slow unless its sender
    /// makes progress first.
    fn stall_due(&self) -> Option<Instant> {
        (self.behind && self.queue.is_some()).then(|| self.shared.stalled_since() + STALL_GRACE)
    }

    /// Whether the peer is still behind and has made no progress for
    /// [`STALL_GRACE`], as of `now` (a check without a message to offer).
    fn stalled(&mut self, now: Instant) -> bool {
        let Some(queue) = &self.queue else {
            return false;
        };
        let queued = self.shared.queued.load(Ordering::Relaxed);
        self.behind = queue.len() >= QUEUE_MESSAGES || queued > QUEUE_BYTES;
        self.behind && self.shared.stalled_for(now) >= STALL_GRACE
    }

    /// Queues the last words to a peer, past the bound.
    fn offer_last(&self, msg: &Bytes) {
        if let Some(queue) = &self.queue {
            self.push(queue, vec![Arc::clone(msg)], msg.len());
        }
    }

    fn push(&self, queue: &Sender<Batch>, batch: Batch, len: usize) -> bool {
        self.shared.queued.fetch_add(len, Ordering::Relaxed);
        match queue.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.shared.queued.fetch_sub(len, Ordering::Relaxed);
                false
            }
            // The sender thread has ended; its `Sent` event says why.
            Err(TrySendError::Disconnected(_)) => true,
        }
    }

    /// When its deadline falls, if it has one.
    fn due(&self, linger: std::time::Duration) -> Option<Instant> {
        self.deadline.map(|deadline| match deadline {
            Deadline::At(at) => at,
            Deadline::Silence(since) => since.max(self.last_heard) + linger,
        })
    }

    /// Shuts the socket down both ways: wakes both threads.
    fn cut(&mut self) {
        // NotConnected only means the peer is gone already.
        let _ = self.stream.shutdown(Direction::Both);
        self.deadline = None;
    }
}

/// The room's state, owned by the thread that called [`run`].
struct Hub<'a> {
    room: &'a RoomOptions,
    options: &'a ConversationOptions,
    input: &'a mut Input,
    /// The server's input; `None` once it has ended or said goodbye.
    input_rx: Option<Receiver<Chunk>>,
    /// Input given back by an earlier user of `input`, taken first.
    held: Option<Chunk>,
    server: LineCutter,
    output: &'a mut (dyn Write + Send),
    output_dirty: bool,
    output_open: bool,
    status: &'a Status,
    /// Cloned into every peer's threads.
    events_tx: Sender<(PeerId, PeerEvent)>,
    peers: HashMap<PeerId, Peer>,
    next_id: PeerId,
    /// Peers in the room (not leaving).
    active: usize,
    /// Somebody has joined: from now on the server's input is taken.
    anyone_joined: bool,
    /// `None` once the room is closing: newcomers are refused by the OS.
    acceptor: Option<Acceptor>,
    /// Set when the room starts closing.
    ending: Option<Ending>,
    failure: Option<Error>,
}

impl Hub<'_> {
    fn run(
        mut self,
        events: &Receiver<(PeerId, PeerEvent)>,
        shutdown: &Shutdown,
    ) -> Result<Ending> {
        let mut interrupt = shutdown.receiver().clone();
        loop {
            if self.anyone_joined
                && self.ending.is_none()
                && let Some(chunk) = self.held.take()
            {
                self.on_input(chunk);
                continue;
            }
            if self.ending.is_some() && self.peers.is_empty() {
                break;
            }
            // The receivers cloned here are gone before the wake is handled,
            // so closing the room can drop the acceptor (whose thread only
            // stops once nobody holds its receiver).
            let wake = {
                let accepting = match &self.acceptor {
                    Some(acceptor) => acceptor.receiver().clone(),
                    None => never(),
                };
                // Input waits for the first peer (see `run`).
                let input = match &self.input_rx {
                    Some(rx) if self.anyone_joined && self.ending.is_none() => rx.clone(),
                    _ => never(),
                };
                let timer = self.next_deadline().map_or_else(never, at);
                select! {
                    recv(accepting) -> accepted => Wake::Accepted(accepted),
                    recv(events) -> event => match event {
                        Ok(event) => Wake::Event(event),
                        // The hub holds a sender: cannot happen.
                        Err(_) => Wake::Timer,
                    },
                    recv(input) -> chunk => Wake::Input(chunk),
                    recv(interrupt) -> _ => Wake::Interrupted,
                    recv(timer) -> _ => Wake::Timer,
                }
            };
            match wake {
                Wake::Accepted(accepted) => self.on_accepted(accepted),
                Wake::Event((id, PeerEvent::Lines(lines))) => {
                    if let Some((id, event)) = self.on_lines(id, lines, events) {
                        self.on_event(id, event);
                    }
                }
                Wake::Event((id, event)) => self.on_event(id, event),
                Wake::Input(Ok(chunk)) => self.on_input(chunk),
                Wake::Input(Err(_)) => self.on_input_end(),
                Wake::Interrupted => {
                    interrupt = never();
                    self.close_room(Ending::Interrupted);
                }
                Wake::Timer => self.on_timer(),
            }
            if self.output_dirty && events.is_empty() {
                self.output_dirty = false;
                if let Err(error) = self.output.flush() {
                    self.output_failed(error);
                }
            }
        }
        match self.failure {
            Some(error) => Err(error),
            None => Ok(self.ending.unwrap_or(Ending::EndOfInput)),
        }
    }

    // ---- newcomers

    fn on_accepted(&mut self, accepted: std::result::Result<Accepted, RecvError>) {
        match accepted {
            Ok(Ok((stream, addr))) => self.admit(stream, addr),
            Ok(Err(error)) => tracing::warn!(%error, "accept failed"),
            Err(_) => {
                // The accept thread has stopped after an error it reported.
                self.failure = Some(Error::Accept(io::Error::other("the listener stopped")));
                self.close_room(Ending::EndOfInput);
            }
        }
    }

    fn admit(&mut self, stream: TcpStream, addr: SocketAddr) {
        if self.ending.is_some() {
            return;
        }
        let max = self.room.max_peers;
        if self.active >= max {
            let refusing = self.peers.len() - self.active;
            self.status
                .line(format_args!("* [{addr}] refused: room full ({max} peers)"));
            if refusing >= REFUSING_MAX {
                // Too many being turned away already: just close it.
                return;
            }
            let full: Bytes = format!("* room full ({max} peers)\n").into_bytes().into();
            if let Some(id) = self.spawn_peer(stream, addr, Some(&full)) {
                let linger = self.options.linger;
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.deadline = Some(Deadline::At(Instant::now() + linger));
                }
            }
            return;
        }
        if let Some(id) = self.spawn_peer(stream, addr, None) {
            self.active += 1;
            self.anyone_joined = true;
            tracing::info!(peer = %addr, "joined");
            self.notice(Some(id), &format!("* [{addr}] joined"));
        }
    }

    /// Starts a peer's two threads and puts it in the table. With `last`,
    /// the peer is turned away: it gets that one message and a clean close.
    fn spawn_peer(
        &mut self,
        stream: TcpStream,
        addr: SocketAddr,
        last: Option<&Bytes>,
    ) -> Option<PeerId> {
        let id = self.next_id;
        self.next_id += 1;
        let stream = Arc::new(stream);
        let shared = Arc::new(SendState::new());
        // Bounded by `Peer::offer`, in messages and bytes, at the only
        // producer (the hub), rather than by the channel: an array channel
        // allocates all its slots up front, which for 500 idle peers would
        // be most of the room's memory. The last words to a peer (line too
        // long, room closing, the goodbye) go past the bound and must always
        // fit.
        let (queue_tx, queue_rx) = unbounded();

        let recv = {
            let stream = Arc::clone(&stream);
            let events = self.events_tx.clone();
            let label = format!("[{addr}] ").into_bytes();
            thread::Builder::new()
                .name("room-recv".into())
                .stack_size(PEER_STACK)
                .spawn(move || {
                    let result = recv_pump(&stream, id, &label, &events);
                    let _ = events.send((id, PeerEvent::Received(result)));
                })
        };
        let recv = match recv {
            Ok(handle) => handle,
            Err(error) => {
                self.status.line(format_args!(
                    "* [{addr}] could not join: {}",
                    describe(&error)
                ));
                return None;
            }
        };
        let send = {
            let stream = Arc::clone(&stream);
            let events = self.events_tx.clone();
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("room-send".into())
                .stack_size(PEER_STACK)
                .spawn(move || {
                    let result = send_pump(&stream, &queue_rx, &shared);
                    let _ = events.send((id, PeerEvent::Sent(result)));
                })
        };
        let mut peer = Peer {
            addr,
            stream,
            queue: Some(queue_tx),
            shared,
            active: last.is_none(),
            show: false,
            deadline: None,
            behind: false,
            last_heard: Instant::now(),
            recv: Some(recv),
            send: None,
        };
        match send {
            Ok(handle) => peer.send = Some(handle),
            Err(error) => {
                self.status.line(format_args!(
                    "* [{addr}] could not join: {}",
                    describe(&error)
                ));
                // The receiver wakes, reports and is joined like any other.
                peer.queue = None;
                peer.active = false;
                peer.cut();
                self.peers.insert(id, peer);
                return None;
            }
        }
        if let Some(last) = last {
            peer.offer_last(last);
            peer.queue = None;
        }
        self.peers.insert(id, peer);
        Some(id)
    }

    // ---- peers' events

    fn on_event(&mut self, id: PeerId, event: PeerEvent) {
        let linger = self.options.linger;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let active = peer.active;
        match event {
            PeerEvent::Lines(lines) => self.relay_lines(vec![(id, lines)]),
            PeerEvent::Goodbye => {
                if active {
                    self.leave(id, "left", Some(Deadline::At(Instant::now() + linger)));
                }
            }
            PeerEvent::TooLong => {
                if active {
                    let why: Bytes =
                        format!("* line too long (over {MAX_LINE} bytes): disconnected\n")
                            .into_bytes()
                            .into();
                    peer.offer_last(&why);
                    let deadline = Deadline::At(Instant::now() + linger);
                    self.leave(id, "left: line too long", Some(deadline));
                }
            }
            PeerEvent::Received(result) => {
                if let Some(handle) = peer.recv.take() {
                    join(handle, "room-recv");
                }
                if active {
                    match result {
                        // EOF is a goodbye too: the sender still sends what
                        // is queued, then half-closes.
                        Ok(()) => {
                            self.leave(id, "left", Some(Deadline::At(Instant::now() + linger)));
                        }
                        Err(error) => {
                            peer.cut();
                            let reason = format!("left: {}", describe(&error));
                            self.leave(id, &reason, None);
                        }
                    }
                }
                self.remove_if_done(id);
            }
            PeerEvent::Sent(result) => {
                if let Some(handle) = peer.send.take() {
                    join(handle, "room-send");
                }
                if active {
                    // Only an error ends an active peer's sender.
                    peer.cut();
                    let reason = match result {
                        Ok(()) => "left".to_owned(),
                        Err(error) => format!("left: {}", describe(&error)),
                    };
                    self.leave(id, &reason, None);
                }
                self.remove_if_done(id);
            }
        }
    }

    /// Lines from peer `id`, and those already waiting behind them (up to
    /// [`GATHER_EVENTS`] / [`GATHER_BYTES`]), relayed together. Returns the
    /// first other event taken, to be handled after them (in order).
    fn on_lines(
        &mut self,
        id: PeerId,
        lines: Bytes,
        events: &Receiver<(PeerId, PeerEvent)>,
    ) -> Option<(PeerId, PeerEvent)> {
        let mut bytes = lines.len();
        let mut group = vec![(id, lines)];
        let mut next = None;
        while group.len() < GATHER_EVENTS && bytes < GATHER_BYTES {
            match events.try_recv() {
                Ok((id, PeerEvent::Lines(lines))) => {
                    bytes += lines.len();
                    group.push((id, lines));
                }
                Ok(other) => {
                    next = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        self.relay_lines(group);
        next
    }

    /// Peers' lines, in the order they came: shown on the server's output,
    /// and relayed to every peer in the room but their sender, one batch
    /// each.
    fn relay_lines(&mut self, group: Vec<(PeerId, Bytes)>) {
        let now = Instant::now();
        let mut relayed = Vec::with_capacity(group.len());
        for (id, lines) in group {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            peer.last_heard = now;
            let (active, show) = (peer.active, peer.show);
            if active || show {
                self.show(&lines);
            }
            if active {
                relayed.push((id, lines));
            }
        }
        if relayed.is_empty() {
            return;
        }
        let mut slow = Vec::new();
        for (&id, peer) in &mut self.peers {
            if !peer.active {
                continue;
            }
            let batch: Batch = relayed
                .iter()
                .filter(|(from, _)| *from != id)
                .map(|(_, lines)| Arc::clone(lines))
                .collect();
            if !batch.is_empty() && !peer.offer(batch, now) {
                slow.push(id);
            }
        }
        self.evict_slow(slow);
    }

    /// Takes a peer out of the room: it gets nothing more (its sender sends
    /// what is queued, then half-closes), and the others are told.
    fn leave(&mut self, id: PeerId, reason: &str, deadline: Option<Deadline>) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.active {
            return;
        }
        peer.active = false;
        peer.queue = None;
        if deadline.is_some() {
            peer.deadline = deadline;
        }
        self.active -= 1;
        let addr = peer.addr;
        tracing::info!(peer = %addr, reason, "left");
        self.notice(Some(id), &format!("* [{addr}] {reason}"));
    }

    /// Evicts a peer too slow to keep up: shuts its socket down first, which
    /// wakes its sender thread from its write.
    fn evict(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.active {
            return;
        }
        // Best effort, and only at a line boundary: when its sender thread
        // is not in the middle of a write, one non-blocking write of why.
        // Holding the lock until the shutdown keeps the sender from writing
        // after it.
        let shared = Arc::clone(&peer.shared);
        let idle = shared.writing.try_lock();
        if idle.is_ok() && peer.stream.set_nonblocking(true).is_ok() {
            let _ = (&*peer.stream).write(b"* evicted: too slow\n");
        }
        peer.cut();
        drop(idle);
        self.leave(id, "evicted: too slow", None);
    }

    fn remove_if_done(&mut self, id: PeerId) {
        if self
            .peers
            .get(&id)
            .is_some_and(|peer| peer.recv.is_none() && peer.send.is_none())
        {
            // Both threads are joined: this drops the last handle on the
            // socket, which closes it.
            self.peers.remove(&id);
        }
    }

    // ---- relaying

    /// Queues `msg` for every peer in the room but `from`; evicts those too
    /// slow to take it.
    fn relay(&mut self, from: Option<PeerId>, msg: &Bytes) {
        let now = Instant::now();
        let mut slow = Vec::new();
        for (&id, peer) in &mut self.peers {
            if peer.active && Some(id) != from && !peer.offer(vec![Arc::clone(msg)], now) {
                slow.push(id);
            }
        }
        self.evict_slow(slow);
    }

    fn evict_slow(&mut self, slow: Vec<PeerId>) {
        for id in slow {
            let addr = self.peers.get(&id).map(|peer| peer.addr);
            tracing::info!(peer = ?addr, "evicting a peer too slow to keep up");
            self.evict(id);
        }
    }

    /// A notice: a status line here, and a `* ` line to every peer in the
    /// room but `about`.
    fn notice(&mut self, about: Option<PeerId>, text: &str) {
        self.status.line(text);
        let msg: Bytes = format!("{text}\n").into_bytes().into();
        self.relay(about, &msg);
    }

    /// Writes peers' lines to the server's output. A slow output slows the
    /// room: this is the backpressure SPEC asks for.
    fn show(&mut self, bytes: &[u8]) {
        if !self.output_open {
            return;
        }
        match self.output.write_all(bytes) {
            Ok(()) => self.output_dirty = true,
            Err(error) => self.output_failed(error),
        }
    }

    fn output_failed(&mut self, error: io::Error) {
        self.output_open = false;
        if error.kind() == io::ErrorKind::BrokenPipe {
            self.close_room(Ending::OutputClosed);
        } else {
            self.failure.get_or_insert(Error::Local {
                op: "could not write output",
                source: error,
            });
            self.close_room(Ending::EndOfInput);
        }
    }

    // ---- the server's input

    fn on_input(&mut self, chunk: Chunk) {
        let mut out = Vec::new();
        let mut goodbye = false;
        let mut too_long = 0;
        {
            let data = chunk.bytes();
            let mut pos = 0;
            while pos < data.len() {
                let (used, cut) = self.server.feed(&data[pos..], SERVER_LABEL, &mut out);
                pos += used;
                match cut {
                    None => break,
                    Some(Cut::TooLong) => too_long += 1,
                    Some(Cut::Goodbye) => {
                        goodbye = true;
                        break;
                    }
                }
            }
        }
        self.input.recycle(chunk);
        for _ in 0..too_long {
            self.status.line(format_args!(
                "a line of input over {MAX_LINE} bytes was not sent"
            ));
        }
        if !out.is_empty() {
            self.relay(None, &out.into());
        }
        if goodbye {
            // Input after the goodbye is not sent (SPEC, "Chat mode").
            self.input_rx = None;
            self.close_room(Ending::Goodbye);
        }
    }

    fn on_input_end(&mut self) {
        self.input_rx = None;
        let mut out = Vec::new();
        self.server.finish(SERVER_LABEL, &mut out);
        if !out.is_empty() {
            self.relay(None, &out.into());
        }
        self.close_room(Ending::EndOfInput);
    }

    // ---- endings

    /// Ends the room: every peer gets what is queued for it, a notice, the
    /// goodbye (an empty line) and a clean close.
    fn close_room(&mut self, ending: Ending) {
        let now = Instant::now();
        let linger = self.options.linger;
        if self.ending.is_some() {
            if ending == Ending::Interrupted {
                // Ctrl-C while closing: wait no longer than --linger from now.
                self.ending = Some(ending);
                for peer in self.peers.values_mut() {
                    if let Some(due) = peer.due(linger) {
                        peer.deadline = Some(Deadline::At(due.min(now + linger)));
                    }
                }
            }
            return;
        }
        self.ending = Some(ending);
        // Stop accepting; connections arriving from now on are refused by
        // the OS.
        self.acceptor = None;
        tracing::info!(%ending, "room closing");
        if self.active > 0 {
            self.status.line("* room closing");
        }
        let last: Bytes = Arc::from(&b"* room closing\n\n"[..]);
        let deadline = match ending {
            Ending::Goodbye | Ending::EndOfInput => Deadline::Silence(now),
            _ => Deadline::At(now + linger),
        };
        for peer in self.peers.values_mut() {
            if peer.active {
                peer.offer_last(&last);
                peer.queue = None;
                peer.active = false;
                peer.show = true;
                peer.deadline = Some(deadline);
            }
        }
        self.active = 0;
    }

    fn next_deadline(&self) -> Option<Instant> {
        let linger = self.options.linger;
        self.peers
            .values()
            .flat_map(|peer| [peer.due(linger), peer.stall_due()])
            .flatten()
            .min()
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        let linger = self.options.linger;
        let mut slow = Vec::new();
        for (&id, peer) in &mut self.peers {
            if peer.due(linger).is_some_and(|due| due <= now) {
                tracing::debug!(peer = %peer.addr, "linger expired");
                peer.cut();
            }
            if peer.active && peer.stall_due().is_some_and(|due| due <= now) && peer.stalled(now) {
                slow.push(id);
            }
        }
        self.evict_slow(slow);
    }
}

/// Joins a peer thread that has sent its last event (so this only waits for
/// it to return).
fn join(handle: JoinHandle<()>, name: &str) {
    if handle.join().is_err() {
        tracing::error!(thread = name, "a room thread panicked");
    }
}

// ---- the peer threads

/// The `room-send` thread: the peer's queue → its socket, then half-close.
fn send_pump(stream: &TcpStream, queue: &Receiver<Batch>, shared: &SendState) -> io::Result<()> {
    let mut out = stream;
    let mut taken: Vec<Batch> = Vec::new();
    loop {
        // Before sleeping on an empty queue, let the hub run once: under
        // load the next batch is usually on its way, and taking it without
        // sleeping spares the hub a wake-up call, which is most of the cost
        // of a busy room.
        let first = match queue.try_recv() {
            Ok(batch) => batch,
            Err(_) => {
                thread::yield_now();
                match queue.recv() {
                    Ok(batch) => batch,
                    Err(_) => break,
                }
            }
        };
        let writing = match shared.writing.lock() {
            Ok(guard) => guard,
            // Nothing is guarded but the socket's line boundary.
            Err(poisoned) => poisoned.into_inner(),
        };
        // Gather what is already waiting into one (vectored) write.
        let mut bytes = batch_len(&first);
        taken.push(first);
        while bytes < WRITE_BATCH {
            match queue.try_recv() {
                Ok(batch) => {
                    bytes += batch_len(&batch);
                    taken.push(batch);
                }
                Err(_) => break,
            }
        }
        let mut slices: Vec<IoSlice<'_>> = taken
            .iter()
            .flatten()
            .map(|msg| IoSlice::new(msg))
            .collect();
        let written = write_stamped(&mut out, &mut slices, shared);
        drop(slices);
        drop(writing);
        taken.clear();
        shared.queued.fetch_sub(bytes, Ordering::Relaxed);
        written?;
    }
    match stream.shutdown(Direction::Write) {
        // The peer is gone already; its receiver reports how.
        Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

/// `write_all` of `bufs`, in as few `writev`s as the socket takes, stamping
/// each one that takes something as progress.
fn write_stamped(
    out: &mut &TcpStream,
    mut bufs: &mut [IoSlice<'_>],
    shared: &SendState,
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match out.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                // A partial write ends anywhere, mid-slice included.
                IoSlice::advance_slices(&mut bufs, n);
                shared.progressed(Instant::now());
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The `room-recv` thread: the peer's socket → whole labelled lines → the
/// hub, until its goodbye or a line too long; then discard until EOF.
fn recv_pump(
    stream: &TcpStream,
    id: PeerId,
    label: &[u8],
    events: &Sender<(PeerId, PeerEvent)>,
) -> io::Result<()> {
    let mut input = stream;
    let mut buf = vec![0; READ_BUFFER];
    let mut cutter = LineCutter::default();
    let mut relaying = true;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if !relaying {
            continue;
        }
        let mut out = Vec::new();
        let (_, cut) = cutter.feed(&buf[..n], label, &mut out);
        if !out.is_empty() && events.send((id, PeerEvent::Lines(out.into()))).is_err() {
            return Ok(());
        }
        if let Some(cut) = cut {
            relaying = false;
            cutter = LineCutter::default();
            let event = match cut {
                Cut::Goodbye => PeerEvent::Goodbye,
                Cut::TooLong => PeerEvent::TooLong,
            };
            if events.send((id, event)).is_err() {
                return Ok(());
            }
        }
    }
    let mut out = Vec::new();
    if relaying && cutter.finish(label, &mut out) {
        let _ = events.send((id, PeerEvent::Lines(out.into())));
    }
    Ok(())
}

// ---- cutting lines

/// Why [`LineCutter::feed`] stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// An empty line (`\n` or `\r\n`): the goodbye.
    Goodbye,
    /// A line longer than [`MAX_LINE`]; it is dropped whole.
    TooLong,
}

/// Cuts a byte stream that arrives in reads into whole, labelled lines,
/// neutralised by [`render`], holding at most [`MAX_LINE`] bytes of a line
/// begun in an earlier read.
#[derive(Debug, Default)]
struct LineCutter {
    /// The start of a line whose `\n` has not arrived yet.
    partial: Vec<u8>,
    /// Dropping the rest of a line that was too long.
    skipping: bool,
}

impl LineCutter {
    /// Appends every whole line of `data`, each after `label`, to `out`.
    /// Stops after a goodbye or a line too long; returns how much of `data`
    /// it used and why it stopped. A line too long whose end has not arrived
    /// is skipped until its `\n` by the next calls.
    fn feed(&mut self, data: &[u8], label: &[u8], out: &mut Vec<u8>) -> (usize, Option<Cut>) {
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', data) {
            let piece = &data[start..=newline];
            start = newline + 1;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.partial.len() + piece.len() - 1 > MAX_LINE {
                self.reset();
                return (start, Some(Cut::TooLong));
            }
            let empty = match self.partial.as_slice() {
                [] => piece == b"\n" || piece == b"\r\n",
                b"\r" => piece == b"\n",
                _ => false,
            };
            if empty {
                self.reset();
                return (start, Some(Cut::Goodbye));
            }
            let line = out.len();
            out.extend_from_slice(label);
            out.extend_from_slice(&self.partial);
            out.extend_from_slice(piece);
            // Peers and the server's output are terminals we cannot see:
            // every line, a peer's or the server's, is neutralised as it is
            // labelled, before it goes anywhere, so no peer can forge
            // `[server]` or a notice (SPEC, "Terminal safety").
            render::render_from(out, line);
            self.partial.clear();
        }
        let rest = &data[start..];
        if !self.skipping && !rest.is_empty() {
            if self.partial.len() + rest.len() > MAX_LINE {
                self.reset();
                self.skipping = true;
                return (data.len(), Some(Cut::TooLong));
            }
            self.partial.extend_from_slice(rest);
        }
        if self.partial.is_empty() && self.partial.capacity() > READ_BUFFER {
            // A long line has passed: give its memory back.
            self.partial = Vec::new();
        }
        (data.len(), None)
    }

    /// At the end of the stream: a last line without `\n` is relayed with
    /// one, so that it cannot run into the next sender's line. Returns
    /// whether there was one.
    fn finish(&mut self, label: &[u8], out: &mut Vec<u8>) -> bool {
        if self.skipping || self.partial.is_empty() {
            return false;
        }
        let line = out.len();
        out.extend_from_slice(label);
        out.extend_from_slice(&self.partial);
        out.push(b'\n');
        render::render_from(out, line);
        self.reset();
        true
    }

    fn reset(&mut self) {
        self.partial = Vec::new();
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_all(reads: &[&[u8]]) -> (Vec<u8>, Option<Cut>) {
        let mut cutter = LineCutter::default();
        let mut out = Vec::new();
        for data in reads {
            let (_, cut) = cutter.feed(data, b"L ", &mut out);
            if cut.is_some() {
                return (out, cut);
            }
        }
        cutter.finish(b"L ", &mut out);
        (out, None)
    }

    #[test]
    fn lines_are_labelled_whole_across_reads() {
        let (out, cut) = cut_all(&[b"he", b"llo\nwor", b"ld\n", b"tail"]);
        assert_eq!(out, b"L hello\nL world\nL tail\n");
        assert_eq!(cut, None);
    }

    #[test]
    fn an_empty_line_is_the_goodbye_even_split() {
        assert_eq!(
            cut_all(&[b"a\n\nb\n"]),
            (b"L a\n".to_vec(), Some(Cut::Goodbye))
        );
        assert_eq!(
            cut_all(&[b"a\n\r", b"\nb\n"]),
            (b"L a\n".to_vec(), Some(Cut::Goodbye))
        );
        assert_eq!(cut_all(&[b"\r", b"x\n"]), (b"L ^Mx\n".to_vec(), None));
    }

    #[test]
    fn a_line_too_long_is_never_cut() {
        let long = vec![b'x'; MAX_LINE + 1];
        let (out, cut) = cut_all(&[b"ok\n", &long[..10], &long[10..], b"\nafter\n"]);
        assert_eq!((out, cut), (b"L ok\n".to_vec(), Some(Cut::TooLong)));
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        let (out, cut) = cut_all(&[&exact]);
        assert_eq!(cut, None);
        assert_eq!(out.len(), MAX_LINE + 3);
    }

    #[test]
    fn the_server_skips_a_line_too_long_and_goes_on() {
        let mut cutter = LineCutter::default();
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_LINE + 5];
        assert_eq!(cutter.feed(b"a\n", b"", &mut out), (2, None));
        assert_eq!(
            cutter.feed(&long, b"", &mut out),
            (long.len(), Some(Cut::TooLong))
        );
        assert_eq!(cutter.feed(b"xx\nb\n", b"", &mut out), (5, None));
        assert_eq!(out, b"a\nb\n");
    }
}
