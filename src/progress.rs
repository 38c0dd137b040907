//! A conversation's traffic, for whoever shows progress (issue 16): the
//! binary's live line and summary, or a library user's own display.
//!
//! The pumps already count every byte they move ([`Clock::sent`] and
//! [`Clock::received`], one relaxed atomic add per chunk); [`Traffic`] is a
//! read-only handle on those counters. A [`Watch`] given in
//! [`ConversationOptions::watch`] is told when each conversation starts,
//! with its `Traffic`, and when it ends. Nothing here wakes per chunk or
//! draws anything: a display reads the counters on its own clock (the
//! binary ten times a second), so showing progress costs the transfer
//! nothing.
//!
//! The units ([`Bytes`], [`Rate`], [`Elapsed`]) and the [`Summary`] line
//! (`sent 1.00 GiB, received 0 B in 0.52 s (1.92 GiB/s)`) live here too,
//! so every display says sizes the same way: binary units (1 KiB = 1024
//! bytes), three significant digits, and whole bytes below 1000.
//!
//! [`Clock::sent`]: crate::conversation
//! [`Clock::received`]: crate::conversation
//! [`ConversationOptions::watch`]: crate::ConversationOptions::watch

use crate::conversation::Clock;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The byte counters of one conversation, readable from any thread while it
/// runs (a cheap clone of a shared handle).
///
/// Bytes are counted as the conversation moves them: `sent` once the
/// transport has taken them (what the peer will read, before any
/// encryption), `received` as they come off the transport (after
/// decryption). Once [`Watch::ended`] is called they are final and exact.
#[derive(Clone)]
pub struct Traffic {
    clock: Arc<Clock>,
}

impl fmt::Debug for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traffic")
            .field("sent", &self.sent())
            .field("received", &self.received())
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

impl Traffic {
    pub(crate) fn new(clock: Arc<Clock>) -> Self {
        Traffic { clock }
    }

    /// Bytes sent to the peer so far.
    pub fn sent(&self) -> u64 {
        self.clock.sent_bytes.load(Ordering::Relaxed)
    }

    /// Bytes received from the peer so far.
    pub fn received(&self) -> u64 {
        self.clock.received_bytes.load(Ordering::Relaxed)
    }

    /// Time since the conversation started (after its handshake).
    pub fn elapsed(&self) -> Duration {
        self.clock.start.elapsed()
    }

    /// The counts and the time now, as one [`Summary`].
    pub fn summary(&self) -> Summary {
        Summary {
            sent: self.sent(),
            received: self.received(),
            elapsed: self.elapsed(),
        }
    }
}

/// Told when each conversation starts and ends.
///
/// Both calls come from the thread that runs the conversation: `started`
/// before any byte moves, `ended` after both pumps are done, on every way
/// out (a normal ending, an error, a panic), and before the status lines
/// that say how it ended. Neither may block for long: the conversation waits
/// for them.
pub trait Watch: Send + Sync {
    /// A conversation started; `traffic` counts its bytes until it ends.
    fn started(&self, traffic: &Traffic);
    /// That conversation is over; `traffic` holds its final counts.
    fn ended(&self, traffic: &Traffic);
}

/// A shared [`Watch`], as [`ConversationOptions::watch`] holds it.
///
/// [`ConversationOptions::watch`]: crate::ConversationOptions::watch
#[derive(Clone)]
pub struct Watcher(Arc<dyn Watch>);

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Watcher")
    }
}

impl Watcher {
    /// Shares `watch` with every conversation run with these options.
    pub fn new(watch: Arc<dyn Watch>) -> Self {
        Watcher(watch)
    }

    /// Tells the watch a conversation started; the guard tells it the end
    /// when dropped (after the pumps are joined, on every way out).
    pub(crate) fn begin(&self, traffic: Traffic) -> Watching {
        self.0.started(&traffic);
        Watching {
            watch: Arc::clone(&self.0),
            traffic,
        }
    }
}

/// Calls [`Watch::ended`] when dropped.
pub(crate) struct Watching {
    watch: Arc<dyn Watch>,
    traffic: Traffic,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.watch.ended(&self.traffic);
    }
}

/// One conversation's totals: `sent 1.00 GiB, received 0 B in 0.52 s
/// (1.92 GiB/s)`, the rate being both directions together over the whole
/// conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Bytes sent.
    pub sent: u64,
    /// Bytes received.
    pub received: u64,
    /// How long the conversation took.
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let both = self.sent.saturating_add(self.received);
        write!(
            f,
            "sent {}, received {} in {} ({})",
            Bytes(self.sent),
            Bytes(self.received),
            Elapsed(self.elapsed),
            Rate::of(both, self.elapsed)
        )
    }
}

/// A byte count for people: `0 B`, `999 B`, `1.00 KiB`, `64.0 MiB`,
/// `512 GiB` (binary units, three significant digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 1000 {
            return write!(f, "{} B", self.0);
        }
        scaled(f, self.0 as f64, "")
    }
}

/// A rate in bytes per second: `0 B/s`, `1.92 GiB/s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub f64);

impl Rate {
    /// `bytes` over `elapsed`. No rate is claimed from less than a
    /// millisecond: a shorter time counts as one (and `0 s` divides
    /// nothing by zero).
    pub fn of(bytes: u64, elapsed: Duration) -> Rate {
        let secs = elapsed.as_secs_f64().max(0.001);
        Rate(bytes as f64 / secs)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = if self.0.is_finite() && self.0 > 0.0 {
            self.0
        } else {
            0.0
        };
        if rate < 999.5 {
            return write!(f, "{rate:.0} B/s");
        }
        scaled(f, rate, "/s")
    }
}

