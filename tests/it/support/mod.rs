//! End-to-end test harness for the `duplex` binary.
//!
//! - [`duplex()`] builds a command over `CARGO_BIN_EXE_duplex`; [`serve()`]
//!   and [`connect()`] are the common shapes (always on loopback, port 0).
//! - [`Proc`] owns its child: on drop it kills *its own* child (by handle,
//!   never by name) and waits for it. When the test is panicking, the drop
//!   prints the child's command line, stdout and stderr, so every failure
//!   shows what the binary said.
//! - A reader thread per stream: stderr lines go into a crossbeam channel, so
//!   waiting for `listening on ADDR` is a `recv_timeout`; stdout bytes are
//!   collected behind a condvar so a test can wait for them.
//! - Every wait has a deadline ([`DEADLINE`], generous for loaded CI); there
//!   are no sleeps used as synchronisation — where only polling can tell (a
//!   child's exit, a listener we did not write), we poll in small steps
//!   under a deadline.
//! - Raw-socket peers are plain `std::net::TcpStream`s with timeouts.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};

pub mod load;

/// How long any single wait may take before the test fails. Generous: CI is
/// a loaded 2-core machine. A correct binary never comes close.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polling step for things only polling can tell (child exit, /proc).
const POLL: Duration = Duration::from_millis(10);

/// How much of a stream to show in a failure message.
const SHOW_MAX: usize = 4096;

// ---------------------------------------------------------------------------
// Builder

/// What the child's stdin is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum StdinMode {
    Piped,
    Null,
    File(std::path::PathBuf),
}

/// A `duplex` (or peer program) command line to spawn.
#[must_use]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    stdin: StdinMode,
    stdout_manual: bool,
    stdout_file: Option<std::path::PathBuf>,
    envs: Vec<(OsString, Option<OsString>)>,
}

/// A builder for the `duplex` binary under test.
pub fn duplex() -> Cmd {
    program(env!("CARGO_BIN_EXE_duplex"))
}

/// A builder for any program (used for interop peers such as `nc`).
pub fn program(name: impl Into<OsString>) -> Cmd {
    Cmd {
        program: name.into(),
        args: Vec::new(),
        stdin: StdinMode::Piped,
        stdout_manual: false,
        stdout_file: None,
        envs: Vec::new(),
    }
}

/// `duplex serve -b 127.0.0.1 <extra...> 0`, already waited for its
/// `listening on` line. Returns the process and the address to connect to.
pub fn serve(extra: &[&str]) -> (Proc, SocketAddr) {
    let mut p = duplex()
        .args(["serve", "-b", "127.0.0.1"])
        .args(extra)
        .arg("0")
        .spawn();
    let addr = p.wait_for_listening();
    (p, addr)
}

/// `duplex connect <extra...> <ip> <port>`.
pub fn connect(addr: SocketAddr, extra: &[&str]) -> Proc {
    duplex()
        .arg("connect")
        .args(extra)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .spawn()
}

