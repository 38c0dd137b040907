//! The interactive terminal view in a real terminal (issue 5), and the
//! `--generate` outputs.
//!
//! A `duplex serve` child runs with pipes (the test types into its stdin and
//! reads its stdout); `duplex connect` runs in a tmux pane, inside a shell, so
//! the tests can type with `send-keys`, read the screen with `capture-pane`,
//! and check that the shell prompt comes back with the terminal sane. Each
//! test has its own tmux server (`tmux -L <unique name>`), killed by a drop
//! guard whatever happens. The screen can only be polled: every wait polls in
//! small steps under a generous deadline (CI is a loaded 2-core machine).
//!
//! Without tmux these tests say `SKIPPED: ... needs tmux` on stderr and pass,
//! unless `DUPLEX_REQUIRE_PEERS=1`, where they fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{self, Proc, Tmux};

const DUPLEX: &str = env!("CARGO_BIN_EXE_duplex");

/// How long any one wait may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// Polling step for the screen and for child exits.
const POLL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// The view in tmux

impl Tmux {
    /// Waits for the shell to report duplex's exit code, then checks that
    /// the terminal was left sane (echo and canonical mode on).
    #[track_caller]
    fn assert_exit_and_sane_terminal(&self, code: i32) {
        let screen = self.wait_for(&format!("`exit={code}`"), |s| {
            support::shell_exit(s).is_some()
        });
        assert_eq!(support::shell_exit(&screen), Some(code), "{screen}");
        self.shell(
            "stty -a | tr ' ;' '\\n\\n' | grep -x -e '-\\?echo' -e '-\\?icanon' | sed 's/^/stty:/'",
        );
        let screen = self.wait_for("the stty report", |s| {
            s.lines().filter(|l| l.starts_with("stty:")).count() >= 2
        });
        let modes: Vec<&str> = screen.lines().filter(|l| l.starts_with("stty:")).collect();
        assert!(
            modes.contains(&"stty:echo") && modes.contains(&"stty:icanon"),
            "the terminal was not restored ({modes:?}):\n{screen}"
        );
    }

    /// Runs `duplex connect` to `addr` in the pane, and waits for the view.
    fn connect(&self, addr: SocketAddr, extra: &str) {
        self.shell(&format!(
            "{DUPLEX} connect {extra} {} {}; echo exit=$?",
            addr.ip(),
            addr.port()
        ));
        self.wait_for("the view's prompt after `connected to`", |s| {
            s.contains("-- connected to") && prompt_line(s).is_some()
        });
    }
}

/// The last non-blank line on screen, if it is the view's prompt (`> ...`,
/// indented under `--timestamps`).
fn prompt_line(screen: &str) -> Option<&str> {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::trim_start)
        .filter(|l| l.starts_with("> ") || *l == ">")
}

// ---------------------------------------------------------------------------
// The peer: `duplex serve --once` with pipes, on the harness

/// `duplex serve --once` on loopback, the view's peer.
fn server() -> (Proc, SocketAddr) {
    support::serve(&["--once"])
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn incoming_lines_appear_above_the_half_typed_prompt() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = server();
    tmux.connect(addr, "");

    tmux.type_text("half typed");
    tmux.wait_for("the half-typed text", |s| {
        prompt_line(s) == Some("> half typed")
    });
    server.write(b"one\ntwo\nthree\n");
    // The lines are printed, then the prompt is drawn again below them:
    // wait for both, not for a screen caught in between.
    let screen = tmux.wait_for("three incoming lines above the prompt", |s| {
        s.contains("< three") && prompt_line(s) == Some("> half typed")
    });

    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| *l == needle)
            .unwrap_or_else(|| panic!("no line {needle:?} on screen:\n{screen}"))
    };
    assert!(
        at("< one") < at("< two") && at("< two") < at("< three"),
        "{screen}"
    );
    assert_eq!(prompt_line(&screen), Some("> half typed"), "{screen}");
    assert!(at("< three") < at("> half typed"), "{screen}");

    tmux.type_text(" and done");
    tmux.press("Enter");
    server.wait_for_stdout_exactly(b"half typed and done\n");

    // Enter on an empty prompt: the empty-line goodbye.
    tmux.press("Enter");
    tmux.assert_exit_and_sane_terminal(0);
    server.assert_exit(0);
    // The goodbye line itself is not shown (SPEC, "Hearing goodbye").
    server.assert_stdout(b"half typed and done\n");
}

