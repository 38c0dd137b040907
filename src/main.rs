//! The `duplex` binary: parse the command line, set up diagnostics and
//! Ctrl-C, run the library, and map the outcome to an exit code (SPEC,
//! "Endings and exit codes"). Everything else lives in the library.

mod cli;
mod live;
mod view;

use cli::{Action, Cli, ColorArg};
use duplex::{Command, Ending, Shutdown, Status};
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

fn main() -> ExitCode {
    // Usage errors exit 2 with clap's message; --help and --version exit 0.
    let sub = match Cli::parse_args(std::env::args_os()).action() {
        Action::Generate(kind) => return generate(kind),
        Action::Run(sub) => sub,
    };
    let common = sub.common();
    init_tracing(common.verbose, common.color);
    // Raw transfers get a live progress line and a summary (live.rs); every
    // status line goes above that line while it is drawn.
    let raw = common.raw;
    let setting = live::Setting::of_process(common.progress(), raw, common.quiet, common.verbose);
    let total = (raw && !common.recv_only).then(live::stdin_size).flatten();
    let live = live::LiveLine::new(live::wanted(setting), setting.stdout_is_terminal, total);
    let status = Status::with_sink(common.quiet, {
        let live = Arc::clone(&live);
        Arc::new(move |line: &str| live.print(line))
    });
    let mut view = common.view();

    let (trigger, shutdown) = duplex::shutdown_channel();
    let trigger = Arc::new(trigger);
    view.interrupt = Some(Arc::clone(&trigger));
    // First Ctrl-C/SIGTERM (or Ctrl-C typed in the terminal view): every
    // conversation closes gracefully, then we exit 130. A second one:
    // restore the terminal and exit at once (the policy is in shutdown.rs).
    let erase = Arc::clone(&live);
    let before_exit = move || {
        erase.clear();
        view::restore_terminal();
    };
    if let Err(error) = ctrlc::set_handler(move || trigger.interrupt(before_exit.clone())) {
        tracing::warn!(%error, "could not install the Ctrl-C handler");
    }

    // Where --secret's words come from; a missing or empty one is a usage
    // error (2), like any bad option.
    let secret = match cli::secret(
        &sub,
        std::env::var_os(duplex::transport::secret::words::ENV),
        &mut io::stderr(),
    ) {
        Ok(secret) => secret,
        Err(message) => {
            use clap::CommandFactory;
            Cli::command()
                .error(clap::error::ErrorKind::ValueValidation, message)
                .exit()
        }
    };
    let mut command = sub.into_command(duplex::stdin_is_terminal());
    if let Some(secret) = secret {
        command.conversation_mut().security =
            duplex::transport::Security::Secret(duplex::transport::SecretSetup::new(secret));
    }
    if raw {
        let progress = live::Progress {
            live,
            status: status.clone(),
        };
        command.conversation_mut().watch = Some(duplex::progress::Watcher::new(Arc::new(progress)));
    }
    match run_interactive(&command, &shutdown, &status, &view) {
        Ok(Ending::Interrupted) => ExitCode::from(130),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr(), "duplex: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--generate`: a man page or completions on stdout; a closed pipe is fine.
fn generate(kind: cli::Generate) -> ExitCode {
    match cli::generate(kind, &mut io::stdout().lock()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
            let _ = writeln!(io::stderr(), "duplex: {error}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

/// Diagnostics go to stderr, only with -v or RUST_LOG: stdout is data.
///
/// `RUST_LOG` takes `tracing_subscriber`'s `Targets` syntax (`debug`,
/// `duplex=debug`, `duplex=trace,warn`), which needs no regex engine.
/// Colour only when stderr is a terminal and neither `--color never` nor
/// `NO_COLOR` says otherwise: a redirected log never gets escape codes.
fn init_tracing(verbose: u8, color: ColorArg) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let from_verbose = || match verbose {
        0 => Targets::new(),
        1 => Targets::new().with_target("duplex", LevelFilter::INFO),
        2 => Targets::new().with_target("duplex", LevelFilter::DEBUG),
        _ => Targets::new().with_default(LevelFilter::TRACE),
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => match text.parse::<Targets>() {
            Ok(filter) => filter,
            Err(error) => {
                let _ = writeln!(io::stderr(), "duplex: RUST_LOG={text:?} ignored: {error}");
                from_verbose()
            }
        },
        _ => from_verbose(),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = match color {
        ColorArg::Always => io::stderr().is_terminal(),
        ColorArg::Never => false,
        ColorArg::Auto => io::stderr().is_terminal() && !no_color,
    };
    // Our own copy of fd 2: the terminal view may point fd 2 at the
    // terminal while it draws (view.rs), and diagnostics keep going where
    // the user sent stderr.
    let writer = match io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => DiagWriter(Some(Arc::new(Mutex::new(File::from(fd))))),
        Err(_) => DiagWriter(None),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .init();
}

/// Where diagnostics go: the duplicate of stderr taken at start-up, or
/// nowhere when stderr was not open.
#[derive(Clone)]
struct DiagWriter(Option<Arc<Mutex<File>>>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for DiagWriter {
    type Writer = DiagWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Write for DiagWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.0 {
            // One event is one write: a poisoned lock still guards a file.
            Some(file) => match file.lock() {
                Ok(mut file) => file.write(buf),
                Err(poisoned) => poisoned.into_inner().write(buf),
            },
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Like `duplex::run`, but with the interactive terminal view ((`view`)) when
/// stdin and stdout are terminals; otherwise exactly `duplex::run`, so pipes stay
/// byte-exact.
fn run_interactive(
    command: &Command,
    shutdown: &Shutdown,
    status: &Status,
    options: &view::ViewOptions,
) -> duplex::Result<Ending> {
    if !view::wanted(command) {
        return duplex::run(command, shutdown, status);
    }
    let room = matches!(command, Command::Serve(serve) if serve.room.is_some());
    let view::Parts {
        view,
        mut input,
        mut output,
        status_sink,
        presence,
    } = view::View::start(options, room, shutdown).map_err(|source| duplex::Error::Local {
        op: "could not start the terminal view",
        source,
    })?;
    // Restores the terminal on every way out of here, even an unwinding
    // one; `finish` below does it too, after showing what is queued.
    let _restore = view::RestoreOnDrop;
    // Status lines show in the view (and, when stderr is redirected, go
    // there too: the view's sink does both).
    let status = status.to_sink(status_sink).with_presence(presence);
    let mut console = duplex::Console::new(&mut input, &mut output)
        .with_shutdown(shutdown.clone())
        .with_status(status);
    let ending = duplex::run_on(command, &mut console);
    // The editor may be waiting to hand over a line: let it go first.
    drop(input);
    drop(output);
    view.finish();
    ending
}