impl Cmd {
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable for the child.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), None));
        self
    }

    /// stdin is `/dev/null` (end of input from the start).
    pub fn stdin_null(mut self) -> Self {
        self.stdin = StdinMode::Null;
        self
    }

    /// stdin is this file (read to its end, then end of input).
    pub fn stdin_file(mut self, path: &Path) -> Self {
        self.stdin = StdinMode::File(path.to_path_buf());
        self
    }

    /// Leave the stdout pipe to the test ([`Proc::take_stdout`]) instead of
    /// collecting it in a reader thread.
    pub fn stdout_manual(mut self) -> Self {
        self.stdout_manual = true;
        self
    }

    /// stdout is this file, created afresh (nothing is collected).
    pub fn stdout_file(mut self, path: &Path) -> Self {
        self.stdout_file = Some(path.to_path_buf());
        self
    }

    fn describe(&self) -> String {
        let mut s = Path::new(&self.program)
            .file_name()
            .unwrap_or(self.program.as_os_str())
            .to_string_lossy()
            .into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Spawn the child with piped stdout/stderr and reader threads.
    #[track_caller]
    pub fn spawn(self) -> Proc {
        let name = self.describe();
        let mut command = Command::new(&self.program);
        for (key, value) in &self.envs {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
            .args(&self.args)
            .stdout(match &self.stdout_file {
                None => Stdio::piped(),
                Some(path) => match std::fs::File::create(path) {
                    Ok(file) => Stdio::from(file),
                    Err(e) => panic!("could not create {}: {e}", path.display()),
                },
            })
            .stderr(Stdio::piped())
            .stdin(match &self.stdin {
                StdinMode::Piped => Stdio::piped(),
                StdinMode::Null => Stdio::null(),
                StdinMode::File(path) => match std::fs::File::open(path) {
                    Ok(file) => Stdio::from(file),
                    Err(e) => panic!("could not open {}: {e}", path.display()),
                },
            });
        let busy = load::busy();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("could not spawn `{name}`: {e}"));

        let stdin = child.stdin.take();
        let stdout_pipe = child.stdout.take();
        let stderr_pipe = child.stderr.take().expect("stderr is piped");

        let out = Arc::new(Captured::default());
        let stdout_pipe = if self.stdout_manual || self.stdout_file.is_some() {
            // Nothing will be collected: mark it as finished now.
            out.finish();
            stdout_pipe
        } else {
            let pipe = stdout_pipe.expect("stdout is piped");
            let out2 = Arc::clone(&out);
            thread::Builder::new()
                .name("test-stdout".into())
                .spawn(move || read_bytes(pipe, &out2))
                .expect("spawn stdout reader");
            None
        };

        let err = Arc::new(Captured::default());
        let (line_tx, line_rx) = unbounded();
        let err2 = Arc::clone(&err);
        thread::Builder::new()
            .name("test-stderr".into())
            .spawn(move || {
                let mut pipe = stderr_pipe;
                let mut pending = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            err2.push(&buf[..n]);
                            pending.extend_from_slice(&buf[..n]);
                            while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                                let line: Vec<u8> = pending.drain(..=i).collect();
                                let line = String::from_utf8_lossy(&line[..i]).into_owned();
                                let _ = line_tx.send(line);
                            }
                        }
                    }
                }
                if !pending.is_empty() {
                    let _ = line_tx.send(String::from_utf8_lossy(&pending).into_owned());
                }
                err2.finish();
                // Dropping line_tx disconnects the channel: stderr is done.
            })
            .expect("spawn stderr reader");

        Proc {
            _busy: busy,
            name,
            child,
            stdin,
            stdout_pipe,
            out,
            err,
            lines: line_rx,
            seen: Vec::new(),
            cursor: 0,
            status: None,
        }
    }
}

fn read_bytes(mut pipe: impl Read, into: &Captured) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => into.push(&buf[..n]),
        }
    }
    into.finish();
}

/// Bytes collected from a pipe, and whether the pipe reached EOF.
#[derive(Default)]
struct Captured {
    state: Mutex<(Vec<u8>, bool)>,
    changed: Condvar,
}

impl Captured {
    fn push(&self, bytes: &[u8]) {
        let mut st = self.state.lock().expect("capture lock");
        st.0.extend_from_slice(bytes);
        self.changed.notify_all();
    }

    fn finish(&self) {
        let mut st = self.state.lock().expect("capture lock");
        st.1 = true;
        self.changed.notify_all();
    }

    fn bytes(&self) -> Vec<u8> {
        self.state.lock().expect("capture lock").0.clone()
    }

    /// Wait until `pred(bytes, eof)` holds or the deadline passes.
    fn wait(&self, timeout: Duration, mut pred: impl FnMut(&[u8], bool) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().expect("capture lock");
        loop {
            if pred(&st.0, st.1) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .expect("capture lock")
                .0;
        }
    }
}

