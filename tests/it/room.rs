//! `duplex serve --room` end to end (SPEC, "Room"; issue 4), with the real
//! binary and plain sockets as peers.
//!
//! Every wait is on an event (a line on a socket, a status line on the
//! server's stderr, an exit) under the harness's deadline; no fixed ports,
//! no sleeps.

use crate::support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;
use support::{DEADLINE, Proc};

/// A room peer over a plain socket, reading line by line.
pub(crate) struct Peer {
    writer: TcpStream,
    pub(crate) reader: BufReader<TcpStream>,
    /// How the room labels this peer: `[127.0.0.1:PORT]`.
    pub(crate) label: String,
}

impl Peer {
    /// Connects, and waits until the server has told its stderr that this
    /// peer joined (so it is in the room and will get what follows), and
    /// the peer has been welcomed.
    #[track_caller]
    pub(crate) fn join(server: &mut Proc, addr: SocketAddr) -> Peer {
        let mut peer = Peer::connect(addr);
        server.wait_for_stderr(&format!("* {} joined", peer.label));
        peer.welcomed();
        peer
    }

    /// Connects, and reads the welcome (without waiting for the server's
    /// stderr).
    #[track_caller]
    fn arrive(addr: SocketAddr) -> Peer {
        let mut peer = Peer::connect(addr);
        peer.welcomed();
        peer
    }

    /// Reads the welcome, the first line a newcomer gets; returns who it
    /// says is here.
    #[track_caller]
    fn welcomed(&mut self) -> String {
        let line = self.line();
        let prefix = format!("* you are {}; here: [server]", self.label);
        assert!(
            line.starts_with(&prefix),
            "{}: welcome {line:?}",
            self.label
        );
        line[prefix.len()..].to_owned()
    }

    #[track_caller]
    fn connect(addr: SocketAddr) -> Peer {
        let writer = support::connect_raw(addr);
        let label = format!("[{}]", writer.local_addr().expect("local_addr"));
        let reader = BufReader::new(writer.try_clone().expect("try_clone"));
        Peer {
            writer,
            reader,
            label,
        }
    }

    /// The next line, without its `\n`.
    #[track_caller]
    pub(crate) fn line(&mut self) -> String {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(_) if line.ends_with(b"\n") => {
                line.pop();
                String::from_utf8_lossy(&line).into_owned()
            }
            Ok(_) => panic!(
                "{}: EOF while waiting for a line (got {:?})",
                self.label,
                String::from_utf8_lossy(&line)
            ),
            Err(e) => panic!(
                "{}: {e} while waiting for a line (got {:?})",
                self.label,
                String::from_utf8_lossy(&line)
            ),
        }
    }

    /// The next line that is not a notice (`* ...`).
    #[track_caller]
    pub(crate) fn chat_line(&mut self) -> String {
        loop {
            let line = self.line();
            if !line.starts_with("* ") {
                return line;
            }
        }
    }

    #[track_caller]
    pub(crate) fn say(&mut self, text: &str) {
        self.writer
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("{}: writing {text:?}: {e}", self.label));
    }

    /// Everything left until the server's clean EOF (a reset fails); then
    /// closes our side too, as a polite peer does, so the server need not
    /// linger for it.
    #[track_caller]
    pub(crate) fn rest_until_eof(&mut self) -> String {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => {
                let _ = self.writer.shutdown(std::net::Shutdown::Write);
                String::from_utf8_lossy(&rest).into_owned()
            }
            Err(e) => panic!(
                "{}: {e} ({:?}) instead of a clean EOF, after {:?}",
                self.label,
                e.kind(),
                String::from_utf8_lossy(&rest)
            ),
        }
    }
}

pub(crate) fn room(extra: &[&str]) -> (Proc, SocketAddr) {
    let mut args = vec!["--room"];
    args.extend_from_slice(extra);
    support::serve(&args)
}

