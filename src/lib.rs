//! `duplex` is a threaded, full-duplex TCP chat tool: a friendlier, safer
//! netcat for chatting, scripting and loopback tests. This crate is the
//! engine; the `duplex` binary is a thin layer over [`run`].
//!
//! One thread reads the process's input ([`Input`]); every conversation runs a
//! sender thread and a receiver thread linked to a coordinator by bounded
//! channels ([`conversation`]). The engine takes any reader and writer, so a
//! server and a client can talk in one process.
//!
//! # Quick start
//!
//! A server and a client in one process over `127.0.0.1:0` (the same as
//! `cargo run --example loopback`):
//!
//! ```
//! use duplex::{Console, ConversationOptions, Ending, Input, conversation};
//! use std::net::{TcpListener, TcpStream};
//! use std::thread;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let options = ConversationOptions::default();
//!
//! let server = thread::spawn({
//!     let options = options.clone();
//!     move || -> duplex::Result<Vec<u8>> {
//!         let (stream, peer) = listener.accept().map_err(duplex::Error::Accept)?;
//!         let mut heard = Vec::new();
//!         // The server has nothing to say; it shows what it hears.
//!         let mut input = Input::silent();
//!         conversation::run(stream, peer, &options, &mut Console::new(&mut input, &mut heard))?;
//!         Ok(heard)
//!     }
//! });
//!
//! // The client says one line, then goodbye (an empty line).
//! let (lines, mut input) = Input::channel();
//! lines.send(b"hello\n\n".to_vec().into())?;
//! let stream = TcpStream::connect(addr)?;
//! let mut shown = Vec::new();
//! let ending = conversation::run(stream, addr, &options, &mut Console::new(&mut input, &mut shown))?;
//!
//! assert_eq!(ending, Ending::Goodbye);
//! assert_eq!(server.join().map_err(|_| "server panicked")??, b"hello\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The public API
//!
//! Everything public is listed here; each entry point has a tested example
//! on its own page.
//!
//! Entry points, each taking a [`Console`]:
//! - [`serve`] — `duplex serve`: listen, and hold conversations one at a
//!   time, or run a room when [`ServeOptions::room`] is set (example there,
//!   on [`RoomOptions`]).
//! - [`connect`] — `duplex connect`: dial, and hold one conversation.
//! - [`conversation::run`] — one conversation on a `TcpStream` you made
//!   yourself (the quick start above).
//! - [`run_on`] — a [`Command`] (`serve` or `connect`), as the binary does,
//!   over any console; [`run`] — the same with the process's stdin and
//!   stdout. [`stdin_is_terminal`] feeds
//!   [`ConversationOptions::input_is_terminal`].
//!
//! Options (plain structs with `Default`s, no command-line types):
//! [`Command`], [`ServeOptions`], [`ConnectOptions`], [`RoomOptions`],
//! [`ConversationOptions`], [`Mode`], [`NetOptions`], [`Family`],
//! [`Access`]; how the bytes cross the wire: [`transport::Security`]
//! (plain, or `--secret` with a [`transport::SecretSetup`] of a
//! [`transport::secret::Secret`], whose [`transport::secret::words`] say
//! where words come from), TLS with [`transport::tls::Identity`] and
//! [`transport::tls::Verification`] (pins are
//! [`transport::tls::Fingerprint`]s), and the opaque
//! [`transport::TlsSetup`].
//!
//! The local end of a conversation: [`Console`] holds the [`Input`] (from
//! any reader, a channel of [`Chunk`]s, or none), the [`Output`] (any
//! `Write + Send`, or an [`OutputThread`] for a writer that may block, with
//! its [`Release`]; over a file or pipe, its [`Direct`] end is where the raw
//! relay splices on Linux), the [`Shutdown`] (fired by a [`ShutdownTrigger`] from
//! [`shutdown_channel`]) and the [`Status`] lines (to a [`StatusSink`], with
//! a [`Presence`] callback).
//!
//! Outcomes: a normal end is an [`Ending`]; a failure is an [`Error`]
//! ([`Result`]), which may carry a [`transport::tls::TlsError`] or a
//! [`transport::secret::HandshakeError`].
//!
//! Rules callers may want on their own: the terminal-safety renderer,
//! [`render::render`], [`render::Renderer`] for a stream and
//! [`render::RenderingWriter`] for a writer ([`render::TAB_STOP`]); the
//! room's [`room::MAX_LINE`] and [`room::is_valid_name`]; the secret's
//! [`transport::secret::GUESSES`] budget.
//!
//! Progress of a transfer: [`progress::Traffic`] reads a conversation's
//! byte counters from any thread, a [`progress::Watch`] (set as
//! [`ConversationOptions::watch`] through a [`progress::Watcher`]) is told
//! when each conversation starts and ends, and [`progress::Summary`] is the
//! binary's end-of-transfer line, with its units ([`progress::Bytes`],
//! [`progress::Rate`], [`progress::Elapsed`], [`progress::Left`]).
//!
//! # Features
//!
//! `cli` (default) builds the `duplex` binary: the command line and the
//! terminal view, with their terminal-only dependencies.
//! `duplex = { version = "…", default-features = false }` builds the engine
//! alone. `fuzzing` (off) exposes hidden property checks for `fuzz/`; it is
//! not API.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connect;
mod console;
pub mod conversation;
mod ending;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod input;
mod lines;
mod net;
mod options;
mod output;
pub mod progress;
pub mod render;
pub mod room;
mod serve;
mod shutdown;
mod status;
pub mod transport;

