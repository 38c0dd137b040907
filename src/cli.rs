//! The command line: clap types, the SECS parser, and the conversion into
//! plain [`duplex::Command`] options. Clap stops here; the engine never sees it.

mod man;

use crate::live::When;
use crate::view::{ColorChoice, ViewOptions};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use duplex::transport::tls::{Fingerprint, Identity, Verification};
use duplex::{
    Access, Command, ConnectOptions, ConversationOptions, Family, Mode, NetOptions, RoomOptions,
    ServeOptions,
};
use ipnet::IpNet;
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How a conversation ends, said first in `--help` and in the man page.
const ENDING: &str = "\
A conversation ends when either side sends an empty line or reaches the end \
of its input (Ctrl-D, or the end of a pipe): everything sent arrives, the \
peer's reply is still shown until it closes (or is silent for --linger \
seconds), and the socket is closed cleanly. Ctrl-C does the same and exits \
130; a second Ctrl-C exits at once. With --raw, blank lines are data and \
each direction ends on its own end of input.";

const TOP_EXAMPLES: &str = "\
Examples:
  duplex serve 9000                             chat with whoever connects (every address)
  duplex serve -b 127.0.0.1 9000                the same, reachable from this machine only
  duplex connect localhost 9000                 chat with that server
  printf 'hello\\n' | duplex connect host 9000   send a line, print the reply, end cleanly
  duplex serve --once --raw 9000 > file         receive one file (send: duplex connect --raw host 9000 < file)

Options may go before or after the subcommand. Exit status: 0 ended normally,
1 error (one line on stderr), 2 bad command line, 130 Ctrl-C/SIGTERM.
The whole manual: duplex --generate man > duplex.1 && man ./duplex.1";

/// A threaded, full-duplex TCP chat tool: a friendlier, safer netcat.
#[derive(Debug, Parser)]
#[command(
    name = "duplex",
    version,
    about = "A threaded, full-duplex TCP chat tool: a friendlier, safer netcat",
    long_about = format!("A threaded, full-duplex TCP chat tool: a friendlier, safer netcat.\n\n{ENDING}"),
    after_help = TOP_EXAMPLES,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Print a man page or shell completions on stdout, then exit.
    #[arg(long, value_enum, value_name = "KIND")]
    pub generate: Option<Generate>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Sub>,
}

/// `--generate KIND`: what packagers ship next to the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// A roff man page, `duplex.1`: both subcommands, every option.
    Man,
    /// Bash completions.
    CompleteBash,
    /// Zsh completions.
    CompleteZsh,
    /// Fish completions.
    CompleteFish,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    /// Print a man page or completions.
    Generate(Generate),
    /// Serve or connect.
    Run(Box<Sub>),
}

impl Cli {
    /// Parses the command line as the binary does: options given before the
    /// subcommand (`duplex -q serve 0`) are taken as if given after it, and
    /// `connect HOST:PORT` is told to write `connect HOST PORT`. A usage
    /// error prints clap's message and exits 2.
    pub fn parse_args<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        Cli::try_parse_args(args).unwrap_or_else(|error| error.exit())
    }

    /// [`Cli::parse_args`] without exiting.
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args = options_after_subcommand(args.into_iter().map(Into::into).collect());
        Cli::try_parse_from(&args).map_err(|mut error| {
            if error.kind() == clap::error::ErrorKind::MissingRequiredArgument
                && let Some((host, port)) = host_port_in_one(&args)
            {
                use clap::error::{ContextKind, ContextValue};
                error.insert(
                    ContextKind::Suggested,
                    ContextValue::StyledStrs(vec![
                        format!("HOST and PORT are two arguments: duplex connect {host} {port}")
                            .into(),
                    ]),
                );
            }
            error
        })
    }

    /// What to do. Neither a subcommand nor `--generate` is clap's usage
    /// error: it prints the message and exits 2.
    pub fn action(self) -> Action {
        match (self.generate, self.command) {
            (Some(kind), _) => Action::Generate(kind),
            (None, Some(sub)) => Action::Run(Box::new(sub)),
            (None, None) => Cli::command()
                .error(
                    clap::error::ErrorKind::MissingSubcommand,
                    "a subcommand is required: serve or connect (or --generate)",
                )
                .exit(),
        }
    }
}

