//! Where the peer's bytes go: the [`Output`] a conversation writes to, and
//! [`OutputThread`], the process's output thread over stdout.
//!
//! A write to stdout can block for good: a reader that stops reading
//! (`duplex connect … | sleep 8`), a terminal held by Ctrl-S. Nothing wakes a
//! thread blocked in `write(2)`, any more than one blocked in `read(2)` on
//! stdin (see [`crate::input`]), and a conversation's receiver stuck there
//! would keep the conversation, Ctrl-C and the idle timeout from ever ending.
//! So stdout gets its own thread, `duplex-output`, the mirror of the input
//! thread: the receiver hands it one chunk at a time and waits until it is
//! written, so a write still returns only once stdout has taken the bytes
//! (backpressure reaches the peer through TCP, and a closed stdout fails
//! the very write that met it), but that wait is one a [`Release`], or a
//! shutdown plus `--linger`, can cut short.
//!
//! The output thread is detached. When the process is done and stdout still
//! takes nothing, [`OutputThread::finish`] leaves the thread behind, blocked
//! in its write, rather than hang: it holds nothing but the descriptor, which
//! the process's exit closes. A reader that is merely slow is waited for as
//! long as it keeps taking bytes.

use crate::shutdown::Shutdown;
use crossbeam_channel::{Receiver, Select, Sender, bounded, never};
use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Where a conversation (or a room) shows what peers send.
///
/// Every `Write + Send` is one (a `Vec<u8>`, a file, a socket): its writes
/// are what they are. An output whose writes may wait for long, such as
/// [`OutputThread`], also gives each conversation a [`Release`], so that the
/// conversation can stop waiting for it when it ends.
pub trait Output: Send {
    /// Writes all of `bytes`, or fails.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Pushes out anything buffered.
    fn flush(&mut self) -> io::Result<()>;

    /// Writes and flushes all of `buf[..len]`, like [`Output::write_all`]
    /// then [`Output::flush`], but may keep `buf` itself and leave another
    /// buffer in its place (of any length, maybe empty), and may return
    /// while the bytes are still being written: the next write, or
    /// [`Output::flush`], waits for them and reports their failure. For a
    /// caller that refills its buffer anyway, that saves copying every
    /// byte and lets it refill while the output writes. The default copies
    /// and waits.
    fn write_buf(&mut self, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
        self.write_all(&buf[..len])?;
        self.flush()
    }

    /// A fresh [`Release`] for the conversation that starts now; it replaces
    /// the one given before. `None`: this output never waits for long.
    fn release(&mut self) -> Option<Release> {
        None
    }

    /// The file behind this output, when the raw relay may move the peer's
    /// bytes into it inside the kernel (Linux `splice`) instead of through
    /// [`Output::write_all`]; `None` (the default) when it may not. Asked
    /// once per conversation, after [`Output::release`].
    fn direct(&mut self) -> Option<Direct<'_>> {
        None
    }
}

/// An output's file as the raw relay writes it directly (see
/// [`Output::direct`]). Only [`OutputThread`] makes one.
#[derive(Debug)]
pub struct Direct<'a> {
    /// The file: stdout's duplicate.
    pub(crate) file: &'a File,
    /// Disconnected when the conversation's [`Release`] is dropped: a wait
    /// for the file to take bytes ends then.
    pub(crate) released: &'a Receiver<()>,
}

impl<W: Write + Send + ?Sized> Output for W {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Write::flush(self)
    }
}

/// Dropping it releases the output it came from: a write waiting for the
/// output to take bytes, and every later one that would wait, fails at once
/// with [`io::ErrorKind::BrokenPipe`], as if the output's reader had gone.
/// A conversation holds one and drops it on every way out, so its receiver
/// can always be joined.
#[derive(Debug)]
pub struct Release {
    _fire: Sender<()>,
}

/// The output thread writes at most this much per call, so that a slow
/// reader's progress is seen between calls (a blocking pipe write returns
/// only when all of it is in): about a pipe's capacity.
const WRITE_PIECE: usize = 64 * 1024;

