//! The raw relay's kernel paths (issue 15): `splice`/`sendfile` between
//! stdin, the socket and stdout, for every kind of endpoint — a regular
//! file, a pipe, `/dev/null`, a terminal (which falls back to copying) —
//! byte-exact both ways at once, small transfers included, and the endings
//! (reset → 1, Ctrl-C → half-close and 130) unchanged.
//!
//! Endpoints are made by `sh`: `< in` or `cat in |` for stdin, `> out`,
//! `| cat > out` or `> /dev/null` for stdout; duplex's own exit code is
//! written to a file by the same shell.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{self, DEADLINE, Proc, accept_raw, connect, program, serve};

const MIB: usize = 1024 * 1024;

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("duplex-zc-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).expect("write scratch file");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Bytes that show a lost, repeated or moved piece: a counter mixed.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[derive(Clone, Copy, Debug)]
enum In {
    /// `< file`
    File,
    /// `cat file |`
    Pipe,
    /// A pipe written a little at a time, with pauses.
    Paused,
}

#[derive(Clone, Copy, Debug)]
enum Out {
    File,
    Pipe,
    Null,
}

/// One side of a transfer, run by `sh`.
struct Side {
    proc: Proc,
    out: PathBuf,
    code: PathBuf,
}

/// The `sh` line that runs duplex with these endpoints.
fn spawn_side(
    scratch: &Scratch,
    name: &str,
    args: &str,
    input: In,
    data: &[u8],
    output: Out,
) -> Side {
    let dx = env!("CARGO_BIN_EXE_duplex");
    let inp = scratch.file(&format!("{name}.in"), data);
    let out = scratch.path(&format!("{name}.out"));
    let code = scratch.path(&format!("{name}.code"));
    let (before, redirect_in) = match input {
        In::File => (String::new(), format!("< '{}'", inp.display())),
        In::Pipe => (format!("cat '{}' |", inp.display()), String::new()),
        // The bytes in three pieces, with pauses between.
        In::Paused => {
            let third = data.len() / 3;
            let (a, b) = (third, 2 * third);
            let piece = |from: usize, to: usize| {
                format!(
                    "tail -c +{} '{}' | head -c {}",
                    from + 1,
                    inp.display(),
                    to - from
                )
            };
            (
                format!(
                    "({}; sleep 0.1; {}; sleep 0.1; {}) |",
                    piece(0, a),
                    piece(a, b),
                    piece(b, data.len())
                ),
                String::new(),
            )
        }
    };
    let (redirect_out, after) = match output {
        Out::File => (format!("> '{}'", out.display()), String::new()),
        Out::Pipe => (String::new(), format!("| cat > '{}'", out.display())),
        Out::Null => ("> /dev/null".to_string(), String::new()),
    };
    let script = format!(
        "({before} '{dx}' {args} {redirect_in} {redirect_out}; echo $? > '{}') {after}",
        code.display()
    );
    let proc = program("sh").args(["-c", &script]).stdin_null().spawn();
    Side { proc, out, code }
}

impl Side {
    /// Waits for the shell, and returns duplex's exit code and its stdout.
    fn finish(mut self) -> (i32, Vec<u8>) {
        let status = self.proc.wait_exit(DEADLINE);
        assert!(status.success(), "sh failed: {}", self.proc.context());
        let code = fs::read_to_string(&self.code).expect("exit code file");
        let code = code.trim().parse().expect("an exit code");
        (code, fs::read(&self.out).unwrap_or_default())
    }
}

/// A raw transfer both ways at once between `duplex serve --once --raw`
/// and `duplex connect --raw`, with these endpoints; checks both stdouts
/// (except `/dev/null`) and both exit codes.
fn both_ways(name: &str, server: (In, Out), client: (In, Out), to_client: &[u8], to_server: &[u8]) {
    let scratch = Scratch::new(name);
    let mut s = spawn_side(
        &scratch,
        "server",
        "serve -b 127.0.0.1 --once --raw 0",
        server.0,
        to_client,
        server.1,
    );
    let addr: SocketAddr = s.proc.wait_for_listening();
    let c = spawn_side(
        &scratch,
        "client",
        &format!("connect --raw 127.0.0.1 {}", addr.port()),
        client.0,
        to_server,
        client.1,
    );
    let (client_code, client_got) = c.finish();
    let (server_code, server_got) = s.finish();
    let what = format!("{name}: server {server:?}, client {client:?}");
    assert_eq!(client_code, 0, "{what}: client exit");
    assert_eq!(server_code, 0, "{what}: server exit");
    if !matches!(client.1, Out::Null) {
        assert!(
            client_got == to_client,
            "{what}: client got {} of {} bytes, or others",
            client_got.len(),
            to_client.len()
        );
    }
    if !matches!(server.1, Out::Null) {
        assert!(
            server_got == to_server,
            "{what}: server got {} of {} bytes, or others",
            server_got.len(),
            to_server.len()
        );
    }
}

#[test]
fn sixteen_mib_both_ways_for_every_endpoint_kind() {
    // Sixteen of the relay's 1 MiB calls each way, and far more than the
    // socket and pipe buffers hold, so every path loops and waits.
    let a = payload(16 * MIB, 0x1234_5678);
    let b = payload(16 * MIB + 3, 0x9abc_def0);
    both_ways("big1", (In::File, Out::File), (In::Pipe, Out::Pipe), &a, &b);
    both_ways("big2", (In::Pipe, Out::Pipe), (In::File, Out::File), &a, &b);
    both_ways("big3", (In::File, Out::Null), (In::Pipe, Out::File), &a, &b);
    both_ways("big4", (In::Pipe, Out::File), (In::File, Out::Null), &a, &b);
}

#[test]
fn small_transfers_in_every_endpoint_combination() {
    let data: [&[u8]; 3] = [
        b"",
        b"x",
        b"one line\n\nthen a blank one, and\r\nthe last without",
    ];
    // One direction small, the other empty, so that each EOF comes on its
    // own: 36 conversations for the 18 endpoint combinations.
    let mut conversations = Vec::new();
    for (i, &data) in data.iter().enumerate() {
        for input in [In::File, In::Pipe, In::Paused] {
            for output in [Out::File, Out::Pipe] {
                let name = format!("small{i}-{input:?}-{output:?}");
                conversations.push((
                    format!("{name}s"),
                    (input, output),
                    (In::File, output),
                    data,
                    &b""[..],
                ));
                conversations.push((
                    format!("{name}r"),
                    (In::Pipe, output),
                    (input, output),
                    &b""[..],
                    data,
                ));
            }
        }
    }
    // Most of their time is idle (a paused input sleeps), so several run
    // at once; not all: that would start some 150 processes in a burst
    // and load the tests next door. Each worker takes the next one.
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                while let Some((name, server, client, to_client, to_server)) =
                    conversations.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    both_ways(name, *server, *client, to_client, to_server);
                }
            });
        }
    });
}

