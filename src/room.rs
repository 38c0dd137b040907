//! `duplex serve --room`: many peers at once (SPEC, "Room").

use crate::conversation::Ending;
use crate::error::{Error, Result};
use crate::input::Input;
use crate::options::{ConversationOptions, RoomOptions};
use crate::shutdown::Shutdown;
use crate::status::Status;
use std::io::{self, Write};
use std::net::TcpListener;

/// Runs a room on `listener` until the server's goodbye or a shutdown.
pub fn run(
    _listener: TcpListener,
    _room: &RoomOptions,
    _options: &ConversationOptions,
    _input: &mut Input,
    _output: &mut (dyn Write + Send),
    _shutdown: &Shutdown,
    _status: &Status,
) -> Result<Ending> {
    Err(Error::Local {
        op: "--room",
        source: io::Error::other("not built yet"),
    })
}
