//! `duplex serve` (SPEC "Serve"): --once, sequential conversations with the
//! next peer waiting in the backlog, stdin belonging to the whole process,
//! exit after stdin EOF, --recv-only, a vanished peer, IPv6 loopback.

use crate::support;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;

use support::{
    connect, connect_raw, duplex, expect_eof_after, flood_until_closed, ipv6_loopback_available,
    read_a_little_then_close, read_until, send_raw, serve, skip,
};

#[test]
fn serve_once_exits_after_first_conversation() {
    let (mut server, addr) = serve(&["--once"]);
    let mut peer = connect_raw(addr);
    send_raw(&mut peer, b"x\n");
    peer.shutdown(Shutdown::Write).expect("shutdown");
    expect_eof_after(&mut peer, b"");
    drop(peer);
    server.assert_exit(0);
    server.assert_stdout(b"x\n");
}

#[test]
fn serve_sequential_conversations_second_peer_waits() {
    let (mut server, addr) = serve(&[]);

    let mut a = connect(addr, &[]);
    a.wait_for_stderr("connected to");
    server.wait_for_stderr("connection from");

    // B connects while A's conversation runs: it waits in the backlog, and
    // what it sends is delivered once A's conversation has ended.
    let mut b = connect(addr, &[]);
    b.wait_for_stderr("connected to");
    b.write(b"from b\n");
    a.write(b"from a\n");
    server.wait_for_stdout(b"from a\n");

    // A says goodbye (stdin stays open): its conversation ends.
    a.write(b"\n");
    a.assert_exit(0);
    server.wait_for_ended();

    // Then B is accepted and served.
    server.wait_for_stderr("connection from");
    server.wait_for_stdout(b"from a\nfrom b\n");
    server.write(b"to b\n");
    b.wait_for_stdout(b"to b\n");
    b.close_stdin();
    b.assert_exit(0);
    server.wait_for_ended();

    // The server's stdin is still open: it keeps serving.
    let mut c = connect_raw(addr);
    send_raw(&mut c, b"from c\n");
    server.wait_for_stdout(b"from a\nfrom b\nfrom c\n");
    server.assert_running();
    server.assert_stdout(b"from a\nfrom b\nfrom c\n");
    b.assert_stdout(b"to b\n");
    a.assert_stdout(b"");
    drop(c);
}

#[test]
fn serve_exits_after_stdin_eof() {
    // No --once: the end of stdin is what makes it exit.
    let (mut server, addr) = serve(&[]);
    let mut peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    server.write(b"last\n");
    server.close_stdin();
    expect_eof_after(&mut peer, b"last\n");
    drop(peer);
    let reason = server.wait_for_ended();
    assert_eq!(reason, "end of input");
    server.assert_exit(0);
    server.assert_stdout(b"");
}

#[test]
fn serve_pre_connection_input_delivered() {
    let mut server = duplex().args(["serve", "-b", "127.0.0.1", "0"]).spawn();
    // Piped (and ended) before any peer exists.
    server.write(b"early 1\nearly 2\n");
    server.close_stdin();
    let addr = server.wait_for_listening();

    let mut peer = connect_raw(addr);
    expect_eof_after(&mut peer, b"early 1\nearly 2\n");
    drop(peer);
    server.assert_exit(0);
}

#[test]
fn serve_keeps_input_after_goodbye_for_next_peer() {
    let (mut server, addr) = serve(&[]);
    server.write(b"for a\n\nfor b\n");

    // A gets what came before the empty line, and the goodbye line.
    let mut a = connect_raw(addr);
    expect_eof_after(&mut a, b"for a\n\n");
    drop(a);
    server.wait_for_ended();

    // B gets what came after it.
    let mut b = connect_raw(addr);
    let got = read_until(&mut b, b"for b\n");
    assert_eq!(got, b"for b\n");
    send_raw(&mut b, b"\n");
    expect_eof_after(&mut b, b"");
    drop(b);
    server.wait_for_ended();
    server.assert_running();
    server.assert_stdout(b"");
}