#[test]
fn lines_reach_the_others_and_stdout_labelled_and_never_echo() {
    let (mut server, addr) = room(&[]);
    let mut a = Peer::join(&mut server, addr);
    let mut b = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", b.label));

    a.say("hello\n");
    assert_eq!(b.line(), format!("{} hello", a.label));
    b.say("hi a\n");
    // Had A's own line come back, it would come before B's.
    assert_eq!(a.line(), format!("{} hi a", b.label));

    server.write(b"from the top\n");
    assert_eq!(a.line(), "[server] from the top");
    assert_eq!(b.line(), "[server] from the top");

    let expected = format!("{} hello\n{} hi a\n", a.label, b.label);
    server.wait_for_stdout(expected.as_bytes());
    server.close_stdin();
    a.rest_until_eof();
    b.rest_until_eof();
    server.assert_exit(0);
    // The server's own lines are not echoed to its stdout, notices are not
    // on stdout at all.
    server.assert_stdout(expected.as_bytes());
}

#[test]
fn joins_and_leaves_are_told_and_a_goodbye_relays_what_came_before() {
    let (mut server, addr) = room(&[]);
    let mut a = Peer::join(&mut server, addr);

    // Goodbye by an empty line, after two lines in the same write; what
    // follows the goodbye is not relayed.
    let mut b = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", b.label));
    b.say("one\ntwo\n\nnot relayed\n");
    assert_eq!(a.line(), format!("{} one", b.label));
    assert_eq!(a.line(), format!("{} two", b.label));
    assert_eq!(a.line(), format!("* {} left", b.label));
    assert_eq!(b.rest_until_eof(), "", "B gets a clean close");
    server.wait_for_stderr(&format!("* {} left", b.label));

    // Goodbye by EOF (half-close), after a last line without `\n`.
    let mut c = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", c.label));
    c.say("last words");
    c.writer
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    assert_eq!(a.line(), format!("{} last words", c.label));
    assert_eq!(a.line(), format!("* {} left", c.label));
    assert_eq!(c.rest_until_eof(), "", "C gets a clean close");

    // A CRLF empty line is a goodbye too.
    let mut d = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", d.label));
    d.say("crlf\r\n\r\n");
    // ...and a CRLF line ending is relayed as `\n` (SPEC, "Terminal safety").
    assert_eq!(a.line(), format!("{} crlf", d.label));
    assert_eq!(a.line(), format!("* {} left", d.label));
    d.rest_until_eof();

    server.close_stdin();
    a.rest_until_eof();
    server.assert_exit(0);
    assert!(!support::contains(&server.stdout(), b"not relayed"));
}

#[test]
fn the_servers_goodbye_ends_the_room_with_a_clean_close_for_everyone() {
    let (mut server, addr) = room(&[]);
    let mut a = Peer::join(&mut server, addr);
    let mut b = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", b.label));

    // Input after the empty line is not sent.
    server.write(b"bye all\n\nnot sent\n");
    for peer in [&mut a, &mut b] {
        assert_eq!(
            peer.rest_until_eof(),
            "[server] bye all\n* room closing\n\n",
            "{} gets the line, the notice, the goodbye and a clean EOF",
            peer.label
        );
    }
    drop((a, b));
    server.assert_exit(0);
    server.assert_no_error_line();
}

#[test]
fn the_end_of_the_servers_input_ends_the_room() {
    let (mut server, addr) = room(&[]);
    let mut a = Peer::join(&mut server, addr);
    server.write(b"no newline at the end");
    server.close_stdin();
    assert_eq!(
        a.rest_until_eof(),
        "[server] no newline at the end\n* room closing\n\n"
    );
    drop(a);
    server.assert_exit(0);
}

#[test]
fn input_before_anyone_joins_waits_for_the_first_peer() {
    let (mut server, addr) = room(&[]);
    server.write(b"early\n");
    server.close_stdin();
    let mut a = Peer::arrive(addr);
    assert_eq!(a.rest_until_eof(), "[server] early\n* room closing\n\n");
    drop(a);
    server.assert_exit(0);
}

#[test]
fn ctrl_c_closes_every_peer_cleanly_and_exits_130() {
    let (mut server, addr) = room(&[]);
    let mut a = Peer::join(&mut server, addr);
    let mut b = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", b.label));
    server.signal("INT");
    for peer in [&mut a, &mut b] {
        assert_eq!(peer.rest_until_eof(), "* room closing\n\n");
    }
    drop((a, b));
    server.assert_exit(130);
}