pub use connect::connect;
pub use console::Console;
pub use ending::Ending;
pub use error::{Error, Result};
pub use input::{Chunk, Input};
pub use options::{
    Access, Command, ConnectOptions, ConversationOptions, Family, Mode, NetOptions, RoomOptions,
    ServeOptions,
};
pub use output::{Direct, Output, OutputThread, Release};
pub use serve::serve;
pub use shutdown::{Shutdown, ShutdownTrigger, shutdown_channel};
pub use status::{Presence, Status, StatusSink};

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;

/// Runs a command with the process's stdin and stdout, as the binary does.
/// When stdout is a terminal, what the peer sends is shown through the
/// [`render`] rule; otherwise stdout gets exactly the peer's bytes.
/// `--recv-only` ([`ConversationOptions::recv_only`]) never reads stdin.
///
/// It reads this process's stdin, so the example is only compiled; see
/// [`run_on`] for one that runs.
///
/// ```no_run
/// use duplex::{Command, ConnectOptions, Status, shutdown_channel};
///
/// let (trigger, shutdown) = shutdown_channel();
/// // Keep `trigger` where Ctrl-C can fire it (the binary uses `ctrlc`).
/// let command = Command::Connect(ConnectOptions::new("localhost", 9000));
/// let ending = duplex::run(&command, &shutdown, &Status::stderr(false))?;
/// println!("ended: {ending}");
/// # drop(trigger);
/// # Ok::<(), duplex::Error>(())
/// ```
pub fn run(command: &Command, shutdown: &Shutdown, status: &Status) -> Result<Ending> {
    let mut input = if command.conversation().recv_only {
        Input::silent()
    } else {
        stdin_input()?
    };
    let mut output = stdout_output(shutdown, command.conversation().linger)?;
    let mut console = Console::new(&mut input, &mut output)
        .with_shutdown(shutdown.clone())
        .with_status(status.clone());
    let ending = run_on(command, &mut console);
    // What is still queued for stdout is written, for as long as stdout
    // takes it (bounded: see OutputThread::finish).
    output.finish();
    ending
}

/// Runs a command over any input and output: what [`run`] does with the
/// process's stdin and stdout, for callers that bring their own (the
/// binary's terminal view, tests, embedding programs).
///
/// ```
/// use duplex::{Command, ConnectOptions, Console, Ending, Input, ServeOptions, Status};
/// use std::sync::{Arc, mpsc};
/// use std::thread;
/// use std::time::Duration;
///
/// let deadline = Duration::from_secs(10);
/// let (lines_tx, lines) = mpsc::channel();
/// let status = Status::with_sink(false, Arc::new(move |line: &str| {
///     let _ = lines_tx.send(line.to_owned());
/// }));
/// let serve = Command::Serve(ServeOptions {
///     bind: "127.0.0.1".into(),
///     once: true,
///     ..ServeOptions::default()
/// });
/// let (done_tx, done) = mpsc::channel();
/// thread::spawn(move || {
///     let (mut input, mut shown) = (Input::silent(), Vec::new());
///     let mut console = Console::new(&mut input, &mut shown).with_status(status);
///     let ending = duplex::run_on(&serve, &mut console);
///     let _ = done_tx.send((ending, shown));
/// });
/// let listening = lines.recv_timeout(deadline)?;
/// let port = listening.rsplit(':').next().ok_or("no port")?.parse()?;
///
/// let connect = Command::Connect(ConnectOptions::new("127.0.0.1", port));
/// let mut input = Input::spawn(&b"ping\n"[..])?;
/// let mut shown = Vec::new();
/// let ending = duplex::run_on(&connect, &mut Console::new(&mut input, &mut shown))?;
/// assert_eq!(ending, Ending::EndOfInput);
///
/// let (served, heard) = done.recv_timeout(deadline)?;
/// assert_eq!(served?, Ending::PeerClosed);
/// assert_eq!(heard, b"ping\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_on(command: &Command, console: &mut Console<'_>) -> Result<Ending> {
    match command {
        Command::Serve(options) => serve::serve(options, console),
        Command::Connect(options) => connect::connect(options, console),
    }
}

/// Whether stdin is a terminal (a person typing, not a pipe).
pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// The input thread over stdin. A stdin that is not open at all is plain end
/// of input (SPEC, "Bad input").
fn stdin_input() -> Result<Input> {
    // Reading our own duplicate of fd 0 skips std's buffering and locking:
    // chunks go straight from read(2) into the channel.
    let file = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => File::from(fd),
        Err(error) => {
            tracing::debug!(%error, "stdin is not open: no input");
            return Ok(Input::empty());
        }
    };
    Input::spawn_file(file).map_err(|source| Error::Local {
        op: "could not start the input thread",
        source,
    })
}

/// Stdout behind the output thread ([`output`]): a reader of stdout that
/// stalls can then never keep a conversation, Ctrl-C or the idle timeout
/// from ending. The thread writes our own duplicate of fd 1, unbuffered:
/// every chunk from the peer goes out at once, and nothing is held back.
fn stdout_output(shutdown: &Shutdown, linger: std::time::Duration) -> Result<OutputThread> {
    let fd = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| Error::Local {
            op: "could not open standard output",
            source,
        })?;
    let file = File::from(fd);
    // A terminal is shown the peer's bytes as text (SPEC, "Terminal
    // safety"); anything else gets them exactly, and may take them straight
    // from the socket in raw mode.
    let thread = if io::stdout().is_terminal() {
        OutputThread::spawn(render::RenderingWriter::new(file), shutdown.clone(), linger)
    } else {
        OutputThread::spawn_file(file, shutdown.clone(), linger)
    };
    thread.map_err(|source| Error::Local {
        op: "could not start the output thread",
        source,
    })
}
