//! Raw TCP peers (plain `std::net::TcpStream`s with the harness's
//! deadlines), ports, and floods and slow readers for back-pressure tests.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ChildStdout;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{DEADLINE, POLL, contains, show};

/// Connect a raw TCP peer with read/write timeouts.
#[track_caller]
pub fn connect_raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, DEADLINE)
        .unwrap_or_else(|e| panic!("raw peer could not connect to {addr}: {e}"));
    prepare_raw(&s);
    s
}

/// Set the deadlines on a raw peer socket.
pub fn prepare_raw(s: &TcpStream) {
    s.set_read_timeout(Some(DEADLINE))
        .expect("set_read_timeout");
    s.set_write_timeout(Some(DEADLINE))
        .expect("set_write_timeout");
}

/// Accept one connection on `listener` under the deadline.
#[track_caller]
pub fn accept_raw(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).expect("set_nonblocking");
    let deadline = Instant::now() + DEADLINE;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("set_nonblocking(false)");
                prepare_raw(&s);
                return s;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no connection within {DEADLINE:?}"
                );
                thread::sleep(POLL);
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Read until EOF (`Ok(0)`), under the deadline. An error (e.g. a reset) is
/// returned as `Err` together with what was read before it.
pub fn read_to_eof(s: &mut TcpStream) -> Result<Vec<u8>, (io::Error, Vec<u8>)> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if Instant::now() >= deadline {
            return Err((io::Error::new(io::ErrorKind::TimedOut, "deadline"), got));
        }
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, got)),
        }
    }
}

/// Read until EOF and expect exactly `expected`, ending in a clean EOF.
#[track_caller]
pub fn expect_eof_after(s: &mut TcpStream, expected: &[u8]) {
    match read_to_eof(s) {
        Ok(got) => assert_eq!(
            got,
            expected,
            "raw peer read {} then EOF, expected {}",
            show(&got),
            show(expected)
        ),
        Err((e, got)) => panic!(
            "raw peer read {} then got an error instead of a clean EOF: {e} ({:?})",
            show(&got),
            e.kind()
        ),
    }
}

/// Read until what was read contains `needle` (no EOF expected).
#[track_caller]
pub fn read_until(s: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !contains(&got, needle) {
        assert!(
            Instant::now() < deadline,
            "raw peer: timed out waiting for {}, got {}",
            show(needle),
            show(&got)
        );
        match s.read(&mut buf) {
            Ok(0) => panic!(
                "raw peer: EOF while waiting for {}, got {}",
                show(needle),
                show(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "raw peer: {e} while waiting for {}, got {}",
                show(needle),
                show(&got)
            ),
        }
    }
    got
}

/// Floods `peer` with lines on a thread until a write fails (the other side
/// closed the connection: returns true) or the deadline passes (false).
pub fn flood_until_closed(mut peer: TcpStream) -> thread::JoinHandle<bool> {
    thread::spawn(move || {
        let deadline = Instant::now() + DEADLINE;
        let chunk = b"more and more lines\n".repeat(100);
        while Instant::now() < deadline {
            if peer.write_all(&chunk).is_err() {
                return true;
            }
        }
        false
    })
}

/// Reads a little of a child's stdout, then closes it, as `| head -c 64` would.
pub fn read_a_little_then_close(mut out: ChildStdout) {
    let mut first = [0u8; 64];
    let n = out.read(&mut first).expect("read the child's stdout");
    assert!(n > 0, "stdout ended before any data");
}

/// Write all bytes on a raw peer.
#[track_caller]
pub fn send_raw(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes)
        .unwrap_or_else(|e| panic!("raw peer: writing {}: {e}", show(bytes)));
}

/// A free port for a peer that cannot report the port it bound (socat,
/// ncat, `openssl s_server`), which it binds a moment later.
///
/// Not one the kernel hands out for port 0: between our check and the
/// peer's bind, another test's server (port 0) or client (its local port)
/// could take that one, and the peer would fail to bind while the test
/// talked to the other test's server. So it comes from below the kernel's
/// ephemeral range, a different one at each call, and is checked free.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Linux's range starts at 32768 unless configured otherwise.
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, u32::from(ephemeral.max(20_000)));
    // Where this process starts, so that two runs at once rarely meet.
    let start = std::process::id() % (high - low);
    for _ in 0..1000 {
        let next = NEXT.fetch_add(1, Ordering::Relaxed);
        let Ok(port) = u16::try_from(low + (start + next) % (high - low)) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {low} and {high}");
}

/// Poll `/proc/net/tcp{,6}` until something LISTENs on `port`, rather than
/// probing with a connection (some peers take a probe as their one
/// conversation).
#[track_caller]
pub fn wait_tcp_listen(port: u16) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 4 || f[3] != "0A" {
                    continue;
                }
                let local_port = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                if local_port == Some(port) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing listening on port {port} within {DEADLINE:?}"
        );
        thread::sleep(POLL);
    }
}

/// Can this host bind the IPv6 loopback address?
pub fn ipv6_loopback_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// A raw peer whose receive buffer is small (`SO_RCVBUF` set before
/// connecting, so the window stays small): the server can push little more
/// than it reads.
#[track_caller]
pub fn connect_small_window(addr: SocketAddr, rcvbuf: usize) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("socket");
    socket.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
    socket
        .connect_timeout(&addr.into(), DEADLINE)
        .unwrap_or_else(|e| panic!("slow peer could not connect to {addr}: {e}"));
    let s: TcpStream = socket.into();
    prepare_raw(&s);
    s
}

/// Reads `from` to its end at a bounded pace: at most `piece` bytes, then a
/// `pause` (pacing, not synchronisation), under the deadline. Returns what
/// was read and whether it ended in a clean EOF.
pub fn read_paced(mut from: impl Read, piece: usize, pause: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut buf = vec![0u8; piece];
    while Instant::now() < deadline {
        match from.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return (got, false),
        }
        thread::sleep(pause);
    }
    (got, false)
}

/// A flood of lines into a peer socket, on its own thread, counting what
/// the socket took.
pub struct Flood {
    pub count: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: thread::JoinHandle<()>,
}

impl Flood {
    /// Stops the flood (after the write under way) and joins its thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

/// Floods `peer` until a write fails, [`Flood::stop`], or the deadline.
pub fn flood_counted(peer: TcpStream) -> Flood {
    // A write blocked on a peer that stopped reading returns within a
    // second, so a stop is seen.
    peer.set_write_timeout(Some(Duration::from_secs(1)))
        .expect("set_write_timeout");
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (counter, stopped) = (Arc::clone(&count), Arc::clone(&stop));
    let handle = thread::spawn(move || {
        let mut peer = peer;
        let deadline = Instant::now() + DEADLINE;
        let chunk = b"more and more lines\n".repeat(100);
        while Instant::now() < deadline && !stopped.load(Ordering::Relaxed) {
            match peer.write(&chunk) {
                Ok(n) => {
                    counter.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    });
    Flood {
        count,
        stop,
        handle,
    }
}

/// Waits (polling, under the deadline) until `count` reaches `at_least`.
#[track_caller]
pub fn wait_count(count: &std::sync::atomic::AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + DEADLINE;
    while count.load(Ordering::Relaxed) < at_least {
        assert!(
            Instant::now() < deadline,
            "the flood never reached {at_least} bytes"
        );
        thread::sleep(POLL);
    }
}
