//! One conversation with one peer: a sender thread, a receiver thread, and
//! the coordinator that decides when it ends.
//!
//! ```text
//!  Input ──chunks──▶ peer-send ──write──▶ socket ──read──▶ peer-recv ──▶ output
//!                        │                                     │
//!                        └────────── events ──▶ coordinator ◀──┘
//!                                       ▲   ▲   ▲
//!                                   Ctrl-C  linger/idle timers
//! ```
//!
//! Each direction is a pump on its own thread, so typing never waits for the
//! peer and incoming bytes are shown as they arrive. The sender takes chunks
//! from the process's [`Input`] (chat mode: up to and including the goodbye
//! line), writes them, and half-closes the socket when it is done; the
//! receiver writes what arrives to the output (chat mode: up to the peer's
//! goodbye line, then reads and discards until the peer's EOF). The pumps tell
//! the coordinator what happened; the coordinator `select!`s over those
//! events, Ctrl-C and the timers, stops the sender when the peer has said
//! goodbye, and, when a wait runs out, shuts the socket down, which wakes any
//! pump still blocked on it, and drops the output's [`Release`], which wakes
//! a receiver waiting for the output to take bytes. Both pumps are scoped
//! threads, joined before [`run`] returns.
//!
//! The waits, all from SPEC "Chat mode":
//! - after our goodbye (and half-close), the peer may stay silent for
//!   `--linger`; time the receiver spends waiting for the output is not the
//!   peer's silence;
//! - after the peer's goodbye, we still send all that had been handed to
//!   this conversation, however slowly the peer reads; a peer that takes
//!   nothing at all for `--linger` ends it as an error; once we have
//!   half-closed, `--linger` bounds the discarding until the peer's EOF;
//! - Ctrl-C bounds everything by `--linger`; a closed output by at most
//!   `OUTPUT_CLOSED_WAIT`; an idle timeout closes at once.

use crate::console::Console;
use crate::ending::Ending;
use crate::error::{Error, Result};
use crate::input::{Input, Next};
use crate::lines::ShowFilter;
use crate::options::{ConversationOptions, Mode};
use crate::output::{Output, Release};
use crate::progress::Traffic;
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::transport::{Connection, Receive, Transmit};
use crossbeam_channel::{Receiver, Sender, at, bounded, never, select};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
mod zero_copy;

/// Size of the receiver's read buffer.
const RECV_BUFFER: usize = 1024 * 1024;

/// In chat mode the sender writes at most this much per call, so that a
/// slow peer's progress is seen between calls (the rule "a peer that takes
/// nothing for `--linger`" needs it); raw mode writes whole chunks.
const SEND_PIECE: usize = 64 * 1024;

/// Once the output's reader has gone, how long we still wait for the peer's
/// EOF (at most `--linger`): long enough for a peer that is finishing to
/// close cleanly, short enough that `duplex … | head -1` exits within a
/// second while the peer keeps sending (SPEC, "Serve" and "Endings").
pub(crate) const OUTPUT_CLOSED_WAIT: Duration = Duration::from_millis(500);

/// How a conversation ended, with what the status lines report besides the
/// reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) ending: Ending,
    /// Bytes the peer sent after its goodbye line: discarded, not shown.
    pub(crate) unshown: u64,
}

/// Holds one conversation with the peer on `stream` until it ends.
///
/// Lines to send come from the console's input (what is not sent stays
/// there for the next conversation); what the peer sends goes to its
/// output; its shutdown ends the conversation early. This is the plain
/// conversation: `options.security` is not used here (the `--secret` and
/// TLS handshakes are made by [`serve`](crate::serve()) and
/// [`connect`](crate::connect())), and no status lines are written. Returns
/// how the conversation ended, or the error that broke it.
///
/// The socket is made blocking first (the engine's ways out are for a
/// blocking socket: a shutdown wakes its reads and writes).
///
/// The crate docs' [quick start](crate#quick-start) and
/// `examples/loopback.rs` run one on each side; here the peer is a plain
/// socket:
///
/// ```
/// use duplex::{Console, ConversationOptions, Ending, Input, conversation};
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use std::time::Duration;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let mut peer = TcpStream::connect(addr)?;
/// let (stream, _) = listener.accept()?;
/// peer.set_read_timeout(Some(Duration::from_secs(10)))?;
/// peer.write_all(b"hello\n\nnot shown\n")?; // a line, goodbye, and more
///
/// let (mut input, mut shown) = (Input::silent(), Vec::new());
/// let mut console = Console::new(&mut input, &mut shown);
/// let options = ConversationOptions::default();
/// // The peer's goodbye: we half-close, then wait for its EOF.
/// let waiter = std::thread::spawn(move || -> std::io::Result<()> {
///     peer.read_to_end(&mut Vec::new())?;
///     Ok(()) // and `peer` is closed here
/// });
/// let ending = conversation::run(stream, addr, &options, &mut console)?;
/// waiter.join().map_err(|_| "peer panicked")??;
/// assert_eq!(ending, Ending::PeerGoodbye);
/// assert_eq!(shown, b"hello\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run(
    stream: TcpStream,
    peer: SocketAddr,
    options: &ConversationOptions,
    console: &mut Console<'_>,
) -> Result<Ending> {
    stream
        .set_nonblocking(false)
        .map_err(|source| Error::Conversation {
            peer,
            op: "setting up the socket",
            source,
        })?;
    hold(Connection::plain(stream), peer, options, console).map(|o| o.ending)
}

