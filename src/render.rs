//! The rendering rule (SPEC, "Terminal safety"; issue 8): how a peer's bytes
//! are shown on a terminal, so that they never take it over.
//!
//! This module owns the one rule every place uses where peer bytes can meet
//! a terminal: the interactive view, a terminal stdout without the view, and
//! the room's relay to its peers and to the server's output.
//!
//! - Printable characters and valid UTF-8 pass through unchanged.
//! - `\n` is kept; a `\r` right before `\n` is part of the line ending and is
//!   dropped (CRLF becomes `\n`).
//! - A tab becomes spaces up to the next multiple of [`TAB_STOP`] columns,
//!   counted from the last `\n` (one column per character shown: a wide CJK
//!   character counts as one, so its tab stops may be off; nothing unsafe).
//! - Every other C0 control, and DEL, is shown in caret notation: ESC as
//!   `^[`, a lone `\r` as `^M`, DEL as `^?`.
//! - The C1 controls (U+0080–U+009F, as UTF-8) and the bidirectional
//!   embedding, override and isolate controls (U+202A–U+202E,
//!   U+2066–U+2069) are shown by code point: `<U+009B>`, `<U+202E>`.
//! - Invalid UTF-8 becomes U+FFFD, one per maximal invalid subpart, exactly
//!   as [`String::from_utf8_lossy`] does.
//!
//! So no output byte is ever ESC, a C0 control other than `\n`, DEL, or part
//! of a C1 or bidirectional control: no escape sequence from a peer clears
//! the screen, moves the cursor, sets the title or writes the clipboard, and
//! no `\r` overwrites what is on the line.
//!
//! [`Renderer`] applies the rule to a stream that arrives in reads: any cut
//! of the input renders exactly as the whole, because a UTF-8 character or a
//! `\r` at the end of a read waits (at most 3 bytes) for the next one.
//! [`render`] applies it to bytes known to be whole, such as a line.
//! [`RenderingWriter`] is a [`Write`] that renders everything written
//! through it.

use std::borrow::Cow;
use std::io::{self, Write};

/// Tab stops are every this many columns.
pub const TAB_STOP: usize = 8;

/// Renders `bytes`, taken as the whole of what is to be shown (an incomplete
/// UTF-8 character or a `\r` at the end is shown, not held back). Borrows
/// when there is nothing to change.
///
/// ```
/// use duplex::render::render;
///
/// // A peer tries to clear the screen, set the title and overwrite a line.
/// let shown = render(b"hi\x1b[2J\x1b]0;pwned\x07\r[server] fake\r\n");
/// assert_eq!(shown, "hi^[[2J^[]0;pwned^G^M[server] fake\n");
/// assert_eq!(render("caf\u{e9} \u{202e}gpj.exe".as_bytes()), "caf\u{e9} <U+202E>gpj.exe");
/// assert_eq!(render(b"\xff ok"), "\u{fffd} ok");
/// ```
pub fn render(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(text) = unchanged(bytes) {
        return Cow::Borrowed(text);
    }
    let mut renderer = Renderer::new();
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 4);
    renderer.feed(bytes, &mut out);
    renderer.finish(&mut out);
    Cow::Owned(into_string(out))
}

/// `bytes` as text, if the rule leaves them exactly as they are.
fn unchanged(bytes: &[u8]) -> Option<&str> {
    // The common case, plain ASCII lines, in one cheap pass.
    if bytes
        .iter()
        .all(|&b| b == b'\n' || (0x20..0x7f).contains(&b))
    {
        // Every byte is ASCII, so this cannot fail.
        return std::str::from_utf8(bytes).ok();
    }
    let text = std::str::from_utf8(bytes).ok()?;
    text.chars()
        .all(|c| c == '\n' || shown_as_is(c))
        .then_some(text)
}

