//! The raw relay without copies through user space (Linux): stdin → socket
//! and socket → stdout inside the kernel, for plain TCP only (TLS and
//! `--secret` must see every byte to make their records; chat mode must
//! scan every byte for the goodbye line).
//!
//! - **Sending** (the `peer-send` thread, once [`Input::lend`] hands it
//!   stdin): a pipe is `splice`d into the socket, a regular file is
//!   `sendfile`d from its shared offset.
//! - **Receiving** (the `peer-recv` thread, given [`Output::direct`]): the
//!   socket is `splice`d into a pipe of our own, and that pipe into stdout
//!   (a file, a pipe, `/dev/null`). Our pipe is empty before every socket
//!   splice, so that splice never meets a full pipe. (Splicing the socket
//!   straight into a stdout pipe, one call fewer, was tried: on Linux 6.18
//!   a transfer stalled with its last bytes never reaching the reader.)
//!
//! **The overlap is kept**: the two directions are still the two pump
//! threads of [`super::hold`], each moving its own direction with its own
//! system calls, so neither waits for the other; each call moves at most
//! [`PIECE`] bytes, so the coordinator's stop and the clock see progress
//! between calls. (What an earlier try lost was this: it moved a file in
//! one long `sendfile` on one thread.)
//!
//! **The ways out**: every splice names `SPLICE_F_NONBLOCK`, so no call
//! waits on a pipe. A call that would wait returns `EAGAIN`, and the pump
//! waits in `poll(2)` for at most [`POLL_WAIT`] at a time, looking between
//! polls at what ends the wait: the sender at its stop channel, the
//! receiver at the output's release. The socket side of a call may block
//! (our sockets are blocking), exactly as a `read` or `write` on it does,
//! and the conversation's `shutdown(Both)` wakes it, as it wakes those.
//! The stdout side is only ever a regular file, a pipe or `/dev/null`
//! (`OutputThread::spawn_file` decides): a splice into a socket or another
//! device would block on that file's own mode, where no stop reaches it.
//!
//! **Falling back**: `EINVAL`, `ENOSYS` and `EOPNOTSUPP` mean "not for
//! these descriptors" (an `O_APPEND` stdout, an old kernel, an odd file
//! system); the pump then goes on with its read/write loop, with no byte
//! lost: a splice moves only what it reports, and what our own pipe holds
//! is read out and written through the output first.

use super::Clock;
#[cfg(doc)]
use crate::input::Input;
use crate::input::SourceKind;
use crate::output::Direct;
#[cfg(doc)]
use crate::output::Output;
use crossbeam_channel::{Receiver, TryRecvError};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
use std::fs::File;
use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// The most one call moves: large calls are few calls, and a megabyte is
/// what `/proc/sys/fs/pipe-max-size` lets anyone give a pipe by default.
pub(super) const PIECE: usize = 1024 * 1024;

/// The longest a pump waits in one `poll` before it looks again at what
/// would end its wait.
const POLL_WAIT: Duration = Duration::from_millis(50);

const FLAGS: SpliceFlags = SpliceFlags::MOVE.union(SpliceFlags::NONBLOCK);

/// "Not for these descriptors": go on with read/write.
fn unsupported(errno: Errno) -> bool {
    matches!(errno, Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP)
}