/// `duplex -q serve 0` → `duplex serve -q 0`: everything between the program
/// name and the first `serve`/`connect` moves after the subcommand, where
/// clap expects the options. `--generate` stays where it is (it takes no
/// subcommand, and clap says so).
fn options_after_subcommand(mut args: Vec<OsString>) -> Vec<OsString> {
    let Some(at) = args
        .iter()
        .position(|a| a == "serve" || a == "connect")
        .filter(|&at| at > 1)
    else {
        return args;
    };
    if args[1..at]
        .iter()
        .any(|a| a.to_str().is_some_and(|a| a.starts_with("--generate")))
    {
        return args;
    }
    let sub = args.remove(at);
    args.insert(1, sub);
    args
}

/// `connect 127.0.0.1:9000` (or `[::1]:9000`, `localhost:9000`): the host
/// and the port the user meant, for the "missing PORT" message.
fn host_port_in_one(args: &[OsString]) -> Option<(String, u16)> {
    let at = args.iter().position(|a| a == "connect")?;
    args[at + 1..].iter().find_map(|arg| {
        let (host, port) = arg.to_str()?.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6,
            None if host.contains(':') || host.is_empty() => return None,
            None => host,
        };
        Some((host.to_owned(), port))
    })
}

/// Writes the man page or completions for `kind` to `out`.
pub fn generate(kind: Generate, out: &mut dyn Write) -> io::Result<()> {
    let mut command = Cli::command();
    let shell = match kind {
        Generate::Man => return out.write_all(man::page(&command).as_bytes()),
        Generate::CompleteBash => clap_complete::Shell::Bash,
        Generate::CompleteZsh => clap_complete::Shell::Zsh,
        Generate::CompleteFish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "duplex", out);
    Ok(())
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Listen on PORT and talk to whoever connects.
    #[command(
        long_about = format!("Listen on PORT (every address unless -b) and talk to whoever connects, one peer at a time (or many with --room).\n\n{ENDING}"),
        after_help = SERVE_EXAMPLES
    )]
    Serve(ServeArgs),
    /// Connect to HOST PORT and talk.
    #[command(
        long_about = format!("Connect to HOST PORT and talk.\n\n{ENDING}"),
        after_help = CONNECT_EXAMPLES
    )]
    Connect(ConnectArgs),
}

const SERVE_EXAMPLES: &str = "\
Examples:
  duplex serve 9000                            chat with whoever connects, one at a time
  duplex serve -b 127.0.0.1 9000               the same, reachable from this machine only
  duplex serve --once --raw 9000 > file        receive one file, then exit
  duplex serve -q --recv-only -b 127.0.0.1 0   a loopback test server; read its port from stderr
  duplex serve --room 9000                     a chat room for many peers";

const CONNECT_EXAMPLES: &str = "\
Examples:
  duplex connect localhost 9000                chat with a server
  printf 'hello\\n' | duplex connect host 9000  send a line, show the reply, end cleanly
  duplex connect --raw host 9000 < file        send a file byte for byte";

