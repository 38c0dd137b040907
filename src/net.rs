//! Sockets: resolving and dialling every address in order, binding, and the
//! accept thread.
//!
//! Addresses are always `(host, port)` pairs handed to `ToSocketAddrs`, never
//! strings glued with `:`, so IPv6 literals work everywhere.

use crate::error::{Error, Result};
use crossbeam_channel::{Receiver, bounded};
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

/// Every address `host` resolves to, in the resolver's order.
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
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
        .collect();
    if addrs.is_empty() {
        return Err(Error::Resolve {
            target,
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses found"),
        });
    }
    Ok(addrs)
}

/// Dials `host:port`, trying every resolved address in order; `timeout`
/// bounds all attempts together.
pub fn connect(host: &str, port: u16, timeout: Option<Duration>) -> Result<TcpStream> {
    let addrs = resolve(host, port)?;
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
            Ok(stream) => return Ok(stream),
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

/// Listens on `host:port`, trying every resolved address in order.
pub fn bind(host: &str, port: u16) -> Result<TcpListener> {
    let target = display_target(host, port);
    let addrs = resolve(host, port).map_err(|error| match error {
        Error::Resolve { source, .. } => Error::Bind {
            addr: target.clone(),
            source,
        },
        other => other,
    })?;
    let mut last_error = None;
    for addr in addrs {
        match TcpListener::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(Error::Bind {
        addr: target,
        source: last_error.unwrap_or_else(|| io::Error::other("no address to bind")),
    })
}

/// Sets the options every conversation socket gets.
pub fn tune(stream: &TcpStream) {
    // Chat lines are small and interactive: send them now, not after the
    // previous one is acknowledged. Bulk transfers write large chunks, which
    // Nagle's algorithm would not delay anyway.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
}

/// An accepted connection, or why accepting failed.
pub type Accepted = io::Result<(TcpStream, SocketAddr)>;

/// The `duplex-accept` thread: accepts connections and hands them over a
/// rendezvous channel, so whoever serves can `select!` on newcomers, input
/// and Ctrl-C at once.
///
/// A thread blocked in `accept` is not woken by closing the listener on
/// Linux, so dropping the acceptor wakes it with a connection to itself and
/// then joins it.
pub struct Acceptor {
    receiver: Option<Receiver<Accepted>>,
    local: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Starts accepting on `listener`.
    pub fn spawn(listener: TcpListener) -> io::Result<Acceptor> {
        let local = listener.local_addr()?;
        let (sender, receiver) = bounded(0);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let thread = thread::Builder::new()
            .name("duplex-accept".into())
            .spawn(move || {
                loop {
                    let accepted = listener.accept();
                    if stop.load(Ordering::SeqCst) {
                        return;
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
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the thread if it is blocked handing over a connection.
        drop(self.receiver.take());
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

/// Accept errors that concern one connection, not the listener: the server
/// goes on after them.
fn is_transient(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut
    ) || matches!(error.raw_os_error(), Some(23 | 24 | 12 | 105))
    // ENFILE, EMFILE, ENOMEM, ENOBUFS: out of resources for now; a peer
    // leaving frees them.
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
        let addrs = resolve("[::1]", 80).unwrap();
        assert_eq!(addrs, ["[::1]:80".parse().unwrap()]);
    }

    #[test]
    fn acceptor_hands_over_and_stops_on_drop() {
        let listener = bind("127.0.0.1", 0).unwrap();
        let acceptor = Acceptor::spawn(listener).unwrap();
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
    fn refused_connection_is_an_error() {
        let listener = bind("127.0.0.1", 0).unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let error = connect("127.0.0.1", port, None).unwrap_err();
        assert!(error.to_string().contains("connection refused"), "{error}");
    }
}
