//! The command line: clap types, the SECS parser, and the conversion into
//! plain [`crate::options`]. Clap stops here; the engine never sees it.

use crate::options::{
    Access, Command, ConnectOptions, ConversationOptions, Family, Mode, NetOptions, RoomOptions,
    ServeOptions,
};
use crate::view::{ColorChoice, ViewOptions};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::Duration;

/// A threaded, full-duplex TCP chat tool: a friendlier, safer netcat.
#[derive(Debug, Parser)]
#[command(
    name = "duplex",
    version,
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
    /// A roff man page, `duplex.1`.
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
    Run(Sub),
}

impl Cli {
    /// What to do. Neither a subcommand nor `--generate` is clap's usage
    /// error: it prints the message and exits 2.
    pub fn action(self) -> Action {
        match (self.generate, self.command) {
            (Some(kind), _) => Action::Generate(kind),
            (None, Some(sub)) => Action::Run(sub),
            (None, None) => Cli::command()
                .error(
                    clap::error::ErrorKind::MissingSubcommand,
                    "a subcommand is required: serve or connect (or --generate)",
                )
                .exit(),
        }
    }
}

/// Writes the man page or completions for `kind` to `out`.
pub fn generate(kind: Generate, out: &mut dyn Write) -> io::Result<()> {
    let mut command = Cli::command();
    let shell = match kind {
        Generate::Man => return clap_mangen::Man::new(command).render(out),
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
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Connect to HOST PORT and talk.
    #[command(after_help = CONNECT_EXAMPLES)]
    Connect(ConnectArgs),
}

const SERVE_EXAMPLES: &str = "\
Examples:
  duplex serve 9000                            chat with whoever connects, one at a time
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
    /// [default: 0.0.0.0; :: with -6].
    #[arg(short, long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// End after the first conversation.
    #[arg(long)]
    pub once: bool,
    /// Many peers at once; lines are relayed between them.
    #[arg(long, conflicts_with_all = ["raw", "once", "secret"])]
    pub room: bool,
    /// With --room: peers allowed at once.
    #[arg(long, value_name = "N", requires = "room", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_peers: Option<u32>,
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
    /// No status lines on stderr (errors still get their one line).
    #[arg(short, long)]
    pub quiet: bool,
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
    #[arg(long, value_name = "WORDS", num_args = 0..=1, require_equals = true)]
    pub secret: Option<Option<String>>,
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

/// Parses SECS: a non-negative number of seconds, fractions allowed.
pub fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if secs.is_sign_negative() {
        return Err(format!("'{text}' is negative; seconds must be 0 or more"));
    }
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("'{text}' is not a usable number of seconds"))
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
                conversation: connect.common.conversation(input_is_terminal),
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
) -> Result<Option<crate::transport::secret::Secret>, String> {
    use crate::transport::secret::{Secret, words};
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
            interrupt: None,
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
            security: crate::transport::Security::Plain,
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