/// `duplex serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port, printed on stderr).
    #[arg(value_name = "PORT")]
    pub port: u16,
    /// Local address to listen on (IPv4 or IPv6 literal, or host name)
    /// [default: 0.0.0.0, every address; :: with -6]. -b 127.0.0.1 keeps it
    /// to this machine.
    #[arg(short, long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// End after the first conversation.
    #[arg(long)]
    pub once: bool,
    /// Many peers at once; lines are relayed between them.
    #[arg(long, conflicts_with_all = ["raw", "once"])]
    pub room: bool,
    /// With --room: peers allowed at once.
    #[arg(long, value_name = "N", requires = "room", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_peers: Option<u32>,
    /// TLS for every peer.
    #[command(flatten)]
    pub tls: ServeTlsArgs,
    /// Accept only peers in this network (repeatable; an address alone is
    /// one host).
    #[arg(long, value_name = "CIDR", value_parser = parse_net)]
    pub allow: Vec<IpNet>,
    /// Refuse peers in this network (repeatable; wins over --allow).
    #[arg(long, value_name = "CIDR", value_parser = parse_net)]
    pub deny: Vec<IpNet>,
    /// Options for the conversation.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `duplex connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Host name or IP address to connect to.
    #[arg(value_name = "HOST")]
    pub host: String,
    /// Port to connect to.
    #[arg(value_name = "PORT")]
    pub port: u16,
    /// Give up connecting after this long, all addresses together.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub connect_timeout: Option<Duration>,
    /// For rooms: take this name (send `/name NAME` first); 1 to 24 of
    /// A-Z a-z 0-9 _ -, not `server`.
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,
    /// TLS, and how the server is verified.
    #[command(flatten)]
    pub tls: ConnectTlsArgs,
    /// Options for the conversation.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options both subcommands take.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Byte-stream mode: no line rules; blank lines are data.
    #[arg(long)]
    pub raw: bool,
    /// After a goodbye, how long the peer may stay silent before we stop
    /// waiting for it to close.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs, allow_negative_numbers = true)]
    pub linger: Duration,
    /// End a conversation after this long with no traffic either way.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub idle_timeout: Option<Duration>,
    /// Never read stdin: only show what the peer sends.
    #[arg(long)]
    pub recv_only: bool,
    /// No status lines on stderr (errors still get their one line), and no
    /// progress line unless --progress.
    #[arg(short, long)]
    pub quiet: bool,
    /// With --raw: draw the live progress line on stderr even when it is not
    /// a terminal or with -q [default: only on a terminal, without -q].
    #[arg(long, requires = "raw", overrides_with = "no_progress")]
    pub progress: bool,
    /// Never draw the live progress line (the summary line stays, unless -q).
    #[arg(long, overrides_with = "progress")]
    pub no_progress: bool,
    /// Diagnostics on stderr (repeat for more: -vv, -vvv); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour in the terminal view (auto: not when NO_COLOR is set). Piped
    /// output never gets colour.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: ColorArg,
    /// In the terminal view, prefix each line with the local time (HH:MM:SS).
    #[arg(long)]
    pub timestamps: bool,
    /// Notice a peer that vanished without closing after about this long
    /// (TCP keepalive and user timeout); 0 turns it off.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs, allow_negative_numbers = true)]
    pub keepalive: Duration,
    /// IPv4 addresses only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 addresses only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Encrypt and authenticate the conversation with a shared secret. The
    /// words only with `=` (other users can read them in the process list);
    /// `--secret` alone reads DUPLEX_SECRET, or else serve makes up a secret
    /// and prints it, and connect asks for it on the terminal.
    #[arg(long, value_name = "WORDS", num_args = 0..=1, require_equals = true, conflicts_with = "tls")]
    pub secret: Option<Option<String>>,
}

/// `serve --tls` and its certificate (SPEC, "TLS").
#[derive(Debug, Args)]
pub struct ServeTlsArgs {
    /// Speak TLS with every peer (a throwaway certificate unless
    /// --tls-cert/--tls-key; its fingerprint is printed).
    #[arg(long)]
    pub tls: bool,
    /// With --tls: PEM certificate chain, leaf first.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// With --tls: PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
}

impl ServeTlsArgs {
    fn identity(&self) -> Option<Identity> {
        self.tls.then(|| match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Identity::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => Identity::Throwaway,
        })
    }
}