#[test]
fn input_piped_before_the_peer_connects_arrives_whole() {
    // The server's input is all read (and ended) long before anyone
    // connects: what the input thread read ahead goes first.
    let scratch = Scratch::new("early");
    let data = payload(3 * MIB + 11, 7);
    let mut s = spawn_side(
        &scratch,
        "server",
        "serve -b 127.0.0.1 --once --raw 0",
        In::Pipe,
        &data,
        Out::Pipe,
    );
    let addr = s.proc.wait_for_listening();
    thread::sleep(Duration::from_millis(300));
    let c = spawn_side(
        &scratch,
        "client",
        &format!("connect --raw 127.0.0.1 {}", addr.port()),
        In::File,
        b"",
        Out::File,
    );
    let (code, got) = c.finish();
    assert_eq!(code, 0);
    assert!(
        got == data,
        "client got {} of {} bytes",
        got.len(),
        data.len()
    );
    assert_eq!(s.finish().0, 0);
}

#[test]
fn a_terminal_stdout_falls_back_and_still_shows_the_bytes() {
    // `script` gives duplex a pty for stdout: no splice into it, the
    // terminal rendering instead.
    if !support::require_peer("script") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dx = env!("CARGO_BIN_EXE_duplex");
    let mut term = program("script")
        .args([
            "-qfc",
            &format!("'{dx}' connect --raw 127.0.0.1 {port} < /dev/null"),
            "/dev/null",
        ])
        .stdin_null()
        .spawn();
    let mut peer = accept_raw(&listener);
    let text = b"shown on a terminal\n".repeat(5000);
    peer.write_all(&text).expect("send");
    peer.shutdown(Shutdown::Write).expect("half-close");
    let status = term.wait_exit(DEADLINE);
    assert!(status.success(), "{}", term.context());
    let shown = String::from_utf8_lossy(&term.stdout()).replace("\r\n", "\n");
    assert_eq!(
        shown.matches("shown on a terminal").count(),
        5000,
        "{}",
        term.context()
    );
}

