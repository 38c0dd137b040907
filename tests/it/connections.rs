//! SPEC, "Connections": a peer that vanishes is noticed (`--keepalive`),
//! `-4`/`-6`, and `--allow`/`--deny`; and a lossy, rate-limited link still
//! carries chat and a 20 MiB transfer intact.
//!
//! Real faults need root: each such test builds its own network namespaces
//! (a veth pair between `A`, 10.99.0.1, and `B`, 10.99.0.2), drops packets
//! with nftables inside them, and deletes them on the way out, also when it
//! fails ([`Netns`]'s `Drop`). There is no `netem` on this kernel, so no
//! added delay: loss is nftables' `numgen random`, the rate limit is `tbf`.
//! Without root or `ip`/`nft` the tests skip loudly (and fail under
//! `DUPLEX_REQUIRE_PEERS=1`).

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use support::*;

/// `--keepalive` for the vanishing tests.
const KEEPALIVE: &str = "2";
/// How long a vanished peer may take to be noticed: the keepalive and a
/// margin for whole-second probe timers and a loaded machine.
const NOTICED_WITHIN: Duration = Duration::from_secs(2 + 6);
/// Bounds for every load: bytes and time.
const FEED_MAX: u64 = 1 << 30;
const FEED_TIME: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Namespaces

/// Runs `program args`, saying what failed.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("{program} stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Two network namespaces joined by a veth pair; deleted on drop.
struct Netns {
    a: String,
    b: String,
}

const A_IP: &str = "10.99.0.1";
const B_IP: &str = "10.99.0.2";

impl Netns {
    /// The pair, or `None` after a loud skip.
    fn pair() -> Option<Netns> {
        if !is_root() {
            skip("needs root for network namespaces");
            return None;
        }
        if !require_peer("ip") || !require_peer("nft") || !require_peer("tc") {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = std::process::id();
        let ns = Netns {
            a: format!("dpx{id}-{n}a"),
            b: format!("dpx{id}-{n}b"),
        };
        match ns.build() {
            Ok(()) => Some(ns),
            Err(reason) => {
                skip(&format!("could not build network namespaces: {reason}"));
                None
            }
        }
    }

    fn build(&self) -> Result<(), String> {
        let (a, b) = (self.a.as_str(), self.b.as_str());
        run("ip", &["netns", "add", a], None)?;
        run("ip", &["netns", "add", b], None)?;
        run(
            "ip",
            &[
                "link", "add", "name", "va", "netns", a, "type", "veth", "peer", "name", "vb",
                "netns", b,
            ],
            None,
        )?;
        for (ns, dev, ip) in [(a, "va", A_IP), (b, "vb", B_IP)] {
            run("ip", &["-n", ns, "link", "set", "lo", "up"], None)?;
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev],
                None,
            )?;
            run("ip", &["-n", ns, "link", "set", dev, "up"], None)?;
        }
        Ok(())
    }

    /// `duplex ARGS` inside `ns`.
    fn duplex(&self, ns: &str) -> Cmd {
        program("ip")
            .args(["netns", "exec", ns])
            .arg(env!("CARGO_BIN_EXE_duplex"))
    }

    /// Applies an nftables script inside `ns`.
    #[track_caller]
    fn nft(&self, ns: &str, script: &str) {
        if let Err(e) = run("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(script)) {
            panic!("{e}");
        }
    }

    /// From now on `ns` neither sends nor receives TCP: its host vanished.
    #[track_caller]
    fn vanish(&self, ns: &str) {
        self.nft(
            ns,
            "table inet dpxcut {
               chain in { type filter hook input priority 0; meta l4proto tcp drop; }
               chain out { type filter hook output priority 0; meta l4proto tcp drop; }
             }",
        );
    }

    /// `percent` % of the TCP packets arriving in `ns` are lost.
    #[track_caller]
    fn lose(&self, ns: &str, percent: u32) {
        self.nft(
            ns,
            &format!(
                "table inet dpxloss {{
                   chain in {{ type filter hook input priority 0;
                     meta l4proto tcp numgen random mod 100 < {percent} counter drop; }}
                 }}"
            ),
        );
    }

    /// How many packets [`Netns::lose`] has dropped in `ns`.
    #[track_caller]
    fn lost(&self, ns: &str) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns", "exec", ns, "nft", "list", "table", "inet", "dpxloss",
            ])
            .output()
            .expect("run nft");
        let text = String::from_utf8_lossy(&out.stdout);
        let count = text
            .split_whitespace()
            .skip_while(|word| *word != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok());
        count.unwrap_or_else(|| panic!("no packet counter in {text}"))
    }

    /// What leaves `ns` by `dev` goes at most `rate` (tc's units).
    #[track_caller]
    fn limit(&self, ns: &str, dev: &str, rate: &str) {
        let args = [
            "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "256kbit",
            "latency", "200ms",
        ];
        if let Err(e) = run("tc", &args, None) {
            panic!("{e}");
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace also deletes its end of the veth pair.
        for ns in [&self.a, &self.b] {
            if let Err(e) = run("ip", &["netns", "del", ns], None) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Bounded loads

/// Writes `len` bytes of `seed`'s noise (or, with `None`, as much as it
/// can until `FEED_MAX`) into `pipe`, for at most `FEED_TIME`; then closes
/// it. Returns the FNV-1a hash and count of what was written.
fn feed(
    mut pipe: impl Write + Send + 'static,
    len: Option<u64>,
    seed: u64,
) -> thread::JoinHandle<(u64, u64)> {
    thread::spawn(move || {
        let chunk = noise_without_newline(64 * 1024, seed);
        let limit = len.unwrap_or(FEED_MAX);
        let start = Instant::now();
        let (mut sent, mut hash) = (0u64, Fnv::new());
        while sent < limit && start.elapsed() < FEED_TIME {
            let n = chunk.len().min((limit - sent) as usize);
            if pipe.write_all(&chunk[..n]).is_err() {
                break;
            }
            hash.add(&chunk[..n]);
            sent += n as u64;
        }
        (hash.0, sent)
    })
}

/// Reads `pipe` to its end, counting into `count`; returns the hash.
fn drain(mut pipe: impl Read + Send + 'static, count: Arc<AtomicU64>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut hash = Fnv::new();
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            hash.add(&buf[..n]);
            count.fetch_add(n as u64, Ordering::SeqCst);
        }
        hash.0
    })
}

