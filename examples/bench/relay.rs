//! The relay benchmark of issue 3: bulk throughput and peak memory of
//! `duplex connect --raw` → `duplex serve --once --raw` (and chat mode)
//! against OpenBSD `nc`, `socat` and `ncat` doing the same transfer, then the
//! round-trip latency of one short line through a chat-mode relay, duplex
//! against `nc`. Issue 12 adds `duplex --secret` rows (encrypted raw), a
//! `socat OPENSSL` relay to compare them with, and the secret handshake's
//! time (median of `--handshakes`, in-process over loopback).
//!
//! Fairness rules, the same for every tool:
//! - the data is a file on disk (deterministic text lines, no empty line),
//!   given to the sender as its stdin; the receiver writes to a file;
//! - the clock runs from the sender's spawn until both processes have exited;
//! - the output is verified (length and hash, streamed) after the clock stops;
//! - peak memory is `VmHWM` from `/proc/PID/status`, sampled every 5 ms;
//! - the result of each tool is the median of `--runs` runs, interleaved
//!   tool by tool, so a burst of load elsewhere hits every tool alike.
//!
//! Every wait has a deadline; whatever we started is killed by its own
//! handle (or PID) when one passes, and the temp directory is removed.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const MIB: u64 = 1024 * 1024;
/// How long a listener may take to come up.
const STARTUP: Duration = Duration::from_secs(10);
/// How often peak memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// Round trips run before measuring (connection set-up, warm caches).
const WARMUP_ROUNDTRIPS: usize = 200;
/// The line sent on each round trip.
const PING: &[u8] = b"ping 0123456789 abcdefghij\n";

const USAGE: &str = "\
usage: bench [relay] [--mib N] [--roundtrips N] [--runs N] [--rss-mib N]
             [--only TOOLS] [--no-throughput] [--no-latency]
  --mib N          size of the bulk transfer in MiB (default 1024)
  --runs N         runs per tool; the median is reported (default 5)
  --roundtrips N   round trips measured for latency (default 5000)
  --rss-mib N      also stream N MiB (e.g. 4096) once through duplex raw and
                   chat, generated and checked on the fly (no temp file), to
                   see whether peak memory grows with the transfer size
  --only TOOLS     comma-separated subset of: duplex-raw,duplex-chat,
                   duplex-secret,duplex-tls,nc,socat,socat-tls,ncat (socat-tls,
                   raw over TLS, needs openssl to make its certificate)
  --handshakes N   secret handshakes timed (default 100; 0: none)
  --live           also run duplex raw with both stderrs on a pty (the live
                   progress line drawn, issue 16), row `duplex raw +live`,
                   interleaved with the plain duplex raw row
  bench room ...   the room benchmark";

struct Options {
    mib: u64,
    runs: usize,
    roundtrips: usize,
    rss_mib: Option<u64>,
    only: Option<Vec<String>>,
    throughput: bool,
    latency: bool,
    handshakes: usize,
    live: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        mib: 1024,
        runs: 5,
        roundtrips: 5000,
        rss_mib: None,
        only: None,
        throughput: true,
        latency: true,
        handshakes: 100,
        live: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
                .cloned()
        };
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{name}: not a positive number: {v}\n{USAGE}"))
        };
        match arg.as_str() {
            "--mib" => o.mib = number("--mib", value("--mib")?)?,
            "--runs" => o.runs = number("--runs", value("--runs")?)? as usize,
            "--roundtrips" => {
                o.roundtrips = number("--roundtrips", value("--roundtrips")?)? as usize;
            }
            "--rss-mib" => o.rss_mib = Some(number("--rss-mib", value("--rss-mib")?)?),
            "--only" => {
                o.only = Some(value("--only")?.split(',').map(str::to_owned).collect());
            }
            "--handshakes" => {
                let v = value("--handshakes")?;
                o.handshakes = v
                    .parse()
                    .map_err(|_| format!("--handshakes: not a number: {v}\n{USAGE}"))?;
            }
            "--no-throughput" => o.throughput = false,
            "--no-latency" => o.latency = false,
            "--live" => o.live = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// Runs the relay benchmark with the command-line arguments after `bench`.
pub fn main(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let duplex = find_duplex()?;
    let tmp = TempDir::new()?;
    let mut peers = Peers::find();
    peers.find_tls(&tmp.path);

    println!("duplex relay benchmark");
    println!("  binary: {}", duplex.display());
    println!(
        "  machine: {} CPUs, load before: {}",
        thread::available_parallelism().map_or(0, usize::from),
        load()
    );
    for note in &peers.notes {
        println!("  note: {note}");
    }

    let mut rows = Vec::new();
    if options.throughput {
        let data = tmp.path.join("data");
        let out = tmp.path.join("out");
        let started = Instant::now();
        let expected = write_data(&data, options.mib * MIB)
            .map_err(|e| format!("writing {}: {e}", data.display()))?;
        println!(
            "  data: {} MiB of text lines, hash {:016x}, generated in {:.1} s",
            options.mib,
            expected.hash,
            started.elapsed().as_secs_f64()
        );
        let mut all = tools(&duplex, &peers);
        if options.live {
            all.insert(1, live_tool(&all[0]));
        }
        let tools: Vec<Tool> = all
            .into_iter()
            .filter(|t| {
                options
                    .only
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|o| o == t.key))
            })
            .collect();
        let mut results: Vec<Vec<Measure>> = tools.iter().map(|_| Vec::new()).collect();
        for run in 1..=options.runs {
            for (tool, results) in tools.iter().zip(&mut results) {
                let m = transfer(tool, Source::File(&data), Sink::File(&out), expected)
                    .map_err(|e| format!("{} (run {run}): {e}", tool.name))?;
                eprintln!(
                    "  run {run}/{}: {:<15} {:>7.1} MiB/s  cpu {:.2} s  rss {} / {}",
                    options.runs,
                    tool.name,
                    options.mib as f64 / m.secs,
                    m.cpu,
                    mib_str(m.rss_send),
                    mib_str(m.rss_recv)
                );
                results.push(m);
                let _ = std::fs::remove_file(&out);
            }
        }
        let _ = std::fs::remove_file(&data);
        for (tool, measures) in tools.iter().zip(results) {
            rows.push(Row::summarise(tool, options.mib, &measures));
        }
    }

    let mut big = Vec::new();
    if let Some(mib) = options.rss_mib {
        for tool in tools(&duplex, &peers)
            .into_iter()
            .filter(|t| t.key.starts_with("duplex"))
        {
            let m = transfer(
                &tool,
                Source::Stream(mib * MIB),
                Sink::Stream,
                Sum::default(),
            )
            .map_err(|e| format!("{} ({mib} MiB streamed): {e}", tool.name))?;
            big.push((tool.name, mib, m));
        }
    }

    let handshake = (options.handshakes > 0)
        .then(|| secret_handshakes(options.handshakes))
        .transpose()?;

    let mut latencies = Vec::new();
    if options.latency {
        match which("taskset") {
            None => println!("  note: latency skipped: taskset not found (util-linux)"),
            Some(_) => {
                // In --runs rounds, duplex and nc alternating, so a burst of
                // load elsewhere hits both alike.
                let rounds = options.runs.min(options.roundtrips);
                let per_round = options.roundtrips.div_ceil(rounds);
                let (mut duplex_samples, mut nc_samples) = (Vec::new(), Vec::new());
                for _ in 0..rounds {
                    duplex_samples.push(round_trips(Relay::Duplex(&duplex), per_round)?);
                    if peers.nc {
                        nc_samples.push(round_trips(Relay::Nc, per_round)?);
                    }
                }
                latencies.push(("duplex", Latency::of(duplex_samples)));
                if peers.nc {
                    latencies.push(("nc", Latency::of(nc_samples)));
                }
            }
        }
    }

    println!("  load after: {}", load());
    println!();
    print!("{}", report(&options, &rows, &big, &latencies));
    print!("{}", secret_report(&options, &rows, handshake));
    Ok(())
}