#[test]
fn a_peer_reset_mid_splice_exits_1_both_ways() {
    let scratch = Scratch::new("reset");
    // We receive into a file while the peer resets.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let c = spawn_side(
        &scratch,
        "recv",
        &format!("connect --raw 127.0.0.1 {port}"),
        In::Pipe,
        b"unread by the peer\n",
        Out::File,
    );
    let mut peer = accept_raw(&listener);
    let mut byte = [0u8; 1];
    assert_eq!(peer.peek(&mut byte).expect("peek"), 1);
    peer.write_all(&payload(8 * MIB, 3)).expect("send");
    // Closing with unread data makes Linux send RST.
    drop(peer);
    assert_eq!(c.finish().0, 1, "receiving side");

    // We send from a file while the peer resets.
    let c = spawn_side(
        &scratch,
        "send",
        &format!("connect --raw 127.0.0.1 {port}"),
        In::File,
        &payload(32 * MIB, 5),
        Out::File,
    );
    let mut peer = accept_raw(&listener);
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < MIB {
        let n = peer.read(&mut buf).expect("peer read");
        assert!(n > 0, "EOF after {got} bytes");
        got += n;
    }
    drop(peer);
    assert_eq!(c.finish().0, 1, "sending side");
}

#[test]
fn ctrl_c_mid_splice_half_closes_and_exits_130() {
    // stdin is a pipe the test keeps full: the sender splices it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client = connect(
        listener.local_addr().expect("addr"),
        &["--raw", "--linger", "2"],
    );
    let mut peer = accept_raw(&listener);
    let mut stdin = client.take_stdin();
    let feeder = thread::spawn(move || {
        let block = payload(MIB, 9);
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if stdin.write_all(&block).is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < 8 * MIB {
        let n = peer.read(&mut buf).expect("peer read");
        assert!(n > 0, "EOF before the signal");
        got += n;
    }
    client.signal("INT");
    // The half-close reaches the peer as a clean EOF, however much was
    // still on the way.
    let started = Instant::now();
    loop {
        match peer.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => assert!(started.elapsed() < DEADLINE, "no EOF after Ctrl-C"),
            Err(e) => panic!("the peer saw {e} instead of a clean EOF"),
        }
    }
    peer.shutdown(Shutdown::Write).expect("peer half-closes");
    client.assert_exit(130);
    drop(client);
    let _ = feeder.join();
}

#[test]
fn serve_hands_what_is_left_of_a_piped_stdin_to_the_next_raw_peer() {
    let (mut server, addr) = serve(&["--raw"]);
    let first = payload(2 * MIB + 1, 11);
    let second = payload(3 * MIB + 5, 13);
    // The input thread reads ahead only so far: the rest waits in the
    // pipe, so a feeder thread writes it.
    let mut stdin = server.take_stdin();
    let (first_copy, second_copy) = (first.clone(), second.clone());
    let (fed_first, first_fed) = std::sync::mpsc::channel();
    let feeder = thread::spawn(move || {
        stdin.write_all(&first_copy).expect("feed the first part");
        // The second part only after the first conversation has ended.
        if fed_first.send(()).is_ok() {
            thread::park();
        }
        let _ = stdin.write_all(&second_copy);
    });
    let mut peer = support::connect_raw(addr);
    let mut got = vec![0u8; first.len()];
    peer.read_exact(&mut got)
        .expect("first peer reads its part");
    assert!(got == first, "the first peer's bytes differ");
    // A reset ends the conversation while the server holds stdin and
    // waits for more of it.
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(peer);
    server.wait_for_stderr("failed while receiving");
    first_fed
        .recv_timeout(DEADLINE)
        .expect("the first part was fed");
    // Fed (and partly read ahead) before the next peer comes, then ended.
    feeder.thread().unpark();
    let mut peer = support::connect_raw(addr);
    let mut got = Vec::new();
    peer.read_to_end(&mut got)
        .expect("second peer reads to EOF");
    assert!(
        got == second,
        "the second peer got {} of {} bytes",
        got.len(),
        second.len()
    );
    peer.shutdown(Shutdown::Write).expect("half-close");
    server.assert_exit(0);
    feeder.join().expect("the feeder");
}

