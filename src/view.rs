//! The interactive terminal view (issue 5): a prompt line at the bottom for
//! typing, the peer's lines printed above it, and the typed text never lost
//! or garbled whatever arrives meanwhile.
//!
//! It exists only when stdin and stdout are both terminals, in chat mode, and
//! not `--recv-only` ([`wanted`]). Otherwise none of this runs and stdout gets
//! exactly the peer's bytes (SPEC, "Chat mode"): colour and markers can only
//! reach a terminal, whatever `--color` says.
//!
//! ```text
//!  keys ──▶ duplex-view-editor ──typed lines──▶ duplex-view-input ──▶ Input ──▶ conversation
//!              (reedline)  ▲                                                          │
//!                          └── printer queue ◀── duplex-view-out ◀── ViewOutput ◀─────┘
//!                                                        ▲
//!                                              status lines (Status sink)
//! ```
//!
//! - **Editing** is [reedline]'s: arrows, Home/End, Ctrl-A/E/U/W, and up-arrow
//!   history of this session. Its `ExternalPrinter` prints a line above the
//!   prompt and repaints the prompt with the half-typed text below it. The
//!   editor thread, `duplex-view-editor`, turns Enter into a line with `\n`
//!   (an empty prompt gives `\n`, the empty-line goodbye), Ctrl-D on an empty
//!   prompt into end of input, and Ctrl-C — a key in the editor's raw mode, not
//!   SIGINT — into the same graceful shutdown as SIGINT ([`interrupt`]).
//! - **Typed lines** go through a large bounded queue to `duplex-view-input`,
//!   which forwards them into an [`Input::channel`]. The editor only ever
//!   `try_send`s, so it never blocks outside `read_line` and always keeps
//!   the printer queue moving; the forwarder may block on a conversation that
//!   takes no more input, and is detached for the same reason as the stdin
//!   thread (a thread blocked there has nothing to release).
//! - **Incoming bytes** are written to [`ViewOutput`], which hands them to
//!   `duplex-view-out`; that thread assembles lines, renders them (marker,
//!   colour, timestamp, control characters made visible by [`render`]) and
//!   queues them for the printer. A partial line (no `\n` yet) is shown once the peer has been
//!   quiet for [`PARTIAL_AFTER`], or when it grows past [`PARTIAL_MAX`], so
//!   memory stays bounded and a prompt-like `Password: ` from a peer still
//!   shows. Status lines are sent down the same channel, so they appear in
//!   order with the lines around them.
//! - **Ending.** A blocked `read_line` cannot be cancelled, but it polls a
//!   break flag (reedline's `with_break_signal`) while the printer is in use.
//!   [`View::finish`] raises it, waits (bounded) for the editor to leave raw
//!   mode, prints whatever is still queued, and then calls crossterm's
//!   `disable_raw_mode` from its own thread anyway, which restores the termios
//!   saved when raw mode was entered. The second-Ctrl-C path
//!   ([`interrupt`]) restores the terminal the same way before `exit(130)`.

use crate::input::{Chunk, Input};
use crate::options::{Command, Mode};
use crate::render;
use crate::shutdown::ShutdownTrigger;
use crate::status::Sink;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use reedline::{
    Color, ExternalPrinter, Prompt, PromptEditMode, PromptHistorySearch, Reedline, Signal,
};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A partial incoming line is shown after the peer has been quiet this long.
pub const PARTIAL_AFTER: Duration = Duration::from_millis(250);

/// A partial incoming line is shown once it is this long, so a line of
/// gigabytes without `\n` is streamed, never held whole.
pub const PARTIAL_MAX: usize = 4096;

/// Lines typed ahead of a conversation that is not taking them yet.
const TYPED_AHEAD: usize = 1024;

/// Lines waiting for the printer; the editor drains them every
/// [`EDITOR_POLL`].
const PRINTER_QUEUE: usize = 512;

/// How often the editor looks at the printer queue and the break flag.
const EDITOR_POLL: Duration = Duration::from_millis(20);

/// How long [`View::finish`] waits for the editor to notice the break flag.
const EDITOR_STOP: Duration = Duration::from_secs(2);

/// How long a line may wait for the printer before we check whether the
/// terminal is still there.
const HANGUP_CHECK: Duration = Duration::from_millis(500);

