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
//!   SIGINT — into the same graceful shutdown as SIGINT
//!   ([`ShutdownTrigger::interrupt`]). Tab is a character; Ctrl-Z does
//!   nothing; a paste with line breaks is sent line by line, without its
//!   blank lines (a goodbye in the middle of a paste is never meant).
//! - **Waiting.** After our goodbye, Ctrl-D or a first Ctrl-C (typed, or a
//!   signal, seen by `duplex-view-out` on the [`Shutdown`]), the editor
//!   swaps its key map for one that takes nothing but Ctrl-C (quit now), and
//!   the prompt says what it waits for. The view hears from [`Status`]
//!   (its presence hook) whether a peer is connected: lines typed while
//!   nobody is are marked `(waiting)`, and `serve`'s next peer gets the
//!   prompt back.
//! - **Typed lines** go through a large bounded queue to `duplex-view-input`,
//!   which forwards them into an [`Input::channel`]. The editor only ever
//!   `try_send`s, so it never blocks outside `read_line` and always keeps
//!   the printer queue moving; the forwarder waits on the conversation and,
//!   in every wait, on `end_input`, which a hang-up or `finish` drops, so
//!   it can always be joined.
//! - **Where it draws.** reedline paints on fd 2. When stderr is not this
//!   terminal (`2>err.log`), fd 2 is pointed at the terminal (stdout's) for
//!   the view's lifetime and put back by `finish`; status lines go to the
//!   view and to the saved stderr.
//! - **A vanished terminal.** `duplex-view-out` checks `isatty` every
//!   `HANGUP_CHECK` (250 ms): a hung-up terminal fails it, SIGHUP or not. Then the
//!   input ends (a goodbye) and fd 0 gets an empty non-blocking pipe, which
//!   frees crossterm's reader from its loop on `read() == 0`.
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
//!   ([`ShutdownTrigger::interrupt`], given [`restore_terminal`]) restores
//!   the terminal the same way before `exit(130)`.
//!
//! [`Status`]: duplex::Status

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, never, select};
use crossterm::event::{Event, KeyEvent};
use duplex::render;
use duplex::{Chunk, Command, Input, Mode, Presence, Shutdown, ShutdownTrigger, StatusSink};
use reedline::{
    Color, EditCommand, EditMode, Emacs, ExternalPrinter, Highlighter, KeyCode, KeyModifiers,
    Prompt, PromptEditMode, PromptHistorySearch, Reedline, ReedlineEvent, ReedlineRawEvent, Signal,
    StyledText, default_emacs_keybindings,
};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
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

/// How often `duplex-view-out` checks that the terminal is still there (a
/// terminal can vanish without a SIGHUP reaching us), and how long a line
/// may wait for the printer before it checks.
const HANGUP_CHECK: Duration = Duration::from_millis(250);

/// What the editor returns from `read_line` for Ctrl-C while typing.
const INTERRUPT: &str = "\u{0}duplex:interrupt";

/// The prefix of the host command for a paste with line breaks in it.
const PASTE: &str = "\u{0}duplex:paste:";

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
    /// `--linger`, for the "waiting up to …" line after a goodbye.
    pub linger: Duration,
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

/// What goes to `duplex-view-out`.
enum Shown {
    /// Bytes from the peer.
    Bytes(Vec<u8>),
    /// A status line.
    Status(String),
    /// Show what is pending and stop.
    Finish,
}

/// What the view's threads share.
struct Shared {
    /// reedline's break signal: makes `read_line` return, to look at the
    /// flags below (reedline clears it when it returns).
    wake: Arc<AtomicBool>,
    /// [`View::finish`] has begun: the editor returns.
    finishing: AtomicBool,
    /// The shutdown fired (Ctrl-C, SIGINT, SIGTERM): no more input.
    interrupted: AtomicBool,
    /// The terminal is gone: nothing can be shown or typed any more.
    hung_up: AtomicBool,
    /// A peer is connected (from the status events), so that lines typed
    /// while nobody is there are marked as waiting.
    connected: AtomicBool,
    /// Dropped to end the input (a hang-up, or `finish`): wakes
    /// `duplex-view-input` wherever it waits.
    end_input: Mutex<Option<Sender<()>>>,
    /// The write end of the empty pipe put on fd 0 after a hang-up (see
    /// [`hang_up`]); held so that reads there say "nothing yet".
    stdin_plug: Mutex<Option<io::PipeWriter>>,
}

