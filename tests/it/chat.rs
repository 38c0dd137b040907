//! Chat mode (SPEC "Chat mode"): full duplex, goodbye by empty line or EOF
//! from either side, drain after goodbye, linger and idle timeouts, closed
//! stdout, byte-exact data.

use crate::support;

use std::io::Write;
use std::net::{Shutdown, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    Proc, TempFile, accept_raw, connect, connect_raw, connect_small_window, duplex,
    expect_eof_after, flood_counted, flood_until_closed, fnv1a, noise_without_newline,
    numbered_lines, read_a_little_then_close, read_paced, read_until, send_raw, serve, show,
};

/// Wait for the `... ended: REASON` line and check REASON.
#[track_caller]
fn assert_reason(p: &mut Proc, allowed: &[&str]) {
    let reason = p.wait_for_ended();
    assert!(
        allowed.contains(&reason.as_str()),
        "ending reason {reason:?}, expected one of {allowed:?}"
    );
}

#[test]
fn chat_both_directions_at_once() {
    let (mut server, addr) = serve(&["--once"]);
    let mut client = connect(addr, &[]);
    client.wait_for_stderr("connected to");
    server.wait_for_stderr("connection from");

    // Both sides type before either has seen anything from the other, and
    // both keep their input open: neither direction may wait on the other.
    server.write(b"s1\n");
    client.write(b"c1\n");
    server.write(b"s2\n");
    client.write(b"c2\n");
    client.wait_for_stdout(b"s1\ns2\n");
    server.wait_for_stdout(b"c1\nc2\n");
    server.assert_running();
    client.assert_running();

    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
    client.assert_stdout(b"s1\ns2\n");
    server.assert_stdout(b"c1\nc2\n");
}

#[test]
fn chat_empty_line_goodbye_from_client() {
    let (mut server, addr) = serve(&["--once"]);
    let mut client = connect(addr, &[]);
    server.wait_for_stderr("connection from");
    // stdin stays open: the empty line alone must end the conversation.
    client.write(b"a\n\n");

    assert_reason(&mut server, &["peer said goodbye"]);
    server.assert_exit(0);
    server.assert_stdout(b"a\n");

    assert_reason(&mut client, &["goodbye"]);
    client.assert_exit(0);
    client.assert_stdout(b"");
    client.assert_no_error_line();
}

#[test]
fn chat_empty_line_goodbye_from_server() {
    let (mut server, addr) = serve(&["--once"]);
    let mut client = connect(addr, &[]);
    server.wait_for_stderr("connection from");
    server.write(b"a\n\n");

    assert_reason(&mut client, &["peer said goodbye"]);
    client.assert_exit(0);
    client.assert_stdout(b"a\n");

    assert_reason(&mut server, &["goodbye"]);
    server.assert_exit(0);
    server.assert_stdout(b"");
}

#[test]
fn chat_eof_goodbye_from_client() {
    let (mut server, addr) = serve(&["--once"]);
    let mut client = connect(addr, &[]);
    server.wait_for_stderr("connection from");
    // A final line without `\n` is sent as is.
    client.write(b"a\nb");
    client.close_stdin();

    assert_reason(&mut client, &["end of input"]);
    client.assert_exit(0);
    assert_reason(&mut server, &["peer said goodbye", "peer closed"]);
    server.assert_exit(0);
    server.assert_stdout(b"a\nb");
}

#[test]
fn chat_eof_goodbye_from_server() {
    // No --once: stdin EOF alone must make the server exit after this
    // conversation.
    let (mut server, addr) = serve(&[]);
    let mut client = connect(addr, &[]);
    server.wait_for_stderr("connection from");
    server.write(b"a\nb\n");
    server.close_stdin();

    assert_reason(&mut server, &["end of input"]);
    server.assert_exit(0);
    assert_reason(&mut client, &["peer said goodbye", "peer closed"]);
    client.assert_exit(0);
    client.assert_stdout(b"a\nb\n");
}

