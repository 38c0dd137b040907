//! Command line and error endings (SPEC "Command line", "Endings and exit
//! codes", "Bad input, and what it gets"): usage errors exit 2, bind and
//! connect failures exit 1 with exactly one `duplex: ` line.

mod support;

use std::net::TcpListener;

use support::{Proc, connect, duplex, serve};

/// Run `duplex <args>` with stdin at EOF and wait for it to exit.
fn run(args: &[&str]) -> Proc {
    let mut p = duplex().args(args).stdin_null().spawn();
    p.finish();
    p
}

#[track_caller]
fn assert_usage_error(args: &[&str]) {
    let mut p = run(args);
    p.assert_exit(2);
    assert!(p.stdout().is_empty(), "usage error wrote to stdout");
    assert!(
        !p.stderr().trim().is_empty() && !p.stderr().contains("panicked"),
        "usage error should print clap's message on stderr, no panic"
    );
}

/// Exit 1 with exactly one line on stderr, starting `duplex: `.
#[track_caller]
fn assert_one_error_line(p: &mut Proc) {
    p.assert_exit(1);
    let err = p.stderr();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("duplex: "),
        "expected exactly one `duplex: ` line on stderr"
    );
    assert!(p.stdout().is_empty(), "error wrote to stdout");
}

#[test]
fn cli_help_and_version_exit_0() {
    for args in [
        &["--help"][..],
        &["-V"],
        &["serve", "--help"],
        &["connect", "--help"],
    ] {
        let mut p = run(args);
        p.assert_exit(0);
        assert!(!p.stdout().is_empty(), "`duplex {args:?}` printed nothing");
    }
}

#[test]
fn cli_bad_port_exits_2() {
    assert_usage_error(&["serve", "99999"]);
    assert_usage_error(&["serve", "-b", "127.0.0.1", "port"]);
    assert_usage_error(&["connect", "127.0.0.1", "99999"]);
    assert_usage_error(&["connect", "127.0.0.1", "-5"]);
}

#[test]
fn cli_bad_option_values_exit_2() {
    assert_usage_error(&["serve", "-b", "127.0.0.1", "--linger", "-1", "0"]);
    assert_usage_error(&["serve", "-b", "127.0.0.1", "--linger", "abc", "0"]);
    assert_usage_error(&["serve", "-b", "127.0.0.1", "--idle-timeout", "abc", "0"]);
    assert_usage_error(&["connect", "--linger", "-1", "127.0.0.1", "9"]);
    assert_usage_error(&["connect", "--connect-timeout", "soon", "127.0.0.1", "9"]);
}

#[test]
fn cli_missing_or_unknown_arguments_exit_2() {
    assert_usage_error(&[]);
    assert_usage_error(&["serve"]);
    assert_usage_error(&["connect", "127.0.0.1"]);
    assert_usage_error(&["serve", "--no-such-option", "0"]);
    assert_usage_error(&["bogus-subcommand"]);
}

#[test]
fn cli_port_0_prints_listening_line() {
    let (mut server, addr) = serve(&["--once"]);
    assert_ne!(addr.port(), 0, "listening line must show the real port");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    // The printed port is really the one bound: a peer can connect.
    let mut peer = support::connect_raw(addr);
    server.wait_for_stderr("connection from");
    peer.shutdown(std::net::Shutdown::Write).expect("shutdown");
    support::expect_eof_after(&mut peer, b"");
    drop(peer);
    server.assert_exit(0);
    server.assert_stdout(b"");
}

#[test]
fn cli_connect_refused_exits_1() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut p = duplex()
        .args(["connect", "127.0.0.1", &port.to_string()])
        .spawn();
    assert_one_error_line(&mut p);
}

#[test]
fn cli_port_in_use_exits_1() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let mut p = duplex()
        .args(["serve", "-b", "127.0.0.1", &port.to_string()])
        .spawn();
    assert_one_error_line(&mut p);
    drop(holder);
}

#[test]
fn cli_quiet_prints_no_status_lines() {
    let (mut server, addr) = serve(&["--once"]);
    let mut client = connect(addr, &["-q"]);
    client.write(b"hi\n");
    client.close_stdin();
    server.wait_for_stdout(b"hi\n");
    client.assert_exit(0);
    assert!(
        client.stderr().trim().is_empty(),
        "-q must silence status lines"
    );
    server.assert_exit(0);
}

#[test]
fn cli_connect_by_host_name() {
    // `localhost` may resolve to ::1 first, where nothing listens: every
    // resolved address is tried in order.
    let (mut server, addr) = serve(&["--once"]);
    let mut client = duplex()
        .args(["connect", "localhost", &addr.port().to_string()])
        .spawn();
    client.wait_for_stderr("connected to 127.0.0.1:");
    client.write(b"by name\n");
    client.close_stdin();
    server.wait_for_stdout(b"by name\n");
    client.assert_exit(0);
    server.assert_exit(0);
    server.assert_stdout(b"by name\n");
}

/// A `SECS` above one year is a usage error, never a panic (issue 17, 8).
#[test]
fn cli_huge_seconds_are_usage_errors() {
    assert_usage_error(&["serve", "--linger", "1e19", "0"]);
    assert_usage_error(&["serve", "--idle-timeout", "1e19", "0"]);
    assert_usage_error(&["connect", "--connect-timeout", "1e19", "127.0.0.1", "1"]);
    assert_usage_error(&["serve", "--linger", "31622401", "0"]);
}