/// Writes `value` (at least 999.5 bytes) in the largest binary unit that
/// keeps it under 1000, with three significant digits, then `suffix`.
fn scaled(f: &mut fmt::Formatter<'_>, value: f64, suffix: &str) -> fmt::Result {
    const UNITS: [&str; 8] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut value = value / 1024.0;
    let mut unit = 0;
    // 999.5 would print as "1000": the next unit says it in three digits.
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let unit = UNITS[unit];
    if value < 9.995 {
        write!(f, "{value:.2} {unit}{suffix}")
    } else if value < 99.95 {
        write!(f, "{value:.1} {unit}{suffix}")
    } else {
        write!(f, "{value:.0} {unit}{suffix}")
    }
}

/// A duration for people: `0.52 s`, `12.3 s`, `2 min 05 s`, `1 h 02 min`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(pub Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs_f64();
        if secs < 9.995 {
            write!(f, "{secs:.2} s")
        } else if secs < 59.95 {
            write!(f, "{secs:.1} s")
        } else {
            minutes(
                f,
                self.0.as_secs() + u64::from(self.0.subsec_millis() >= 500),
            )
        }
    }
}

/// Time left in seconds, rounded up to whole seconds: `3 s`, `2 min 05 s`,
/// `1 h 02 min`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Left(pub f64);

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Saturating: a rate of a byte a second can promise centuries.
        let secs = (self.0.ceil() as u64).max(1);
        if secs < 60 {
            write!(f, "{secs} s")
        } else {
            minutes(f, secs)
        }
    }
}

/// A minute or more, in whole seconds: `2 min 05 s`, `1 h 02 min`.
fn minutes(f: &mut fmt::Formatter<'_>, whole: u64) -> fmt::Result {
    if whole < 3600 {
        write!(f, "{} min {:02} s", whole / 60, whole % 60)
    } else {
        write!(f, "{} h {:02} min", whole / 3600, whole % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_whole_seconds_then_minutes() {
        assert_eq!(Left(0.2).to_string(), "1 s");
        assert_eq!(Left(2.1).to_string(), "3 s");
        assert_eq!(Left(59.0).to_string(), "59 s");
        assert_eq!(Left(59.4).to_string(), "1 min 00 s");
        assert_eq!(Left(125.0).to_string(), "2 min 05 s");
        assert_eq!(Left(3725.0).to_string(), "1 h 02 min");
        assert_eq!(Left(f64::NAN).to_string(), "1 s");
    }

    fn bytes(n: u64) -> String {
        Bytes(n).to_string()
    }

    #[test]
    fn bytes_change_unit_at_a_thousand_of_the_smaller_one() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1), "1 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "0.98 KiB");
        assert_eq!(bytes(1023), "1.00 KiB");
        assert_eq!(bytes(1024), "1.00 KiB");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(10 * 1024), "10.0 KiB");
        assert_eq!(bytes(10 * 1024 - 1), "10.0 KiB");
        assert_eq!(bytes(100 * 1024), "100 KiB");
        assert_eq!(bytes(999 * 1024), "999 KiB");
        assert_eq!(bytes(1000 * 1024), "0.98 MiB");
        assert_eq!(bytes(1024 * 1024 - 1), "1.00 MiB");
        assert_eq!(bytes(1024 * 1024), "1.00 MiB");
        assert_eq!(bytes(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(bytes(1 << 30), "1.00 GiB");
        assert_eq!(bytes((1 << 30) - 1), "1.00 GiB");
        assert_eq!(bytes(1 << 40), "1.00 TiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn rates_never_divide_by_zero() {
        assert_eq!(Rate::of(0, Duration::ZERO).to_string(), "0 B/s");
        assert_eq!(Rate::of(100, Duration::ZERO).to_string(), "97.7 KiB/s");
        assert_eq!(Rate::of(u64::MAX, Duration::ZERO).to_string(), "15.6 ZiB/s");
        assert_eq!(Rate::of(999, Duration::from_secs(1)).to_string(), "999 B/s");
        assert_eq!(
            Rate::of(1 << 20, Duration::from_secs(2)).to_string(),
            "512 KiB/s"
        );
        assert_eq!(Rate(f64::NAN).to_string(), "0 B/s");
        assert_eq!(Rate(f64::INFINITY).to_string(), "0 B/s");
        assert_eq!(Rate(-1.0).to_string(), "0 B/s");
    }

    #[test]
    fn elapsed_times_read_naturally() {
        let ms = |n| Elapsed(Duration::from_millis(n)).to_string();
        assert_eq!(ms(0), "0.00 s");
        assert_eq!(ms(520), "0.52 s");
        assert_eq!(ms(9_994), "9.99 s");
        assert_eq!(ms(9_996), "10.0 s");
        assert_eq!(ms(59_949), "59.9 s");
        assert_eq!(ms(59_960), "1 min 00 s");
        assert_eq!(ms(125_000), "2 min 05 s");
        assert_eq!(ms(3_600_000), "1 h 00 min");
        assert_eq!(ms(3_725_000), "1 h 02 min");
    }

    #[test]
    fn the_summary_reads_like_the_issue_says() {
        let summary = Summary {
            sent: 1 << 30,
            received: 0,
            elapsed: Duration::from_millis(520),
        };
        assert_eq!(
            summary.to_string(),
            "sent 1.00 GiB, received 0 B in 0.52 s (1.92 GiB/s)"
        );
        let empty = Summary {
            sent: 0,
            received: 0,
            elapsed: Duration::ZERO,
        };
        assert_eq!(
            empty.to_string(),
            "sent 0 B, received 0 B in 0.00 s (0 B/s)"
        );
    }
}