/// [`run`] on the [`Connection`] a handshake made (see
/// [`crate::transport`]), with the [`Outcome`] for the status lines.
pub(crate) fn hold(
    connection: Connection,
    peer: SocketAddr,
    options: &ConversationOptions,
    console: &mut Console<'_>,
) -> Result<Outcome> {
    let input: &mut Input = &mut *console.input;
    let output: &mut dyn Output = &mut *console.output;
    let shutdown = &console.shutdown;
    let Connection {
        socket,
        mut receiver,
        mut transmitter,
    } = connection;
    // Sockets from `serve` and `connect` are tuned already (keepalive
    // included); this keeps Nagle off for streams a library user hands us.
    crate::net::tune(&socket, None);
    // With no input (`recv_only`) there is nothing to send, or to watch.
    if peer_ends_it(options) && !options.recv_only {
        watch_progress(&socket);
    }
    let span = tracing::info_span!("conversation", %peer);
    let _entered = span.enter();
    let clock = Arc::new(Clock::new());
    // Whoever shows progress reads this conversation's counters; the guard
    // says it ended on every way out, after the scope has joined the pumps.
    let _watching = options
        .watch
        .as_ref()
        .map(|watch| watch.begin(Traffic::new(Arc::clone(&clock))));
    let (events_tx, events) = bounded(8);
    let spawn_error = |source| Error::Local {
        op: "could not start a conversation thread",
        source,
    };
    input.begin();

    thread::scope(|scope| {
        // Whatever way this closure is left, shutting the socket down first
        // wakes a pump blocked on it, and dropping the release wakes the
        // receiver if it waits for the output: the scope's joins cannot hang.
        let _wake = ShutdownOnDrop(&socket);
        let _release: Option<Release> = output.release();
        // Dropping `stop_tx` stops the sender; it lives in this closure, so
        // every way out of it (an error included) also releases the sender.
        let (stop_tx, stop) = bounded::<()>(0);
        let mode = options.mode;
        let (transmitter, receiver, clock) = (&mut *transmitter, &mut *receiver, &*clock);

        let sent = events_tx.clone();
        let send_span = span.clone();
        thread::Builder::new()
            .name("peer-send".into())
            .spawn_scoped(scope, move || {
                let _entered = send_span.enter();
                let result = send_pump(transmitter, input, &stop, mode, clock, &sent);
                // The reader thread may read ahead again, for the next peer.
                input.give_back();
                let _ = sent.send(Event::Sent(result));
            })
            .map_err(spawn_error)?;
        let received = events_tx;
        let recv_span = span.clone();
        thread::Builder::new()
            .name("peer-recv".into())
            .spawn_scoped(scope, move || {
                let _entered = recv_span.enter();
                let result = recv_pump(receiver, output, mode, clock, &received);
                let _ = received.send(Event::Received(result));
            })
            .map_err(spawn_error)?;

        let coordinator = Coordinator {
            options,
            peer,
            clock,
            socket: &socket,
            stop: Some(stop_tx),
            sending: true,
            receiving: true,
            heard_goodbye: false,
            peer_done_at: None,
            stalled: false,
            reason: None,
            closing: None,
            hard_stop: None,
            failure: None,
        };
        let ending = coordinator.run(&events, shutdown)?;
        Ok(Outcome {
            ending,
            unshown: clock.unshown.load(Ordering::Relaxed),
        })
    })
}

/// The status lines at a conversation's end: why it ended, and how many
/// bytes the peer sent after its goodbye line, which were not shown.
pub(crate) fn report_ended(status: &Status, peer: SocketAddr, outcome: Outcome) {
    status.ended(peer, outcome.ending);
    if outcome.unshown > 0 {
        status.line(format_args!(
            "{} bytes the peer sent after its goodbye (an empty line) were not shown \u{2014} use --raw to carry blank lines",
            outcome.unshown
        ));
    }
}

