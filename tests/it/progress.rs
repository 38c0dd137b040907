//! The live progress line and the summary line of raw transfers (issue 16).
//!
//! The live line needs a terminal: those tests run `duplex connect --raw` in
//! a tmux pane of their own (the approach of tests/view.rs) and read the
//! screen with `capture-pane`; the peer is a socket of the test's, which
//! reads only when the test says so, so the transfer lasts as long as the
//! test needs to see the line (waits are on what the screen shows, polled
//! under a deadline). Where a test shows that the line does *not* appear, it
//! watches the screen for a fixed second (ten redraws' worth) before letting
//! the transfer finish: an absence can only be observed over a window.
//!
//! Without tmux those tests say `SKIPPED: ... needs tmux` and pass, unless
//! `DUPLEX_REQUIRE_PEERS=1`, where they fail.

use duplex::progress::{Traffic, Watch, Watcher};
use duplex::{Console, ConversationOptions, Input, Mode, conversation};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use crate::support::{
    self, DEADLINE, TempFile, Tmux, accept_raw, duplex, fnv1a, noise_without_newline,
};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const DUPLEX: &str = env!("CARGO_BIN_EXE_duplex");
const MIB: usize = 1024 * 1024;
const POLL: Duration = Duration::from_millis(50);

/// Runs `duplex connect --raw EXTRA 127.0.0.1 PORT < FILE` in the pane,
/// stdout to /dev/null.
fn send(tmux: &Tmux, port: u16, extra: &str, file: &TempFile) {
    tmux.shell(&format!(
        "{DUPLEX} connect --raw {extra} 127.0.0.1 {port} < {} > /dev/null; echo exit=$?",
        file.0.display()
    ));
}

/// The live line on `screen`, if one is drawn: `[===>   ]  48%  sent …`.
fn live_line(screen: &str) -> Option<&str> {
    screen
        .lines()
        .find(|l| l.starts_with('[') && l.contains("%  sent "))
}

/// The percentage the live line shows.
fn percent(line: &str) -> u32 {
    let before = &line[..line.find('%').expect("a percentage")];
    let digits = before.rsplit(|c: char| !c.is_ascii_digit()).next();
    digits
        .and_then(|d| d.parse().ok())
        .expect("a number before %")
}

/// Reads `n` bytes (fewer at EOF) from the peer socket.
fn read_some(peer: &mut TcpStream, n: usize) -> usize {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < n {
        let want = buf.len().min(n - got);
        match peer.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => panic!("reading from duplex: {e}"),
        }
    }
    got
}

/// A 64 MiB file to send.
fn big_file(name: &str) -> TempFile {
    TempFile::with(name, &noise_without_newline(64 * MIB, 16))
}

#[test]
fn the_live_line_appears_updates_and_is_erased_at_the_end() {
    let Some(tmux) = Tmux::start() else { return };
    let file = big_file("live.bin");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    send(&tmux, listener.local_addr().unwrap().port(), "", &file);
    let mut peer = accept_raw(&listener);
    // The peer has read nothing: duplex fills the socket buffers and waits.
    let first = tmux.wait_for("the live line", |s| live_line(s).is_some());
    let first = percent(live_line(&first).unwrap());
    assert!(first < 100, "{first}%");
    read_some(&mut peer, 32 * MIB);
    let screen = tmux.wait_for("the live line to move on", |s| {
        live_line(s).is_some_and(|l| percent(l) > first)
    });
    let line = live_line(&screen).unwrap();
    assert!(
        line.contains("of 64.0 MiB, received 0 B, ") && line.contains("/s"),
        "{line}"
    );
    // Everything else, then our close ends the conversation.
    assert_eq!(read_some(&mut peer, 64 * MIB), 32 * MIB);
    drop(peer);
    let screen = tmux.wait_exit(0);
    assert!(
        live_line(&screen).is_none(),
        "a line was left behind:\n{screen}"
    );
    assert!(
        !screen.contains("%  sent"),
        "a line was left behind:\n{screen}"
    );
    let summary: Vec<&str> = screen
        .lines()
        .filter(|l| l.starts_with("sent 64.0 MiB, received 0 B in "))
        .collect();
    assert_eq!(summary.len(), 1, "one summary line:\n{screen}");
    // The status lines before and after it are whole lines of their own.
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("connected to 127.0.0.1:"))
    );
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("conversation with 127.0.0.1:") && l.contains("ended")),
        "{screen}"
    );
}

