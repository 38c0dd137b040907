//! One peer of the room: its state as the hub sees it, its bounded queue,
//! and its two threads.
//!
//! - `room-recv` makes the peer's [`Connection`] ([`transport::establish`],
//!   where a handshake runs, on the peer's own thread and never on the hub),
//!   hands the transmitting half to `room-send` and the socket to the hub,
//!   then reads: it cuts whole lines ([`LineCutter`], at most [`MAX_LINE`]
//!   bytes), labels and neutralises them ([`render`]: a CRLF becomes `\n`,
//!   controls are shown), and sends each read's worth of lines to the hub
//!   as one event. A `/name` line is not relayed: it asks the hub, and waits
//!   for the label its next lines carry. After the peer's goodbye (an empty
//!   line, EOF) or a line too long it reads and discards until EOF, so that
//!   closing never turns into a reset.
//! - `room-send` is `for batch in queue { write_vectored }`, gathering what
//!   is already waiting into one write and stamping each write that makes
//!   progress, then [`Transmit::finish`]: dropping the hub's end of the
//!   queue *is* the half-close. An evicted peer's sender skips what is still
//!   queued and writes the last batch the hub queued, the notice, at a line
//!   boundary; the hub's deadline cuts the socket if even that cannot be
//!   written.

use super::notices;
use super::{Batch, Bytes, MAX_LINE, PeerEvent, PeerId, batch_len};
use crate::error::Error;
use crate::lines::{Cut, LineCutter};
use crate::render;
use crate::transport::{self, Connection, Receive, Security, Side, Transmit};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};
use std::io::{self, IoSlice};
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// One `read` of a peer's socket. Small, because there are two threads and a
/// buffer per peer and chat lines are short.
const READ_BUFFER: usize = 16 * 1024;

/// Batches (each one or more messages of whole lines) a peer's queue holds
/// before the peer counts as behind: from then on, it is too slow if its
/// sender thread makes no progress for [`STALL_GRACE`].
pub(super) const QUEUE_MESSAGES: usize = 8192;

/// Bytes a peer's queue holds before the peer counts as behind (a single
/// larger message is still taken by an empty queue). Messages are shared
/// between queues, so the bounds are on the room's memory, not each peer's:
/// what is live is the tail of one stream of messages, as long as the
/// longest queue.
pub(super) const QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// How long a peer that is behind may go without its sender thread writing
/// anything before it counts as too slow. Long enough for a reader that is
/// merely short of CPU in a burst; short enough that a peer that stopped
/// reading is gone within about a second of falling behind.
pub(super) const STALL_GRACE: Duration = Duration::from_secs(1);

/// A queue this many times the soft bound holds the room back: the hub takes
/// no more lines from anyone until it is below again (issue 17, item 7).
/// That is the bound on the room's memory, and it is what slows a flooder
/// (TCP pushes back once its receiver stops reading) instead of evicting
/// readers that keep reading.
pub(super) const HARD_FACTOR: usize = 4;

/// How much a sender thread gathers from its queue into one write (passed
/// by at most one batch).
const WRITE_BATCH: usize = 64 * 1024;

/// Stack of each peer thread: they keep their buffers on the heap, and 500
/// peers are 1000 threads.
const PEER_STACK: usize = 128 * 1024;

/// When a leaving peer's socket is shut down if it has not closed by then.
#[derive(Clone, Copy, Debug)]
pub(super) enum Deadline {
    /// At this instant (after its goodbye, eviction, Ctrl-C).
    At(Instant),
    /// After the server's goodbye: once the peer has been silent for
    /// `--linger` since this instant (a reply still arriving is not cut).
    Silence(Instant),
}

/// Where a peer stands. Only an `Active` peer has a queue the hub offers
/// lines to; every other state is on its way out, and its `deadline` (while
/// it has one) is when its socket is shut down, which wakes whichever of its
/// threads is still blocked on it.
#[derive(Debug)]
pub(super) enum State {
    /// Its connection is being made on its receiver thread (a handshake,
    /// for an encrypted transport); not in the room yet.
    Joining { queue: Sender<Batch> },
    /// In the room: gets relayed lines, and its lines are relayed.
    Active {
        queue: Sender<Batch>,
        /// Its queue was over the soft bound when last looked at: the hub
        /// then checks it again when it would have been stalled for
        /// [`STALL_GRACE`].
        behind: bool,
    },
    /// Out of the room (its goodbye, an error, eviction, a line too long):
    /// its sender sends what is queued, last words included, then finishes.
    Leaving { deadline: Option<Deadline> },
    /// Turned away, the room being full: it gets that notice and a clean
    /// close.
    Refused { deadline: Option<Deadline> },
    /// Out of the room because the room is closing: what it still sends is
    /// shown on the server's output (SPEC, "Saying goodbye"), though relayed
    /// to nobody.
    Closing { deadline: Option<Deadline> },
}

