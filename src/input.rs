//! The one process-wide input thread, and the [`Input`] that conversations
//! take their bytes from.
//!
//! Input (stdin, or any `Read`) belongs to the whole process, not to one
//! conversation: `serve` hands what one peer did not take to the next one.
//! So one thread, `duplex-input`, reads it into chunks and sends them down a
//! bounded channel; a conversation's sender thread borrows the [`Input`] and
//! takes chunks from it until its goodbye, and gives back what it did not
//! send.
//!
//! The reader thread is the one thread duplex detaches: a thread blocked in
//! `read` on stdin cannot be woken (rust-lang/rust#26446), so it lives until
//! the process exits. It holds nothing that needs closing, and once nobody
//! takes chunks any more it blocks on the full channel, which bounds memory.
//!
//! On Linux, stdin that is a pipe or a regular file can also be *lent* to a
//! raw conversation's sender, which then moves it to the socket inside the
//! kernel (`splice`, `sendfile`: see `conversation::zero_copy`). Exactly one
//! reader owns stdin at any moment, through a gate: the sender asks for
//! it, the reader thread finishes the read it is in (its chunk goes into the
//! channel) and then waits; the sender takes stdin only once every chunk
//! already read has been taken from the channel and sent, so the bytes
//! reach the peer in order, and gives it back when its conversation stops
//! sending, after which the reader thread reads ahead again for the next
//! peer.

use crate::lines::GoodbyeScanner;
use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded, never, select};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

/// How many bytes one read asks for: large reads make large writes, which is
/// most of a fast relay (1 MiB measured faster than 256 KiB on loopback:
/// fewer system calls and channel hand-overs per byte).
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// Chunks read ahead of the conversation: with [`CHUNK_SIZE`], at most a few
/// megabytes of input wait in memory.
const CHANNEL_CHUNKS: usize = 4;

/// A run of input bytes: `buf[start..end]`. The buffer goes back to the
/// reader thread when sent, so reads do not allocate.
#[derive(Debug)]
pub struct Chunk {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl From<Vec<u8>> for Chunk {
    fn from(buf: Vec<u8>) -> Self {
        Chunk::from_vec(buf)
    }
}

impl Chunk {
    /// A chunk holding these bytes.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        let end = buf.len();
        Chunk { buf, start: 0, end }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Splits off everything from `at` (relative to [`Chunk::bytes`]) into a
    /// new chunk, leaving the first `at` bytes here.
    fn split_off(&mut self, at: usize) -> Chunk {
        let tail = self.buf[self.start + at..self.end].to_vec();
        self.end = self.start + at;
        Chunk::from_vec(tail)
    }
}

/// What [`Input::next`] found.
#[derive(Debug)]
pub enum Next {
    /// More bytes.
    Chunk(Chunk),
    /// The input has ended (EOF, or an error that ends it).
    End,
    /// The conversation asked its sender to stop taking input.
    Stopped,
}

/// The process's input as conversations see it: what the process reads
/// belongs to every conversation in turn, and what one did not send stays
/// here for the next.
///
/// ```
/// use duplex::Input;
///
/// // From any reader: its end is the end of input (a goodbye).
/// let from_reader = Input::spawn(std::io::Cursor::new(b"hello\n".to_vec()))?;
/// // Fed by the caller, one chunk per read; dropping `lines` ends it.
/// let (lines, fed) = Input::channel();
/// lines.send(b"hi\n".to_vec().into()).map_err(|_| "input closed")?;
/// // Nothing at all: already ended, or never (for a server that only listens).
/// let (ended, never) = (Input::empty(), Input::silent());
/// # drop((from_reader, fed, ended, never));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Input {
    chunks: Receiver<Chunk>,
    recycle: Option<Sender<Vec<u8>>>,
    /// Bytes given back by the last conversation, taken before the channel,
    /// in order.
    leftover: VecDeque<Chunk>,
    ended: bool,
    /// The last conversation stopped at an empty line of ours.
    stopped_at_goodbye: bool,
    /// Chat-mode line state, kept across conversations so that a line split
    /// between two peers is still one line.
    pub(crate) scanner: GoodbyeScanner,
    /// Stdin, when it can be lent to a raw conversation's sender.
    gate: Option<Arc<Gate>>,
    /// The gate's word that its reader thread has stopped for us.
    parked: Receiver<()>,
}

