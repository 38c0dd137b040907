//! `--secret` end to end (SPEC, "Secret channel"): the real binary on both
//! sides over loopback, a relay in the test as the man in the middle, plain
//! peers on either side, the guess budget, where the secret comes from, the
//! prompt in tmux, and a second implementation in Python
//! (`tests/peers/secret_peer.py`) talking to duplex both ways.

use crate::support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use support::*;

pub(crate) const WORDS: &str = "olive-tundra-marble-quest";
const PREAMBLE: &[u8] = b"duplex-secret-1\n";
/// Bytes each side sends in the handshake before records: the preamble,
/// the SPAKE2 message, and its tag (Tc from the client, Ts from the server).
const HANDSHAKE: usize = 16 + 33 + 32;

/// `duplex serve --secret` with the words in DUPLEX_SECRET.
pub(crate) fn serve_secret(words: &str, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut p = duplex()
        .env("DUPLEX_SECRET", words)
        .args(["serve", "--secret", "-b", "127.0.0.1", "--linger", "1"])
        .args(extra)
        .arg("0")
        .spawn();
    let addr = p.wait_for_listening();
    (p, addr)
}

/// `duplex connect --secret` with the words in DUPLEX_SECRET.
pub(crate) fn connect_secret(addr: SocketAddr, words: &str, extra: &[&str]) -> Proc {
    duplex()
        .env("DUPLEX_SECRET", words)
        .args(["connect", "--secret", "--linger", "1"])
        .args(extra)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .spawn()
}

#[test]
fn chat_both_ways_over_the_secret_channel() {
    let (mut server, addr) = serve_secret(WORDS, &["--once"]);
    server.write(b"from the server\n");
    let mut client = connect_secret(addr, WORDS, &[]);
    client.write(b"from the client\n");
    server.wait_for_stdout(b"from the client\n");
    client.wait_for_stdout(b"from the server\n");
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
    server.assert_stdout(b"from the client\n");
    client.assert_stdout(b"from the server\n");
    client.assert_no_error_line();
}

#[test]
fn raw_64_mib_arrives_whole_by_hash() {
    let data = Arc::new(noise_without_newline(64 * 1024 * 1024, 12));
    let (mut server, addr) = duplex()
        .env("DUPLEX_SECRET", WORDS)
        .args(["serve", "--secret", "--once", "--raw", "--linger", "1"])
        .args(["-b", "127.0.0.1", "0"])
        .stdin_null()
        .spawn()
        .pipe(|mut p| {
            let addr = p.wait_for_listening();
            (p, addr)
        });
    let mut client = connect_secret(addr, WORDS, &["--raw"]);
    let mut stdin = client.take_stdin();
    let feed = thread::spawn({
        let data = Arc::clone(&data);
        move || {
            stdin.write_all(&data).unwrap();
        }
    });
    feed.join().unwrap();
    server.wait_for_stdout_len(data.len());
    server.assert_exit(0);
    client.assert_exit(0);
    let got = server.stdout();
    assert_eq!(got.len(), data.len());
    assert_eq!(fnv1a(&got), fnv1a(&data), "the file arrived changed");
}

/// `p.pipe(f)`: f(p), to keep a builder chain readable.
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

/// A server whose input has already ended (`< /dev/null`, a receiver) still
/// goes on to the next peer after a wrong secret: that was no conversation.
#[test]
fn a_wrong_secret_does_not_end_a_server_whose_input_has_ended() {
    let mut server = duplex()
        .env("DUPLEX_SECRET", WORDS)
        .args(["serve", "--secret", "-b", "127.0.0.1", "--linger", "1", "0"])
        .stdin_null()
        .spawn();
    let addr = server.wait_for_listening();
    let mut stranger = connect_secret(addr, "olive-tundra-marble-guess", &[]);
    stranger.close_stdin();
    stranger.assert_exit(1);
    server.wait_for_stderr("wrong secret (or someone tried to guess it)");
    let mut friend = connect_secret(addr, WORDS, &[]);
    friend.write(b"for you\n");
    friend.close_stdin();
    server.wait_for_stdout(b"for you\n");
    friend.assert_exit(0);
    server.assert_exit(0);
}