/// The words every `--secret` row uses (on the command line: the warning
/// it prints goes to the receiver's stderr, which the bench only scans).
const BENCH_WORDS: &str = "bench-olive-tundra-marble";

/// `n` secret handshakes, client and server in this process over loopback:
/// the median and the 99th percentile in milliseconds.
fn secret_handshakes(n: usize) -> Result<(f64, f64), String> {
    use duplex::transport::secret::{self, Role, Secret};
    use std::net::TcpStream;
    use std::sync::Arc;
    let secret = Secret::new(BENCH_WORDS).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let (client, server) = thread::scope(|scope| {
            let client = scope.spawn(|| -> Result<(), String> {
                let socket = Arc::new(TcpStream::connect(addr).map_err(|e| e.to_string())?);
                secret::connect(&socket, Role::Client, &secret, None, Instant::now())
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
            let server = listener
                .accept()
                .map_err(|e| e.to_string())
                .and_then(|(stream, _)| {
                    secret::connect(
                        &Arc::new(stream),
                        Role::Server,
                        &secret,
                        None,
                        Instant::now(),
                    )
                    .map(drop)
                    .map_err(|e| e.to_string())
                });
            (client.join(), server)
        });
        client.map_err(|_| "the client thread panicked".to_owned())??;
        server?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[n / 2], times[(n * 99 / 100).min(n - 1)]))
}

/// The `--secret` rows against plain duplex and socat's OPENSSL relay, and
/// issue 12's targets.
fn secret_report(options: &Options, rows: &[Row], handshake: Option<(f64, f64)>) -> String {
    let mut s = String::new();
    let find = |key: &str| rows.iter().find(|r| r.key == key);
    let _ = writeln!(s, "targets (issue 12, --secret):");
    if let Some(secret) = find("duplex-secret") {
        if let Some(raw) = find("duplex-raw") {
            let ratio = secret.mib_s / raw.mib_s;
            let _ = writeln!(
                s,
                "- duplex --secret raw / duplex raw: {:.0} / {:.0} MiB/s = {ratio:.2} (target >= 0.5): {}",
                secret.mib_s,
                raw.mib_s,
                verdict(ratio >= 0.5)
            );
        }
        if let Some(tls) = find("socat-tls") {
            let ratio = secret.mib_s / tls.mib_s;
            let _ = writeln!(
                s,
                "- duplex --secret raw / socat OPENSSL: {:.0} / {:.0} MiB/s = {ratio:.2} (target >= 1): {}",
                secret.mib_s,
                tls.mib_s,
                verdict(ratio >= 1.0)
            );
        }
        let peak = secret.rss_send.max(secret.rss_recv);
        let _ = writeln!(
            s,
            "- duplex --secret peak RSS: {} (target <= 16 MiB): {}",
            mib_str(peak),
            verdict(peak <= 16 * MIB)
        );
    }
    if let Some((p50, p99)) = handshake {
        let _ = writeln!(
            s,
            "- secret handshake on loopback, median of {}: {p50:.2} ms (p99 {p99:.2} ms) (target <= 5 ms): {}",
            options.handshakes,
            verdict(p50 <= 5.0)
        );
    }
    s
}

// ---------------------------------------------------------------------------
// The tools