/// `--color`: when the view may use colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorChoice {
    /// Only on a terminal, and never when `NO_COLOR` is set.
    #[default]
    Auto,
    /// Whenever the view is on (never in piped stdout: there is no view).
    Always,
    /// Never.
    Never,
}

/// How the view looks, and how its Ctrl-C reaches the shutdown.
#[derive(Clone, Debug, Default)]
pub struct ViewOptions {
    /// `--color`.
    pub color: ColorChoice,
    /// `--timestamps`: prefix each shown line with local `HH:MM:SS`.
    pub timestamps: bool,
    /// What Ctrl-C fires (shared with the SIGINT handler). Without one,
    /// Ctrl-C in the view is end of input.
    pub interrupt: Option<Arc<ShutdownTrigger>>,
}

/// Whether `command` gets the interactive view: stdin and stdout are
/// terminals, chat mode, and stdin is read at all.
pub fn wanted(command: &Command) -> bool {
    let conversation = command.conversation();
    conversation.mode == Mode::Chat
        && !conversation.recv_only
        && io::stdin().is_terminal()
        && io::stdout().is_terminal()
}

/// Whether stderr is the same terminal as stdout, so that status lines
/// belong in the view rather than on a separate stream.
pub fn stderr_is_stdout() -> bool {
    fn id(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u64, u64, u64)> {
        let file = File::from(fd.try_clone_to_owned().ok()?);
        let meta = file.metadata().ok()?;
        Some((meta.dev(), meta.ino(), meta.rdev()))
    }
    io::stderr().is_terminal()
        && io::stdout().is_terminal()
        && id(io::stderr().as_fd()).is_some_and(|e| Some(e) == id(io::stdout().as_fd()))
}

/// Puts the terminal back in the mode it had before the view started (echo,
/// cooked mode). Safe to call from any thread, at any time, more than once.
pub fn restore_terminal() {
    // Nothing to restore (never entered raw mode) is not an error worth a
    // word, and there is nowhere to report a failure on the way out.
    let _ = crossterm::terminal::disable_raw_mode();
}

/// Calls [`restore_terminal`] when dropped.
#[derive(Debug)]
pub struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Ctrl-C or SIGTERM: the first fires the graceful shutdown; a second one
/// restores the terminal and exits 130 at once (SPEC, "Endings").
pub fn interrupt(trigger: &ShutdownTrigger) {
    if !trigger.fire() {
        restore_terminal();
        std::process::exit(130);
    }
}

/// What goes to `duplex-view-out`.
enum Shown {
    /// Bytes from the peer.
    Bytes(Vec<u8>),
    /// A status line.
    Status(String),
    /// A note from the view itself (a line it could not send).
    Note(String),
    /// Show what is pending and stop.
    Finish,
}

/// The running view. [`View::finish`] ends it and restores the terminal.
pub struct View {
    shown: Sender<Shown>,
    out_thread: JoinHandle<()>,
    stop_editor: Arc<AtomicBool>,
    editor_done: Receiver<String>,
}

/// The ends a conversation uses while the view runs.
pub struct Parts {
    /// The running view.
    pub view: View,
    /// Lines typed at the prompt.
    pub input: Input,
    /// Where the peer's bytes go to be shown.
    pub output: ViewOutput,
    /// Status lines, shown above the prompt.
    pub status_sink: Sink,
}