/// When no conversation will take the rest of the input (SPEC, "Chat
/// mode"): says on stderr how many bytes were read but not sent, and why
/// (how the last conversation ended), and takes them out of the input.
pub(crate) fn report_unsent(input: &mut Input, status: &Status, ending: Ending) {
    let at_goodbye = input.stopped_at_goodbye();
    let unsent = input.discard_pending();
    if unsent == 0 {
        return;
    }
    if at_goodbye {
        status.line(format_args!(
            "stopped at an empty line; {unsent} bytes of input not sent \u{2014} use --raw to send blank lines"
        ));
    } else {
        let why = match ending {
            Ending::PeerGoodbye | Ending::PeerClosed => "the peer said goodbye first",
            Ending::Interrupted => "interrupted",
            Ending::IdleTimeout => "idle timeout",
            Ending::OutputClosed => "the output closed",
            Ending::Goodbye | Ending::EndOfInput | Ending::LingerExpired => {
                "the conversation ended"
            }
        };
        status.line(format_args!("{why}; {unsent} bytes of input not sent"));
    }
}

/// Shuts the socket down both ways when dropped.
struct ShutdownOnDrop<'a>(&'a std::net::TcpStream);

impl Drop for ShutdownOnDrop<'_> {
    fn drop(&mut self) {
        // NotConnected just means the peer is already gone.
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// `now + wait`, for waits up to any `Duration` a library caller may give
/// (the command line caps SECS at a year; `Instant + Duration` panics on
/// overflow).
fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(366 * 24 * 60 * 60)))
        .unwrap_or(now)
}

/// When traffic last passed, how much, and what the receiver is doing,
/// readable from every thread of a conversation (and, through
/// [`Traffic`], by whoever shows progress).
pub(crate) struct Clock {
    pub(crate) start: Instant,
    /// The receiver was last ready to read: the peer's last bytes, or the
    /// end of a wait for the output, whichever is later.
    last_ready: AtomicU64,
    /// The sender last got bytes into the socket.
    last_sent: AtomicU64,
    last_any: AtomicU64,
    /// The receiver is waiting for the output to take bytes.
    showing: AtomicBool,
    /// Bytes the peer sent after its goodbye line.
    unshown: AtomicU64,
    /// Bytes the sender got into the transport.
    pub(crate) sent_bytes: AtomicU64,
    /// Bytes the receiver took from the transport.
    pub(crate) received_bytes: AtomicU64,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            last_ready: AtomicU64::new(0),
            last_sent: AtomicU64::new(0),
            last_any: AtomicU64::new(0),
            showing: AtomicBool::new(false),
            unshown: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn sent(&self, bytes: usize) {
        self.sent_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let now = self.now();
        self.last_sent.store(now, Ordering::Relaxed);
        self.last_any.store(now, Ordering::Relaxed);
    }

    fn received(&self, bytes: usize) {
        self.received_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        let now = self.now();
        self.last_ready.store(now, Ordering::Relaxed);
        self.last_any.store(now, Ordering::Relaxed);
    }

    fn showing(&self) {
        self.showing.store(true, Ordering::Relaxed);
    }

    fn shown(&self) {
        self.last_ready.store(self.now(), Ordering::Relaxed);
        self.showing.store(false, Ordering::Relaxed);
    }

    fn instant(&self, nanos: &AtomicU64) -> Instant {
        self.start + Duration::from_nanos(nanos.load(Ordering::Relaxed))
    }
}

/// How the sending side finished (it has half-closed the socket).
#[derive(Debug)]
enum SendEnd {
    /// Sent an empty line.
    Goodbye,
    /// The input ended.
    EndOfInput,
    /// The coordinator stopped it.
    Stopped,
}

/// Why the sending side failed, and how much it had not sent.
#[derive(Debug)]
struct SendFailure {
    error: io::Error,
    /// Bytes handed to this conversation and not sent (given back to the
    /// input, for the next conversation).
    unsent: usize,
}

impl From<io::Error> for SendFailure {
    fn from(error: io::Error) -> Self {
        SendFailure { error, unsent: 0 }
    }
}

/// Why the receiving side failed.
#[derive(Debug)]
enum RecvFailure {
    Socket(io::Error),
    Output(io::Error),
}

