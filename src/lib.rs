//! `duplex` is a threaded, full-duplex TCP chat tool: a friendlier, safer
//! netcat for chatting, scripting and loopback tests. This crate is the
//! engine; the `duplex` binary is a thin layer over [`run`].
//!
//! One thread reads the process's input ([`Input`]); every conversation runs a
//! sender thread and a receiver thread linked to a coordinator by bounded
//! channels ([`conversation`]). The engine takes any reader and writer, so a
//! server and a client can talk in one process:
//!
//! ```
//! use duplex::{ConversationOptions, Ending, Input, Shutdown, conversation};
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
//!         conversation::run(stream, peer, &mut input, &mut heard, &options, &Shutdown::never())?;
//!         Ok(heard)
//!     }
//! });
//!
//! // The client says one line, then goodbye (an empty line).
//! let (lines, mut input) = Input::channel();
//! lines.send(b"hello\n\n".to_vec().into()).unwrap();
//! let stream = TcpStream::connect(addr)?;
//! let mut shown = Vec::new();
//! let ending = conversation::run(stream, addr, &mut input, &mut shown, &options, &Shutdown::never())?;
//!
//! assert_eq!(ending, Ending::Goodbye);
//! assert_eq!(server.join().unwrap()?, b"hello\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connect;
pub mod conversation;
pub mod ending;
pub mod error;
pub mod input;
mod lines;
pub(crate) mod net;
pub mod options;
pub mod output;
pub mod render;
pub mod room;
pub mod serve;
pub mod shutdown;
pub mod status;
pub mod transport;

pub use ending::Ending;
pub use error::{Error, Result};
pub use input::Input;
pub use options::{
    Access, Command, ConnectOptions, ConversationOptions, Family, Mode, NetOptions, RoomOptions,
    ServeOptions,
};
pub use output::{Direct, Output, OutputThread, Release};
pub use shutdown::{Shutdown, ShutdownTrigger, shutdown_channel};
pub use status::Status;
pub use transport::Connection;

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;

/// Runs a command with the process's stdin and stdout, as the binary does.
/// When stdout is a terminal, what the peer sends is shown through the
/// [`render`] rule; otherwise stdout gets exactly the peer's bytes.
pub fn run(command: &Command, shutdown: &Shutdown, status: &Status) -> Result<Ending> {
    let mut input = if command.conversation().recv_only {
        Input::silent()
    } else {
        stdin_input()?
    };
    let mut output = stdout_output(shutdown, command.conversation().linger)?;
    let ending = run_on(command, &mut input, &mut output, shutdown, status);
    // What is still queued for stdout is written, for as long as stdout
    // takes it (bounded: see OutputThread::finish).
    output.finish();
    ending
}

/// Runs a command over any input and output: what [`run`] does with the
/// process's stdin and stdout, for callers that bring their own (the
/// binary's terminal view, tests, embedding programs).
pub fn run_on(
    command: &Command,
    input: &mut Input,
    output: &mut dyn Output,
    shutdown: &Shutdown,
    status: &Status,
) -> Result<Ending> {
    match command {
        Command::Serve(options) => serve::serve(options, input, output, shutdown, status),
        Command::Connect(options) => connect::connect(options, input, output, shutdown, status),
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