impl View {
    /// Starts the view's threads and enters the line editor. `room`: lines
    /// carry peer labels, each shown in its own colour.
    pub fn start(options: &ViewOptions, room: bool) -> io::Result<Parts> {
        let style = Style {
            colour: match options.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                        && io::stdout().is_terminal()
                }
            },
            timestamps: options.timestamps,
            room,
        };
        let printer = ExternalPrinter::<String>::new(PRINTER_QUEUE);
        let printer_tx = printer.sender();
        let stop_editor = Arc::new(AtomicBool::new(false));

        let (shown_tx, shown_rx) = bounded(8);
        let out_thread = thread::Builder::new()
            .name("duplex-view-out".into())
            .spawn({
                let style = style.clone();
                move || show_loop(&shown_rx, &printer_tx, &style)
            })?;

        let (chunks, input) = Input::channel();
        let (typed_tx, typed_rx) = bounded::<Chunk>(TYPED_AHEAD);
        // Detached: it may block for good on a conversation that takes no
        // more input, and holds nothing that needs releasing (module docs).
        thread::Builder::new()
            .name("duplex-view-input".into())
            .spawn(move || {
                for chunk in typed_rx {
                    if chunks.send(chunk).is_err() {
                        return;
                    }
                }
            })?;

        let editor = Reedline::create()
            .with_external_printer(printer)
            .with_break_signal(Arc::clone(&stop_editor))
            .with_poll_interval(EDITOR_POLL)
            .with_ansi_colors(style.colour)
            .with_transient_prompt(Box::new(ViewPrompt {
                style: style.clone(),
                input_ended: false,
                transient: true,
            }));
        let (done_tx, editor_done) = bounded(1);
        // Detached: `finish` waits (bounded) for its `done` message instead
        // of joining it, as a terminal that stops answering could keep it in
        // `read_line` for good (module docs).
        thread::Builder::new()
            .name("duplex-view-editor".into())
            .spawn({
                let shown = shown_tx.clone();
                let interrupt = options.interrupt.clone();
                move || {
                    let left = edit_loop(editor, &style, typed_tx, &shown, interrupt.as_deref());
                    let _ = done_tx.send(left);
                }
            })?;

        let status_tx = shown_tx.clone();
        let status_sink: Sink = Arc::new(move |line: &str| {
            // The view is gone only at the very end; a lost status line then
            // has nowhere better to go.
            let _ = status_tx.send(Shown::Status(line.to_owned()));
        });
        Ok(Parts {
            view: View {
                shown: shown_tx.clone(),
                out_thread,
                stop_editor,
                editor_done,
            },
            input,
            output: ViewOutput { shown: shown_tx },
            status_sink,
        })
    }

    /// Ends the view: shows everything still queued, stops the editor, and
    /// restores the terminal. Call after the conversation has ended.
    pub fn finish(self) {
        // `duplex-view-out` shows what is pending, and returns once the
        // editor has taken all of it from the printer queue (or is gone).
        let _ = self.shown.send(Shown::Finish);
        let _ = self.out_thread.join();
        self.stop_editor.store(true, Ordering::Relaxed);
        // The editor leaves raw mode itself when it sees the flag, within
        // one EDITOR_POLL; restoring from this thread covers the rest.
        let left = self.editor_done.recv_timeout(EDITOR_STOP).ok();
        restore_terminal();
        let mut stdout = io::stdout().lock();
        // The editor left its prompt on the last line: keep what was typed
        // but never sent in view, or clear an empty prompt away.
        let _ = match left.as_deref() {
            Some("") | None => write!(stdout, "\r\x1b[2K"),
            Some(_) => writeln!(stdout),
        };
        let _ = stdout.flush();
    }
}

/// Where the peer's bytes go while the view runs: `duplex-view-out` shows
/// them line by line above the prompt.
pub struct ViewOutput {
    shown: Sender<Shown>,
}