/// Whether `c` is printed as itself.
fn shown_as_is(c: char) -> bool {
    !matches!(c,
        '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn into_string(bytes: Vec<u8>) -> String {
    // The renderer writes only whole UTF-8 characters, so this never loses
    // anything; the lossy path is there so that it can never panic.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The rendering rule over a stream: feed it each read as it comes, and
/// call [`Renderer::finish`] at the end. However the stream is cut into
/// reads, the result is that of [`render`] on the whole.
///
/// ```
/// use duplex::render::Renderer;
///
/// let mut renderer = Renderer::new();
/// let mut out = Vec::new();
/// // "é" and "\r\n" cut across reads: each waits for the rest.
/// for read in [&b"caf\xc3"[..], b"\xa9\r", b"\n\x1b[H"] {
///     renderer.feed(read, &mut out);
/// }
/// renderer.finish(&mut out);
/// assert_eq!(out, "caf\u{e9}\n^[[H".as_bytes());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Renderer {
    /// The start of a UTF-8 character cut by the end of the last read.
    pending: [u8; 4],
    pending_len: usize,
    /// A `\r` at the end of what came so far: a line ending if `\n` follows.
    cr: bool,
    /// Columns shown since the last `\n`, for tab stops.
    column: usize,
}

impl Renderer {
    /// A renderer at the start of a line.
    pub fn new() -> Renderer {
        Renderer::default()
    }

    /// Appends the rendering of `data` to `out`. What cannot be decided yet
    /// (a `\r`, or a character cut by the end of `data`) waits for the next
    /// call or for [`Renderer::finish`].
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        // First complete the character begun in the last read.
        while self.pending_len > 0 {
            let Some((&byte, rest)) = data.split_first() else {
                return;
            };
            self.pending[self.pending_len] = byte;
            let sequence = self.pending;
            match std::str::from_utf8(&sequence[..=self.pending_len]) {
                Ok(text) => {
                    self.pending_len = 0;
                    data = rest;
                    for c in text.chars() {
                        self.char(c, out);
                    }
                }
                Err(error) if error.error_len().is_none() => {
                    self.pending_len += 1;
                    data = rest;
                }
                // `byte` cannot continue it: the bytes before it are one
                // invalid sequence, and `byte` starts afresh below.
                Err(_) => {
                    self.pending_len = 0;
                    self.char(char::REPLACEMENT_CHARACTER, out);
                }
            }
        }
        let mut chunks = data.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            self.text(chunk.valid(), out);
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            let cut_short = chunks.peek().is_none()
                && std::str::from_utf8(invalid).is_err_and(|e| e.error_len().is_none());
            if cut_short {
                // At most 3 bytes: the start of a character the next read
                // may complete.
                self.pending[..invalid.len()].copy_from_slice(invalid);
                self.pending_len = invalid.len();
            } else {
                self.char(char::REPLACEMENT_CHARACTER, out);
            }
        }
    }

    /// The end of the stream: shows what was waiting (a `\r` as `^M`, a
    /// character cut short as U+FFFD). The renderer is then at the start of
    /// a new stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_len > 0 {
            self.pending_len = 0;
            self.char(char::REPLACEMENT_CHARACTER, out);
        }
        if self.cr {
            self.cr = false;
            self.shown("^M", 2, out);
        }
        self.column = 0;
    }

    /// Valid text: runs of characters shown as they are are copied whole.
    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let mut run = 0;
        for (i, c) in text.char_indices() {
            if shown_as_is(c) && !self.cr {
                continue;
            }
            self.run(&text[run..i], out);
            self.char(c, out);
            run = i + c.len_utf8();
        }
        self.run(&text[run..], out);
    }

    /// Characters that are all shown as they are.
    fn run(&mut self, text: &str, out: &mut Vec<u8>) {
        if !text.is_empty() {
            out.extend_from_slice(text.as_bytes());
            self.column += text.chars().count();
        }
    }

    fn char(&mut self, c: char, out: &mut Vec<u8>) {
        if self.cr {
            self.cr = false;
            if c == '\n' {
                out.push(b'\n');
                self.column = 0;
                return;
            }
            self.shown("^M", 2, out);
        }
        match c {
            '\n' => {
                out.push(b'\n');
                self.column = 0;
            }
            '\r' => self.cr = true,
            '\t' => {
                let spaces = TAB_STOP - self.column % TAB_STOP;
                out.extend(std::iter::repeat_n(b' ', spaces));
                self.column += spaces;
            }
            '\0'..='\u{1f}' => {
                // `c` is below 0x20 here, so this is `@`..`_`.
                let caret = [b'^', b'@' + c as u8];
                out.extend_from_slice(&caret);
                self.column += 2;
            }
            '\u{7f}' => self.shown("^?", 2, out),
            c if !shown_as_is(c) => {
                let name = format!("<U+{:04X}>", u32::from(c));
                self.shown(&name, name.len(), out);
            }
            c => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                self.column += 1;
            }
        }
    }

    fn shown(&mut self, text: &str, columns: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(text.as_bytes());
        self.column += columns;
    }
}