#[test]
fn chat_crlf_goodbye_from_raw_peer() {
    let (mut server, addr) = serve(&["--once"]);
    let mut peer = connect_raw(addr);
    send_raw(&mut peer, b"hi\r\n\r\n");
    // Hearing goodbye, the server half-closes: a clean EOF, nothing sent.
    expect_eof_after(&mut peer, b"");
    drop(peer);

    assert_reason(&mut server, &["peer said goodbye"]);
    server.assert_exit(0);
    // Byte-exact: the CR of the data line stays, the goodbye line is gone.
    server.assert_stdout(b"hi\r\n");
}

#[test]
fn chat_crlf_goodbye_from_input() {
    // The same rule in the other direction: an input line that is just
    // `\r\n` is a goodbye.
    let (mut server, addr) = serve(&["--once"]);
    let mut peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    server.write(b"x\r\n\r\n");
    // The data line and the goodbye line itself are sent, then a clean EOF.
    expect_eof_after(&mut peer, b"x\r\n\r\n");
    drop(peer);
    assert_reason(&mut server, &["goodbye"]);
    server.assert_exit(0);
}

#[test]
fn chat_input_after_empty_line_not_sent_by_connect() {
    let (mut server, addr) = serve(&["--once"]);
    let mut client = connect(addr, &[]);
    server.wait_for_stderr("connection from");
    client.write(b"a\n\nnot for you\n");
    client.close_stdin();

    server.assert_exit(0);
    server.assert_stdout(b"a\n");
    client.assert_exit(0);
    let line = client.wait_for_stderr("bytes of input not sent");
    // "not for you\n" is what the empty line held back.
    assert!(
        line.contains("; 12 bytes of input not sent"),
        "expected 12 bytes held back, got {line:?}"
    );
}

#[test]
fn chat_drain_after_goodbye_serve() {
    // Our side (serve) says goodbye; the peer goes on sending for a while
    // before it closes. Everything it sends is shown.
    let (mut server, addr) = serve(&["--once"]);
    let mut peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    server.write(b"bye soon\n");
    server.close_stdin();
    // The server's half-close: data, then a clean EOF.
    expect_eof_after(&mut peer, b"bye soon\n");

    let mut expected = Vec::new();
    for i in 0..5 {
        let line = format!("late {i}\n");
        send_raw(&mut peer, line.as_bytes());
        expected.extend_from_slice(line.as_bytes());
        // Each is shown while the server is still waiting for our close.
        server.wait_for_stdout(&expected);
        server.assert_running();
    }
    peer.shutdown(Shutdown::Write).expect("shutdown");
    drop(peer);
    server.assert_exit(0);
    server.assert_stdout(&expected);
}

#[test]
fn chat_drain_after_goodbye_connect() {
    // The same from the connecting side, against a raw listener.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut client = connect(addr, &[]);
    let mut peer = accept_raw(&listener);
    client.write(b"q\n");
    client.close_stdin();
    expect_eof_after(&mut peer, b"q\n");

    send_raw(&mut peer, b"r1\n");
    client.wait_for_stdout(b"r1\n");
    client.assert_running();
    send_raw(&mut peer, b"r2\n");
    client.wait_for_stdout(b"r1\nr2\n");
    client.assert_running();
    drop(peer);

    client.assert_exit(0);
    client.assert_stdout(b"r1\nr2\n");
}

#[test]
fn chat_linger_expires_when_peer_never_closes() {
    let (mut server, addr) = serve(&["--once", "--linger", "0.5"]);
    let mut peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    server.close_stdin();
    // We never close `peer`: the server must stop waiting after --linger.
    expect_eof_after(&mut peer, b"");
    assert_reason(&mut server, &["linger expired"]);
    server.assert_exit(0);
    drop(peer);
}

#[test]
fn chat_idle_timeout_ends_with_exit_0() {
    let (mut server, addr) = serve(&["--once", "--idle-timeout", "0.5"]);
    let mut peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    // Nobody sends anything: the server ends the conversation on its own,
    // closing its side cleanly; we then close ours.
    expect_eof_after(&mut peer, b"");
    drop(peer);
    assert_reason(&mut server, &["idle timeout"]);
    server.assert_exit(0);
    server.assert_no_error_line();
}