#[test]
fn ctrl_d_on_an_empty_prompt_ends_the_conversation() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = server();
    tmux.connect(addr, "--color never");
    tmux.shell_line_into_view("hello");
    server.wait_for_stdout_exactly(b"hello\n");
    tmux.press("C-d");
    tmux.assert_exit_and_sane_terminal(0);
    server.assert_exit(0);
    server.assert_stdout(b"hello\n");
}

#[test]
fn ctrl_c_in_the_view_exits_130_and_restores_the_terminal() {
    let Some(tmux) = Tmux::start() else { return };
    let (server, addr) = server();
    tmux.connect(addr, "--linger 0.5");
    tmux.type_text("never sent");
    tmux.wait_for("the half-typed text", |s| {
        prompt_line(s) == Some("> never sent")
    });
    tmux.press("C-c");
    tmux.assert_exit_and_sane_terminal(130);
    server.assert_stdout(b"");
}

#[test]
fn timestamps_and_status_lines_show_in_the_view() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = server();
    tmux.connect(addr, "--timestamps");
    server.write("tick\n\x1b[31mred?\n\u{202e}rtl \u{9b}2J\tend\n".as_bytes());
    let screen = tmux.wait_for("three stamped lines", |s| s.contains("end"));
    let stamped = |line: &str| {
        let b = line.as_bytes();
        b.len() > 9 && b[2] == b':' && b[5] == b':' && b[8] == b' '
    };
    assert!(
        screen.lines().any(|l| stamped(l) && l.ends_with("< tick")),
        "{screen}"
    );
    // A control byte from the peer is shown, not obeyed.
    assert!(screen.contains("< ^[[31mred?"), "{screen}");
    // So are bidi and C1 controls (SPEC, "Terminal safety"); a tab is
    // spaces to the next multiple of 8 columns of the peer's text.
    assert!(screen.contains("< <U+202E>rtl <U+009B>2J  end"), "{screen}");
    // The server's goodbye ends it; the status line says so in the view.
    server.write(b"\n");
    tmux.assert_exit_and_sane_terminal(0);
    assert!(
        tmux.screen().contains("ended: peer said goodbye"),
        "{}",
        tmux.screen()
    );
}

impl Tmux {
    /// Types a line at the view's prompt and presses Enter.
    fn shell_line_into_view(&self, line: &str) {
        self.type_text(line);
        self.wait_for("the typed line", |s| {
            prompt_line(s) == Some(&format!("> {line}"))
        });
        self.press("Enter");
    }
}

#[test]
fn line_editing_keys_and_history_work() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = server();
    tmux.connect(addr, "");
    tmux.type_text("abc def");
    tmux.press("C-w");
    tmux.type_text("x");
    tmux.press("C-a");
    tmux.type_text("<");
    tmux.press("C-e");
    tmux.type_text(">");
    tmux.wait_for("the edited line", |s| prompt_line(s) == Some("> <abc x>"));
    tmux.press("Enter");
    server.wait_for_stdout_exactly(b"<abc x>\n");
    // Up recalls the line; Ctrl-U cuts it all.
    tmux.press("Up");
    tmux.wait_for("the recalled line", |s| prompt_line(s) == Some("> <abc x>"));
    tmux.press("C-u");
    tmux.wait_for("an empty prompt", |s| prompt_line(s) == Some(">"));
    tmux.shell_line_into_view("y");
    server.wait_for_stdout_exactly(b"<abc x>\ny\n");
    server.close_stdin();
    tmux.assert_exit_and_sane_terminal(0);
}

