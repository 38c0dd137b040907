//! The benchmarks of issue 3 (relay throughput, memory and round-trip
//! latency), run against the release binary and the classic peers.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example bench -- [--mib N] [--roundtrips N] [--runs N]
//! cargo run --release --example bench -- room [...]
//! ```
//!
//! Nothing here runs under `cargo test`: the example is only compiled there,
//! so it cannot rot. Performance is measured, never asserted.

mod relay;
mod room;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("relay") => relay::main(&args[1..]),
        Some("room") => room::main(&args[1..]),
        _ => relay::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}