#[test]
fn a_wrong_secret_fails_on_both_sides_and_the_server_goes_on() {
    let (mut server, addr) = serve_secret(WORDS, &[]);
    server.write(b"not for strangers\n");
    let mut stranger = connect_secret(addr, "olive-tundra-marble-guess", &[]);
    stranger.write(b"let me in\n");
    stranger.assert_exit(1);
    stranger.assert_stderr_contains("wrong secret");
    assert!(
        stranger.stdout().is_empty(),
        "the stranger was shown something"
    );
    server.wait_for_stderr("wrong secret (or someone tried to guess it)");
    assert!(
        server.stdout().is_empty(),
        "the server showed a stranger's bytes"
    );
    server.assert_running();

    let mut friend = connect_secret(addr, WORDS, &[]);
    friend.wait_for_stdout(b"not for strangers\n");
    friend.write(b"it is me\n");
    server.wait_for_stdout(b"it is me\n");
    assert_eq!(server.stdout(), b"it is me\n");
}

#[test]
fn three_wrong_secrets_in_all_stop_the_server() {
    let (mut server, addr) = serve_secret(WORDS, &[]);
    let wrong = |n: u32| {
        let mut guess = connect_secret(addr, &format!("guess-{n}"), &[]);
        guess.close_stdin();
        guess.assert_exit(1);
    };
    wrong(1);
    // A good conversation in between does not give guesses back.
    let mut friend = connect_secret(addr, WORDS, &[]);
    friend.close_stdin();
    friend.assert_exit(0);
    wrong(2);
    server.assert_running();
    wrong(3);
    server.assert_exit(1);
    server.assert_stderr_contains("3 wrong secrets: stopped so that nobody can keep guessing");
    assert!(
        TcpStream::connect(addr).is_err(),
        "the server still listens after 3 wrong secrets"
    );
}

#[test]
fn a_guess_is_also_a_peer_that_leaves_before_its_tag() {
    // Preamble and SPAKE2 message, then nothing: each such try is a guess.
    let (mut server, addr) = serve_secret(WORDS, &[]);
    for _ in 0..3 {
        let mut s = connect_raw(addr);
        let mut message = vec![0x41];
        message.extend([0x55; 32]);
        s.write_all(PREAMBLE).unwrap();
        s.write_all(&message).unwrap();
        let mut theirs = [0; 49];
        s.read_exact(&mut theirs).unwrap();
        assert_eq!(&theirs[..16], PREAMBLE);
        drop(s);
        server.wait_for_stderr("wrong secret");
    }
    server.assert_exit(1);
    assert!(server.stderr().contains("3 wrong secrets"));
}

#[test]
fn the_server_sends_nothing_keyed_before_the_client_proves_the_secret() {
    use spake2::{Ed25519Group, Identity, Password, Spake2};
    let (mut server, addr) = serve_secret(WORDS, &[]);
    let (_spake, message) = Spake2::<Ed25519Group>::start_a(
        &Password::new(b"a wrong guess"),
        &Identity::new(b"duplex-client"),
        &Identity::new(b"duplex-server"),
    );
    let mut s = connect_raw(addr);
    s.write_all(PREAMBLE).unwrap();
    s.write_all(&message).unwrap();
    let mut opening = [0; 49];
    s.read_exact(&mut opening).unwrap();
    // Nothing more until a Tc arrives, and after a wrong one, only EOF.
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut more = [0; 1];
    assert!(
        s.read(&mut more).is_err(),
        "the server spoke before our tag"
    );
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(&[0; 32]).unwrap();
    expect_eof_after(&mut s, b"");
    server.wait_for_stderr("wrong secret");
}

#[test]
fn a_plain_connect_to_a_secret_server_is_told_so() {
    let (mut server, addr) = serve_secret(WORDS, &[]);
    let mut plain = connect(addr, &["--linger", "1"]);
    plain.write(b"hello?\n");
    plain.assert_exit(1);
    plain.assert_stderr_contains("the server wants --secret");
    assert!(
        !contains(&plain.stdout(), b"duplex-secret"),
        "the handshake bytes were shown"
    );
    server.wait_for_stderr("not using --secret");
    assert!(server.stdout().is_empty());
    server.assert_running();
}

/// A plain client whose input has ended before the server says a word has
/// sent its line and its EOF first: the server still sends its opening
/// (SPEC: each side sends it "without waiting"), so the client learns why.
/// Several tries, because whether the EOF comes first is a race.
#[test]
fn a_plain_connect_whose_input_ended_at_once_is_told_so_too() {
    let (mut server, addr) = serve_secret(WORDS, &[]);
    for _ in 0..6 {
        let mut plain = connect(addr, &["--linger", "1"]);
        plain.write(b"hello?\n");
        plain.close_stdin();
        plain.assert_exit(1);
        plain.assert_stderr_contains("the server wants --secret");
    }
    server.assert_running();
}

