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
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const DUPLEX: &str = env!("CARGO_BIN_EXE_duplex");

/// How long any one wait may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// Polling step for the screen and for child exits.
const POLL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// tmux

/// One tmux server of our own, with one 100x30 pane running a plain shell.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts the server, or returns `None` (having said why) without tmux.
    fn start() -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            let test = thread::current().name().unwrap_or("view test").to_owned();
            assert!(
                std::env::var("DUPLEX_REQUIRE_PEERS").as_deref() != Ok("1"),
                "{test}: needs tmux (DUPLEX_REQUIRE_PEERS=1, so this is a failure)"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test} needs tmux (apt-get install tmux)"
            );
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "duplex-view-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let tmux = Tmux { socket };
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            "env",
            "PS1=shell$ ",
            "bash",
            "--norc",
            "--noprofile",
        ]);
        tmux.wait_for("the shell prompt", |screen| screen.contains("shell$"));
        Some(tmux)
    }

    #[track_caller]
    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("tmux {args:?}: {e}"));
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-l", text]);
    }

    /// Presses keys by tmux name (`Enter`, `C-d`, `C-c`).
    fn press(&self, key: &str) {
        self.run(&["send-keys", key]);
    }

    /// Types a shell command line and runs it.
    fn shell(&self, line: &str) {
        self.type_text(line);
        self.press("Enter");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p"]).stdout).into_owned()
    }

    /// Polls the screen until `ready` holds; returns that screen.
    #[track_caller]
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {DEADLINE:?} waiting for {what}; the screen:\n{screen}"
            );
            thread::sleep(POLL);
        }
    }

    /// Waits for the shell to report duplex's exit code, then checks that
    /// the terminal was left sane (echo and canonical mode on).
    #[track_caller]
    fn assert_exit_and_sane_terminal(&self, code: i32) {
        let screen = self.wait_for(&format!("`exit={code}`"), |s| {
            s.lines().any(|l| l.starts_with("exit="))
        });
        let marker = format!("exit={code}");
        assert!(
            screen.lines().any(|l| l.trim_end() == marker),
            "expected `{marker}`:\n{screen}"
        );
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

impl Drop for Tmux {
    fn drop(&mut self) {
        if thread::panicking() {
            // Not `self.screen()`: a second panic here would abort the run.
            if let Ok(out) = Command::new("tmux")
                .args(["-L", &self.socket, "capture-pane", "-p"])
                .output()
            {
                let screen = String::from_utf8_lossy(&out.stdout);
                let _ = writeln!(std::io::stderr(), "--- screen ---\n{screen}");
            }
        }
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
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
// The peer: `duplex serve --once` with pipes

struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(DUPLEX)
            .args(["serve", "--once", "-b", "127.0.0.1", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn duplex serve");
        let stdin = child.stdin.take();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut out_pipe = child.stdout.take().expect("stdout is piped");
        let err_pipe = child.stderr.take().expect("stderr is piped");
        let out = Arc::clone(&stdout);
        thread::Builder::new()
            .name("test-server-stdout".into())
            .spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = out_pipe.read(&mut buf) {
                    out.lock()
                        .expect("stdout buffer")
                        .extend_from_slice(&buf[..n]);
                }
            })
            .expect("spawn stdout reader");
        let (addr_tx, addr_rx) = crossbeam_channel::bounded(1);
        let err = Arc::clone(&stderr);
        thread::Builder::new()
            .name("test-server-stderr".into())
            .spawn(move || {
                for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        let _ = addr_tx.send(addr.trim().to_owned());
                    }
                    let mut err = err.lock().expect("stderr buffer");
                    err.push_str(&line);
                    err.push('\n');
                }
            })
            .expect("spawn stderr reader");
        let addr = addr_rx
            .recv_timeout(DEADLINE)
            .expect("`listening on` from duplex serve")
            .parse()
            .expect("a socket address after `listening on`");
        Server {
            child,
            stdin,
            stdout,
            stderr,
            addr,
        }
    }

    fn say(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("server stdin is open");
        stdin.write_all(bytes).expect("write to server stdin");
        stdin.flush().expect("flush server stdin");
    }

    fn heard(&self) -> Vec<u8> {
        self.stdout.lock().expect("stdout buffer").clone()
    }

    #[track_caller]
    fn wait_heard(&self, expected: &[u8]) {
        let deadline = Instant::now() + DEADLINE;
        while self.heard() != expected {
            assert!(
                Instant::now() < deadline,
                "the server heard {:?}, expected {:?}; its stderr:\n{}",
                String::from_utf8_lossy(&self.heard()),
                String::from_utf8_lossy(expected),
                self.stderr.lock().expect("stderr buffer")
            );
            thread::sleep(POLL);
        }
    }

    #[track_caller]
    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "duplex serve did not exit");
            thread::sleep(POLL);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own child only, by handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn incoming_lines_appear_above_the_half_typed_prompt() {
    let Some(tmux) = Tmux::start() else { return };
    let mut server = Server::start();
    tmux.connect(server.addr, "");

    tmux.type_text("half typed");
    tmux.wait_for("the half-typed text", |s| {
        prompt_line(s) == Some("> half typed")
    });
    server.say(b"one\ntwo\nthree\n");
    let screen = tmux.wait_for("three incoming lines", |s| s.contains("< three"));

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
    server.wait_heard(b"half typed and done\n");

    // Enter on an empty prompt: the empty-line goodbye.
    tmux.press("Enter");
    tmux.assert_exit_and_sane_terminal(0);
    assert_eq!(server.wait_exit(), 0);
    // The goodbye line itself is not shown (SPEC, "Hearing goodbye").
    assert_eq!(server.heard(), b"half typed and done\n");
}