/// [`OutputThread::finish`] waits at least this long for an output that has
/// stopped taking bytes, even with `--linger 0`, so a fast reader that is
/// mid-write is not cut.
const MIN_PATIENCE: Duration = Duration::from_millis(100);

/// What the output thread tells the writers about its progress.
#[derive(Debug)]
struct Shared {
    start: Instant,
    /// The thread holds a chunk it has not written yet.
    busy: AtomicBool,
    /// When it last took a chunk or finished a piece (nanos since `start`).
    progress: AtomicU64,
}

impl Shared {
    fn progressed(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.progress.store(nanos, Ordering::Relaxed);
    }

    fn last_progress(&self) -> Instant {
        self.start + Duration::from_nanos(self.progress.load(Ordering::Relaxed))
    }
}

/// The thread's answer to one chunk: its buffer back, for reuse, or why the
/// output failed.
type Ack = io::Result<Vec<u8>>;

/// What the thread writes: the first `len` bytes of the buffer.
type Chunk = (Vec<u8>, usize);

/// A writer (stdout) behind the detached `duplex-output` thread: a writer
/// that may block for good (a pipe nobody reads, a terminal held by
/// Ctrl-S) can then never keep a conversation, a shutdown or the idle
/// timeout from ending.
///
/// ```
/// use duplex::{Output, OutputThread, Shutdown};
/// use std::time::Duration;
///
/// let mut output = OutputThread::spawn(std::io::sink(), Shutdown::never(), Duration::from_millis(100))?;
/// output.write_all(b"shown\n")?;
/// output.flush()?;
/// output.finish();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct OutputThread {
    chunks: Option<Sender<Chunk>>,
    acks: Receiver<Ack>,
    /// A chunk was handed over and its answer has not come yet (its write
    /// was given up on).
    in_flight: bool,
    /// A buffer to copy the next chunk into, or to give a caller of
    /// [`Output::write_buf`] in place of the one it hands over.
    spare: Vec<u8>,
    /// Why the output failed, once it has: every later write fails the same.
    failure: Option<(io::ErrorKind, String)>,
    shared: Arc<Shared>,
    /// Disconnected when the thread is done.
    done: Receiver<()>,
    /// The current conversation's release (see [`Release`]).
    released: Receiver<()>,
    shutdown: Shutdown,
    linger: Duration,
    /// When a write first saw the shutdown.
    interrupted_at: Option<Instant>,
    /// The file the thread writes, if the raw relay may write it directly.
    direct: Option<Arc<File>>,
}

/// Whether the raw relay may splice into `file` directly: a regular file, a
/// pipe (`SPLICE_F_NONBLOCK` makes its waits ours, bounded by `poll`), or
/// `/dev/null`. Not a socket or another device (a socketpair stdout, say):
/// a splice into it blocks on the file's own mode, where no stop can reach
/// it, so those keep the output thread, which a stop can always leave.
fn splice_never_blocks_on(file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        /// `/dev/null`'s device number on Linux (major 1, minor 3).
        const DEV_NULL: u64 = (1 << 8) | 3;
        file.metadata().is_ok_and(|meta| {
            let kind = meta.file_type();
            kind.is_file() || kind.is_fifo() || (kind.is_char_device() && meta.rdev() == DEV_NULL)
        })
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        false
    }
}