#[test]
fn a_secret_connect_to_a_plain_server_fails_on_both_sides() {
    let (mut server, addr) = serve(&["--linger", "1"]);
    server.write(b"plain hello\n");
    let mut client = connect_secret(addr, WORDS, &[]);
    client.assert_exit(1);
    client.assert_stderr_contains("the peer is not using --secret");
    assert!(client.stdout().is_empty());
    server.wait_for_stderr("the peer wants --secret");
    assert!(
        !contains(&server.stdout(), b"duplex-secret"),
        "the plain server showed the handshake"
    );
    server.assert_running();
}

// ---------------------------------------------------------------------------
// The man in the middle

/// What the relay does to the client's records.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tamper {
    /// Pass everything (and record it).
    Nothing,
    /// Flip one bit in the first record's ciphertext.
    FlipBit,
    /// Drop the end record, then close.
    DropEnd,
    /// Cut the stream halfway through the second record.
    Cut,
    /// Put a length of 4 GiB in front of the first record.
    HugeLength,
}

/// A relay between a client and `server`: records every byte both ways,
/// and tampers with the client's records as told. Returns its address and
/// what it saw.
fn relay(server: SocketAddr, tamper: Tamper) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let upstream = TcpStream::connect(server).unwrap();
        let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let seen3 = Arc::clone(&seen2);
        // Server to client: passed as it is.
        let back = thread::spawn(move || copy(u2, c2, &seen3));
        client_to_server(client, upstream, tamper, &seen2);
        let _ = back.join();
    });
    (addr, seen)
}

