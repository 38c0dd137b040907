//! The integration tests: one test binary, one module per SPEC section
//! (`cargo test --test it chat::` runs one of them), all on one harness,
//! [`support`]. Every test spawns the real binary over loopback, except
//! `engine`, which drives the library in process. Two modules are not
//! sections, and their names make them start first: `alone` holds the
//! tests whose premise is timing, `bounds` those that wait out one of
//! SPEC's fixed bounds.

mod support;

mod alone;
mod bounds;
mod chat;
mod cli;
mod connections;
mod engine;
mod interop;
mod progress;
mod raw;
mod room;
mod secret;
mod serve;
mod signals;
mod terminal_safety;
mod tls;
mod view;