/// Sends `file` with `extra` options to a peer that reads nothing for a
/// second while the screen is watched, then everything; returns the last
/// screen, with `exit=0` on it.
fn send_without_line(tmux: &Tmux, extra: &str, file: &TempFile) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    send(tmux, listener.local_addr().unwrap().port(), extra, file);
    let mut peer = accept_raw(&listener);
    let watch_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watch_until {
        let screen = tmux.screen();
        assert!(
            !screen.contains("%  sent"),
            "{extra}: a live line:\n{screen}"
        );
        thread::sleep(POLL);
    }
    assert_eq!(read_some(&mut peer, 65 * MIB), 64 * MIB);
    drop(peer);
    let screen = tmux.wait_exit(0);
    assert!(
        !screen.contains("%  sent"),
        "{extra}: a live line:\n{screen}"
    );
    screen
}

#[test]
fn no_progress_and_quiet_keep_the_line_off() {
    let Some(tmux) = Tmux::start() else { return };
    let file = big_file("off.bin");
    let screen = send_without_line(&tmux, "--no-progress", &file);
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("sent 64.0 MiB, received 0 B in ")),
        "--no-progress keeps the summary:\n{screen}"
    );
    tmux.run(&["send-keys", "clear", "Enter"]);
    tmux.wait_for("a clear screen", |s| !s.contains("exit="));
    let screen = send_without_line(&tmux, "-q", &file);
    assert!(
        !screen.contains("sent 64.0 MiB") && !screen.contains("connected to"),
        "-q silences the summary and the status lines:\n{screen}"
    );
}

#[test]
fn ctrl_c_and_errors_erase_the_line() {
    let Some(tmux) = Tmux::start() else { return };
    let file = big_file("interrupted.bin");

    // Ctrl-C while the peer reads nothing: drained for --linger, then 130.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    send(
        &tmux,
        listener.local_addr().unwrap().port(),
        "--linger 0.3",
        &file,
    );
    let peer = accept_raw(&listener);
    tmux.wait_for("the live line", |s| live_line(s).is_some());
    tmux.run(&["send-keys", "C-c"]);
    let screen = tmux.wait_exit(130);
    assert!(
        !screen.contains("%  sent"),
        "a line was left behind:\n{screen}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("sent ") && l.contains(", received 0 B in ")),
        "the summary of what went:\n{screen}"
    );
    drop(peer);

    // The peer resets the connection mid-transfer: exit 1, one error line.
    tmux.run(&["send-keys", "clear", "Enter"]);
    tmux.wait_for("a clear screen", |s| !s.contains("exit="));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    send(&tmux, listener.local_addr().unwrap().port(), "", &file);
    let mut peer = accept_raw(&listener);
    tmux.wait_for("the live line", |s| live_line(s).is_some());
    read_some(&mut peer, MIB);
    // Closing with unread bytes in the receive buffer sends a reset.
    drop(peer);
    let screen = tmux.wait_exit(1);
    assert!(
        !screen.contains("%  sent"),
        "a line was left behind:\n{screen}"
    );
    assert!(
        screen.lines().any(|l| l.starts_with("duplex: ")),
        "the error line:\n{screen}"
    );
}

// ---------------------------------------------------------------------------
// stderr a pipe

