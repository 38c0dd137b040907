//! The tests whose premise is timing: a bound of a second or so on an
//! exit, or a reader that must not look stalled for SPEC's grace period.
//! On two cores shared with the rest of the suite, the tests next door
//! could stretch those, so each holds [`load::alone`]: they run beside
//! one another, light as they are, and beside no other test's children.
//!
//! libtest starts tests in name order and this module's name sorts first:
//! they run at the start, before anything long is running that they
//! would have to wait for, while every other test waited with them. Each
//! belongs to a SPEC section, which its name begins with.

use std::io::{BufRead, Read};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use crate::room::{
    Peer, assert_nobody_evicted, flood_numbered_lines, never_reader_reader_flooder, room,
};
use crate::support::{self, accept_raw, duplex, flood_until_closed, load};

/// `duplex connect HOST PORT | head -c 100` while the peer keeps sending:
/// exit 0 within a second, whatever `--linger` says (issue 8).
#[test]
fn chat_closed_stdout_exits_within_a_second_under_a_flood() {
    let _alone = load::alone();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut client = duplex()
        .args(["connect", "127.0.0.1", &addr.port().to_string()])
        .stdout_manual()
        .spawn();
    let peer = accept_raw(&listener);
    let flood = flood_until_closed(peer);
    let mut out = client.take_stdout();
    let mut first = [0u8; 100];
    out.read_exact(&mut first).expect("100 bytes of stdout");
    drop(out);
    let closed = Instant::now();
    client.wait_exit(Duration::from_secs(3));
    let took = closed.elapsed();
    client.assert_exit(0);
    client.assert_no_error_line();
    assert!(
        took < Duration::from_millis(1500),
        "exit took {took:?} after stdout closed"
    );
    assert!(
        flood.join().expect("flood"),
        "the client never closed the connection"
    );
}

#[test]
fn room_a_peer_that_never_reads_is_evicted_even_once_the_room_falls_silent() {
    let _alone = load::alone();
    // A flood of a fixed size (well over the soft bound, under the hard
    // one), then silence: the stalled peer must still go, by the hub's own
    // timer, while the reader gets everything.
    let (mut server, addr) = room(&[]);
    let (slow, slow_label, mut reader, mut flooder) =
        never_reader_reader_flooder(&mut server, addr);

    const LINE: usize = 100;
    const LINES: usize = 160_000; // 16 MB
    let flood = flood_numbered_lines(&flooder, LINES, LINE, b"");
    let prefix = format!("{} ", flooder.label);
    let evicted = format!("* {slow_label} evicted: too slow");
    // On a loaded machine the eviction may already come during the flood:
    // the reader is told once, wherever it falls.
    let mut told = 0;
    let mut expected = 0;
    while expected < LINES {
        let line = reader.line();
        if line == evicted {
            told += 1;
            continue;
        }
        assert_eq!(
            line,
            format!("{prefix}{expected:0width$}", width = LINE - 1)
        );
        expected += 1;
    }
    flood.join().expect("flooder");
    // Nothing more is said; the eviction still comes.
    server.wait_for_stderr(&evicted);
    if told == 0 {
        assert_eq!(reader.line(), evicted);
    } else {
        assert_eq!(told, 1, "the reader was told of the eviction {told} times");
    }
    drop(slow);
    flooder.say("\n");
    flooder.rest_until_eof();
    server.close_stdin();
    reader.rest_until_eof();
    server.assert_exit(0);
}