impl Shared {
    fn wake(&self) {
        self.wake.store(true, Ordering::Relaxed);
    }

    fn end_input(&self) {
        drop(lock(&self.end_input).take());
    }
}

/// A poisoned lock still guards a meaningful value here.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The terminal has gone (found by `duplex-view-out`, which polls for it).
/// The input ends, which is a goodbye, and the editor is set free.
///
/// The editor thread may be spinning: crossterm's reader loops for ever on
/// a hung-up terminal, where `read` returns 0 at once (issue 17). Putting an
/// empty non-blocking pipe on fd 0 — the descriptor crossterm reads — turns
/// its next read into "would block", so it goes back to waiting (its
/// edge-triggered poll has nothing new), and reedline returns to us.
fn hang_up(shared: &Shared) {
    if shared.hung_up.swap(true, Ordering::Relaxed) {
        return;
    }
    tracing::debug!("the terminal has gone: end of input");
    shared.end_input();
    match io::pipe().and_then(|(reader, writer)| {
        rustix::io::ioctl_fionbio(&reader, true)?;
        rustix::stdio::dup2_stdin(&reader)?;
        Ok(writer)
    }) {
        Ok(writer) => *lock(&shared.stdin_plug) = Some(writer),
        Err(error) => tracing::debug!(%error, "could not plug stdin after the hang-up"),
    }
    shared.wake();
}

/// Whether the terminal the view draws on is still there: a hung-up
/// terminal fails `isatty` (its `ioctl`s return EIO).
fn terminal_alive() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

/// The running view. [`View::finish`] ends it and restores the terminal.
pub struct View {
    shown: Sender<Shown>,
    out_thread: JoinHandle<()>,
    input_thread: JoinHandle<()>,
    shared: Arc<Shared>,
    editor_done: Receiver<String>,
    /// The stderr the user gave us, when it is not this terminal: fd 2
    /// points at the terminal while the view draws, and goes back at the end.
    saved_stderr: Option<Arc<File>>,
}

/// The ends a conversation uses while the view runs.
pub struct Parts {
    /// The running view.
    pub view: View,
    /// Lines typed at the prompt.
    pub input: Input,
    /// Where the peer's bytes go to be shown.
    pub output: ViewOutput,
    /// Status lines: shown above the prompt, and also written to a
    /// redirected stderr.
    pub status_sink: StatusSink,
    /// Tells the view whether a peer is connected.
    pub presence: Presence,
}

