//! `duplex serve`: listen, and hold one conversation at a time, for ever or
//! `--once` (SPEC, "Serve"). `--room` hands over to [`crate::room`].
//!
//! While a conversation runs, a second peer's connection is accepted by the
//! kernel and waits, as with the classic lesson's server: it is served, with
//! whatever it already sent, when the conversation before it ends.

use crate::conversation::{self, Ending};
use crate::error::{Error, Result};
use crate::input::Input;
use crate::net::{self, Acceptor, Admission};
use crate::options::ServeOptions;
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::transport::{self, Side};
use crossbeam_channel::select;
use std::io::Write;

/// Runs the server until `--once` is done, the input has ended, the output
/// is closed, or the shutdown fires. Returns the last conversation's ending
/// ([`Ending::Interrupted`] after a shutdown).
pub fn serve(
    options: &ServeOptions,
    input: &mut Input,
    output: &mut (dyn Write + Send),
    shutdown: &Shutdown,
    status: &Status,
) -> Result<Ending> {
    let listener = net::bind(&options.bind, options.port, options.net.family)?;
    let local = listener.local_addr().map_err(|source| Error::Bind {
        addr: net::display_target(&options.bind, options.port),
        source,
    })?;
    status.listening(local);
    tracing::info!(%local, "listening");
    // Refused peers are turned away by the accept thread, for a room too:
    // they never reach a conversation.
    let admission = Admission {
        access: options.access.clone(),
        keepalive: options.net.keepalive,
        status: status.clone(),
    };
    let acceptor = Acceptor::spawn(listener, admission).map_err(Error::Accept)?;
    if let Some(room) = &options.room {
        return crate::room::run(
            acceptor,
            room,
            &options.conversation,
            input,
            output,
            shutdown,
            status,
        );
    }

    loop {
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
        };
        status.connection_from(peer);
        let ended = transport::establish(stream, Side::Server, &options.conversation.security)
            .and_then(|connection| {
                conversation::run(
                    connection,
                    peer,
                    input,
                    output,
                    &options.conversation,
                    shutdown,
                )
            });
        match ended {
            Ok(ending) => {
                status.ended(peer, ending);
                if matches!(ending, Ending::Interrupted | Ending::OutputClosed) {
                    return Ok(ending);
                }
                if options.once || input.is_exhausted() {
                    return Ok(ending);
                }
            }
            // Three wrong secrets, in all: stop, so nobody can keep guessing.
            Err(error) if guesses_spent(options) => {
                status.failed(&error);
                return Err(Error::TooManyGuesses);
            }
            // One peer's failure ends only its conversation.
            Err(error) if !options.once && !matches!(error, Error::Local { .. }) => {
                status.failed(&error);
                if input.is_exhausted() {
                    return Ok(Ending::EndOfInput);
                }
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
