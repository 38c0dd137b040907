//! Command line and error endings (SPEC "Command line", "Endings and exit
//! codes", "Bad input, and what it gets"): usage errors exit 2, bind and
//! connect failures exit 1 with exactly one `duplex: ` line.

use crate::support;

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

/// `duplex <args>` with `env` set, stdin at EOF; its output.
fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_duplex"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run duplex")
}

/// A port where nothing listens.
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port().to_string()
}

#[test]
fn cli_help_says_how_a_conversation_ends_first_and_gives_examples() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["connect", "--help"],
    ] {
        let out = run_with_env(args, &[]);
        let help = String::from_utf8_lossy(&out.stdout);
        let first: String = help.lines().take(6).collect::<Vec<_>>().join(" ");
        assert!(
            first.contains("empty line") && first.contains("Ctrl-D") && first.contains("--linger"),
            "`duplex {args:?}`: the first lines must say how a conversation ends:\n{help}"
        );
        let examples = help
            .lines()
            .skip_while(|l| !l.starts_with("Examples:"))
            .skip(1)
            .take_while(|l| l.starts_with("  duplex") || l.starts_with("  printf"))
            .count();
        assert!(
            (3..=6).contains(&examples),
            "{args:?}: {examples} examples:\n{help}"
        );
    }
    let top = run_with_env(&["--help"], &[]);
    assert!(String::from_utf8_lossy(&top.stdout).contains("-b 127.0.0.1"));
}

#[test]
fn cli_man_page_documents_both_subcommands_and_every_option() {
    let out = run_with_env(&["--generate", "man"], &[]);
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    // Every long option of both subcommands (from their --help).
    for sub in ["serve", "connect"] {
        let help = run_with_env(&[sub, "--help"], &[]);
        let help = String::from_utf8_lossy(&help.stdout);
        for word in help.split_whitespace() {
            let long = word.trim_end_matches(',');
            if let Some(name) = long.strip_prefix("--")
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                && !name.is_empty()
                && !["help", "version"].contains(&name)
            {
                let roff = format!("\\-\\-{}", name.replace('-', "\\-"));
                assert!(page.contains(&roff), "the man page lacks --{name}");
            }
        }
    }
    for needle in [
        "duplex serve",
        "duplex connect",
        "HOW A CONVERSATION ENDS",
        "RAW MODE",
        "ROOMS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "NO_COLOR",
        "RUST_LOG",
        "DUPLEX_SECRET",
        "EXAMPLES",
        "130",
    ] {
        assert!(page.contains(needle), "the man page lacks {needle:?}");
    }
    assert!(
        !page.contains("duplex-serve(1)"),
        "no references to pages that do not exist"
    );
}

#[test]
fn cli_connect_host_colon_port_suggests_two_arguments() {
    for (arg, host) in [
        ("127.0.0.1:9000", "127.0.0.1"),
        ("[::1]:9000", "::1"),
        ("localhost:9000", "localhost"),
    ] {
        let out = run_with_env(&["connect", arg], &[]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("duplex connect {host} 9000")),
            "`connect {arg}` should suggest the two-argument form:\n{err}"
        );
    }
}

#[test]
fn cli_common_options_may_go_before_the_subcommand() {
    // -q before the subcommand: accepted, and it silences the status lines.
    let out = run_with_env(&["-q", "connect", "127.0.0.1", &closed_port()], &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    // Options with values, before the subcommand.
    let (mut server, addr) = serve(&["--once"]);
    let mut client = duplex()
        .args(["--linger", "0.5", "connect", "-q"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .spawn();
    client.write(b"early options\n");
    client.close_stdin();
    server.wait_for_stdout(b"early options\n");
    client.assert_exit(0);
    server.assert_exit(0);
    assert!(client.stderr().trim().is_empty(), "{}", client.stderr());
    // --generate still stands alone.
    assert_eq!(
        run_with_env(&["--generate", "man", "serve", "0"], &[])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn cli_rust_log_selects_diagnostics_without_colour_in_a_redirected_stderr() {
    let port = closed_port();
    let connect = ["connect", "127.0.0.1", port.as_str()];
    let out = run_with_env(&connect, &[("RUST_LOG", "duplex=debug")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEBUG"), "RUST_LOG=duplex=debug: {err}");
    assert!(
        !err.contains('\x1b'),
        "colour in a redirected stderr: {err:?}"
    );
    // A filter for other targets only: no duplex diagnostics.
    let out = run_with_env(&connect, &[("RUST_LOG", "other=trace")]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("DEBUG"));
    // -vv and --color always: still no colour when stderr is not a terminal.
    let mut args = vec!["-vv", "--color", "always"];
    args.extend(connect);
    let out = run_with_env(&args, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEBUG"), "-vv: {err}");
    assert!(
        !err.contains('\x1b'),
        "-vv: colour in a redirected stderr: {err:?}"
    );
}
