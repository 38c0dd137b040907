//! The integration tests: one test binary, one module per SPEC section
//! (`cargo test --test it chat::` runs one of them), all on one harness,
//! [`support`]. Every test spawns the real binary over loopback, except
//! `engine`, which drives the library in process. `bounds` holds the tests
//! that wait out one of SPEC's fixed bounds; its name makes them start first.

mod support;

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