/// One way of moving the file: a receiver and a sender command.
struct Tool {
    key: &'static str,
    name: &'static str,
    /// Receiver argv; `{port}` is replaced by the port.
    receiver: Vec<String>,
    /// Sender argv; `{port}` is replaced by the port.
    sender: Vec<String>,
    /// The receiver prints `listening on ADDR` (duplex); otherwise we pick a
    /// free port and poll `/proc/net/tcp` for its listener.
    reports_port: bool,
    /// Both stderrs are a pseudo-terminal (duplex draws its live line).
    pty: bool,
}

/// `duplex raw` with the live progress line on both sides: the same
/// command lines (without the sender's -q, which turns the line off), with
/// stderr on a pty.
fn live_tool(raw: &Tool) -> Tool {
    assert_eq!(raw.key, "duplex-raw", "the live row copies duplex raw");
    Tool {
        key: "duplex-raw-live",
        name: "duplex raw +live",
        receiver: raw.receiver.clone(),
        sender: raw.sender.iter().filter(|a| *a != "-q").cloned().collect(),
        reports_port: true,
        pty: true,
    }
}

struct Peers {
    nc: bool,
    socat: bool,
    ncat: bool,
    /// A certificate and key for socat's TLS listener, made with openssl.
    tls: Option<(String, String)>,
    notes: Vec<String>,
}

impl Peers {
    fn find() -> Peers {
        let mut notes = Vec::new();
        let nc = which("nc").is_some() && openbsd_nc();
        if !nc {
            notes.push("nc skipped: OpenBSD nc not found (apt-get install netcat-openbsd)".into());
        }
        let socat = which("socat").is_some();
        if !socat {
            notes.push("socat skipped: not found (apt-get install socat)".into());
        }
        let ncat = which("ncat").is_some();
        if !ncat {
            notes.push("ncat skipped: not found (apt-get install ncat)".into());
        }
        Peers {
            nc,
            socat,
            ncat,
            tls: None,
            notes,
        }
    }

    /// Makes the certificate `socat OPENSSL-LISTEN` needs, in `dir`.
    fn find_tls(&mut self, dir: &Path) {
        if !self.socat {
            return;
        }
        let (cert, key) = (dir.join("tls.pem"), dir.join("tls.key"));
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        match (made, cert.to_str(), key.to_str()) {
            (true, Some(cert), Some(key)) => self.tls = Some((cert.to_owned(), key.to_owned())),
            _ => self
                .notes
                .push("socat-tls skipped: openssl could not make a certificate".into()),
        }
    }
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|&s| s.to_owned()).collect()
}

fn tools(duplex: &Path, peers: &Peers) -> Vec<Tool> {
    let d = duplex.to_str().expect("the binary path is UTF-8");
    let mut tools = vec![
        Tool {
            key: "duplex-raw",
            name: "duplex raw",
            // stdin is /dev/null: in raw mode that only half-closes.
            receiver: argv(&[d, "serve", "--once", "--raw", "-b", "127.0.0.1", "0"]),
            sender: argv(&[d, "connect", "-q", "--raw", "127.0.0.1", "{port}"]),
            reports_port: true,
            pty: false,
        },
        Tool {
            key: "duplex-chat",
            name: "duplex chat",
            // In chat mode an empty stdin would be a goodbye at once, which
            // would end the sender's conversation: the receiver only listens.
            receiver: argv(&[d, "serve", "--once", "--recv-only", "-b", "127.0.0.1", "0"]),
            // The data has no empty line: its EOF is the sender's goodbye.
            sender: argv(&[d, "connect", "-q", "127.0.0.1", "{port}"]),
            reports_port: true,
            pty: false,
        },
        Tool {
            key: "duplex-secret",
            name: "duplex --secret",
            receiver: vec![
                d.to_owned(),
                "serve".into(),
                "--once".into(),
                "--raw".into(),
                format!("--secret={BENCH_WORDS}"),
                "-b".into(),
                "127.0.0.1".into(),
                "0".into(),
            ],
            sender: vec![
                d.to_owned(),
                "connect".into(),
                "-q".into(),
                "--raw".into(),
                format!("--secret={BENCH_WORDS}"),
                "127.0.0.1".into(),
                "{port}".into(),
            ],
            reports_port: true,
            pty: false,
        },
    ];
    tools.push(Tool {
        key: "duplex-tls",
        name: "duplex raw TLS",
        receiver: argv(&[
            d,
            "serve",
            "--once",
            "--raw",
            "--tls",
            "-b",
            "127.0.0.1",
            "0",
        ]),
        sender: argv(&[
            d,
            "connect",
            "-q",
            "--raw",
            "--tls",
            "--tls-insecure",
            "127.0.0.1",
            "{port}",
        ]),
        reports_port: true,
        pty: false,
    });
    if peers.nc {
        tools.push(Tool {
            key: "nc",
            name: "nc",
            receiver: argv(&["nc", "-l", "127.0.0.1", "{port}"]),
            sender: argv(&["nc", "-N", "127.0.0.1", "{port}"]),
            reports_port: false,
            pty: false,
        });
    }
    if peers.socat {
        tools.push(Tool {
            key: "socat",
            name: "socat -b 65536",
            receiver: argv(&[
                "socat",
                "-u",
                "-b",
                "65536",
                "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr",
                "STDOUT",
            ]),
            sender: argv(&[
                "socat",
                "-u",
                "-b",
                "65536",
                "STDIN",
                "TCP:127.0.0.1:{port}",
            ]),
            reports_port: false,
            pty: false,
        });
    }
    if let Some((cert, key)) = &peers.tls {
        tools.push(Tool {
            key: "socat-tls",
            name: "socat OPENSSL",
            receiver: vec![
                "socat".into(),
                "-u".into(),
                "-b".into(),
                "65536".into(),
                format!(
                    "OPENSSL-LISTEN:{{port}},bind=127.0.0.1,reuseaddr,cert={cert},key={key},verify=0"
                ),
                "STDOUT".into(),
            ],
            sender: argv(&[
                "socat",
                "-u",
                "-b",
                "65536",
                "STDIN",
                "OPENSSL:127.0.0.1:{port},verify=0",
            ]),
            reports_port: false,
            pty: false,
        });
    }
    if peers.ncat {
        tools.push(Tool {
            key: "ncat",
            name: "ncat",
            receiver: argv(&["ncat", "--recv-only", "-l", "127.0.0.1", "{port}"]),
            sender: argv(&["ncat", "--send-only", "127.0.0.1", "{port}"]),
            reports_port: false,
            pty: false,
        });
    }
    tools
}

