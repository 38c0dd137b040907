//! The hub: the peer table and the `select!` loop that owns it (see the
//! module docs of [`crate::room`]).

use super::notices;
use super::peer::{Deadline, Peer, Reports, STALL_GRACE, State};
use super::{Batch, Bytes, GATHER_BYTES, GATHER_EVENTS, MAX_LINE, PeerEvent, PeerId};
use crate::ending::Ending;
use crate::error::{Error, Result, describe};
use crate::input::{Chunk, Input};
use crate::lines::{Cut, LineCutter};
use crate::net::{Accepted, Acceptor};
use crate::options::{ConversationOptions, RoomOptions};
use crate::output::Output;
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::transport::Security;
use crossbeam_channel::{Receiver, RecvError, at, bounded, never, select};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Events waiting for the hub; a full channel blocks the receiver threads.
const EVENTS: usize = 256;

/// Peers being turned away or still joining that may hold threads at once
/// while the room is full; beyond that a newcomer's connection is just
/// closed.
const REFUSING_MAX: usize = 64;

/// While the room is held back by a queue at the hard bound, how often the
/// hub looks whether it has drained.
const HELD_BACK_CHECK: Duration = Duration::from_millis(5);

/// The server's label before its lines.
const SERVER_LABEL: &[u8] = b"[server] ";

/// What woke the hub.
enum Wake {
    Accepted(std::result::Result<Accepted, RecvError>),
    Event((PeerId, PeerEvent)),
    Input(std::result::Result<Chunk, RecvError>),
    Interrupted,
    Timer,
}

/// Which of a peer's threads has sent its last event.
#[derive(Clone, Copy)]
enum Thread {
    Recv,
    Send,
}

/// The room's state, owned by the thread that called [`crate::room::run`].
pub(super) struct Hub<'a> {
    room: &'a RoomOptions,
    options: &'a ConversationOptions,
    input: &'a mut Input,
    /// The server's input; `None` once it has ended or said goodbye.
    input_rx: Option<Receiver<Chunk>>,
    /// Input given back by an earlier user of `input`, taken first.
    held: Option<Chunk>,
    server: LineCutter,
    output: &'a mut dyn Output,
    output_dirty: bool,
    output_open: bool,
    status: &'a Status,
    /// Cloned into every peer's threads.
    reports: Reports,
    received: Receiver<(PeerId, PeerEvent)>,
    sent: Receiver<(PeerId, PeerEvent)>,
    peers: BTreeMap<PeerId, Peer>,
    next_id: PeerId,
    /// Peers in the room (`State::Active`).
    active: usize,
    /// Somebody has joined: from now on the server's input is taken.
    anyone_joined: bool,
    /// `None` once the room is closing: newcomers are refused by the OS.
    acceptor: Option<Acceptor>,
    /// Accepting is failing for want of descriptors; said once.
    starved: bool,
    /// A queue is at the hard bound: no lines are taken until it drains.
    held_back: bool,
    /// Set when the room starts closing.
    ending: Option<Ending>,
    failure: Option<Error>,
}

impl<'a> Hub<'a> {
    pub(super) fn new(
        room: &'a RoomOptions,
        options: &'a ConversationOptions,
        input: &'a mut Input,
        output: &'a mut dyn Output,
        status: &'a Status,
        acceptor: Acceptor,
    ) -> Self {
        let (received_tx, received) = bounded(EVENTS);
        let (sent_tx, sent) = bounded(EVENTS);
        let (held, input_rx) = input.for_select();
        Hub {
            room,
            options,
            input,
            input_rx: Some(input_rx),
            held,
            server: LineCutter::new(MAX_LINE),
            output,
            output_dirty: false,
            output_open: true,
            status,
            reports: Reports {
                received: received_tx,
                sent: sent_tx,
            },
            received,
            sent,
            peers: BTreeMap::new(),
            next_id: 0,
            active: 0,
            anyone_joined: false,
            acceptor: Some(acceptor),
            starved: false,
            held_back: false,
            ending: None,
            failure: None,
        }
    }

