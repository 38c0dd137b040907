//! The chat-mode line rules (src/lines.rs) against the obvious rule, over
//! any stream cut into any reads: see `duplex::fuzzing::lines`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex::fuzzing::lines(data));