#[test]
fn piped_output_is_byte_exact_even_with_color_always() {
    let (mut server, addr) = server();
    let data: &[u8] =
        b"plain\n\x1b[31mescape\r\n\xff\xfe invalid\n\x00nul\ttab\nno newline at the end";
    let mut client = support::connect(addr, &["--color", "always", "--timestamps"]);
    server.write(data);
    // The server's end of input is its goodbye: the client ends too.
    server.close_stdin();
    client.assert_exit(0);
    assert_eq!(
        String::from_utf8_lossy(&client.stdout()),
        String::from_utf8_lossy(data)
    );
    client.assert_stdout(data);
}

#[test]
fn generate_prints_a_man_page_and_completions() {
    let run = |args: &[&str]| {
        let mut run = support::duplex().args(args).stdin_null().spawn();
        let status = run.finish();
        Output {
            status,
            stdout: run.stdout(),
            stderr: run.stderr().into_bytes(),
        }
    };
    let man = run(&["--generate", "man"]);
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH"), "{man}");
    assert!(man.contains("serve") && man.contains("connect"), "{man}");

    let bash = run(&["--generate", "complete-bash"]);
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("serve"));
    for shell in ["complete-zsh", "complete-fish"] {
        let out = run(&["--generate", shell]);
        assert!(out.status.success() && out.stdout.len() > 100, "{shell}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("connect"));
    }

    // Neither a subcommand nor --generate: clap's usage error.
    let none = run(&[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("Usage"));
    // --generate does not go with a subcommand.
    assert_eq!(
        run(&["--generate", "man", "serve", "0"]).status.code(),
        Some(2)
    );
}

/// Whether process `pid` has exited (gone, or a zombie nobody reaped: the
/// tmux server that was its parent is gone too).
fn exited(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_terminal_that_hangs_up_ends_the_view_and_the_process() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = server();
    // `exec`, so that the pane's process is duplex itself.
    tmux.shell(&format!(
        "exec {DUPLEX} connect --color never {} {}",
        addr.ip(),
        addr.port()
    ));
    tmux.wait_for("the view's prompt after `connected to`", |s| {
        s.contains("-- connected to") && prompt_line(s).is_some()
    });
    let pid = String::from_utf8_lossy(&tmux.run(&["display", "-p", "#{pane_pid}"]).stdout)
        .trim()
        .to_owned();
    server.write(b"a line for a terminal that is about to go\n");
    let hung_up = Instant::now();
    tmux.run(&["kill-server"]);
    // The hang-up ends the conversation gracefully: the server sees our EOF.
    server.assert_exit(0);
    let deadline = Instant::now() + DEADLINE;
    while !exited(&pid) {
        assert!(
            Instant::now() < deadline,
            "duplex (pid {pid}) is still running after its terminal hung up"
        );
        thread::sleep(POLL);
    }
    // Nothing is left to wait for: not the editor, stuck on the dead
    // terminal until told, nor the lines queued for it (2 s each, before).
    let took = hung_up.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "duplex exited {took:?} after the hang-up"
    );
}

