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
    conversation::report_unsent(console.input, status);
    Ok(outcome.ending)
}
