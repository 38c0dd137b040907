//! The chat-mode line rules as a pure byte scanner: where does the goodbye
//! (an empty line, `\n` or `\r\n`) fall in a stream that arrives in chunks?
//!
//! Bytes move through duplex in chunks of many lines, cut wherever a `read`
//! happened to return, so the scanner keeps the little state that crosses a
//! cut: whether the next byte starts a line, and whether the line so far is a
//! lone `\r`. Inside a chunk, a goodbye is a `\n\n` or `\n\r\n`, found by
//! two SIMD substring searches over the whole chunk (`memchr::memmem`), so
//! chat mode costs almost nothing over raw mode: no work per line.

use memchr::memmem::Finder;
use std::ops::Range;
use std::sync::LazyLock;

/// An empty line after a line: `\n\n`.
static EMPTY_LF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
/// An empty CRLF line after a line: `\n\r\n`.
static EMPTY_CRLF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\r\n"));

/// Where the scanner stands between two bytes of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The next byte starts a line (also the very start of the stream).
    LineStart,
    /// The line so far is exactly `\r`: one more `\n` makes it a goodbye.
    LineStartCr,
    /// Inside a line that already has content.
    MidLine,
}

/// An empty line found by [`GoodbyeScanner::scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Goodbye {
    /// Index in the chunk just past the goodbye's `\n`.
    pub end: usize,
    /// Length of the goodbye line: 1 for `\n`, 2 for `\r\n`.
    pub len: usize,
}

impl Goodbye {
    /// Index in the chunk where the goodbye line starts, or `None` when its
    /// `\r` came at the end of the previous chunk.
    pub fn start(&self) -> Option<usize> {
        self.end.checked_sub(self.len)
    }
}

/// Finds the first empty line in a stream fed chunk by chunk.
#[derive(Clone, Debug)]
pub struct GoodbyeScanner {
    state: State,
}

impl Default for GoodbyeScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl GoodbyeScanner {
    /// A scanner at the start of a stream (which is the start of a line).
    pub fn new() -> Self {
        GoodbyeScanner {
            state: State::LineStart,
        }
    }

    /// Scans the next chunk of the stream. Returns the first goodbye in it, if
    /// any; the scanner then stands at the start of the line after it.
    pub fn scan(&mut self, chunk: &[u8]) -> Option<Goodbye> {
        let &first = chunk.first()?;
        // A goodbye that starts at the cut: the state says whether the bytes
        // just before it end a line (and hold a lone `\r`).
        match (self.state, first, chunk.get(1)) {
            (State::LineStart, b'\n', _) => return self.found(1, 1),
            (State::LineStart, b'\r', Some(b'\n')) => return self.found(2, 2),
            (State::LineStartCr, b'\n', _) => return self.found(1, 2),
            _ => {}
        }
        // Inside the chunk every goodbye follows a `\n`: one SIMD search for
        // each form over the whole chunk, instead of one call per line.
        let lf = EMPTY_LF.find(chunk).map(|at| (at + 2, 1));
        let crlf = EMPTY_CRLF.find(chunk).map(|at| (at + 3, 2));
        // Lines do not overlap, so the goodbye that ends first starts first.
        if let Some((end, len)) = [lf, crlf].into_iter().flatten().min() {
            return self.found(end, len);
        }
        self.state = match chunk {
            [.., b'\n'] => State::LineStart,
            [.., b'\n', b'\r'] => State::LineStartCr,
            [b'\r'] if self.state == State::LineStart => State::LineStartCr,
            _ => State::MidLine,
        };
        None
    }

    fn found(&mut self, end: usize, len: usize) -> Option<Goodbye> {
        self.state = State::LineStart;
        Some(Goodbye { end, len })
    }

    /// True when the stream so far ends in a `\r` that starts a line: the next
    /// byte decides whether it is data or the start of a `\r\n` goodbye.
    pub fn pending_cr(&self) -> bool {
        self.state == State::LineStartCr
    }
}

/// What to show of one chunk received from the peer: see [`ShowFilter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Show {
    /// Write a `\r` held back from the previous chunk first.
    pub held_cr: bool,
    /// The part of this chunk to write.
    pub body: Range<usize>,
    /// The chunk held the peer's goodbye: nothing after `body` is shown.
    pub goodbye: bool,
}

/// Decides which received bytes reach the output in chat mode: everything
/// up to the goodbye line, byte-exact, and nothing from it on.
///
/// A `\r` that ends a chunk at the start of a line is held back until the
/// next chunk tells whether it begins a `\r\n` goodbye.
#[derive(Clone, Debug, Default)]
pub struct ShowFilter {
    scanner: GoodbyeScanner,
    held_cr: bool,
}