/// What the pumps tell the coordinator.
#[derive(Debug)]
enum Event {
    /// Our goodbye (empty line or end of input) is decided; the empty line,
    /// if that is the goodbye, is about to be written.
    SaidGoodbye(Ending),
    Sent(std::result::Result<SendEnd, SendFailure>),
    /// The peer's goodbye line arrived (the receiver now discards).
    PeerGoodbye,
    /// Whoever read our output stopped reading (the receiver now discards).
    OutputClosed,
    /// The receiver is done: the peer's EOF, or a failure.
    Received(std::result::Result<(), RecvFailure>),
}

/// Writes all of `bytes`, in [`SEND_PIECE`]s in chat mode, telling the clock
/// after each. On failure, says how much had gone.
fn transmit(
    stream: &mut dyn Transmit,
    bytes: &[u8],
    mode: Mode,
    clock: &Clock,
) -> std::result::Result<(), (io::Error, usize)> {
    let piece = match mode {
        Mode::Chat => SEND_PIECE,
        Mode::Raw => bytes.len(),
    };
    let mut done = 0;
    while done < bytes.len() {
        let end = bytes.len().min(done + piece);
        match stream.write(&bytes[done..end]) {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), done)),
            Ok(n) => {
                done += n;
                clock.sent(n);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err((error, done)),
        }
    }
    Ok(())
}

/// The `peer-send` thread: input → socket, then half-close (the
/// transport's finish).
fn send_pump(
    stream: &mut dyn Transmit,
    input: &mut Input,
    stop: &Receiver<()>,
    mode: Mode,
    clock: &Clock,
    events: &Sender<Event>,
) -> std::result::Result<SendEnd, SendFailure> {
    // After a stop, what had already been read then is still sent: input
    // piped before the peer connected reaches it even if the peer says
    // goodbye at once.
    let mut stopped_with: Option<usize> = None;
    // Raw bytes over plain TCP may skip user space: once what was read
    // before is sent, the input lends us stdin itself (see `zero_copy`).
    #[cfg(target_os = "linux")]
    let mut direct = mode == Mode::Raw && input.lendable() && stream.plain_socket().is_some();
    let end = loop {
        #[cfg(target_os = "linux")]
        if direct
            && stopped_with.is_none()
            && let Some((file, kind)) = input.lend()
            && let Some(socket) = stream.plain_socket()
        {
            match zero_copy::send(&file, kind, socket, stop, clock) {
                Ok(zero_copy::SendEnd::EndOfInput) => {
                    input.lent_ended();
                    break SendEnd::EndOfInput;
                }
                // Nothing was read ahead meanwhile: nothing else to send.
                Ok(zero_copy::SendEnd::Stopped) => break SendEnd::Stopped,
                Ok(zero_copy::SendEnd::Unsupported) => {
                    direct = false;
                    input.give_back();
                    continue;
                }
                Err(error) => return Err(SendFailure { error, unsent: 0 }),
            }
        }
        let next = match &mut stopped_with {
            #[cfg(target_os = "linux")]
            None if direct => match input.next_or_parked(stop) {
                Some(next) => next,
                // Stdin can be lent now: ask again.
                None => continue,
            },
            None => input.next(stop),
            Some(budget) => match input.next_ready(budget) {
                Next::End => break SendEnd::Stopped,
                next => next,
            },
        };
        match next {
            Next::Chunk(mut chunk) => {
                let goodbye = match mode {
                    Mode::Chat => input.scanner.scan(chunk.bytes()).map(|g| g.end),
                    Mode::Raw => None,
                };
                if let Some(end) = goodbye {
                    // What follows the goodbye is not for this peer.
                    input.put_back_tail(&mut chunk, end);
                    // Say why before the empty line goes out: a peer that
                    // closes the moment it reads it must not make its EOF
                    // the reason the conversation ended.
                    let _ = events.send(Event::SaidGoodbye(Ending::Goodbye));
                }
                if let Err((error, done)) = transmit(stream, chunk.bytes(), mode, clock) {
                    // What did not go stays in the input, and is counted.
                    let mut unsent = chunk.bytes().len() - done;
                    input.put_back_tail(&mut chunk, done);
                    if let Some(budget) = stopped_with {
                        unsent += input.keep_ready(budget);
                    }
                    return Err(SendFailure { error, unsent });
                }
                input.recycle(chunk);
                if goodbye.is_some() {
                    input.mark_goodbye();
                    break SendEnd::Goodbye;
                }
            }
            Next::End => break SendEnd::EndOfInput,
            Next::Stopped => stopped_with = Some(input.ready()),
        }
    };
    // Say why before half-closing: the peer may answer our FIN by closing,
    // and its EOF must not be taken for the reason the conversation ended.
    if let SendEnd::EndOfInput = end {
        let _ = events.send(Event::SaidGoodbye(Ending::EndOfInput));
    }
    stream.finish()?;
    Ok(end)
}

