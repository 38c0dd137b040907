//! SPEC's fixed time bounds whose tests must wait them out: the secret
//! channel's 10 s handshake bound (SPEC, "Secret channel", step 4).
//!
//! libtest starts tests in name order, and this module's name sorts first:
//! its long, idle waits start at once and the rest of the suite runs beside
//! them, instead of starting last and keeping the suite waiting 10 s more.
//! Their children only wait, so they are [`load::idle`].

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::secret::{WORDS, connect_secret, serve_secret};
use crate::support::{load, *};

#[test]
fn a_client_does_not_wait_for_ever_for_the_handshake() {
    let _idle = load::idle();
    // A server that accepts and never answers (a busy one's backlog).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Instant::now();
    let mut client = connect_secret(addr, WORDS, &[]);
    client.assert_exit(1);
    let took = started.elapsed();
    client.assert_stderr_contains("handshake timed out: is the peer using --secret?");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(15),
        "{took:?}"
    );
    drop(listener);
}

#[test]
fn clients_that_give_up_in_a_busy_servers_backlog_are_no_guesses() {
    let _idle = load::idle();
    let (mut server, addr) = serve_secret(WORDS, &[]);
    let mut busy = connect_secret(addr, WORDS, &[]);
    busy.write(b"a long talk\n");
    server.wait_for_stdout(b"a long talk\n");
    // Three clients wait behind it, give up after 10 s, and say so.
    let mut waiting: Vec<Proc> = (0..3).map(|_| connect_secret(addr, WORDS, &[])).collect();
    for client in &mut waiting {
        client.assert_exit(1);
        client.assert_stderr_contains("handshake timed out");
    }
    busy.close_stdin();
    busy.assert_exit(0);
    for _ in 0..3 {
        server.wait_for_stderr("the peer left before the handshake");
    }
    server.assert_running();
    let mut late = connect_secret(addr, WORDS, &[]);
    late.write(b"still here?\n");
    server.wait_for_stdout(b"still here?\n");
    late.close_stdin();
    late.assert_exit(0);
    assert!(
        !server.stderr().contains("wrong secret"),
        "{}",
        server.stderr()
    );
}