impl Write for ViewOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.shown
            .send(Shown::Bytes(buf.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the view has ended"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The body of `duplex-view-editor`: keys → lines, until the break flag.
/// Returns what was typed but not sent.
fn edit_loop(
    mut editor: Reedline,
    style: &Style,
    typed: Sender<Chunk>,
    shown: &Sender<Shown>,
    interrupt: Option<&ShutdownTrigger>,
) -> String {
    let mut typed = Some(typed);
    loop {
        let prompt = ViewPrompt {
            style: style.clone(),
            input_ended: typed.is_none(),
            transient: false,
        };
        match editor.read_line(&prompt) {
            Ok(Signal::Success(line)) => {
                let Some(sender) = &typed else {
                    note(shown, "input has ended: line not sent".into());
                    continue;
                };
                let mut bytes = line.into_bytes();
                bytes.push(b'\n');
                match sender.try_send(Chunk::from_vec(bytes)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        let note = format!("{TYPED_AHEAD} lines already wait: line not sent");
                        self::note(shown, note);
                    }
                    Err(TrySendError::Disconnected(_)) => typed = None,
                }
            }
            // Reedline gives CtrlD only on an empty prompt (otherwise it
            // deletes a character): end of input, a goodbye.
            Ok(Signal::CtrlD) => typed = None,
            Ok(Signal::CtrlC) => match interrupt {
                Some(trigger) => self::interrupt(trigger),
                None => typed = None,
            },
            Ok(Signal::ExternalBreak(left)) => return left,
            Ok(_) => {}
            Err(error) => {
                // The terminal is gone or unusable: stop editing; `finish`
                // still restores it and shows what is queued.
                tracing::debug!(%error, "the line editor failed");
                restore_terminal();
                return String::new();
            }
        }
    }
}

/// A note from the editor thread. Never blocks: `duplex-view-out` may be
/// waiting for this very thread to drain the printer queue.
fn note(shown: &Sender<Shown>, line: String) {
    let _ = shown.try_send(Shown::Note(line));
}

/// Queues `line` for the printer, waiting while its queue is full, but not
/// past `deadline` (then `Full`). reedline's queue is a std `SyncSender`,
/// which has no timed send, so a full queue is retried in short steps; the
/// editor empties it every [`EDITOR_POLL`].
fn send_by(
    printer: &SyncSender<String>,
    mut line: String,
    deadline: Instant,
) -> Result<(), TrySendError<String>> {
    loop {
        match printer.try_send(line) {
            Ok(()) => return Ok(()),
            Err(std::sync::mpsc::TrySendError::Disconnected(l)) => {
                return Err(TrySendError::Disconnected(l));
            }
            Err(std::sync::mpsc::TrySendError::Full(l)) => {
                if Instant::now() >= deadline {
                    return Err(TrySendError::Full(l));
                }
                line = l;
                thread::sleep(EDITOR_POLL / 4);
            }
        }
    }
}

/// The body of `duplex-view-out`: bytes → rendered lines → printer queue.
fn show_loop(shown: &Receiver<Shown>, printer: &SyncSender<String>, style: &Style) {
    let mut partial: Vec<u8> = Vec::new();
    // The partial line already shown in part: the rest is a continuation.
    let mut continued = false;
    // Set when the terminal has hung up: nobody can see anything any more,
    // and the editor may never take from its queue again.
    let mut hung_up = false;
    let mut print = |line: String| {
        let mut line = line;
        while !hung_up {
            match send_by(printer, line, Instant::now() + HANGUP_CHECK) {
                Ok(()) => return,
                // A slow terminal is backpressure; a hung-up one (isatty
                // fails on it) would block this thread, and through it the
                // conversation, for ever.
                Err(TrySendError::Full(unsent)) => {
                    hung_up = !io::stdout().is_terminal();
                    line = unsent;
                }
                // Once the editor has gone (its printer queue with it),
                // print directly: the terminal is back in cooked mode.
                Err(TrySendError::Disconnected(unsent)) => {
                    let _ = writeln!(io::stdout().lock(), "{unsent}");
                    return;
                }
            }
        }
    };
    loop {
        let message = if partial.is_empty() {
            shown.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            shown.recv_timeout(PARTIAL_AFTER)
        };
        match message {
            Ok(Shown::Bytes(bytes)) => {
                let mut rest = &bytes[..];
                while let Some(i) = memchr::memchr(b'\n', rest) {
                    partial.extend_from_slice(&rest[..i]);
                    print(style.incoming(&partial, continued));
                    partial.clear();
                    continued = false;
                    rest = &rest[i + 1..];
                }
                partial.extend_from_slice(rest);
                while partial.len() >= PARTIAL_MAX {
                    let tail = partial.split_off(char_boundary(&partial, PARTIAL_MAX));
                    print(style.incoming(&partial, continued));
                    partial = tail;
                    continued = true;
                }
            }
            Ok(Shown::Status(line)) => print(style.status(&line)),
            Ok(Shown::Note(line)) => print(style.status(&line)),
            Err(RecvTimeoutError::Timeout) => {
                print(style.incoming(&partial, continued));
                partial.clear();
                continued = true;
            }
            Ok(Shown::Finish) | Err(RecvTimeoutError::Disconnected) => {
                if !partial.is_empty() {
                    print(style.incoming(&partial, continued));
                }
                // An empty message prints nothing. Once more of them have
                // been queued than the queue holds, the editor has taken
                // every real line before them, and prints a batch before it
                // looks at the break flag again.
                let deadline = Instant::now() + EDITOR_STOP;
                for _ in 0..=PRINTER_QUEUE {
                    if hung_up || send_by(printer, String::new(), deadline).is_err() {
                        break;
                    }
                }
                return;
            }
        }
    }
}

/// Where to cut a long partial line at or just before `at` (at most 3
/// bytes before, so the cut always makes progress) without cutting a UTF-8
/// character in two, whose halves would each be shown as U+FFFD.
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    let continues = |i: usize| bytes.get(i).is_some_and(|b| b & 0xc0 == 0x80);
    (at.saturating_sub(3).max(1)..=at)
        .rev()
        .find(|&i| !continues(i))
        .unwrap_or(at)
}

