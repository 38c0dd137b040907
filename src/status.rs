//! The status lines on stderr: what a person watching needs to know, one
//! short line each (SPEC, "Status lines"). Never on stdout, which is data.
//! `tracing` diagnostics are separate and only appear with `-v`/`RUST_LOG`.

use crate::ending::Ending;
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;

/// Where status lines go: stderr by default; the terminal view prints them
/// above its prompt instead.
pub type StatusSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Told whether a peer is connected now (true on `connected to` or
/// `connection from`, false when that conversation ends), quiet or not: the
/// terminal view marks lines typed while nobody is there.
pub type Presence = Arc<dyn Fn(bool) + Send + Sync>;

/// Writes status lines, unless quiet: `listening on ADDR`, `connection
/// from ADDR`, `conversation with ADDR ended: REASON`, and the like (SPEC,
/// "Status lines").
///
/// ```
/// use duplex::Status;
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let status = Status::with_sink(false, {
///     let seen = Arc::clone(&seen);
///     Arc::new(move |line: &str| seen.lock().unwrap().push(line.to_owned()))
/// });
/// let quiet = Status::stderr(true); // prints nothing
/// # drop((status, quiet));
/// ```
#[derive(Clone)]
pub struct Status {
    quiet: bool,
    sink: StatusSink,
    presence: Option<Presence>,
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Status")
            .field("quiet", &self.quiet)
            .finish()
    }
}

impl Status {
    /// Status lines on stderr, or none when `quiet`.
    pub fn stderr(quiet: bool) -> Self {
        Status {
            quiet,
            sink: Arc::new(|line: &str| {
                // Nowhere left to report a failing stderr; never panic for it.
                let _ = writeln!(io::stderr().lock(), "{line}");
            }),
            presence: None,
        }
    }

    /// Status lines to `sink`, or none when `quiet`.
    pub fn with_sink(quiet: bool, sink: StatusSink) -> Self {
        Status {
            quiet,
            sink,
            presence: None,
        }
    }

    /// The same status lines (quiet or not), sent to `sink` instead.
    pub fn to_sink(&self, sink: StatusSink) -> Self {
        Status {
            quiet: self.quiet,
            sink,
            presence: self.presence.clone(),
        }
    }

    /// The same status lines, and `presence` told when a peer comes and goes.
    pub fn with_presence(&self, presence: Presence) -> Self {
        Status {
            presence: Some(presence),
            ..self.clone()
        }
    }

    fn present(&self, connected: bool) {
        if let Some(presence) = &self.presence {
            presence(connected);
        }
    }

    /// Prints one status line of the caller's own (unless quiet), in the
    /// same stream as the engine's: the binary's transfer summary is one.
    pub fn line(&self, line: impl fmt::Display) {
        if !self.quiet {
            (self.sink)(&line.to_string());
        }
    }

    /// A line printed even with `-q`: what a person must not miss
    /// (`tls fingerprint: …`, that verification is off).
    pub(crate) fn always(&self, line: impl fmt::Display) {
        (self.sink)(&line.to_string());
    }

    /// `listening on 127.0.0.1:9000`. Scripts read the port from this line.
    pub(crate) fn listening(&self, addr: SocketAddr) {
        self.line(format_args!("listening on {addr}"));
    }

    /// A peer connected to our server.
    pub(crate) fn connection_from(&self, peer: SocketAddr) {
        self.present(true);
        self.line(format_args!("connection from {peer}"));
    }

    /// We connected to a server.
    pub(crate) fn connected_to(&self, peer: SocketAddr) {
        self.present(true);
        self.line(format_args!("connected to {peer}"));
    }

    /// A conversation ended normally, and why.
    pub(crate) fn ended(&self, peer: SocketAddr, ending: Ending) {
        self.present(false);
        self.line(format_args!("conversation with {peer} ended: {ending}"));
    }

    /// A conversation failed, and the server goes on.
    pub(crate) fn failed(&self, error: &crate::Error) {
        self.present(false);
        self.line(format_args!("{error}"));
    }
}
