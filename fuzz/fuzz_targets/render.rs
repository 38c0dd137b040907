//! The terminal-safety renderer (src/render.rs): nothing unsafe ever comes
//! out, safe text passes unchanged, cuts never matter: see
//! `duplex::fuzzing::render_safe`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex::fuzzing::render_safe(data));