/// FNV-1a, fed piece by piece (the same value as `support::fnv1a`).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Polls until `count` reaches `n`, under the deadline.
#[track_caller]
fn wait_count(count: &AtomicU64, n: u64) {
    let deadline = Instant::now() + DEADLINE;
    while count.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} bytes arrived within {DEADLINE:?}",
            count.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `p` to end because its peer vanished: exit 1, "peer
/// vanished" on stderr, within [`NOTICED_WITHIN`] of `since`. Returns how
/// long it took.
#[track_caller]
fn assert_vanished(p: &mut Proc, since: Instant, who: &str) -> Duration {
    let left = NOTICED_WITHIN.saturating_sub(since.elapsed());
    p.wait_exit(left);
    let took = since.elapsed();
    p.assert_exit(1);
    assert!(
        p.stderr().contains("peer vanished"),
        "{who}: no `peer vanished` line:\n{}",
        p.stderr()
    );
    // Straight to fd 2: the figures the README quotes.
    let _ = writeln!(std::io::stderr(), "FIGURE: {who} noticed after {took:.2?}");
    took
}

// ---------------------------------------------------------------------------
// A peer that vanishes

#[test]
fn an_idle_peer_that_vanishes_is_noticed_on_both_sides() {
    let Some(ns) = Netns::pair() else { return };
    let mut server = ns
        .duplex(&ns.a)
        .args(["serve", "--once", "--keepalive", KEEPALIVE, "-b", A_IP, "0"])
        .spawn();
    let port = server.wait_for_listening().port().to_string();
    let mut client = ns
        .duplex(&ns.b)
        .args(["connect", "--keepalive", KEEPALIVE, A_IP, &port])
        .spawn();
    client.write(b"hello\n");
    server.wait_for_stdout(b"hello\n");
    server.write(b"hi\n");
    client.wait_for_stdout(b"hi\n");

    ns.vanish(&ns.b);
    let cut = Instant::now();
    assert_vanished(&mut server, cut, "idle: server");
    assert_vanished(&mut client, cut, "idle: client");
}