impl ShowFilter {
    /// A filter at the start of the peer's stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Filters one non-empty chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> Show {
        let held_cr = std::mem::take(&mut self.held_cr);
        match self.scanner.scan(chunk) {
            Some(goodbye) => match goodbye.start() {
                Some(start) => Show {
                    held_cr,
                    body: 0..start,
                    goodbye: true,
                },
                // The held `\r` was the goodbye's own.
                None => Show {
                    held_cr: false,
                    body: 0..0,
                    goodbye: true,
                },
            },
            None => {
                self.held_cr = !chunk.is_empty() && self.scanner.pending_cr();
                let end = chunk.len() - usize::from(self.held_cr);
                Show {
                    held_cr,
                    body: 0..end,
                    goodbye: false,
                }
            }
        }
    }

    /// At the end of the stream: true when a held `\r` is still to be shown
    /// (the stream ended in it, so it was data).
    pub fn finish(&mut self) -> bool {
        std::mem::take(&mut self.held_cr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule, stated the slow and obvious way: the bytes before the first
    /// line that is exactly `\n` or `\r\n`, and whether there was one.
    fn reference(stream: &[u8]) -> (Vec<u8>, Option<usize>) {
        let mut start = 0;
        while start < stream.len() {
            let end = match stream[start..].iter().position(|&b| b == b'\n') {
                Some(i) => start + i + 1,
                None => return (stream.to_vec(), None),
            };
            let line = &stream[start..end];
            if line == b"\n" || line == b"\r\n" {
                return (stream[..start].to_vec(), Some(end));
            }
            start = end;
        }
        (stream.to_vec(), None)
    }

    /// Runs the scanner over `stream` cut at `cuts`; returns the index past
    /// the goodbye in the whole stream.
    fn scan_cut(stream: &[u8], cuts: &[usize]) -> Option<usize> {
        let mut scanner = GoodbyeScanner::new();
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&stream.len())) {
            if let Some(g) = scanner.scan(&stream[from..to]) {
                return Some(from + g.end);
            }
            from = to;
        }
        None
    }

    /// Runs the show filter over `stream` cut at `cuts`; returns what would
    /// be written and whether a goodbye was seen.
    fn show_cut(stream: &[u8], cuts: &[usize]) -> (Vec<u8>, bool) {
        let mut filter = ShowFilter::new();
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&stream.len())) {
            let chunk = &stream[from..to];
            from = to;
            if chunk.is_empty() {
                continue;
            }
            let show = filter.feed(chunk);
            if show.held_cr {
                out.push(b'\r');
            }
            out.extend_from_slice(&chunk[show.body]);
            if show.goodbye {
                return (out, true);
            }
        }
        if filter.finish() {
            out.push(b'\r');
        }
        (out, false)
    }

    const SAMPLES: &[&[u8]] = &[
        b"",
        b"\n",
        b"\r\n",
        b"\r",
        b"\r\r\n\n",
        b"hello\n\nafter\n",
        b"hello\r\n\r\nafter",
        b"a\nb\nc",
        b"a\r\nb\r\n",
        b"\ra\n\r\n",
        b"x\r\r\n\r\n",
        b"line\n\r",
        b"line\n\rx\n",
        b"\xff\x00\r\n\xfe\n\n",
        b"no newline at all",
        b"\n\n\n",
    ];

    #[test]
    fn finds_the_first_empty_line() {
        assert_eq!(scan_cut(b"a\n\nb\n", &[]), Some(3));
        assert_eq!(scan_cut(b"a\r\n\r\nb", &[]), Some(5));
        assert_eq!(scan_cut(b"\n", &[]), Some(1));
        assert_eq!(scan_cut(b"a\rb\n\r\rc\n", &[]), None);
        assert_eq!(scan_cut(b"\rx\n", &[]), None);
    }

    #[test]
    fn every_two_and_three_way_cut_agrees_with_the_rule() {
        for &stream in SAMPLES {
            let (shown, end) = reference(stream);
            let n = stream.len();
            for a in 0..=n {
                for b in a..=n {
                    let cuts = [a, b];
                    assert_eq!(scan_cut(stream, &cuts), end, "{stream:?} cut at {cuts:?}");
                    assert_eq!(
                        show_cut(stream, &cuts),
                        (shown.clone(), end.is_some()),
                        "{stream:?} cut at {cuts:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn random_streams_and_random_cuts_agree_with_the_rule() {
        // A small deterministic generator: the test must be repeatable.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = [b'a', b'\n', b'\r', b'\n', 0xff, b'x'];
        for _ in 0..3000 {
            let len = (next() % 24) as usize;
            let stream: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let mut cuts: Vec<usize> = (0..(next() % 5))
                .map(|_| (next() % (len as u64 + 1)) as usize)
                .collect();
            cuts.sort_unstable();
            let (shown, end) = reference(&stream);
            assert_eq!(scan_cut(&stream, &cuts), end, "{stream:?} {cuts:?}");
            assert_eq!(
                show_cut(&stream, &cuts),
                (shown, end.is_some()),
                "{stream:?} {cuts:?}"
            );
        }
    }

    #[test]
    fn one_byte_reads_agree_with_the_rule() {
        for &stream in SAMPLES {
            let cuts: Vec<usize> = (1..stream.len()).collect();
            let (shown, end) = reference(stream);
            assert_eq!(scan_cut(stream, &cuts), end);
            assert_eq!(show_cut(stream, &cuts), (shown, end.is_some()));
        }
    }
}