impl View {
    /// Starts the view's threads and enters the line editor. Lines that
    /// carry a room's labels get each label's own colour, whichever side
    /// this is. `room`: this is a room's server, where somebody may always
    /// be listening. `shutdown`: when it fires, the view stops taking input and
    /// says what it waits for.
    pub fn start(options: &ViewOptions, room: bool, shutdown: &Shutdown) -> io::Result<Parts> {
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
        // reedline draws on fd 2. When stderr is not this terminal (say,
        // `2>err.log`), point fd 2 at the terminal while the view runs, and
        // keep the user's stderr for status lines.
        let saved_stderr = if stderr_is_stdout() {
            None
        } else {
            let saved = io::stderr().as_fd().try_clone_to_owned().ok();
            rustix::stdio::dup2_stderr(io::stdout().as_fd())?;
            saved.map(|fd| Arc::new(File::from(fd)))
        };

        let printer = ExternalPrinter::<String>::new(PRINTER_QUEUE);
        let printer_tx = printer.sender();
        let (end_tx, end_rx) = bounded::<()>(0);
        let shared = Arc::new(Shared {
            wake: Arc::new(AtomicBool::new(false)),
            finishing: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            hung_up: AtomicBool::new(false),
            // A room is never "nobody there" for the view: its input is not
            // read until the first peer joins (room.rs).
            connected: AtomicBool::new(room),
            end_input: Mutex::new(Some(end_tx)),
            stdin_plug: Mutex::new(None),
        });

        let (shown_tx, shown_rx) = bounded(8);
        let out_thread = thread::Builder::new()
            .name("duplex-view-out".into())
            .spawn({
                let style = style.clone();
                let shared = Arc::clone(&shared);
                let shutdown = shutdown.clone();
                let printer = printer_tx.clone();
                move || show_loop(&shown_rx, &printer, &style, &shared, &shutdown)
            })?;

        let (chunks, input) = Input::channel();
        let (typed_tx, typed_rx) = bounded::<Chunk>(TYPED_AHEAD);
        // Every wait here also waits for `end_input`, so a hang-up or
        // `finish` always lets it go, even while the conversation takes no
        // input.
        let input_thread = thread::Builder::new()
            .name("duplex-view-input".into())
            .spawn(move || {
                loop {
                    let chunk = select! {
                        recv(typed_rx) -> chunk => match chunk {
                            Ok(chunk) => chunk,
                            Err(_) => return,
                        },
                        recv(end_rx) -> _ => return,
                    };
                    select! {
                        send(chunks, chunk) -> sent => if sent.is_err() { return },
                        recv(end_rx) -> _ => return,
                    }
                }
            })?;

        let editor = Reedline::create()
            .with_external_printer(printer)
            .with_break_signal(Arc::clone(&shared.wake))
            .with_poll_interval(EDITOR_POLL)
            .with_ansi_colors(style.colour)
            .with_highlighter(Box::new(Plain))
            .with_edit_mode(typing_mode())
            .use_bracketed_paste(true)
            .with_transient_prompt(Box::new(ViewPrompt {
                style: style.clone(),
                shared: Arc::clone(&shared),
                kind: PromptKind::Sent,
            }));
        let (done_tx, editor_done) = bounded(1);
        // Detached: `finish` waits (bounded) for its `done` message instead
        // of joining it, as a terminal that stops answering could keep it in
        // `read_line` for good (module docs).
        thread::Builder::new()
            .name("duplex-view-editor".into())
            .spawn({
                let editor_state = Editor {
                    style,
                    shared: Arc::clone(&shared),
                    typed: Some(typed_tx),
                    printer: printer_tx,
                    interrupt: options.interrupt.clone(),
                    linger: options.linger,
                    goodbye_said: false,
                };
                move || {
                    let left = editor_state.run(editor);
                    let _ = done_tx.send(left);
                }
            })?;

        let status_tx = shown_tx.clone();
        let status_file = saved_stderr.clone();
        let status_sink: StatusSink = Arc::new(move |line: &str| {
            // The view is gone only at the very end; a lost status line then
            // has nowhere better to go.
            let _ = status_tx.send(Shown::Status(line.to_owned()));
            if let Some(mut file) = status_file.as_deref() {
                let _ = writeln!(file, "{line}");
            }
        });
        let presence: Presence = Arc::new({
            let shared = Arc::clone(&shared);
            move |connected| {
                shared.connected.store(connected, Ordering::Relaxed);
                // The editor's prompt and goodbye state depend on it.
                shared.wake();
            }
        });
        Ok(Parts {
            view: View {
                shown: shown_tx.clone(),
                out_thread,
                input_thread,
                shared,
                editor_done,
                saved_stderr,
            },
            input,
            output: ViewOutput { shown: shown_tx },
            status_sink,
            presence,
        })
    }

