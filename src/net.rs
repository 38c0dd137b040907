//! Sockets: resolving and dialling every address in order, binding, the
//! options every conversation socket gets ([`tune`]: keepalive and user
//! timeout, so a vanished peer is noticed), and the accept thread, which
//! also turns away peers that `--allow`/`--deny` refuse (SPEC,
//! "Connections").
//!
//! Addresses are always `(host, port)` pairs handed to `ToSocketAddrs`, never
//! strings glued with `:`, so IPv6 literals work everywhere.

use crate::error::{Error, Result};
use crate::options::{Access, Family, NetOptions};
use crate::status::Status;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use socket2::{Domain, SockRef, Socket, TcpKeepalive, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// `host` and `port` as a person reads them: `localhost:9000`, `[::1]:9000`.
pub fn display_target(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Every address of `family` that `host` resolves to, in the resolver's
/// order.
pub fn resolve(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>> {
    // `[::1]` as people write it in URLs means `::1`.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let target = display_target(host, port);
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|source| Error::Resolve {
            target: target.clone(),
            source,
        })?
        .filter(|addr: &SocketAddr| family.admits(addr.ip()))
        .collect();
    if addrs.is_empty() {
        let none = match family {
            Family::Any => "no addresses found",
            Family::V4 => "no IPv4 address found",
            Family::V6 => "no IPv6 address found",
        };
        return Err(Error::Resolve {
            target,
            source: io::Error::new(io::ErrorKind::NotFound, none),
        });
    }
    Ok(addrs)
}

/// Dials `host:port`, trying every resolved address of `net.family` in
/// order; `timeout` bounds all attempts together. The stream comes back
/// [`tune`]d.
pub fn connect(
    host: &str,
    port: u16,
    timeout: Option<Duration>,
    net: &NetOptions,
) -> Result<TcpStream> {
    let addrs = resolve(host, port, net.family)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut tried = Vec::new();
    let mut last_error = io::Error::new(io::ErrorKind::TimedOut, "timed out");
    for addr in addrs {
        let attempt = match deadline {
            None => TcpStream::connect(addr),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    last_error = io::Error::new(io::ErrorKind::TimedOut, "timed out");
                    break;
                }
                TcpStream::connect_timeout(&addr, left)
            }
        };
        tried.push(addr);
        match attempt {
            Ok(stream) => {
                tune(&stream, net.keepalive);
                return Ok(stream);
            }
            Err(error) => {
                tracing::debug!(%addr, %error, "connect attempt failed");
                last_error = error;
            }
        }
    }
    Err(Error::Connect {
        target: display_target(host, port),
        tried,
        source: last_error,
    })
}

/// Listens on `host:port`, trying every resolved address of `family` in
/// order. An IPv6 wildcard (`::`) takes IPv4 peers too, unless `family` is
/// [`Family::V6`].
pub fn bind(host: &str, port: u16, family: Family) -> Result<TcpListener> {
    let target = display_target(host, port);
    let addrs = resolve(host, port, family).map_err(|error| match error {
        Error::Resolve { source, .. } => Error::Bind {
            addr: target.clone(),
            source,
        },
        other => other,
    })?;
    let mut last_error = None;
    for addr in addrs {
        match listen(addr, family) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(Error::Bind {
        addr: target,
        source: last_error.unwrap_or_else(|| io::Error::other("no address to bind")),
    })
}

/// What `std`'s `TcpListener::bind` does, with the IPv6-only choice made
/// explicitly rather than left to the system's default.
fn listen(addr: SocketAddr, family: Family) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std does on Unix: a restarted server can listen again at once,
    // while the last conversation's sockets are still in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(family == Family::V6)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Connections the kernel holds for us while a conversation runs (SPEC,
/// "Serve": later peers wait in the backlog).
const LISTEN_BACKLOG: i32 = 128;

/// Sets the options every conversation socket gets, accepted or dialled.
///
/// With `keepalive` (`--keepalive SECS`), a peer that vanishes without
/// closing is noticed within about that long: keepalive probes start after
/// half of it on an idle line, and the user timeout ends a connection whose
/// data (or probes) has gone unacknowledged that long. Either ends the
/// socket with `ETIMEDOUT`, which [`crate::error`] reads as "peer vanished".
/// `None` leaves keepalive as the socket has it.
pub fn tune(stream: &TcpStream, keepalive: Option<Duration>) {
    // Chat lines are small and interactive: send them now, not after the
    // previous one is acknowledged. Bulk transfers write large chunks, which
    // Nagle's algorithm would not delay anyway.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    let Some(limit) = keepalive.filter(|limit| !limit.is_zero()) else {
        return;
    };
    let socket = SockRef::from(stream);
    if let Err(error) = socket.set_tcp_keepalive(&keepalive_probes(limit)) {
        tracing::debug!(%error, "could not set TCP keepalive");
    }
    // Elsewhere only keepalive applies, so unacknowledged data is given up
    // on by the system's retransmission limit instead.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    if let Err(error) = socket.set_tcp_user_timeout(Some(limit)) {
        tracing::debug!(%error, "could not set TCP_USER_TIMEOUT");
    }
}