impl OutputThread {
    /// Starts the `duplex-output` thread over `writer`. After `shutdown`
    /// fires, a write waits at most `linger` (SPEC: one Ctrl-C ends
    /// everything within `--linger`, whatever stdout does).
    pub fn spawn<W: Write + Send + 'static>(
        writer: W,
        shutdown: Shutdown,
        linger: Duration,
    ) -> io::Result<OutputThread> {
        let (chunk_tx, chunk_rx) = bounded(1);
        let (ack_tx, acks) = bounded(1);
        let (done_tx, done) = bounded::<()>(0);
        let shared = Arc::new(Shared {
            start: Instant::now(),
            busy: AtomicBool::new(false),
            progress: AtomicU64::new(0),
        });
        let thread_shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("duplex-output".into())
            .spawn(move || {
                write_loop(writer, &chunk_rx, &ack_tx, &thread_shared);
                drop(done_tx);
            })?;
        Ok(OutputThread {
            chunks: Some(chunk_tx),
            acks,
            in_flight: false,
            spare: Vec::new(),
            failure: None,
            shared,
            done,
            released: never(),
            shutdown,
            linger,
            interrupted_at: None,
            direct: None,
        })
    }

    /// [`OutputThread::spawn`] over a file (stdout's duplicate, not a
    /// terminal) that a raw conversation may also write directly, in the
    /// kernel, while the thread has nothing in hand (Linux; see
    /// [`Output::direct`]).
    pub fn spawn_file(
        file: File,
        shutdown: Shutdown,
        linger: Duration,
    ) -> io::Result<OutputThread> {
        let direct = cfg!(target_os = "linux") && splice_never_blocks_on(&file);
        let file = Arc::new(file);
        let mut thread = OutputThread::spawn(Arc::clone(&file), shutdown, linger)?;
        if direct {
            thread.direct = Some(file);
        }
        Ok(thread)
    }

    fn failed(&self) -> Option<io::Error> {
        self.failure
            .as_ref()
            .map(|(kind, text)| io::Error::new(*kind, text.clone()))
    }

    /// Waits for the answer to the chunk in flight: until it comes, the
    /// release fires, or a shutdown's `--linger` has passed.
    fn wait_ack(&mut self) -> io::Result<()> {
        let stuck = || io::Error::new(io::ErrorKind::BrokenPipe, "the output stopped taking bytes");
        loop {
            let interrupt = match self.interrupted_at {
                None => self.shutdown.receiver().clone(),
                Some(_) => never(),
            };
            let mut select = Select::new();
            let ack = select.recv(&self.acks);
            let released = select.recv(&self.released);
            let interrupted = select.recv(&interrupt);
            let oper = match self.interrupted_at {
                None => select.select(),
                Some(at) => match select.select_deadline(at + self.linger) {
                    Ok(oper) => oper,
                    Err(_) => return Err(stuck()),
                },
            };
            match oper.index() {
                i if i == ack => {
                    self.in_flight = false;
                    return match oper.recv(&self.acks) {
                        Ok(Ok(buf)) => {
                            self.spare = buf;
                            Ok(())
                        }
                        Ok(Err(error)) => {
                            self.failure = Some((error.kind(), error.to_string()));
                            Err(error)
                        }
                        Err(_) => {
                            let error =
                                io::Error::new(io::ErrorKind::BrokenPipe, "the output has ended");
                            self.failure = Some((error.kind(), error.to_string()));
                            Err(error)
                        }
                    };
                }
                i if i == released => {
                    let _ = oper.recv(&self.released);
                    return Err(stuck());
                }
                i => {
                    debug_assert_eq!(i, interrupted);
                    let _ = oper.recv(&interrupt);
                    self.interrupted_at = Some(Instant::now());
                }
            }
        }
    }

    /// Ends the output. A chunk still being written is waited for as long
    /// as the output keeps taking bytes; an output that takes nothing for
    /// `--linger` (at least 0.1 s) is left behind with what it
    /// holds, and after a shutdown, so is one still busy `--linger` on.
    pub fn finish(mut self) {
        drop(self.chunks.take());
        let patience = self.linger.max(MIN_PATIENCE);
        let started = Instant::now();
        let mut hard = self.interrupted_at.map(|at| at + self.linger);
        let mut interrupt = self.shutdown.receiver().clone();
        loop {
            let since = if self.shared.busy.load(Ordering::Relaxed) {
                self.shared.last_progress().max(started)
            } else {
                started
            };
            let stalled = since + patience;
            let deadline = hard.map_or(stalled, |hard| hard.min(stalled));
            let mut select = Select::new();
            let done = select.recv(&self.done);
            let interrupted = select.recv(&interrupt);
            let selected = match select.select_deadline(deadline) {
                Ok(oper) if oper.index() == done => {
                    let _ = oper.recv(&self.done);
                    return;
                }
                Ok(oper) => {
                    debug_assert_eq!(oper.index(), interrupted);
                    let _ = oper.recv(&interrupt);
                    true
                }
                Err(_) => false,
            };
            if selected {
                interrupt = never();
                hard.get_or_insert(Instant::now() + self.linger);
                continue;
            }
            // Progress may have come meanwhile: look again.
            let now = Instant::now();
            let since = if self.shared.busy.load(Ordering::Relaxed) {
                self.shared.last_progress().max(started)
            } else {
                started
            };
            if hard.is_some_and(|hard| now >= hard) || now >= since + patience {
                tracing::debug!("the output takes nothing: leaving its thread behind");
                return;
            }
        }
    }
}

