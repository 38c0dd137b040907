//! The room benchmark of issue 4: P peers on loopback, each sends L lines;
//! every peer must get every other peer's lines, in order, exactly once.
//! Reports delivered lines per second, the server's peak RSS (`VmHWM`,
//! sampled every 5 ms), its thread count and its CPU time (user + system,
//! all threads, from its start to the end of the run; less noisy than the
//! rate on a shared machine), for `duplex serve --room`, for
//! the same room with one extra peer that never reads, and for
//! `ncat --chat` when it is on PATH.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example bench -- room [--peers 50] [--lines 500]
//! cargo run --release --example bench -- room --idle --peers 500 --max-peers 1000
//! ```
//!
//! Every wait is bounded, in count and in time; a run that does not complete
//! is reported as such, never waited for for ever.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: bench room [--peers P] [--lines L] [--line-bytes B] [--max-peers N]
                  [--no-slow] [--no-ncat] [--idle] [--timeout SECS]
  --peers P        peers in the room (default 50)
  --lines L        lines each peer sends (default 500)
  --line-bytes B   bytes per line, with its newline (default 64)
  --max-peers N    the server's --max-peers (default: P + 8, at least 64)
  --no-slow        skip the run with one extra peer that never reads
  --no-ncat        skip ncat --chat
  --idle           only connect P idle peers and report memory and threads
  --timeout SECS   bound on each run (default 120)";

struct Options {
    peers: usize,
    lines: usize,
    line_bytes: usize,
    max_peers: usize,
    slow: bool,
    ncat: bool,
    idle: bool,
    timeout: Duration,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        peers: 50,
        lines: 500,
        line_bytes: 64,
        max_peers: 0,
        slow: true,
        ncat: true,
        idle: false,
        timeout: Duration::from_secs(120),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number\n{USAGE}"))
        };
        match arg.as_str() {
            "--peers" => options.peers = value("--peers")?,
            "--lines" => options.lines = value("--lines")?,
            "--line-bytes" => options.line_bytes = value("--line-bytes")?,
            "--max-peers" => options.max_peers = value("--max-peers")?,
            "--timeout" => options.timeout = Duration::from_secs(value("--timeout")? as u64),
            "--no-slow" => options.slow = false,
            "--no-ncat" => options.ncat = false,
            "--idle" => options.idle = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if options.peers < 2 {
        return Err("--peers must be at least 2".into());
    }
    if options.line_bytes < 24 {
        return Err("--line-bytes must be at least 24".into());
    }
    if options.max_peers == 0 {
        options.max_peers = (options.peers + 8).max(64);
    }
    Ok(options)
}

