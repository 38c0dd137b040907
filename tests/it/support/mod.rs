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
//! - [`sockets`]: raw TCP peers (plain `std::net::TcpStream`s with
//!   timeouts), ports, floods and slow readers; [`peers`]: skipping loudly
//!   when an outside program is missing; [`load`]: tests whose premise is
//!   timing run alone.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};

pub mod load;
mod peers;
mod sockets;
mod tmux;

pub use peers::*;
pub use sockets::*;
pub use tmux::Tmux;

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

/// The exit code a shell printed with `echo exit=$?` on a screen: a line
/// that is `exit=` then digits. The typed command's own `exit=$?` can start
/// a line too when a long command wraps, and must not count.
pub fn shell_exit(screen: &str) -> Option<i32> {
    screen
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("exit=")?.parse().ok())
}

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
// Temporary files and payloads

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