/// What kind of descriptor a lendable input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// A pipe (or FIFO): `splice` moves it to the socket.
    Pipe,
    /// A regular file: `sendfile` moves it, from the shared file offset.
    File,
}

/// Who reads stdin now: the reader thread or a conversation's sender (see
/// the module docs). The reader thread starts a read only while nobody holds
/// the gate, and it is not "reading" again until its chunk is in the
/// channel, so a sender that takes the gate finds every byte read so far in
/// the channel.
#[derive(Debug)]
struct Gate {
    file: Arc<File>,
    kind: SourceKind,
    state: Mutex<GateState>,
    turn: Condvar,
    /// The reader thread stops for a sender that holds the gate: a sender
    /// that was waiting for its chunk may now take stdin.
    parked: Sender<()>,
}

#[derive(Debug, Default)]
struct GateState {
    /// A sender wants stdin or has it: the reader thread starts no read.
    held: bool,
    /// The reader thread is in a read, or handing its chunk over.
    reading: bool,
    /// Stdin has ended (whoever read it last saw its end).
    ended: bool,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        // The state is a few flags, meaningful even after a panic elsewhere.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The reader thread's turn: waits while a sender holds stdin. False
    /// once stdin has ended.
    fn start_read(&self) -> bool {
        let mut state = self.lock();
        if state.held && !state.ended {
            // A token already there says the same.
            let _ = self.parked.try_send(());
        }
        while state.held && !state.ended {
            state = self
                .turn
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.reading = !state.ended;
        state.reading
    }

    /// The reader thread's read is over, its chunk handed over; `ended`: it
    /// saw the end of stdin.
    fn end_read(&self, ended: bool) {
        let mut state = self.lock();
        state.reading = false;
        state.ended |= ended;
    }
}

/// Whether `file` can be lent, and as what.
#[cfg(target_os = "linux")]
fn source_kind(file: &File) -> Option<SourceKind> {
    use std::os::unix::fs::FileTypeExt;
    let meta = file.metadata().ok()?;
    if meta.file_type().is_fifo() {
        Some(SourceKind::Pipe)
    } else if meta.is_file() {
        Some(SourceKind::File)
    } else {
        // A terminal, a socket, /dev/null: read and copied.
        None
    }
}

/// Elsewhere nothing is lent.
#[cfg(not(target_os = "linux"))]
fn source_kind(_: &File) -> Option<SourceKind> {
    None
}

impl Input {
    /// Starts the `duplex-input` thread over `reader` (see the module docs for
    /// why it is detached).
    pub fn spawn<R: Read + Send + 'static>(reader: R) -> io::Result<Input> {
        Input::spawn_gated(reader, None)
    }

    /// [`Input::spawn`] over a file (stdin's descriptor). On Linux, a pipe
    /// or a regular file can then be lent to a raw conversation, which
    /// moves it to the socket without copying it through user space.
    pub fn spawn_file(file: File) -> io::Result<Input> {
        let Some(kind) = source_kind(&file) else {
            return Input::spawn(file);
        };
        let file = Arc::new(file);
        let (parked, parked_rx) = bounded(1);
        let gate = Arc::new(Gate {
            file: Arc::clone(&file),
            kind,
            state: Mutex::new(GateState::default()),
            turn: Condvar::new(),
            parked,
        });
        let mut input = Input::spawn_gated(file, Some(gate))?;
        input.parked = parked_rx;
        Ok(input)
    }