// ---------------------------------------------------------------------------
// Running child

/// A running child process, killed and reaped on drop.
pub struct Proc {
    /// Keeps a test that runs alone waiting (see [`load`]).
    _busy: load::Busy,
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout_pipe: Option<ChildStdout>,
    out: Arc<Captured>,
    err: Arc<Captured>,
    lines: Receiver<String>,
    /// stderr lines received so far (from `lines`).
    seen: Vec<String>,
    /// Index in `seen` after the last line matched by a wait.
    cursor: usize,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Write bytes to the child's stdin and flush.
    #[track_caller]
    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("stdin of `{}` is not open", self.name));
        if let Err(e) = stdin.write_all(bytes).and_then(|()| stdin.flush()) {
            panic!("writing to stdin of `{}`: {e}", self.name);
        }
    }

    /// Like [`Proc::write`], for a child that may already have exited by
    /// design (a refused peer): a closed pipe is not the test's failure.
    pub fn write_if_open(&mut self, bytes: &[u8]) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(bytes).and_then(|()| stdin.flush());
        }
    }

    /// Close the child's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Take the stdin pipe (e.g. to feed it from another thread).
    #[track_caller]
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin is piped and still open")
    }

    /// Take the stdout pipe; only with [`Cmd::stdout_manual`].
    #[track_caller]
    pub fn take_stdout(&mut self) -> ChildStdout {
        self.stdout_pipe
            .take()
            .expect("stdout_manual() was set and stdout not yet taken")
    }

    /// Send a signal (`INT`, `TERM`, ...) to this child, by its PID.
    #[track_caller]
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Kill this child (SIGKILL) and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        if let Ok(st) = self.child.wait() {
            self.status = Some(st);
        }
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        self.out.bytes()
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.bytes()).into_owned()
    }

    /// Wait for the next stderr line (after the last one matched) that
    /// satisfies `pred`; returns it.
    #[track_caller]
    pub fn wait_for_stderr_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(i) = (self.cursor..self.seen.len()).find(|&i| pred(&self.seen[i])) {
                self.cursor = i + 1;
                return self.seen[i].clone();
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "timed out after {DEADLINE:?} waiting for {what} on stderr of `{}`",
                    self.name
                );
            }
            match self.lines.recv_timeout(deadline - now) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stderr of `{}` ended while waiting for {what}", self.name)
                }
            }
        }
    }

    /// Wait for the next stderr line containing `needle`.
    #[track_caller]
    pub fn wait_for_stderr(&mut self, needle: &str) -> String {
        self.wait_for_stderr_line(&format!("a line containing {needle:?}"), |l| {
            l.contains(needle)
        })
    }

    /// Wait for `listening on ADDR` and return ADDR (an unspecified address
    /// is mapped to the matching loopback address, ready to connect to).
    #[track_caller]
    pub fn wait_for_listening(&mut self) -> SocketAddr {
        let line = self.wait_for_stderr_line("`listening on ADDR`", |l| {
            l.trim_start().starts_with("listening on ")
        });
        let text = line.trim().trim_start_matches("listening on ").trim();
        let mut addr: SocketAddr = text.parse().unwrap_or_else(|e| {
            panic!("`listening on` line {line:?} does not hold a socket address: {e}")
        });
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        addr
    }

    /// Wait for a `conversation with ADDR ended: REASON` line; returns REASON.
    #[track_caller]
    pub fn wait_for_ended(&mut self) -> String {
        let line = self.wait_for_stderr_line("`conversation with ... ended: REASON`", |l| {
            l.contains("conversation with") && l.contains(" ended: ")
        });
        let i = line.find(" ended: ").expect("matched above");
        line[i + " ended: ".len()..].trim().to_string()
    }

    /// Wait until stdout contains `needle`.
    #[track_caller]
    pub fn wait_for_stdout(&self, needle: &[u8]) {
        let ok = self
            .out
            .wait(DEADLINE, |b, _| contains(b, needle) || needle.is_empty());
        if !ok {
            panic!(
                "timed out after {DEADLINE:?} waiting for {} on stdout of `{}`",
                show(needle),
                self.name
            );
        }
    }

    /// Wait until stdout is exactly `expected` (under the deadline, or
    /// until it ends), then assert it.
    #[track_caller]
    pub fn wait_for_stdout_exactly(&self, expected: &[u8]) {
        let _ = self.out.wait(DEADLINE, |b, eof| b == expected || eof);
        self.assert_stdout(expected);
    }

    /// Wait until at least `n` bytes arrived on stdout.
    #[track_caller]
    pub fn wait_for_stdout_len(&self, n: usize) {
        if !self.out.wait(DEADLINE, |b, eof| b.len() >= n || eof) || self.out.bytes().len() < n {
            panic!(
                "waiting for {n} bytes on stdout of `{}`, got {}",
                self.name,
                self.out.bytes().len()
            );
        }
    }

    /// The exit status if the child has exited (non-blocking).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Poll for the child's exit, in small steps, under `timeout`.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_status() {
                return st;
            }
            if Instant::now() >= deadline {
                panic!("`{}` did not exit within {timeout:?}", self.name);
            }
            thread::sleep(POLL);
        }
    }

    /// Wait for exit, then for stdout/stderr to reach EOF, so that
    /// [`stdout`](Self::stdout) and [`stderr`](Self::stderr) are complete.
    #[track_caller]
    pub fn finish(&mut self) -> ExitStatus {
        let st = self.wait_exit(DEADLINE);
        let out_done = self.out.wait(DEADLINE, |_, eof| eof);
        let err_done = self.err.wait(DEADLINE, |_, eof| eof);
        assert!(
            out_done && err_done,
            "`{}` exited but its stdout/stderr did not reach EOF",
            self.name
        );
        // Move every stderr line into `seen`.
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        st
    }

    /// Wait for exit and assert the exit code.
    #[track_caller]
    pub fn assert_exit(&mut self, code: i32) {
        let st = self.finish();
        assert_eq!(
            st.code(),
            Some(code),
            "`{}` exited with {st}, expected code {code}",
            self.name
        );
    }

    /// Assert the child is still running.
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Some(st) = self.try_status() {
            panic!("`{}` exited ({st}) but should still be running", self.name);
        }
    }

    /// Assert stdout is exactly `expected` (call after [`finish`](Self::finish)
    /// or once all data is known to have arrived).
    #[track_caller]
    pub fn assert_stdout(&self, expected: &[u8]) {
        let got = self.stdout();
        if got != expected {
            panic!(
                "stdout of `{}` differs\nexpected: {}\n     got: {}",
                self.name,
                show(expected),
                show(&got)
            );
        }
    }

    /// Assert stderr (so far: call after [`finish`](Self::finish) or a wait
    /// for it) contains `needle`, showing it if not.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) {
        let err = self.stderr();
        assert!(
            err.contains(needle),
            "stderr of `{}` lacks {needle:?}:\n{err}",
            self.name
        );
    }

    /// Assert stderr has no error line (`duplex: ...`) and no panic.
    #[track_caller]
    pub fn assert_no_error_line(&self) {
        let err = self.stderr();
        let bad = err.lines().any(|l| {
            l.starts_with("duplex: ") || l.contains("panicked") || l.contains("RUST_BACKTRACE")
        });
        assert!(!bad, "`{}` printed an error line or panicked", self.name);
    }

    /// The child's command line, status, stdout and stderr, for messages.
    pub fn context(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "---- `{}` (pid {})", self.name, self.child.id());
        if let Some(st) = self.status {
            let _ = writeln!(s, "---- status: {st}");
        }
        let _ = writeln!(s, "---- stdout: {}", show(&self.out.bytes()));
        let _ = writeln!(s, "---- stderr:\n{}", self.stderr());
        let _ = write!(s, "---- end of `{}`", self.name);
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if thread::panicking() {
            // Captured by libtest and shown with the failing test.
            eprintln!("{}", self.context());
        }
        self.stdin = None;
        // Only our own child, by handle.
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Byte helpers

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A readable, bounded rendering of bytes for messages.
pub fn show(bytes: &[u8]) -> String {
    if bytes.len() > SHOW_MAX {
        format!(
            "{} bytes (fnv1a {:016x}), starting {:?}...",
            bytes.len(),
            fnv1a(bytes),
            String::from_utf8_lossy(&bytes[..256])
                .escape_debug()
                .to_string()
        )
    } else {
        format!("b\"{}\"", bytes.escape_ascii())
    }
}

