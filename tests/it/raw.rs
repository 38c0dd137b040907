//! Raw mode (SPEC "Raw mode", issue 3): byte-exact in both directions, blank
//! lines are data, each direction ends on its own EOF, interop with nc, a
//! reset never looks like success, Ctrl-C exits 130.
//!
//! Big payloads are a deterministic pattern (blocks of noise with newlines,
//! blank lines and CR LFs, each block stamped with its index) that is checked
//! as it streams in, so a lost, repeated or reordered block is caught without
//! keeping 64 MiB in memory, and cheaply even in a debug build.

/// The kernel paths (`splice`/`sendfile`) for every kind of endpoint.
mod zero_copy;

use crate::support;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;

use support::{
    Proc, accept_raw, connect, connect_raw, duplex, expect_eof_after, free_port, read_to_eof,
    read_until, require_openbsd_nc, send_raw, serve, show,
};

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// The payload

/// Size of one pattern block.
const BLOCK: usize = 64 * 1024;

/// `total` bytes: [`BLOCK`]-sized copies of one noise block, each starting
/// with its own index, so position errors show.
struct Pattern {
    base: Vec<u8>,
    total: usize,
}

impl Pattern {
    fn new(total: usize) -> Pattern {
        let mut base = support::noise_without_newline(BLOCK, 0x00de_c0de);
        // Lines, blank lines and CR LF blank lines: data in raw mode.
        for (i, b) in base.iter_mut().enumerate().skip(8) {
            if i % 97 == 0 {
                *b = b'\n';
            }
        }
        for at in (500..BLOCK - 4).step_by(4099) {
            base[at..at + 4].copy_from_slice(b"\n\r\n\n");
        }
        Pattern { base, total }
    }

    fn block(&self, index: usize) -> Vec<u8> {
        let mut block = self.base.clone();
        block[..8].copy_from_slice(&(index as u64).to_le_bytes());
        block
    }

    /// Writes the whole pattern; errors are returned (the reader may be gone).
    fn write_to(&self, mut w: impl Write) -> io::Result<()> {
        let mut left = self.total;
        let mut index = 0;
        while left > 0 {
            let block = self.block(index);
            let n = left.min(BLOCK);
            w.write_all(&block[..n])?;
            left -= n;
            index += 1;
        }
        w.flush()
    }

    /// Reads `r` to its end and panics unless it is exactly the pattern.
    #[track_caller]
    fn check(&self, mut r: impl Read, what: &str) {
        let mut got = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        let mut block = self.block(0);
        let mut block_index = 0;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{what}: read error after {got} bytes: {e}"),
            };
            let mut data = &buf[..n];
            while !data.is_empty() {
                let index = got / BLOCK;
                if index != block_index {
                    block = self.block(index);
                    block_index = index;
                }
                let at = got % BLOCK;
                let take = data.len().min(BLOCK - at);
                assert!(
                    got + take <= self.total,
                    "{what}: more than the {} bytes sent",
                    self.total
                );
                if data[..take] != block[at..at + take] {
                    let first = (0..take).find(|&i| data[i] != block[at + i]).unwrap_or(0);
                    panic!(
                        "{what}: byte {} differs (block {index}): got {}, expected {}",
                        got + first,
                        show(&data[first..take.min(first + 32)]),
                        show(&block[at + first..(at + take).min(at + first + 32)])
                    );
                }
                got += take;
                data = &data[take..];
            }
        }
        assert_eq!(
            got, self.total,
            "{what}: truncated: {got} of {} bytes",
            self.total
        );
    }

    fn write_file(&self, path: &Path) {
        let file = File::create(path).expect("create payload file");
        self.write_to(io::BufWriter::new(file))
            .expect("write payload file");
    }

    #[track_caller]
    fn check_file(&self, path: &Path, what: &str) {
        let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        self.check(file, what);
    }
}

/// Feeds the pattern into a child's stdin from a thread, then closes it.
fn feed(
    pattern: Pattern,
    stdin: impl Write + Send + 'static,
) -> thread::JoinHandle<io::Result<()>> {
    thread::spawn(move || pattern.write_to(stdin))
}

/// Checks a child's stdout against the pattern from a thread.
fn check_in_thread(
    pattern: Pattern,
    stdout: impl Read + Send + 'static,
    what: &'static str,
) -> thread::JoinHandle<()> {
    thread::spawn(move || pattern.check(stdout, what))
}

#[track_caller]
fn join<T>(handle: thread::JoinHandle<T>, what: &str) -> T {
    handle
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(Box::new(format!("{what}: {e:?}"))))
}

