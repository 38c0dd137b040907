//! The live progress line of a raw transfer (issue 16): one line on stderr,
//! redrawn in place ten times a second, erased when the conversation ends.
//!
//! ```text
//! [=========>          ]  48%  sent 492 MiB of 1.00 GiB, received 0 B, 1.21 GiB/s, 1 s left
//! ```
//!
//! The engine counts the bytes ([`duplex::progress::Traffic`]); this file
//! only reads them. Each conversation's line has its own ticker thread
//! (`duplex-progress`) that wakes every [`TICK`], reads the two counters and
//! redraws through `indicatif`, which owns the terminal side (clearing the
//! line, fitting it to the width, printing other lines above it). So the
//! pumps never do anything for the line, and a transfer with the line on is
//! as fast as one without (README, "Progress"). The ticker's way out: the
//! conversation's end drops the sender of its `stop` channel, which wakes
//! it at once; the end then joins it and erases the line, before the
//! summary and the status lines are printed.
//!
//! Status lines printed while a line is drawn ([`LiveLine::print`]) go
//! above it. A second Ctrl-C exits at once: [`LiveLine::clear`] erases the
//! line first.

use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use duplex::Status;
use duplex::progress::{Bytes, Elapsed, Left, Rate, Traffic, Watch};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use std::collections::VecDeque;
use std::io::{self, IsTerminal, Seek, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the line is redrawn.
pub const TICK: Duration = Duration::from_millis(100);

/// The rate is measured over this much of the recent past, so that a
/// stalled transfer shows a falling rate within seconds.
const WINDOW: Duration = Duration::from_secs(3);

/// `--progress`, `--no-progress`, or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Neither flag: on when a person is watching (see [`wanted`]).
    Auto,
    /// `--progress`: on, even with `-q` or a stderr that is not a terminal.
    Always,
    /// `--no-progress`.
    Never,
}

/// What decides whether the line is drawn.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub when: When,
    pub raw: bool,
    pub quiet: bool,
    /// `-v` or `RUST_LOG`: diagnostics share stderr and would tear the line.
    pub diagnostics: bool,
    pub stdin_is_terminal: bool,
    pub stdout_is_terminal: bool,
    pub stderr_is_terminal: bool,
    /// `TERM=dumb`: a terminal that cannot erase a line.
    pub dumb: bool,
}

impl Setting {
    /// The setting of this process.
    pub fn of_process(when: When, raw: bool, quiet: bool, verbose: u8) -> Setting {
        let rust_log = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
        Setting {
            when,
            raw,
            quiet,
            diagnostics: verbose > 0 || rust_log,
            stdin_is_terminal: io::stdin().is_terminal(),
            stdout_is_terminal: io::stdout().is_terminal(),
            stderr_is_terminal: io::stderr().is_terminal(),
            dumb: std::env::var_os("TERM").is_some_and(|t| t == "dumb"),
        }
    }
}

/// Whether to draw the live line. Only raw conversations have one; the
/// flags decide; else it is on when stderr is a terminal, `-q` and
/// diagnostics are off, and it is not an interactive session (stdin and
/// stdout both terminals: what is typed and shown there would be torn by a
/// line redrawn under it).
pub fn wanted(s: Setting) -> bool {
    match s.when {
        _ if !s.raw => false,
        When::Never => false,
        When::Always => true,
        When::Auto => {
            let interactive = s.stdin_is_terminal && s.stdout_is_terminal;
            s.stderr_is_terminal && !(s.dumb || s.quiet || s.diagnostics || interactive)
        }
    }
}

/// How many bytes stdin still holds, when it is a regular file: what the
/// percentage and the time left are computed from.
pub fn stdin_size() -> Option<u64> {
    let mut file = std::fs::File::from(io::stdin().as_fd().try_clone_to_owned().ok()?);
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    // A duplicate shares the offset: reading it changes nothing.
    let at = file.stream_position().ok()?;
    Some(meta.len().saturating_sub(at))
}

/// The live line of the conversation under way, if any.
pub struct LiveLine {
    on: bool,
    /// Once the peer's bytes reach a terminal stdout, the line steps aside.
    stdout_is_terminal: bool,
    /// Bytes stdin held at start (a regular file), and how many of them
    /// earlier conversations sent: the rest is this one's whole.
    total: Option<u64>,
    sent_before: AtomicU64,
    drawn: Mutex<Option<Drawn>>,
}

/// A line being drawn, and its ticker.
struct Drawn {
    bar: ProgressBar,
    /// Dropping it stops the ticker.
    stop: Sender<()>,
    ticker: JoinHandle<()>,
}

impl LiveLine {
    /// A live line (drawn only if `on`) for a stdin of `total` bytes.
    pub fn new(on: bool, stdout_is_terminal: bool, total: Option<u64>) -> Arc<LiveLine> {
        Arc::new(LiveLine {
            on,
            stdout_is_terminal,
            total,
            sent_before: AtomicU64::new(0),
            drawn: Mutex::new(None),
        })
    }