fn copy(mut from: TcpStream, to: TcpStream, seen: &Mutex<Vec<u8>>) {
    let mut buf = [0; 65536];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
                if (&to).write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn client_to_server(mut from: TcpStream, to: TcpStream, tamper: Tamper, seen: &Mutex<Vec<u8>>) {
    let mut take = |n: usize| -> Option<Vec<u8>> {
        let mut buf = vec![0; n];
        from.read_exact(&mut buf).ok()?;
        seen.lock().unwrap().extend_from_slice(&buf);
        Some(buf)
    };
    let send = |bytes: &[u8]| (&to).write_all(bytes).is_ok();
    let Some(handshake) = take(HANDSHAKE) else {
        return;
    };
    send(&handshake);
    let mut number = 0;
    while let Some(length) = take(4) {
        let n = u32::from_be_bytes(length.clone().try_into().unwrap()) as usize;
        let Some(mut body) = take(n) else { break };
        match tamper {
            Tamper::FlipBit if number == 0 => body[0] ^= 0x01,
            Tamper::DropEnd if n == 16 => break,
            Tamper::HugeLength if number == 0 => {
                send(&[0xff; 4]);
            }
            Tamper::Cut if number == 1 => {
                send(&length);
                send(&body[..n / 2]);
                break;
            }
            _ => {}
        }
        send(&length);
        send(&body);
        number += 1;
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A raw client sends two chunks through the relay to `serve --once --raw`.
fn through_the_relay(tamper: Tamper) -> (Proc, Proc, Arc<Mutex<Vec<u8>>>) {
    let (server, addr) = duplex()
        .env("DUPLEX_SECRET", WORDS)
        .args(["serve", "--secret", "--once", "--raw", "--linger", "1"])
        .args(["-b", "127.0.0.1", "0"])
        .stdin_null()
        .spawn()
        .pipe(|mut p| {
            let addr = p.wait_for_listening();
            (p, addr)
        });
    let (relay_addr, seen) = relay(addr, tamper);
    let mut client = connect_secret(relay_addr, WORDS, &["--raw"]);
    client.write(b"attack at dawn\n");
    // Two records: wait for the first to arrive (or fail) before the second.
    thread::sleep(Duration::from_millis(100));
    // A tampered first record may have ended the client already.
    client.write_if_open(b"the second record\n");
    client.close_stdin();
    (server, client, seen)
}

#[test]
fn the_relay_sees_none_of_the_words() {
    let (mut server, mut client, seen) = through_the_relay(Tamper::Nothing);
    server.assert_exit(0);
    client.assert_exit(0);
    server.assert_stdout(b"attack at dawn\nthe second record\n");
    let seen = seen.lock().unwrap();
    assert!(
        seen.len() > HANDSHAKE * 2,
        "the relay saw only {} bytes",
        seen.len()
    );
    for word in [&b"attack"[..], b"dawn", b"second", b"record"] {
        assert!(
            !contains(&seen, word),
            "{} crossed the wire in the clear",
            show(word)
        );
    }
    assert!(
        !contains(&seen, WORDS.as_bytes()),
        "the secret crossed the wire"
    );
}

#[test]
fn a_flipped_bit_is_an_error_and_nothing_of_it_is_shown() {
    let (mut server, _client, _) = through_the_relay(Tamper::FlipBit);
    server.assert_exit(1);
    server.assert_stderr_contains("failed to open");
    assert!(server.stdout().is_empty(), "a forged record was shown");
}

#[test]
fn a_dropped_end_record_is_a_cut_not_an_end() {
    let (mut server, _client, _) = through_the_relay(Tamper::DropEnd);
    server.assert_exit(1);
    server.assert_stderr_contains("the connection was cut: the peer's end was not authenticated");
    // Both records were whole and authentic; only the end is missing.
    server.assert_stdout(b"attack at dawn\nthe second record\n");
}

#[test]
fn a_cut_stream_is_an_error_and_the_half_record_is_not_shown() {
    let (mut server, _client, _) = through_the_relay(Tamper::Cut);
    server.assert_exit(1);
    server.assert_stderr_contains("the connection was cut");
    server.assert_stdout(b"attack at dawn\n");
}

#[test]
fn a_length_out_of_range_is_refused_as_soon_as_it_is_read() {
    let (mut server, _client, _) = through_the_relay(Tamper::HugeLength);
    server.assert_exit(1);
    server.assert_stderr_contains("a record length out of range");
    assert!(server.stdout().is_empty());
}

// ---------------------------------------------------------------------------
// Where the secret comes from

#[test]
fn secret_words_on_the_command_line_work_and_warn() {
    let mut server = duplex()
        .env_remove("DUPLEX_SECRET")
        .args(["serve", "-q", "--once", "--linger", "1", "-b", "127.0.0.1"])
        .arg(format!("--secret={WORDS}"))
        .arg("0")
        .spawn();
    server.wait_for_stderr("process list");
    // -q hides `listening on`: find the port from /proc is not ours to do;
    // run it again without -q instead.
    server.kill();
    let (mut server, addr) = {
        let mut p = duplex()
            .env_remove("DUPLEX_SECRET")
            .args(["serve", "--once", "--linger", "1", "-b", "127.0.0.1"])
            .arg(format!("--secret={WORDS}"))
            .arg("0")
            .spawn();
        let addr = p.wait_for_listening();
        (p, addr)
    };
    let mut client = duplex()
        .env_remove("DUPLEX_SECRET")
        .args(["connect", "--linger", "1"])
        .arg(format!("--secret={WORDS}"))
        .args([addr.ip().to_string(), addr.port().to_string()])
        .spawn();
    client.write(b"ok\n");
    client.close_stdin();
    client.assert_exit(0);
    server.close_stdin();
    server.assert_exit(0);
    server.assert_stdout(b"ok\n");
    client.assert_stderr_contains("process list");
}

#[test]
fn a_blank_or_empty_secret_is_a_usage_error() {
    for (env, arg) in [
        (Some(" \t\n"), "--secret"),
        (Some(""), "--secret"),
        (None, "--secret=  "),
    ] {
        let mut cmd = duplex().arg("connect").arg(arg).args(["127.0.0.1", "9"]);
        cmd = match env {
            Some(value) => cmd.env("DUPLEX_SECRET", value),
            None => cmd.env_remove("DUPLEX_SECRET"),
        };
        let mut p = cmd.spawn();
        p.assert_exit(2);
    }
}

#[test]
fn a_non_utf8_secret_is_a_usage_error() {
    use std::os::unix::ffi::OsStringExt;
    let mut p = duplex()
        .env(
            "DUPLEX_SECRET",
            std::ffi::OsString::from_vec(vec![0xff, 0xfe]),
        )
        .args(["serve", "--secret", "0"])
        .spawn();
    p.assert_exit(2);
    p.assert_stderr_contains("UTF-8");
}

#[test]
fn serve_makes_up_a_secret_and_shows_it_even_when_quiet() {
    let mut server = duplex()
        .env_remove("DUPLEX_SECRET")
        .args(["serve", "-q", "--once", "--secret", "-b", "127.0.0.1", "0"])
        .spawn();
    let line = server.wait_for_stderr("secret: ");
    let words = line.trim().trim_start_matches("secret: ").to_owned();
    let parts: Vec<&str> = words.split('-').collect();
    assert!(parts.len() >= 4, "too few words: {words:?}");
    assert!(
        parts
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())),
        "not lowercase words joined by '-': {words:?}"
    );
    let mut again = duplex()
        .env_remove("DUPLEX_SECRET")
        .args(["serve", "-q", "--once", "--secret", "-b", "127.0.0.1", "0"])
        .spawn();
    let other = again.wait_for_stderr("secret: ");
    assert_ne!(line, other, "two servers made up the same secret");
}

#[test]
fn connect_without_words_or_a_terminal_is_a_usage_error() {
    // setsid: a new session has no controlling terminal, so no /dev/tty.
    if !require_peer("setsid") {
        return;
    }
    let mut p = program("setsid")
        .env_remove("DUPLEX_SECRET")
        .args(["-w", env!("CARGO_BIN_EXE_duplex")])
        .args(["connect", "--secret", "127.0.0.1", "9"])
        .spawn();
    p.assert_exit(2);
    p.assert_stderr_contains("DUPLEX_SECRET");
}

#[test]
fn connect_asks_for_the_words_on_the_terminal_without_echo() {
    let Some(tmux) = Tmux::start() else { return };
    let (mut server, addr) = serve_secret(WORDS, &["--once"]);
    tmux.shell(&format!(
        "env -u DUPLEX_SECRET {} connect --secret --linger 1 {} {} </dev/null; echo exit=$?",
        env!("CARGO_BIN_EXE_duplex"),
        addr.ip(),
        addr.port()
    ));
    tmux.wait_for("the `secret:` prompt", |s| {
        s.lines().any(|l| l.starts_with("secret:"))
    });
    tmux.type_text(WORDS);
    tmux.press("Enter");
    // stdin is /dev/null: the client says goodbye at once, by end of input.
    server.wait_for_stderr("ended");
    let shown = tmux.wait_for("`exit=CODE`", |s| support::shell_exit(s).is_some());
    assert_eq!(support::shell_exit(&shown), Some(0), "{shown}");
    assert!(!shown.contains(WORDS), "the secret was echoed:\n{shown}");
}

// ---------------------------------------------------------------------------
// A second implementation, from SPEC's text

fn python_peer() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import spake2, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/secret_peer.py"
        ))
    } else {
        skip("needs python3 with spake2 and cryptography (pip install spake2 cryptography)");
        None
    }
}