// ---------------------------------------------------------------------------
// Children with files as stdin/stdout (the harness pipes them)

/// A temp directory for one test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("duplex-raw-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `program args < stdin > stdout` (stdin `/dev/null` without a file), on
/// the harness: killed and reaped on drop, its stderr shown on failure.
fn file_proc(program: &str, args: &[&str], stdin: Option<&Path>, stdout: &Path) -> Proc {
    let cmd = support::program(program).args(args).stdout_file(stdout);
    match stdin {
        Some(path) => cmd.stdin_file(path),
        None => cmd.stdin_null(),
    }
    .spawn()
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_duplex")
}

// ---------------------------------------------------------------------------
// Intact transfers

#[test]
fn raw_64_mib_connect_to_serve_arrives_intact() {
    let mut server = duplex()
        .args(["serve", "--once", "--raw", "-b", "127.0.0.1", "0"])
        .stdin_null()
        .stdout_manual()
        .spawn();
    let addr = server.wait_for_listening();
    let checker = check_in_thread(
        Pattern::new(64 * MIB),
        server.take_stdout(),
        "server stdout",
    );
    let mut client = connect(addr, &["--raw"]);
    let feeder = feed(Pattern::new(64 * MIB), client.take_stdin());

    join(feeder, "feeding the client").expect("the client took all its input");
    join(checker, "checking the server's output");
    client.assert_exit(0);
    server.assert_exit(0);
    client.assert_stdout(b"");
}

#[test]
fn raw_64_mib_serve_to_connect_arrives_intact() {
    let (mut server, addr) = serve(&["--once", "--raw"]);
    let feeder = feed(Pattern::new(64 * MIB), server.take_stdin());
    let mut client = duplex()
        .args(["connect", "--raw"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdin_null()
        .stdout_manual()
        .spawn();
    let checker = check_in_thread(
        Pattern::new(64 * MIB),
        client.take_stdout(),
        "client stdout",
    );

    join(feeder, "feeding the server").expect("the server took all its input");
    join(checker, "checking the client's output");
    server.assert_exit(0);
    client.assert_exit(0);
    server.assert_stdout(b"");
}

#[test]
fn raw_blank_lines_are_data_both_ways() {
    let data: &[u8] = b"a\n\n\nb\n\r\n\r\nc\n\n";
    let (mut server, addr) = serve(&["--once", "--raw"]);
    let mut client = connect(addr, &["--raw"]);
    server.wait_for_stderr("connection from");
    client.write(data);
    server.write(data);
    server.wait_for_stdout(data);
    client.wait_for_stdout(data);
    // Nothing ended at the blank lines: more still goes both ways.
    client.write(b"after\n");
    server.write(b"after\n");
    client.close_stdin();
    server.close_stdin();
    server.assert_exit(0);
    client.assert_exit(0);
    let want = [data, b"after\n"].concat();
    server.assert_stdout(&want);
    client.assert_stdout(&want);
}

// ---------------------------------------------------------------------------
// Each direction ends on its own

#[test]
fn raw_connect_stdin_eof_half_closes_and_keeps_receiving() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client = connect(listener.local_addr().expect("addr"), &["--raw"]);
    let mut peer = accept_raw(&listener);
    client.write(b"hello\n\n");
    client.close_stdin();
    // Our EOF reaches the peer as a clean EOF (half-close)...
    expect_eof_after(&mut peer, b"hello\n\n");
    // ...but the conversation goes on: the peer's data still arrives whole.
    client.assert_running();
    let reply = [&b"reply\n\n"[..], &vec![b'r'; MIB], b"\nend\n"].concat();
    send_raw(&mut peer, &reply);
    client.wait_for_stdout_len(reply.len());
    client.assert_running();
    peer.shutdown(Shutdown::Write).expect("peer half-closes");
    client.assert_exit(0);
    assert_eq!(client.stdout(), reply, "client stdout");
}

#[test]
fn raw_serve_stdin_eof_half_closes_and_keeps_receiving() {
    let (mut server, addr) = serve(&["--once", "--raw"]);
    let mut peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    server.write(b"from server\n");
    server.close_stdin();
    expect_eof_after(&mut peer, b"from server\n");
    server.assert_running();
    let data = [&vec![b's'; MIB][..], b"\n\nlast\n"].concat();
    send_raw(&mut peer, &data);
    server.wait_for_stdout_len(data.len());
    server.assert_running();
    peer.shutdown(Shutdown::Write).expect("peer half-closes");
    server.assert_exit(0);
    assert_eq!(server.stdout(), data, "server stdout");
}

#[test]
fn raw_duplex_to_duplex_client_done_first_server_still_delivers() {
    let (mut server, addr) = serve(&["--once", "--raw"]);
    let mut client = connect(addr, &["--raw"]);
    server.wait_for_stderr("connection from");
    client.write(b"client says\n\n");
    client.close_stdin();
    server.wait_for_stdout(b"client says\n\n");
    // The client is done sending; the server has a lot left to say.
    client.assert_running();
    let feeder = feed(Pattern::new(4 * MIB + 5), server.take_stdin());
    join(feeder, "feeding the server").expect("the server took all its input");
    server.assert_exit(0);
    client.assert_exit(0);
    let got = client.stdout();
    Pattern::new(4 * MIB + 5).check(&got[..], "client stdout");
    server.assert_stdout(b"client says\n\n");
}

#[test]
fn raw_peer_eof_first_we_keep_sending() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client = connect(listener.local_addr().expect("addr"), &["--raw"]);
    let mut peer = accept_raw(&listener);
    send_raw(&mut peer, b"peer is done\n");
    peer.shutdown(Shutdown::Write).expect("peer half-closes");
    client.wait_for_stdout(b"peer is done\n");
    // The peer's EOF ends only our receiving side: input still goes out.
    client.assert_running();
    client.write(b"still\n\n");
    read_until(&mut peer, b"still\n\n");
    client.write(b"sending\n");
    client.close_stdin();
    expect_eof_after(&mut peer, b"sending\n");
    client.assert_exit(0);
    client.assert_stdout(b"peer is done\n");
}

