//! Plain option structs the engine takes. The command line (`cli.rs`) builds
//! them; library users build them directly. No clap types past this point.

use crate::progress::Watcher;
use crate::transport::Security;
use crate::transport::tls::{Identity, Verification};
use ipnet::IpNet;
use std::net::IpAddr;
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
    /// Told when each conversation starts (with its byte counters) and
    /// ends: how the binary shows progress ([`crate::progress`]).
    pub watch: Option<Watcher>,
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
            watch: None,
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
    /// `--tls`: speak TLS with every peer, as this identity.
    pub tls: Option<Identity>,
    /// Keepalive and address family (SPEC, "Connections").
    pub net: NetOptions,
    /// Who may connect (`--allow`, `--deny`).
    pub access: Access,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: "0.0.0.0".to_owned(),
            port: 0,
            once: false,
            room: None,
            conversation: ConversationOptions::default(),
            tls: None,
            net: NetOptions::default(),
            access: Access::default(),
        }
    }
}

/// `duplex serve --room`: many peers at once, lines relayed between them,
/// each labelled with its sender (SPEC, "Room"). Set as
/// [`ServeOptions::room`] and run by [`serve`](crate::serve()).
///
/// ```
/// use duplex::{Console, ConversationOptions, Ending, Input, RoomOptions, ServeOptions, Status};
/// use std::io::{BufRead, BufReader, Write};
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
///     room: Some(RoomOptions::default()),
///     conversation: ConversationOptions {
///         linger: Duration::from_millis(200),
///         ..ConversationOptions::default()
///     },
///     ..ServeOptions::default()
/// };
/// // The room ends with the server's input: `end` is its writer.
/// let (end, mut input) = Input::channel();
/// let (done_tx, done) = mpsc::channel();
/// thread::spawn(move || {
///     let mut shown = Vec::new();
///     let mut console = Console::new(&mut input, &mut shown).with_status(status);
///     let ending = duplex::serve(&options, &mut console);
///     let _ = done_tx.send((ending, shown));
/// });
/// let listening = lines.recv_timeout(deadline)?;
/// let addr = listening.strip_prefix("listening on ").ok_or("no address")?;
///
/// // Each peer is told who it is when it has joined: `* you are [ADDR]; …`.
/// let join = || -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
///     let stream = TcpStream::connect(addr)?;
///     stream.set_read_timeout(Some(deadline))?;
///     let mut reader = BufReader::new(stream.try_clone()?);
///     let mut welcome = String::new();
///     reader.read_line(&mut welcome)?;
///     assert!(welcome.starts_with("* you are ["), "{welcome}");
///     Ok((stream, reader))
/// };
/// let (bob, mut bob_hears) = join()?;
/// let (mut alice, _) = join()?;
/// alice.write_all(b"hello, room\n")?;
/// let mut line = String::new();
/// while !line.ends_with("] hello, room\n") {
///     line.clear();
///     if bob_hears.read_line(&mut line)? == 0 {
///         return Err("the room closed on bob".into());
///     }
/// }
/// assert!(line.starts_with("[127.0.0.1:"), "labelled with alice's address: {line}");
///
/// // Everyone leaves, then the server's input ends: the room is closed.
/// drop((alice, bob, bob_hears));
/// drop(end);
/// let (ending, shown) = done.recv_timeout(deadline)?;
/// assert_eq!(ending?, Ending::EndOfInput);
/// assert!(String::from_utf8(shown)?.contains("] hello, room\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// For rooms: send `/name NAME` as the first line (SPEC, "Room").
    pub name: Option<String>,
    /// How the conversation behaves.
    pub conversation: ConversationOptions,
    /// `--tls`: speak TLS, verifying the server this way.
    pub tls: Option<Verification>,
    /// Keepalive and address family (SPEC, "Connections").
    pub net: NetOptions,
}

impl ConnectOptions {
    /// Dial `host` (a name or an IP literal) on `port`, with every other
    /// option at its default (the command line's defaults).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            connect_timeout: None,
            name: None,
            conversation: ConversationOptions::default(),
            tls: None,
            net: NetOptions::default(),
        }
    }
}

/// Which addresses to resolve, dial and bind (`-4`, `-6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Family {
    /// IPv4 and IPv6, in the resolver's order.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only; a server bound to `::` then takes no IPv4 peers.
    V6,
}

impl Family {
    /// Whether `ip` is of this family.
    pub(crate) fn admits(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// How every connection is made and kept, served or dialled (SPEC,
/// "Connections").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetOptions {
    /// A peer that vanishes without closing is noticed after about this
    /// long (TCP keepalive and user timeout); `None` turns it off.
    pub keepalive: Option<Duration>,
    /// Which addresses to use.
    pub family: Family,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            keepalive: Some(Duration::from_secs(60)),
            family: Family::Any,
        }
    }
}

/// Who may connect to a server: `--allow` and `--deny` networks. Deny wins;
/// with no allow rule everyone not denied may connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Only peers in these networks (none: everyone).
    pub allow: Vec<IpNet>,
    /// Never peers in these networks.
    pub deny: Vec<IpNet>,
}

impl Access {
    /// Whether a peer at `ip` may connect. An IPv4-mapped IPv6 address
    /// (`::ffff:127.0.0.1`, what a dual-stack listener reports for an IPv4
    /// peer) matches the IPv4 rules as well as the IPv6 ones.
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        let hit = |rules: &[IpNet]| {
            rules
                .iter()
                .any(|net| net.contains(&ip) || net.contains(&canonical))
        };
        !hit(&self.deny) && (self.allow.is_empty() || hit(&self.allow))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allow: &[&str], deny: &[&str]) -> Access {
        let nets = |list: &[&str]| list.iter().map(|net| net.parse().unwrap()).collect();
        Access {
            allow: nets(allow),
            deny: nets(deny),
        }
    }

    #[test]
    fn deny_wins_and_mapped_addresses_match_their_ipv4_rules() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let rules = access(&["127.0.0.0/8", "::1/128"], &["127.0.0.3/32"]);
        assert!(rules.permits(ip("127.0.0.2")));
        assert!(rules.permits(ip("::1")));
        assert!(!rules.permits(ip("127.0.0.3")));
        assert!(!rules.permits(ip("10.0.0.1")));
        assert!(rules.permits(ip("::ffff:127.0.0.2")));
        assert!(!rules.permits(ip("::ffff:127.0.0.3")));
        assert!(!rules.permits(ip("::2")));
        assert!(Access::default().permits(ip("10.0.0.1")));
        assert!(!access(&[], &["::/0"]).permits(ip("::1")));
        assert!(access(&[], &["::/0"]).permits(ip("127.0.0.1")));
    }
}
