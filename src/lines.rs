//! The chat-mode line rules as a pure byte scanner: where does the goodbye
//! (an empty line, `\n` or `\r\n`) fall in a stream that arrives in chunks?
//!
//! Bytes move through duplex in chunks of many lines, cut wherever a `read`
//! happened to return, so the scanner keeps the little state that crosses a
//! cut: whether the next byte starts a line, and whether the line so far is a
//! lone `\r`. Inside a chunk, a goodbye is a `\n\n` or `\n\r\n`, found by
//! two SIMD substring searches over the whole chunk (`memchr::memmem`), so
//! chat mode costs almost nothing over raw mode: no work per line.
//!
//! The room cuts the same streams into whole lines ([`LineCutter`]); it
//! finds the goodbye with the same [`GoodbyeScanner`], so the rule lives in
//! one place and one set of every-cut tests covers both callers.

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

/// Why [`LineCutter::feed`] stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// An empty line (`\n` or `\r\n`): the goodbye.
    Goodbye,
    /// A line longer than the cutter's maximum; it is dropped whole.
    TooLong,
}

/// Cuts a stream that arrives in reads into whole lines, for the room: a
/// line is handed over only once its `\n` has arrived, and never one longer
/// than the maximum, so no line is ever cut or interleaved. The goodbye is
/// found by a [`GoodbyeScanner`] over each read, before any line of it is
/// handed over; at most `max` bytes of a line begun in an earlier read are
/// held.
#[derive(Debug)]
pub struct LineCutter {
    scanner: GoodbyeScanner,
    /// The start of a line whose `\n` has not arrived yet.
    partial: Vec<u8>,
    /// Dropping the rest of a line that was too long.
    skipping: bool,
    max: usize,
}

impl LineCutter {
    /// A cutter at the start of a stream, for lines of at most `max` bytes
    /// (not counting the `\n`).
    pub fn new(max: usize) -> Self {
        LineCutter {
            scanner: GoodbyeScanner::new(),
            partial: Vec::new(),
            skipping: false,
            max,
        }
    }

    /// Hands every whole line of `data` to `line`, without its `\n` (a
    /// `\r` before it stays). Stops after a goodbye or a line too long;
    /// returns how much of `data` it used and why it stopped. After a line
    /// too long, feeding the rest goes on with the next line (a line too
    /// long whose end has not arrived is skipped until its `\n`).
    pub fn feed(&mut self, data: &[u8], mut line: impl FnMut(&[u8])) -> (usize, Option<Cut>) {
        let goodbye = self.scanner.scan(data);
        let end = match goodbye {
            Some(goodbye) => goodbye.start().unwrap_or_else(|| {
                // The goodbye's `\r` is the held line start.
                self.partial.clear();
                0
            }),
            None => data.len(),
        };
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', &data[..end]) {
            let piece = &data[start..newline];
            start = newline + 1;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.partial.len() + piece.len() > self.max {
                self.reset();
                return (start, Some(Cut::TooLong));
            }
            if self.partial.is_empty() {
                line(piece);
            } else {
                self.partial.extend_from_slice(piece);
                line(&self.partial);
                self.partial.clear();
            }
        }
        let rest = &data[start..end];
        if !self.skipping && !rest.is_empty() {
            if self.partial.len() + rest.len() > self.max {
                // `rest` has no `\n`, so no goodbye follows it in `data`.
                self.partial = Vec::new();
                self.skipping = true;
                return (data.len(), Some(Cut::TooLong));
            }
            self.partial.extend_from_slice(rest);
        }
        if let Some(goodbye) = goodbye {
            self.reset();
            return (goodbye.end, Some(Cut::Goodbye));
        }
        if self.partial.is_empty() && self.partial.capacity() > 64 * 1024 {
            // A long line has passed: give its memory back.
            self.partial = Vec::new();
        }
        (data.len(), None)
    }

    /// At the end of the stream: hands over a last line that had no `\n`.
    /// Returns whether there was one.
    pub fn finish(&mut self, mut line: impl FnMut(&[u8])) -> bool {
        if self.skipping || self.partial.is_empty() {
            return false;
        }
        line(&self.partial);
        self.reset();
        true
    }

    fn reset(&mut self) {
        self.scanner = GoodbyeScanner::new();
        self.partial = Vec::new();
        self.skipping = false;
    }
}