/// Keepalive timing for a peer that must answer within `limit`: the first
/// probe after half of it, then three more spread over the other half.
/// The kernel counts whole seconds, at least one and at most `TCP_KEEPIDLE`'s
/// limit (32767).
fn keepalive_probes(limit: Duration) -> TcpKeepalive {
    let whole = |secs: f64| Duration::from_secs(secs.ceil().clamp(1.0, 32767.0) as u64);
    let secs = limit.as_secs_f64();
    let probes = TcpKeepalive::new().with_time(whole(secs / 2.0));
    // Where socket2 (that is, the system) can set them; elsewhere the
    // system's interval and count apply, and only the idle time is ours.
    #[cfg(any(
        target_os = "android",
        target_os = "dragonfly",
        target_os = "freebsd",
        target_os = "fuchsia",
        target_os = "illumos",
        target_os = "ios",
        target_os = "linux",
        target_os = "macos",
        target_os = "netbsd",
        target_os = "windows",
    ))]
    let probes = probes.with_interval(whole(secs / 6.0)).with_retries(3);
    probes
}

/// How the accept thread treats newcomers: who may connect, and the
/// keepalive every accepted socket gets.
#[derive(Clone, Debug)]
pub struct Admission {
    /// `--allow` / `--deny`.
    pub access: Access,
    /// `--keepalive`, for [`tune`].
    pub keepalive: Option<Duration>,
    /// Where `refused ADDR (not allowed)` goes.
    pub status: Status,
}

impl Admission {
    /// Everyone admitted, with `keepalive`, refusals reported nowhere.
    #[cfg(test)]
    pub fn open(keepalive: Option<Duration>) -> Admission {
        Admission {
            access: Access::default(),
            keepalive,
            status: Status::stderr(true),
        }
    }
}

/// Refused peers on stderr, at most [`REFUSALS_SHOWN`] lines a second, so
/// a peer that reconnects in a loop cannot flood the log.
struct Refusals {
    since: Instant,
    shown: u32,
    hidden: u64,
}

const REFUSALS_SHOWN: u32 = 10;

impl Refusals {
    fn report(&mut self, status: &Status, peer: SocketAddr) {
        tracing::info!(%peer, "refused: not allowed");
        if self.since.elapsed() >= Duration::from_secs(1) {
            if self.hidden > 0 {
                status.line(format_args!("refused {} more (not allowed)", self.hidden));
            }
            *self = Refusals::new();
        }
        if self.shown < REFUSALS_SHOWN {
            self.shown += 1;
            status.line(format_args!("refused {peer} (not allowed)"));
        } else {
            self.hidden += 1;
        }
    }

    fn new() -> Refusals {
        Refusals {
            since: Instant::now(),
            shown: 0,
            hidden: 0,
        }
    }
}

/// An accepted connection, or why accepting failed.
pub type Accepted = io::Result<(TcpStream, SocketAddr)>;