    /// Ends the view: shows everything still queued, stops the editor, and
    /// restores the terminal. Call after the conversation has ended.
    pub fn finish(self) {
        // `duplex-view-out` shows what is pending, and returns once the
        // editor has taken all of it from the printer queue (or is gone).
        let _ = self.shown.send(Shown::Finish);
        let _ = self.out_thread.join();
        self.shared.finishing.store(true, Ordering::Relaxed);
        self.shared.wake();
        // The editor leaves raw mode itself when it sees the flag, within
        // one EDITOR_POLL; restoring from this thread covers the rest.
        let left = self.editor_done.recv_timeout(EDITOR_STOP).ok();
        restore_terminal();
        self.shared.end_input();
        let _ = self.input_thread.join();
        if !self.shared.hung_up.load(Ordering::Relaxed) {
            let mut stdout = io::stdout().lock();
            // The editor left its prompt on the last line: keep what was
            // typed but never sent in view, or clear an empty prompt away.
            let _ = match left.as_deref() {
                Some("") | None => write!(stdout, "\r\x1b[2K"),
                Some(_) => writeln!(stdout),
            };
            let _ = stdout.flush();
        }
        if let Some(saved) = &self.saved_stderr {
            // Errors after the view go where the user sent stderr.
            let _ = rustix::stdio::dup2_stderr(saved.as_fd());
        }
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

/// The keys while typing: reedline's emacs bindings, except that Tab is a
/// character to send, Ctrl-Z does nothing (reedline's undo there could
/// empty the line, and an empty line is a goodbye), and a paste with line
/// breaks in it comes to us whole.
///
/// Why not suspend on Ctrl-Z: the shell that resumes us restores the
/// terminal modes it saved, racing the editor's raw mode, and answers the
/// terminal owed the editor (cursor reports) leak into the shell as typed
/// text — tried, and not robust. A conversation is better kept whole.
fn typing_mode() -> Box<dyn EditMode> {
    let mut keys = default_emacs_keybindings();
    keys.remove_binding(KeyModifiers::CONTROL, KeyCode::Char('z'));
    // As a host command, not reedline's CtrlC, which would leave the
    // half-typed line on screen looking sent; this way the waiting line
    // takes its place.
    keys.add_binding(
        KeyModifiers::CONTROL,
        KeyCode::Char('c'),
        ReedlineEvent::ExecuteHostCommand(INTERRUPT.into()),
    );
    keys.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::Edit(vec![EditCommand::InsertChar('\t')]),
    );
    Box::new(Typing(Emacs::new(keys)))
}

/// [`typing_mode`].
struct Typing(Emacs);

impl EditMode for Typing {
    fn parse_event(&mut self, event: ReedlineRawEvent) -> ReedlineEvent {
        match Event::from(event) {
            // reedline would put it all in the buffer, to be sent as one
            // multi-line entry by the next Enter.
            Event::Paste(body) if body.contains(['\n', '\r']) => {
                ReedlineEvent::ExecuteHostCommand(format!("{PASTE}{body}"))
            }
            event => match ReedlineRawEvent::try_from(event) {
                Ok(event) => self.0.parse_event(event),
                Err(()) => ReedlineEvent::None,
            },
        }
    }

    fn edit_mode(&self) -> PromptEditMode {
        PromptEditMode::Emacs
    }
}

/// The keys after our goodbye or a Ctrl-C: nothing can be typed; Ctrl-C
/// quits now.
struct Waiting;

impl EditMode for Waiting {
    fn parse_event(&mut self, event: ReedlineRawEvent) -> ReedlineEvent {
        match Event::from(event) {
            Event::Key(KeyEvent {
                code: KeyCode::Char('c'),
                modifiers: KeyModifiers::CONTROL,
                ..
            }) => ReedlineEvent::CtrlC,
            Event::Resize(width, height) => ReedlineEvent::Resize(width, height),
            _ => ReedlineEvent::None,
        }
    }