#[test]
fn a_peer_that_never_reads_is_evicted_and_the_others_keep_receiving() {
    let (mut server, addr) = room(&[]);
    let (slow, slow_label, mut reader, mut flooder) =
        never_reader_reader_flooder(&mut server, addr);

    // The flooder sends until the server has evicted the slow peer, then a
    // last line; bounded by count as well as by the eviction.
    const LINE: usize = 100;
    const MAX_LINES: usize = 4_000_000;
    let evicted = Arc::new(AtomicBool::new(false));
    let mut writer = flooder.writer.try_clone().expect("try_clone");
    let flood = thread::Builder::new()
        .name("flooder".into())
        .spawn({
            let evicted = Arc::clone(&evicted);
            move || -> usize {
                let mut sent = 0;
                let mut batch = Vec::new();
                while sent < MAX_LINES && !evicted.load(Ordering::SeqCst) {
                    batch.clear();
                    for n in sent..sent + 1000 {
                        let line = format!("{n:0width$}\n", width = LINE - 1);
                        batch.extend_from_slice(line.as_bytes());
                    }
                    writer.write_all(&batch).expect("flooder write");
                    sent += 1000;
                }
                writer.write_all(b"done\n").expect("flooder write");
                sent
            }
        })
        .expect("spawn flooder");

    // The reader keeps up, line by line, in order, while the slow peer's
    // queue fills.
    let prefix = format!("{} ", flooder.label);
    let check = thread::Builder::new()
        .name("reader".into())
        .spawn(move || -> usize {
            let mut expected = 0;
            loop {
                let line = reader.line();
                if line.starts_with("* ") {
                    continue;
                }
                let body = line
                    .strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("unexpected line {line:?}"));
                if body == "done" {
                    return expected;
                }
                let n: usize = body.parse().expect("a number");
                assert_eq!(n, expected, "lines arrive in order, exactly once");
                expected += 1;
            }
        })
        .expect("spawn reader");

    server.wait_for_stderr(&format!("* {slow_label} evicted: too slow"));
    evicted.store(true, Ordering::SeqCst);
    let sent = flood.join().expect("flooder");
    let received = check.join().expect("reader");
    assert_eq!(received, sent, "the reader got every line");

    // The slow peer's connection is gone: reading it ends (EOF or reset).
    slow.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut sink = vec![0; 1 << 20];
    let start = Instant::now();
    loop {
        match (&slow).read(&mut sink) {
            Ok(0) => break,
            Ok(_) => assert!(start.elapsed() < DEADLINE, "slow peer never closed"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("slow peer: {e}"),
        }
    }
    flooder.say("\n");
    flooder.rest_until_eof();
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn a_newcomer_over_max_peers_is_told_and_closed_and_the_room_goes_on() {
    let (mut server, addr) = room(&["--max-peers", "2"]);
    let mut a = Peer::join(&mut server, addr);
    let mut b = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", b.label));

    let mut c = Peer::connect(addr);
    assert_eq!(c.rest_until_eof(), "* room full (2 peers)\n");
    server.wait_for_stderr(&format!("* {} refused: room full (2 peers)", c.label));

    b.say("still here\n");
    // A never heard of C.
    assert_eq!(a.line(), format!("{} still here", b.label));
    server.close_stdin();
    a.rest_until_eof();
    b.rest_until_eof();
    server.assert_exit(0);
}

#[test]
fn a_line_over_64_kib_is_not_relayed_and_its_sender_is_told_and_closed() {
    let (mut server, addr) = room(&[]);
    let mut a = Peer::join(&mut server, addr);
    let mut b = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", b.label));
    b.say("short\n");
    let mut long = "x".repeat(64 * 1024 + 1);
    long.push('\n');
    b.say(&long);
    assert_eq!(a.line(), format!("{} short", b.label));
    assert_eq!(a.line(), format!("* {} left: line too long", b.label));
    assert_eq!(
        b.rest_until_eof(),
        "* line too long (over 65536 bytes): disconnected\n"
    );
    server.close_stdin();
    a.rest_until_eof();
    server.assert_exit(0);
}

#[test]
fn twenty_peers_two_hundred_lines_each_arrive_in_order_exactly_once() {
    const PEERS: usize = 20;
    const LINES: usize = 200;
    let (mut server, addr) = room(&["--max-peers", "20"]);
    let peers: Vec<Peer> = (0..PEERS).map(|_| Peer::join(&mut server, addr)).collect();
    let labels: Vec<String> = peers.iter().map(|p| p.label.clone()).collect();

    let threads: Vec<_> = peers
        .into_iter()
        .enumerate()
        .map(|(i, mut peer)| {
            let labels = labels.clone();
            thread::Builder::new()
                .name(format!("peer-{i}"))
                .spawn(move || {
                    let text: String = (0..LINES).map(|n| format!("p{i} line {n}\n")).collect();
                    peer.say(&text);
                    // Per sender, the next line number expected.
                    let mut next: HashMap<String, usize> = HashMap::new();
                    let mut got = 0;
                    while got < (PEERS - 1) * LINES {
                        let line = peer.chat_line();
                        let (label, body) = line.split_once(' ').expect("a labelled line");
                        assert_ne!(label, peer.label, "a peer never gets its own lines");
                        let j = labels
                            .iter()
                            .position(|l| l == label)
                            .unwrap_or_else(|| panic!("unknown label in {line:?}"));
                        let n = next.entry(label.to_owned()).or_default();
                        assert_eq!(body, format!("p{j} line {n}"), "order from {label}");
                        *n += 1;
                        got += 1;
                    }
                    assert!(next.values().all(|&n| n == LINES));
                    peer.say("\n");
                    // Whatever is left is notices, then a clean EOF.
                    let rest = peer.rest_until_eof();
                    assert!(
                        rest.lines().all(|l| l.starts_with("* ")),
                        "only notices after every line: {rest:?}"
                    );
                })
                .expect("spawn peer")
        })
        .collect();
    for thread in threads {
        thread.join().expect("a peer's checks failed");
    }

    // The server's stdout has every line once, in order per sender.
    let out = String::from_utf8(server.stdout()).expect("utf-8");
    let mut next = vec![0; PEERS];
    for line in out.lines() {
        let (label, body) = line.split_once(' ').expect("a labelled line");
        let j = labels.iter().position(|l| l == label).expect("known label");
        assert_eq!(body, format!("p{j} line {}", next[j]));
        next[j] += 1;
    }
    assert!(next.iter().all(|&n| n == LINES), "stdout: {next:?}");
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn ipv6_peers_are_labelled_in_brackets() {
    if !support::ipv6_loopback_available() {
        support::skip("needs IPv6 loopback");
        return;
    }
    let mut server = support::duplex()
        .args(["serve", "--room", "-b", "::1", "0"])
        .spawn();
    let addr = server.wait_for_listening();
    let mut a = Peer::join(&mut server, addr);
    let mut b = Peer::join(&mut server, addr);
    assert!(b.label.starts_with("[[::1]:"), "{}", b.label);
    assert_eq!(a.line(), format!("* {} joined", b.label));
    b.say("hi\n");
    assert_eq!(a.line(), format!("{} hi", b.label));
    server.close_stdin();
    a.rest_until_eof();
    b.rest_until_eof();
    server.assert_exit(0);
}

#[test]
fn room_with_raw_or_once_is_a_usage_error() {
    for args in [
        &["serve", "--room", "--raw", "0"][..],
        &["serve", "--room", "--once", "0"],
        &["serve", "--max-peers", "3", "0"],
    ] {
        let mut p = support::duplex().args(args).stdin_null().spawn();
        p.assert_exit(2);
    }
}

#[test]
fn nc_is_a_room_peer() {
    if !support::require_openbsd_nc() {
        return;
    }
    let (mut server, addr) = room(&[]);
    let mut a = Peer::join(&mut server, addr);
    let mut nc = support::program("nc")
        .args(["-N", &addr.ip().to_string(), &addr.port().to_string()])
        .spawn();
    let joined = a.line();
    let nc_label = joined
        .strip_prefix("* ")
        .and_then(|l| l.strip_suffix(" joined"))
        .unwrap_or_else(|| panic!("expected nc's join notice, got {joined:?}"))
        .to_owned();

    nc.write(b"from nc\n");
    assert_eq!(a.line(), format!("{nc_label} from nc"));
    a.say("to nc\n");
    nc.wait_for_stdout(format!("\n{} to nc\n", a.label).as_bytes());

    // nc -N half-closes at its EOF: a goodbye; it then gets a clean close
    // and exits.
    nc.close_stdin();
    assert_eq!(a.line(), format!("* {nc_label} left"));
    nc.assert_exit(0);
    let welcome = format!("* you are {nc_label}; here: [server], {}\n", a.label);
    nc.assert_stdout(format!("{welcome}{} to nc\n", a.label).as_bytes());

    server.close_stdin();
    a.rest_until_eof();
    server.assert_exit(0);
}

#[test]
fn a_peer_that_vanishes_leaves_and_the_room_goes_on() {
    let (mut server, addr) = room(&[]);
    let mut a = Peer::join(&mut server, addr);
    let b = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", b.label));
    // Closing with unread data makes the kernel send a reset: read one byte
    // of a line and drop the socket.
    server.write(b"unread by b\n");
    assert_eq!(a.line(), "[server] unread by b");
    let label = b.label.clone();
    let mut byte = [0u8; 1];
    (&b.writer).read_exact(&mut byte).expect("one byte");
    drop(b);
    let left = a.line();
    assert!(left.starts_with(&format!("* {label} left")), "{left:?}");
    let mut c = Peer::join(&mut server, addr);
    c.say("after\n");
    assert_eq!(a.line(), format!("* {} joined", c.label));
    assert_eq!(a.line(), format!("{} after", c.label));
    server.close_stdin();
    a.rest_until_eof();
    c.rest_until_eof();
    server.assert_exit(0);
}

/// The room's server said nothing of an eviction.
#[track_caller]
pub(crate) fn assert_nobody_evicted(server: &Proc) {
    let stderr = server.stderr();
    assert!(!stderr.contains("evicted"), "nobody was evicted: {stderr}");
}

/// Sends `lines` numbered lines of `width` bytes each (the number, zero
/// padded, and `\n`) from `peer` on a thread, in batches, then `tail`.
pub(crate) fn flood_numbered_lines(
    peer: &Peer,
    lines: usize,
    width: usize,
    tail: &'static [u8],
) -> thread::JoinHandle<()> {
    let mut writer = peer.writer.try_clone().expect("try_clone");
    thread::Builder::new()
        .name("flooder".into())
        .spawn(move || {
            let mut batch = Vec::new();
            for start in (0..lines).step_by(1000) {
                batch.clear();
                for n in start..(start + 1000).min(lines) {
                    let line = format!("{n:0w$}\n", w = width - 1);
                    batch.extend_from_slice(line.as_bytes());
                }
                writer.write_all(&batch).expect("flooder write");
            }
            writer.write_all(tail).expect("flooder write");
        })
        .expect("spawn flooder")
}

/// Joins a raw peer that never reads, then a reader and a flooder (the
/// reader has seen the flooder join). Returns the never-reader's socket and
/// label, the reader and the flooder.
pub(crate) fn never_reader_reader_flooder(
    server: &mut Proc,
    addr: SocketAddr,
) -> (TcpStream, String, Peer, Peer) {
    let slow = support::connect_raw(addr);
    let slow_label = format!("[{}]", slow.local_addr().expect("local_addr"));
    server.wait_for_stderr(&format!("* {slow_label} joined"));
    let mut reader = Peer::join(server, addr);
    let flooder = Peer::join(server, addr);
    assert_eq!(reader.line(), format!("* {} joined", flooder.label));
    (slow, slow_label, reader, flooder)
}

// ---- names and the welcome (issue 9)

#[test]
fn a_newcomer_is_told_its_label_and_who_is_here_in_join_order() {
    let (mut server, addr) = room(&["--linger", "0.5"]);
    let a = Peer::join(&mut server, addr);
    let mut b = Peer::connect(addr);
    assert_eq!(
        b.line(),
        format!("* you are {}; here: [server], {}", b.label, a.label)
    );
    let mut c = Peer::connect(addr);
    assert_eq!(
        c.line(),
        format!(
            "* you are {}; here: [server], {}, {}",
            c.label, a.label, b.label
        )
    );
    // Notices are never on the server's stdout.
    drop((a, b, c));
    server.close_stdin();
    server.assert_exit(0);
    server.assert_stdout(b"");
}

#[test]
fn a_name_labels_every_later_line_and_the_name_line_is_never_relayed() {
    let (mut server, addr) = room(&[]);
    let mut a = Peer::join(&mut server, addr);
    let mut b = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", b.label));

    a.say("before\n/name alice\nafter\n");
    assert_eq!(b.line(), format!("{} before", a.label));
    let renamed = format!("* {} is now [alice]", a.label);
    assert_eq!(b.line(), renamed);
    assert_eq!(b.line(), "[alice] after");
    // Alice is told too: that is how she knows it took.
    assert_eq!(a.line(), renamed);
    server.wait_for_stderr(&renamed);

    // A newcomer sees the name; the name is in notices about her.
    let mut c = Peer::connect(addr);
    assert_eq!(
        c.line(),
        format!(
            "* you are {}; here: [server], [alice], {}",
            c.label, b.label
        )
    );
    // A CRLF name line (telnet) is a name line too.
    c.say("/name carol\r\n");
    assert_eq!(a.line(), format!("* {} joined", c.label));
    assert_eq!(a.line(), format!("* {} is now [carol]", c.label));
    a.say("\n");
    assert_eq!(b.line(), format!("* {} joined", c.label));
    assert_eq!(b.line(), format!("* {} is now [carol]", c.label));
    assert_eq!(b.line(), "* [alice] left");
    a.rest_until_eof();

    server.close_stdin();
    b.rest_until_eof();
    c.rest_until_eof();
    server.assert_exit(0);
    server.assert_stdout(format!("{} before\n[alice] after\n", a.label).as_bytes());
}

#[test]
fn a_taken_or_invalid_name_is_told_to_that_peer_alone() {
    let (mut server, addr) = room(&["--linger", "0.5"]);
    let mut a = Peer::join(&mut server, addr);
    let mut b = Peer::join(&mut server, addr);
    assert_eq!(a.line(), format!("* {} joined", b.label));
    a.say("/name alice\n");
    assert_eq!(a.line(), format!("* {} is now [alice]", a.label));
    assert_eq!(b.line(), format!("* {} is now [alice]", a.label));

    let invalid = "* a name is 1 to 24 of A-Z a-z 0-9 _ - (and not server): name not changed";
    for (ask, told) in [
        ("/name ALICE\n", "* [ALICE] is taken: name not changed"),
        ("/name server\n", invalid),
        ("/name two words\n", invalid),
        ("/name \x1b[2J\n", invalid),
        ("/name\n", invalid),
        ("/name abcdefghijklmnopqrstuvwxy\n", invalid),
    ] {
        b.say(ask);
        assert_eq!(b.line(), told, "asking {ask:?}");
    }
    // A never heard of any of it: the next thing it gets is B's line, with
    // B's own label.
    b.say("still me\n");
    assert_eq!(a.line(), format!("{} still me", b.label));
    server.close_stdin();
    a.rest_until_eof();
    b.rest_until_eof();
    server.assert_exit(0);
    assert!(!server.stderr().contains("is taken"), "{}", server.stderr());
}

#[test]
fn duplex_connect_name_takes_the_name_first() {
    let (mut server, addr) = room(&["--linger", "0.5"]);
    let mut a = Peer::join(&mut server, addr);
    let mut client = support::connect(addr, &["--name", "bob", "--linger", "0.5"]);
    let renamed = server.wait_for_stderr(" is now [bob]");
    assert!(a.line().ends_with(" joined"));
    assert_eq!(a.line(), renamed);
    client.write(b"hello from bob\n");
    assert_eq!(a.line(), "[bob] hello from bob");
    a.say("hi bob\n");
    client.wait_for_stdout(format!("{} hi bob\n", a.label).as_bytes());
    client.close_stdin();
    assert_eq!(a.line(), "* [bob] left");
    client.assert_exit(0);
    let out = String::from_utf8(client.stdout()).expect("utf-8");
    let mut lines = out.lines();
    let welcome = lines.next().unwrap_or_default();
    assert!(
        welcome.starts_with("* you are [127.0.0.1:")
            && welcome.ends_with(&format!("; here: [server], {}", a.label)),
        "{out:?}"
    );
    assert_eq!(lines.next(), Some(renamed.as_str()));
    server.close_stdin();
    a.rest_until_eof();
    server.assert_exit(0);
}

#[test]
fn nc_peers_take_names_and_see_notices() {
    if !support::require_openbsd_nc() {
        return;
    }
    let (mut server, addr) = room(&["--linger", "0.5"]);
    let mut a = Peer::join(&mut server, addr);
    let mut nc = support::program("nc")
        .args(["-N", &addr.ip().to_string(), &addr.port().to_string()])
        .spawn();
    let joined = a.line();
    let nc_label = joined
        .strip_prefix("* ")
        .and_then(|l| l.strip_suffix(" joined"))
        .unwrap_or_else(|| panic!("expected nc's join notice, got {joined:?}"))
        .to_owned();
    nc.write(b"/name dave\nfrom dave\n");
    assert_eq!(a.line(), format!("* {nc_label} is now [dave]"));
    assert_eq!(a.line(), "[dave] from dave");
    a.say("/name erin\n");
    assert_eq!(a.line(), format!("* {} is now [erin]", a.label));
    a.say("to dave\n");
    nc.wait_for_stdout(b"[erin] to dave\n");
    nc.close_stdin();
    assert_eq!(a.line(), "* [dave] left");
    nc.assert_exit(0);
    let expected = format!(
        "* you are {nc_label}; here: [server], {a}\n* {nc_label} is now [dave]\n\
         * {a} is now [erin]\n[erin] to dave\n",
        a = a.label
    );
    nc.assert_stdout(expected.as_bytes());
    server.close_stdin();
    a.rest_until_eof();
    server.assert_exit(0);
}

#[test]
fn a_room_full_for_one_peer_says_one_peer() {
    let (mut server, addr) = room(&["--max-peers", "1", "--linger", "0.5"]);
    let a = Peer::join(&mut server, addr);
    let mut b = Peer::connect(addr);
    assert_eq!(b.rest_until_eof(), "* room full (1 peer)\n");
    server.wait_for_stderr(&format!("* {} refused: room full (1 peer)", b.label));
    drop(a);
    server.close_stdin();
    server.assert_exit(0);
}

// ---- a hostile world (issue 17)

/// User plus system CPU time of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name may hold spaces: fields count from after its `)`.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("(comm)") + 2..]
        .split_whitespace()
        .collect();
    let field = |i: usize| fields[i].parse::<u64>().expect("a number");
    field(11) + field(12)
}

#[test]
fn out_of_descriptors_the_room_backs_off_says_it_once_and_recovers() {
    // About 8 descriptors are the server's own: room for a dozen peers.
    let script = format!(
        "ulimit -n 20 && exec '{}' serve --room --linger 0.5 -b 127.0.0.1 0",
        env!("CARGO_BIN_EXE_duplex")
    );
    let mut server = support::program("sh").args(["-c", &script]).spawn();
    let addr = server.wait_for_listening();
    // Twenty peers: the kernel takes them all into the listen backlog, the
    // server can accept only some.
    let mut peers: Vec<Peer> = (0..20).map(|_| Peer::connect(addr)).collect();
    server.wait_for_stderr("not accepting newcomers for now");

    // No busy loop while it waits: a second of CPU time sampled.
    let before = cpu_ticks(server.pid());
    let start = Instant::now();
    thread::sleep(std::time::Duration::from_secs(1));
    let used = cpu_ticks(server.pid()) - before;
    let ticks = start.elapsed().as_secs_f64() * 100.0;
    assert!(
        (used as f64) < ticks * 0.1,
        "the server used {used} ticks of CPU in {ticks:.0} while out of descriptors"
    );

    // Those in the room leave, freeing descriptors: the newcomers waiting
    // are taken.
    let stderr = server.stderr();
    let (inside, waiting): (Vec<Peer>, Vec<Peer>) = peers
        .drain(..)
        .partition(|peer| stderr.contains(&format!("* {} joined", peer.label)));
    assert!(!inside.is_empty() && waiting.len() >= 2, "{stderr}");
    drop(inside);
    let mut waiting = waiting;
    for peer in &mut waiting {
        peer.welcomed();
    }
    server.wait_for_stderr("accepting newcomers again");
    let label = waiting[0].label.clone();
    waiting[0].say("made it\n");
    assert_eq!(waiting[1].chat_line(), format!("{label} made it"));
    peers = waiting;
    drop(peers);
    server.close_stdin();
    server.assert_exit(0);
    let said = server
        .stderr()
        .lines()
        .filter(|l| l.contains("open files"))
        .count();
    assert_eq!(said, 1, "one status line: {}", server.stderr());
}

#[test]
fn a_flooder_is_slowed_and_readers_that_keep_reading_are_never_evicted() {
    let (mut server, addr) = room(&["--linger", "0.5"]);
    // Readers that read as fast as they can: two plain sockets and a duplex
    // client whose stdout is read as fast as it comes.
    let mut readers: Vec<Peer> = (0..2).map(|_| Peer::join(&mut server, addr)).collect();
    let mut client = support::duplex()
        .args([
            "connect",
            "--recv-only",
            "--name",
            "third",
            "--linger",
            "0.5",
        ])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdout_manual()
        .spawn();
    let client_out = client.take_stdout();
    server.wait_for_stderr("is now [third]");
    let mut flooder = Peer::join(&mut server, addr);
    // The longest name: the longer the label, the more a flood is amplified.
    flooder.say("/name flooder-with-a-long-name\n");
    let renamed = format!("* {} is now [flooder-with-a-long-name]", flooder.label);
    assert_eq!(flooder.line(), renamed);
    flooder.label = "[flooder-with-a-long-name]".into();
    for reader in &mut readers {
        // Notices of the others joining, up to the flooder's name.
        loop {
            let told = reader.line();
            assert!(told.starts_with("* "), "{told:?}");
            if told == renamed {
                break;
            }
        }
    }

    // Two-byte lines, so the labels make the room's output about ten times
    // the flood: one letter or digit each, cycling, so that order shows.
    // 2.48 M lines, about 72 MB to each reader: twice the room's hard
    // bound per peer (4 × 8 MiB), so the hub must hold the flooder back.
    // At most two seconds, whichever comes first.
    const CYCLE: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const BATCH: usize = 62 * 1000;
    const MAX_LINES: usize = 40 * BATCH;
    let mut writer = flooder.writer.try_clone().expect("try_clone");
    let flood = thread::Builder::new()
        .name("flooder".into())
        .spawn(move || -> usize {
            let batch: Vec<u8> = (0..BATCH).flat_map(|n| [CYCLE[n % 62], b'\n']).collect();
            let start = Instant::now();
            let mut sent = 0;
            while sent < MAX_LINES && start.elapsed() < std::time::Duration::from_secs(2) {
                writer.write_all(&batch).expect("flooder write");
                sent += BATCH;
            }
            writer.write_all(b"done\n").expect("flooder write");
            sent
        })
        .expect("spawn flooder");

    // Each reader checks every line, in order, exactly once.
    let prefix = format!("{} ", flooder.label);
    let check = |mut source: Box<dyn Read + Send>, prefix: String, name: String| {
        thread::Builder::new()
            .name(name.clone())
            .spawn(move || -> usize {
                let mut expected = 0;
                let mut buf = vec![0; 1 << 16];
                let mut partial = Vec::new();
                loop {
                    let n = source
                        .read(&mut buf)
                        .unwrap_or_else(|e| panic!("{name}: {e} after {expected} lines"));
                    assert!(n > 0, "{name}: EOF after {expected} lines (evicted?)");
                    partial.extend_from_slice(&buf[..n]);
                    let mut start = 0;
                    while let Some(end) = memchr::memchr(b'\n', &partial[start..]) {
                        let line = &partial[start..start + end];
                        start += end + 1;
                        if line.starts_with(b"* ") {
                            assert!(
                                !line.ends_with(b"too slow"),
                                "{name}: {}",
                                String::from_utf8_lossy(line)
                            );
                            continue;
                        }
                        let body = line.strip_prefix(prefix.as_bytes()).unwrap_or_else(|| {
                            panic!("{name}: unexpected {}", String::from_utf8_lossy(line))
                        });
                        if body == b"done" {
                            return expected;
                        }
                        assert_eq!(
                            body,
                            [CYCLE[expected % 62]],
                            "{name}: lines in order, exactly once (line {expected})"
                        );
                        expected += 1;
                    }
                    partial.drain(..start);
                }
            })
            .expect("spawn reader")
    };
    let mut checks = Vec::new();
    for (i, reader) in readers.iter().enumerate() {
        let stream = reader.writer.try_clone().expect("try_clone");
        // What the BufReader already holds is only notices, read above.
        checks.push(check(
            Box::new(stream),
            prefix.clone(),
            format!("reader {i}"),
        ));
    }
    checks.push(check(
        Box::new(client_out),
        prefix.clone(),
        "duplex connect".into(),
    ));

    let sent = flood.join().expect("flooder");
    for check in checks {
        assert_eq!(check.join().expect("a reader's checks"), sent);
    }
    assert_nobody_evicted(&server);
    flooder.say("\n");
    flooder.rest_until_eof();
    server.close_stdin();
    for reader in &mut readers {
        reader.rest_until_eof();
    }
    client.assert_exit(0);
    server.assert_exit(0);
}