/// A simple 64-bit FNV-1a hash, to compare big payloads in messages.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Deterministic pseudo-random bytes (xorshift), none equal to `\n`.
pub fn noise_without_newline(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = (x >> 24) as u8;
            if b == b'\n' { b'.' } else { b }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Raw socket peers

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

/// Write all bytes on a raw peer.
#[track_caller]
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

pub fn send_raw(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes)
        .unwrap_or_else(|e| panic!("raw peer: writing {}: {e}", show(bytes)));
}

// ---------------------------------------------------------------------------
// Ports and peers

/// A port that was free a moment ago (bind 127.0.0.1:0 and drop it). Only
/// for peers that cannot report the port they bound (socat).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
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

fn in_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(prog);
            p.metadata().is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

fn package_of(prog: &str) -> &str {
    match prog {
        "nc" => "netcat-openbsd",
        other => other,
    }
}

/// Skip the current test loudly (or fail it under `DUPLEX_REQUIRE_PEERS=1`).
/// Always returns false, for `if !... { return; }`.
#[track_caller]
pub fn skip(reason: &str) -> bool {
    let test = thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if std::env::var("DUPLEX_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("{test}: {reason} (DUPLEX_REQUIRE_PEERS=1, so this is a failure)");
    }
    // Straight to fd 2, past libtest's output capture, so it is seen.
    let _ = writeln!(io::stderr(), "SKIPPED: {test} {reason}");
    false
}