impl OutputThread {
    /// Whether a new chunk may be handed over: the output has not failed or
    /// ended, and a chunk given up on earlier (still being written) is done.
    fn ready(&mut self) -> io::Result<()> {
        if let Some(error) = self.failed() {
            return Err(error);
        }
        // A chunk given up on earlier is still being written: it goes first.
        if self.in_flight {
            self.wait_ack()?;
        }
        match self.chunks {
            Some(_) => Ok(()),
            None => Err(ended()),
        }
    }

    /// Hands the first `len` bytes of `chunk` to the thread (idle once
    /// [`OutputThread::ready`]), without waiting for them to be written.
    fn send_chunk(&mut self, chunk: Vec<u8>, len: usize) -> io::Result<()> {
        let Some(chunks) = &self.chunks else {
            return Err(ended());
        };
        // The thread is idle (nothing in flight): this does not wait.
        if chunks.send((chunk, len)).is_err() {
            return Err(ended());
        }
        self.in_flight = true;
        Ok(())
    }
}

fn ended() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the output has ended")
}

impl Output for OutputThread {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.ready()?;
        let mut chunk = std::mem::take(&mut self.spare);
        chunk.clear();
        chunk.extend_from_slice(bytes);
        // Written before it returns, as a write is.
        self.send_chunk(chunk, bytes.len())?;
        self.wait_ack()
    }

    /// Hands `buf` itself to the thread and gives the caller the spare
    /// buffer (the one the thread last gave back) instead: no copy. Returns
    /// once the thread has the chunk; the next write or flush waits for it,
    /// so at most one chunk is ever being written while the caller fills
    /// the other buffer.
    fn write_buf(&mut self, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
        let len = len.min(buf.len());
        if len == 0 {
            return self.flush();
        }
        self.ready()?;
        let chunk = std::mem::replace(buf, std::mem::take(&mut self.spare));
        self.send_chunk(chunk, len)
    }

    /// Waits for a chunk still being written ([`Output::write_buf`] does
    /// not wait; every other write does).
    fn flush(&mut self) -> io::Result<()> {
        if self.in_flight {
            self.wait_ack()?;
        }
        match self.failed() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn release(&mut self) -> Option<Release> {
        let (fire, released) = bounded(0);
        self.released = released;
        Some(Release { _fire: fire })
    }

    /// Only while the thread holds no chunk: what it holds goes first.
    fn direct(&mut self) -> Option<Direct<'_>> {
        if self.in_flight || self.failure.is_some() || self.chunks.is_none() {
            return None;
        }
        Some(Direct {
            file: self.direct.as_ref()?,
            released: &self.released,
        })
    }
}

