//! Ctrl-C / SIGTERM (SPEC "Endings and exit codes"): exit 130 after a
//! graceful close — the peer reads a clean EOF, never a reset.

mod support;

use std::net::TcpListener;

use support::{
    accept_raw, connect, connect_raw, duplex, read_to_eof, read_until, send_raw, serve, show,
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