/// The `peer-recv` thread: socket → output, until the peer's EOF.
///
/// After the peer's goodbye line, or once the output's reader has gone, it
/// keeps reading and discards what comes, so that closing never turns into
/// a reset; the coordinator bounds that wait by `--linger`.
fn recv_pump(
    stream: &mut dyn Receive,
    output: &mut dyn Output,
    mode: Mode,
    clock: &Clock,
    events: &Sender<Event>,
) -> std::result::Result<(), RecvFailure> {
    // Allocated only if the copying loop runs.
    let mut buf = Vec::new();
    let mut filter = (mode == Mode::Chat).then(ShowFilter::new);
    // Raw bytes over plain TCP into stdout may skip user space (see
    // `zero_copy`); the preamble guard shows the plain socket only once the
    // opening bytes have come through `read`.
    #[cfg(target_os = "linux")]
    let mut direct = mode == Mode::Raw;
    let mut discarding = false;
    let mut heard_goodbye = false;
    let output_closed = |discarding: &mut bool| {
        *discarding = true;
        let _ = events.send(Event::OutputClosed);
    };
    loop {
        #[cfg(target_os = "linux")]
        if direct
            && !discarding
            && let Some(socket) = stream.plain_socket()
        {
            direct = false;
            // A chunk handed over earlier (the guard's first bytes) may
            // still be being written: it goes first, and the output takes
            // splices only once it holds nothing.
            match reader_there(output.flush()) {
                Ok(true) => {}
                Ok(false) => {
                    output_closed(&mut discarding);
                    continue;
                }
                Err(error) => return Err(RecvFailure::Output(error)),
            }
            let received = match output.direct() {
                Some(out) => zero_copy::receive(socket, &out, clock),
                None => Ok(zero_copy::RecvEnd::Unsupported { held: Vec::new() }),
            };
            match received {
                Ok(zero_copy::RecvEnd::PeerClosed) => break,
                Ok(zero_copy::RecvEnd::OutputClosed) => output_closed(&mut discarding),
                Ok(zero_copy::RecvEnd::Unsupported { held }) => {
                    if !held.is_empty() {
                        match show(output, &held, clock) {
                            Ok(true) => {}
                            Ok(false) => output_closed(&mut discarding),
                            Err(error) => return Err(RecvFailure::Output(error)),
                        }
                    }
                }
                Err(zero_copy::RecvError::Socket(error)) => return Err(RecvFailure::Socket(error)),
                Err(zero_copy::RecvError::Output(error)) => return Err(RecvFailure::Output(error)),
            }
            continue;
        }
        if buf.len() < RECV_BUFFER {
            // The first time, or the output kept ours (`write_buf`) and gave
            // back a shorter one.
            buf.resize(RECV_BUFFER, 0);
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(RecvFailure::Socket(error)),
        };
        clock.received(n);
        if discarding {
            if heard_goodbye {
                clock.unshown.fetch_add(n as u64, Ordering::Relaxed);
            }
            continue;
        }
        let written = match &mut filter {
            // Raw: the output may take the buffer itself, not a copy.
            None => show_buf(output, &mut buf, n, clock),
            Some(filter) => {
                let data = &buf[..n];
                let seen = filter.feed(data);
                let mut written = Ok(true);
                if seen.held_cr {
                    written = show(output, b"\r", clock);
                }
                if matches!(written, Ok(true)) && !seen.body.is_empty() {
                    written = show(output, &data[seen.body.clone()], clock);
                }
                if seen.goodbye {
                    discarding = true;
                    heard_goodbye = true;
                    // The goodbye line is `\n` or `\r\n` where the body
                    // ends (or a `\n` completing a held `\r`).
                    let line = if data.get(seen.body.end) == Some(&b'\r') {
                        2
                    } else {
                        1
                    };
                    let after = n.saturating_sub(seen.body.end + line);
                    clock.unshown.fetch_add(after as u64, Ordering::Relaxed);
                    let _ = events.send(Event::PeerGoodbye);
                }
                written
            }
        };
        match written {
            Ok(true) => {}
            Ok(false) => output_closed(&mut discarding),
            Err(error) => return Err(RecvFailure::Output(error)),
        }
    }
    if let Some(filter) = &mut filter
        && !discarding
        && filter.finish()
    {
        match show(output, b"\r", clock) {
            Ok(true) => {}
            Ok(false) => output_closed(&mut discarding),
            Err(error) => return Err(RecvFailure::Output(error)),
        }
    }
    // A raw chunk may still be being written (`show_buf`): the peer's end
    // is ours only once it is out, or its failure is known. (A wait on
    // the output, as every write's is, not the peer's silence.)
    clock.showing();
    let flushed = if discarding { Ok(()) } else { output.flush() };
    clock.shown();
    if let Err(error) = flushed {
        if error.kind() != io::ErrorKind::BrokenPipe {
            return Err(RecvFailure::Output(error));
        }
        output_closed(&mut discarding);
    }
    Ok(())
}