    fn drawn(&self) -> MutexGuard<'_, Option<Drawn>> {
        // A poisoned lock still guards a usable Option.
        self.drawn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Prints a status line on stderr, above the live line if one is drawn.
    pub fn print(&self, line: &str) {
        let write = || {
            // Nowhere left to report a failing stderr; never panic for it.
            let _ = writeln!(io::stderr().lock(), "{line}");
        };
        match self.drawn().as_ref() {
            Some(drawn) => drawn.bar.suspend(write),
            None => write(),
        }
    }

    /// Erases the line now (a second Ctrl-C exits right after). Never
    /// waits for the lock: if the line is being started or ended at this
    /// moment, that will erase it.
    pub fn clear(&self) {
        if let Ok(drawn) = self.drawn.try_lock()
            && let Some(drawn) = drawn.as_ref()
        {
            drawn.bar.finish_and_clear();
        }
    }

    fn start(&self, traffic: &Traffic) {
        if !self.on {
            return;
        }
        let before = self.sent_before.load(Ordering::Relaxed);
        let total = self
            .total
            .map(|total| total.saturating_sub(before))
            .filter(|&left| left > 0);
        // The ticker sets the pace (one redraw a tick); indicatif's own
        // limit only caps bursts.
        let term = Margin(console::Term::stderr());
        let bar = ProgressBar::with_draw_target(
            None,
            ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 20),
        );
        if let Ok(style) = ProgressStyle::with_template("{msg}") {
            bar.set_style(style);
        }
        let (stop, stopped) = bounded::<()>(0);
        let ticker = {
            let (bar, traffic) = (bar.clone(), traffic.clone());
            let stdout_is_terminal = self.stdout_is_terminal;
            thread::Builder::new()
                .name("duplex-progress".into())
                .spawn(move || {
                    let mut meter = Meter::new(total);
                    // Ends when the conversation's end drops `stop`.
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                        let (sent, received) = (traffic.sent(), traffic.received());
                        if stdout_is_terminal && received > 0 {
                            // The peer's bytes are shown on the terminal:
                            // a line redrawn there would tear them.
                            bar.finish_and_clear();
                            break;
                        }
                        let mut line =
                            meter.line(Instant::now(), traffic.elapsed(), sent, received);
                        // One row: a wrapped line is harder to erase.
                        line.truncate(usize::from(term.width()));
                        bar.set_message(line);
                    }
                })
        };
        match ticker {
            Ok(ticker) => *self.drawn() = Some(Drawn { bar, stop, ticker }),
            Err(error) => tracing::debug!(%error, "no progress line: could not start its thread"),
        }
    }

    fn end(&self, traffic: &Traffic) {
        self.sent_before
            .fetch_add(traffic.sent(), Ordering::Relaxed);
        let Some(Drawn { bar, stop, ticker }) = self.drawn().take() else {
            return;
        };
        drop(stop);
        let _ = ticker.join();
        bar.finish_and_clear();
    }
}

/// The terminal (stderr), three columns narrower than it is. indicatif
/// pads the line to the width, leaving the cursor in the last column; a
/// `^C` the terminal echoes there would wrap to a new row, and the line
/// left above it would never be erased. Short of the edge, the echo stays
/// on the line's own row and is erased with it.
#[derive(Clone, Debug)]
struct Margin(console::Term);

impl TermLike for Margin {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(3).max(1)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The binary's [`Watch`] for raw conversations: the live line while one
/// runs, then its summary line (a status line: `-q` silences it).
pub struct Progress {
    pub live: Arc<LiveLine>,
    pub status: Status,
}

impl Watch for Progress {
    fn started(&self, traffic: &Traffic) {
        self.live.start(traffic);
    }

    fn ended(&self, traffic: &Traffic) {
        self.live.end(traffic);
        self.status.line(traffic.summary());
    }
}

/// The text of the live line, from samples of the counters.
struct Meter {
    total: Option<u64>,
    /// (when, sent, received), oldest first, at most [`WINDOW`] apart.
    samples: VecDeque<(Instant, u64, u64)>,
}

impl Meter {
    fn new(total: Option<u64>) -> Meter {
        Meter {
            total,
            samples: VecDeque::new(),
        }
    }