#[test]
fn a_room_in_the_view_colours_peers_in_join_order_and_dims_notices() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut room, addr) = support::serve(&["--room", "--linger", "0.5"]);
    let alice = std::net::TcpStream::connect(addr).expect("alice connects");
    alice
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    let mut heard = BufReader::new(alice.try_clone().expect("try_clone"));
    let mut line = String::new();
    heard.read_line(&mut line).expect("alice's welcome");
    (&alice)
        .write_all(b"/name alice\n")
        .expect("alice names herself");
    line.clear();
    heard.read_line(&mut line).expect("alice's name notice");
    assert!(line.ends_with("is now [alice]\n"), "{line:?}");

    tmux.connect(addr, "--color always --name zed");
    tmux.wait_for("zed's name", |s| s.contains("is now [zed]"));
    (&alice).write_all(b"hi zed\n").expect("alice speaks");
    tmux.wait_for("alice's line", |s| s.contains("[alice] hi zed"));
    let screen =
        String::from_utf8_lossy(&tmux.run(&["capture-pane", "-p", "-e"]).stdout).into_owned();
    // Notices: dimmed, and their `* ` is their one prefix.
    let welcome = screen
        .lines()
        .find(|l| l.contains("* you are"))
        .unwrap_or_else(|| panic!("no welcome:\n{screen}"));
    // capture-pane writes an SGR only where attributes change, so a run of
    // dim lines shares one: what counts is the last SGR before the notice.
    let at = screen.find("* you are [127.0.0.1:").expect("the welcome");
    let sgr_at = screen[..at]
        .rfind("\x1b[")
        .expect("an SGR before the welcome");
    assert!(
        screen[sgr_at..at].starts_with("\x1b[2m"),
        "the welcome is not dimmed: {screen:?}"
    );
    assert!(welcome.contains("; here: [server], [alice]"), "{welcome:?}");
    assert!(
        !screen.contains("< * ") && !screen.contains("-- * "),
        "{screen:?}"
    );
    // Alice was second in the welcome (after the server): the second colour.
    let said = screen
        .lines()
        .find(|l| l.contains("[alice] hi zed"))
        .expect("alice's line");
    // tmux may put a background reset between the colour and the text.
    let before = &said[..said.find("< [alice] hi zed").expect("the text")];
    assert!(before.contains("\x1b[32m"), "{said:?}");

    tmux.press("C-d");
    tmux.assert_exit_and_sane_terminal(0);
    room.close_stdin();
    drop((alice, heard));
    room.assert_exit(0);
}

// ---------------------------------------------------------------------------
// Issue 10 (the view as a new user meets it) and issue 17 (points 4 and 5)

/// A peer of our own that greets, records what it hears, notices our EOF,
/// and never closes until dropped: a conversation that lingers.
struct Holder {
    addr: SocketAddr,
    heard: Arc<Mutex<Vec<u8>>>,
    eof: Arc<std::sync::atomic::AtomicBool>,
    _release: crossbeam_channel::Sender<()>,
}

impl Holder {
    fn start(greeting: &'static [u8]) -> Holder {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heard = Arc::new(Mutex::new(Vec::new()));
        let eof = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        thread::Builder::new()
            .name("test-holder".into())
            .spawn({
                let heard = Arc::clone(&heard);
                let eof = Arc::clone(&eof);
                move || {
                    let Ok((mut stream, _)) = listener.accept() else {
                        return;
                    };
                    let _ = stream.write_all(greeting);
                    let mut buf = [0; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        heard.lock().expect("heard").extend_from_slice(&buf[..n]);
                    }
                    eof.store(true, Ordering::Relaxed);
                    // Hold the socket open until the test lets go.
                    let _ = released.recv_timeout(DEADLINE);
                    drop(stream);
                }
            })
            .expect("spawn holder");
        Holder {
            addr,
            heard,
            eof,
            _release: release,
        }
    }

    fn heard(&self) -> Vec<u8> {
        self.heard.lock().expect("heard").clone()
    }

    #[track_caller]
    fn wait_eof(&self) {
        let deadline = Instant::now() + DEADLINE;
        while !self.eof.load(Ordering::Relaxed) {
            assert!(Instant::now() < deadline, "no EOF from duplex");
            thread::sleep(POLL);
        }
    }
}

impl Tmux {
    fn screen_with_escapes(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-e"]).stdout).into_owned()
    }

    /// The pid of the program the pane's shell runs in the foreground.
    fn child_of_shell(&self) -> String {
        let shell = String::from_utf8_lossy(&self.run(&["display", "-p", "#{pane_pid}"]).stdout)
            .trim()
            .to_owned();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
                .unwrap_or_default();
            if let Some(child) = children.split_whitespace().next() {
                return child.to_owned();
            }
            assert!(Instant::now() < deadline, "the shell runs no program");
            thread::sleep(POLL);
        }
    }
}