#[test]
fn chat_closed_stdout_exits_0_quietly() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    // A peer that floods and never closes: --linger bounds the wait for it.
    let mut client = support::duplex()
        .args([
            "connect",
            "--linger",
            "0.5",
            "127.0.0.1",
            &addr.port().to_string(),
        ])
        .stdout_manual()
        .spawn();
    let peer = accept_raw(&listener);

    // The server keeps sending until the client is gone (or the deadline).
    let flood = flood_until_closed(peer);
    read_a_little_then_close(client.take_stdout());

    client.assert_exit(0);
    client.assert_no_error_line();
    assert!(
        flood.join().expect("flood thread"),
        "the client never closed its connection after its stdout was closed"
    );
}

#[test]
fn chat_binary_bytes_round_trip() {
    let to_server: &[u8] =
        b"\xff\xfe invalid utf-8 \xc3\x28\n\x00nul\x00\n\rcr\rin the middle\r\n\x01\x1b[31m\x7f\n";
    let to_client: &[u8] =
        b"\x80\x81\n\x00\x00\x00\nfoo\r\n\xf0\x9f\x92\xa9 \xed\xa0\x80\nlast\xff";
    let (mut server, addr) = serve(&["--once"]);
    let mut client = connect(addr, &[]);
    server.wait_for_stderr("connection from");
    server.write(to_client);
    client.write(to_server);
    client.wait_for_stdout(to_client);
    server.wait_for_stdout(to_server);
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
    client.assert_stdout(to_client);
    server.assert_stdout(to_server);
}

#[test]
fn chat_long_line_8mib_round_trips() {
    let data = noise_without_newline(8 << 20, 0x5eed);
    let (mut server, addr) = serve(&["--once"]);
    let mut client = connect(addr, &[]);
    server.wait_for_stderr("connection from");

    let mut stdin = client.take_stdin();
    let payload = data.clone();
    let writer = thread::spawn(move || {
        // Ends with EOF (the goodbye), without a final `\n`.
        stdin.write_all(&payload)
    });
    server.assert_exit(0);
    writer
        .join()
        .expect("writer thread")
        .expect("write 8 MiB to client stdin");
    client.assert_exit(0);

    let got = server.stdout();
    assert!(
        got.len() == data.len() && fnv1a(&got) == fnv1a(&data) && got == data,
        "8 MiB line: sent {}, server printed {}",
        show(&data),
        show(&got)
    );
}

#[test]
fn chat_hearing_goodbye_discards_what_follows() {
    // Nothing after the goodbye line is printed.
    let (mut server, addr) = serve(&["--once"]);
    let mut peer = connect_raw(addr);
    send_raw(&mut peer, b"kept\n\nnot shown\n");
    expect_eof_after(&mut peer, b"");
    send_raw(&mut peer, b"also not shown\n");
    peer.shutdown(Shutdown::Write).expect("shutdown");
    drop(peer);
    server.assert_exit(0);
    server.assert_stdout(b"kept\n");
}

/// The side that said goodbye reports its own goodbye (`goodbye`, `end of
/// input`) as the reason, even when the peer closes right after reading our
/// half-close. Repeated, because the wrong answer comes from a race.
#[test]
fn chat_ending_reason_names_our_goodbye() {
    for round in 0..10 {
        let (mut server, addr) = serve(&["--once"]);
        let mut peer = connect_raw(addr);
        server.wait_for_stderr("connection from");
        let (input, expected): (&[u8], &str) = if round % 2 == 0 {
            (b"x\n\n", "goodbye")
        } else {
            (b"x\n", "end of input")
        };
        server.write(input);
        if round % 2 == 1 {
            server.close_stdin();
        }
        // The peer closes as soon as it sees our half-close.
        expect_eof_after(&mut peer, input);
        drop(peer);
        let reason = server.wait_for_ended();
        assert_eq!(
            reason, expected,
            "round {round}: we said goodbye first, but the status line says {reason:?}"
        );
        server.assert_exit(0);
    }
}

#[test]
fn chat_reset_by_peer_connect_exits_1() {
    // A conversation reset by the peer is an error in `connect`, never a
    // quiet success.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut client = connect(addr, &[]);
    let peer = accept_raw(&listener);
    client.write(b"unread\n");
    // Wait until our data sits unread in the peer's socket, then close it:
    // Linux answers with a reset instead of a FIN.
    let mut buf = [0u8; 16];
    let n = peer.peek(&mut buf).expect("peek");
    assert!(n > 0, "peer saw EOF instead of data");
    drop(peer);

    client.assert_exit(1);
    let err = client.stderr();
    assert!(
        err.lines().filter(|l| l.starts_with("duplex: ")).count() == 1,
        "expected one `duplex: ` line for the reset"
    );
}