// ---------------------------------------------------------------------------
// Files, as a user types it

/// A file of `size` pattern bytes to send, and `duplex serve --once --raw`
/// (stdin `/dev/null`) writing what it receives to another file.
fn file_receiver(
    name: &str,
    size: usize,
) -> (Scratch, PathBuf, PathBuf, Pattern, Proc, SocketAddr) {
    let dir = Scratch::new(name);
    let (input, output) = (dir.path("in"), dir.path("out"));
    let pattern = Pattern::new(size);
    pattern.write_file(&input);
    let mut server = file_proc(
        bin(),
        &["serve", "--once", "--raw", "-b", "127.0.0.1", "0"],
        None,
        &output,
    );
    let addr = server.wait_for_listening();
    (dir, input, output, pattern, server, addr)
}

#[test]
fn raw_serve_with_dev_null_stdin_receives_a_whole_file() {
    // duplex connect --raw 127.0.0.1 PORT < file
    // duplex serve --once --raw 0 < /dev/null > out
    let (dir, input, output, pattern, mut server, addr) = file_receiver("file", 16 * MIB + 12_345);
    let client_out = dir.path("client-out");
    let mut client = file_proc(
        bin(),
        &[
            "connect",
            "--raw",
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ],
        Some(&input),
        &client_out,
    );
    client.assert_exit(0);
    server.assert_exit(0);
    pattern.check_file(&output, "server's output file");
    assert_eq!(std::fs::metadata(&client_out).expect("client out").len(), 0);
}

// ---------------------------------------------------------------------------
// Interop with OpenBSD nc (PEERS.md)

#[test]
fn raw_interop_nc_sends_a_file_to_duplex_serve() {
    if !require_openbsd_nc() {
        return;
    }
    let (dir, input, output, pattern, mut server, addr) = file_receiver("nc-to-serve", 8 * MIB + 7);
    // -N: half-close at EOF of the file.
    let mut nc = file_proc(
        "nc",
        &["-N", "127.0.0.1", &addr.port().to_string()],
        Some(&input),
        &dir.path("nc-out"),
    );
    nc.assert_exit(0);
    server.assert_exit(0);
    pattern.check_file(&output, "duplex serve's output");
}