#[test]
fn ctrl_d_on_an_empty_prompt_ends_the_conversation() {
    let Some(tmux) = Tmux::start() else { return };
    let mut server = Server::start();
    tmux.connect(server.addr, "--color never");
    tmux.shell_line_into_view("hello");
    server.wait_heard(b"hello\n");
    tmux.press("C-d");
    tmux.assert_exit_and_sane_terminal(0);
    assert_eq!(server.wait_exit(), 0);
    assert_eq!(server.heard(), b"hello\n");
}

#[test]
fn ctrl_c_in_the_view_exits_130_and_restores_the_terminal() {
    let Some(tmux) = Tmux::start() else { return };
    let server = Server::start();
    tmux.connect(server.addr, "--linger 0.5");
    tmux.type_text("never sent");
    tmux.wait_for("the half-typed text", |s| {
        prompt_line(s) == Some("> never sent")
    });
    tmux.press("C-c");
    tmux.assert_exit_and_sane_terminal(130);
    assert_eq!(server.heard(), b"");
}

#[test]
fn timestamps_and_status_lines_show_in_the_view() {
    let Some(tmux) = Tmux::start() else { return };
    let mut server = Server::start();
    tmux.connect(server.addr, "--timestamps");
    server.say("tick\n\x1b[31mred?\n\u{202e}rtl \u{9b}2J\tend\n".as_bytes());
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
    server.say(b"\n");
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
    let mut server = Server::start();
    tmux.connect(server.addr, "");
    tmux.type_text("abc def");
    tmux.press("C-w");
    tmux.type_text("x");
    tmux.press("C-a");
    tmux.type_text("<");
    tmux.press("C-e");
    tmux.type_text(">");
    tmux.wait_for("the edited line", |s| prompt_line(s) == Some("> <abc x>"));
    tmux.press("Enter");
    server.wait_heard(b"<abc x>\n");
    // Up recalls the line; Ctrl-U cuts it all.
    tmux.press("Up");
    tmux.wait_for("the recalled line", |s| prompt_line(s) == Some("> <abc x>"));
    tmux.press("C-u");
    tmux.wait_for("an empty prompt", |s| prompt_line(s) == Some(">"));
    tmux.shell_line_into_view("y");
    server.wait_heard(b"<abc x>\ny\n");
    server.stdin = None;
    tmux.assert_exit_and_sane_terminal(0);
}

#[test]
fn piped_output_is_byte_exact_even_with_color_always() {
    let mut server = Server::start();
    let data: &[u8] =
        b"plain\n\x1b[31mescape\r\n\xff\xfe invalid\n\x00nul\ttab\nno newline at the end";
    let mut client = Command::new(DUPLEX)
        .args(["connect", "--color", "always", "--timestamps"])
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn duplex connect");
    server.say(data);
    // The server's end of input is its goodbye: the client ends too.
    server.stdin = None;
    let mut out = Vec::new();
    client
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_end(&mut out)
        .expect("read the client's stdout");
    let status = client.wait().expect("wait for duplex connect");
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(data));
    assert_eq!(out, data);
    assert!(status.success(), "{status:?}");
}

#[test]
fn generate_prints_a_man_page_and_completions() {
    let run = |args: &[&str]| {
        Command::new(DUPLEX)
            .args(args)
            .output()
            .expect("run duplex")
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
    let mut server = Server::start();
    // `exec`, so that the pane's process is duplex itself.
    tmux.shell(&format!(
        "exec {DUPLEX} connect --color never {} {}",
        server.addr.ip(),
        server.addr.port()
    ));
    tmux.wait_for("the view's prompt after `connected to`", |s| {
        s.contains("-- connected to") && prompt_line(s).is_some()
    });
    let pid = String::from_utf8_lossy(&tmux.run(&["display", "-p", "#{pane_pid}"]).stdout)
        .trim()
        .to_owned();
    server.say(b"a line for a terminal that is about to go\n");
    tmux.run(&["kill-server"]);
    // The hang-up ends the conversation gracefully: the server sees our EOF.
    assert_eq!(server.wait_exit(), 0);
    let deadline = Instant::now() + DEADLINE;
    while !exited(&pid) {
        assert!(
            Instant::now() < deadline,
            "duplex (pid {pid}) is still running after its terminal hung up"
        );
        thread::sleep(POLL);
    }
}
