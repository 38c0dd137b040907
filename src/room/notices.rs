//! Every notice the room sends, in one place (SPEC, "Room"), and the rule
//! for names.
//!
//! A notice is a line that starts with `* `, so that no notice looks like a
//! peer's line (labels start with `[`). The same text goes to the peers and,
//! for the room's events, to the server's status lines.

use std::fmt::Display;

/// The server's own label.
pub(super) const SERVER: &str = "[server]";

/// The longest name a peer may take.
pub(super) const NAME_MAX: usize = 24;

/// `1 peer`, `2 peers`.
fn peers(n: usize) -> String {
    if n == 1 {
        "1 peer".to_owned()
    } else {
        format!("{n} peers")
    }
}

/// To the others: a newcomer is in the room.
pub(super) fn joined(label: &str) -> String {
    format!("* {label} joined")
}

/// To a newcomer: its own label, and who is here (the server first, then
/// the peers in the order they joined).
pub(super) fn welcome<'a>(you: &str, here: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = format!("* you are {you}; here: {SERVER}");
    for label in here {
        text.push_str(", ");
        text.push_str(label);
    }
    text
}

/// To the others: a peer left, and why when it was not its own goodbye.
pub(super) fn left(label: &str, why: Option<&dyn Display>) -> String {
    match why {
        None => format!("* {label} left"),
        Some(why) => format!("* {label} left: {why}"),
    }
}

/// To the others and the status lines: a peer too slow to keep up is gone.
pub(super) fn evicted(label: &str) -> String {
    format!("* {label} evicted: too slow")
}

/// To the evicted peer, as its sender's last batch.
pub(super) const EVICTED: &str = "* evicted: too slow";

/// To a peer whose line was too long, before it is disconnected.
pub(super) fn too_long(max: usize) -> String {
    format!("* line too long (over {max} bytes): disconnected")
}

/// Why a peer left after a line too long.
pub(super) const LEFT_TOO_LONG: &str = "line too long";

/// To a newcomer over `--max-peers`.
pub(super) fn room_full(max: usize) -> String {
    format!("* room full ({})", peers(max))
}

/// The status line for a newcomer turned away.
pub(super) fn refused(label: &str, max: usize) -> String {
    format!("* {label} refused: room full ({})", peers(max))
}

/// To everyone, as the room ends.
pub(super) const ROOM_CLOSING: &str = "* room closing";

/// To the room (and the status lines): a peer took a name.
pub(super) fn renamed(old: &str, new: &str) -> String {
    format!("* {old} is now {new}")
}

/// To that peer alone: the name it asked for is in use.
pub(super) fn name_taken(label: &str) -> String {
    format!("* {label} is taken: name not changed")
}

/// To that peer alone: what it asked for is not a name.
pub(super) fn name_invalid() -> String {
    format!("* a name is 1 to {NAME_MAX} of A-Z a-z 0-9 _ - (and not server): name not changed")
}

/// The status line for a peer whose threads could not start.
pub(super) fn could_not_join(label: &str, why: &dyn Display) -> String {
    format!("* {label} could not join: {why}")
}

/// What a peer's `/name` line asks for, if the line is one: `/name NAME`
/// (a `\r` before its `\n` is not part of it). `Some(None)`: it is a name
/// line, but what it asks for is not a valid name.
pub(super) fn name_request(line: &[u8]) -> Option<Option<&str>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = match line.strip_prefix(b"/name") {
        Some([]) => return Some(None),
        Some([b' ', rest @ ..]) => rest,
        _ => return None,
    };
    Some(valid_name(rest))
}

/// `name` if it is a valid name: 1 to [`NAME_MAX`] of `A-Z a-z 0-9 _ -`,
/// and not `server` in any case (no peer may pass for the server).
pub(super) fn valid_name(name: &[u8]) -> Option<&str> {
    let charset = name
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > NAME_MAX || !charset || name.eq_ignore_ascii_case(b"server")
    {
        return None;
    }
    std::str::from_utf8(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_singular_and_plural() {
        assert_eq!(room_full(1), "* room full (1 peer)");
        assert_eq!(room_full(2), "* room full (2 peers)");
        assert_eq!(
            refused("[127.0.0.1:5]", 1),
            "* [127.0.0.1:5] refused: room full (1 peer)"
        );
    }

    #[test]
    fn the_welcome_lists_the_server_first() {
        assert_eq!(welcome("[a:1]", []), "* you are [a:1]; here: [server]");
        assert_eq!(
            welcome("[a:1]", ["[alice]", "[b:2]"]),
            "* you are [a:1]; here: [server], [alice], [b:2]"
        );
    }

    #[test]
    fn names_follow_the_rule() {
        assert_eq!(name_request(b"/name alice"), Some(Some("alice")));
        assert_eq!(name_request(b"/name alice\r"), Some(Some("alice")));
        assert_eq!(name_request(b"/name A-b_9"), Some(Some("A-b_9")));
        assert_eq!(
            name_request(&[b"/name ", &[b'x'; 24][..]].concat()),
            Some(Some("xxxxxxxxxxxxxxxxxxxxxxxx"))
        );
        for bad in [
            &b"/name"[..],
            b"/name ",
            b"/name two words",
            b"/name server",
            b"/name SERVER",
            b"/name a.b",
            b"/name [x]",
            b"/name \x1b[2J",
            b"/name \xc3\xa9",
        ] {
            assert_eq!(name_request(bad), Some(None), "{bad:?}");
        }
        assert_eq!(
            name_request(&[b"/name ", &[b'x'; 25][..]].concat()),
            Some(None)
        );
        for not_a_request in [&b"/names"[..], b"hello", b" /name x", b"/nam x"] {
            assert_eq!(name_request(not_a_request), None, "{not_a_request:?}");
        }
    }
}