/// The body of `duplex-output`.
fn write_loop<W: Write>(
    mut writer: W,
    chunks: &Receiver<Chunk>,
    acks: &Sender<Ack>,
    shared: &Shared,
) {
    for (chunk, len) in chunks {
        shared.busy.store(true, Ordering::Relaxed);
        shared.progressed();
        let mut written = Ok(());
        for piece in chunk[..len.min(chunk.len())].chunks(WRITE_PIECE) {
            written = writer.write_all(piece).and_then(|()| writer.flush());
            if written.is_err() {
                break;
            }
            shared.progressed();
        }
        shared.busy.store(false, Ordering::Relaxed);
        let failed = written.is_err();
        // A writer that gave up on this chunk may not be waiting any more.
        let _ = acks.try_send(written.map(|()| chunk));
        if failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::shutdown_channel;
    use std::sync::Mutex;

    /// A writer that takes nothing until told to, then everything.
    struct Gate(Receiver<()>, Arc<Mutex<Vec<u8>>>);

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            self.1.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// An output thread on a gate that is open: it takes everything, into
    /// the returned buffer.
    fn open_output() -> (OutputThread, Arc<Mutex<Vec<u8>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let (open_tx, open) = bounded(0);
        drop(open_tx);
        let out = OutputThread::spawn(
            Gate(open, Arc::clone(&got)),
            Shutdown::never(),
            Duration::ZERO,
        )
        .unwrap();
        (out, got)
    }

    #[test]
    fn handed_over_buffers_are_written_in_order_and_swapped_not_copied() {
        let (mut out, got) = open_output();
        let mut expected = Vec::new();
        let mut buf = vec![0u8; 4096];
        for i in 0..50u8 {
            if buf.len() < 4096 {
                buf.resize(4096, 0);
            }
            buf.fill(i);
            let before = buf.as_ptr();
            out.write_buf(&mut buf, 1000 + usize::from(i)).unwrap();
            assert_ne!(buf.as_ptr(), before, "the buffer was copied, not kept");
            expected.extend(std::iter::repeat_n(i, 1000 + usize::from(i)));
            Output::write_all(&mut out, b"|").unwrap();
            expected.push(b'|');
        }
        // Past the end of the buffer: only what is there.
        let mut short = vec![9u8; 3];
        out.write_buf(&mut short, 10).unwrap();
        expected.extend([9, 9, 9]);
        out.finish();
        assert_eq!(*got.lock().unwrap(), expected);
    }

    #[test]
    fn a_failure_of_a_handed_over_buffer_is_reported_by_the_flush() {
        struct Failing;
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = OutputThread::spawn(Failing, Shutdown::never(), Duration::ZERO).unwrap();
        let mut buf = vec![1u8; 100];
        // It may return before the write fails; the flush may not.
        let _ = out.write_buf(&mut buf, 100);
        let error = out.flush().unwrap_err();
        assert!(error.to_string().contains("disk full"), "{error}");
        assert!(Output::write_all(&mut out, b"x").is_err());
        out.finish();
    }

    #[test]
    fn writes_arrive_in_order_and_finish_waits_for_them() {
        let (mut out, got) = open_output();
        for i in 0..100u8 {
            Output::write_all(&mut out, &[i; 1000]).unwrap();
        }
        out.finish();
        let expected: Vec<u8> = (0..100u8).flat_map(|i| [i; 1000]).collect();
        assert_eq!(*got.lock().unwrap(), expected);
    }

    #[test]
    fn a_release_frees_a_write_waiting_on_a_stuck_output() {
        let (_gate, shut) = bounded::<()>(0);
        let mut out = OutputThread::spawn(
            Gate(shut, Arc::new(Mutex::new(Vec::new()))),
            Shutdown::never(),
            Duration::from_millis(100),
        )
        .unwrap();
        let release = out.release().unwrap();
        let writer = thread::spawn(move || {
            let mut result = Ok(());
            for _ in 0..3 {
                result = Output::write_all(&mut out, b"stuck");
                if result.is_err() {
                    break;
                }
            }
            (result, out)
        });
        drop(release);
        let (result, out) = writer.join().unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        let started = Instant::now();
        out.finish();
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn after_a_shutdown_a_stuck_output_waits_only_the_linger() {
        let (_gate, shut) = bounded::<()>(0);
        let (trigger, shutdown) = shutdown_channel();
        let mut out = OutputThread::spawn(
            Gate(shut, Arc::new(Mutex::new(Vec::new()))),
            shutdown,
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(trigger.fire());
        let started = Instant::now();
        let mut result = Ok(());
        for _ in 0..3 {
            result = Output::write_all(&mut out, b"stuck");
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err());
        out.finish();
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