#[test]
fn a_server_takes_the_next_peer_and_a_room_drops_the_vanished_one() {
    let Some(ns) = Netns::pair() else { return };
    for room in [false, true] {
        let mode = if room { "--room" } else { "--linger=1" };
        let mut server = ns
            .duplex(&ns.a)
            .args(["serve", mode, "--keepalive", KEEPALIVE, "-b", A_IP, "0"])
            .spawn();
        let port = server.wait_for_listening().port().to_string();
        let peer = |side: &str| {
            ns.duplex(side)
                .args(["connect", "--linger=1", "--keepalive", "0", A_IP, &port])
                .spawn()
        };
        // The one that vanishes has no keepalive of its own: only the
        // server's notices it.
        let mut gone = peer(&ns.b);
        gone.write(b"hello\n");
        server.wait_for_stdout(b"hello\n");
        ns.vanish(&ns.b);
        let cut = Instant::now();
        let line = server.wait_for_stderr("peer vanished");
        let took = cut.elapsed();
        assert!(took < NOTICED_WITHIN, "noticed only after {took:?}");
        if room {
            assert!(
                line.starts_with("* [10.99.0.2:") && line.contains("left"),
                "{line}"
            );
        }
        server.assert_running();
        // The next peer, from the server's own namespace, is served.
        let mut next = peer(&ns.a);
        next.write(b"next\n");
        server.wait_for_stdout(b"next\n");
        server.close_stdin();
        next.close_stdin();
        next.assert_exit(0);
        server.assert_exit(0);
        gone.kill();
        ns.nft(&ns.b, "delete table inet dpxcut");
    }
}

#[test]
fn a_peer_that_vanishes_mid_transfer_is_noticed_by_its_sender() {
    let Some(ns) = Netns::pair() else { return };
    let mut server = ns
        .duplex(&ns.a)
        .args(["serve", "--once", "--raw", "--keepalive", KEEPALIVE])
        .args(["-b", A_IP, "0"])
        .stdin_null()
        .stdout_manual()
        .spawn();
    let port = server.wait_for_listening().port().to_string();
    let received = Arc::new(AtomicU64::new(0));
    let drained = drain(server.take_stdout(), Arc::clone(&received));
    let mut client = ns
        .duplex(&ns.b)
        .args(["connect", "--raw", "--keepalive", KEEPALIVE, A_IP, &port])
        .spawn();
    let fed = feed(client.take_stdin(), None, 7);
    // A transfer in flight: data keeps coming, and more is queued behind it.
    wait_count(&received, 4 << 20);

    ns.vanish(&ns.a);
    let cut = Instant::now();
    // The client has data the server never acknowledges: the user timeout.
    assert_vanished(&mut client, cut, "in flight: sender");
    assert_vanished(&mut server, cut, "in flight: receiver");
    let (_, sent) = fed.join().expect("feeder");
    let _ = drained.join();
    assert!(sent < FEED_MAX, "the feeder was never held up");
}

#[test]
fn a_stopped_peer_that_stops_reading_is_noticed_by_its_sender() {
    // A SIGSTOPped process's kernel still acknowledges and answers
    // keepalive probes, so an idle stopped peer is (rightly) not vanished;
    // what is noticed is data it never takes: its receive window stays
    // shut for the whole keepalive, and the user timeout ends it.
    let (mut server, addr) = serve(&["--once", "--raw", "--keepalive", KEEPALIVE]);
    let mut client = connect(addr, &["--raw", "--keepalive", KEEPALIVE]);
    client.close_stdin();
    let fed = feed(server.take_stdin(), None, 9);
    client.wait_for_stdout_len(1 << 20);
    client.signal("STOP");
    let stopped = Instant::now();
    // The window fills first (loopback buffers are a few MiB), then the
    // zero-window probes go unanswered-in-effect for the keepalive.
    assert_vanished(&mut server, stopped, "stopped reader: sender");
    client.signal("CONT");
    client.kill();
    let (_, sent) = fed.join().expect("feeder");
    assert!(sent < FEED_MAX, "the feeder was never held up");
}