/// Waits until `fd` is ready for `events`, for at most [`POLL_WAIT`].
/// Interrupted polls are simply over early.
fn wait_for(fd: impl AsFd, events: PollFlags) -> io::Result<()> {
    let timeout = Timespec {
        tv_sec: POLL_WAIT.as_secs().try_into().unwrap_or(0),
        tv_nsec: POLL_WAIT.subsec_nanos().into(),
    };
    let mut fds = [PollFd::new(&fd, events)];
    match poll(&mut fds, Some(&timeout)) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// Lets the pipe `fd` hold [`PIECE`] bytes, if the system allows: a pipe's
/// default 64 KiB makes 16 times as many calls, and as many wake-ups of
/// the process on its other end. The new size, or `None` (then it is as
/// it was; any size works).
fn grow(fd: impl AsFd) -> Option<usize> {
    fcntl_setpipe_size(fd, PIECE).ok()
}

fn fired(stop: &Receiver<()>) -> bool {
    matches!(stop.try_recv(), Err(TryRecvError::Disconnected))
}

/// How the sender's kernel path ended.
#[derive(Debug)]
pub(super) enum SendEnd {
    /// Stdin ended: all of it is in the socket.
    EndOfInput,
    /// The coordinator stopped the sender.
    Stopped,
    /// Not for these descriptors: send the rest with read/write.
    Unsupported,
}

/// Moves `source` (stdin, lent by the input) into `socket` until stdin
/// ends, `stop` fires or the socket fails.
pub(super) fn send(
    source: &File,
    kind: SourceKind,
    socket: &TcpStream,
    stop: &Receiver<()>,
    clock: &Clock,
) -> io::Result<SendEnd> {
    if kind == SourceKind::Pipe {
        grow(source);
    }
    // When the socket last took bytes without keeping us waiting.
    let mut last_quick = Instant::now();
    loop {
        if fired(stop) {
            return Ok(SendEnd::Stopped);
        }
        let called = Instant::now();
        let moved = match kind {
            SourceKind::Pipe => splice(source, None, socket, None, PIECE, FLAGS),
            SourceKind::File => rustix::fs::sendfile(socket, source, None, PIECE),
        };
        match moved {
            Ok(0) => return Ok(SendEnd::EndOfInput),
            Ok(n) => {
                clock.sent(n);
                if called.elapsed() < QUICK {
                    last_quick = Instant::now();
                }
            }
            Err(Errno::PIPE) => return Err(broken_pipe(socket, last_quick)),
            // The pipe is empty for now (a file never is).
            Err(Errno::AGAIN) => match kind {
                SourceKind::Pipe => wait_for(source, PollFlags::IN)?,
                SourceKind::File => wait_for(socket, PollFlags::OUT)?,
            },
            Err(Errno::INTR) => {}
            Err(errno) if unsupported(errno) => {
                tracing::debug!(%errno, "no zero-copy send here: copying");
                return Ok(SendEnd::Unsupported);
            }
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// A call that returns within this did not wait for the peer.
const QUICK: Duration = Duration::from_millis(100);

/// What an `EPIPE` from `splice`/`sendfile` into the socket means.
///
/// A socket that fails (a reset, or the user timeout of `--keepalive`:
/// "peer vanished") holds its error for the first call that sees it; but a
/// `splice` or `sendfile` that had already moved some bytes in the same
/// call returns their count, and the error it took is lost: the next call
/// only says `EPIPE`. (`write` keeps the error for the next call instead.)
/// So: when the socket had kept us waiting for at least half its user
/// timeout, it timed out — the peer vanished; otherwise it was reset.
/// Either way the conversation fails (SPEC, "Connections": a vanished peer
/// is treated like a reset); only the words differ.
fn broken_pipe(socket: &TcpStream, last_quick: Instant) -> io::Error {
    if let Ok(Some(error)) = socket.take_error() {
        return error;
    }
    let user_timeout = socket2::SockRef::from(socket).tcp_user_timeout();
    if let Ok(Some(user_timeout)) = user_timeout
        && last_quick.elapsed() >= user_timeout / 2
    {
        io::ErrorKind::TimedOut.into()
    } else {
        io::ErrorKind::ConnectionReset.into()
    }
}

/// How the receiver's kernel path ended.
#[derive(Debug)]
pub(super) enum RecvEnd {
    /// The peer's EOF.
    PeerClosed,
    /// The output's reader went away, or the conversation released the
    /// output: the receiver discards from now on.
    OutputClosed,
    /// Not for these descriptors: receive the rest with read/write, after
    /// `held`, what our own pipe held then.
    Unsupported { held: Vec<u8> },
}

/// Why the receiver's kernel path failed.
#[derive(Debug)]
pub(super) enum RecvError {
    Socket(io::Error),
    Output(io::Error),
}

/// Moves what the peer sends from `socket` into the output's file until
/// the peer's EOF, the output closes, or a side fails.
pub(super) fn receive(
    socket: &TcpStream,
    out: &Direct<'_>,
    clock: &Clock,
) -> Result<RecvEnd, RecvError> {
    let (pipe_out, pipe_in) = match pipe_with(PipeFlags::CLOEXEC) {
        Ok(pair) => pair,
        Err(errno) => {
            tracing::debug!(%errno, "no pipe for a zero-copy receive: copying");
            return Ok(RecvEnd::Unsupported { held: Vec::new() });
        }
    };
    let room = grow(&pipe_in).unwrap_or(64 * 1024);
    // A stdout pipe too: it is shared with the reader, but its size is
    // only how much it may hold (not a file or /dev/null: that fails).
    grow(out.file);
    loop {
        // Our pipe is empty here, so only the socket can make this wait.
        let n = match splice(socket, None, &pipe_in, None, room, FLAGS) {
            Ok(0) => return Ok(RecvEnd::PeerClosed),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(errno) if unsupported(errno) => {
                tracing::debug!(%errno, "no zero-copy receive here: copying");
                return Ok(RecvEnd::Unsupported { held: Vec::new() });
            }
            Err(errno) => return Err(RecvError::Socket(errno.into())),
        };
        clock.received(n);
        clock.showing();
        let drained = drain(&pipe_out, n, out);
        clock.shown();
        match drained {
            Ok(None) => {}
            Ok(Some(end)) => return Ok(end),
            Err(error) => return Err(RecvError::Output(error)),
        }
    }
}

/// Moves the `n` bytes our pipe holds into the output's file. `Some`: the
/// receive ends (the output closed, or takes no splices: then with what the
/// pipe still held).
fn drain(pipe: &OwnedFd, mut n: usize, out: &Direct<'_>) -> io::Result<Option<RecvEnd>> {
    while n > 0 {
        match splice(pipe, None, out.file, None, n, FLAGS) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(m) => n -= m,
            Err(Errno::AGAIN) => {
                if fired(out.released) {
                    return Ok(Some(RecvEnd::OutputClosed));
                }
                wait_for(out.file, PollFlags::OUT)?;
            }
            Err(Errno::INTR) => {}
            Err(Errno::PIPE) => return Ok(Some(RecvEnd::OutputClosed)),
            Err(errno) if unsupported(errno) => {
                tracing::debug!(%errno, "the output takes no splices: copying");
                let mut held = vec![0; n];
                File::from(pipe.try_clone()?).read_exact(&mut held)?;
                return Ok(Some(RecvEnd::Unsupported { held }));
            }
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(None)
}