/// Writes to the output now. `Ok(false)`: its reader has gone away (or the
/// conversation released it: it is ending and waits for the output no more).
/// The clock knows while this waits: that time is not the peer's silence.
fn show(output: &mut dyn Output, bytes: &[u8], clock: &Clock) -> io::Result<bool> {
    clock.showing();
    let written = output.write_all(bytes).and_then(|()| output.flush());
    clock.shown();
    reader_there(written)
}

/// [`show`] for all of `buf[..len]`, letting the output keep `buf` and give
/// another in its place, and write it while we receive the next
/// ([`Output::write_buf`]; `recv_pump`'s last flush waits for it).
fn show_buf(
    output: &mut dyn Output,
    buf: &mut Vec<u8>,
    len: usize,
    clock: &Clock,
) -> io::Result<bool> {
    clock.showing();
    let written = output.write_buf(buf, len);
    clock.shown();
    reader_there(written)
}

/// `Ok(false)` for a reader that has gone away.
fn reader_there(written: io::Result<()>) -> io::Result<bool> {
    match written {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error),
    }
}

/// How long we still wait once the conversation is closing.
#[derive(Clone, Copy, Debug)]
enum Closing {
    /// Until the peer has been silent for `--linger` (after our goodbye: a
    /// reply that is still arriving is never cut).
    Silence { since: Instant },
    /// Until this instant (the discarding after the peer's goodbye).
    Until(Instant),
}

/// Which wait ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    /// Ctrl-C's `--linger`, or the short wait after the output closed.
    HardStop,
    /// The peer, done, took nothing of what we still send for `--linger`.
    Stall,
    /// The closing wait ([`Closing`]).
    Closing,
    /// No traffic for `--idle-timeout`.
    Idle,
}

/// The peer's EOF ends what we send too (chat mode, or raw mode with a
/// terminal or no input): then what we still hold is sent under the stall
/// rule ([`Due::Stall`]), which [`watch_progress`] makes see the peer.
fn peer_ends_it(options: &ConversationOptions) -> bool {
    options.mode == Mode::Chat || options.input_is_terminal || options.recv_only
}

/// Makes the peer's progress visible to the sender, for the stall rule. A
/// blocked `write` is woken only when a third of the send buffer
/// (megabytes, after autotuning) has drained, and the kernel queues that
/// much unsent: once the peer is done, a slow but steady reader could look
/// stopped for seconds. With `TCP_NOTSENT_LOWAT` at [`SEND_PIECE`] from the
/// start, at most that much waits unsent behind what the peer has not
/// acknowledged, and the writer is woken every time the peer takes some.
/// Set when the conversation begins, not when the peer is done: by then
/// the backlog may be more than the peer takes in `--linger`. Where the
/// option is missing the stall rule sees coarser progress.
fn watch_progress(socket: &std::net::TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(error) = socket2::SockRef::from(socket).set_tcp_notsent_lowat(SEND_PIECE as u32) {
        tracing::debug!(%error, "could not set TCP_NOTSENT_LOWAT");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = socket;
}

/// The conversation's state, owned by the thread that called [`run`].
struct Coordinator<'a> {
    options: &'a ConversationOptions,
    peer: SocketAddr,
    clock: &'a Clock,
    socket: &'a std::net::TcpStream,
    /// Dropping this stops the sender (it then half-closes).
    stop: Option<Sender<()>>,
    sending: bool,
    receiving: bool,
    heard_goodbye: bool,
    /// When the peer said goodbye (chat: its empty line or EOF; raw: the
    /// EOF that ends the conversation). We still send what we hold.
    peer_done_at: Option<Instant>,
    /// The peer stopped reading what we still had to send: the socket is
    /// shut down and the sender's failure is this conversation's error.
    stalled: bool,
    /// The first reason the conversation is ending.
    reason: Option<Ending>,
    closing: Option<Closing>,
    /// Everything ends by then, whatever is still under way.
    hard_stop: Option<Instant>,
    failure: Option<Error>,
}