/// A [`Write`] that renders everything written through it before passing
/// it on: for a terminal stdout. Dropping it shows what was still waiting
/// (see [`Renderer::finish`]).
///
/// ```
/// use duplex::render::RenderingWriter;
/// use std::io::Write;
///
/// let mut screen = Vec::new();
/// {
///     let mut writer = RenderingWriter::new(&mut screen);
///     writer.write_all(b"\x1b]52;c;cm0gLXJmIH4K\x07ok\r")?;
/// } // dropped: the last `\r`, which waited for a `\n`, is shown
/// assert_eq!(screen, b"^[]52;c;cm0gLXJmIH4K^Gok^M");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RenderingWriter<W: Write> {
    inner: W,
    renderer: Renderer,
    buf: Vec<u8>,
}

impl<W: Write> RenderingWriter<W> {
    /// Renders what is written and passes it on to `inner`.
    pub fn new(inner: W) -> Self {
        RenderingWriter {
            inner,
            renderer: Renderer::new(),
            buf: Vec::new(),
        }
    }
}

impl<W: Write> Write for RenderingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.clear();
        self.renderer.feed(data, &mut self.buf);
        // All or nothing: `data` has been taken into the renderer's state.
        self.inner.write_all(&self.buf)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for RenderingWriter<W> {
    fn drop(&mut self) {
        self.buf.clear();
        self.renderer.finish(&mut self.buf);
        if !self.buf.is_empty() {
            // Best effort on the way out: there is nowhere to report to.
            let _ = self.inner.write_all(&self.buf);
            let _ = self.inner.flush();
        }
    }
}