/// The `duplex-accept` thread: accepts connections and hands them over a
/// rendezvous channel, so whoever serves can `select!` on newcomers, input
/// and Ctrl-C at once. A peer that [`Admission`] refuses is closed here,
/// before a byte is read or written, and never handed over; the ones handed
/// over are [`tune`]d.
///
/// A thread blocked in `accept` is not woken by closing the listener on
/// Linux, so dropping the acceptor wakes it with a connection to itself and
/// then joins it.
pub struct Acceptor {
    receiver: Option<Receiver<Accepted>>,
    local: SocketAddr,
    stopping: Arc<AtomicBool>,
    /// Dropped to wake the thread from a back-off.
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Starts accepting on `listener`, admitting whom `admission` allows.
    pub fn spawn(listener: TcpListener, admission: Admission) -> io::Result<Acceptor> {
        let local = listener.local_addr()?;
        let (sender, receiver) = bounded(0);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        // Never sent on: dropping the sender wakes a thread backing off.
        let (wake, woken) = bounded::<()>(0);
        let thread = thread::Builder::new()
            .name("duplex-accept".into())
            .spawn(move || {
                let mut backoff: Option<Duration> = None;
                let mut refusals = Refusals::new();
                loop {
                    let accepted = listener.accept();
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Err(error) = &accepted
                        && is_out_of_descriptors(error)
                    {
                        // The connection stays in the backlog, so accept
                        // fails again at once: retrying in a loop would spin
                        // (issue 17, item 6). Report the first failure of a
                        // run, and wait longer each time, until a peer
                        // leaving frees a descriptor.
                        let first = backoff.is_none();
                        let wait = backoff.map_or(BACKOFF_MIN, |b| (b * 2).min(BACKOFF_MAX));
                        backoff = Some(wait);
                        if first && sender.send(accepted).is_err() {
                            return;
                        }
                        if let Err(RecvTimeoutError::Disconnected) = woken.recv_timeout(wait) {
                            return;
                        }
                        continue;
                    }
                    backoff = None;
                    if let Ok((stream, peer)) = &accepted {
                        if !admission.access.permits(peer.ip()) {
                            // Dropping it closes it: no byte either way.
                            refusals.report(&admission.status, *peer);
                            continue;
                        }
                        tune(stream, admission.keepalive);
                    }
                    let fatal = matches!(&accepted, Err(e) if !is_transient(e));
                    if sender.send(accepted).is_err() || fatal {
                        return;
                    }
                }
            })?;
        Ok(Acceptor {
            receiver: Some(receiver),
            local,
            stopping,
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Newcomers, in the order they connected.
    pub fn receiver(&self) -> &Receiver<Accepted> {
        self.receiver
            .as_ref()
            .expect("the receiver is only taken in drop")
    }

    /// The address we listen on.
    #[cfg(test)]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the thread if it is blocked handing over a connection, or
        // backing off.
        drop(self.receiver.take());
        drop(self.wake.take());
        let Some(thread) = self.thread.take() else {
            return;
        };
        if thread.is_finished() {
            let _ = thread.join();
            return;
        }
        // Wakes it if it is blocked in accept.
        let wake = SocketAddr::new(wake_ip(self.local.ip()), self.local.port());
        match TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
            Ok(_) => {
                if thread.join().is_err() {
                    tracing::error!("the accept thread panicked");
                }
            }
            // Without the wake-up connection the thread may stay in accept for
            // ever; leave it detached rather than hang. It holds only the
            // listener, which the process exit closes.
            Err(error) => tracing::debug!(%error, "could not wake the accept thread"),
        }
    }
}

/// Where to connect to reach a listener bound to `ip`.
fn wake_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// The first wait after accepting failed for want of descriptors; it doubles
/// up to [`BACKOFF_MAX`], which bounds how long a newcomer waits once one is
/// free again.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// Out of descriptors or memory for now (EMFILE, ENFILE, ENOBUFS, ENOMEM):
/// the listener is fine, and a peer leaving frees what accepting needs.
pub fn is_out_of_descriptors(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::OutOfMemory || out_of_resources(error)
}

/// Accept errors that concern one connection, not the listener: the server
/// goes on after them.
fn is_transient(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut | OutOfMemory
    ) || out_of_resources(error)
}

