//! A peer's bytes never take over a terminal (SPEC, "Terminal safety";
//! issue 8), end to end with the real binary.
//!
//! - A terminal stdout without the view: duplex runs with its stdout on a
//!   real pty (made by a small python `pty` driver, which hands back every
//!   byte that reached the terminal on its own stdout), its stdin a pipe.
//! - The room: `nc`, which prints whatever it gets, is the receiving peer;
//!   what nc printed is what a terminal would have been sent.
//!
//! Without python3 or OpenBSD nc these tests say `SKIPPED` and pass, unless
//! `DUPLEX_REQUIRE_PEERS=1`.

use crate::support;

use std::net::{Shutdown, TcpListener};
use support::Proc;

/// What the issue's hostile peer sends: clear the screen, set the window
/// title, then go back to the start of the line and pretend to be the server.
const HOSTILE: &[u8] = b"hi\x1b[2J\x1b]0;pwned\x07\r[server] fake\n";

/// How [`HOSTILE`] is shown: every control visible, on one line.
const SHOWN: &[u8] = b"hi^[[2J^[]0;pwned^G^M[server] fake\n";

/// Runs `argv` with its stdout on a new pty (stdin and stderr are the
/// driver's own); copies what reached the pty to stdout, and exits with the
/// child's code. Bounded: the child is killed after 20 s.
const PTY_DRIVER: &str = r#"
import os, subprocess, sys, time, select
master, slave = os.openpty()
child = subprocess.Popen(sys.argv[1:], stdout=slave)
os.close(slave)
got = b""
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    ready, _, _ = select.select([master], [], [], 0.1)
    if not ready:
        if child.poll() is not None:
            break
        continue
    try:
        data = os.read(master, 65536)
    except OSError:
        break
    if not data:
        break
    got += data
else:
    child.kill()
code = child.wait()
sys.stdout.buffer.write(got)
sys.exit(code if code >= 0 else 99)
"#;

/// duplex with its stdout on a pty, through [`PTY_DRIVER`].
fn in_a_terminal(args: &[&str]) -> Option<support::Cmd> {
    if !support::require_peer("python3") {
        return None;
    }
    Some(
        support::program("python3")
            .args(["-c", PTY_DRIVER, env!("CARGO_BIN_EXE_duplex")])
            .args(args),
    )
}

/// What reached the terminal, with the pty's own `\n` → `\r\n` undone.
fn on_the_terminal(driver: &mut Proc) -> Vec<u8> {
    driver.assert_exit(0);
    let got = driver.stdout();
    let mut out = Vec::with_capacity(got.len());
    let mut i = 0;
    while i < got.len() {
        if got[i..].starts_with(b"\r\n") {
            i += 1;
            continue;
        }
        out.push(got[i]);
        i += 1;
    }
    out
}

/// No byte that a terminal would obey: ESC, BEL, a `\r`, any C0 but `\n`,
/// DEL, and no C1 or bidi control as UTF-8.
#[track_caller]
fn assert_inert(shown: &[u8]) {
    for &b in shown {
        assert!(
            b == b'\n' || (b >= 0x20 && b != 0x7f),
            "byte {b:#04x} reached the terminal: {}",
            support::show(shown)
        );
    }
    let text = String::from_utf8_lossy(shown);
    assert!(
        !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)),
        "a C1 or bidi control reached the terminal: {text:?}"
    );
}

#[test]
fn connect_with_a_terminal_stdout_shows_a_hostile_line_as_text() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let port = addr.port().to_string();
    // `printf 'hello\n' | duplex connect ...` in a terminal.
    let Some(cmd) = in_a_terminal(&["connect", "--linger", "5", "127.0.0.1", &port]) else {
        return;
    };
    let mut driver = cmd.spawn();
    driver.write(b"hello\n");
    driver.close_stdin();

    let mut peer = support::accept_raw(&listener);
    support::send_raw(&mut peer, HOSTILE);
    support::send_raw(&mut peer, b"crlf\r\nlone cr\rend\xe2\x80\xaeoff\xff\n");
    // Our stdin's end is the client's goodbye; then we close too.
    let heard = support::read_to_eof(&mut peer)
        .unwrap_or_else(|(e, got)| panic!("peer: {e} after {}", support::show(&got)));
    assert!(heard.starts_with(b"hello\n"), "{}", support::show(&heard));
    peer.shutdown(Shutdown::Both).expect("close the peer");

    let shown = on_the_terminal(&mut driver);
    let mut expected = SHOWN.to_vec();
    expected.extend_from_slice("crlf\nlone cr^Mend<U+202E>off\u{fffd}\n".as_bytes());
    assert_eq!(support::show(&shown), support::show(&expected));
    assert_inert(&shown);
}