fn openbsd_nc() -> bool {
    Command::new("nc")
        .arg("-h")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.contains("OpenBSD")
        })
}

fn which(prog: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(prog))
        .find(|p| p.is_file())
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
             `cargo run --release --example bench`",
            duplex.display()
        ));
    }
    if dir.file_name().is_some_and(|n| n != "release") {
        eprintln!(
            "bench: warning: {} is not a release build",
            duplex.display()
        );
    }
    let built = modified(&duplex);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let newest = std::fs::read_dir(&src)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| modified(&e.path()))
        .max();
    if let (Some(built), Some(newest)) = (built, newest)
        && newest > built
    {
        eprintln!(
            "bench: warning: {} is older than {}: run `cargo build --release` first",
            duplex.display(),
            src.display()
        );
    }
    Ok(duplex)
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------
// The data

/// Length and hash of a byte stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sum {
    len: u64,
    hash: u64,
}

/// A fast streaming hash (not cryptographic): eight bytes per multiply, so
/// checking a gigabyte costs a fraction of a second. The result does not
/// depend on how the stream is cut into pieces.
struct Hasher {
    state: u64,
    len: u64,
    tail: [u8; 8],
    tail_len: usize,
}

impl Hasher {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn new() -> Hasher {
        Hasher {
            state: 0x243f_6a88_85a3_08d3,
            len: 0,
            tail: [0; 8],
            tail_len: 0,
        }
    }

    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(Self::K).rotate_left(29);
    }

    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.tail_len > 0 {
            let take = (8 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut words = data.chunks_exact(8);
        for word in &mut words {
            self.mix(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    fn finish(mut self) -> Sum {
        let mut last = [0u8; 8];
        last[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        self.mix(u64::from_le_bytes(last));
        self.mix(self.len);
        Sum {
            len: self.len,
            hash: self.state,
        }
    }
}

/// Deterministic text: lines of words, about 60 to 100 bytes each, never an
/// empty line, exactly `total` bytes ending in `\n`.
struct Generator {
    rng: u64,
    left: u64,
}

const WORDS: &[&str] = &[
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "socket",
    "thread",
    "channel",
    "buffer",
    "duplex",
    "relay",
    "stream",
    "bytes",
    "line",
    "peer",
    "server",
    "client",
    "listen",
    "accept",
    "connect",
    "send",
    "receive",
    "close",
    "half",
    "full",
    "goodbye",
    "hello",
    "linger",
    "timeout",
    "loopback",
    "kernel",
    "pipe",
    "file",
    "data",
    "chunk",
    "scan",
    "memchr",
    "fast",
    "slow",
    "bounded",
    "queue",
    "event",
    "select",
    "coordinator",
    "network",
    "packet",
    "window",
    "flow",
    "control",
    "zero",
    "copy",
    "raw",
    "chat",
    "mode",
    "text",
    "words",
    "random",
    "seed",
    "lorem",
    "ipsum",
    "dolor",
    "sit",
];

impl Generator {
    fn new(total: u64) -> Generator {
        Generator {
            rng: 0x5eed_d00d_cafe_f00d,
            left: total,
        }
    }

    fn next(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Appends whole lines to `buf` until it holds at least `want` bytes or
    /// the data is complete. Returns false once nothing is left.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> bool {
        while buf.len() < want && self.left > 0 {
            if self.left < 256 {
                // The last line: letters up to the exact size (at least two
                // bytes are left here, so it is never empty).
                let n = self.left as usize;
                buf.extend(std::iter::repeat_n(b'z', n - 1));
                buf.push(b'\n');
                self.left = 0;
                break;
            }
            let start = buf.len();
            let target = 60 + (self.next() % 41) as usize;
            let mut r = self.next();
            loop {
                if r < 64 {
                    r = self.next();
                }
                let word = WORDS[(r % WORDS.len() as u64) as usize];
                r /= WORDS.len() as u64;
                buf.extend_from_slice(word.as_bytes());
                if buf.len() - start >= target {
                    break;
                }
                buf.push(b' ');
            }
            buf.push(b'\n');
            self.left -= (buf.len() - start) as u64;
        }
        self.left > 0 || !buf.is_empty()
    }
}

fn write_data(path: &Path, total: u64) -> io::Result<Sum> {
    let mut file = File::create(path)?;
    let mut generator = Generator::new(total);
    let mut hasher = Hasher::new();
    let mut buf = Vec::with_capacity(MIB as usize + 256);
    loop {
        buf.clear();
        if !generator.fill(&mut buf, MIB as usize) {
            break;
        }
        hasher.update(&buf);
        file.write_all(&buf)?;
    }
    Ok(hasher.finish())
}

fn hash_stream(mut reader: impl Read) -> io::Result<Sum> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let path = std::env::temp_dir().join(format!("duplex-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Processes

/// A child we started: killed (by its own handle) and reaped on drop.
struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    stderr: Option<thread::JoinHandle<String>>,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(argv: &[String], stdin: Stdio, stdout: Stdio) -> Result<Proc, String> {
        Proc::spawn_with(argv, stdin, stdout, false)
    }

    /// With `pty`, stderr is a pseudo-terminal whose other side we read.
    fn spawn_with(argv: &[String], stdin: Stdio, stdout: Stdio, pty: bool) -> Result<Proc, String> {
        let name = argv.join(" ");
        let (stderr_to, master) = if pty {
            let (master, slave) = open_pty().map_err(|e| format!("could not open a pty: {e}"))?;
            (Stdio::from(slave), Some(master))
        } else {
            (Stdio::piped(), None)
        };
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr_to)
            .spawn()
            .map_err(|e| format!("could not start `{name}`: {e}"))?;
        let pipe: Box<dyn Read + Send> = match master {
            Some(master) => Box::new(master),
            None => Box::new(child.stderr.take().expect("stderr is piped")),
        };
        let (tx, lines) = mpsc::channel();
        let stderr = thread::Builder::new()
            .name("bench-stderr".into())
            .spawn(move || read_stderr(pipe, &tx))
            .map_err(|e| format!("could not start a thread: {e}"))?;
        Ok(Proc {
            name,
            child,
            status: None,
            stderr: Some(stderr),
            lines,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Has it exited? (Reaps it when it has.)
    fn poll(&mut self) -> Result<bool, String> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|e| format!("waiting for `{}`: {e}", self.name))?;
        }
        Ok(self.status.is_some())
    }

    /// Waits for a `listening on ADDR` line and returns the port.
    fn listening_port(&mut self) -> Result<u16, String> {
        let deadline = Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        return addr
                            .rsplit(':')
                            .next()
                            .and_then(|p| p.trim().parse().ok())
                            .ok_or_else(|| format!("`{}`: bad line {line:?}", self.name));
                    }
                }
                Err(_) => {
                    let stderr = self.finish_stderr();
                    return Err(format!(
                        "`{}` did not print `listening on` within {STARTUP:?}: {stderr}",
                        self.name,
                    ));
                }
            }
        }
    }

    /// Exit status, or an error saying what went wrong, with its stderr.
    fn check(&mut self) -> Result<(), String> {
        match self.status {
            Some(s) if s.success() => Ok(()),
            Some(s) => {
                let stderr = self.finish_stderr();
                Err(format!("`{}` {s}: {stderr}", self.name))
            }
            None => Err(format!("`{}` still running", self.name)),
        }
    }

    fn finish_stderr(&mut self) -> String {
        if self.status.is_none() {
            self.kill();
        }
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
            .trim_end()
            .to_owned()
    }

    fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A pseudo-terminal of 120 x 30: the master (ours to read) and the slave
/// (the child's stderr). Once every copy of the slave is closed, reading
/// the master fails (EIO): that is its end.
fn open_pty() -> io::Result<(File, File)> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let winsize = rustix::termios::Winsize {
        ws_row: 30,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&master, winsize)?;
    let path = {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(name.as_bytes()))
    };
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    Ok((File::from(master), slave))
}