#[test]
fn an_idle_stopped_peer_is_not_taken_for_vanished() {
    let (mut server, addr) = serve(&["--once", "--keepalive", "1"]);
    let mut client = connect(addr, &["--keepalive", "1"]);
    client.write(b"hello\n");
    server.wait_for_stdout(b"hello\n");
    client.signal("STOP");
    // The point of this test is time passing: four keepalive periods, in
    // which its kernel answers every probe.
    thread::sleep(Duration::from_secs(4));
    client.signal("CONT");
    server.assert_running();
    server.write(b"still here\n");
    client.wait_for_stdout(b"still here\n");
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
}

#[test]
fn keepalive_zero_turns_it_off_and_nonsense_is_a_usage_error() {
    let (mut server, addr) = serve(&["--once", "--keepalive", "0"]);
    let mut client = connect(addr, &["--keepalive", "0.5"]);
    client.write(b"hello\n");
    server.wait_for_stdout(b"hello\n");
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
    let mut bad = duplex()
        .args(["connect", "--keepalive", "soon", "127.0.0.1", "1"])
        .spawn();
    bad.assert_exit(2);
}

// ---------------------------------------------------------------------------
// A lossy, slow link

/// The link between the namespaces loses 5 % of TCP packets each way, and
/// A sends at most 100 Mbit/s.
fn lossy_link() -> Option<Netns> {
    let ns = Netns::pair()?;
    ns.lose(&ns.a, 5);
    ns.lose(&ns.b, 5);
    ns.limit(&ns.a, "va", "100mbit");
    ns.limit(&ns.b, "vb", "100mbit");
    Some(ns)
}

#[test]
fn chat_crosses_a_lossy_link_intact() {
    let Some(ns) = lossy_link() else { return };
    let mut server = ns
        .duplex(&ns.a)
        .args(["serve", "--once", "--linger", "1", "-b", A_IP, "0"])
        .spawn();
    let port = server.wait_for_listening().port().to_string();
    let mut client = ns
        .duplex(&ns.b)
        .args(["connect", "--linger", "1", A_IP, &port])
        .spawn();
    let lines = |who: &str| -> Vec<u8> {
        (0..200)
            .flat_map(|i| format!("{who} line {i} of 200\n").into_bytes())
            .collect()
    };
    let (from_server, from_client) = (lines("server"), lines("client"));
    server.write(&from_server);
    client.write(&from_client);
    server.wait_for_stdout(b"client line 199 of 200\n");
    client.wait_for_stdout(b"server line 199 of 200\n");
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
    server.assert_stdout(&from_client);
    client.assert_stdout(&from_server);
}

#[test]
fn twenty_mebibytes_cross_a_lossy_slow_link_intact() {
    let Some(ns) = lossy_link() else { return };
    const LEN: u64 = 20 << 20;
    let mut server = ns
        .duplex(&ns.a)
        .args(["serve", "--once", "--raw", "-b", A_IP, "0"])
        .stdin_null()
        .stdout_manual()
        .spawn();
    let port = server.wait_for_listening().port().to_string();
    let received = Arc::new(AtomicU64::new(0));
    let drained = drain(server.take_stdout(), Arc::clone(&received));
    let start = Instant::now();
    let mut client = ns
        .duplex(&ns.b)
        .args(["connect", "--raw", A_IP, &port])
        .stdout_manual()
        .spawn();
    let fed = feed(client.take_stdin(), Some(LEN), 11);
    let sink = drain(client.take_stdout(), Arc::new(AtomicU64::new(0)));
    let limit = Duration::from_secs(90);
    server.wait_exit(limit);
    let took = start.elapsed();
    client.wait_exit(DEADLINE);
    server.assert_exit(0);
    client.assert_exit(0);
    let (sent_hash, sent) = fed.join().expect("feeder");
    let got_hash = drained.join().expect("drain");
    let _ = sink.join();
    assert_eq!(sent, LEN);
    assert_eq!(received.load(Ordering::SeqCst), LEN);
    assert_eq!(got_hash, sent_hash, "the bytes differ");
    let lost = (ns.lost(&ns.a), ns.lost(&ns.b));
    assert!(lost.0 > 0 && lost.1 > 0, "no packet was lost: {lost:?}");
    let _ = writeln!(
        std::io::stderr(),
        "FIGURE: 20 MiB over 5 % loss each way and 100 Mbit/s: {took:.2?} \
         ({} packets lost on the way in, {} on the way back)",
        lost.0,
        lost.1
    );
}