/// stdin's end between two peers ends the server (SPEC, "Serve": there is
/// nothing more to say), without waiting for a next peer to say it to.
#[test]
fn serve_exits_when_stdin_ends_between_peers() {
    let (mut server, addr) = serve(&[]);
    server.write(b"for a\n");
    let mut a = connect_raw(addr);
    read_until(&mut a, b"for a\n");
    send_raw(&mut a, b"\n");
    expect_eof_after(&mut a, b"");
    drop(a);
    server.wait_for_ended();
    server.assert_running();
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn serve_recv_only_with_stdin_at_eof() {
    // stdin is /dev/null, but --recv-only never reads it: the server keeps
    // serving, and a conversation ends only by the peer's goodbye.
    let mut server = duplex()
        .args(["serve", "-b", "127.0.0.1", "--recv-only", "0"])
        .stdin_null()
        .spawn();
    let addr = server.wait_for_listening();

    for (i, who) in ["first", "second"].iter().enumerate() {
        let mut peer = connect_raw(addr);
        let l1 = format!("{who} 1\n");
        let l2 = format!("{who} 2\n");
        send_raw(&mut peer, l1.as_bytes());
        server.wait_for_stdout(l1.as_bytes());
        server.assert_running();
        send_raw(&mut peer, l2.as_bytes());
        server.wait_for_stdout(l2.as_bytes());
        server.assert_running();
        // The goodbye: the server closes its side cleanly, sending nothing.
        send_raw(&mut peer, b"\n");
        expect_eof_after(&mut peer, b"");
        drop(peer);
        let reason = server.wait_for_ended();
        assert_eq!(reason, "peer said goodbye", "conversation {i}");
    }
    server.assert_running();
    server.assert_stdout(b"first 1\nfirst 2\nsecond 1\nsecond 2\n");
}

#[test]
fn serve_recv_only_once_exits_after_peer_goodbye() {
    let mut server = duplex()
        .args(["serve", "-b", "127.0.0.1", "--recv-only", "--once", "0"])
        .stdin_null()
        .spawn();
    let addr = server.wait_for_listening();
    let mut peer = connect_raw(addr);
    send_raw(&mut peer, b"l1\nl2\n");
    peer.shutdown(Shutdown::Write).expect("shutdown");
    expect_eof_after(&mut peer, b"");
    drop(peer);
    server.assert_exit(0);
    server.assert_stdout(b"l1\nl2\n");
}

#[test]
fn serve_peer_killed_takes_next_peer() {
    let (mut server, addr) = serve(&[]);
    let mut a = connect(addr, &[]);
    server.wait_for_stderr("connection from");
    a.write(b"hello\n");
    server.wait_for_stdout(b"hello\n");
    a.kill();

    // The vanished peer ends its conversation with a line, never a hang.
    // Whatever its wording (an ending or an error), the next stderr line
    // after `connection from` reports the end of that conversation.
    server.wait_for_stderr_line("the end of the killed peer's conversation", |l| {
        l.starts_with("conversation with ") && (l.contains(" ended: ") || l.contains(" failed "))
    });
    server.assert_running();

    // And the next peer is served.
    let mut b = connect_raw(addr);
    server.wait_for_stderr("connection from");
    send_raw(&mut b, b"next\n");
    server.wait_for_stdout(b"hello\nnext\n");
    server.write(b"reply\n");
    read_until(&mut b, b"reply\n");
    server.assert_running();
}

#[test]
fn serve_closed_stdout_exits_0_quietly() {
    // A peer that floods and never closes: --linger bounds the wait for it.
    let mut server = duplex()
        .args(["serve", "--linger", "0.5", "-b", "127.0.0.1", "0"])
        .stdout_manual()
        .spawn();
    let addr = server.wait_for_listening();
    let peer = connect_raw(addr);

    let flood = flood_until_closed(peer);
    read_a_little_then_close(server.take_stdout());

    server.assert_exit(0);
    server.assert_no_error_line();
    assert!(
        flood.join().expect("flood thread"),
        "the server never closed the connection after its stdout was closed"
    );
}

#[test]
fn serve_closed_stdout_still_closes_cleanly_for_a_peer_that_is_talking() {
    let mut server = duplex()
        .args(["serve", "-b", "127.0.0.1", "0"])
        .stdout_manual()
        .spawn();
    let addr = server.wait_for_listening();
    let mut peer = connect_raw(addr);
    send_raw(&mut peer, b"a\n");
    read_a_little_then_close(server.take_stdout());
    // The server finds its stdout closed when it shows "b": it stops
    // sending (we see its FIN) but still reads, so that what we send next
    // does not meet a closed socket and turn the close into a reset.
    send_raw(&mut peer, b"b\n");
    expect_eof_after(&mut peer, b"");
    send_raw(&mut peer, b"c\nd\n");
    peer.shutdown(Shutdown::Write)
        .expect("the peer half-closes: the connection was not reset");
    let mut rest = [0u8; 16];
    assert!(
        matches!(peer.read(&mut rest), Ok(0)),
        "the server's close reached the peer as a reset"
    );
    server.assert_exit(0);
    server.assert_no_error_line();
}

#[test]
fn serve_ipv6_loopback() {
    if !ipv6_loopback_available() {
        skip("needs an IPv6 loopback address (::1 cannot be bound here)");
        return;
    }
    let mut server = duplex().args(["serve", "-b", "::1", "--once", "0"]).spawn();
    let addr = server.wait_for_listening();
    assert!(addr.is_ipv6(), "listening on {addr}, expected [::1]:PORT");
    assert_eq!(addr.ip().to_string(), "::1");
    assert!(
        server
            .stderr()
            .contains(&format!("listening on [::1]:{}", addr.port())),
    );

    let mut client = duplex()
        .args(["connect", "::1", &addr.port().to_string()])
        .spawn();
    client.wait_for_stderr("connected to");
    server.write(b"over v6\n");
    client.write(b"v6 too\n");
    client.wait_for_stdout(b"over v6\n");
    server.wait_for_stdout(b"v6 too\n");
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
    client.assert_stdout(b"over v6\n");
    server.assert_stdout(b"v6 too\n");
}

#[test]
fn serve_once_reset_by_peer_exits_1() {
    let (mut server, addr) = serve(&["--once"]);
    let peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    server.write(b"unread\n");
    // Close while the server's line sits unread: the server gets a reset.
    let mut buf = [0u8; 16];
    let n = peer.peek(&mut buf).expect("peek");
    assert!(n > 0, "peer saw EOF instead of data");
    drop(peer);

    server.assert_exit(1);
    assert!(
        server
            .stderr()
            .lines()
            .filter(|l| l.starts_with("duplex: "))
            .count()
            == 1,
        "expected one `duplex: ` line for the reset"
    );
}

#[test]
fn serve_reset_by_peer_takes_next_peer() {
    // Without --once, a reset ends only that conversation.
    let (mut server, addr) = serve(&[]);
    let peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    server.write(b"unread\n");
    let mut buf = [0u8; 16];
    assert!(peer.peek(&mut buf).expect("peek") > 0);
    drop(peer);
    // A line about the failed conversation, then the next peer is served.
    server.wait_for_stderr_line("the reset conversation's failure", |l| {
        l.starts_with("conversation with ") && l.contains(" failed ") && l.contains("reset")
    });
    server.assert_running();
    let mut next = connect_raw(addr);
    server.wait_for_stderr("connection from");
    send_raw(&mut next, b"next\n");
    server.wait_for_stdout(b"next\n");
    server.assert_running();
}

/// `serve --once` says how many bytes of input it read but did not send
/// because the peer said goodbye first (issue 17, 2).
#[test]
fn serve_once_reports_input_not_sent_after_the_peers_goodbye() {
    let mut server = duplex()
        .args(["serve", "--once", "--linger", "0.5", "-b", "127.0.0.1", "0"])
        .spawn();
    let addr = server.wait_for_listening();
    let mut stdin = server.take_stdin();
    // Lines keep coming on stdin; count what the pipe took.
    let taken_so_far = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = thread::spawn({
        let taken_so_far = std::sync::Arc::clone(&taken_so_far);
        move || {
            let line = b"more input that the peer will not want\n".repeat(1600);
            let mut taken = 0usize;
            let deadline = std::time::Instant::now() + support::DEADLINE;
            while std::time::Instant::now() < deadline {
                match stdin.write(&line) {
                    Ok(n) => taken += n,
                    Err(_) => break,
                }
                taken_so_far.store(taken, std::sync::atomic::Ordering::Relaxed);
            }
            taken
        }
    });
    let mut peer = connect_raw(addr);
    send_raw(&mut peer, b"\n");
    let got = support::read_to_eof(&mut peer).unwrap_or_else(|(e, _)| panic!("{e}"));
    // Before the peer closes, make sure duplex holds input it will not
    // send: the pipe (64 KiB) took more than it holds since the server's
    // EOF, so the input thread read it; or the writer is stuck, so the
    // input thread's channel is full (it stops reading only then). Polled:
    // only the pipe can tell.
    let taken_now = || taken_so_far.load(std::sync::atomic::Ordering::Relaxed);
    let at_eof = taken_now();
    let deadline = std::time::Instant::now() + support::DEADLINE;
    let (mut last, mut still_since) = (at_eof, std::time::Instant::now());
    loop {
        let now = taken_now();
        if now >= at_eof + (68 << 10) {
            break;
        }
        if now != last {
            (last, still_since) = (now, std::time::Instant::now());
        } else if now >= 68 << 10 && still_since.elapsed() >= std::time::Duration::from_millis(300)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "duplex stopped reading its stdin"
        );
        thread::sleep(std::time::Duration::from_millis(2));
    }
    drop(peer);
    server.assert_exit(0);
    let taken = writer.join().expect("writer");
    let err = server.stderr();
    let n: usize = err
        .lines()
        .find_map(|l| {
            let at = l.find(" bytes of input not sent")?;
            l[..at].rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no `N bytes of input not sent` line"));
    // Everything read was sent or counted; what the pipe and the read-ahead
    // still held when the server left is at most a few hundred KiB.
    let read = got.len() + n;
    assert!(n > 0, "nothing reported");
    assert!(
        read <= taken,
        "sent {} + reported {n} > written {taken}",
        got.len()
    );
    assert!(
        taken - read <= 1 << 20,
        "sent {} + reported {n} is far below the {taken} bytes written",
        got.len()
    );
}