/// Out of descriptors or buffers for now: a peer leaving frees them. `std`
/// has no `ErrorKind` for these, so they are matched by their names, which
/// are right on every Unix (the numbers differ).
#[cfg(unix)]
fn out_of_resources(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENFILE | libc::EMFILE | libc::ENOMEM | libc::ENOBUFS)
    )
}

#[cfg(not(unix))]
fn out_of_resources(_error: &io::Error) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_display_ipv6_in_brackets() {
        assert_eq!(display_target("::1", 80), "[::1]:80");
        assert_eq!(display_target("localhost", 80), "localhost:80");
    }

    #[test]
    fn bracketed_ipv6_resolves() {
        let addrs = resolve("[::1]", 80, Family::Any).unwrap();
        assert_eq!(addrs, ["[::1]:80".parse().unwrap()]);
    }

    #[test]
    fn acceptor_hands_over_and_stops_on_drop() {
        let listener = bind("127.0.0.1", 0, Family::Any).unwrap();
        let acceptor = Acceptor::spawn(listener, Admission::open(None)).unwrap();
        let client = TcpStream::connect(acceptor.local_addr()).unwrap();
        let (_, peer) = acceptor
            .receiver()
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let local = acceptor.local_addr();
        drop(acceptor);
        // The thread held the listener; once it has stopped, the port is
        // closed and a new connection is refused.
        let error = TcpStream::connect_timeout(&local, Duration::from_secs(10)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn families_filter_what_resolves() {
        let v4 = resolve("127.0.0.1", 80, Family::V4).unwrap();
        assert_eq!(v4, ["127.0.0.1:80".parse().unwrap()]);
        let error = resolve("127.0.0.1", 80, Family::V6).unwrap_err();
        assert!(error.to_string().contains("no IPv6 address"), "{error}");
        assert!(resolve("::1", 80, Family::V4).is_err());
    }

    #[test]
    fn tuned_sockets_keep_alive_within_the_limit() {
        let listener = bind("127.0.0.1", 0, Family::Any).unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        tune(&stream, Some(Duration::from_secs(60)));
        let socket = SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert!(socket.tcp_nodelay().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(
                socket.tcp_keepalive_time().unwrap(),
                Duration::from_secs(30)
            );
            assert_eq!(
                socket.tcp_keepalive_interval().unwrap(),
                Duration::from_secs(10)
            );
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), 3);
            assert_eq!(
                socket.tcp_user_timeout().unwrap(),
                Some(Duration::from_secs(60))
            );
        }
        // Longer than the kernel counts keepalive seconds: still set.
        tune(&stream, Some(Duration::from_secs(1_000_000)));
        #[cfg(target_os = "linux")]
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            Duration::from_secs(32767)
        );
        let off = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        tune(&off, None);
        assert!(!SockRef::from(&off).keepalive().unwrap());
    }

    #[test]
    fn refused_peers_are_never_handed_over() {
        let listener = bind("127.0.0.1", 0, Family::Any).unwrap();
        let admission = Admission {
            access: Access {
                allow: vec!["127.0.0.2/32".parse().unwrap()],
                deny: Vec::new(),
            },
            ..Admission::open(None)
        };
        let acceptor = Acceptor::spawn(listener, admission).unwrap();
        let refused = TcpStream::connect(acceptor.local_addr()).unwrap();
        let mut byte = [0u8; 1];
        refused
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Closed at once, without a byte.
        assert_eq!(io::Read::read(&mut &refused, &mut byte).unwrap(), 0);
        assert!(acceptor.receiver().is_empty());
        drop(acceptor);
    }

    #[test]
    fn out_of_descriptors_is_transient_by_name() {
        #[cfg(unix)]
        assert!(is_transient(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_transient(&io::Error::from(
            io::ErrorKind::PermissionDenied
        )));
    }

    #[test]
    fn refused_connection_is_an_error() {
        let listener = bind("127.0.0.1", 0, Family::Any).unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let error = connect("127.0.0.1", port, None, &NetOptions::default()).unwrap_err();
        assert!(error.to_string().contains("connection refused"), "{error}");
    }
}