/// What the hub and a peer's sender thread share.
#[derive(Debug)]
pub(super) struct SendState {
    /// Bytes in the queue, not yet written.
    queued: AtomicUsize,
    /// The origin of `progress`.
    epoch: Instant,
    /// When the peer was last seen keeping up, in milliseconds since
    /// `epoch`: its sender thread's last `write` that took something, or the
    /// hub finding nothing queued. Only ever moves forward.
    progress: AtomicU64,
    /// Set by the hub after it queued the eviction notice and let go of the
    /// queue: the sender skips to that last batch.
    evicted: AtomicBool,
}

impl SendState {
    fn new() -> SendState {
        SendState {
            queued: AtomicUsize::new(0),
            epoch: Instant::now(),
            progress: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
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
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
    /// How the room shows it: `[ADDR]`, or `[NAME]` once it took one.
    pub(super) label: String,
    pub(super) state: State,
    /// The socket, once its connection is made (shutting it down wakes both
    /// threads).
    socket: Option<Arc<TcpStream>>,
    shared: Arc<SendState>,
    /// Answers to the peer's `/name` requests: the label its next lines
    /// carry.
    labels: Sender<Arc<[u8]>>,
    pub(super) last_heard: Instant,
    pub(super) recv: Option<JoinHandle<()>>,
    pub(super) send: Option<JoinHandle<()>>,
}

/// The channels a peer's threads report on: the receiver's events (lines
/// among them, which the hub stops taking while the room is held back), and
/// the sender's last event.
#[derive(Clone)]
pub(super) struct Reports {
    pub(super) received: Sender<(PeerId, PeerEvent)>,
    pub(super) sent: Sender<(PeerId, PeerEvent)>,
}

impl Peer {
    /// Starts a peer's two threads over `stream`. `Err` only when not even
    /// its receiver thread could start (the stream is then closed); a
    /// sender that could not start leaves a peer already on its way out.
    pub(super) fn spawn(
        id: PeerId,
        stream: TcpStream,
        addr: SocketAddr,
        security: &Security,
        reports: &Reports,
    ) -> io::Result<(Peer, Option<io::Error>)> {
        let label = format!("[{addr}]");
        let shared = Arc::new(SendState::new());
        // Bounded by `Peer::offer`, in messages and bytes, at the only
        // producer (the hub), rather than by the channel: an array channel
        // allocates all its slots up front, which for 500 idle peers would
        // be most of the room's memory. The last words to a peer (line too
        // long, room closing, the goodbye) go past the bound and must always
        // fit.
        let (queue_tx, queue_rx) = unbounded();
        let (transmitter_tx, transmitter_rx) = bounded::<Box<dyn Transmit>>(1);
        let (labels_tx, labels_rx) = bounded(1);

        let recv = {
            let events = reports.received.clone();
            let security = security.clone();
            let label: Arc<[u8]> = format!("{label} ").into_bytes().into();
            thread::Builder::new()
                .name("room-recv".into())
                .stack_size(PEER_STACK)
                .spawn(move || {
                    let last = receive(
                        id,
                        stream,
                        &security,
                        &transmitter_tx,
                        Labeller::new(id, label, labels_rx, events.clone()),
                    );
                    let _ = events.send((id, last));
                })?
        };
        let send = {
            let sent = reports.sent.clone();
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("room-send".into())
                .stack_size(PEER_STACK)
                .spawn(move || {
                    // The receiver thread hands the transmitter over, or
                    // drops it when the connection could not be made.
                    let result = match transmitter_rx.recv() {
                        Ok(mut transmitter) => send_pump(&mut *transmitter, &queue_rx, &shared),
                        Err(_) => Ok(()),
                    };
                    let _ = sent.send((id, PeerEvent::Sent(result)));
                })
        };
        let mut peer = Peer {
            addr,
            label,
            state: State::Joining { queue: queue_tx },
            socket: None,
            shared,
            labels: labels_tx,
            last_heard: Instant::now(),
            recv: Some(recv),
            send: None,
        };
        match send {
            Ok(handle) => {
                peer.send = Some(handle);
                Ok((peer, None))
            }
            Err(error) => {
                // The receiver finds nobody to hand the transmitter to, shuts
                // the socket down and reports like any other.
                peer.state = State::Leaving { deadline: None };
                Ok((peer, Some(error)))
            }
        }
    }

    /// The connection is made: from now on the hub can wake its threads.
    pub(super) fn connected(&mut self, socket: Arc<TcpStream>) {
        self.socket = Some(socket);
        if matches!(self.state, State::Leaving { deadline: None }) {
            self.cut();
        }
    }

    /// Whether it is in the room.
    pub(super) fn is_active(&self) -> bool {
        matches!(self.state, State::Active { .. })
    }

    /// Queues `batch` unless the peer is too slow to take it (false): its
    /// queue is over the soft bound and its sender has been stalled for
    /// [`STALL_GRACE`].
    pub(super) fn offer(&mut self, batch: Batch, now: Instant) -> bool {
        let State::Active { queue, behind } = &mut self.state else {
            return true;
        };
        let len = batch_len(&batch);
        let queued = self.shared.queued.load(Ordering::Relaxed);
        if queued == 0 {
            // Nothing waiting: whatever came before has been written.
            self.shared.progressed(now);
        }
        *behind = queue.len() >= QUEUE_MESSAGES || (queued > 0 && queued + len > QUEUE_BYTES);
        if *behind && self.shared.stalled_for(now) >= STALL_GRACE {
            return false;
        }
        push(&self.shared, queue, batch, len)
    }

    /// Whether its queue is at the hard bound, where the room stops taking
    /// lines until it drains.
    pub(super) fn holds_back(&self) -> bool {
        let State::Active { queue, .. } = &self.state else {
            return false;
        };
        queue.len() >= HARD_FACTOR * QUEUE_MESSAGES
            || self.shared.queued.load(Ordering::Relaxed) >= HARD_FACTOR * QUEUE_BYTES
    }

    /// When the peer, being behind, counts as too slow unless its sender
    /// makes progress first.
    pub(super) fn stall_due(&self) -> Option<Instant> {
        matches!(self.state, State::Active { behind: true, .. })
            .then(|| self.shared.stalled_since() + STALL_GRACE)
    }

    /// Whether the peer is still behind and has made no progress for
    /// [`STALL_GRACE`], as of `now` (a check without a message to offer).
    pub(super) fn stalled(&mut self, now: Instant) -> bool {
        let State::Active { queue, behind } = &mut self.state else {
            return false;
        };
        let queued = self.shared.queued.load(Ordering::Relaxed);
        *behind = queue.len() >= QUEUE_MESSAGES || queued > QUEUE_BYTES;
        *behind && self.shared.stalled_for(now) >= STALL_GRACE
    }

    /// Queues a message to this peer alone, past the bound (notices to one
    /// peer, last words). Nothing happens once it has no queue.
    pub(super) fn tell(&self, msg: &Bytes) {
        if let State::Joining { queue } | State::Active { queue, .. } = &self.state {
            push(&self.shared, queue, vec![Arc::clone(msg)], msg.len());
        }
    }

    /// Takes it out of the room (or out of joining) into `state`: its
    /// sender sends what is queued, then finishes.
    pub(super) fn quit(&mut self, state: State) {
        debug_assert!(!matches!(
            state,
            State::Joining { .. } | State::Active { .. }
        ));
        self.state = state;
    }

    /// Evicts it: `notice` becomes its sender's last batch (what is queued
    /// before it is skipped), and its socket is shut down at `deadline` if
    /// even that cannot be written by then.
    pub(super) fn evict(&mut self, notice: &Bytes, deadline: Instant) {
        self.tell(notice);
        // Letting go of the queue before raising the flag: a sender that
        // sees the flag finds the notice last in a closed queue.
        self.quit(State::Leaving {
            deadline: Some(Deadline::At(deadline)),
        });
        self.shared.evicted.store(true, Ordering::Release);
    }

    /// Its deadline, while it has one.
    pub(super) fn deadline_mut(&mut self) -> Option<&mut Option<Deadline>> {
        match &mut self.state {
            State::Leaving { deadline }
            | State::Refused { deadline }
            | State::Closing { deadline } => Some(deadline),
            State::Joining { .. } | State::Active { .. } => None,
        }
    }

    /// When its deadline falls, if it has one.
    pub(super) fn due(&self, linger: Duration) -> Option<Instant> {
        let deadline = match &self.state {
            State::Leaving { deadline }
            | State::Refused { deadline }
            | State::Closing { deadline } => (*deadline)?,
            State::Joining { .. } | State::Active { .. } => return None,
        };
        Some(match deadline {
            Deadline::At(at) => at,
            Deadline::Silence(since) => since.max(self.last_heard) + linger,
        })
    }

    /// Shuts the socket down both ways: wakes both threads. Before the
    /// connection is made there is no socket yet: the handshake's own
    /// timeout bounds that wait, and [`Peer::connected`] cuts it then.
    pub(super) fn cut(&mut self) {
        if let Some(socket) = &self.socket {
            // NotConnected only means the peer is gone already.
            let _ = socket.shutdown(Direction::Both);
        }
        if let Some(deadline) = self.deadline_mut() {
            *deadline = None;
        }
    }

    /// Answers the peer's `/name` request: the label its next lines carry.
    pub(super) fn answer_name(&self) {
        let label: Arc<[u8]> = format!("{} ", self.label).into_bytes().into();
        // Its receiver waits for this answer and nothing else; a full or
        // closed channel means it is gone.
        let _ = self.labels.try_send(label);
    }
}

fn push(shared: &SendState, queue: &Sender<Batch>, batch: Batch, len: usize) -> bool {
    shared.queued.fetch_add(len, Ordering::Relaxed);
    match queue.try_send(batch) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            shared.queued.fetch_sub(len, Ordering::Relaxed);
            false
        }
        // The sender thread has ended; its `Sent` event says why.
        Err(TrySendError::Disconnected(_)) => true,
    }
}