/// True when `prog` is on PATH; otherwise skips the test loudly (see
/// [`skip`]) and returns false.
#[track_caller]
pub fn require_peer(prog: &str) -> bool {
    if in_path(prog) {
        return true;
    }
    skip(&format!(
        "needs {prog} (apt-get install {})",
        package_of(prog)
    ))
}

/// True when `nc` is OpenBSD netcat (the one with `-N`).
#[track_caller]
pub fn require_openbsd_nc() -> bool {
    if !require_peer("nc") {
        return false;
    }
    let help = Command::new("nc")
        .arg("-h")
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let mut all = o.stdout;
            all.extend_from_slice(&o.stderr);
            String::from_utf8_lossy(&all).into_owned()
        })
        .unwrap_or_default();
    if help.contains("-N") && help.to_lowercase().contains("shutdown") {
        true
    } else {
        skip("needs OpenBSD nc with -N (apt-get install netcat-openbsd)")
    }
}

// ---------------------------------------------------------------------------
// Slow readers and temporary files

/// A file in the temp directory, removed on drop.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    /// Writes `bytes` to a fresh file named after `name` and this process.
    #[track_caller]
    pub fn with(name: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("duplex-test-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `n` bytes of numbered lines (`line 000001 ...\n`), none of them empty.
pub fn numbered_lines(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(
            format!("line {i:08} of a reply that takes a while to read\n").as_bytes(),
        );
        i += 1;
    }
    out.truncate(n);
    out
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
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
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
        while Instant::now() < deadline && !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            match peer.write(&chunk) {
                Ok(n) => {
                    counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
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
    while count.load(std::sync::atomic::Ordering::Relaxed) < at_least {
        assert!(
            Instant::now() < deadline,
            "the flood never reached {at_least} bytes"
        );
        thread::sleep(POLL);
    }
}