// ---------------------------------------------------------------------------
// -4 / -6

/// A hosts file where `localhost` is both 127.0.0.1 and ::1 (this machine's
/// has only the first), bind-mounted over /etc/hosts in a private mount
/// namespace for the one process; deleted on drop.
struct Hosts(std::path::PathBuf);

impl Hosts {
    fn both() -> Option<Hosts> {
        if !is_root() {
            skip("needs root to give localhost both addresses (unshare -m)");
            return None;
        }
        if !require_peer("unshare") || !ipv6_loopback_available() {
            if !ipv6_loopback_available() {
                skip("needs IPv6 loopback");
            }
            return None;
        }
        let path = std::env::temp_dir().join(format!("duplex-hosts-{}", std::process::id()));
        std::fs::write(&path, "127.0.0.1 localhost\n::1 localhost\n").ok()?;
        Some(Hosts(path))
    }

    /// `duplex ARGS` seeing this hosts file.
    fn duplex(&self) -> Cmd {
        program("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
            .arg(&self.0)
            .arg(env!("CARGO_BIN_EXE_duplex"))
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn families_choose_localhost_s_address() {
    let Some(hosts) = Hosts::both() else { return };
    let mut v6 = hosts
        .duplex()
        .args(["serve", "--once", "-6", "-b", "localhost", "0"])
        .spawn();
    let at6 = v6.wait_for_listening();
    assert!(at6.is_ipv6(), "{at6}");
    let mut v4 = hosts
        .duplex()
        .args(["serve", "--once", "-4", "-b", "localhost", "0"])
        .spawn();
    let at4 = v4.wait_for_listening();
    assert!(at4.is_ipv4(), "{at4}");

    // Only the IPv6 server has this port on ::1: -4 must not find it.
    let mut wrong = hosts
        .duplex()
        .args(["connect", "-4", "localhost", &at6.port().to_string()])
        .stdin_null()
        .spawn();
    wrong.assert_exit(1);
    wrong.assert_stderr_contains("connection refused");
    assert!(!wrong.stderr().contains("::1"), "{}", wrong.stderr());

    for (server, at, flag) in [(&mut v6, at6, "-6"), (&mut v4, at4, "-4")] {
        let mut client = hosts
            .duplex()
            .args(["connect", flag, "localhost", &at.port().to_string()])
            .spawn();
        client.wait_for_stderr(&format!("connected to {at}"));
        client.write(b"hello\n");
        server.wait_for_stdout(b"hello\n");
        client.close_stdin();
        client.assert_exit(0);
        server.assert_exit(0);
    }
}

#[test]
fn dash_six_on_the_ipv6_wildcard_takes_no_ipv4_peers() {
    if !ipv6_loopback_available() {
        skip("needs IPv6 loopback");
        return;
    }
    let mut only6 = duplex().args(["serve", "-6", "-b", "::", "0"]).spawn();
    let port = only6.wait_for_listening().port();
    let refused = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), DEADLINE);
    assert!(refused.is_err(), "an IPv4 peer reached a -6 server");
    // Without -6, the IPv6 wildcard serves both families, as before.
    let mut both = duplex().args(["serve", "--once", "-b", "::", "0"]).spawn();
    let port = both.wait_for_listening().port();
    let mut peer = connect_raw(SocketAddr::from(([127, 0, 0, 1], port)));
    send_raw(&mut peer, b"hello\n\n");
    both.wait_for_stdout(b"hello\n");
    both.close_stdin();
    // Its goodbye heard, the server half-closes; close ours then, rather
    // than have it sit out its 5 s --linger waiting for our EOF.
    expect_eof_after(&mut peer, b"");
    drop(peer);
    both.assert_exit(0);
    only6.kill();
}

#[test]
fn dash_four_and_dash_six_together_are_a_usage_error() {
    duplex()
        .args(["serve", "-4", "-6", "0"])
        .spawn()
        .assert_exit(2);
}

// ---------------------------------------------------------------------------
// --allow / --deny

/// A raw peer connecting from `from` (a loopback alias) to `to`.
#[track_caller]
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let from = SocketAddr::new(from.parse().expect("a source address"), 0);
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None).expect("socket");
    socket.bind(&from.into()).expect("bind the source address");
    socket
        .connect_timeout(&to.into(), DEADLINE)
        .unwrap_or_else(|e| panic!("connect {from} -> {to}: {e}"));
    let stream: TcpStream = socket.into();
    prepare_raw(&stream);
    stream
}