#[test]
fn room_a_peer_that_reads_slowly_is_kept_and_gets_everything_in_order() {
    // Alone: on two loaded cores, tests next door can starve this reader
    // until it looks stalled (it was evicted once at eight test threads).
    let _alone = load::alone();
    // A peer that reads, just slower than a flood arrives, falls far behind
    // (its queue goes well over the soft bound, 8 MiB) but keeps making
    // progress: it must stay and get every line, in order.
    let (mut server, addr) = room(&[]);
    let mut slow = Peer::join(&mut server, addr);
    let mut flooder = Peer::join(&mut server, addr);
    assert_eq!(slow.line(), format!("* {} joined", flooder.label));

    const LINE: usize = 100;
    const LINES: usize = 200_000; // 20 MB
    let flood = flood_numbered_lines(&flooder, LINES, LINE, b"done\n");

    // At most 8 KiB per read, with a pause after each: at most 8 MB/s, far
    // slower than the flood, never stopped.
    let prefix = format!("{} ", flooder.label);
    let mut expected = 0;
    let mut partial = Vec::new();
    'reading: loop {
        let piece = slow
            .reader
            .fill_buf()
            .unwrap_or_else(|e| panic!("slow reader: {e} after {expected} lines"));
        assert!(
            !piece.is_empty(),
            "slow reader: EOF after {expected} lines (evicted?)"
        );
        let n = piece.len().min(8192);
        partial.extend_from_slice(&piece[..n]);
        slow.reader.consume(n);
        let mut start = 0;
        while let Some(end) = partial[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&partial[start..start + end]).into_owned();
            start += end + 1;
            assert!(!line.starts_with("* "), "slow reader was told {line:?}");
            let body = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("unexpected line {line:?}"));
            if body == "done" {
                break 'reading;
            }
            let n: usize = body.parse().expect("a number");
            assert_eq!(n, expected, "lines arrive in order, exactly once");
            expected += 1;
        }
        partial.drain(..start);
        // Pacing the reader, not waiting for anything.
        thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(expected, LINES, "the slow reader got every line");
    flood.join().expect("flooder");
    assert_nobody_evicted(&server);

    // Still in the room: it hears the flooder leave, then the room's end.
    flooder.say("\n");
    flooder.rest_until_eof();
    assert_eq!(slow.line(), format!("* {} left", flooder.label));
    server.close_stdin();
    assert_eq!(slow.rest_until_eof(), "* room closing\n\n");
    server.assert_exit(0);
}

#[test]
fn room_an_evicted_peer_gets_its_notice_last_at_a_line_boundary() {
    let _alone = load::alone();
    // The server waits up to --linger for the evicted peer to take its
    // notice; the peer below starts reading the moment it is evicted.
    let (mut server, addr) = room(&["--linger", "2"]);
    let (slow, slow_label, reader, mut flooder) = never_reader_reader_flooder(&mut server, addr);
    const LINE: usize = 100;
    const LINES: usize = 160_000; // 16 MB: over the soft bound
    let flood = flood_numbered_lines(&flooder, LINES, LINE, b"");
    let prefix = format!("{} ", flooder.label);
    // The reader keeps up on a thread of its own: on a loaded machine the
    // eviction can come long before the flood ends.
    let reading = thread::spawn(move || {
        let mut reader = reader;
        for _ in 0..LINES {
            reader.chat_line();
        }
        reader
    });
    server.wait_for_stderr(&format!("* {slow_label} evicted: too slow"));

    // It reads at last: whole lines, then why it was closed, then EOF.
    let mut slow = slow;
    let got = support::read_to_eof(&mut slow)
        .unwrap_or_else(|(e, got)| panic!("{e} after {} bytes instead of EOF", got.len()));
    let mut reader = reading.join().expect("the reader");
    flood.join().expect("flooder");
    let text = String::from_utf8(got).expect("utf-8");
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.pop(),
        Some("* evicted: too slow"),
        "the notice is last"
    );
    assert!(text.ends_with('\n'));
    for line in lines {
        assert!(
            line.starts_with("* ")
                || (line.starts_with(&prefix) && line.len() == prefix.len() + LINE - 1),
            "a whole line: {line:?}"
        );
    }
    flooder.say("\n");
    flooder.rest_until_eof();
    server.close_stdin();
    reader.rest_until_eof();
    server.assert_exit(0);
}
