//! The `duplex` binary: parse the command line, set up diagnostics and
//! Ctrl-C, run the library, and map the outcome to an exit code (SPEC,
//! "Endings and exit codes"). Everything else lives in the library.

use clap::Parser;
use duplex::cli::{Action, Cli};
use duplex::{Ending, Status};
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    // Usage errors exit 2 with clap's message; --help and --version exit 0.
    let sub = match Cli::parse().action() {
        Action::Generate(kind) => return generate(kind),
        Action::Run(sub) => sub,
    };
    let common = sub.common();
    init_tracing(common.verbose);
    let status = Status::stderr(common.quiet);
    let mut view = common.view();

    let (trigger, shutdown) = duplex::shutdown_channel();
    let trigger = Arc::new(trigger);
    view.interrupt = Some(Arc::clone(&trigger));
    // First Ctrl-C/SIGTERM (or Ctrl-C typed in the terminal view): every
    // conversation closes gracefully, then we exit 130. A second one:
    // restore the terminal and exit at once.
    if let Err(error) = ctrlc::set_handler(move || duplex::view::interrupt(&trigger)) {
        tracing::warn!(%error, "could not install the Ctrl-C handler");
    }

    // Where --secret's words come from; a missing or empty one is a usage
    // error (2), like any bad option.
    let secret = match duplex::cli::secret(
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
    match duplex::run_interactive(&command, &shutdown, &status, &view) {
        Ok(Ending::Interrupted) => ExitCode::from(130),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr(), "duplex: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--generate`: a man page or completions on stdout; a closed pipe is fine.
fn generate(kind: duplex::cli::Generate) -> ExitCode {
    match duplex::cli::generate(kind, &mut io::stdout().lock()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
            let _ = writeln!(io::stderr(), "duplex: {error}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

/// Diagnostics go to stderr, only with -v or RUST_LOG: stdout is data.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => EnvFilter::new(match verbose {
            0 => "off",
            1 => "duplex=info",
            2 => "duplex=debug",
            _ => "trace",
        }),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false)
        .init();
}