/// `from` is closed at once without a byte, and the server says so.
#[track_caller]
fn assert_refused(server: &mut Proc, from: &str, to: SocketAddr) {
    let mut peer = connect_from(from, to);
    let local = peer.local_addr().expect("local address");
    expect_eof_after(&mut peer, b"");
    let line = server.wait_for_stderr("(not allowed)");
    assert!(
        line.contains("refused ") && line.contains(&local.port().to_string()),
        "{line:?} is not about {local}"
    );
    assert!(line.contains(from), "{line:?} does not name {from}");
}

/// `from` is served: its line arrives and the server, `--once`, ends.
#[track_caller]
fn assert_served_once(mut server: Proc, from: &str, to: SocketAddr) {
    let mut peer = connect_from(from, to);
    send_raw(&mut peer, b"let me in\n\n");
    server.wait_for_stdout(b"let me in\n");
    server.close_stdin();
    expect_eof_after(&mut peer, b"");
    drop(peer);
    server.assert_exit(0);
    assert_eq!(
        server.stderr().matches("connection from").count(),
        1,
        "a refused peer counted as a conversation:\n{}",
        server.stderr()
    );
}

#[test]
fn allow_admits_only_its_networks_and_refused_peers_do_not_count() {
    let (mut server, addr) = serve(&["--once", "--allow", "127.0.0.2/32"]);
    assert_refused(&mut server, "127.0.0.3", addr);
    assert_refused(&mut server, "127.0.0.1", addr);
    server.assert_running();
    assert_served_once(server, "127.0.0.2", addr);
}

#[test]
fn deny_wins_and_mapped_ipv4_peers_meet_the_ipv4_rules() {
    if !ipv6_loopback_available() {
        skip("needs IPv6 loopback");
        return;
    }
    // An IPv6 socket on the mapped loopback address: IPv4 peers arrive as
    // ::ffff:127.0.0.x, and must still meet the IPv4 rules.
    let mut server = duplex()
        .args(["serve", "--once", "-b", "::ffff:127.0.0.1"])
        .args(["--allow", "127.0.0.0/8", "--deny", "127.0.0.3", "0"])
        .spawn();
    let port = server.wait_for_listening().port();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    assert_refused(&mut server, "127.0.0.3", to);
    assert!(server.stderr().contains("::ffff:127.0.0.3"));
    assert_served_once(server, "127.0.0.2", to);
}

#[test]
fn ipv6_peers_meet_the_ipv6_rules() {
    if !ipv6_loopback_available() {
        skip("needs IPv6 loopback");
        return;
    }
    let mut server = duplex()
        .args([
            "serve",
            "--once",
            "-b",
            "::1",
            "--allow",
            "127.0.0.0/8",
            "0",
        ])
        .spawn();
    let addr = server.wait_for_listening();
    assert_refused(&mut server, "::1", addr);
    server.kill();
    let mut server = duplex()
        .args(["serve", "--once", "-b", "::1", "--allow", "::1/128", "0"])
        .spawn();
    let addr = server.wait_for_listening();
    assert_served_once(server, "::1", addr);
}

#[test]
fn a_room_refuses_denied_peers_before_they_join() {
    let (mut room, addr) = serve(&["--room", "--linger", "0.2", "--deny", "127.0.0.3"]);
    assert_refused(&mut room, "127.0.0.3", addr);
    let peer = connect_from("127.0.0.2", addr);
    let joined = room.wait_for_stderr("] joined");
    assert!(joined.contains("[127.0.0.2:"), "{joined}");
    assert!(!room.stderr().contains("[127.0.0.3:"), "{}", room.stderr());
    drop(peer);
    room.close_stdin();
    room.assert_exit(0);
}
