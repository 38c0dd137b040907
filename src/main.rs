//! The `duplex` binary: parse the command line, set up diagnostics and
//! Ctrl-C, run the library, and map the outcome to an exit code (SPEC,
//! "Endings and exit codes"). Everything else lives in the library.

use clap::Parser;
use duplex::cli::Cli;
use duplex::{Ending, Status};
use std::io::{self, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Usage errors exit 2 with clap's message; --help and --version exit 0.
    let cli = Cli::parse();
    let common = cli.common();
    init_tracing(common.verbose);
    let status = Status::stderr(common.quiet);

    let (trigger, shutdown) = duplex::shutdown_channel();
    // First Ctrl-C/SIGTERM: every conversation closes gracefully, then we exit
    // 130. A second one: exit at once.
    if let Err(error) = ctrlc::set_handler(move || {
        if !trigger.fire() {
            std::process::exit(130);
        }
    }) {
        tracing::warn!(%error, "could not install the Ctrl-C handler");
    }

    let command = cli.into_command(duplex::stdin_is_terminal());
    match duplex::run(&command, &shutdown, &status) {
        Ok(Ending::Interrupted) => ExitCode::from(130),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr(), "duplex: {error}");
            ExitCode::FAILURE
        }
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