/// Waits (polling, under a deadline: only the kernel can tell) until
/// process `pid` has read `len` bytes of its stdin, a regular file.
fn wait_until_read(pid: u32, len: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/0")).unwrap_or_default();
        let pos = info
            .lines()
            .find_map(|l| l.strip_prefix("pos:"))
            .and_then(|p| p.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if pos >= len {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stdin read only to {pos} of {len}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Hearing goodbye, we still send all we had been handed, however slowly the
/// peer reads it: `--linger` bounds only the discarding (issue 17, 1).
#[test]
fn chat_reply_to_a_goodbye_reaches_a_slow_reader_whole() {
    let reply = numbered_lines(4 << 20);
    let file = TempFile::with("slow-reader-reply", &reply);
    let mut server = duplex()
        .args(["serve", "--once", "--linger", "0.5", "-b", "127.0.0.1", "0"])
        .stdin_file(&file.0)
        .spawn();
    let addr = server.wait_for_listening();
    // "All that was handed to the conversation": make sure the input thread
    // has read the whole file before the goodbye comes, rather than racing
    // it (its file offset is in /proc; a loaded machine reads late).
    wait_until_read(server.pid(), reply.len() as u64);
    let mut peer = connect_small_window(addr, 16 * 1024);
    send_raw(&mut peer, b"question\n");
    let started = Instant::now();
    peer.shutdown(Shutdown::Write).expect("shutdown");
    // At most 4 MB/s: more than the linger plus what the socket buffers
    // hold. 4 MiB is all read ahead (the input thread reads 1 MiB chunks
    // and holds up to 5), so all of it was handed to the conversation. (The linger is not
    // shorter because TCP itself stalls for 200 ms at times on a window
    // this small.)
    let (got, clean) = read_paced(&mut peer, 8 * 1024, Duration::from_millis(5));
    let took = started.elapsed();
    assert!(
        clean && got.len() == reply.len() && got == reply,
        "the slow reader got {} of {} bytes in {took:?} (clean EOF: {clean})",
        got.len(),
        reply.len()
    );
    drop(peer);
    server.assert_exit(0);
    server.assert_stdout(b"question\n");
    server.assert_no_error_line();
}

/// A peer that takes nothing at all for `--linger` after its goodbye ends
/// the conversation as an error that says how much was not sent.
#[test]
fn chat_peer_that_stops_reading_after_its_goodbye_is_an_error() {
    let reply = numbered_lines(8 << 20);
    let file = TempFile::with("never-reader-reply", &reply);
    let mut server = duplex()
        .args(["serve", "--once", "--linger", "0.3", "-b", "127.0.0.1", "0"])
        .stdin_file(&file.0)
        .spawn();
    let addr = server.wait_for_listening();
    // Input must have been handed over before the goodbye comes: once the
    // input thread is 2 MiB into the file, its first chunk is queued.
    wait_until_read(server.pid(), 2 << 20);
    let mut peer = connect_small_window(addr, 16 * 1024);
    send_raw(&mut peer, b"\n");
    // The peer never reads (nor closes) until the server has given up.
    server.assert_exit(1);
    let err = server.stderr();
    let line = err
        .lines()
        .find(|l| l.starts_with("duplex: "))
        .expect("an error line");
    let n: u64 = line
        .split("peer stopped reading; ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `peer stopped reading; N bytes not sent` in {line:?}"));
    assert!(line.ends_with(" bytes not sent"), "{line:?}");
    assert!(n > 0 && n <= reply.len() as u64, "N = {n}");
    drop(peer);
}

/// After our goodbye, time spent waiting for our own stdout is not the
/// peer's silence (issue 17, 2): a slow reader of stdout gets all of the
/// reply, and the ending is not "linger expired".
#[test]
fn chat_slow_stdout_reader_is_not_the_peers_silence() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut client = duplex()
        .args([
            "connect",
            "--linger",
            "0.2",
            "127.0.0.1",
            &addr.port().to_string(),
        ])
        .stdout_manual()
        .spawn();
    let mut peer = accept_raw(&listener);
    client.write(b"question\n");
    client.close_stdin();
    expect_eof_after(&mut peer, b"question\n");
    let reply = numbered_lines(3 << 20);
    let sent = reply.clone();
    let writer = thread::spawn(move || {
        let ok = peer.write_all(&sent).is_ok();
        drop(peer);
        ok
    });
    // About 3 MB/s through a 64 KiB pipe: far slower than the socket.
    let (got, clean) = read_paced(client.take_stdout(), 16 * 1024, Duration::from_millis(5));
    assert!(
        clean && got.len() == reply.len() && got == reply,
        "the slow stdout reader got {} of {} bytes",
        got.len(),
        reply.len()
    );
    assert!(
        writer.join().expect("writer"),
        "the client stopped reading the reply"
    );
    assert_reason(&mut client, &["end of input"]);
    client.assert_exit(0);
}

/// The ending reason must not race: the peer closes the moment it sees our
/// empty line, and the status line still says "goodbye" (issue 8). Many
/// peers in a row against one server, to catch the race.
#[test]
fn chat_goodbye_reason_wins_over_a_peer_that_closes_at_once() {
    const ROUNDS: usize = 300;
    let (mut server, addr) = serve(&["--linger", "0.2"]);
    server.write(&b"x\n\n".repeat(ROUNDS));
    for round in 0..ROUNDS {
        let mut peer = connect_raw(addr);
        read_until(&mut peer, b"x\n\n");
        drop(peer);
        let reason = server.wait_for_ended();
        assert_eq!(reason, "goodbye", "round {round}");
    }
}

/// An idle timeout closes at once, with no linger after it (issue 8).
#[test]
fn chat_idle_timeout_closes_without_lingering() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The default --linger (5 s) would show if it followed the timeout.
    let mut client = connect(addr, &["--idle-timeout", "0.5"]);
    let mut peer = accept_raw(&listener);
    let started = Instant::now();
    expect_eof_after(&mut peer, b"");
    // The peer stays open and silent.
    client.wait_exit(Duration::from_secs(3));
    assert!(started.elapsed() < Duration::from_secs(3));
    client.assert_exit(0);
    assert_reason(&mut client, &["idle timeout"]);
    drop(peer);
}

