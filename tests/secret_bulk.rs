//! `--secret --raw` in bulk against the second implementation
//! (`tests/peers/secret_peer.py`): megabytes both ways at once, in records
//! of whatever size Python's reads give (up to 64 KiB), so the receiver's
//! batching of many records into one read, and the sender's sealing of many
//! records into one write, are checked byte for byte against a peer that
//! is not duplex.

mod support;

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use support::*;

const WORDS: &str = "olive-tundra-marble-quest";
const SIZE: usize = 8 * 1024 * 1024;

fn python_peer() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import spake2, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/secret_peer.py"
        ))
    } else {
        skip("needs python3 with spake2 and cryptography (pip install spake2 cryptography)");
        None
    }
}

/// Feeds `data` to `p`'s stdin on a thread and closes it.
fn feed(p: &mut Proc, data: &Arc<Vec<u8>>) -> thread::JoinHandle<()> {
    let mut stdin = p.take_stdin();
    let data = Arc::clone(data);
    thread::spawn(move || {
        // The peer may fail and close early: the exit codes say so.
        let _ = stdin.write_all(&data);
    })
}

fn check(what: &str, p: &Proc, data: &[u8]) {
    p.wait_for_stdout_len(data.len());
    let got = p.stdout();
    assert_eq!(got.len(), data.len(), "{what}: length");
    assert_eq!(
        fnv1a(&got),
        fnv1a(data),
        "{what}: the bytes arrived changed"
    );
}

#[test]
fn python_and_duplex_serve_exchange_megabytes_both_ways() {
    let Some(peer) = python_peer() else { return };
    let to_duplex = Arc::new(noise_without_newline(SIZE, 21));
    let to_python = Arc::new(noise_without_newline(SIZE + 12_345, 22));
    let mut server = duplex()
        .env("DUPLEX_SECRET", WORDS)
        .args(["serve", "--secret", "--once", "--raw", "--linger", "1"])
        .args(["-b", "127.0.0.1", "0"])
        .spawn();
    let addr = server.wait_for_listening();
    let mut client = program("python3")
        .env("DUPLEX_SECRET", WORDS)
        .args([
            peer,
            "connect",
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .spawn();
    let feeding = [feed(&mut server, &to_python), feed(&mut client, &to_duplex)];
    for f in feeding {
        f.join().unwrap();
    }
    check("python to duplex", &server, &to_duplex);
    check("duplex to python", &client, &to_python);
    client.assert_exit(0);
    server.assert_exit(0);
}

#[test]
fn duplex_connect_and_a_python_server_exchange_megabytes_both_ways() {
    let Some(peer) = python_peer() else { return };
    let to_duplex = Arc::new(noise_without_newline(SIZE + 777, 23));
    let to_python = Arc::new(noise_without_newline(SIZE, 24));
    let mut server = program("python3")
        .env("DUPLEX_SECRET", WORDS)
        .args([peer, "serve"])
        .spawn();
    let addr = server.wait_for_listening();
    let mut client = duplex()
        .env("DUPLEX_SECRET", WORDS)
        .args(["connect", "--secret", "--raw", "--linger", "1"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .spawn();
    let feeding = [feed(&mut server, &to_duplex), feed(&mut client, &to_python)];
    for f in feeding {
        f.join().unwrap();
    }
    check("python to duplex", &client, &to_duplex);
    check("duplex to python", &server, &to_python);
    client.assert_exit(0);
    server.assert_exit(0);
}