/// The rule written the slow, obvious way, and what every output must
/// satisfy: the unit tests below and the fuzz targets (`fuzz/`, through
/// `crate::fuzzing`) check the renderer against them.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod model {
    use super::*;

    #[cfg(test)]
    pub(crate) fn whole(bytes: &[u8]) -> String {
        render(bytes).into_owned()
    }

    /// The rule written the slow, obvious way: decode whole, then map each
    /// character. The renderer must agree with it on every input.
    pub(crate) fn reference(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        let mut out = String::new();
        let mut column = 0;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let shown = match c {
                '\r' if chars.peek() == Some(&'\n') => continue,
                '\n' => {
                    out.push('\n');
                    column = 0;
                    continue;
                }
                '\t' => " ".repeat(TAB_STOP - column % TAB_STOP),
                '\u{7f}' => "^?".to_owned(),
                c if (c as u32) < 0x20 => format!("^{}", char::from(b'@' + c as u8)),
                c if ('\u{80}'..='\u{9f}').contains(&c)
                    || ('\u{202a}'..='\u{202e}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c) =>
                {
                    format!("<U+{:04X}>", c as u32)
                }
                c => c.to_string(),
            };
            column += shown.chars().count();
            out.push_str(&shown);
        }
        out
    }

    /// Renders `bytes` fed in the reads that `cuts` (sorted offsets) make.
    pub(crate) fn in_reads(bytes: &[u8], cuts: &[usize]) -> String {
        let mut renderer = Renderer::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain([&bytes.len()]) {
            renderer.feed(&bytes[start..cut], &mut out);
            start = cut;
        }
        renderer.finish(&mut out);
        String::from_utf8(out).expect("the renderer writes UTF-8")
    }

    /// Every byte the rule may write: no ESC, no C0 but `\n` (tabs become
    /// spaces), no DEL, and no C1 or bidirectional control as a character.
    pub(crate) fn assert_safe(shown: &str, input: &[u8]) {
        for b in shown.bytes() {
            assert!(
                b == b'\n' || (b >= 0x20 && b != 0x7f),
                "byte {b:#04x} in {shown:?} from {input:?}"
            );
        }
        for c in shown.chars() {
            assert!(
                c == '\n' || shown_as_is(c),
                "{c:?} in {shown:?} from {input:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::*;

    /// xorshift64*: a small deterministic generator, so every run tests
    /// the same inputs and a failure can be replayed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Hostile-looking bytes: pieces of escape sequences, controls,
        /// C1 and bidi characters, multi-byte UTF-8 (whole and broken),
        /// and random bytes.
        fn bytes(&mut self) -> Vec<u8> {
            const PIECES: &[&[u8]] = &[
                b"a",
                b"hello ",
                b"\n",
                b"\r",
                b"\r\n",
                b"\t",
                b"\x1b",
                b"\x1b[2J",
                b"\x1b]0;t\x07",
                b"\x08",
                b"\x7f",
                b"\x00",
                "\u{9b}".as_bytes(),
                "\u{85}".as_bytes(),
                "\u{202e}".as_bytes(),
                "\u{2067}".as_bytes(),
                "\u{200f}".as_bytes(),
                "é".as_bytes(),
                "世".as_bytes(),
                "😀".as_bytes(),
                b"\xe2\x82",
                b"\xf0\x9f",
                b"\xff",
                b"\xc0\xaf",
                b"\xed\xa0\x80",
                b"\x9b",
            ];
            let mut out = Vec::new();
            for _ in 0..self.below(24) {
                if self.below(4) == 0 {
                    out.push(self.next() as u8);
                } else {
                    out.extend_from_slice(PIECES[self.below(PIECES.len())]);
                }
            }
            out
        }
    }

    #[test]
    fn no_control_ever_gets_through_and_cuts_never_matter() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let input = rng.bytes();
            let shown = whole(&input);
            assert_safe(&shown, &input);
            assert_eq!(shown, reference(&input), "{input:?}");
            // Already safe text is left alone.
            assert_eq!(whole(shown.as_bytes()), shown, "{input:?}");
            let mut cuts: Vec<usize> = (0..rng.below(5))
                .map(|_| rng.below(input.len() + 1))
                .collect();
            cuts.sort_unstable();
            assert_eq!(in_reads(&input, &cuts), shown, "{input:?} cut at {cuts:?}");
        }
    }

    #[test]
    fn every_single_cut_and_every_byte_at_a_time_renders_the_same() {
        let mut rng = Rng(42);
        for _ in 0..500 {
            let input = rng.bytes();
            let shown = whole(&input);
            for cut in 0..=input.len() {
                assert_eq!(in_reads(&input, &[cut]), shown, "{input:?} cut at {cut}");
            }
            let every: Vec<usize> = (1..input.len()).collect();
            assert_eq!(in_reads(&input, &every), shown, "{input:?} byte by byte");
        }
    }

    #[test]
    fn text_without_controls_passes_unchanged() {
        let mut rng = Rng(7);
        const SAFE: &[&str] = &[
            "a", "Z", " ", "\n", "~", "é", "ß", "世界", "😀", "\u{200f}", "\u{a0}", "ä̈",
        ];
        for _ in 0..5_000 {
            let text: String = (0..rng.below(30))
                .map(|_| SAFE[rng.below(SAFE.len())])
                .collect();
            assert!(matches!(render(text.as_bytes()), Cow::Borrowed(t) if t == text));
            let every: Vec<usize> = (1..text.len()).collect();
            assert_eq!(in_reads(text.as_bytes(), &every), text);
        }
    }

    /// The regression corpus: what hostile peers send, and what is shown.
    #[test]
    fn hostile_sequences_are_shown_not_obeyed() {
        let corpus: &[(&str, &[u8], &str)] = &[
            ("clear screen", b"\x1b[2J\x1b[H", "^[[2J^[[H"),
            (
                "cursor moves",
                b"\x1b[5A\x1b[10;20Hx\x1b7\x1b8",
                "^[[5A^[[10;20Hx^[7^[8",
            ),
            (
                "\\r overwrite",
                b"password: hunter2\r*****************\n",
                "password: hunter2^M*****************\n",
            ),
            ("OSC title", b"\x1b]0;pwned\x07", "^[]0;pwned^G"),
            ("OSC title, ST", b"\x1b]2;pwned\x1b\\", "^[]2;pwned^[\\"),
            (
                "OSC 52 clipboard",
                b"\x1b]52;c;cm0gLXJmIH4K\x07",
                "^[]52;c;cm0gLXJmIH4K^G",
            ),
            (
                "C1 CSI",
                "\u{9b}2J\u{9d}0;t\u{9c}".as_bytes(),
                "<U+009B>2J<U+009D>0;t<U+009C>",
            ),
            ("raw C1 byte", b"\x9b2J", "\u{fffd}2J"),
            (
                "bidi overrides",
                "a\u{202e}txt.exe\u{202c}b".as_bytes(),
                "a<U+202E>txt.exe<U+202C>b",
            ),
            (
                "bidi isolates",
                "\u{2066}\u{2067}\u{2068}\u{2069}".as_bytes(),
                "<U+2066><U+2067><U+2068><U+2069>",
            ),
            (
                "backspaces",
                b"rm -rf /\x08\x08\x08\x08ls  ",
                "rm -rf /^H^H^H^Hls  ",
            ),
            (
                "invalid UTF-8",
                b"\xff\xfe ok \xc0\xaf \xe2\x82",
                "\u{fffd}\u{fffd} ok \u{fffd}\u{fffd} \u{fffd}",
            ),
            ("NUL, BEL, DEL", b"\x00\x07\x7f", "^@^G^?"),
            ("CRLF line ending", b"hi\r\nthere\r\n", "hi\nthere\n"),
            ("lone CR at the end", b"hi\r", "hi^M"),
            ("CR CR LF", b"hi\r\r\n", "hi^M\n"),
            (
                "tabs to the next stop",
                b"\ta\tab\n1234567\tx",
                "        a       ab\n1234567 x",
            ),
            (
                "the issue's line",
                b"hi\x1b[2J\x1b]0;pwned\x07\r[server] fake\n",
                "hi^[[2J^[]0;pwned^G^M[server] fake\n",
            ),
        ];
        for (what, input, expected) in corpus {
            assert_eq!(whole(input), *expected, "{what}");
            assert_safe(expected, input);
        }
    }

    #[test]
    fn the_writer_renders_across_writes_and_finishes_on_drop() {
        let mut out = Vec::new();
        {
            let mut writer = RenderingWriter::new(&mut out);
            for piece in [&b"a\xe2"[..], b"\x80", b"\xaa\x1b", b"[H\r", b"\nend\r"] {
                assert_eq!(writer.write(piece).unwrap(), piece.len());
            }
        }
        assert_eq!(String::from_utf8(out).unwrap(), "a<U+202A>^[[H\nend^M");
    }
}