    /// `[=========>          ]  48%  sent 492 MiB of 1.00 GiB, received 0 B,
    /// 1.21 GiB/s, 1 s left` (the bar, the percentage and the time left
    /// only with a known total; else the time so far). ASCII only: one
    /// byte is one column.
    fn line(&mut self, now: Instant, elapsed: Duration, sent: u64, received: u64) -> String {
        self.samples.push_back((now, sent, received));
        // Keep one sample at least a window old, so that the window is full.
        while self
            .samples
            .get(1)
            .is_some_and(|&(at, ..)| now.duration_since(at) >= WINDOW)
        {
            self.samples.pop_front();
        }
        // Until a window has passed, the rate is the one since the start.
        let (since, sent_then, received_then) = match self.samples.front() {
            Some(&(at, s, r)) if now.duration_since(at) >= WINDOW / 2 => {
                (now.duration_since(at), s, r)
            }
            _ => (elapsed, 0, 0),
        };
        let moved = (sent - sent_then) + (received - received_then);
        let rate = Rate::of(moved, since);
        let sending = Rate::of(sent - sent_then, since).0;
        match self.total {
            Some(total) => {
                let percent = (sent.min(total) as f64 * 100.0 / total as f64).floor();
                let left = total.saturating_sub(sent);
                let eta = if left == 0 {
                    String::new()
                } else if sending >= 1.0 {
                    format!(", {} left", Left(left as f64 / sending))
                } else {
                    ", stalled".to_owned()
                };
                let done = (percent / 5.0) as usize;
                let bar = match done {
                    20.. => "=".repeat(20),
                    _ => format!("{}>{}", "=".repeat(done), " ".repeat(19 - done)),
                };
                format!(
                    "[{bar}] {percent:>3}%  sent {} of {}, received {}, {rate}{eta}",
                    Bytes(sent),
                    Bytes(total),
                    Bytes(received)
                )
            }
            None => format!(
                "sent {}, received {}, {rate}, {}",
                Bytes(sent),
                Bytes(received),
                Elapsed(elapsed)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn auto() -> Setting {
        Setting {
            when: When::Auto,
            raw: true,
            quiet: false,
            diagnostics: false,
            stdin_is_terminal: false,
            stdout_is_terminal: false,
            stderr_is_terminal: true,
            dumb: false,
        }
    }

    #[test]
    fn drawn_when_a_person_watches_a_raw_transfer() {
        assert!(wanted(auto()));
        // `connect --raw < file` at a terminal, `serve --raw > file` typed.
        assert!(wanted(Setting {
            stdout_is_terminal: true,
            ..auto()
        }));
        assert!(wanted(Setting {
            stdin_is_terminal: true,
            ..auto()
        }));
        for off in [
            Setting {
                raw: false,
                ..auto()
            },
            Setting {
                quiet: true,
                ..auto()
            },
            Setting {
                diagnostics: true,
                ..auto()
            },
            Setting {
                stderr_is_terminal: false,
                ..auto()
            },
            Setting {
                dumb: true,
                ..auto()
            },
            Setting {
                stdin_is_terminal: true,
                stdout_is_terminal: true,
                ..auto()
            },
            Setting {
                when: When::Never,
                ..auto()
            },
        ] {
            assert!(!wanted(off), "{off:?}");
        }
        let forced = Setting {
            when: When::Always,
            quiet: true,
            stderr_is_terminal: false,
            ..auto()
        };
        assert!(wanted(forced));
        assert!(
            !wanted(Setting {
                raw: false,
                ..forced
            }),
            "chat mode has no line"
        );
    }

    #[test]
    fn the_line_says_how_far_how_fast_and_how_long_yet() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut meter = Meter::new(Some(100 * MIB));
        let first = meter.line(at(100), Duration::from_millis(100), 10 * MIB, 0);
        assert_eq!(
            first,
            "[==>                 ]  10%  sent 10.0 MiB of 100 MiB, received 0 B, 100 MiB/s, 1 s left"
        );
        let later = meter.line(at(2100), Duration::from_millis(2100), 50 * MIB, 0);
        assert_eq!(
            later,
            "[==========>         ]  50%  sent 50.0 MiB of 100 MiB, received 0 B, 20.0 MiB/s, 3 s left"
        );
        // Nothing moves for a whole window: the rate falls to zero.
        meter.line(at(5200), Duration::from_millis(5200), 50 * MIB, 0);
        let stalled = meter.line(at(8300), Duration::from_millis(8300), 50 * MIB, 0);
        assert_eq!(
            stalled,
            "[==========>         ]  50%  sent 50.0 MiB of 100 MiB, received 0 B, 0 B/s, stalled"
        );
        let done = meter.line(at(8400), Duration::from_millis(8400), 100 * MIB, 0);
        assert!(
            done.starts_with("[====================] 100%  sent 100 MiB of 100 MiB"),
            "{done}"
        );
        assert!(!done.contains("left"), "{done}");

        let mut open = Meter::new(None);
        let line = open.line(at(500), Duration::from_millis(500), 0, 5 * MIB);
        assert_eq!(line, "sent 0 B, received 5.00 MiB, 10.0 MiB/s, 0.50 s");
        let zero = Meter::new(None).line(start, Duration::ZERO, 0, 0);
        assert_eq!(zero, "sent 0 B, received 0 B, 0 B/s, 0.00 s");
    }
}