#[test]
fn a_python_client_talks_to_duplex_serve() {
    let Some(peer) = python_peer() else { return };
    let (mut server, addr) = serve_secret(WORDS, &["--once"]);
    server.write(b"hello python\n");
    let mut client = program("python3")
        .env("DUPLEX_SECRET", WORDS)
        .args([
            peer,
            "connect",
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .spawn();
    client.write(b"hello duplex\n");
    client.close_stdin();
    server.wait_for_stdout(b"hello duplex\n");
    client.wait_for_stdout(b"hello python\n");
    server.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
    server.assert_stdout(b"hello duplex\n");
}

#[test]
fn duplex_connect_talks_to_a_python_server() {
    let Some(peer) = python_peer() else { return };
    let mut server = program("python3")
        .env("DUPLEX_SECRET", WORDS)
        .args([peer, "serve"])
        .spawn();
    let addr = server.wait_for_listening();
    server.write(b"hello duplex\n");
    server.close_stdin();
    let mut client = connect_secret(addr, WORDS, &[]);
    client.write(b"hello python\n");
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
    client.assert_stdout(b"hello duplex\n");
    server.assert_stdout(b"hello python\n");
}

// ---------------------------------------------------------------------------
// A room

#[test]
fn secret_and_tls_together_are_a_usage_error() {
    for sub in [&["serve", "0"][..], &["connect", "127.0.0.1", "1"]] {
        let mut p = duplex()
            .env("DUPLEX_SECRET", WORDS)
            .args(["--secret", "--tls"])
            .args(sub)
            .spawn();
        p.assert_exit(2);
    }
}

#[test]
fn a_room_of_three_talks_over_the_secret_channel() {
    let (mut server, addr) = serve_secret(WORDS, &["--room"]);
    let mut peers: Vec<Proc> = (0..3).map(|_| connect_secret(addr, WORDS, &[])).collect();
    for peer in &mut peers {
        peer.wait_for_stdout(b"* you are [");
    }
    peers[0].write(b"hello room\n");
    for peer in &peers[1..] {
        peer.wait_for_stdout(b"] hello room\n");
    }
    server.wait_for_stdout(b"] hello room\n");
    server.write(b"welcome all\n");
    for peer in &peers {
        peer.wait_for_stdout(b"[server] welcome all\n");
    }
    server.close_stdin();
    server.assert_exit(0);
    for peer in &mut peers {
        peer.assert_exit(0);
        peer.assert_no_error_line();
    }
}

#[test]
fn three_wrong_secrets_close_a_room_cleanly() {
    let (mut server, addr) = serve_secret(WORDS, &["--room"]);
    let mut friend = connect_secret(addr, WORDS, &[]);
    friend.wait_for_stdout(b"* you are [");
    for n in 0..3 {
        let mut guess = connect_secret(addr, &format!("guess-{n}"), &[]);
        guess.close_stdin();
        guess.assert_exit(1);
        guess.assert_stderr_contains("wrong secret");
        assert!(!contains(&guess.stdout(), b"you are"), "a guesser joined");
    }
    server.assert_exit(1);
    server.assert_stderr_contains("3 wrong secrets: stopped so that nobody can keep guessing");
    // The friend's conversation ends cleanly: an authenticated end.
    friend.assert_exit(0);
    assert!(
        !contains(&friend.stdout(), b"guess"),
        "the room showed a guesser"
    );
}

// ---------------------------------------------------------------------------
// `--secret --raw` in bulk against the second implementation: megabytes both
// ways at once, in records of whatever size Python's reads give (up to
// 64 KiB), so the receiver's batching of many records into one read, and the
// sender's sealing of many records into one write, are checked byte for byte
// against a peer that is not duplex.

const BULK: usize = 8 * 1024 * 1024;

/// Feeds `data` to `p`'s stdin on a thread and closes it.
fn feed(p: &mut Proc, data: &Arc<Vec<u8>>) -> thread::JoinHandle<()> {
    let mut stdin = p.take_stdin();
    let data = Arc::clone(data);
    thread::spawn(move || {
        // The peer may fail and close early: the exit codes say so.
        let _ = stdin.write_all(&data);
    })
}

fn check(what: &str, p: &Proc, data: &[u8]) {
    p.wait_for_stdout_len(data.len());
    let got = p.stdout();
    assert_eq!(got.len(), data.len(), "{what}: length");
    assert_eq!(
        fnv1a(&got),
        fnv1a(data),
        "{what}: the bytes arrived changed"
    );
}

#[test]
fn python_and_duplex_serve_exchange_megabytes_both_ways() {
    let Some(peer) = python_peer() else { return };
    let to_duplex = Arc::new(noise_without_newline(BULK, 21));
    let to_python = Arc::new(noise_without_newline(BULK + 12_345, 22));
    let mut server = duplex()
        .env("DUPLEX_SECRET", WORDS)
        .args(["serve", "--secret", "--once", "--raw", "--linger", "1"])
        .args(["-b", "127.0.0.1", "0"])
        .spawn();
    let addr = server.wait_for_listening();
    let mut client = program("python3")
        .env("DUPLEX_SECRET", WORDS)
        .args([
            peer,
            "connect",
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .spawn();
    let feeding = [feed(&mut server, &to_python), feed(&mut client, &to_duplex)];
    for f in feeding {
        f.join().unwrap();
    }
    check("python to duplex", &server, &to_duplex);
    check("duplex to python", &client, &to_python);
    client.assert_exit(0);
    server.assert_exit(0);
}

#[test]
fn duplex_connect_and_a_python_server_exchange_megabytes_both_ways() {
    let Some(peer) = python_peer() else { return };
    let to_duplex = Arc::new(noise_without_newline(BULK + 777, 23));
    let to_python = Arc::new(noise_without_newline(BULK, 24));
    let mut server = program("python3")
        .env("DUPLEX_SECRET", WORDS)
        .args([peer, "serve"])
        .spawn();
    let addr = server.wait_for_listening();
    let mut client = duplex()
        .env("DUPLEX_SECRET", WORDS)
        .args(["connect", "--secret", "--raw", "--linger", "1"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .spawn();
    let feeding = [feed(&mut server, &to_duplex), feed(&mut client, &to_python)];
    for f in feeding {
        f.join().unwrap();
    }
    check("python to duplex", &client, &to_duplex);
    check("duplex to python", &server, &to_python);
    client.assert_exit(0);
    server.assert_exit(0);
}