/// A stdout that is a socket (a socketpair, as `socat EXEC:` and inetd give)
/// is never spliced into: a splice there would block on the socket's own
/// mode, out of reach of Ctrl-C. With its reader stalled, one SIGTERM still
/// ends duplex within `--linger`.
#[test]
fn a_socket_stdout_whose_reader_stalls_still_ends_on_sigterm() {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::process::{Command, Stdio};

    let (stdout, _never_read) = UnixStream::pair().expect("socketpair");
    let mut server = Command::new(env!("CARGO_BIN_EXE_duplex"))
        .args([
            "serve",
            "--once",
            "--raw",
            "--linger",
            "0.5",
            "-b",
            "127.0.0.1",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(OwnedFd::from(stdout)))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn duplex");
    let mut stderr = std::io::BufReader::new(server.stderr.take().expect("stderr"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).expect("listening line");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no listening line: {line:?}"));
    let mut peer = support::connect_raw(addr);
    // Once duplex is gone its socket may never answer the blocked writes:
    // the flood gives up 2 s after its last write went through.
    peer.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("write timeout");
    // Far more than the socketpair and the output thread can hold.
    let block = payload(MIB, 11);
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flooding = {
        let written = std::sync::Arc::clone(&written);
        thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < DEADLINE {
                match peer.write(&block) {
                    Ok(n) if n > 0 => {
                        written.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ => return,
                }
            }
        })
    };
    // Wait until the flood has backed up (the peer's writes stop going
    // through for 300 ms): duplex's receiver is stuck on the stalled
    // stdout by then.
    let deadline = Instant::now() + DEADLINE;
    let count = || written.load(std::sync::atomic::Ordering::Relaxed);
    let (mut last, mut since) = (count(), Instant::now());
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        let now = count();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if last > MIB && since.elapsed() > Duration::from_millis(300) {
            break;
        }
    }
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success()),
        "kill -TERM {pid}"
    );
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().expect("try_wait") {
            break status;
        }
        if signalled.elapsed() > DEADLINE {
            let _ = server.kill();
            panic!("duplex did not end after SIGTERM with its socket stdout stalled");
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let _ = flooding.join();
}

/// A counter of `/proc/PID/io`: `rchar`, the bytes this process took
/// with `read` from files and pipes (not sockets' `recv`), or `wchar`, the
/// bytes it gave `write`. A `splice` counts in neither.
fn io_counter(pid: u32, name: &str) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    io.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /proc/PID/io: {io}"))
}

/// duplex to duplex with pipes at both ends (the test's own): the sender
/// splices its stdin and the receiver its stdout, also after the first
/// bytes have come through the preamble guard's `read` (a chunk that was
/// still being written once made the receiver copy everything). Seen from
/// outside: of 48 MiB, the client `read`s from its stdin and the server
/// `write`s to its stdout no more than a few megabytes.
#[test]
fn pipe_to_pipe_between_two_duplexes_is_spliced_on_both_ends() {
    let mut server = support::duplex()
        .args(["serve", "--once", "--raw", "-b", "127.0.0.1", "0"])
        .stdin_null()
        .stdout_manual()
        .spawn();
    let addr = server.wait_for_listening();
    let mut out = server.take_stdout();
    let mut client = connect(addr, &["--raw"]);
    let mut stdin = client.take_stdin();
    let total = 48 * MIB;
    let feeder = thread::spawn(move || {
        let block = payload(MIB, 5);
        for _ in 0..total / MIB {
            if stdin.write_all(&block).is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    let mut seen = None;
    while got < total {
        let n = out.read(&mut buf).expect("read the server's stdout");
        assert!(n > 0, "EOF after {got} of {total} bytes");
        got += n;
        if seen.is_none() && got >= 32 * MIB {
            // Both still running: their counters are there to read.
            seen = Some((
                io_counter(client.pid(), "rchar"),
                io_counter(server.pid(), "wchar"),
            ));
        }
    }
    feeder.join().expect("feeder");
    let (client_read, server_written) = seen.expect("32 MiB arrived");
    assert!(
        client_read < 4 * MIB as u64 && server_written < 4 * MIB as u64,
        "the client read() {client_read} bytes of its stdin, the server write() {server_written} to its stdout"
    );
    client.assert_exit(0);
    server.assert_exit(0);
}