/// `connect --tls` and how the server is verified (SPEC, "TLS").
#[derive(Debug, Args)]
pub struct ConnectTlsArgs {
    /// Speak TLS, verifying the server against the system's roots with HOST
    /// as its name.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: trust this PEM CA bundle instead of the system's roots.
    #[arg(long, value_name = "FILE", requires = "tls", conflicts_with_all = ["tls_pin", "tls_insecure"])]
    pub tls_ca: Option<PathBuf>,
    /// With --tls: accept exactly the certificate with this SHA-256
    /// fingerprint, whatever its names or issuer.
    #[arg(long, value_name = "sha256:HEX", requires = "tls", value_parser = parse_pin, conflicts_with = "tls_insecure")]
    pub tls_pin: Option<Fingerprint>,
    /// With --tls: skip verification (says so on stderr).
    #[arg(long, requires = "tls")]
    pub tls_insecure: bool,
}

impl ConnectTlsArgs {
    fn verification(&self) -> Option<Verification> {
        self.tls.then(|| match (&self.tls_pin, self.tls_insecure) {
            (Some(pin), _) => Verification::Pin(*pin),
            (None, true) => Verification::Insecure,
            (None, false) => Verification::Roots {
                ca: self.tls_ca.clone(),
            },
        })
    }
}

/// Parses `--tls-pin sha256:HEX`.
fn parse_pin(text: &str) -> Result<Fingerprint, String> {
    text.parse()
}

/// `--color WHEN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Colour on a terminal, unless NO_COLOR is set.
    Auto,
    /// Colour whenever the terminal view is on.
    Always,
    /// No colour.
    Never,
}

/// The largest SECS: one year (of 366 days). Every SECS becomes a deadline
/// (`Instant::now() + secs`), and a sum past what `Instant` holds panics; a
/// year is far from that on every platform and longer than anyone waits.
pub const MAX_SECS: u64 = 366 * 24 * 60 * 60;

/// Parses SECS: a non-negative number of seconds, fractions allowed, at most
/// [`MAX_SECS`].
pub fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|secs: &f64| !secs.is_nan())
        .ok_or_else(|| format!("'{text}' is not a number of seconds"))?;
    if secs.is_sign_negative() {
        return Err(format!("'{text}' is negative; seconds must be 0 or more"));
    }
    if secs > MAX_SECS as f64 {
        return Err(format!(
            "'{text}' is too long; seconds must be at most {MAX_SECS} (one year)"
        ));
    }
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("'{text}' is not a usable number of seconds"))
}

/// Parses NAME: a name a room accepts.
pub fn parse_name(text: &str) -> Result<String, String> {
    if duplex::room::is_valid_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "'{text}' is not a room name: 1 to 24 of A-Z a-z 0-9 _ -, and not server"
        ))
    }
}

/// Parses CIDR: a network (`10.0.0.0/8`, `fd00::/8`) or one address.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{text}' is not a network (like 10.0.0.0/8 or ::1/128)"))
}

impl Sub {
    /// The options shared by both subcommands.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Sub::Serve(serve) => &serve.common,
            Sub::Connect(connect) => &connect.common,
        }
    }

    /// The validated command for the engine. `input_is_terminal` says whether
    /// stdin is a terminal (raw mode then ends on the peer's EOF).
    pub fn into_command(self, input_is_terminal: bool) -> Command {
        match self {
            Sub::Serve(serve) => Command::Serve(ServeOptions {
                bind: serve.bind.unwrap_or_else(|| {
                    let any = if serve.common.ipv6 { "::" } else { "0.0.0.0" };
                    any.to_owned()
                }),
                port: serve.port,
                once: serve.once,
                room: serve.room.then(|| RoomOptions {
                    max_peers: serve
                        .max_peers
                        .map_or(RoomOptions::default().max_peers, |n| n as usize),
                }),
                conversation: serve.common.conversation(input_is_terminal),
                tls: serve.tls.identity(),
                net: serve.common.net(),
                access: Access {
                    allow: serve.allow,
                    deny: serve.deny,
                },
            }),
            Sub::Connect(connect) => Command::Connect(ConnectOptions {
                host: connect.host,
                port: connect.port,
                connect_timeout: connect.connect_timeout,
                name: connect.name,
                conversation: connect.common.conversation(input_is_terminal),
                tls: connect.tls.verification(),
                net: connect.common.net(),
            }),
        }
    }
}

