//! Outside programs the tests drive (nc, socat, tmux, ...): a test that
//! needs a missing one skips loudly, or fails under `DUPLEX_REQUIRE_PEERS=1`.

use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::thread;

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
