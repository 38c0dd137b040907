//! Ctrl-C / SIGTERM (SPEC "Endings and exit codes"): exit 130 after a
//! graceful close — the peer reads a clean EOF, never a reset.

use crate::support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::{
    accept_raw, connect, connect_raw, duplex, flood_counted, read_to_eof, read_until, send_raw,
    serve, show, wait_count,
};

/// Read what is left and require a clean EOF (`Ok(0)`), not an error.
#[track_caller]
fn expect_clean_eof(peer: &mut std::net::TcpStream) {
    if let Err((e, got)) = read_to_eof(peer) {
        panic!(
            "peer read {} and then {e} ({:?}) instead of a clean EOF",
            show(&got),
            e.kind()
        );
    }
}

#[test]
fn signals_sigint_serve_exits_130_with_clean_eof() {
    let (mut server, addr) = serve(&["--once"]);
    let mut peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    // A conversation in full swing, both ways.
    server.write(b"hi\n");
    read_until(&mut peer, b"hi\n");
    send_raw(&mut peer, b"x\n");
    server.wait_for_stdout(b"x\n");

    server.signal("INT");
    expect_clean_eof(&mut peer);
    drop(peer);
    server.assert_exit(130);
    server.assert_stdout(b"x\n");
}

#[test]
fn signals_sigterm_connect_exits_130_with_clean_eof() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut client = connect(addr, &[]);
    let mut peer = accept_raw(&listener);
    client.wait_for_stderr("connected to");
    client.write(b"hello\n");
    read_until(&mut peer, b"hello\n");
    send_raw(&mut peer, b"back\n");
    client.wait_for_stdout(b"back\n");

    client.signal("TERM");
    expect_clean_eof(&mut peer);
    drop(peer);
    client.assert_exit(130);
    client.assert_stdout(b"back\n");
}

#[test]
fn signals_sigint_while_listening_exits_130() {
    let mut server = duplex().args(["serve", "-b", "127.0.0.1", "0"]).spawn();
    server.wait_for_listening();
    server.signal("INT");
    server.assert_exit(130);
    server.assert_stdout(b"");
}

/// One SIGTERM ends everything within `--linger` even while stdout is
/// blocked by a reader that never reads (issue 17, 3).
#[track_caller]
fn sigterm_with_stdout_blocked(mode: &[&str]) {
    let mut server = duplex()
        .args(["serve", "-b", "127.0.0.1", "--linger", "0.5"])
        .args(mode)
        .arg("0")
        .stdout_manual()
        .spawn();
    let addr = server.wait_for_listening();
    // Held open and never read.
    let _stalled = server.take_stdout();
    let peer = connect_raw(addr);
    let flood = flood_counted(peer);
    // More than the pipe and the read buffer hold: the server is stuck
    // writing its stdout.
    wait_count(&flood.count, 3 << 20);
    server.signal("TERM");
    let signalled = Instant::now();
    server.wait_exit(Duration::from_secs(4));
    let took = signalled.elapsed();
    server.assert_exit(130);
    assert!(took < Duration::from_secs(4), "exit took {took:?}");
    flood.stop();
}

#[test]
fn signals_sigterm_with_stdout_blocked_chat() {
    sigterm_with_stdout_blocked(&["--once"]);
}

#[test]
fn signals_sigterm_with_stdout_blocked_raw() {
    sigterm_with_stdout_blocked(&["--once", "--raw"]);
}

#[test]
fn signals_sigterm_with_stdout_blocked_room() {
    sigterm_with_stdout_blocked(&["--room"]);
}

/// A second Ctrl-C exits at once (130), while the first one's graceful close
/// is still waiting for a peer that never closes.
#[test]
fn signals_second_sigint_exits_at_once() {
    let (mut server, addr) = serve(&["--once", "--linger", "30"]);
    let mut peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    server.signal("INT");
    // The first Ctrl-C half-closes; the peer sees EOF and stays open.
    let got = read_to_eof(&mut peer).unwrap_or_else(|(e, _)| panic!("{e}"));
    assert!(got.is_empty());
    server.assert_running();
    server.signal("INT");
    let signalled = Instant::now();
    server.wait_exit(Duration::from_secs(3));
    assert!(signalled.elapsed() < Duration::from_secs(3));
    server.assert_exit(130);
    drop(peer);
}