/// Runs the room benchmark with the arguments after `room`.
pub fn main(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let duplex = find_duplex()?;
    println!(
        "room benchmark: {} peers, load {:?}, {} cores, {}",
        options.peers,
        load(),
        thread::available_parallelism().map_or(0, |n| n.get()),
        duplex.display()
    );
    if options.idle {
        return idle(&duplex, &options);
    }
    println!(
        "each peer sends {} lines of {} bytes; every peer must get the other {} peers' lines",
        options.lines,
        options.line_bytes,
        options.peers - 1
    );
    let mut rows = Vec::new();
    rows.push((
        "duplex --room",
        run(Tool::Duplex(&duplex), &options, false)?,
    ));
    if options.slow {
        rows.push((
            "duplex --room, +1 never reads",
            run(Tool::Duplex(&duplex), &options, true)?,
        ));
    }
    if options.ncat {
        if which("ncat").is_some() {
            rows.push(("ncat --chat", run(Tool::Ncat, &options, false)?));
        } else {
            println!("ncat --chat skipped: not on PATH (apt-get install ncat)");
        }
    }
    println!();
    println!(
        "{:<32} {:>14} {:>9} {:>10} {:>8} {:>8}  check",
        "server", "delivered/s", "seconds", "peak RSS", "threads", "CPU s"
    );
    for (name, row) in &rows {
        println!(
            "{:<32} {:>14.0} {:>9.2} {:>7.1} MiB {:>8} {:>8.2}  {}",
            name,
            row.rate(),
            row.elapsed.as_secs_f64(),
            row.peak_rss as f64 / 1048576.0,
            row.threads,
            row.cpu,
            row.check
        );
    }
    let rate = |name: &str| rows.iter().find(|(n, _)| *n == name).map(|(_, r)| r.rate());
    let plain = rate("duplex --room");
    if let (Some(plain), Some(slow)) = (plain, rate("duplex --room, +1 never reads")) {
        let ratio = slow / plain;
        println!(
            "with a never-reading peer: {:.0} % of the rate without (target >= 80 %: {})",
            ratio * 100.0,
            if ratio >= 0.8 { "met" } else { "NOT met" }
        );
    }
    if let (Some(plain), Some(ncat)) = (plain, rate("ncat --chat")) {
        let ratio = plain / ncat;
        println!(
            "duplex / ncat --chat: {ratio:.2}x (target >= 2: {})",
            if ratio >= 2.0 { "met" } else { "NOT met" }
        );
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Tool<'a> {
    Duplex(&'a Path),
    Ncat,
}

/// One run's figures.
struct Row {
    delivered: usize,
    elapsed: Duration,
    peak_rss: u64,
    threads: usize,
    /// The server's CPU seconds from start to the end of the run.
    cpu: f64,
    check: String,
}

impl Row {
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The server under test, killed (by its own handle) on drop.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
    sampler: Sampler,
    /// Peers the server evicted (read from its stderr when it stops).
    evicted: usize,
}

impl Server {
    fn start(tool: Tool, max_peers: usize, timeout: Duration) -> Result<Server, String> {
        let mut port = 0;
        let mut command = match tool {
            Tool::Duplex(path) => {
                let mut c = Command::new(path);
                c.args(["serve", "--room", "--max-peers"])
                    .arg(max_peers.to_string())
                    .args(["-b", "127.0.0.1", "0"]);
                c
            }
            Tool::Ncat => {
                port = free_port()?;
                let mut c = Command::new("ncat");
                c.args(["--chat", "-l", "127.0.0.1"])
                    .arg(port.to_string())
                    .args(["--max-conns"])
                    .arg(max_peers.to_string());
                c
            }
        };
        let program = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start {program}: {e}"))?;
        let stdin = child.stdin.take();
        // The server's stdout is drained as fast as it comes: here it is the
        // one reader that could slow the room, and it is not under test.
        if let Some(mut out) = child.stdout.take() {
            spawn("bench-drain", move || {
                let _ = io::copy(&mut out, &mut io::sink());
            })?;
        }
        let (tx, stderr) = mpsc::channel();
        if let Some(err) = child.stderr.take() {
            spawn("bench-stderr", move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })?;
        }
        let sampler = Sampler::start(child.id())?;
        let mut server = Server {
            child,
            stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
            sampler,
            evicted: 0,
        };
        server.addr = match tool {
            Tool::Duplex(_) => {
                let line = server.wait_stderr("listening on ", timeout)?;
                line.trim_start_matches("listening on ")
                    .trim()
                    .parse()
                    .map_err(|e| format!("bad listening line {line:?}: {e}"))?
            }
            Tool::Ncat => {
                wait_listen(port, timeout)?;
                SocketAddr::from(([127, 0, 0, 1], port))
            }
        };
        Ok(server)
    }

    fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(_) => return Err(format!("server never said {needle:?}")),
            }
        }
    }

    /// Ends the run: the server's goodbye for duplex (stdin EOF), a kill
    /// for ncat, which does not end on its own. Returns peak RSS and threads.
    fn stop(&mut self, tool: Tool, timeout: Duration) -> (u64, usize) {
        self.stdin = None;
        if matches!(tool, Tool::Ncat) {
            let _ = self.child.kill();
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.evicted = self
            .stderr
            .try_iter()
            .filter(|l| l.contains("evicted"))
            .count();
        self.sampler.stop()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples the server's `VmHWM`, thread count and CPU time every 5 ms.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    threads: Arc<AtomicUsize>,
    /// User + system CPU time of all its threads, in clock ticks.
    ticks: Arc<AtomicUsize>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Result<Sampler, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(AtomicUsize::new(0));
        let ticks = Arc::new(AtomicUsize::new(0));
        let handle = spawn("bench-sampler", {
            let (stop, peak, threads, ticks) =
                (stop.clone(), peak.clone(), threads.clone(), ticks.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    // Fields 14 and 15 (utime, stime), after the `(comm)`.
                    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        && let Some((_, rest)) = stat.rsplit_once(") ")
                    {
                        let cpu: usize = rest
                            .split_whitespace()
                            .skip(11)
                            .take(2)
                            .filter_map(|v| v.parse::<usize>().ok())
                            .sum();
                        ticks.fetch_max(cpu, Ordering::Relaxed);
                    }
                    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                        break;
                    };
                    for line in status.lines() {
                        let field = |l: &str| {
                            l.split_whitespace()
                                .nth(1)
                                .and_then(|v| v.parse::<usize>().ok())
                        };
                        if line.starts_with("VmHWM:") {
                            peak.fetch_max(field(line).unwrap_or(0) * 1024, Ordering::Relaxed);
                        } else if line.starts_with("Threads:") {
                            threads.fetch_max(field(line).unwrap_or(0), Ordering::Relaxed);
                        }
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            }
        })?;
        Ok(Sampler {
            stop,
            peak,
            threads,
            ticks,
            handle: Some(handle),
        })
    }

    fn now(&self) -> (u64, usize) {
        (
            self.peak.load(Ordering::Relaxed) as u64,
            self.threads.load(Ordering::Relaxed),
        )
    }

    /// The server's CPU time so far, in seconds (at 100 ticks a second).
    fn cpu(&self) -> f64 {
        self.ticks.load(Ordering::Relaxed) as f64 / 100.0
    }

    fn stop(&mut self) -> (u64, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        self.now()
    }
}