// ---- room-send

/// The `room-send` thread: the peer's queue → its connection, then finish.
fn send_pump(
    out: &mut dyn Transmit,
    queue: &Receiver<Batch>,
    shared: &SendState,
) -> io::Result<()> {
    let mut taken: Vec<Batch> = Vec::new();
    loop {
        if shared.evicted.load(Ordering::Acquire) {
            // Evicted: what is still queued will never be read; the notice
            // the hub queued last is all there is left to say.
            let mut last = None;
            while let Ok(batch) = queue.try_recv() {
                shared
                    .queued
                    .fetch_sub(batch_len(&batch), Ordering::Relaxed);
                last = Some(batch);
            }
            taken.extend(last);
        } else {
            // Before sleeping on an empty queue, let the hub run once: under
            // load the next batch is usually on its way, and taking it
            // without sleeping spares the hub a wake-up call, which is most
            // of the cost of a busy room.
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
            taken.push(first);
            // Gather what is already waiting into one (vectored) write.
            let mut bytes = batch_len(&taken[0]);
            while bytes < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(batch) => {
                        bytes += batch_len(&batch);
                        taken.push(batch);
                    }
                    Err(_) => break,
                }
            }
        }
        if taken.is_empty() {
            break;
        }
        let bytes: usize = taken.iter().map(|batch| batch_len(batch)).sum();
        let mut slices: Vec<IoSlice<'_>> = taken
            .iter()
            .flatten()
            .map(|msg| IoSlice::new(msg))
            .collect();
        let written = write_stamped(out, &mut slices, shared);
        drop(slices);
        taken.clear();
        shared.queued.fetch_sub(bytes, Ordering::Relaxed);
        written?;
    }
    out.finish()
}