fn read_stderr(pipe: impl Read, lines: &mpsc::Sender<String>) -> String {
    let mut all = String::new();
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        all.push_str(&line);
        all.push('\n');
        let _ = lines.send(line);
    }
    all
}

/// Peak resident memory (`VmHWM`) in bytes, while the process lives.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A port that was free a moment ago, for peers that cannot report theirs.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("could not find a free port: {e}"))
}

/// Polls `/proc/net/tcp` until `port` is in LISTEN state (a probe
/// connection would be some peers' one conversation).
fn wait_listen(port: u16, proc: &mut Proc) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP;
    let needle = format!(":{port:04X} ");
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let listening = table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && format!("{} ", fields[1]).ends_with(&needle) && fields[3] == "0A"
        });
        if listening {
            return Ok(());
        }
        if proc.poll()? || Instant::now() > deadline {
            let stderr = proc.finish_stderr();
            return Err(format!(
                "`{}` did not listen on port {port}: {stderr}",
                proc.name
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------
// Throughput

enum Source<'a> {
    File(&'a Path),
    /// Generate this many bytes into the sender's stdin on the fly.
    Stream(u64),
}

enum Sink<'a> {
    File(&'a Path),
    /// Hash the receiver's stdout on the fly.
    Stream,
}

#[derive(Clone, Copy, Debug)]
struct Measure {
    secs: f64,
    rss_send: u64,
    rss_recv: u64,
    /// CPU time (user + system) of sender and receiver together, in seconds:
    /// unlike wall time, barely affected by other load on the machine.
    cpu: f64,
}

/// CPU time of this process's reaped children, in clock ticks
/// (`cutime + cstime` of `/proc/self/stat`).
fn children_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses; `rest[0]` is
    // field 3 (state), so field n is `rest[n - 3]`.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, r)| r.split_whitespace().collect());
    let field = |n: usize| {
        rest.get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(16) + field(17)
}

/// Clock ticks per second (`getconf CLK_TCK`; Linux uses 100).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

fn with_port(argv: &[String], port: u16) -> Vec<String> {
    argv.iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect()
}

/// One transfer; `expected` is checked for file sources (streamed sources
/// are checked against what was generated).
fn transfer(tool: &Tool, source: Source, sink: Sink, expected: Sum) -> Result<Measure, String> {
    let total = match source {
        Source::File(path) => path.metadata().map(|m| m.len()).unwrap_or(0),
        Source::Stream(n) => n,
    };
    // Generous: even 50 MiB/s would finish in time.
    let deadline_after = Duration::from_secs(30) + Duration::from_secs(total / (50 * MIB));

    let port = if tool.reports_port { 0 } else { free_port()? };
    let stdout = match sink {
        Sink::File(path) => Stdio::from(
            File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?,
        ),
        Sink::Stream => Stdio::piped(),
    };
    let cpu_before = children_cpu_ticks();
    let mut receiver = Proc::spawn_with(
        &with_port(&tool.receiver, port),
        Stdio::null(),
        stdout,
        tool.pty,
    )?;
    let sink_thread = match sink {
        Sink::File(_) => None,
        Sink::Stream => {
            let pipe = receiver.child.stdout.take().expect("stdout is piped");
            Some(thread::spawn(move || hash_stream(pipe)))
        }
    };
    let port = if tool.reports_port {
        receiver.listening_port()?
    } else {
        wait_listen(port, &mut receiver)?;
        port
    };

    let (stdin, generated) = match source {
        Source::File(path) => (
            Stdio::from(File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?),
            None,
        ),
        Source::Stream(_) => (Stdio::piped(), Some(())),
    };
    let start = Instant::now();
    let mut sender = Proc::spawn_with(
        &with_port(&tool.sender, port),
        stdin,
        Stdio::null(),
        tool.pty,
    )?;
    let source_thread = generated.map(|()| {
        let mut pipe = sender.child.stdin.take().expect("stdin is piped");
        thread::spawn(move || -> io::Result<Sum> {
            let mut generator = Generator::new(total);
            let mut hasher = Hasher::new();
            let mut buf = Vec::with_capacity(MIB as usize + 256);
            loop {
                buf.clear();
                if !generator.fill(&mut buf, MIB as usize) {
                    break;
                }
                hasher.update(&buf);
                pipe.write_all(&buf)?;
            }
            Ok(hasher.finish())
        })
    });

    let deadline = start + deadline_after;
    let (mut rss_send, mut rss_recv) = (0, 0);
    let mut next_sample = start;
    let end = loop {
        let now = Instant::now();
        if now >= next_sample {
            if let Some(r) = peak_rss(sender.pid()).filter(|_| sender.status.is_none()) {
                rss_send = rss_send.max(r);
            }
            if let Some(r) = peak_rss(receiver.pid()).filter(|_| receiver.status.is_none()) {
                rss_recv = rss_recv.max(r);
            }
            next_sample = now + SAMPLE_EVERY;
        }
        let sent = sender.poll()?;
        let received = receiver.poll()?;
        if sent && received {
            break Instant::now();
        }
        if now > deadline {
            sender.kill();
            receiver.kill();
            return Err(format!(
                "not done after {deadline_after:?} (killed)\nsender: {}\nreceiver: {}",
                sender.finish_stderr(),
                receiver.finish_stderr()
            ));
        }
        thread::sleep(Duration::from_micros(500));
    };
    let cpu_ticks = children_cpu_ticks().saturating_sub(cpu_before);
    sender.check()?;
    receiver.check()?;
    if tool.pty {
        for (side, proc) in [("sender", &mut sender), ("receiver", &mut receiver)] {
            let text = proc.finish_stderr();
            if !text.contains("\x1b[2K") {
                eprintln!(
                    "bench: warning: {}: the {side} drew no live line",
                    tool.name
                );
            }
        }
    }

    let expected = match source_thread {
        None => expected,
        Some(t) => t
            .join()
            .map_err(|_| "the generator thread panicked".to_owned())?
            .map_err(|e| format!("feeding the sender: {e}"))?,
    };
    let got = match (sink, sink_thread) {
        (Sink::File(path), _) => File::open(path).and_then(hash_stream),
        (Sink::Stream, Some(t)) => t
            .join()
            .map_err(|_| "the hash thread panicked".to_owned())?,
        (Sink::Stream, None) => unreachable!("a streamed sink has its thread"),
    }
    .map_err(|e| format!("reading the output: {e}"))?;
    if got != expected {
        return Err(format!(
            "output differs: got {} bytes (hash {:016x}), sent {} bytes (hash {:016x})",
            got.len, got.hash, expected.len, expected.hash
        ));
    }
    if rss_send == 0 || rss_recv == 0 {
        eprintln!(
            "bench: warning: {}: no memory sample (too fast?)",
            tool.name
        );
    }
    Ok(Measure {
        secs: (end - start).as_secs_f64(),
        rss_send,
        rss_recv,
        cpu: cpu_ticks as f64 / clock_ticks(),
    })
}

// ---------------------------------------------------------------------------
// Round trips

enum Relay<'a> {
    Duplex(&'a Path),
    Nc,
}

#[derive(Clone, Copy, Debug)]
struct Latency {
    p50: f64,
    p99: f64,
    /// Context switches of both processes (all threads) per round trip:
    /// each thread hop on the path costs at least one.
    switches: f64,
    /// Threads of server + client.
    threads: usize,
}

/// What one relay run measured.
struct Sample {
    times: Vec<Duration>,
    switches: u64,
    threads: usize,
}

impl Latency {
    fn of(samples: Vec<Sample>) -> Latency {
        let threads = samples.iter().map(|s| s.threads).max().unwrap_or(0);
        let switches: u64 = samples.iter().map(|s| s.switches).sum();
        let mut times: Vec<Duration> = samples.into_iter().flat_map(|s| s.times).collect();
        times.sort();
        let at =
            |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
        Latency {
            p50: at(0.50),
            p99: at(0.99),
            switches: switches as f64 / times.len().max(1) as f64,
            threads,
        }
    }
}

/// Context switches (voluntary + involuntary) of all threads of a process,
/// and how many threads it has.
fn context_switches(pid: u32) -> (u64, usize) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let mut total = 0;
    let mut threads = 0;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        threads += 1;
        total += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    (total, threads)
}

/// A chat-mode relay whose stdout is wired straight back into its own stdin
/// (both ends of one pipe: no extra process or thread on the path), a client
/// that sends one line and waits for its echo, both on CPU 0.
fn round_trips(relay: Relay, count: usize) -> Result<Sample, String> {
    let (read_end, write_end) = io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (server_argv, client_argv, port) = match relay {
        Relay::Duplex(duplex) => {
            let d = duplex.to_str().expect("the binary path is UTF-8");
            (
                argv(&[
                    "taskset",
                    "-c",
                    "0",
                    d,
                    "serve",
                    "--once",
                    "-b",
                    "127.0.0.1",
                    "0",
                ]),
                argv(&[
                    "taskset",
                    "-c",
                    "0",
                    d,
                    "connect",
                    "-q",
                    "127.0.0.1",
                    "{port}",
                ]),
                0,
            )
        }
        Relay::Nc => (
            argv(&["taskset", "-c", "0", "nc", "-l", "127.0.0.1", "{port}"]),
            argv(&["taskset", "-c", "0", "nc", "-N", "127.0.0.1", "{port}"]),
            free_port()?,
        ),
    };
    let mut server = Proc::spawn(
        &with_port(&server_argv, port),
        Stdio::from(read_end),
        Stdio::from(write_end),
    )?;
    let port = match relay {
        Relay::Duplex(_) => server.listening_port()?,
        Relay::Nc => {
            wait_listen(port, &mut server)?;
            port
        }
    };
    let mut client = Proc::spawn(
        &with_port(&client_argv, port),
        Stdio::piped(),
        Stdio::piped(),
    )?;
    let mut input = client.child.stdin.take().expect("stdin is piped");
    let mut output = BufReader::new(client.child.stdout.take().expect("stdout is piped"));

    // A watchdog kills both (by PID, before they are reaped) if the round
    // trips hang; a blocked read then sees EOF.
    let total = Duration::from_secs(30) + Duration::from_millis(count as u64);
    let (cancel, cancelled) = mpsc::channel::<()>();
    let pids = [server.pid(), client.pid()];
    let watchdog = thread::spawn(move || {
        if cancelled.recv_timeout(total) == Err(mpsc::RecvTimeoutError::Timeout) {
            for pid in pids {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        }
    });

    let mut times = Vec::with_capacity(count);
    let mut switches_before = None;
    let mut line = Vec::with_capacity(64);
    let mut failure = None;
    for i in 0..WARMUP_ROUNDTRIPS + count {
        let t = Instant::now();
        line.clear();
        let echoed = input
            .write_all(PING)
            .and_then(|()| input.flush())
            .and_then(|()| output.read_until(b'\n', &mut line));
        let elapsed = t.elapsed();
        match echoed {
            Ok(_) if line == PING => {}
            Ok(_) => {
                failure = Some(format!(
                    "round trip {i}: got {:?}",
                    line.escape_ascii().to_string()
                ));
                break;
            }
            Err(e) => {
                failure = Some(format!("round trip {i}: {e}"));
                break;
            }
        }
        if i + 1 == WARMUP_ROUNDTRIPS {
            switches_before =
                Some(context_switches(server.pid()).0 + context_switches(client.pid()).0);
        }
        if i >= WARMUP_ROUNDTRIPS {
            times.push(elapsed);
        }
    }
    let (server_switches, server_threads) = context_switches(server.pid());
    let (client_switches, client_threads) = context_switches(client.pid());
    let switches = (server_switches + client_switches).saturating_sub(switches_before.unwrap_or(0));
    let _ = cancel.send(());
    let _ = watchdog.join();

    // End: the client's EOF is its goodbye; both should exit on their own.
    drop(input);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(client.poll()? && server.poll()?) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    let lingering = [&mut client, &mut server]
        .into_iter()
        .filter_map(|p| (!p.poll().unwrap_or(true)).then(|| p.name.clone()))
        .collect::<Vec<_>>();
    if !lingering.is_empty() {
        eprintln!("bench: note: still running after the round trips, killed: {lingering:?}");
    }
    if let Some(failure) = failure {
        return Err(format!(
            "{failure}\nserver: {}\nclient: {}",
            server.finish_stderr(),
            client.finish_stderr()
        ));
    }
    Ok(Sample {
        times,
        switches,
        threads: server_threads + client_threads,
    })
}

// ---------------------------------------------------------------------------
// The report

struct Row {
    key: &'static str,
    name: &'static str,
    mib_s: f64,
    secs: f64,
    rss_send: u64,
    rss_recv: u64,
    /// Median CPU seconds of both processes together.
    cpu: f64,
}

impl Row {
    fn summarise(tool: &Tool, mib: u64, measures: &[Measure]) -> Row {
        let mut secs: Vec<f64> = measures.iter().map(|m| m.secs).collect();
        secs.sort_by(f64::total_cmp);
        let median = secs[secs.len() / 2];
        let mut cpu: Vec<f64> = measures.iter().map(|m| m.cpu).collect();
        cpu.sort_by(f64::total_cmp);
        Row {
            cpu: cpu[cpu.len() / 2],
            key: tool.key,
            name: tool.name,
            mib_s: mib as f64 / median,
            secs: median,
            rss_send: measures.iter().map(|m| m.rss_send).max().unwrap_or(0),
            rss_recv: measures.iter().map(|m| m.rss_recv).max().unwrap_or(0),
        }
    }
}

fn mib_str(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// The plaintext peers issue 3 compares duplex raw with (not the
/// encrypted relay, which issue 12 compares with duplex --secret).
fn is_plain_peer(key: &str) -> bool {
    !key.starts_with("duplex") && key != "socat-tls"
}

fn report(
    options: &Options,
    rows: &[Row],
    big: &[(&str, u64, Measure)],
    latencies: &[(&str, Latency)],
) -> String {
    let mut s = String::new();
    if !rows.is_empty() {
        let _ = writeln!(
            s,
            "throughput: {} MiB over loopback, median of {} runs",
            options.mib, options.runs
        );
        let _ = writeln!(
            s,
            "| tool | MiB/s | wall s | peak RSS sender | peak RSS receiver | CPU s (both) | MiB per CPU s |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for r in rows {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.3} | {} | {} | {:.2} | {:.0} |",
                r.name,
                r.mib_s,
                r.secs,
                mib_str(r.rss_send),
                mib_str(r.rss_recv),
                r.cpu,
                options.mib as f64 / r.cpu.max(0.01)
            );
        }
        let _ = writeln!(s);
    }
    if !big.is_empty() {
        let _ = writeln!(
            s,
            "memory check: streamed (generated and hashed by the bench on the fly)"
        );
        let _ = writeln!(
            s,
            "| tool | MiB | MiB/s | peak RSS sender | peak RSS receiver |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: |");
        for (name, mib, m) in big {
            let _ = writeln!(
                s,
                "| {name} | {mib} | {:.0} | {} | {} |",
                *mib as f64 / m.secs,
                mib_str(m.rss_send),
                mib_str(m.rss_recv)
            );
        }
        let _ = writeln!(s);
    }
    if !latencies.is_empty() {
        let _ = writeln!(
            s,
            "round trip: {} lines through a chat-mode relay, both processes on `taskset -c 0`, in {} rounds alternating duplex and nc",
            options.roundtrips,
            options.runs.min(options.roundtrips)
        );
        let _ = writeln!(
            s,
            "| relay | p50 µs | p99 µs | context switches per round trip | threads (server + client) |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: |");
        for (name, l) in latencies {
            let _ = writeln!(
                s,
                "| {name} | {:.1} | {:.1} | {:.1} | {} |",
                l.p50, l.p99, l.switches, l.threads
            );
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "targets (issue 3):");
    let find = |key: &str| rows.iter().find(|r| r.key == key);
    if let Some(raw) = find("duplex-raw") {
        let best = rows
            .iter()
            .filter(|r| is_plain_peer(r.key))
            .max_by(|a, b| a.mib_s.total_cmp(&b.mib_s));
        if let Some(best) = best {
            let ratio = raw.mib_s / best.mib_s;
            let _ = writeln!(
                s,
                "- duplex raw / best peer ({}): {ratio:.2} (target >= 1.2): {}",
                best.name,
                verdict(ratio >= 1.2)
            );
        }
        let frugal = rows
            .iter()
            .filter(|r| is_plain_peer(r.key))
            .min_by(|a, b| a.cpu.total_cmp(&b.cpu));
        if let Some(frugal) = frugal {
            let _ = writeln!(
                s,
                "  (CPU cost, robust to other load: duplex raw {:.2} s vs {} {:.2} s, ratio {:.2})",
                raw.cpu,
                frugal.name,
                frugal.cpu,
                frugal.cpu / raw.cpu.max(0.01)
            );
        }
        if let Some(chat) = find("duplex-chat") {
            let ratio = chat.mib_s / raw.mib_s;
            let _ = writeln!(
                s,
                "- duplex chat / duplex raw: {ratio:.2} (target >= 0.8): {}",
                verdict(ratio >= 0.8)
            );
        }
    }
    if let (Some(ours), Some(theirs)) = (find("duplex-tls"), find("socat-tls")) {
        let ratio = ours.mib_s / theirs.mib_s;
        let _ = writeln!(
            s,
            "- duplex raw TLS / socat OPENSSL: {ratio:.2} (target >= 1.5, issue 13): {}",
            verdict(ratio >= 1.5)
        );
    }
    let duplex_rss = rows
        .iter()
        .filter(|r| r.key.starts_with("duplex"))
        .map(|r| r.rss_send.max(r.rss_recv))
        .chain(big.iter().map(|(_, _, m)| m.rss_send.max(m.rss_recv)))
        .max();
    if let Some(peak) = duplex_rss {
        let _ = writeln!(
            s,
            "- duplex peak RSS: {} (target <= 16 MiB): {}",
            mib_str(peak),
            verdict(peak <= 16 * MIB)
        );
    }
    if !big.is_empty() && !rows.is_empty() {
        let small = rows
            .iter()
            .filter(|r| r.key.starts_with("duplex"))
            .map(|r| r.rss_send.max(r.rss_recv))
            .max()
            .unwrap_or(0);
        let large = big
            .iter()
            .map(|(_, _, m)| m.rss_send.max(m.rss_recv))
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "- peak RSS, {} MiB vs {} MiB: {} vs {} (bounded: not more for the larger): {}",
            options.rss_mib.unwrap_or(0),
            options.mib,
            mib_str(large),
            mib_str(small),
            // One page table's worth of noise is not growth.
            verdict(large <= small + MIB / 2)
        );
    }
    let lat = |name: &str| latencies.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
    if let (Some(d), Some(nc)) = (lat("duplex"), lat("nc")) {
        let ratio = d.p50 / nc.p50;
        let _ = writeln!(
            s,
            "- round-trip p50 duplex / nc: {ratio:.2} (target <= 1.5): {}",
            verdict(ratio <= 1.5)
        );
    }
    s
}