#[test]
fn tabs_are_sent_typed_text_keeps_the_terminal_colour_and_lines_are_not_padded() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = server();
    tmux.connect(addr, "--color always");
    tmux.type_text("a\tb");
    tmux.wait_for("the typed tab", |s| {
        prompt_line(s).is_some_and(|l| l.starts_with("> a") && l.ends_with('b'))
    });
    // The typed text is drawn in the terminal's default colour: no SGR
    // foreground (reedline's default was white, `\e[37m`).
    let escaped = tmux.screen_with_escapes();
    assert!(
        !escaped.contains("\x1b[37m"),
        "typed text forced to white: {escaped:?}"
    );
    tmux.press("Enter");
    server.wait_for_stdout_exactly(b"a\tb\n");

    server.write(b"first\nsecond\nthird\n");
    tmux.wait_for("the peer's lines", |s| s.contains("< third"));
    // Printed lines end where their text ends: after a resize to a third of
    // the width they are still one row each, not padded rows reflowed into
    // three.
    tmux.run(&["resize-window", "-x", "40"]);
    let screen = tmux.wait_for("the narrow screen", |s| {
        s.lines().all(|l| l.chars().count() <= 40)
    });
    let lines: Vec<&str> = screen.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.trim_end() == needle)
            .unwrap_or_else(|| panic!("no {needle:?}:\n{screen}"))
    };
    assert_eq!(at("< second"), at("< first") + 1, "{screen}");
    assert_eq!(at("< third"), at("< second") + 1, "{screen}");
    tmux.press("Enter");
    tmux.assert_exit_and_sane_terminal(0);
    server.assert_exit(0);
}

#[test]
fn a_paste_with_blank_lines_sends_its_other_lines_and_says_so_once() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = server();
    tmux.connect(addr, "--color never");
    tmux.run(&["set-buffer", "--", "one\n\ntwo\n\n\nthr"]);
    // -p: as a bracketed paste, which the view asked the terminal for.
    tmux.run(&["paste-buffer", "-p"]);
    server.wait_for_stdout_exactly(b"one\ntwo\n");
    let screen = tmux.wait_for("the rest of the paste at the prompt", |s| {
        prompt_line(s) == Some("> thr")
    });
    assert_eq!(
        screen.matches("left out").count(),
        1,
        "one note for the paste:\n{screen}"
    );
    assert!(
        screen.contains("3 blank lines in the paste left out"),
        "{screen}"
    );
    assert!(
        screen.contains("> one") && screen.contains("> two"),
        "{screen}"
    );
    tmux.type_text("ee");
    tmux.press("Enter");
    server.wait_for_stdout_exactly(b"one\ntwo\nthree\n");
    // Still talking: the blank lines were no goodbye.
    server.write(b"still here\n");
    tmux.wait_for("the server's line", |s| s.contains("< still here"));
    tmux.press("Enter");
    tmux.assert_exit_and_sane_terminal(0);
    server.assert_exit(0);
    server.assert_stdout(b"one\ntwo\nthree\n");
}

#[test]
fn after_our_goodbye_the_view_says_what_it_waits_for_and_takes_no_input() {
    let Some(tmux) = Tmux::start() else { return };
    let holder = Holder::start(b"hello\n");
    tmux.connect(holder.addr, "--color never --linger 20");
    tmux.wait_for("the greeting", |s| s.contains("< hello"));
    tmux.press("Enter");
    holder.wait_eof();
    let waiting = "-- waiting up to 20s for the peer to close \u{2014} Ctrl-C to quit now";
    tmux.wait_for("the waiting line", |s| s.contains(waiting));
    tmux.type_text("more");
    tmux.press("Enter");
    // Nothing was taken: the keys did not reach the prompt.
    let screen = tmux.wait_for("the waiting line, still", |s| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::trim_end)
            == Some(waiting)
    });
    assert!(!screen.contains("more"), "{screen}");
    assert!(
        !screen.contains("--raw"),
        "no --raw hint in the view:\n{screen}"
    );
    let started = Instant::now();
    tmux.press("C-c");
    tmux.assert_exit_and_sane_terminal(130);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "Ctrl-C did not quit now, it waited out the linger"
    );
    assert_eq!(holder.heard(), b"\n");
}

