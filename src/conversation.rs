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
//! pump still blocked on it. Both pumps are scoped threads, joined before
//! [`run`] returns.

use crate::error::{Error, Result};
use crate::input::{Input, Next};
use crate::lines::ShowFilter;
use crate::options::{ConversationOptions, Mode};
use crate::shutdown::Shutdown;
use crate::transport::{Connection, Receive, Transmit};
use crossbeam_channel::{Receiver, Sender, at, bounded, never, select};
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Size of the receiver's read buffer.
const RECV_BUFFER: usize = 1024 * 1024;

/// How a conversation ended normally. Failures are [`Error`]s instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// We sent an empty line.
    Goodbye,
    /// Our input ended.
    EndOfInput,
    /// The peer sent an empty line.
    PeerGoodbye,
    /// The peer closed its side (EOF).
    PeerClosed,
    /// After our goodbye the peer stayed silent for `--linger` without closing.
    LingerExpired,
    /// No traffic either way for `--idle-timeout`.
    IdleTimeout,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Whoever read our output stopped reading.
    OutputClosed,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ending::Goodbye => "goodbye",
            Ending::EndOfInput => "end of input",
            Ending::PeerGoodbye => "peer said goodbye",
            Ending::PeerClosed => "peer closed",
            Ending::LingerExpired => "linger expired",
            Ending::IdleTimeout => "idle timeout",
            Ending::Interrupted => "interrupted",
            Ending::OutputClosed => "output closed",
        })
    }
}

/// Holds one conversation with the peer on `connection` until it ends.
///
/// `connection` is a plain `TcpStream` or the [`Connection`] a handshake
/// made (see [`crate::transport`]); the conversation does not know which.
/// Input comes from `input` (what is not sent stays there for the next
/// conversation); what the peer sends goes to `output`. Returns how the
/// conversation ended, or the error that broke it.
pub fn run(
    connection: impl Into<Connection>,
    peer: SocketAddr,
    input: &mut Input,
    output: &mut (dyn Write + Send),
    options: &ConversationOptions,
    shutdown: &Shutdown,
) -> Result<Ending> {
    let Connection {
        socket,
        mut receiver,
        mut transmitter,
    } = connection.into();
    // Sockets from `serve` and `connect` are tuned already (keepalive
    // included); this keeps Nagle off for streams a library user hands us.
    crate::net::tune(&socket, None);
    let span = tracing::info_span!("conversation", %peer);
    let _entered = span.enter();
    let clock = Clock::new();
    let (events_tx, events) = bounded(8);
    let spawn_error = |source| Error::Local {
        op: "could not start a conversation thread",
        source,
    };

    thread::scope(|scope| {
        // Whatever way this closure is left, shutting the socket down first
        // wakes a pump blocked on it, so the scope's joins cannot hang.
        let _wake = ShutdownOnDrop(&socket);
        // Dropping `stop_tx` stops the sender; it lives in this closure, so
        // every way out of it (an error included) also releases the sender.
        let (stop_tx, stop) = bounded::<()>(0);
        let mode = options.mode;
        let (transmitter, receiver, clock) = (&mut *transmitter, &mut *receiver, &clock);

        let sent = events_tx.clone();
        let send_span = span.clone();
        thread::Builder::new()
            .name("peer-send".into())
            .spawn_scoped(scope, move || {
                let _entered = send_span.enter();
                let result = send_pump(transmitter, input, &stop, mode, clock, &sent);
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
            stop: Some(stop_tx),
            sending: true,
            receiving: true,
            heard_goodbye: false,
            reason: None,
            closing: None,
            failure: None,
        };
        coordinator.run(&events, shutdown)
    })
}

/// Shuts the socket down both ways when dropped.
struct ShutdownOnDrop<'a>(&'a std::net::TcpStream);