/// A reader of stdout that stalls never holds duplex past its linger:
/// `serve --once --linger 0.5 --idle-timeout 1 </dev/null | sleep 8` with a
/// flooding peer (issue 8).
#[test]
fn chat_stalled_stdout_reader_does_not_hold_the_exit() {
    let mut server = duplex()
        .args([
            "serve",
            "--once",
            "--linger",
            "0.5",
            "--idle-timeout",
            "1",
            "-b",
            "127.0.0.1",
            "0",
        ])
        .stdin_null()
        .stdout_manual()
        .spawn();
    let addr = server.wait_for_listening();
    // Held open and never read, as `| sleep 8` does.
    let _stalled = server.take_stdout();
    let peer = connect_raw(addr);
    let started = Instant::now();
    let flood = flood_counted(peer);
    server.wait_exit(Duration::from_secs(4));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "exit took {took:?}");
    server.assert_exit(0);
    flood.stop();
}

/// When the peer says goodbye and keeps sending, the status line says how
/// many bytes were not shown, and that `--raw` carries blank lines.
#[test]
fn chat_bytes_after_the_peers_goodbye_are_counted() {
    let (mut server, addr) = serve(&["--once", "--linger", "0.5"]);
    let mut peer = connect_raw(addr);
    // "body 1\n\nbody 2\n" after the goodbye: 15 bytes.
    send_raw(&mut peer, b"head\n\nbody 1\n\nbody 2\n");
    expect_eof_after(&mut peer, b"");
    peer.shutdown(Shutdown::Write).expect("shutdown");
    drop(peer);
    server.assert_exit(0);
    server.assert_stdout(b"head\n");
    let line = server.wait_for_stderr("not shown");
    assert!(
        line.contains("15 bytes") && line.contains("--raw"),
        "expected the 15 bytes and --raw in {line:?}"
    );
}