/// `write_all` of `bufs`, in as few vectored writes as the connection takes,
/// stamping each one that takes something as progress.
fn write_stamped(
    out: &mut dyn Transmit,
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

// ---- room-recv

/// The body of `room-recv`: makes the connection, hands it over, then
/// reads. Returns its last event.
fn receive(
    id: PeerId,
    stream: TcpStream,
    security: &Security,
    transmitter: &Sender<Box<dyn Transmit>>,
    labeller: Labeller,
) -> PeerEvent {
    let Connection {
        socket,
        mut receiver,
        transmitter: half,
    } = match transport::establish(stream, Side::Server, security) {
        Ok(connection) => connection,
        Err(error) => return PeerEvent::NoConnection(error),
    };
    if transmitter.send(half).is_err() {
        // No sender thread: nobody to talk to it.
        let _ = socket.shutdown(Direction::Both);
        return PeerEvent::NoConnection(Error::Local {
            op: "could not start a room thread",
            source: io::Error::other("no sender"),
        });
    }
    if labeller
        .events
        .send((id, PeerEvent::Ready(Arc::clone(&socket))))
        .is_err()
    {
        return PeerEvent::Received(Ok(()));
    }
    PeerEvent::Received(recv_pump(&mut *receiver, labeller))
}

/// Labels a peer's lines into the buffer that is relayed, and asks the hub
/// about its `/name` lines.
struct Labeller {
    id: PeerId,
    /// `[ADDR] ` or `[NAME] `.
    label: Arc<[u8]>,
    /// The labelled lines of the current read: the buffer every queue will
    /// share, so a line is copied once, here.
    out: Vec<u8>,
    labels: Receiver<Arc<[u8]>>,
    events: Sender<(PeerId, PeerEvent)>,
    /// The hub has gone: nothing more is sent.
    gone: bool,
}

impl Labeller {
    fn new(
        id: PeerId,
        label: Arc<[u8]>,
        labels: Receiver<Arc<[u8]>>,
        events: Sender<(PeerId, PeerEvent)>,
    ) -> Self {
        Labeller {
            id,
            label,
            out: Vec::new(),
            labels,
            events,
            gone: false,
        }
    }

    /// One whole line, without its `\n`.
    fn line(&mut self, line: &[u8]) {
        if self.gone {
            return;
        }
        match notices::name_request(line) {
            None => {
                // Peers and the server's output are terminals we cannot
                // see: every line is neutralised here, as it is copied into
                // the buffer that is relayed, so no peer can forge
                // `[server]` or a notice (SPEC, "Terminal safety"). A CRLF
                // ending is relayed as `\n`.
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                self.out.extend_from_slice(&self.label);
                self.out.extend_from_slice(render::render(line).as_bytes());
                self.out.push(b'\n');
            }
            Some(name) => {
                // The lines before it carry the old label, those after it
                // the label the hub answers with.
                self.flush();
                self.send(PeerEvent::Name(name.map(str::to_owned)));
                if self.gone {
                    return;
                }
                // The hub answers every request it takes.
                match self.labels.recv() {
                    Ok(label) => self.label = label,
                    Err(_) => self.gone = true,
                }
            }
        }
    }

    /// Sends the lines labelled so far to the hub.
    fn flush(&mut self) {
        if !self.out.is_empty() {
            let lines = Arc::new(std::mem::take(&mut self.out));
            self.send(PeerEvent::Lines(lines));
        }
    }

    fn send(&mut self, event: PeerEvent) {
        if !self.gone && self.events.send((self.id, event)).is_err() {
            self.gone = true;
        }
    }
}

/// Reads the peer's lines until its goodbye or a line too long; then
/// discards until EOF.
fn recv_pump(input: &mut dyn Receive, mut labeller: Labeller) -> io::Result<()> {
    let mut buf = vec![0; READ_BUFFER];
    let mut cutter = LineCutter::new(MAX_LINE);
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
        let data = &buf[..n];
        // Room for the labels too, so the buffer is not copied as it grows.
        let lines = memchr::memchr_iter(b'\n', data).count();
        labeller.out.reserve(n + lines * (labeller.label.len() + 1));
        let (_, cut) = cutter.feed(data, |line| labeller.line(line));
        labeller.flush();
        if let Some(cut) = cut {
            relaying = false;
            labeller.send(match cut {
                Cut::Goodbye => PeerEvent::Goodbye,
                Cut::TooLong => PeerEvent::TooLong,
            });
        }
        if labeller.gone {
            return Ok(());
        }
    }
    if relaying {
        // A last line without `\n` is relayed with one, so that it cannot
        // run into the next sender's line.
        cutter.finish(|line| labeller.line(line));
        labeller.flush();
    }
    Ok(())
}
