//! Plain option structs the engine takes. The command line (`cli.rs`) builds
//! them; library users build them directly. No clap types past this point.

use crate::transport::Security;
use std::time::Duration;

/// How bytes are treated on the way through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Lines; an empty line or end of input is a goodbye (SPEC, "Chat mode").
    #[default]
    Chat,
    /// Byte-exact relay; each direction ends on its own EOF (SPEC, "Raw mode").
    Raw,
}

/// How one conversation behaves, whichever side dialled.
#[derive(Clone, Debug)]
pub struct ConversationOptions {
    /// Chat or raw.
    pub mode: Mode,
    /// After a goodbye, how long the peer may stay silent before we stop
    /// waiting for it to close.
    pub linger: Duration,
    /// End the conversation after this long with no traffic either way.
    pub idle_timeout: Option<Duration>,
    /// Never read input: only show what the peer sends.
    pub recv_only: bool,
    /// The input is a person at a terminal. In raw mode the peer's EOF then
    /// ends the conversation, as netcat's listener does.
    pub input_is_terminal: bool,
    /// Plain, or which handshake each connection gets first.
    pub security: Security,
}

impl Default for ConversationOptions {
    fn default() -> Self {
        ConversationOptions {
            mode: Mode::Chat,
            linger: Duration::from_secs(5),
            idle_timeout: None,
            recv_only: false,
            input_is_terminal: false,
            security: Security::Plain,
        }
    }
}

/// `duplex serve`.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on: an IP literal or a host name.
    pub bind: String,
    /// Port to listen on; 0 asks the OS for a free one.
    pub port: u16,
    /// End after the first conversation.
    pub once: bool,
    /// Many peers at once (`--room`), with at most this many peers.
    pub room: Option<RoomOptions>,
    /// How each conversation behaves.
    pub conversation: ConversationOptions,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: "0.0.0.0".to_owned(),
            port: 0,
            once: false,
            room: None,
            conversation: ConversationOptions::default(),
        }
    }
}

/// `duplex serve --room`.
#[derive(Clone, Debug)]
pub struct RoomOptions {
    /// Peers allowed at once; a newcomer over this is told the room is full.
    pub max_peers: usize,
}

impl Default for RoomOptions {
    fn default() -> Self {
        RoomOptions { max_peers: 64 }
    }
}

/// `duplex connect`.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Host name or IP literal.
    pub host: String,
    /// Port to dial.
    pub port: u16,
    /// Give up connecting after this long, all addresses together.
    pub connect_timeout: Option<Duration>,
    /// How the conversation behaves.
    pub conversation: ConversationOptions,
}

/// What to run.
#[derive(Clone, Debug)]
pub enum Command {
    /// Listen and talk to whoever connects.
    Serve(ServeOptions),
    /// Dial and talk.
    Connect(ConnectOptions),
}

impl Command {
    /// The conversation options of either subcommand.
    pub fn conversation(&self) -> &ConversationOptions {
        match self {
            Command::Serve(serve) => &serve.conversation,
            Command::Connect(connect) => &connect.conversation,
        }
    }

    /// The conversation options of either subcommand, to change.
    pub fn conversation_mut(&mut self) -> &mut ConversationOptions {
        match self {
            Command::Serve(serve) => &mut serve.conversation,
            Command::Connect(connect) => &mut connect.conversation,
        }
    }
}
