//! `duplex connect`: dial, and hold one conversation.

use crate::conversation::{self, Ending};
use crate::error::{Error, Result};
use crate::input::Input;
use crate::net;
use crate::options::ConnectOptions;
use crate::output::Output;
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::transport::{self, Side};

/// Connects and runs the conversation to its end.
pub fn connect(
    options: &ConnectOptions,
    input: &mut Input,
    output: &mut dyn Output,
    shutdown: &Shutdown,
    status: &Status,
) -> Result<Ending> {
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
        input.push_front(format!("/name {name}\n").into_bytes());
    }
    let connection = transport::establish(stream, Side::Client, &options.conversation.security)?;
    let outcome = conversation::hold(
        connection,
        peer,
        input,
        output,
        &options.conversation,
        shutdown,
    )?;
    conversation::report_ended(status, peer, outcome);
    // There is no next conversation: what was read but not sent is said.
    conversation::report_unsent(input, status);
    Ok(outcome.ending)
}