    fn spawn_gated<R: Read + Send + 'static>(
        reader: R,
        gate: Option<Arc<Gate>>,
    ) -> io::Result<Input> {
        let (chunk_tx, chunk_rx) = bounded(CHANNEL_CHUNKS);
        let (recycle_tx, recycle_rx) = bounded(CHANNEL_CHUNKS + 2);
        let thread_gate = gate.clone();
        thread::Builder::new()
            .name("duplex-input".into())
            .spawn(move || read_loop(reader, &chunk_tx, &recycle_rx, thread_gate.as_deref()))?;
        Ok(Input {
            chunks: chunk_rx,
            recycle: Some(recycle_tx),
            leftover: VecDeque::new(),
            ended: false,
            stopped_at_goodbye: false,
            scanner: GoodbyeScanner::new(),
            gate,
            parked: never(),
        })
    }

    /// Whether this input could be lent at all (see [`Input::lend`]).
    pub(crate) fn lendable(&self) -> bool {
        self.gate.is_some()
    }

    /// Stdin itself, for the sender to move to the socket in the kernel,
    /// once nothing read earlier is still waiting to be sent; until then
    /// `None` (the sender takes the waiting chunks first, and the reader
    /// thread starts no new read meanwhile). The sender gives it back with
    /// [`Input::give_back`] when it stops sending.
    pub(crate) fn lend(&mut self) -> Option<(Arc<File>, SourceKind)> {
        let gate = self.gate.as_ref()?;
        if self.ended || !self.leftover.is_empty() {
            return None;
        }
        let mut state = gate.lock();
        state.held = true;
        // The reader thread puts its chunk in the channel before it stops
        // "reading": with it not reading, the channel holds all it read.
        if state.reading || state.ended || !self.chunks.is_empty() {
            return None;
        }
        Some((Arc::clone(&gate.file), gate.kind))
    }

    /// The sender is done with stdin (or no longer wants it): the reader
    /// thread may read ahead again.
    pub(crate) fn give_back(&self) {
        if let Some(gate) = &self.gate {
            gate.lock().held = false;
            gate.turn.notify_all();
        }
    }

    /// The sender, holding stdin, found its end.
    pub(crate) fn lent_ended(&mut self) {
        self.ended = true;
        if let Some(gate) = &self.gate {
            gate.lock().ended = true;
            gate.turn.notify_all();
        }
    }

    /// Input that has already ended (`/dev/null`).
    pub fn empty() -> Input {
        let (_, chunks) = bounded(0);
        Input::from_receiver(chunks)
    }

    /// Input that never yields anything and never ends (`--recv-only`).
    pub fn silent() -> Input {
        Input::from_receiver(never())
    }

    /// Input fed by the caller: each chunk sent is one read, and dropping
    /// the sender is the end of input. For tests and embedding.
    pub fn channel() -> (Sender<Chunk>, Input) {
        let (tx, rx) = bounded(CHANNEL_CHUNKS);
        (tx, Input::from_receiver(rx))
    }

    fn from_receiver(chunks: Receiver<Chunk>) -> Input {
        Input {
            chunks,
            recycle: None,
            leftover: VecDeque::new(),
            ended: false,
            stopped_at_goodbye: false,
            scanner: GoodbyeScanner::new(),
            gate: None,
            parked: never(),
        }
    }

    /// The next chunk of input, waiting for it unless `stop` fires first.
    pub(crate) fn next(&mut self, stop: &Receiver<()>) -> Next {
        // `never()` does not fire, so there is always a `Next`.
        self.wait(stop, &never()).unwrap_or(Next::Stopped)
    }

    /// [`Input::next`] for a sender that wants stdin lent ([`Input::lend`]
    /// said not yet): `None` when the reader thread has stopped for it, so
    /// that it asks again, instead of waiting for a chunk that will not
    /// come.
    pub(crate) fn next_or_parked(&mut self, stop: &Receiver<()>) -> Option<Next> {
        let parked = self.parked.clone();
        self.wait(stop, &parked)
    }

    /// The next chunk, waiting until it comes, `stop` fires (`Stopped`) or
    /// `parked` does (`None`).
    fn wait(&mut self, stop: &Receiver<()>, parked: &Receiver<()>) -> Option<Next> {
        if let Some(chunk) = self.leftover.pop_front() {
            return Some(Next::Chunk(chunk));
        }
        if self.ended {
            return Some(Next::End);
        }
        // A stop that is already there wins over input that is also there:
        // after a peer's goodbye we send what we hold, not more.
        if let Err(TryRecvError::Disconnected) = stop.try_recv() {
            return Some(Next::Stopped);
        }
        select! {
            recv(stop) -> _ => Some(Next::Stopped),
            recv(self.chunks) -> chunk => Some(match chunk {
                Ok(chunk) => Next::Chunk(chunk),
                Err(_) => {
                    self.ended = true;
                    Next::End
                }
            }),
            recv(parked) -> _ => None,
        }
    }

    /// How many chunks are ready without waiting.
    pub(crate) fn ready(&self) -> usize {
        self.leftover.len() + self.chunks.len()
    }

    /// The next chunk if one is ready without waiting and `budget` allows;
    /// otherwise [`Next::End`]. After a stop, the sender still sends what had
    /// already been read when the stop came, but waits for nothing more.
    pub(crate) fn next_ready(&mut self, budget: &mut usize) -> Next {
        if *budget == 0 {
            return Next::End;
        }
        *budget -= 1;
        if let Some(chunk) = self.leftover.pop_front() {
            return Next::Chunk(chunk);
        }
        match self.chunks.try_recv() {
            Ok(chunk) => Next::Chunk(chunk),
            Err(TryRecvError::Disconnected) => {
                self.ended = true;
                Next::End
            }
            Err(TryRecvError::Empty) => Next::End,
        }
    }

    /// For a hub that waits on input together with other sources in its own
    /// `select!` (the room): the chunk given back earlier, if any, which
    /// comes first, and the channel the rest arrives on. A disconnected
    /// channel is the end of input.
    pub(crate) fn for_select(&mut self) -> (Option<Chunk>, Receiver<Chunk>) {
        let leftover = match self.leftover.len() {
            0 => None,
            1 => self.leftover.pop_front(),
            _ => {
                let mut all = Vec::new();
                for chunk in self.leftover.drain(..) {
                    all.extend_from_slice(chunk.bytes());
                }
                Some(Chunk::from_vec(all))
            }
        };
        (leftover, self.chunks.clone())
    }

    /// Puts `bytes` before everything else the input holds: they are the
    /// next bytes a conversation takes (`connect --name` sends its `/name`
    /// line first this way).
    pub(crate) fn push_front(&mut self, bytes: Vec<u8>) {
        self.leftover.push_front(Chunk::from_vec(bytes));
    }

    /// Gives back the part of `chunk` from `at` on, to be taken first next
    /// time; keeps the first `at` bytes in `chunk`.
    pub(crate) fn put_back_tail(&mut self, chunk: &mut Chunk, at: usize) {
        if at < chunk.bytes().len() {
            self.leftover.push_front(chunk.split_off(at));
        }
    }

    /// Takes up to `budget` chunks that are ready without waiting into the
    /// input's own queue (after what is already given back), so they are
    /// kept for the next conversation; returns how many bytes they hold.
    pub(crate) fn keep_ready(&mut self, budget: usize) -> usize {
        let mut bytes = 0;
        for _ in 0..budget {
            match self.chunks.try_recv() {
                Ok(chunk) => {
                    bytes += chunk.bytes().len();
                    self.leftover.push_back(chunk);
                }
                Err(TryRecvError::Disconnected) => {
                    self.ended = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        bytes
    }

    /// Returns a chunk's buffer to the reader thread for reuse.
    pub(crate) fn recycle(&self, chunk: Chunk) {
        if let Some(recycle) = &self.recycle {
            // A full recycle queue just means the buffer is freed instead.
            let _ = recycle.try_send(chunk.buf);
        }
    }

    /// The channel to wait on, beside others, for the input to end while no
    /// conversation runs; `None` once something is there to send, or the
    /// end came. What the wait receives goes to [`Input::watched`].
    pub(crate) fn end_watch(&self) -> Option<Receiver<Chunk>> {
        (self.leftover.is_empty() && !self.ended).then(|| self.chunks.clone())
    }

    /// What a wait on [`Input::end_watch`] received: a chunk is kept for the
    /// next conversation; a disconnect is the input's end.
    pub(crate) fn watched(&mut self, got: Result<Chunk, crossbeam_channel::RecvError>) {
        match got {
            Ok(chunk) => self.leftover.push_back(chunk),
            Err(_) => self.ended = true,
        }
    }

    /// True when the input has ended and nothing is left to send. Does not
    /// wait: what has already arrived is kept for the next conversation.
    pub(crate) fn is_exhausted(&mut self) -> bool {
        if !self.leftover.is_empty() {
            return false;
        }
        if !self.ended {
            match self.chunks.try_recv() {
                Ok(chunk) => self.leftover.push_back(chunk),
                Err(TryRecvError::Disconnected) => self.ended = true,
                Err(TryRecvError::Empty) => {}
            }
        }
        self.ended && self.leftover.is_empty()
    }

    /// A conversation starts taking input.
    pub(crate) fn begin(&mut self) {
        self.stopped_at_goodbye = false;
    }

    /// Records that a conversation's sending stopped at our empty line.
    pub(crate) fn mark_goodbye(&mut self) {
        self.stopped_at_goodbye = true;
    }

    /// Whether the last conversation's sending stopped at our empty line
    /// (so what is still pending was held back on purpose).
    pub fn stopped_at_goodbye(&self) -> bool {
        self.stopped_at_goodbye
    }

    /// How many bytes have been read but not sent (what a goodbye left
    /// behind), taking them out of the input. Counts what has been read by
    /// now: the reader thread may go on reading meanwhile, and an input
    /// without end (`/dev/zero`) must not keep this counting for ever.
    pub fn discard_pending(&mut self) -> usize {
        let mut count: usize = self.leftover.drain(..).map(|c| c.bytes().len()).sum();
        for _ in 0..self.chunks.len() {
            match self.chunks.try_recv() {
                Ok(chunk) => count += chunk.bytes().len(),
                Err(_) => break,
            }
        }
        count
    }
}

/// The body of the `duplex-input` thread. With a gate, each read (and the
/// hand-over of its chunk) happens only in the reader thread's turn.
fn read_loop<R: Read>(
    mut reader: R,
    chunks: &Sender<Chunk>,
    recycle: &Receiver<Vec<u8>>,
    gate: Option<&Gate>,
) {
    loop {
        if let Some(gate) = gate
            && !gate.start_read()
        {
            return;
        }
        let ended = read_one(&mut reader, chunks, recycle);
        if let Some(gate) = gate {
            gate.end_read(ended);
        }
        if ended {
            return;
        }
    }
}

/// One read into one chunk, handed over. True when the input has ended (or
/// nobody takes chunks any more).
fn read_one<R: Read>(reader: &mut R, chunks: &Sender<Chunk>, recycle: &Receiver<Vec<u8>>) -> bool {
    let mut buf = recycle.try_recv().unwrap_or_else(|_| vec![0; CHUNK_SIZE]);
    let read = loop {
        match reader.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    let n = match read {
        Ok(0) => return true,
        Ok(n) => n,
        // A closed descriptor, EIO from a vanished terminal, and the like:
        // SPEC says this is plain end of input.
        Err(error) => {
            tracing::debug!(%error, "input ended by an error");
            return true;
        }
    };
    let chunk = Chunk {
        buf,
        start: 0,
        end: n,
    };
    chunks.send(chunk).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_everything_then_ends() {
        let data: Vec<u8> = (0..CHUNK_SIZE * 3 + 17).map(|i| i as u8).collect();
        let mut input = Input::spawn(io::Cursor::new(data.clone())).unwrap();
        let stop = never();
        let mut got = Vec::new();
        loop {
            match input.next(&stop) {
                Next::Chunk(chunk) => {
                    got.extend_from_slice(chunk.bytes());
                    input.recycle(chunk);
                }
                Next::End => break,
                Next::Stopped => unreachable!("never() cannot fire"),
            }
        }
        assert_eq!(got, data);
        assert!(input.is_exhausted());
    }

    #[test]
    fn a_put_back_tail_comes_first() {
        let (tx, mut input) = Input::channel();
        tx.send(b"hello world".to_vec().into()).unwrap();
        drop(tx);
        let stop = never();
        let Next::Chunk(mut chunk) = input.next(&stop) else {
            panic!("expected a chunk")
        };
        input.put_back_tail(&mut chunk, 6);
        assert_eq!(chunk.bytes(), b"hello ");
        assert!(!input.is_exhausted());
        let Next::Chunk(tail) = input.next(&stop) else {
            panic!("expected the tail")
        };
        assert_eq!(tail.bytes(), b"world");
        assert!(matches!(input.next(&stop), Next::End));
    }

    #[test]
    fn a_fired_stop_wins() {
        let (tx, mut input) = Input::channel();
        tx.send(b"x".to_vec().into()).unwrap();
        let (stop_tx, stop) = bounded::<()>(0);
        drop(stop_tx);
        assert!(matches!(input.next(&stop), Next::Stopped));
        assert_eq!(input.discard_pending(), 1);
    }
}
