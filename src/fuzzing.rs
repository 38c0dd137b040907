//! The properties the fuzz targets check (`fuzz/`), as plain functions over
//! arbitrary bytes: each panics when a property fails. Not API: this module
//! exists with the `fuzzing` feature (for `fuzz/`) and in the crate's own
//! unit tests, which replay the committed corpus (`fuzz/corpus/`) through
//! the same functions, so the properties run in `cargo test` on stable.
//!
//! An input is decoded as a few parameter bytes, then the stream: which
//! reads the stream arrives in (so every property is checked across cuts,
//! as a socket delivers it), and for the room's line cutter its maximum
//! line length and whether it goes on after a line too long.

use crate::lines::model::{lines_cut, reference, reference_lines, scan_cut, show_cut};
use crate::render::model::{assert_safe, in_reads, reference as render_reference};
use crate::render::render;
use std::borrow::Cow;

/// At most this many cuts: enough to split the stream anywhere interesting.
const MAX_CUTS: usize = 8;

/// `data` as (parameters, sorted cut offsets into the stream, the stream).
fn split(data: &[u8], params: usize) -> (&[u8], Vec<usize>, &[u8]) {
    let (params, data) = data.split_at(params.min(data.len()));
    let (&count, data) = data.split_first().unwrap_or((&0, &[]));
    let count = usize::from(count) % (MAX_CUTS + 1);
    let (cuts, stream) = data.split_at(count.min(data.len()));
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|&b| usize::from(b) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    (params, cuts, stream)
}

/// The chat-mode line rules (`lines.rs`): the goodbye scanner, the filter
/// of what is shown, and the room's line cutter, each fed the stream in
/// reads, agree with the obvious rule on the whole stream (the first line
/// that is exactly `\n` or `\r\n` is the goodbye); nothing panics or loops.
pub fn lines(data: &[u8]) {
    let (params, cuts, stream) = split(data, 2);
    let max = 1 + usize::from(params.first().copied().unwrap_or(64)) % 80;
    let go_on = params.get(1).is_some_and(|b| b & 1 == 1);

    let (shown, end) = reference(stream);
    assert_eq!(
        scan_cut(stream, &cuts),
        end,
        "goodbye of {stream:?} cut at {cuts:?}"
    );
    assert_eq!(
        show_cut(stream, &cuts),
        (shown, end.is_some()),
        "shown of {stream:?} cut at {cuts:?}"
    );
    assert_eq!(
        lines_cut(stream, &cuts, max, go_on),
        reference_lines(stream, max, go_on),
        "room lines of {stream:?} cut at {cuts:?}, max {max}, go on {go_on}"
    );
}

/// The terminal-safety renderer (`render.rs`): no output byte is ESC, a C0
/// control other than `\n`, or DEL, and no output character is a C1 or
/// bidirectional control; the output is UTF-8; valid UTF-8 without controls
/// passes unchanged, without a copy; safe output renders to itself; any cut
/// of the stream into reads renders as the whole; and the renderer agrees
/// with the rule written the obvious way.
pub fn render_safe(data: &[u8]) {
    let (_, cuts, stream) = split(data, 0);
    let shown = render(stream);
    assert_safe(&shown, stream);
    if let Ok(text) = std::str::from_utf8(stream) {
        let plain = text.chars().all(|c| {
            c == '\n'
                || !matches!(c, '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        });
        if plain {
            assert!(
                matches!(&shown, Cow::Borrowed(t) if *t == text),
                "{text:?} was changed"
            );
        }
    }
    assert_eq!(
        render(shown.as_bytes()),
        shown,
        "rendering {stream:?} twice"
    );
    assert_eq!(in_reads(stream, &cuts), shown, "{stream:?} cut at {cuts:?}");
    assert_eq!(shown, render_reference(stream), "{stream:?}");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every input in `fuzz/corpus/<target>/`, and a few built in (so the
    /// test means something even where the corpus was not shipped).
    fn corpus(target: &str, built_in: &[&[u8]]) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut inputs: Vec<Vec<u8>> = built_in.iter().map(|b| b.to_vec()).collect();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    inputs.push(bytes);
                }
            }
        }
        inputs
    }

    #[test]
    fn the_lines_corpus_keeps_its_properties() {
        let inputs = corpus(
            "lines",
            &[
                b"",
                b"\x03\x01\x02\x05a\r\n\r\nb",
                b"\x05\x01\x02\x01\x03x\n\rab\n\n",
            ],
        );
        for input in &inputs {
            super::lines(input);
        }
    }

    #[test]
    fn the_render_corpus_keeps_its_properties() {
        let inputs = corpus(
            "render",
            &[
                b"",
                b"\x02\x01\x03caf\xc3\xa9\r\n\x1b[2J",
                b"\x00\xe2\x80\xae\t\x9b",
            ],
        );
        for input in &inputs {
            super::render_safe(input);
        }
    }
}