/// Marker of a line from the peer.
const INCOMING: &str = "< ";
/// Marker of the rest of a peer's line already shown in part.
const CONTINUED: &str = "+ ";
/// Marker of a line typed here (the prompt).
const TYPED: &str = "> ";
/// Marker of a status line.
const STATUS: &str = "-- ";

/// SGR colours used for peers in a room, picked by a hash of the label.
const PALETTE: [&str; 6] = ["36", "32", "33", "35", "34", "91"];
const RESET: &str = "\x1b[0m";
const DIM: &str = "2";

/// How lines are rendered.
#[derive(Clone, Debug)]
struct Style {
    colour: bool,
    timestamps: bool,
    room: bool,
}

impl Style {
    /// `HH:MM:SS ` in local time, or nothing.
    fn stamp(&self) -> String {
        if self.timestamps {
            chrono::Local::now().format("%H:%M:%S ").to_string()
        } else {
            String::new()
        }
    }

    fn paint(&self, sgr: &str, text: &str) -> String {
        // An empty text (no timestamp) gets no colour codes either.
        if self.colour && !text.is_empty() {
            format!("\x1b[{sgr}m{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    /// One line (or piece of a line) from the peer, without its `\n`.
    fn incoming(&self, bytes: &[u8], continued: bool) -> String {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = render::render(bytes);
        let marker = if continued { CONTINUED } else { INCOMING };
        let sgr = if !self.room {
            PALETTE[0]
        } else if text.starts_with("* ") {
            DIM
        } else {
            label(&text).map_or(PALETTE[0], |label| PALETTE[hash(label) % PALETTE.len()])
        };
        format!(
            "{}{}",
            self.paint(DIM, &self.stamp()),
            self.paint(sgr, &format!("{marker}{text}"))
        )
    }

    /// A status line, dimmed.
    fn status(&self, line: &str) -> String {
        let text = render::render(line.as_bytes());
        self.paint(DIM, &format!("{}{STATUS}{text}", self.stamp()))
    }
}

/// A room line's peer label: `[127.0.0.1:5000]` in `[127.0.0.1:5000] hi`.
fn label(text: &str) -> Option<&str> {
    if !text.starts_with('[') {
        return None;
    }
    // IPv6 labels nest brackets: `[[::1]:5000] hi`.
    let end = text.find("] ")?;
    Some(&text[..=end])
}

/// FNV-1a: a stable hash, the same colour for a label in every run.
fn hash(text: &str) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as usize
}

/// The prompt: `> `, in the typed-line colour; after Ctrl-D it says that
/// input has ended. As the transient prompt (the one a submitted line keeps
/// on screen) it carries the timestamp of the moment Enter was pressed.
struct ViewPrompt {
    style: Style,
    input_ended: bool,
    transient: bool,
}

impl Prompt for ViewPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        if self.transient {
            Cow::Owned(self.style.stamp())
        } else if self.style.timestamps {
            // Keeps the typed text in the same column as after Enter.
            Cow::Borrowed("         ")
        } else {
            Cow::Borrowed("")
        }
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        if self.input_ended {
            Cow::Borrowed("(input ended) ")
        } else {
            Cow::Borrowed(TYPED)
        }
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("  ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        Cow::Owned(format!("(search: {}) ", search.term))
    }

    fn get_prompt_color(&self) -> Color {
        Color::DarkGray
    }

    fn get_indicator_color(&self) -> Color {
        Color::Green
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(room: bool) -> Style {
        Style {
            colour: false,
            timestamps: false,
            room,
        }
    }

    #[test]
    fn control_and_invalid_bytes_are_made_visible() {
        let style = plain(false);
        assert_eq!(style.incoming(b"a\x1b[31mb", false), "< a^[[31mb");
        assert_eq!(style.incoming(b"\x00\x7f\r\rx", false), "< ^@^?^M^Mx");
        assert_eq!(style.incoming(b"\xff ok", false), "< \u{fffd} ok");
        assert_eq!(
            style.incoming("\u{9b}\u{202e}".as_bytes(), false),
            "< <U+009B><U+202E>"
        );
        assert_eq!(style.status("a\x1b[2Jb"), "-- a^[[2Jb");
    }

    #[test]
    fn a_long_partial_line_is_never_cut_inside_a_character() {
        let mut line = vec![b'a'; PARTIAL_MAX - 1];
        line.extend_from_slice("\u{e9}\u{1f600}".as_bytes());
        assert_eq!(char_boundary(&line, PARTIAL_MAX), PARTIAL_MAX - 1);
        assert_eq!(char_boundary(&line, PARTIAL_MAX + 1), PARTIAL_MAX + 1);
        assert_eq!(char_boundary(&line, PARTIAL_MAX + 2), PARTIAL_MAX + 1);
        assert_eq!(char_boundary(b"abc", 2), 2);
        // Not UTF-8 at all: cut where asked.
        assert_eq!(char_boundary(&[0x80; 16], 8), 8);
    }

    #[test]
    fn incoming_lines_get_a_marker_and_lose_their_cr() {
        assert_eq!(plain(false).incoming(b"hi\r", false), "< hi");
        assert_eq!(plain(false).incoming(b"rest", true), "+ rest");
        assert_eq!(plain(false).status("connected"), "-- connected");
    }

    /// The SGR colour a rendered line starts with, and the rest.
    fn colour_of(line: &str) -> (String, String) {
        let rest = line
            .strip_prefix("\x1b[")
            .unwrap_or_else(|| panic!("{line:?} does not start with a colour"));
        let (sgr, rest) = rest.split_once('m').expect("an SGR sequence");
        (sgr.to_owned(), rest.to_owned())
    }

    #[test]
    fn room_labels_keep_their_colour() {
        let style = Style {
            colour: true,
            timestamps: false,
            room: true,
        };
        let line = |text: &str| style.incoming(text.as_bytes(), false);
        // No empty timestamp in front: the line starts with its colour.
        let (a, rest) = colour_of(&line("[127.0.0.1:5000] hi"));
        assert_eq!(rest, format!("< [127.0.0.1:5000] hi{RESET}"));
        let (again, _) = colour_of(&line("[127.0.0.1:5000] again"));
        assert_eq!(a, again, "one label, one colour");
        // Some other label gets another colour, and keeps it too.
        let other = (5001..5100)
            .map(|port| format!("[127.0.0.1:{port}]"))
            .find(|label| colour_of(&line(&format!("{label} x"))).0 != a)
            .expect("labels spread over the palette");
        let (b, _) = colour_of(&line(&format!("{other} x")));
        assert_eq!(colour_of(&line(&format!("{other} y"))).0, b);
        assert!(PALETTE.contains(&a.as_str()) && PALETTE.contains(&b.as_str()) && a != b);
        // Notices are dim, and a line that is neither gets the first colour.
        assert_eq!(
            colour_of(&line("* [x] joined")),
            (DIM.to_owned(), format!("< * [x] joined{RESET}"))
        );
        assert_eq!(colour_of(&line("no label")).0, PALETTE[0]);
        assert_eq!(label("[[::1]:5000] hi"), Some("[[::1]:5000]"));
        assert_eq!(label("no label"), None);
    }

    #[test]
    fn a_timestamp_is_dimmed_and_no_stamp_costs_nothing() {
        let stamped = Style {
            colour: true,
            timestamps: true,
            room: false,
        };
        let line = stamped.incoming(b"hi", false);
        let (sgr, rest) = colour_of(&line);
        assert_eq!(sgr, DIM);
        assert_eq!(&rest[2..3], ":", "{line:?}");
        let (sgr, rest) = colour_of(&rest[9 + RESET.len()..]);
        assert_eq!((sgr.as_str(), rest.as_str()), (PALETTE[0], "< hi\x1b[0m"));
        let unstamped = Style {
            timestamps: false,
            ..stamped
        };
        assert_eq!(unstamped.incoming(b"hi", false), "\x1b[36m< hi\x1b[0m");
    }

    #[test]
    fn timestamps_look_like_a_clock() {
        let style = Style {
            colour: false,
            timestamps: true,
            room: false,
        };
        let stamp = style.stamp();
        assert_eq!(stamp.len(), 9, "{stamp:?}");
        assert_eq!(&stamp[2..3], ":");
    }
}