#[test]
fn with_stderr_a_pipe_only_the_summary_shows_on_both_sides() {
    let data = noise_without_newline(64 * MIB, 7);
    let file = TempFile::with("piped.bin", &data);
    let (mut server, addr) = support::serve(&["--once", "--raw"]);
    server.close_stdin();
    let mut client = duplex()
        .args(["connect", "--raw"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdin_file(&file.0)
        .spawn();
    client.assert_exit(0);
    server.assert_exit(0);
    let got = server.stdout();
    assert_eq!(
        (got.len(), fnv1a(&got)),
        (data.len(), fnv1a(&data)),
        "what arrived"
    );
    for (who, p, line) in [
        ("connect", &client, "sent 64.0 MiB, received 0 B in "),
        ("serve", &server, "sent 0 B, received 64.0 MiB in "),
    ] {
        let err = p.stderr();
        let summaries: Vec<&str> = err.lines().filter(|l| l.starts_with("sent ")).collect();
        assert_eq!(summaries.len(), 1, "{who}: one summary:\n{err}");
        assert!(summaries[0].starts_with(line), "{who}: {}", summaries[0]);
        assert!(summaries[0].ends_with("/s)"), "{who}: {}", summaries[0]);
        assert!(
            !err.contains('\r') && !err.contains('\x1b') && !err.contains("%  sent"),
            "{who}: no live line on a pipe:\n{err:?}"
        );
    }
}

#[test]
fn quiet_silences_the_summary_and_chat_mode_has_none() {
    let file = TempFile::with("quiet.bin", &noise_without_newline(100_000, 3));
    // -q: no `listening on` line to read the port from.
    let port = support::free_port();
    let mut server = duplex()
        .args(["serve", "--once", "--raw", "-q", "-b", "127.0.0.1"])
        .arg(port.to_string())
        .stdin_null()
        .spawn();
    support::wait_tcp_listen(port);
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut client = duplex()
        .args(["connect", "--raw", "-q"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdin_file(&file.0)
        .spawn();
    client.assert_exit(0);
    server.assert_exit(0);
    assert_eq!(client.stderr(), "", "-q: nothing on stderr");
    assert_eq!(server.stderr(), "", "-q: nothing on stderr");

    let (mut server, addr) = support::serve(&["--once", "--recv-only"]);
    let mut client = support::connect(addr, &[]);
    client.write(b"hello\n\n");
    client.assert_exit(0);
    server.assert_exit(0);
    server.assert_stdout(b"hello\n");
    for p in [&client, &server] {
        assert!(
            !p.stderr().lines().any(|l| l.starts_with("sent ")),
            "chat mode has no summary:\n{}",
            p.stderr()
        );
    }
}

#[test]
fn serve_says_one_summary_per_conversation() {
    let (mut server, addr) = support::serve(&["--raw", "--recv-only"]);
    for n in [1000usize, 2048] {
        let mut peer = support::connect_raw(addr);
        peer.write_all(&vec![b'x'; n]).unwrap();
        drop(peer);
        server.wait_for_ended();
    }
    server.signal("INT");
    server.assert_exit(130);
    let err = server.stderr();
    let summaries: Vec<&str> = err.lines().filter(|l| l.starts_with("sent ")).collect();
    assert_eq!(summaries.len(), 2, "{err}");
    assert!(
        summaries[0].starts_with("sent 0 B, received 0.98 KiB in "),
        "{err}"
    );
    assert!(
        summaries[1].starts_with("sent 0 B, received 2.00 KiB in "),
        "{err}"
    );
}

#[test]
fn progress_draws_the_line_even_on_a_pipe() {
    let file = TempFile::with("forced.bin", &noise_without_newline(8 * MIB, 5));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = duplex()
        .args(["connect", "--raw", "--progress", "-q"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdin_file(&file.0)
        .spawn();
    let mut peer = accept_raw(&listener);
    // The peer reads nothing until the line has been drawn.
    let deadline = Instant::now() + DEADLINE;
    while !client.stderr().contains("%  sent ") {
        assert!(Instant::now() < deadline, "no line:\n{:?}", client.stderr());
        thread::sleep(POLL);
    }
    assert_eq!(read_some(&mut peer, 9 * MIB), 8 * MIB);
    drop(peer);
    client.assert_exit(0);
    let err = client.stderr();
    assert!(
        !err.contains("sent 8.00 MiB, received 0 B in"),
        "-q: no summary:\n{err:?}"
    );
    // Erased at the end: what follows the last drawing is a cleared line.
    let last = err.rfind("%  sent ").unwrap();
    assert!(err[last..].contains("\r\x1b[2K"), "{err:?}");
}

#[test]
fn progress_needs_raw_and_goes_with_no_progress() {
    let usage = duplex()
        .args(["connect", "--progress", "127.0.0.1", "9"])
        .stdin_null()
        .spawn()
        .finish();
    assert_eq!(usage.code(), Some(2), "--progress without --raw");
    for args in [
        &["--raw", "--progress", "--no-progress"][..],
        &["--no-progress"][..],
    ] {
        let mut p = duplex()
            .args(["connect", "-q", "--connect-timeout", "0.1"])
            .args(args)
            .args(["127.0.0.1", "9"])
            .stdin_null()
            .spawn();
        // Port 9 is closed: the command line was accepted, the connection not.
        p.assert_exit(1);
    }
}

// ---------------------------------------------------------------------------
// The engine's counters

/// Records what a watch is told.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(&'static str, u64, u64)>>,
}

impl Watch for Recorder {
    fn started(&self, traffic: &Traffic) {
        let mut calls = self.calls.lock().unwrap();
        calls.push(("started", traffic.sent(), traffic.received()));
    }
    fn ended(&self, traffic: &Traffic) {
        let mut calls = self.calls.lock().unwrap();
        calls.push(("ended", traffic.sent(), traffic.received()));
    }
}

#[test]
fn the_engine_counts_every_byte_both_ways_exactly() {
    let (to_server, to_client) = (64 * MIB + 12_345, 3 * MIB + 1);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (server_watch, client_watch) =
        (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let options = |watch: &Arc<Recorder>| ConversationOptions {
        mode: Mode::Raw,
        watch: Some(Watcher::new(watch.clone())),
        ..ConversationOptions::default()
    };
    let input = |n: usize| {
        let (chunks, input) = Input::channel();
        let data = noise_without_newline(n, n as u64);
        thread::spawn(move || {
            for piece in data.chunks(MIB) {
                if chunks.send(piece.to_vec().into()).is_err() {
                    break;
                }
            }
        });
        input
    };
    let server = {
        let options = options(&server_watch);
        thread::spawn(move || {
            let stream = accept_raw(&listener);
            let peer = stream.peer_addr().unwrap();
            let mut heard = Vec::new();
            let mut input = input(to_client);
            let ending = conversation::run(
                stream,
                peer,
                &options,
                &mut Console::new(&mut input, &mut heard),
            );
            (ending, heard.len())
        })
    };
    let stream = support::connect_raw(addr);
    let mut shown = Vec::new();
    let mut input = input(to_server);
    let ending = conversation::run(
        stream,
        addr,
        &options(&client_watch),
        &mut Console::new(&mut input, &mut shown),
    );
    ending.unwrap();
    let (server_ending, heard) = server.join().unwrap();
    server_ending.unwrap();
    assert_eq!((heard, shown.len()), (to_server, to_client));
    let (to_server, to_client) = (to_server as u64, to_client as u64);
    assert_eq!(
        *client_watch.calls.lock().unwrap(),
        [("started", 0, 0), ("ended", to_server, to_client)]
    );
    assert_eq!(
        *server_watch.calls.lock().unwrap(),
        [("started", 0, 0), ("ended", to_client, to_server)]
    );
}
