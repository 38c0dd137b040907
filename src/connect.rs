//! `duplex connect`: dial, and hold one conversation.

use crate::conversation::{self, Ending};
use crate::error::{Error, Result};
use crate::input::Input;
use crate::net;
use crate::options::ConnectOptions;
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::transport::{self, Side};
use std::io::Write;

/// Connects and runs the conversation to its end.
pub fn connect(
    options: &ConnectOptions,
    input: &mut Input,
    output: &mut (dyn Write + Send),
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
    let connection = transport::establish(stream, Side::Client, &options.conversation.security)?;
    let ending = conversation::run(
        connection,
        peer,
        input,
        output,
        &options.conversation,
        shutdown,
    )?;
    status.ended(peer, ending);
    if input.stopped_at_goodbye() {
        let unsent = input.discard_pending();
        if unsent > 0 {
            status.line(format_args!(
                "stopped at an empty line; {unsent} bytes of input not sent \u{2014} use --raw to send blank lines"
            ));
        }
    }
    Ok(ending)
}