#[test]
fn serve_recv_only_with_a_terminal_stdout_shows_a_hostile_line_as_text() {
    let Some(cmd) = in_a_terminal(&["serve", "--once", "--recv-only", "-b", "127.0.0.1", "0"])
    else {
        return;
    };
    let mut driver = cmd.spawn();
    let addr = driver.wait_for_listening();
    let mut peer = support::connect_raw(addr);
    // A C1 CSI, a tab, and a UTF-8 character cut across two writes.
    support::send_raw(&mut peer, HOSTILE);
    support::send_raw(&mut peer, "\u{9b}2J\tx \u{e9}".as_bytes());
    support::send_raw(&mut peer, &[0xc3]);
    support::send_raw(&mut peer, &[0xa9, b'\n']);
    peer.shutdown(Shutdown::Write).expect("half-close");
    support::read_to_eof(&mut peer)
        .unwrap_or_else(|(e, got)| panic!("peer: {e} after {}", support::show(&got)));

    let shown = on_the_terminal(&mut driver);
    let mut expected = SHOWN.to_vec();
    expected.extend_from_slice("<U+009B>2J      x \u{e9}\u{e9}\n".as_bytes());
    assert_eq!(support::show(&shown), support::show(&expected));
    assert_inert(&shown);
}

#[test]
fn piped_stdout_still_gets_the_peers_exact_bytes() {
    let (mut server, addr) = support::serve(&["--once", "--recv-only"]);
    let mut peer = support::connect_raw(addr);
    support::send_raw(&mut peer, HOSTILE);
    peer.shutdown(Shutdown::Write).expect("half-close");
    server.assert_exit(0);
    server.assert_stdout(HOSTILE);
}

/// The room: one hostile peer, nc listening. Returns (what nc printed, the
/// hostile peer's label, what the server's stdout got).
fn room_relays_to_nc(lines: &[&[u8]]) -> Option<(Vec<u8>, String, Vec<u8>)> {
    if !support::require_openbsd_nc() {
        return None;
    }
    let (mut server, addr) = support::serve(&["--room", "--linger", "0.5"]);
    let mut nc = support::program("nc")
        .args(["-N", &addr.ip().to_string(), &addr.port().to_string()])
        .spawn();
    server.wait_for_stderr(" joined");
    let mut hostile = support::connect_raw(addr);
    let label = format!("[{}]", hostile.local_addr().expect("local_addr"));
    server.wait_for_stderr(&format!("* {label} joined"));
    for line in lines {
        support::send_raw(&mut hostile, line);
    }
    support::send_raw(&mut hostile, b"last\n");
    nc.wait_for_stdout(format!("{label} last\n").as_bytes());
    // The server's own lines reach terminals it cannot see too.
    server.write(b"\x1b[31mfrom the operator\r\n");
    nc.wait_for_stdout(b"[server] ");
    // The server's goodbye ends the room; nc gets EOF and exits.
    server.close_stdin();
    hostile.shutdown(Shutdown::Write).expect("half-close");
    let _ = support::read_to_eof(&mut hostile);
    server.assert_exit(0);
    nc.close_stdin();
    nc.assert_exit(0);
    Some((nc.stdout(), label, server.stdout()))
}

#[test]
fn a_room_peer_cannot_forge_the_server_or_clear_an_nc_peers_screen() {
    let crlf: &[u8] = b"crlf line\r\n";
    let notice: &[u8] = b"\x1b[2K\r* [server] room closing\n";
    let bidi: &[u8] = b"x\xe2\x80\xaegnp.exe\n";
    let c1: &[u8] = b"\xc2\x9b2J\x08\x7f\xff\n";
    let Some((nc_out, label, server_out)) = room_relays_to_nc(&[HOSTILE, crlf, notice, bidi, c1])
    else {
        return;
    };
    let expected = format!(
        "{label} hi^[[2J^[]0;pwned^G^M[server] fake\n\
         {label} crlf line\n\
         {label} ^[[2K^M* [server] room closing\n\
         {label} x<U+202E>gnp.exe\n\
         {label} <U+009B>2J^H^?\u{fffd}\n\
         {label} last\n"
    );
    let relayed: Vec<&str> = std::str::from_utf8(&nc_out)
        .unwrap_or_else(|e| panic!("nc printed invalid UTF-8 ({e}): {}", support::show(&nc_out)))
        .lines()
        .filter(|l| l.starts_with(&label))
        .collect();
    assert_eq!(
        relayed.join("\n") + "\n",
        expected,
        "nc printed {}",
        support::show(&nc_out)
    );
    assert_inert(&nc_out);
    assert!(
        support::contains(&nc_out, b"\n[server] ^[[31mfrom the operator\n"),
        "nc printed {}",
        support::show(&nc_out)
    );
    for line in String::from_utf8_lossy(&nc_out).lines() {
        assert!(
            !line.starts_with("[server] fake") && !line.starts_with("* [server]"),
            "a forged line at the start of nc's line: {line:?}"
        );
    }
    // The server's own output shows the same neutralised lines.
    assert_eq!(String::from_utf8_lossy(&server_out), expected);
}