/// Where `--secret` takes the words from, or why it cannot (a usage
/// error): `=WORDS` (with a warning on `warn`), `env` (DUPLEX_SECRET), or
/// else a generated secret (`serve`, printed on `warn` even with `-q`) or
/// the prompt on the terminal (`connect`). `None`: no `--secret`.
pub fn secret(
    sub: &Sub,
    env: Option<std::ffi::OsString>,
    warn: &mut dyn Write,
) -> Result<Option<duplex::transport::secret::Secret>, String> {
    use duplex::transport::secret::{Secret, words};
    let Some(given) = &sub.common().secret else {
        return Ok(None);
    };
    if let Some(text) = given {
        let _ = writeln!(
            warn,
            "duplex: warning: --secret=WORDS can be read by other users of this machine in the process list; {} or the prompt keeps it private",
            words::ENV
        );
        return Secret::new(text)
            .map(Some)
            .map_err(|_| "--secret=WORDS: the secret is empty".to_owned());
    }
    if let Some(secret) = words::from_env(env)? {
        return Ok(Some(secret));
    }
    match sub {
        Sub::Serve(_) => {
            let text = words::generate()?;
            // Shown even with -q: without it nobody could connect.
            let _ = writeln!(warn, "secret: {}", text.as_str());
            Secret::new(&text)
                .map(Some)
                .map_err(|_| "the generated secret is empty".to_owned())
        }
        Sub::Connect(_) => words::prompt().map(Some),
    }
}

impl CommonArgs {
    /// How the terminal view looks (its Ctrl-C trigger is the caller's).
    pub fn view(&self) -> ViewOptions {
        ViewOptions {
            color: match self.color {
                ColorArg::Auto => ColorChoice::Auto,
                ColorArg::Always => ColorChoice::Always,
                ColorArg::Never => ColorChoice::Never,
            },
            timestamps: self.timestamps,
            linger: self.linger,
            interrupt: None,
        }
    }

    /// `--progress`, `--no-progress` (the last one given wins), or neither.
    pub fn progress(&self) -> When {
        match (self.progress, self.no_progress) {
            (true, _) => When::Always,
            (_, true) => When::Never,
            _ => When::Auto,
        }
    }

    fn net(&self) -> NetOptions {
        NetOptions {
            keepalive: Some(self.keepalive).filter(|secs| !secs.is_zero()),
            family: match (self.ipv4, self.ipv6) {
                (true, _) => Family::V4,
                (_, true) => Family::V6,
                _ => Family::Any,
            },
        }
    }

    fn conversation(&self, input_is_terminal: bool) -> ConversationOptions {
        ConversationOptions {
            mode: if self.raw { Mode::Raw } else { Mode::Chat },
            linger: self.linger,
            idle_timeout: self.idle_timeout,
            recv_only: self.recv_only,
            input_is_terminal,
            security: duplex::transport::Security::Plain,
            watch: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_accept_fractions_and_refuse_nonsense() {
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_secs("0"), Ok(Duration::ZERO));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("abc").is_err());
        assert!(parse_secs("inf").is_err());
        assert!(parse_secs("NaN").is_err());
        assert!(parse_secs("1e19").is_err());
        assert!(parse_secs("31622401").is_err());
        assert_eq!(
            parse_secs("31622400"),
            Ok(Duration::from_secs(MAX_SECS)),
            "one year is still allowed"
        );
    }