#[test]
fn a_first_ctrl_c_stops_input_and_says_so_and_a_second_quits() {
    let Some(tmux) = Tmux::start() else { return };
    let holder = Holder::start(b"hello\n");
    tmux.connect(holder.addr, "--color never --linger 20");
    tmux.type_text("half");
    tmux.wait_for("the half-typed text", |s| prompt_line(s) == Some("> half"));
    tmux.press("C-c");
    holder.wait_eof();
    let screen = tmux.wait_for("the waiting line", |s| {
        s.contains("-- waiting up to 20s for the peer to close \u{2014} Ctrl-C to quit now")
    });
    assert!(!screen.contains("half"), "{screen}");
    tmux.press("C-c");
    tmux.assert_exit_and_sane_terminal(130);
    assert_eq!(holder.heard(), b"");
}

#[test]
fn ctrl_z_never_empties_the_line() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = server();
    tmux.connect(addr, "--color never");
    tmux.type_text("xyz");
    tmux.wait_for("the typed text", |s| prompt_line(s) == Some("> xyz"));
    tmux.press("C-z");
    tmux.type_text("!");
    tmux.wait_for("the line, kept", |s| prompt_line(s) == Some("> xyz!"));
    tmux.press("Enter");
    server.wait_for_stdout_exactly(b"xyz!\n");
    tmux.press("C-d");
    tmux.assert_exit_and_sane_terminal(0);
    server.assert_exit(0);
}

#[test]
fn lines_typed_while_nobody_is_connected_are_marked_waiting() {
    let Some(tmux) = Tmux::start() else { return };
    tmux.shell(&format!(
        "{DUPLEX} serve --once --color never -b 127.0.0.1 0; echo exit=$?"
    ));
    let screen = tmux.wait_for("the listening line", |s| {
        s.contains("-- listening on") && prompt_line(s).is_some()
    });
    let addr: SocketAddr = screen
        .lines()
        .find_map(|l| l.trim().strip_prefix("-- listening on "))
        .expect("listening line")
        .trim()
        .parse()
        .expect("an address");
    tmux.shell_line_into_view("early");
    tmux.wait_for("the waiting mark", |s| {
        s.lines().any(|l| l.trim_end() == "(waiting) > early")
    });
    let mut peer = std::net::TcpStream::connect(addr).expect("connect");
    peer.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut buf = [0; 6];
    peer.read_exact(&mut buf).expect("the waiting line arrives");
    assert_eq!(&buf, b"early\n");
    tmux.wait_for("the connection", |s| s.contains("-- connection from"));
    tmux.shell_line_into_view("later");
    let mut buf = [0; 6];
    peer.read_exact(&mut buf).expect("the next line");
    assert_eq!(&buf, b"later\n");
    let screen = tmux.screen();
    assert!(
        screen.lines().any(|l| l.trim_end() == "> later"),
        "a line sent to a peer is not marked:\n{screen}"
    );
    peer.write_all(b"\n").expect("goodbye");
    peer.shutdown(std::net::Shutdown::Write).expect("shutdown");
    tmux.assert_exit_and_sane_terminal(0);
}