    pub(super) fn run(mut self, shutdown: &Shutdown) -> Result<Ending> {
        let mut interrupt = shutdown.receiver().clone();
        loop {
            self.held_back = self.peers.values().any(Peer::holds_back);
            if self.anyone_joined
                && self.ending.is_none()
                && !self.held_back
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
                // Held back: lines wait in the receivers, and TCP slows
                // their senders.
                let received = if self.held_back {
                    never()
                } else {
                    self.received.clone()
                };
                // Input waits for the first peer (see `run`).
                let input = match &self.input_rx {
                    Some(rx) if self.anyone_joined && self.ending.is_none() && !self.held_back => {
                        rx.clone()
                    }
                    _ => never(),
                };
                let timer = self.next_deadline().map_or_else(never, at);
                select! {
                    recv(accepting) -> accepted => Wake::Accepted(accepted),
                    recv(received) -> event => match event {
                        Ok(event) => Wake::Event(event),
                        // The hub holds a sender: cannot happen.
                        Err(_) => Wake::Timer,
                    },
                    recv(self.sent) -> event => match event {
                        Ok(event) => Wake::Event(event),
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
                    if let Some((id, event)) = self.on_lines(id, lines) {
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
            if self.output_dirty && self.received.is_empty() {
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
            Ok(Ok((stream, addr))) => {
                if std::mem::take(&mut self.starved) {
                    self.status.line("accepting newcomers again");
                }
                self.admit(stream, addr);
            }
            Ok(Err(error)) if crate::net::is_out_of_descriptors(&error) => {
                // The accept thread backs off, and reports only the first
                // failure of a run of them (issue 17, item 6).
                if !std::mem::replace(&mut self.starved, true) {
                    self.status.line(format_args!(
                        "not accepting newcomers for now: {}; the room goes on",
                        describe(&error)
                    ));
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "accept failed"),
            Err(_) => {
                // The accept thread has stopped after an error it reported.
                self.failure = Some(Error::Accept(io::Error::other("the listener stopped")));
                self.close_room(Ending::EndOfInput);
            }
        }
    }

    /// Starts a newcomer's threads; it joins once its connection is made
    /// ([`PeerEvent::Ready`]).
    fn admit(&mut self, stream: TcpStream, addr: SocketAddr) {
        if self.ending.is_some() {
            return;
        }
        let max = self.room.max_peers;
        if self.active >= max && self.peers.len() - self.active >= REFUSING_MAX {
            // Too many being turned away already: just close it.
            self.status
                .line(notices::refused(&format!("[{addr}]"), max));
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let security = &self.options.security;
        match Peer::spawn(id, stream, addr, security, &self.reports) {
            Ok((peer, failed)) => {
                if let Some(error) = failed {
                    self.status
                        .line(notices::could_not_join(&peer.label, &describe(&error)));
                }
                self.peers.insert(id, peer);
            }
            Err(error) => self.status.line(notices::could_not_join(
                &format!("[{addr}]"),
                &describe(&error),
            )),
        }
    }

    /// A newcomer's connection is made: it joins, or is turned away.
    fn on_ready(&mut self, id: PeerId) {
        let max = self.room.max_peers;
        let (room_closing, full) = (self.ending.is_some(), self.active >= max);
        let linger = self.options.linger;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let State::Joining { queue } = &peer.state else {
            return;
        };
        if room_closing {
            peer.tell(&closing());
            peer.quit(State::Closing {
                deadline: Some(Deadline::At(Instant::now() + linger)),
            });
            return;
        }
        if full {
            self.status.line(notices::refused(&peer.label, max));
            peer.tell(&message(&notices::room_full(max)));
            peer.quit(State::Refused {
                deadline: Some(Deadline::At(Instant::now() + linger)),
            });
            return;
        }
        peer.state = State::Active {
            queue: queue.clone(),
            behind: false,
        };
        let label = peer.label.clone();
        self.active += 1;
        self.anyone_joined = true;
        tracing::info!(peer = %peer.addr, "joined");
        let here: Vec<&str> = self
            .peers
            .iter()
            .filter(|(other, peer)| **other != id && peer.is_active())
            .map(|(_, peer)| peer.label.as_str())
            .collect();
        let welcome = message(&notices::welcome(&label, here));
        if let Some(peer) = self.peers.get(&id) {
            peer.tell(&welcome);
        }
        self.notice(Some(id), &notices::joined(&label));
    }

    // ---- peers' events

    fn on_event(&mut self, id: PeerId, event: PeerEvent) {
        let linger = self.options.linger;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let active = peer.is_active();
        match event {
            PeerEvent::Ready(socket) => {
                peer.connected(socket);
                self.on_ready(id);
            }
            PeerEvent::Lines(lines) => self.relay_lines(vec![(id, lines)]),
            PeerEvent::Name(name) => self.on_name(id, name),
            PeerEvent::Goodbye => {
                if active {
                    self.leave(id, None, Some(Deadline::At(Instant::now() + linger)));
                }
            }
            PeerEvent::TooLong => {
                if active {
                    peer.tell(&message(&notices::too_long(MAX_LINE)));
                    let deadline = Deadline::At(Instant::now() + linger);
                    self.leave(id, Some(&notices::LEFT_TOO_LONG), Some(deadline));
                }
            }
            PeerEvent::Received(result) => {
                self.thread_ended(id, Thread::Recv);
                if active {
                    match result {
                        // EOF is a goodbye too: the sender still sends what
                        // is queued, then finishes.
                        Ok(()) => {
                            self.leave(id, None, Some(Deadline::At(Instant::now() + linger)));
                        }
                        Err(error) => {
                            if let Some(peer) = self.peers.get_mut(&id) {
                                peer.cut();
                            }
                            self.leave(id, Some(&describe(&error)), None);
                        }
                    }
                }
                self.remove_if_done(id);
            }
            PeerEvent::NoConnection(error) => {
                tracing::info!(peer = %peer.addr, %error, "no connection");
                self.status
                    .line(notices::could_not_join(&peer.label, &error));
                peer.quit(State::Leaving { deadline: None });
                self.thread_ended(id, Thread::Recv);
                self.remove_if_done(id);
                // The guess budget is the room's as a whole (SPEC, "Secret
                // channel"): the third wrong secret closes the room cleanly.
                if let Security::Secret(setup) = &self.options.security
                    && setup.budget.exhausted()
                {
                    self.failure.get_or_insert(Error::TooManyGuesses);
                    self.close_room(Ending::EndOfInput);
                }
            }
            PeerEvent::Sent(result) => {
                self.thread_ended(id, Thread::Send);
                if active {
                    // Only an error ends an active peer's sender.
                    if let Some(peer) = self.peers.get_mut(&id) {
                        peer.cut();
                    }
                    match result {
                        Ok(()) => self.leave(id, None, None),
                        Err(error) => self.leave(id, Some(&describe(&error)), None),
                    }
                }
                self.remove_if_done(id);
            }
        }
    }

    /// A peer's `/name` request. Always answered, so its receiver goes on.
    fn on_name(&mut self, id: PeerId, name: Option<String>) {
        let taken = |label: &str| {
            self.peers.iter().any(|(other, peer)| {
                *other != id && peer.is_active() && peer.label.eq_ignore_ascii_case(label)
            })
        };
        let wanted = name.map(|name| format!("[{name}]"));
        let refusal = match &wanted {
            None => Some(notices::name_invalid()),
            Some(label) if taken(label) => Some(notices::name_taken(label)),
            Some(_) => None,
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let (Some(label), None, true) = (wanted, &refusal, peer.is_active()) else {
            if let (Some(refusal), true) = (refusal, peer.is_active()) {
                peer.tell(&message(&refusal));
            }
            peer.answer_name();
            return;
        };
        if label == peer.label {
            peer.answer_name();
            return;
        }
        let old = std::mem::replace(&mut peer.label, label);
        peer.answer_name();
        let renamed = notices::renamed(&old, &peer.label);
        tracing::info!(peer = %peer.addr, label = %peer.label, "renamed");
        // The peer is told too: that is how it knows its name took.
        self.notice(None, &renamed);
    }

    /// Lines from peer `id`, and those already waiting behind them (up to
    /// [`GATHER_EVENTS`] / [`GATHER_BYTES`]), relayed together. Returns the
    /// first other event taken, to be handled after them (in order).
    fn on_lines(&mut self, id: PeerId, lines: Bytes) -> Option<(PeerId, PeerEvent)> {
        let mut bytes = lines.len();
        let mut group = vec![(id, lines)];
        let mut next = None;
        while group.len() < GATHER_EVENTS && bytes < GATHER_BYTES {
            match self.received.try_recv() {
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
            let (active, shown) = (
                peer.is_active(),
                matches!(peer.state, State::Closing { .. }),
            );
            if active || shown {
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
            if !peer.is_active() {
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
        self.evict_all(slow);
    }

    /// Takes a peer out of the room: it gets nothing more (its sender sends
    /// what is queued, then finishes), and the others are told.
    fn leave(&mut self, id: PeerId, why: Option<&dyn Display>, deadline: Option<Deadline>) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.is_active() {
            return;
        }
        peer.quit(State::Leaving { deadline });
        self.active -= 1;
        let label = peer.label.clone();
        tracing::info!(peer = %peer.addr, "left");
        self.notice(Some(id), &notices::left(&label, why));
    }

    /// Evicts a peer too slow to keep up: its notice is its sender's last
    /// batch, and its socket is shut down after one more grace period if
    /// even that cannot be written.
    fn evict(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.is_active() {
            return;
        }
        tracing::info!(peer = %peer.addr, "evicting a peer too slow to keep up");
        peer.evict(&message(notices::EVICTED), Instant::now() + STALL_GRACE);
        self.active -= 1;
        let label = peer.label.clone();
        self.notice(Some(id), &notices::evicted(&label));
    }

    fn evict_all(&mut self, slow: Vec<PeerId>) {
        for id in slow {
            self.evict(id);
        }
    }

    /// Joins a peer thread that has sent its last event (so this only waits
    /// for it to return). A thread that panicked is a bug: said on stderr
    /// (the panic message is there already), and the room ends with an
    /// error.
    fn thread_ended(&mut self, id: PeerId, which: Thread) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let (handle, name) = match which {
            Thread::Recv => (peer.recv.take(), "room-recv"),
            Thread::Send => (peer.send.take(), "room-send"),
        };
        let label = peer.label.clone();
        if let Some(error) = handle.and_then(|handle| joined(handle, name, &label)) {
            self.failure.get_or_insert(error);
            self.close_room(Ending::EndOfInput);
        }
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
            if peer.is_active() && Some(id) != from && !peer.offer(vec![Arc::clone(msg)], now) {
                slow.push(id);
            }
        }
        self.evict_all(slow);
    }

    /// A notice: a status line here, and a `* ` line to every peer in the
    /// room but `about`.
    fn notice(&mut self, about: Option<PeerId>, text: &str) {
        self.status.line(text);
        self.relay(about, &message(text));
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
                let (used, cut) = self
                    .server
                    .feed(&data[pos..], |line| server_line(&mut out, line));
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
            self.relay(None, &Arc::new(out));
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
        self.server.finish(|line| server_line(&mut out, line));
        if !out.is_empty() {
            self.relay(None, &Arc::new(out));
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
                    if let Some(due) = peer.due(linger)
                        && let Some(deadline) = peer.deadline_mut()
                    {
                        *deadline = Some(Deadline::At(due.min(now + linger)));
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
            self.status.line(notices::ROOM_CLOSING);
        }
        let last = closing();
        let deadline = match ending {
            Ending::Goodbye | Ending::EndOfInput => Deadline::Silence(now),
            _ => Deadline::At(now + linger),
        };
        for peer in self.peers.values_mut() {
            if peer.is_active() {
                peer.tell(&last);
                peer.quit(State::Closing {
                    deadline: Some(deadline),
                });
            }
        }
        self.active = 0;
    }

    fn next_deadline(&self) -> Option<Instant> {
        let linger = self.options.linger;
        let held_back = self.held_back.then(|| Instant::now() + HELD_BACK_CHECK);
        self.peers
            .values()
            .flat_map(|peer| [peer.due(linger), peer.stall_due()])
            .chain([held_back])
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
            if peer.stall_due().is_some_and(|due| due <= now) && peer.stalled(now) {
                slow.push(id);
            }
        }
        self.evict_all(slow);
    }
}

/// One of the server's own lines, labelled and neutralised like a peer's
/// (an operator may pipe a file with escapes; SPEC, "Terminal safety").
fn server_line(out: &mut Vec<u8>, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    out.extend_from_slice(SERVER_LABEL);
    out.extend_from_slice(crate::render::render(line).as_bytes());
    out.push(b'\n');
}

/// A notice as a message: its text and `\n`.
fn message(text: &str) -> Bytes {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    if !text.ends_with('\n') {
        bytes.push(b'\n');
    }
    Arc::new(bytes)
}

/// Joins a room thread; `Some` error when it panicked, said on stderr
/// whatever `-q` says, since it ends the room.
fn joined(handle: JoinHandle<()>, name: &str, label: &str) -> Option<Error> {
    if handle.join().is_ok() {
        return None;
    }
    let _ = writeln!(
        io::stderr().lock(),
        "duplex: the {name} thread of {label} panicked; closing the room"
    );
    Some(Error::Local {
        op: "a room thread panicked",
        source: io::Error::other(format!("{name} of {label}")),
    })
}

/// The room's last words to a peer: the notice, then the goodbye (an empty
/// line).
fn closing() -> Bytes {
    Arc::new(format!("{}\n\n", notices::ROOM_CLOSING).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicked_thread_is_an_error_and_a_clean_one_is_not() {
        let clean = std::thread::spawn(|| {});
        assert!(joined(clean, "room-send", "[a:1]").is_none());
        let panicking = std::thread::Builder::new()
            .name("room-recv".into())
            .spawn(|| panic!("a bug"))
            .unwrap();
        let error = joined(panicking, "room-recv", "[a:1]").unwrap();
        assert_eq!(
            error.to_string(),
            "a room thread panicked: room-recv of [a:1]"
        );
    }

    #[test]
    fn a_notice_message_ends_in_one_newline() {
        assert_eq!(&message("* x")[..], b"* x\n");
        assert_eq!(&message("* x\n")[..], b"* x\n");
    }
}
