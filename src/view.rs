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
    /// Starts the view's threads and enters the line editor. Lines that
    /// carry a room's labels get each label's own colour, whichever side
    /// this is.
    pub fn start(options: &ViewOptions) -> io::Result<Parts> {
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
    // Who is in the room, and their colours.
    let mut palette = Palette::default();
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
                    print(style.incoming(&partial, continued, &mut palette));
                    partial.clear();
                    continued = false;
                    rest = &rest[i + 1..];
                }
                partial.extend_from_slice(rest);
                while partial.len() >= PARTIAL_MAX {
                    let tail = partial.split_off(char_boundary(&partial, PARTIAL_MAX));
                    print(style.incoming(&partial, continued, &mut palette));
                    partial = tail;
                    continued = true;
                }
            }
            Ok(Shown::Status(line)) => print(style.status(&line, &mut palette)),
            Ok(Shown::Note(line)) => print(style.status(&line, &mut Palette::default())),
            Err(RecvTimeoutError::Timeout) => {
                print(style.incoming(&partial, continued, &mut palette));
                partial.clear();
                continued = true;
            }
            Ok(Shown::Finish) | Err(RecvTimeoutError::Disconnected) => {
                if !partial.is_empty() {
                    print(style.incoming(&partial, continued, &mut palette));
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

/// SGR colours of the labels in a room, handed out in the order peers join.
const PALETTE: [&str; 6] = ["36", "32", "33", "35", "34", "91"];
const RESET: &str = "\x1b[0m";
const DIM: &str = "2";

/// How lines are rendered.
#[derive(Clone, Debug)]
struct Style {
    colour: bool,
    timestamps: bool,
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

    /// One line (or piece of a line) from the peer, without its `\n`. A
    /// room's notice (`* ...`; no peer's line starts so, labels do) is dimmed
    /// and has no marker of its own: one prefix per notice.
    fn incoming(&self, bytes: &[u8], continued: bool, palette: &mut Palette) -> String {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = render::render(bytes);
        let stamp = self.paint(DIM, &self.stamp());
        if !continued && let Some(notice) = text.strip_prefix("* ") {
            palette.notice(notice);
            return format!("{stamp}{}", self.paint(DIM, &text));
        }
        let marker = if continued { CONTINUED } else { INCOMING };
        let sgr = match label(&text) {
            Some(label) if !continued => palette.colour(label),
            _ => PALETTE[0],
        };
        format!("{stamp}{}", self.paint(sgr, &format!("{marker}{text}")))
    }

    /// A status line, dimmed. A room's notice (the server's view) keeps its
    /// own `* ` as its one prefix.
    fn status(&self, line: &str, palette: &mut Palette) -> String {
        let text = render::render(line.as_bytes());
        if let Some(notice) = text.strip_prefix("* ") {
            palette.notice(notice);
            return self.paint(DIM, &format!("{}{text}", self.stamp()));
        }
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

/// The colours of the labels in the room, kept as the room's notices tell
/// who joins, leaves and takes a name: each label keeps its colour while it
/// is in the room, and labels present at once never share one while the
/// palette lasts (a hash would: two of three peers got the same colour,
/// issue 9).
#[derive(Debug, Default)]
struct Palette {
    /// Labels present, with their colour (an index into [`PALETTE`]).
    present: Vec<(String, usize)>,
}

impl Palette {
    /// The colour of `label`, handing out the first free one to a label
    /// not seen before.
    fn colour(&mut self, label: &str) -> &'static str {
        let index = match self.present.iter().find(|(l, _)| l == label) {
            Some(&(_, index)) => index,
            None => self.join(label),
        };
        PALETTE[index]
    }

    fn join(&mut self, label: &str) -> usize {
        if let Some(&(_, index)) = self.present.iter().find(|(l, _)| l == label) {
            return index;
        }
        let index = (0..PALETTE.len())
            .find(|i| self.present.iter().all(|(_, used)| used != i))
            .unwrap_or(self.present.len() % PALETTE.len());
        self.present.push((label.to_owned(), index));
        index
    }

    fn leave(&mut self, label: &str) {
        self.present.retain(|(l, _)| l != label);
    }

    /// Follows a room notice (without its `* `).
    fn notice(&mut self, notice: &str) {
        if let Some(rest) = notice.strip_prefix("you are ") {
            // `you are [ME]; here: [server], [A], [B]`: the others came first.
            if let Some((me, here)) = rest.split_once("; here: ") {
                for label in here.split(", ") {
                    self.join(label);
                }
                self.join(me);
            }
            return;
        }
        let Some(who) = label(notice) else {
            return;
        };
        let what = &notice[who.len() + 1..];
        if what == "joined" {
            self.join(who);
        } else if what.starts_with("left") || what.starts_with("evicted") {
            self.leave(who);
        } else if let Some(new) = what.strip_prefix("is now ") {
            // The colour goes with the peer to its new name.
            let colour = self.join(who);
            self.leave(who);
            self.leave(new);
            self.present.push((new.to_owned(), colour));
        }
    }
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

    fn plain() -> Style {
        Style {
            colour: false,
            timestamps: false,
        }
    }

    #[test]
    fn control_and_invalid_bytes_are_made_visible() {
        let style = plain();
        let p = &mut Palette::default();
        assert_eq!(style.incoming(b"a\x1b[31mb", false, p), "< a^[[31mb");
        assert_eq!(style.incoming(b"\x00\x7f\r\rx", false, p), "< ^@^?^M^Mx");
        assert_eq!(style.incoming(b"\xff ok", false, p), "< \u{fffd} ok");
        assert_eq!(
            style.incoming("\u{9b}\u{202e}".as_bytes(), false, p),
            "< <U+009B><U+202E>"
        );
        assert_eq!(style.status("a\x1b[2Jb", p), "-- a^[[2Jb");
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
        let palette = &mut Palette::default();
        assert_eq!(plain().incoming(b"hi\r", false, palette), "< hi");
        assert_eq!(plain().incoming(b"rest", true, palette), "+ rest");
        assert_eq!(plain().status("connected", palette), "-- connected");
    }

    fn coloured() -> Style {
        Style {
            colour: true,
            timestamps: false,
        }
    }

    /// The SGR code a rendered line starts with.
    fn sgr(line: &str) -> &str {
        let rest = line.strip_prefix("\x1b[").expect("coloured");
        &rest[..rest.find('m').expect("an SGR")]
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
        let style = coloured();
        let palette = &mut Palette::default();
        let a = style.incoming(b"[127.0.0.1:5000] hi", false, palette);
        let b = style.incoming(b"[127.0.0.1:5000] again", false, palette);
        assert_eq!(a[..7], b[..7]);
        assert_eq!(label("[[::1]:5000] hi"), Some("[[::1]:5000]"));
        assert_eq!(label("no label"), None);
    }

    #[test]
    fn peers_present_together_get_colours_in_join_order_never_shared() {
        // The labels of issue 9 whose hashes collided.
        let style = coloured();
        let palette = &mut Palette::default();
        style.status("* [127.0.0.1:52412] joined", palette);
        style.status("* [127.0.0.1:52430] joined", palette);
        style.status("* [127.0.0.1:52444] joined", palette);
        let colours: Vec<String> = ["52412", "52430", "52444"]
            .iter()
            .map(|port| {
                let line = format!("[127.0.0.1:{port}] hi");
                sgr(&style.incoming(line.as_bytes(), false, palette)).to_owned()
            })
            .collect();
        assert_eq!(colours, [PALETTE[0], PALETTE[1], PALETTE[2]]);

        // The first leaves: its colour goes to the next newcomer; the others
        // keep theirs.
        style.status("* [127.0.0.1:52412] left", palette);
        style.status("* [127.0.0.1:52460] joined", palette);
        let line = style.incoming(b"[127.0.0.1:52460] hello", false, palette);
        assert_eq!(sgr(&line), PALETTE[0]);
        let line = style.incoming(b"[127.0.0.1:52430] still", false, palette);
        assert_eq!(sgr(&line), PALETTE[1]);

        // A name keeps the peer's colour.
        style.status("* [127.0.0.1:52430] is now [alice]", palette);
        let line = style.incoming(b"[alice] renamed", false, palette);
        assert_eq!(sgr(&line), PALETTE[1]);
    }

    #[test]
    fn a_clients_welcome_colours_who_is_here_in_join_order() {
        let style = coloured();
        let palette = &mut Palette::default();
        style.incoming(
            b"* you are [127.0.0.1:9]; here: [server], [alice], [127.0.0.1:7]",
            false,
            palette,
        );
        for (line, colour) in [
            (&b"[server] hi"[..], PALETTE[0]),
            (b"[alice] hi", PALETTE[1]),
            (b"[127.0.0.1:7] hi", PALETTE[2]),
        ] {
            assert_eq!(sgr(&style.incoming(line, false, palette)), colour);
        }
    }

    #[test]
    fn notices_are_dimmed_with_one_prefix_on_both_sides() {
        let palette = &mut Palette::default();
        // The server's view: a notice is a status line, without `-- `.
        assert_eq!(plain().status("* [x:1] joined", palette), "* [x:1] joined");
        // A client's view: a notice is incoming, without `< `.
        assert_eq!(
            plain().incoming(b"* [x:1] joined", false, palette),
            "* [x:1] joined"
        );
        let style = coloured();
        for line in [
            style.status("* [x:1] left", palette),
            style.incoming(b"* room full (1 peer)", false, palette),
        ] {
            assert_eq!(sgr(&line), DIM, "{line:?}");
            assert!(!line.contains("-- ") && !line.contains("< "), "{line:?}");
        }
    }

    #[test]
    fn a_timestamp_is_dimmed_and_no_stamp_costs_nothing() {
        let stamped = Style {
            colour: true,
            timestamps: true,
        };
        let line = stamped.incoming(b"hi", false, &mut Palette::default());
        let (sgr, rest) = colour_of(&line);
        assert_eq!(sgr, DIM);
        assert_eq!(&rest[2..3], ":", "{line:?}");
        let (sgr, rest) = colour_of(&rest[9 + RESET.len()..]);
        assert_eq!((sgr.as_str(), rest.as_str()), (PALETTE[0], "< hi\x1b[0m"));
        let unstamped = Style {
            timestamps: false,
            ..stamped
        };
        assert_eq!(
            unstamped.incoming(b"hi", false, &mut Palette::default()),
            "\x1b[36m< hi\x1b[0m"
        );
    }

    #[test]
    fn timestamps_look_like_a_clock() {
        let style = Style {
            colour: false,
            timestamps: true,
        };
        let stamp = style.stamp();
        assert_eq!(stamp.len(), 9, "{stamp:?}");
        assert_eq!(&stamp[2..3], ":");
    }
}