impl Drop for ShutdownOnDrop<'_> {
    fn drop(&mut self) {
        // NotConnected just means the peer is already gone.
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// When traffic last passed, readable from every thread of a conversation.
struct Clock {
    start: Instant,
    last_recv: AtomicU64,
    last_any: AtomicU64,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            last_recv: AtomicU64::new(0),
            last_any: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn sent(&self) {
        self.last_any.store(self.now(), Ordering::Relaxed);
    }

    fn received(&self) {
        let now = self.now();
        self.last_recv.store(now, Ordering::Relaxed);
        self.last_any.store(now, Ordering::Relaxed);
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

/// Why the receiving side failed.
#[derive(Debug)]
enum RecvFailure {
    Socket(io::Error),
    Output(io::Error),
}

/// What the pumps tell the coordinator.
#[derive(Debug)]
enum Event {
    /// Our goodbye (empty line or end of input) is sent; half-closing next.
    SaidGoodbye(Ending),
    Sent(io::Result<SendEnd>),
    /// The peer's goodbye line arrived (the receiver now discards).
    PeerGoodbye,
    /// Whoever read our output stopped reading (the receiver now discards).
    OutputClosed,
    /// The receiver is done: the peer's EOF, or a failure.
    Received(std::result::Result<(), RecvFailure>),
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
) -> io::Result<SendEnd> {
    // After a stop, what had already been read then is still sent: input
    // piped before the peer connected reaches it even if the peer says
    // goodbye at once.
    let mut stopped_with: Option<usize> = None;
    let end = loop {
        let next = match &mut stopped_with {
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
                }
                let written = stream.write_all(chunk.bytes());
                input.recycle(chunk);
                written?;
                clock.sent();
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
    let said = match end {
        SendEnd::Goodbye => Some(Ending::Goodbye),
        SendEnd::EndOfInput => Some(Ending::EndOfInput),
        SendEnd::Stopped => None,
    };
    if let Some(ending) = said {
        let _ = events.send(Event::SaidGoodbye(ending));
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
    output: &mut (dyn Write + Send),
    mode: Mode,
    clock: &Clock,
    events: &Sender<Event>,
) -> std::result::Result<(), RecvFailure> {
    let mut buf = vec![0; RECV_BUFFER];
    let mut filter = (mode == Mode::Chat).then(ShowFilter::new);
    let mut discarding = false;
    let output_closed = |discarding: &mut bool| {
        *discarding = true;
        let _ = events.send(Event::OutputClosed);
    };
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(RecvFailure::Socket(error)),
        };
        clock.received();
        if discarding {
            continue;
        }
        let data = &buf[..n];
        let written = match &mut filter {
            None => show(output, data),
            Some(filter) => {
                let seen = filter.feed(data);
                let mut written = Ok(true);
                if seen.held_cr {
                    written = show(output, b"\r");
                }
                if matches!(written, Ok(true)) && !seen.body.is_empty() {
                    written = show(output, &data[seen.body]);
                }
                if seen.goodbye {
                    discarding = true;
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
        match show(output, b"\r") {
            Ok(true) => {}
            Ok(false) => output_closed(&mut discarding),
            Err(error) => return Err(RecvFailure::Output(error)),
        }
    }
    Ok(())
}

/// Writes to the output now. `Ok(false)`: its reader has gone away.
fn show(output: &mut (dyn Write + Send), bytes: &[u8]) -> io::Result<bool> {
    match output.write_all(bytes).and_then(|()| output.flush()) {
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
    /// Until this instant (after the peer's goodbye, Ctrl-C, idle timeout).
    Until(Instant),
}

/// The conversation's state, owned by the thread that called [`run`].
struct Coordinator<'a> {
    options: &'a ConversationOptions,
    peer: SocketAddr,
    clock: &'a Clock,
    /// Dropping this stops the sender (it then half-closes).
    stop: Option<Sender<()>>,
    sending: bool,
    receiving: bool,
    heard_goodbye: bool,
    /// The first reason the conversation is ending.
    reason: Option<Ending>,
    closing: Option<Closing>,
    failure: Option<Error>,
}

impl Coordinator<'_> {
    fn run(mut self, events: &Receiver<Event>, shutdown: &Shutdown) -> Result<Ending> {
        let mut interrupt = shutdown.receiver().clone();
        while (self.sending || self.receiving) && self.failure.is_none() {
            let deadline = self.deadline();
            let timer = deadline.map_or_else(never, at);
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
                    self.close_by(Closing::Until(Instant::now() + self.options.linger));
                },
                recv(timer) -> _ => {
                    if self.deadline().is_some_and(|d| d <= Instant::now()) {
                        if self.closing.is_some() {
                            tracing::debug!("linger expired");
                            if matches!(self.reason, None | Some(Ending::Goodbye | Ending::EndOfInput)) {
                                self.reason = Some(Ending::LingerExpired);
                            }
                            break;
                        }
                        self.reason.get_or_insert(Ending::IdleTimeout);
                        self.stop_sending();
                        self.close_by(Closing::Until(Instant::now() + self.options.linger));
                    }
                },
            }
        }
        match self.failure {
            Some(error) => Err(error),
            None => Ok(self.reason.unwrap_or(Ending::PeerClosed)),
        }
    }

    /// When the current wait runs out, if anything is waited for.
    fn deadline(&self) -> Option<Instant> {
        match self.closing {
            Some(Closing::Silence { since }) => {
                let last = self.clock.instant(&self.clock.last_recv).max(since);
                Some(last + self.options.linger)
            }
            Some(Closing::Until(at)) => Some(at),
            None => self
                .options
                .idle_timeout
                .map(|idle| self.clock.instant(&self.clock.last_any) + idle),
        }
    }

    fn on_event(&mut self, event: Event) {
        let chat = self.options.mode == Mode::Chat;
        match event {
            Event::SaidGoodbye(ending) => {
                self.reason.get_or_insert(ending);
                if chat {
                    self.close_by(Closing::Silence {
                        since: Instant::now(),
                    });
                }
            }
            Event::Sent(Ok(end)) => {
                tracing::debug!(?end, "sender finished");
                self.sending = false;
            }
            Event::Sent(Err(source)) => {
                self.sending = false;
                if chat && self.peer_is_done() {
                    // The peer said goodbye and left before taking the rest.
                    tracing::debug!(%source, "send failed after the peer's goodbye");
                } else {
                    self.fail("while sending", source);
                }
            }
            Event::PeerGoodbye => {
                self.heard_goodbye = true;
                self.reason.get_or_insert(Ending::PeerGoodbye);
                self.stop_sending();
                self.close_by(Closing::Until(Instant::now() + self.options.linger));
            }
            Event::Received(Ok(())) => {
                self.receiving = false;
                let peer_ends_it = chat || self.options.input_is_terminal || self.options.recv_only;
                if peer_ends_it {
                    self.reason.get_or_insert(Ending::PeerClosed);
                    self.stop_sending();
                    self.close_by(Closing::Until(Instant::now() + self.options.linger));
                } else if self.sending {
                    tracing::debug!("peer finished sending; still sending");
                } else {
                    self.reason.get_or_insert(Ending::PeerClosed);
                }
            }
            Event::OutputClosed => {
                self.reason.get_or_insert(Ending::OutputClosed);
                self.stop_sending();
                // Nobody reads what the peer sends any more; wait (bounded)
                // for its EOF all the same, so that closing is not a reset.
                self.close_by(Closing::Until(Instant::now() + self.options.linger));
            }
            Event::Received(Err(RecvFailure::Socket(source))) => {
                self.receiving = false;
                if chat && self.heard_goodbye {
                    tracing::debug!(%source, "receive failed after the peer's goodbye");
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

    /// Stops the sender after the chunk it holds; it then half-closes.
    fn stop_sending(&mut self) {
        self.stop = None;
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
