//! `duplex serve`: listen, and hold one conversation at a time, for ever or
//! `--once` (SPEC, "Serve"). `--room` hands over to [`crate::room`].
//!
//! While a conversation runs, a second peer's connection is accepted by the
//! kernel and waits, as with the classic lesson's server: it is served, with
//! whatever it already sent, when the conversation before it ends.

use crate::console::Console;
use crate::conversation;
use crate::ending::Ending;
use crate::error::{Error, Result};
use crate::net::{self, Acceptor, Admission};
use crate::options::{ConversationOptions, ServeOptions};
use crate::transport::tls::{Identity, Tls, TlsAcceptor};
use crate::transport::{self, Security, Side, TlsSetup};
use crossbeam_channel::{never, select};
use std::sync::Arc;

/// Runs the server until `--once` is done, the input has ended, the output
/// is closed, or the shutdown fires. Returns the last conversation's ending
/// ([`Ending::Interrupted`] after a shutdown).
///
/// Peers are served one at a time, with the console's input; with
/// [`ServeOptions::room`] set, many at once (see
/// [`RoomOptions`](crate::RoomOptions)). The first status line is
/// `listening on ADDR`: that is how a caller that asked for port 0 learns
/// the port.
///
/// ```
/// use duplex::{Console, Ending, Input, ServeOptions, Status};
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use std::sync::{Arc, mpsc};
/// use std::thread;
/// use std::time::Duration;
///
/// let deadline = Duration::from_secs(10);
/// let (lines_tx, lines) = mpsc::channel();
/// let status = Status::with_sink(false, Arc::new(move |line: &str| {
///     let _ = lines_tx.send(line.to_owned());
/// }));
/// let options = ServeOptions {
///     bind: "127.0.0.1".into(),
///     port: 0,
///     once: true,
///     ..ServeOptions::default()
/// };
/// let (done_tx, done) = mpsc::channel();
/// thread::spawn(move || {
///     // The server says one line to whoever connects.
///     let (say, mut input) = Input::channel();
///     let _ = say.send(b"welcome\n".to_vec().into());
///     let mut shown = Vec::new();
///     let mut console = Console::new(&mut input, &mut shown).with_status(status);
///     let ending = duplex::serve(&options, &mut console);
///     let _ = done_tx.send((ending, shown));
/// });
///
/// let listening = lines.recv_timeout(deadline)?;
/// let addr = listening.strip_prefix("listening on ").ok_or("no address")?;
/// let mut peer = TcpStream::connect(addr)?;
/// peer.set_read_timeout(Some(deadline))?;
/// let mut welcome = [0; 8];
/// peer.read_exact(&mut welcome)?;
/// assert_eq!(&welcome, b"welcome\n");
/// // A line, then goodbye (an empty line); the server then closes.
/// peer.write_all(b"hi\n\n")?;
/// let mut rest = Vec::new();
/// peer.read_to_end(&mut rest)?;
/// drop(peer);
///
/// let (ending, shown) = done.recv_timeout(deadline)?;
/// assert_eq!(ending?, Ending::PeerGoodbye);
/// assert_eq!(shown, b"hi\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn serve(options: &ServeOptions, console: &mut Console<'_>) -> Result<Ending> {
    let status = &console.status.clone();
    // Certificate files are read before binding: a bad one is the only line.
    let tls = match &options.tls {
        Some(identity) => Some((
            identity,
            TlsAcceptor::new(identity, &options.bind).map_err(Error::Tls)?,
        )),
        None => None,
    };
    let listener = net::bind(&options.bind, options.port, options.net.family)?;
    let local = listener.local_addr().map_err(|source| Error::Bind {
        addr: net::display_target(&options.bind, options.port),
        source,
    })?;
    status.listening(local);
    tracing::info!(%local, "listening");
    let mut settings = options.conversation.clone();
    if let Some((identity, acceptor)) = tls {
        let fingerprint = acceptor.fingerprint();
        if *identity == Identity::Throwaway {
            // Even with -q: it is how a client can trust this server.
            status.always(format_args!("tls fingerprint: {fingerprint}"));
        } else {
            status.line(format_args!("tls fingerprint: {fingerprint}"));
        }
        settings.security = Security::Tls(TlsSetup(Tls::Server(Arc::new(acceptor))));
    }
    let settings = &settings;
    // Refused peers are turned away by the accept thread, for a room too:
    // they never reach a conversation.
    let admission = Admission {
        access: options.access.clone(),
        keepalive: options.net.keepalive,
        status: status.clone(),
    };
    let acceptor = Acceptor::spawn(listener, admission).map_err(Error::Accept)?;
    if let Some(room) = &options.room {
        return crate::room::run(acceptor, room, settings, console);
    }

    let ending = serve_one_by_one(options, settings, &acceptor, console)?;
    // No next peer will take what is left of the input: say how much.
    conversation::report_unsent(console.input, status, ending);
    Ok(ending)
}

/// The conversations, one at a time, until one ends the server.
fn serve_one_by_one(
    options: &ServeOptions,
    settings: &ConversationOptions,
    acceptor: &Acceptor,
    console: &mut Console<'_>,
) -> Result<Ending> {
    let (shutdown, status) = (&console.shutdown.clone(), &console.status.clone());
    // Once a peer has had a conversation, the input's end between peers
    // ends the server (SPEC, "Serve": nothing more to say). Before the
    // first, the server waits for a peer even so.
    let mut served = false;
    loop {
        let input_end = if served {
            console.input.end_watch()
        } else {
            None
        };
        let input_end = input_end.unwrap_or_else(never);
        let (stream, peer) = select! {
            recv(acceptor.receiver()) -> accepted => match accepted {
                Ok(Ok(pair)) => pair,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
                Err(_) => return Err(Error::Accept(std::io::Error::other("the listener stopped"))),
            },
            recv(shutdown.receiver()) -> _ => return Ok(Ending::Interrupted),
            recv(input_end) -> got => {
                console.input.watched(got);
                if console.input.is_exhausted() {
                    return Ok(Ending::EndOfInput);
                }
                continue;
            }
        };
        status.connection_from(peer);
        let ended = transport::establish(stream, Side::Server, &settings.security)
            .and_then(|connection| conversation::hold(connection, peer, settings, console));
        match ended {
            Ok(outcome) => {
                served = true;
                let ending = outcome.ending;
                conversation::report_ended(status, peer, outcome);
                if matches!(ending, Ending::Interrupted | Ending::OutputClosed) {
                    return Ok(ending);
                }
                if options.once || console.input.is_exhausted() {
                    return Ok(ending);
                }
            }
            // Three wrong secrets, in all: stop, so nobody can keep guessing.
            Err(error) if guesses_spent(options) => {
                status.failed(&error);
                return Err(Error::TooManyGuesses);
            }
            // One peer's failure ends only its conversation, and the server
            // goes on to the next peer (SPEC, "Endings"), even when its
            // input has ended: a failed handshake or a reset is no goodbye,
            // and a peer may still be owed what the input held.
            Err(error) if !options.once && !matches!(error, Error::Local { .. }) => {
                status.failed(&error);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether `--secret`'s guess budget is used up (SPEC, "Secret channel").
fn guesses_spent(options: &ServeOptions) -> bool {
    match &options.conversation.security {
        transport::Security::Secret(setup) => setup.budget.exhausted(),
        _ => false,
    }
}