#[test]
fn the_view_draws_on_the_terminal_when_stderr_is_redirected() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = server();
    let log = std::env::temp_dir().join(format!("duplex-view-stderr-{}.log", std::process::id()));
    tmux.shell(&format!(
        "{DUPLEX} connect --color never {} {} 2>{}; echo exit=$?",
        addr.ip(),
        addr.port(),
        log.display()
    ));
    tmux.wait_for("the view's prompt after `connected to`", |s| {
        s.contains("-- connected to") && prompt_line(s).is_some()
    });
    server.write(b"hi there\n");
    tmux.wait_for("the peer's line", |s| s.contains("< hi there"));
    tmux.shell_line_into_view("typed");
    server.wait_for_stdout_exactly(b"typed\n");
    tmux.press("Enter");
    tmux.assert_exit_and_sane_terminal(0);
    server.assert_exit(0);
    let written = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    // Status lines go to the redirected stderr too; the view does not.
    assert!(written.contains("connected to"), "{written:?}");
    assert!(written.contains("ended"), "{written:?}");
    assert!(
        !written.contains("hi there") && !written.contains('\x1b'),
        "the view was drawn into the file: {written:?}"
    );
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (1-based).
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[test]
fn a_terminal_that_vanishes_without_sighup_ends_input_without_spinning() {
    let Some(tmux) = Tmux::start() else { return };
    let holder = Holder::start(b"hello\n");
    // The shell, the session leader, ignores the hang-up and stays: the
    // kernel sends SIGHUP to no one else, so duplex only sees its terminal
    // go dead.
    tmux.shell("trap '' HUP");
    tmux.connect(holder.addr, "--color never --linger 1.5");
    tmux.wait_for("the greeting", |s| s.contains("< hello"));
    let pid = tmux.child_of_shell();
    tmux.run(&["kill-server"]);
    // End of input: our goodbye reaches the peer.
    holder.wait_eof();
    let before = cpu_ticks(&pid);
    let measured_from = Instant::now();
    thread::sleep(Duration::from_millis(500));
    let after = cpu_ticks(&pid);
    if let (Some(before), Some(after)) = (before, after) {
        // 100 ticks a second: a busy loop uses about 50 of them here.
        assert!(
            after - before <= 10,
            "duplex used {} ticks of CPU in {:?} after its terminal went",
            after - before,
            measured_from.elapsed()
        );
    }
    // The peer never closes: the linger ends it, and duplex exits.
    let deadline = Instant::now() + DEADLINE;
    while !exited(&pid) {
        assert!(
            Instant::now() < deadline,
            "duplex (pid {pid}) is still running after its terminal went"
        );
        thread::sleep(POLL);
    }
    assert_eq!(holder.heard(), b"");
}

/// Issue 17, item 3: in the view under a flood, one Ctrl-C ends duplex
/// within about `--linger`; the backlog queued for the screen is counted,
/// not drawn first (it took about a minute before).
#[test]
fn one_ctrl_c_under_a_flood_ends_the_view_without_drawing_the_backlog() {
    let Some(tmux) = Tmux::start() else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let flooder = thread::Builder::new()
        .name("test-flooder".into())
        .spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            // Bounded in time and size; stops as soon as duplex is gone.
            let started = Instant::now();
            let mut n = 0u64;
            let mut chunk = Vec::with_capacity(64 * 1024);
            while started.elapsed() < DEADLINE && n < 20_000_000 {
                chunk.clear();
                while chunk.len() < 60 * 1024 {
                    n += 1;
                    chunk.extend_from_slice(format!("flood line {n}\n").as_bytes());
                }
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
        })
        .expect("spawn the flooder");
    // Not `connect`: the flood scrolls `connected to` away at once.
    tmux.shell(&format!(
        "{DUPLEX} connect --color never --linger 1 {} {}; echo exit=$?",
        addr.ip(),
        addr.port()
    ));
    tmux.wait_for("the flood on screen", |s| s.contains("flood line"));
    let pressed = Instant::now();
    tmux.press("C-c");
    tmux.assert_exit_and_sane_terminal(130);
    let took = pressed.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "one Ctrl-C took {took:?} to end the view under a flood"
    );
    let _ = flooder.join();
}