/// The rule, stated the slow and obvious way, and every caller of the
/// scanner run over a stream cut into reads: the unit tests below and the
/// fuzz targets (`fuzz/`, through `crate::fuzzing`) check one against the
/// other.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod model {
    use super::*;

    /// The rule, stated the slow and obvious way: the bytes before the first
    /// line that is exactly `\n` or `\r\n`, and whether there was one.
    pub(crate) fn reference(stream: &[u8]) -> (Vec<u8>, Option<usize>) {
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
    pub(crate) fn scan_cut(stream: &[u8], cuts: &[usize]) -> Option<usize> {
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
    pub(crate) fn show_cut(stream: &[u8], cuts: &[usize]) -> (Vec<u8>, bool) {
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

    /// The room's rule, the slow and obvious way: the lines before the
    /// first empty one, each after `L ` and ending in `\n`, and the cuts.
    /// A line over `max` bytes is a [`Cut::TooLong`]; a peer (`go_on`
    /// false) stops there, the server's input goes on with the next line.
    pub(crate) fn reference_lines(stream: &[u8], max: usize, go_on: bool) -> (Vec<u8>, Vec<Cut>) {
        let mut out = Vec::new();
        let mut cuts = Vec::new();
        let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
        // What follows the last `\n`: a line without one, or nothing.
        let last = lines.pop().unwrap_or_default();
        for content in lines {
            if content.is_empty() || content == b"\r" {
                cuts.push(Cut::Goodbye);
                return (out, cuts);
            }
            if content.len() > max {
                cuts.push(Cut::TooLong);
                if go_on {
                    continue;
                }
                return (out, cuts);
            }
            out.extend_from_slice(b"L ");
            out.extend_from_slice(content);
            out.push(b'\n');
        }
        if last.len() > max {
            cuts.push(Cut::TooLong);
        } else if !last.is_empty() {
            out.extend_from_slice(b"L ");
            out.extend_from_slice(last);
            out.push(b'\n');
        }
        (out, cuts)
    }

    /// Runs a [`LineCutter`] over `stream` cut at `cuts`, as the room does:
    /// a peer's receiver (`go_on` false) or the server's input.
    pub(crate) fn lines_cut(
        stream: &[u8],
        cuts: &[usize],
        max: usize,
        go_on: bool,
    ) -> (Vec<u8>, Vec<Cut>) {
        let mut cutter = LineCutter::new(max);
        let mut out = Vec::new();
        let mut found = Vec::new();
        let mut label = |line: &[u8]| {
            out.extend_from_slice(b"L ");
            out.extend_from_slice(line);
            out.push(b'\n');
        };
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&stream.len())) {
            let mut piece = &stream[from..to];
            from = to;
            loop {
                let (used, cut) = cutter.feed(piece, &mut label);
                piece = &piece[used..];
                match cut {
                    None => break,
                    Some(cut) => found.push(cut),
                }
                if cut == Some(Cut::Goodbye) || !go_on {
                    return (out, found);
                }
            }
        }
        cutter.finish(&mut label);
        (out, found)
    }

    /// Every caller of the rule against the reference, for one cut stream.
    #[cfg(test)]
    pub(crate) fn check_every_caller(stream: &[u8], cuts: &[usize]) {
        let (shown, end) = reference(stream);
        assert_eq!(scan_cut(stream, cuts), end, "{stream:?} cut at {cuts:?}");
        assert_eq!(
            show_cut(stream, cuts),
            (shown, end.is_some()),
            "{stream:?} cut at {cuts:?}"
        );
        for max in [3, 64] {
            for go_on in [false, true] {
                assert_eq!(
                    lines_cut(stream, cuts, max, go_on),
                    reference_lines(stream, max, go_on),
                    "room lines of {stream:?} cut at {cuts:?}, max {max}, go on {go_on}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::model::*;

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
        b"ab\nlonger line\ncd\n\nef\n",
        b"long\r\n\r\n",
        b"toolong tail",
        b"/name x\r\nhi\n",
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
            let n = stream.len();
            for a in 0..=n {
                for b in a..=n {
                    check_every_caller(stream, &[a, b]);
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
            check_every_caller(&stream, &cuts);
        }
    }

    #[test]
    fn one_byte_reads_agree_with_the_rule() {
        for &stream in SAMPLES {
            let cuts: Vec<usize> = (1..stream.len()).collect();
            check_every_caller(stream, &cuts);
        }
    }
}
