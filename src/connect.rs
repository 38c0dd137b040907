//! `duplex connect`: dial, and hold one conversation.

use crate::console::Console;
use crate::conversation;
use crate::ending::Ending;
use crate::error::{Error, Result};
use crate::net;
use crate::options::ConnectOptions;
use crate::transport::tls::{Tls, TlsConnector, Verification};
use crate::transport::{self, Security, Side, TlsSetup};
use std::sync::Arc;

/// Connects and runs the conversation to its end.
///
/// All addresses `options.host` resolves to are tried in order; with
/// [`ConnectOptions::name`] set, `/name NAME` is sent first (for rooms).
/// What was read but not sent is reported on the console's status.
///
/// ```
/// use duplex::{ConnectOptions, Console, Ending, Input};
/// use std::io::{Read, Write};
/// use std::net::TcpListener;
/// use std::thread;
/// use std::time::Duration;
///
/// // The peer: says hello, then shows what it hears until duplex is done.
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let port = listener.local_addr()?.port();
/// let peer = thread::spawn(move || -> std::io::Result<Vec<u8>> {
///     let (mut stream, _) = listener.accept()?;
///     stream.set_read_timeout(Some(Duration::from_secs(10)))?;
///     stream.write_all(b"hello\n")?;
///     let mut heard = Vec::new();
///     stream.read_to_end(&mut heard)?;
///     Ok(heard)
/// });
///
/// // One line of input, then its end: a goodbye.
/// let mut input = Input::spawn(&b"one line\n"[..])?;
/// let mut shown = Vec::new();
/// let options = ConnectOptions::new("127.0.0.1", port);
/// let ending = duplex::connect(&options, &mut Console::new(&mut input, &mut shown))?;
///
/// assert_eq!(ending, Ending::EndOfInput);
/// assert_eq!(shown, b"hello\n");
/// assert_eq!(peer.join().map_err(|_| "peer panicked")??, b"one line\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn connect(options: &ConnectOptions, console: &mut Console<'_>) -> Result<Ending> {
    let status = &console.status.clone();
    // The CA file (or the system's roots) is read before dialling.
    let mut settings = options.conversation.clone();
    if let Some(verification) = &options.tls {
        let connector = TlsConnector::new(verification).map_err(Error::Tls)?;
        if *verification == Verification::Insecure {
            status.always(
                "tls: --tls-insecure: the server's certificate is not verified; anyone in the middle can read and change this conversation",
            );
        }
        settings.security = Security::Tls(TlsSetup(Tls::Client {
            connector: Arc::new(connector),
            host: options.host.clone(),
        }));
    }
    let settings = &settings;
    let stream = net::connect(
        &options.host,
        options.port,
        options.connect_timeout,
        &options.net,
    )?;
    let peer = stream.peer_addr().map_err(|source| Error::Connect {
        target: net::display_target(&options.host, options.port),
        tried: Vec::new(),
        source,
    })?;
    status.connected_to(peer);
    tracing::info!(%peer, "connected");
    if let Some(name) = &options.name {
        // The room takes the name before anything else we say.
        console
            .input
            .push_front(format!("/name {name}\n").into_bytes());
    }
    let connection = transport::establish(stream, Side::Client, &settings.security)?;
    let outcome = conversation::hold(connection, peer, settings, console)?;
    conversation::report_ended(status, peer, outcome);
    // There is no next conversation: what was read but not sent is said.
    conversation::report_unsent(console.input, status, outcome.ending);
    Ok(outcome.ending)
}