    #[test]
    fn options_go_after_the_subcommand() {
        let cli = Cli::try_parse_from(["duplex", "serve", "-q", "--linger", "0.5", "0"]).unwrap();
        let Action::Run(sub) = cli.action() else {
            panic!("expected a subcommand")
        };
        assert!(sub.common().quiet);
        let Command::Serve(serve) = sub.into_command(false) else {
            panic!("expected serve")
        };
        assert_eq!(serve.conversation.linger, Duration::from_millis(500));
        assert!(Cli::try_parse_from(["duplex", "serve", "--max-peers", "3", "0"]).is_err());
        assert!(Cli::try_parse_from(["duplex", "serve", "--room", "--raw", "0"]).is_err());
        assert!(Cli::try_parse_from(["duplex", "serve", "99999"]).is_err());
        assert!(Cli::try_parse_from(["duplex", "connect", "h", "1", "--linger", "-1"]).is_err());
        assert!(Cli::try_parse_from(["duplex", "connect", "--name", "alice", "h", "1"]).is_ok());
        for bad in ["", "server", "two words", "a.b", &"x".repeat(25)] {
            assert!(
                Cli::try_parse_from(["duplex", "connect", "--name", bad, "h", "1"]).is_err(),
                "{bad:?}"
            );
        }
        assert!(Cli::try_parse_from(["duplex", "serve", "--name", "alice", "0"]).is_err());
    }

    #[test]
    fn connection_options_parse() {
        let serve = |args: &[&str]| {
            let cli = Cli::try_parse_from(["duplex", "serve"].iter().chain(args)).unwrap();
            let Action::Run(sub) = cli.action() else {
                panic!("expected a subcommand")
            };
            let Command::Serve(serve) = sub.into_command(false) else {
                panic!("expected serve")
            };
            serve
        };
        let plain = serve(&["0"]);
        assert_eq!(plain.net.keepalive, Some(Duration::from_secs(60)));
        assert_eq!(
            (plain.net.family, plain.bind.as_str()),
            (Family::Any, "0.0.0.0")
        );
        let v6 = serve(&["-6", "--keepalive", "0", "0"]);
        assert_eq!((v6.net.family, v6.bind.as_str()), (Family::V6, "::"));
        assert_eq!(v6.net.keepalive, None);
        let rules = serve(&[
            "--allow",
            "10.0.0.0/8",
            "--allow",
            "::1",
            "--deny",
            "10.1.0.0/16",
            "0",
        ]);
        assert_eq!(rules.access.allow.len(), 2);
        assert_eq!(rules.access.deny, ["10.1.0.0/16".parse::<IpNet>().unwrap()]);
        assert!(Cli::try_parse_from(["duplex", "serve", "-4", "-6", "0"]).is_err());
        assert!(Cli::try_parse_from(["duplex", "connect", "-4", "-6", "h", "1"]).is_err());
        assert!(Cli::try_parse_from(["duplex", "serve", "--allow", "10.0.0.0/33", "0"]).is_err());
        assert!(Cli::try_parse_from(["duplex", "connect", "--allow", "::1", "h", "1"]).is_err());
        assert!(Cli::try_parse_from(["duplex", "connect", "--keepalive", "-1", "h", "1"]).is_err());
    }

    #[test]
    fn generate_needs_no_subcommand_and_excludes_one() {
        let cli = Cli::try_parse_from(["duplex", "--generate", "man"]).unwrap();
        assert!(matches!(cli.action(), Action::Generate(Generate::Man)));
        assert!(Cli::try_parse_from(["duplex", "--generate", "nonsense"]).is_err());
        assert!(
            Cli::try_parse_from(["duplex", "connect", "--color", "sometimes", "h", "1"]).is_err()
        );
        let mut page = Vec::new();
        generate(Generate::Man, &mut page).unwrap();
        assert!(String::from_utf8_lossy(&page).contains(".TH"));
    }
}