/// What one peer's reader found.
#[derive(Default)]
struct Got {
    /// Intact lines from other peers, in order.
    lines: usize,
    /// Lines that were out of order, repeated, cut or mixed up.
    bad: usize,
    /// The peer's own lines coming back.
    echoed: usize,
    done_at: Option<Instant>,
}

/// The body of a line: `p{sender} {number} xxx…`.
fn body(sender: usize, n: usize, line_bytes: usize) -> String {
    let mut line = format!("p{sender} {n} ");
    while line.len() < line_bytes - 1 {
        line.push('x');
    }
    line.push('\n');
    line
}

/// One load run: connect, wait until everyone is in, send, check.
fn run(tool: Tool, options: &Options, slow: bool) -> Result<Row, String> {
    let mut server = Server::start(tool, options.max_peers, options.timeout)?;
    let deadline = Instant::now() + options.timeout;
    let peers = options.peers;
    let expected = (peers - 1) * options.lines;
    let joined = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel::<()>();

    let mut slow_peer = None;
    if slow {
        let s = TcpStream::connect(server.addr).map_err(|e| format!("slow peer: {e}"))?;
        slow_peer = Some(s);
    }
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for i in 0..peers {
        let stream = TcpStream::connect(server.addr)
            .map_err(|e| format!("peer {i} could not connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let reader = stream.try_clone().map_err(|e| e.to_string())?;
        let (joined, done, line_bytes) = (joined.clone(), done_tx.clone(), options.line_bytes);
        readers.push(spawn("bench-reader", move || {
            read_peer(
                reader,
                i,
                peers,
                expected,
                line_bytes,
                i == 0,
                &joined,
                &done,
                deadline,
            )
        })?);
        writers.push(stream);
    }
    drop(done_tx);
    // Everyone is in when peer 0 has heard of every later peer joining.
    let settle = Instant::now() + options.timeout;
    while joined.load(Ordering::Relaxed) < peers - 1 {
        if Instant::now() > settle {
            return Err(format!(
                "only {} of {} join notices arrived",
                joined.load(Ordering::Relaxed),
                peers - 1
            ));
        }
        thread::sleep(Duration::from_millis(5));
    }

    let start = Instant::now();
    let mut senders = Vec::new();
    for (i, stream) in writers.iter().enumerate() {
        let mut stream = stream.try_clone().map_err(|e| e.to_string())?;
        let (lines, line_bytes) = (options.lines, options.line_bytes);
        senders.push(spawn("bench-writer", move || {
            let mut batch = String::new();
            for n in 0..lines {
                batch.push_str(&body(i, n, line_bytes));
                if batch.len() >= 4096 || n + 1 == lines {
                    if stream.write_all(batch.as_bytes()).is_err() {
                        return;
                    }
                    batch.clear();
                }
            }
        })?);
    }
    // Wait for every reader to be complete (or to give up), bounded.
    let mut complete = 0;
    while complete < peers {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => complete += 1,
            Err(_) => break,
        }
    }
    for sender in senders {
        let _ = sender.join();
    }
    let (peak_rss, threads) = server.sampler.now();
    let cpu = server.sampler.cpu();
    // Close the room: duplex says goodbye; the peers then read to EOF.
    if matches!(tool, Tool::Ncat) {
        for stream in &writers {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
    let (peak_rss, threads) = {
        let (p, t) = server.stop(tool, Duration::from_secs(10));
        (p.max(peak_rss), t.max(threads))
    };
    drop(slow_peer);
    let mut delivered = 0;
    let mut bad = 0;
    let mut echoed = 0;
    let mut last = start;
    let mut incomplete = 0;
    for reader in readers {
        let got = reader.join().map_err(|_| "a reader panicked".to_string())?;
        delivered += got.lines;
        bad += got.bad;
        echoed += got.echoed;
        match got.done_at {
            Some(at) => last = last.max(at),
            None => incomplete += 1,
        }
    }
    if incomplete > 0 {
        last = Instant::now();
    }
    let ok = incomplete == 0 && bad == 0 && echoed == 0;
    let mut check = Vec::new();
    if ok {
        check.push("ok: all in order, exactly once".to_owned());
    }
    if incomplete > 0 {
        check.push(format!("{incomplete} peers incomplete"));
    }
    if bad > 0 {
        check.push(format!("{bad} lines cut, reordered or repeated"));
    }
    if echoed > 0 {
        check.push(format!("{echoed} own lines echoed"));
    }
    if server.evicted > 0 {
        check.push(format!("{} peers evicted", server.evicted));
    }
    if matches!(tool, Tool::Duplex(_)) && !ok {
        return Err(format!(
            "duplex failed the delivery check: {}",
            check.join(", ")
        ));
    }
    Ok(Row {
        delivered,
        elapsed: last - start,
        peak_rss,
        threads,
        cpu,
        check: check.join(", "),
    })
}

/// A peer's reader: counts join notices (peer 0 only), then checks every
/// line: from another peer, in order per sender, exactly once.
#[allow(clippy::too_many_arguments)]
fn read_peer(
    stream: TcpStream,
    me: usize,
    peers: usize,
    expected: usize,
    line_bytes: usize,
    count_joins: bool,
    joined: &AtomicUsize,
    done: &mpsc::Sender<()>,
    deadline: Instant,
) -> Got {
    let mut got = Got::default();
    let mut next = vec![0usize; peers];
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line = Vec::new();
    let mut told = false;
    loop {
        if Instant::now() > deadline {
            break;
        }
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if told {
                    break;
                }
                continue;
            }
            Err(_) => break,
        }
        if line == b"\n" {
            // The server's goodbye.
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        if text.starts_with("* ") || text.starts_with("<announce>") {
            if count_joins && (text.ends_with("joined\n") || text.contains("is connected as")) {
                joined.fetch_add(1, Ordering::Relaxed);
            }
            // Peers whose connection was made first are in the welcome
            // instead: `* you are [..]; here: [server], [a], [b]`.
            if count_joins && let Some((_, here)) = text.split_once("; here: [server]") {
                joined.fetch_add(here.matches(", ").count(), Ordering::Relaxed);
            }
            continue;
        }
        // Strip the sender's label: `[ADDR] ` (duplex) or `<userN> ` (ncat,
        // which labels read() chunks, not lines).
        let mut rest = text.as_ref();
        if (rest.starts_with('[') || rest.starts_with('<'))
            && let Some(space) = rest.find("] ").or_else(|| rest.find("> "))
        {
            rest = &rest[space + 2..];
        }
        let parsed = rest.strip_prefix('p').and_then(|r| {
            let mut parts = r.splitn(3, ' ');
            let sender: usize = parts.next()?.parse().ok()?;
            let n: usize = parts.next()?.parse().ok()?;
            Some((sender, n))
        });
        match parsed {
            Some((sender, n)) if sender < peers && rest == body(sender, n, line_bytes) => {
                if sender == me {
                    got.echoed += 1;
                } else if next[sender] == n {
                    next[sender] += 1;
                    got.lines += 1;
                } else {
                    got.bad += 1;
                }
            }
            _ => got.bad += 1,
        }
        if !told && got.lines == expected {
            got.done_at = Some(Instant::now());
            told = true;
            let _ = done.send(());
        }
    }
    if !told {
        let _ = done.send(());
    }
    got
}

/// `--idle`: P peers connect and stay silent; report memory and threads.
fn idle(duplex: &Path, options: &Options) -> Result<(), String> {
    let mut server = Server::start(Tool::Duplex(duplex), options.max_peers, options.timeout)?;
    let start = Instant::now();
    let mut peers = Vec::new();
    for i in 0..options.peers {
        let stream = TcpStream::connect(server.addr)
            .map_err(|e| format!("peer {i} could not connect: {e}"))?;
        peers.push(stream);
    }
    let mut joined = 0;
    while joined < options.peers {
        server.wait_stderr("joined", options.timeout)?;
        joined += 1;
    }
    let connected = start.elapsed();
    // A little traffic through the full room: one line to everyone.
    let line = b"hello, everyone\n";
    peers[0].write_all(line).map_err(|e| e.to_string())?;
    for (i, peer) in peers.iter_mut().enumerate().skip(1) {
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(&*peer);
        let mut text = String::new();
        loop {
            text.clear();
            reader
                .read_line(&mut text)
                .map_err(|e| format!("peer {i}: {e}"))?;
            if text.is_empty() {
                return Err(format!("peer {i}: EOF before the hello"));
            }
            if text.ends_with("] hello, everyone\n") {
                break;
            }
        }
    }
    let (rss, threads) = server.sampler.now();
    let (rss, threads) = {
        let (p, t) = server.stop(Tool::Duplex(duplex), Duration::from_secs(20));
        (p.max(rss), t.max(threads))
    };
    let mut clean = 0;
    for peer in &mut peers {
        let mut rest = Vec::new();
        if peer.read_to_end(&mut rest).is_ok() {
            clean += 1;
        }
    }
    let mib = rss as f64 / 1048576.0;
    println!(
        "{} idle peers (--max-peers {}): all joined in {:.2} s, one line reached all; \
         peak RSS {mib:.1} MiB, {threads} threads; {clean} peers closed cleanly",
        options.peers,
        options.max_peers,
        connected.as_secs_f64()
    );
    println!(
        "target: peak RSS <= 32 MiB at 500 idle peers: {}",
        if mib <= 32.0 { "met" } else { "NOT met" }
    );
    Ok(())
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<thread::JoinHandle<T>, String> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| format!("could not start a thread: {e}"))
}

fn which(prog: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(prog))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Polls `/proc/net/tcp` until something listens on `port` (a probe
/// connection would count as a chat client).
fn wait_listen(port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let needle = format!(":{port:04X} ");
    while Instant::now() < deadline {
        if let Ok(table) = std::fs::read_to_string("/proc/net/tcp")
            && table
                .lines()
                .any(|l| l.contains(&needle) && l.split_whitespace().nth(3) == Some("0A"))
        {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(5));
    }
    Err(format!("nothing listened on port {port}"))
}

/// The release binary next to this example (`target/release/examples/bench`
/// → `target/release/duplex`), whatever the target directory is.
fn find_duplex() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where am I? {e}"))?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected location {}", exe.display()))?;
    let duplex = dir.join("duplex");
    if !duplex.is_file() {
        return Err(format!(
            "no binary at {}: build it first with `cargo build --release` \
             (with the same CARGO_TARGET_DIR), then run \
             `cargo run --release --example bench -- room`",
            duplex.display()
        ));
    }
    if dir.file_name().is_some_and(|n| n != "release") {
        eprintln!(
            "bench: warning: {} is not a release build",
            duplex.display()
        );
    }
    Ok(duplex)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