impl Coordinator<'_> {
    fn run(mut self, events: &Receiver<Event>, shutdown: &Shutdown) -> Result<Ending> {
        let mut interrupt = shutdown.receiver().clone();
        let linger = self.options.linger;
        while (self.sending || self.receiving) && self.failure.is_none() {
            let timer = self.deadline().map_or_else(never, |(at_, _)| at(at_));
            select! {
                recv(events) -> event => match event {
                    Ok(event) => self.on_event(event),
                    // Both pumps are gone: nothing more can happen.
                    Err(_) => break,
                },
                recv(interrupt) -> _ => {
                    interrupt = never();
                    self.reason = Some(Ending::Interrupted);
                    self.stop_sending();
                    self.stop_by(after(Instant::now(), linger));
                },
                recv(timer) -> _ => {
                    let Some((due_at, due)) = self.deadline() else { continue };
                    if due_at > Instant::now() {
                        continue;
                    }
                    match due {
                        Due::HardStop => break,
                        Due::Stall => {
                            tracing::debug!("the peer stopped reading");
                            self.stalled = true;
                            // Wakes the sender; its failure says how much
                            // was not sent.
                            let _ = self.socket.shutdown(std::net::Shutdown::Both);
                        }
                        Due::Closing => {
                            tracing::debug!("linger expired");
                            if matches!(self.reason, None | Some(Ending::Goodbye | Ending::EndOfInput)) {
                                self.reason = Some(Ending::LingerExpired);
                            }
                            break;
                        }
                        Due::Idle => {
                            // The peer has been silent that long already:
                            // close at once, no linger after it.
                            self.reason.get_or_insert(Ending::IdleTimeout);
                            break;
                        }
                    }
                },
            }
        }
        match self.failure {
            Some(error) => Err(error),
            None => Ok(self.reason.unwrap_or(Ending::PeerClosed)),
        }
    }

    /// The wait that runs out first, if anything is waited for.
    fn deadline(&self) -> Option<(Instant, Due)> {
        let linger = self.options.linger;
        let mut due: Option<(Instant, Due)> = None;
        let mut consider = |at: Instant, what: Due| {
            if due.is_none_or(|(first, _)| at < first) {
                due = Some((at, what));
            }
        };
        if let Some(at) = self.hard_stop {
            consider(at, Due::HardStop);
        }
        if let Some(done_at) = self.peer_done_at
            && self.sending
            && !self.stalled
        {
            let last = self.clock.instant(&self.clock.last_sent).max(done_at);
            consider(after(last, linger), Due::Stall);
        }
        match self.closing {
            Some(Closing::Silence { since }) => {
                // While the receiver waits for the output, the peer's silence
                // does not count: look again a linger from now.
                let last = if self.clock.showing.load(Ordering::Relaxed) {
                    Instant::now()
                } else {
                    self.clock.instant(&self.clock.last_ready).max(since)
                };
                consider(after(last, linger), Due::Closing);
            }
            Some(Closing::Until(at)) => consider(at, Due::Closing),
            None => {}
        }
        // The idle timeout holds while we wait for the peer after our
        // goodbye too (a receiver stuck on a stalled output is no traffic);
        // once the peer is done, the stall rule above is the one that counts.
        if let Some(idle) = self.options.idle_timeout
            && self.hard_stop.is_none()
            && self.peer_done_at.is_none()
        {
            let last = self.clock.instant(&self.clock.last_any);
            consider(after(last, idle), Due::Idle);
        }
        due
    }

    fn on_event(&mut self, event: Event) {
        let chat = self.options.mode == Mode::Chat;
        let linger = self.options.linger;
        match event {
            Event::SaidGoodbye(ending) => {
                self.reason.get_or_insert(ending);
            }
            Event::Sent(Ok(end)) => {
                tracing::debug!(?end, "sender finished");
                self.sending = false;
                if self.peer_done_at.is_some() {
                    // All we held is sent and we have half-closed: discard
                    // what the peer still sends until its EOF, for --linger.
                    self.close_by(Closing::Until(after(Instant::now(), linger)));
                } else if chat && !matches!(end, SendEnd::Stopped) {
                    self.close_by(Closing::Silence {
                        since: Instant::now(),
                    });
                }
            }
            Event::Sent(Err(SendFailure { error, unsent })) => {
                self.sending = false;
                if self.stalled {
                    self.fail(
                        "while sending",
                        // Not TimedOut: that kind reads "peer vanished".
                        io::Error::other(format!("peer stopped reading; {unsent} bytes not sent")),
                    );
                } else if chat && self.peer_is_done() {
                    // The peer said goodbye and left before taking the rest.
                    tracing::debug!(%error, unsent, "send failed after the peer's goodbye");
                } else {
                    self.fail("while sending", error);
                }
            }
            Event::PeerGoodbye => {
                self.heard_goodbye = true;
                self.reason.get_or_insert(Ending::PeerGoodbye);
                self.peer_done();
            }
            Event::Received(Ok(())) => {
                self.receiving = false;
                if peer_ends_it(self.options) {
                    self.reason.get_or_insert(Ending::PeerClosed);
                    self.peer_done();
                } else if self.sending {
                    tracing::debug!("peer finished sending; still sending");
                } else {
                    self.reason.get_or_insert(Ending::PeerClosed);
                }
            }
            Event::OutputClosed => {
                self.reason.get_or_insert(Ending::OutputClosed);
                self.stop_sending();
                // Nobody reads what the peer sends any more; wait (briefly)
                // for its EOF all the same, so that closing is not a reset.
                self.stop_by(after(Instant::now(), linger.min(OUTPUT_CLOSED_WAIT)));
            }
            Event::Received(Err(RecvFailure::Socket(source))) => {
                self.receiving = false;
                if (chat && self.heard_goodbye) || self.stalled {
                    tracing::debug!(%source, "receive failed after the peer's goodbye");
                } else if chat
                    && self.said_goodbye()
                    && crate::transport::tls::is_truncation(&source)
                {
                    // Many TLS peers (ncat among them) close without
                    // close_notify; after our goodbye that ends the drain
                    // (SPEC, "TLS").
                    tracing::debug!(%source, "TLS peer closed without close_notify while we drained");
                    self.reason.get_or_insert(Ending::PeerClosed);
                } else {
                    self.fail("while receiving", source);
                }
            }
            Event::Received(Err(RecvFailure::Output(source))) => {
                self.receiving = false;
                self.failure = Some(Error::Local {
                    op: "could not write output",
                    source,
                });
            }
        }
    }

    /// The peer has said goodbye: stop taking input, send what we hold, and
    /// once that is sent, discard until its EOF for --linger.
    fn peer_done(&mut self) {
        self.stop_sending();
        let now = Instant::now();
        self.peer_done_at.get_or_insert(now);
        if !self.sending {
            self.close_by(Closing::Until(after(now, self.options.linger)));
        }
    }

    /// We have said goodbye (empty line or end of input) and are draining.
    fn said_goodbye(&self) -> bool {
        matches!(self.reason, Some(Ending::Goodbye | Ending::EndOfInput))
    }

    /// The peer has said goodbye (empty line or EOF) in chat mode.
    fn peer_is_done(&self) -> bool {
        self.heard_goodbye || !self.receiving
    }

    fn fail(&mut self, op: &'static str, source: io::Error) {
        self.failure = Some(Error::Conversation {
            peer: self.peer,
            op,
            source,
        });
    }

    /// Stops the sender after what it holds; it then half-closes.
    fn stop_sending(&mut self) {
        self.stop = None;
    }

    /// Everything ends by `at`, unless an earlier hard stop is on.
    fn stop_by(&mut self, at: Instant) {
        if self.hard_stop.is_none_or(|old| at < old) {
            self.hard_stop = Some(at);
        }
    }

    /// Starts waiting for the end, unless an earlier, shorter wait is on.
    fn close_by(&mut self, closing: Closing) {
        let sooner = match (self.closing, closing) {
            (None, _) => true,
            (Some(Closing::Until(old)), Closing::Until(new)) => new < old,
            (Some(Closing::Silence { .. }), Closing::Until(_)) => true,
            (Some(_), Closing::Silence { .. }) => false,
        };
        if sooner {
            self.closing = Some(closing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The unsent-input line says why the input stopped: after Ctrl-C it
    /// must not blame the peer.
    #[test]
    fn unsent_input_is_reported_with_the_real_reason() {
        for (ending, why) in [
            (
                Ending::Interrupted,
                "interrupted; 3 bytes of input not sent",
            ),
            (Ending::PeerGoodbye, "the peer said goodbye first; 3 bytes"),
            (Ending::IdleTimeout, "idle timeout; 3 bytes"),
        ] {
            let lines = Arc::new(Mutex::new(Vec::<String>::new()));
            let sink = {
                let lines = lines.clone();
                Arc::new(move |line: &str| {
                    if let Ok(mut lines) = lines.lock() {
                        lines.push(line.to_owned());
                    }
                })
            };
            let status = Status::with_sink(false, sink);
            let (chunks, mut input) = Input::channel();
            chunks.send(b"abc".to_vec().into()).unwrap();
            report_unsent(&mut input, &status, ending);
            let lines = lines.lock().unwrap();
            assert_eq!(lines.len(), 1, "{ending:?}: {lines:?}");
            assert!(lines[0].starts_with(why), "{ending:?}: {lines:?}");
        }
    }
}