    fn edit_mode(&self) -> PromptEditMode {
        PromptEditMode::Default
    }
}

/// Typed text in the terminal's own colours (reedline's default
/// highlighter paints it white, unreadable on a light background).
struct Plain;

impl Highlighter for Plain {
    fn highlight(&self, line: &str, _cursor: usize) -> StyledText {
        let mut text = StyledText::default();
        text.push((Default::default(), line.to_owned()));
        text
    }
}

/// The state of `duplex-view-editor`.
struct Editor {
    style: Style,
    shared: Arc<Shared>,
    /// Where typed lines go; `None` once input has ended.
    typed: Option<Sender<Chunk>>,
    /// The printer queue, for lines the editor shows itself (pasted lines,
    /// notes). Only ever `try_send`: the editor is the one that drains it.
    printer: SyncSender<String>,
    interrupt: Option<Arc<ShutdownTrigger>>,
    linger: Duration,
    /// We sent the empty-line goodbye to the current peer, and wait for it
    /// to close (`serve` then goes on with the next peer).
    goodbye_said: bool,
}

impl Editor {
    /// The body of `duplex-view-editor`: keys → lines, until the view
    /// finishes or the terminal goes. Returns what was typed but not sent.
    fn run(mut self, mut editor: Reedline) -> String {
        let mut was_waiting = false;
        loop {
            let shared = &self.shared;
            if shared.interrupted.load(Ordering::Relaxed) {
                self.typed = None;
            }
            let connected = shared.connected.load(Ordering::Relaxed);
            if self.goodbye_said && !connected {
                // That conversation is over; the next peer gets our lines.
                self.goodbye_said = false;
            }
            let waiting = self.typed.is_none() || self.goodbye_said;
            if waiting != was_waiting {
                editor = if waiting {
                    // What was half typed can no longer be sent.
                    editor.run_edit_commands(&[EditCommand::Clear]);
                    editor.with_edit_mode(Box::new(Waiting))
                } else {
                    editor.with_edit_mode(typing_mode())
                };
                was_waiting = waiting;
            }
            let kind = if !waiting {
                PromptKind::Typing
            } else if connected {
                PromptKind::Waiting(format!(
                    "waiting up to {} for the peer to close \u{2014} Ctrl-C to quit now",
                    secs(self.linger)
                ))
            } else {
                PromptKind::Waiting("input has ended \u{2014} Ctrl-C to quit now".into())
            };
            let prompt = ViewPrompt {
                style: self.style.clone(),
                shared: Arc::clone(shared),
                kind,
            };
            match editor.read_line(&prompt) {
                Ok(Signal::Success(line)) => self.submit(&line),
                Ok(Signal::HostCommand(command)) => {
                    if command == INTERRUPT {
                        self.interrupted(waiting);
                    } else if let Some(body) = command.strip_prefix(PASTE) {
                        self.paste(&mut editor, body);
                    }
                }
                // Reedline gives CtrlD only on an empty prompt (otherwise it
                // deletes a character): end of input, a goodbye.
                Ok(Signal::CtrlD) => self.typed = None,
                Ok(Signal::CtrlC) => self.interrupted(waiting),
                Ok(Signal::ExternalBreak(left)) => {
                    let shared = &self.shared;
                    if shared.finishing.load(Ordering::Relaxed)
                        || shared.hung_up.load(Ordering::Relaxed)
                    {
                        return left;
                    }
                    // Otherwise a flag changed: look at them again, with the
                    // half-typed line still in the editor.
                }
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

    /// Ctrl-C, typed (in raw mode it is a key, not SIGINT).
    fn interrupted(&mut self, waiting: bool) {
        match &self.interrupt {
            // After a goodbye the prompt promises that Ctrl-C quits.
            Some(trigger) if waiting => trigger.quit(restore_terminal),
            Some(trigger) => {
                trigger.interrupt(restore_terminal);
                self.typed = None;
            }
            None => self.typed = None,
        }
    }

    /// Enter: the line goes to the peer. An empty line is the goodbye; a
    /// line with line breaks in it (pasted text that reached the buffer) is
    /// sent as its lines, without the blank ones.
    fn submit(&mut self, line: &str) {
        if line.contains('\n') {
            let lines: Vec<&str> = line.split('\n').collect();
            self.send_lines(&lines, false);
            return;
        }
        if line.is_empty() && self.shared.connected.load(Ordering::Relaxed) {
            self.goodbye_said = true;
        }
        self.send(line);
    }

    /// A paste with line breaks: its lines are sent as if each were typed
    /// and entered, except blank ones, which would be a goodbye in the
    /// middle of the paste (and chat mode cannot send them); what follows
    /// the last line break stays at the prompt.
    fn paste(&mut self, editor: &mut Reedline, body: &str) {
        let body = body.replace("\r\n", "\n").replace('\r', "\n");
        let buffer = editor.current_buffer_contents().to_owned();
        let at = editor.current_insertion_point().min(buffer.len());
        let (before, after) = buffer.split_at(at);
        let text = format!("{before}{body}{after}");
        let mut lines: Vec<&str> = text.split('\n').collect();
        let rest = lines.pop().unwrap_or_default().to_owned();
        self.send_lines(&lines, true);
        editor.run_edit_commands(&[EditCommand::Clear, EditCommand::InsertString(rest)]);
    }

    fn send_lines(&mut self, lines: &[&str], show: bool) {
        let mut blank = 0;
        for line in lines {
            if line.is_empty() {
                blank += 1;
                continue;
            }
            if show {
                let shown = self
                    .style
                    .typed(line, self.shared.connected.load(Ordering::Relaxed));
                let _ = self.printer.try_send(shown);
            }
            self.send(line);
        }
        if blank > 0 {
            self.note(&format!(
                "{blank} blank line{} in the paste left out: an empty line would end the conversation",
                if blank == 1 { "" } else { "s" }
            ));
        }
    }

    /// Sends one typed line.
    fn send(&mut self, line: &str) {
        let Some(sender) = &self.typed else {
            self.note("input has ended: line not sent");
            return;
        };
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        match sender.try_send(Chunk::from_vec(bytes)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.note(&format!("{TYPED_AHEAD} lines already wait: line not sent"));
            }
            Err(TrySendError::Disconnected(_)) => self.typed = None,
        }
    }

    /// A note from the editor, shown above the prompt. Never blocks: the
    /// editor is the thread that empties the printer queue.
    fn note(&self, line: &str) {
        let _ = self
            .printer
            .try_send(self.style.status(line, &mut Palette::default()));
    }
}

/// `5s`, `0.5s`.
fn secs(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
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
/// It also watches for the shutdown and for the terminal going away.
fn show_loop(
    shown: &Receiver<Shown>,
    printer: &SyncSender<String>,
    style: &Style,
    shared: &Shared,
    shutdown: &Shutdown,
) {
    let mut partial: Vec<u8> = Vec::new();
    // Who is in the room, and their colours.
    let mut palette = Palette::default();
    // After Ctrl-C the backlog is not drawn (SPEC, "Bad input": one Ctrl-C
    // ends the view within --linger even while lines pour in); it is counted.
    let mut not_shown: usize = 0;
    // The partial line already shown in part: the rest is a continuation.
    let mut continued = false;
    // When the partial line is shown if nothing more arrives.
    let mut partial_due: Option<Instant> = None;
    let mut next_check = Instant::now() + HANGUP_CHECK;
    let mut interrupt = shutdown.receiver().clone();
    let print = |line: String| {
        let mut line = line;
        while !shared.hung_up.load(Ordering::Relaxed) {
            match send_by(printer, line, Instant::now() + HANGUP_CHECK) {
                Ok(()) => return,
                // A slow terminal is backpressure; a hung-up one would block
                // this thread, and through it the conversation, for ever.
                Err(TrySendError::Full(unsent)) => {
                    if !terminal_alive() {
                        hang_up(shared);
                    }
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
        let wake_at = partial_due.map_or(next_check, |due| due.min(next_check));
        let timeout = wake_at.saturating_duration_since(Instant::now());
        let message = select! {
            recv(shown) -> message => message.ok(),
            recv(interrupt) -> _ => {
                interrupt = never();
                shared.interrupted.store(true, Ordering::Relaxed);
                // A hang-up's SIGHUP comes this way too, before the next
                // check would find the terminal gone: free the editor now.
                if !terminal_alive() {
                    hang_up(shared);
                }
                shared.wake();
                continue;
            },
            default(timeout) => {
                let now = Instant::now();
                if now >= next_check {
                    next_check = now + HANGUP_CHECK;
                    if !shared.hung_up.load(Ordering::Relaxed) && !terminal_alive() {
                        hang_up(shared);
                    }
                }
                if partial_due.is_some_and(|due| now >= due) {
                    print(style.incoming(&partial, continued, &mut palette));
                    partial.clear();
                    partial_due = None;
                    continued = true;
                }
                continue;
            },
        };
        match message {
            Some(Shown::Bytes(bytes)) if shared.interrupted.load(Ordering::Relaxed) => {
                not_shown += bytes.len();
            }
            Some(Shown::Bytes(bytes)) => {
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
                partial_due = (!partial.is_empty()).then(|| Instant::now() + PARTIAL_AFTER);
            }
            Some(Shown::Status(line)) => print(style.status(&line, &mut palette)),
            Some(Shown::Finish) | None => {
                if !partial.is_empty() {
                    print(style.incoming(&partial, continued, &mut palette));
                }
                if not_shown > 0 {
                    let note = format!("interrupted: {not_shown} bytes from the peer not shown");
                    print(style.status(&note, &mut Palette::default()));
                }
                // An empty message prints nothing. Once more of them have
                // been queued than the queue holds, the editor has taken
                // every real line before them, and prints a batch before it
                // looks at the break flag again.
                let deadline = Instant::now() + EDITOR_STOP;
                for _ in 0..=PRINTER_QUEUE {
                    if shared.hung_up.load(Ordering::Relaxed)
                        || send_by(printer, String::new(), deadline).is_err()
                    {
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
/// Marker of a line typed while nobody was connected: it waits for a peer.
const WAITING_TYPED: &str = "(waiting) > ";
/// Marker of a status line.
const STATUS: &str = "-- ";
/// Starts every printed line: erases its screen row. reedline clears a row
/// by printing the terminal's width in spaces before each line it prints
/// above the prompt; erasing the row again turns those cells back into
/// empty ones, so copied text has no trailing spaces and a resize reflows
/// it like plain output (tmux showed it triple-spaced at a third of the
/// width).
const ERASE_ROW: &str = "\r\x1b[K";

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
        let stamp = format!("{ERASE_ROW}{}", self.paint(DIM, &self.stamp()));
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
            return format!(
                "{ERASE_ROW}{}",
                self.paint(DIM, &format!("{}{text}", self.stamp()))
            );
        }
        format!(
            "{ERASE_ROW}{}",
            self.paint(DIM, &format!("{}{STATUS}{text}", self.stamp()))
        )
    }

    /// A line we sent without the prompt showing it (a pasted line): the
    /// marker coloured, the text in the terminal's own colour, as typed.
    fn typed(&self, line: &str, connected: bool) -> String {
        let marker = if connected { TYPED } else { WAITING_TYPED };
        format!(
            "{ERASE_ROW}{}{}{}",
            self.paint(DIM, &self.stamp()),
            self.paint("32", marker),
            render::render(line.as_bytes())
        )
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

/// Which prompt: the one being typed at, the one a submitted line keeps on
/// screen (reedline's transient prompt), or the line shown while nothing
/// can be typed.
enum PromptKind {
    Typing,
    Sent,
    Waiting(String),
}

/// The prompt: `> ` in the marker colour, the typed text in the terminal's
/// own. A submitted line keeps the timestamp of the moment Enter was
/// pressed, and `(waiting)` when nobody was connected to send it to yet.
struct ViewPrompt {
    style: Style,
    shared: Arc<Shared>,
    kind: PromptKind,
}

impl Prompt for ViewPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        match self.kind {
            PromptKind::Sent => Cow::Owned(self.style.stamp()),
            // Keeps the typed text in the same column as after Enter.
            PromptKind::Typing if self.style.timestamps => Cow::Borrowed("         "),
            _ => Cow::Borrowed(""),
        }
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        match &self.kind {
            PromptKind::Sent if !self.shared.connected.load(Ordering::Relaxed) => {
                Cow::Borrowed(WAITING_TYPED)
            }
            PromptKind::Waiting(text) => Cow::Owned(format!("{STATUS}{text}")),
            _ => Cow::Borrowed(TYPED),
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
        match self.kind {
            PromptKind::Waiting(_) => Color::DarkGray,
            _ => Color::Green,
        }
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

    /// A style's lines without the row erase each one starts with.
    struct Unerased<'a>(&'a Style);

    impl Unerased<'_> {
        fn incoming(&self, bytes: &[u8], continued: bool) -> String {
            self.0
                .incoming(bytes, continued, &mut Palette::default())
                .replacen(ERASE_ROW, "", 1)
        }

        fn status(&self, line: &str) -> String {
            self.0
                .status(line, &mut Palette::default())
                .replacen(ERASE_ROW, "", 1)
        }
    }

    #[test]
    fn control_and_invalid_bytes_are_made_visible() {
        let style = plain();
        let style = Unerased(&style);
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
        let palette = &mut Palette::default();
        assert_eq!(plain().incoming(b"hi\r", false, palette), "\r\x1b[K< hi");
        assert_eq!(plain().incoming(b"rest", true, palette), "\r\x1b[K+ rest");
        assert_eq!(plain().status("connected", palette), "\r\x1b[K-- connected");
        assert_eq!(
            plain().typed("a\tb", false),
            format!("\r\x1b[K(waiting) > {}", render::render(b"a\tb"))
        );
    }

    fn coloured() -> Style {
        Style {
            colour: true,
            timestamps: false,
        }
    }

    /// The SGR code a rendered line starts with.
    fn sgr(line: &str) -> &str {
        let line = line.strip_prefix(ERASE_ROW).unwrap_or(line);
        let rest = line.strip_prefix("\x1b[").expect("coloured");
        &rest[..rest.find('m').expect("an SGR")]
    }

    /// The SGR colour a rendered line starts with, and the rest.
    fn colour_of(line: &str) -> (String, String) {
        let line = line.strip_prefix(ERASE_ROW).unwrap_or(line);
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
        assert_eq!(
            plain().status("* [x:1] joined", palette),
            format!("{ERASE_ROW}* [x:1] joined")
        );
        // A client's view: a notice is incoming, without `< `.
        assert_eq!(
            plain().incoming(b"* [x:1] joined", false, palette),
            format!("{ERASE_ROW}* [x:1] joined")
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
            format!("{ERASE_ROW}\x1b[36m< hi\x1b[0m")
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