#[test]
fn raw_interop_duplex_connect_to_nc_listener_both_ways() {
    if !require_openbsd_nc() {
        return;
    }
    let dir = Scratch::new("connect-to-nc");
    let to_nc = Pattern::new(8 * MIB + 3);
    let to_duplex = Pattern::new(6 * MIB + 1);
    to_nc.write_file(&dir.path("to-nc"));
    to_duplex.write_file(&dir.path("to-duplex"));

    // nc cannot report a port it picked: take a free one and poll
    // /proc/net/tcp for its listener. -N: nc sends FIN at its EOF.
    let port = free_port();
    let mut nc = file_proc(
        "nc",
        &["-N", "-l", "127.0.0.1", &port.to_string()],
        Some(&dir.path("to-duplex")),
        &dir.path("nc-out"),
    );
    support::wait_tcp_listen(port);
    // OpenBSD nc's listener stops sending once its peer half-closes (seen
    // here: a client in Python that sent first lost 9 of 15 replies), so
    // duplex's stdin ends only once nc's whole file has arrived: a shell
    // feeds it, then waits (bounded: 2000 × 10 ms) for duplex's output.
    let out = dir.path("duplex-out");
    let feed = format!(
        "{{ cat '{input}'; i=0; while [ \"$(stat -c %s '{out}')\" -lt {len} ] && [ $i -lt 2000 ]; \
         do sleep 0.01; i=$((i+1)); done; }} | '{bin}' connect --raw 127.0.0.1 {port}",
        input = dir.path("to-nc").display(),
        out = out.display(),
        len = 6 * MIB + 1,
        bin = bin(),
    );
    let mut client = file_proc("sh", &["-c", &feed], None, &out);
    client.assert_exit(0);
    nc.assert_exit(0);
    to_nc.check_file(&dir.path("nc-out"), "what nc received");
    to_duplex.check_file(&dir.path("duplex-out"), "what duplex received");
}

// ---------------------------------------------------------------------------
// Failures and signals

#[test]
fn raw_connect_exits_1_when_the_peer_resets_while_we_send() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client = connect(listener.local_addr().expect("addr"), &["--raw"]);
    let mut peer = accept_raw(&listener);
    // Far more than the socket buffers hold: the client is mid-transfer.
    let feeder = feed(Pattern::new(256 * MIB), client.take_stdin());
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < MIB {
        match peer.read(&mut buf) {
            Ok(0) => panic!("EOF after {got} bytes: the client stopped early"),
            Ok(n) => got += n,
            Err(e) => panic!("peer read: {e}"),
        }
    }
    // Closing with unread data makes Linux send RST.
    drop(peer);
    client.assert_exit(1);
    let stderr = client.stderr();
    assert!(
        stderr.contains("duplex: "),
        "one error line expected: {stderr}"
    );
    // The feeder fails once the client is gone (EPIPE); either way it ends.
    let _ = join(feeder, "feeding the client");
}

#[test]
fn raw_connect_exits_1_when_the_peer_resets_while_we_receive() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client = connect(listener.local_addr().expect("addr"), &["--raw"]);
    let mut peer = accept_raw(&listener);
    // Something the peer never reads, so its close becomes a reset.
    client.write(b"unread\n");
    wait_readable(&peer);
    send_raw(&mut peer, b"first half of the transfer\n");
    client.wait_for_stdout(b"first half of the transfer\n");
    drop(peer);
    client.assert_exit(1);
    assert!(
        client.stderr().contains("duplex: "),
        "one error line expected: {}",
        client.stderr()
    );
}

/// Waits until the peer has data waiting (so closing it will reset).
fn wait_readable(peer: &TcpStream) {
    let mut byte = [0u8; 1];
    let n = peer.peek(&mut byte).expect("peek");
    assert_eq!(n, 1, "peer: EOF instead of data");
}

#[test]
fn raw_sigint_exits_130_after_a_clean_half_close() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client = connect(listener.local_addr().expect("addr"), &["--raw"]);
    let mut peer = accept_raw(&listener);
    client.wait_for_stderr("connected to");
    client.write(b"x\n\n");
    read_until(&mut peer, b"x\n\n");
    send_raw(&mut peer, b"y\n\n");
    client.wait_for_stdout(b"y\n\n");

    client.signal("INT");
    // Ctrl-C half-closes: the peer reads a clean EOF, not a reset.
    if let Err((e, got)) = read_to_eof(&mut peer) {
        panic!(
            "peer read {} then {e} instead of EOF\n{}",
            show(&got),
            client.context()
        );
    }
    drop(peer);
    client.assert_exit(130);
    client.assert_stdout(b"y\n\n");
}

#[test]
fn raw_sigint_serve_exits_130() {
    let (mut server, addr) = serve(&["--once", "--raw"]);
    let mut peer = connect_raw(addr);
    server.wait_for_stderr("connection from");
    send_raw(&mut peer, b"a\n\nb");
    server.wait_for_stdout(b"a\n\nb");
    server.signal("INT");
    if let Err((e, got)) = read_to_eof(&mut peer) {
        panic!(
            "peer read {} then {e} instead of EOF\n{}",
            show(&got),
            server.context()
        );
    }
    drop(peer);
    server.assert_exit(130);
    server.assert_stdout(b"a\n\nb");
}
