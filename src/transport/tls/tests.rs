//! The TLS module over loopback sockets: handshakes, verification failures,
//! both halves at once, and the ends.

use super::*;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

/// A throwaway server on 127.0.0.1 that runs `serve` on its one session.
fn server<T: Send + 'static>(
    serve: impl FnOnce(Result<TlsSession, TlsError>) -> T + Send + 'static,
) -> (SocketAddr, Fingerprint, thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::new(&Identity::Throwaway, "127.0.0.1").unwrap();
    let fingerprint = acceptor.fingerprint();
    let handle = thread::spawn(move || {
        let (stream, peer) = listener.accept().unwrap();
        serve(acceptor.accept(stream, peer))
    });
    (addr, fingerprint, handle)
}

fn dial(addr: SocketAddr, verification: &Verification) -> Result<TlsSession, TlsError> {
    let connector = TlsConnector::new(verification)?;
    connector.connect(TcpStream::connect(addr).unwrap(), "localhost", addr)
}

/// Everything until the peer's close_notify.
fn receive_all(receiver: &mut TlsReceiver) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = vec![0; 100_000];
    loop {
        match receiver.receive(&mut buf)? {
            0 => return Ok(all),
            n => all.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn pins_parse_and_print_as_sha256_hex() {
    let fp = Fingerprint::of(b"certificate");
    let text = fp.to_string();
    assert!(text.starts_with("sha256:"));
    assert_eq!(text.len(), 7 + 64);
    assert!(
        text[7..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
    assert_eq!(
        text.to_uppercase().replace("SHA256:", "sha256:").parse(),
        Ok(fp)
    );
    let colons: String = text.as_bytes()[7..]
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(format!("sha256:{colons}").parse(), Ok(fp));
    for bad in [
        "",
        "sha256:",
        "sha256:abc",
        &text[7..],
        "md5:00",
        &format!("{text}0"),
    ] {
        assert!(bad.parse::<Fingerprint>().is_err(), "{bad:?} parsed");
    }
    let wrong = format!("sha256:{}", "g".repeat(64));
    assert!(wrong.parse::<Fingerprint>().is_err());
}

#[test]
fn a_pinned_session_carries_bytes_both_ways_and_ends_with_close_notify() {
    let (addr, fingerprint, server) = server(|session| {
        let (_socket, mut receiver, mut transmitter) = session.unwrap().split();
        transmitter.transmit(b"from the server\n").unwrap();
        let heard = receive_all(&mut receiver).unwrap();
        transmitter.finish().unwrap();
        heard
    });
    let session = dial(addr, &Verification::Pin(fingerprint)).unwrap();
    assert!(
        session.description().contains("TLS"),
        "{}",
        session.description()
    );
    let (_socket, mut receiver, mut transmitter) = session.split();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    transmitter.transmit_vectored(&[b"hello ", &big]).unwrap();
    transmitter.finish().unwrap();
    assert_eq!(receive_all(&mut receiver).unwrap(), b"from the server\n");
    let heard = server.join().unwrap();
    assert_eq!(&heard[..6], b"hello ");
    assert!(heard[6..] == big[..]);
}

#[test]
fn a_read_waiting_on_the_peer_does_not_hold_up_a_write() {
    let (addr, fingerprint, server) = server(|session| {
        let (_socket, mut receiver, mut transmitter) = session.unwrap().split();
        // Take everything first; only then answer.
        let heard = receive_all(&mut receiver).unwrap();
        transmitter.transmit(b"done").unwrap();
        transmitter.finish().unwrap();
        heard.len()
    });
    let (_socket, mut receiver, mut transmitter) =
        dial(addr, &Verification::Pin(fingerprint)).unwrap().split();
    let (got, heard) = mpsc::channel();
    // This read blocks until the server answers, which it does only after
    // our writes below have all arrived.
    let reader = thread::spawn(move || {
        let _ = got.send(receive_all(&mut receiver));
    });
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..8 {
        transmitter.transmit(&chunk).unwrap();
    }
    transmitter.finish().unwrap();
    let answer = heard
        .recv_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap();
    assert_eq!(answer, b"done");
    assert_eq!(server.join().unwrap(), 8 << 20);
    reader.join().unwrap();
}

/// More than loopback's socket buffers hold, so a peer that does not read
/// leaves the sender waiting for room.
const MORE_THAN_BUFFERED: usize = 48 << 20;

#[test]
fn a_write_waiting_for_room_does_not_hold_up_a_read() {
    let (addr, fingerprint, server) = server(|session| {
        let (_socket, mut receiver, mut transmitter) = session.unwrap().split();
        let sender = thread::spawn(move || {
            let big = vec![5u8; MORE_THAN_BUFFERED];
            transmitter
                .transmit(&big)
                .and_then(|()| transmitter.finish())
        });
        // The client reads nothing until it has our answer, so the sender
        // is waiting for room in the socket while we read.
        let mut buf = [0; 16];
        let n = receiver.receive(&mut buf).unwrap();
        let still_sending = !sender.is_finished();
        (buf[..n].to_vec(), still_sending, sender)
    });
    let (socket, mut receiver, mut transmitter) =
        dial(addr, &Verification::Pin(fingerprint)).unwrap().split();
    transmitter.transmit(b"ping").unwrap();
    let (done, finished) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let _ = done.send(server.join());
    });
    let Ok(joined) = finished.recv_timeout(Duration::from_secs(20)) else {
        let _ = socket.shutdown(std::net::Shutdown::Both);
        panic!("the server's read waited for its stuck write");
    };
    let (heard, still_sending, sender) = joined.unwrap();
    assert_eq!(heard, b"ping");
    assert!(
        still_sending,
        "the write never had to wait: test proves nothing"
    );
    let all = receive_all(&mut receiver).unwrap();
    assert_eq!(all.len(), MORE_THAN_BUFFERED);
    assert!(all.iter().all(|&b| b == 5));
    sender.join().unwrap().unwrap();
    waiter.join().unwrap();
}

#[test]
fn a_write_waiting_for_room_is_woken_by_shutdown() {
    let (addr, fingerprint, server) = server(|session| {
        let (socket, _receiver, mut transmitter) = session.unwrap().split();
        let (done, finished) = mpsc::channel();
        let sender = thread::spawn(move || {
            let big = vec![5u8; MORE_THAN_BUFFERED];
            let _ = done.send(transmitter.transmit(&big));
        });
        // Nobody reads: the write waits for room until the socket goes.
        assert!(finished.recv_timeout(Duration::from_millis(300)).is_err());
        socket.shutdown(std::net::Shutdown::Both).unwrap();
        let sent = finished.recv_timeout(Duration::from_secs(10));
        sender.join().unwrap();
        sent
    });
    let (_socket, _receiver, _transmitter) =
        dial(addr, &Verification::Pin(fingerprint)).unwrap().split();
    let sent = server.join().unwrap();
    assert!(
        matches!(sent, Ok(Err(_))),
        "the stuck write was not woken with an error: {sent:?}"
    );
}

#[test]
fn an_eof_without_close_notify_is_a_truncation() {
    let (addr, fingerprint, server) = server(|session| {
        let (socket, _receiver, mut transmitter) = session.unwrap().split();
        transmitter.transmit(b"partial").unwrap();
        // FIN without close_notify: what a relay that cuts the stream does.
        socket.shutdown(std::net::Shutdown::Write).unwrap();
        thread::sleep(Duration::from_millis(200));
    });
    let (_socket, mut receiver, _transmitter) =
        dial(addr, &Verification::Pin(fingerprint)).unwrap().split();
    let mut buf = [0; 64];
    let n = receiver.receive(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"partial");
    let error = receiver.receive(&mut buf).unwrap_err();
    assert!(is_truncation(&error), "{error}");
    assert!(error.to_string().contains("close_notify"), "{error}");
    server.join().unwrap();
}

#[test]
fn a_wrong_pin_is_refused_with_the_real_fingerprint() {
    let (addr, fingerprint, server) = server(|session| session.map(|_| ()));
    let wrong = Fingerprint::of(b"some other certificate");
    let error = dial(addr, &Verification::Pin(wrong)).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, TlsError::PinMismatch { .. }), "{text}");
    assert!(text.contains(&fingerprint.to_string()), "{text}");
    // The server hears why: the client's alert.
    let refused = server.join().unwrap().unwrap_err().to_string();
    assert!(refused.contains("refused"), "{refused}");
}

#[test]
fn an_untrusted_certificate_names_its_fingerprint_for_tls_pin() {
    let (addr, fingerprint, server) = server(|session| session.map(|_| ()));
    let ca = std::env::temp_dir().join(format!("duplex-tls-unit-{}.pem", std::process::id()));
    // A CA bundle that does not hold the throwaway's issuer: a fresh
    // throwaway is not made into PEM here, so use an unrelated one.
    std::fs::write(&ca, UNRELATED_CA).unwrap();
    let error = dial(
        addr,
        &Verification::Roots {
            ca: Some(ca.clone()),
        },
    )
    .unwrap_err();
    let _ = std::fs::remove_file(&ca);
    let text = error.to_string();
    assert!(
        text.starts_with("certificate for localhost is not trusted: "),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("; use --tls-pin {fingerprint} to trust this one")),
        "{text}"
    );
    let _ = server.join().unwrap();
}

#[test]
fn insecure_takes_any_certificate() {
    let (addr, _, server) = server(|session| {
        let (_socket, _receiver, mut transmitter) = session.unwrap().split();
        transmitter.transmit(b"hi").unwrap();
        transmitter.finish().unwrap();
    });
    let (_socket, mut receiver, _transmitter) =
        dial(addr, &Verification::Insecure).unwrap().split();
    assert_eq!(receive_all(&mut receiver).unwrap(), b"hi");
    server.join().unwrap();
}

#[test]
fn a_plain_peer_is_told_apart_quickly() {
    // A plain server that greets: the client sees bytes that are not TLS.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let plain = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"hello\n").unwrap();
        let _ = stream.read(&mut [0; 4096]);
    });
    let error = dial(addr, &Verification::Insecure).unwrap_err().to_string();
    assert!(error.contains("does not speak TLS"), "{error}");
    plain.join().unwrap();

    // A plain client that says something to a TLS server.
    let (addr, _, server) = server(|session| session.map(|_| ()));
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"hello\n").unwrap();
    let error = server.join().unwrap().unwrap_err().to_string();
    assert!(error.contains("does not speak TLS"), "{error}");
}

#[test]
fn a_silent_peer_times_the_handshake_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connector = TlsConnector::new(&Verification::Insecure).unwrap();
    let stream = TcpStream::connect(addr).unwrap();
    let (_held, _) = listener.accept().unwrap();
    let started = Instant::now();
    let error = connector
        .connect_within(stream, "localhost", addr, Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no answer within"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn missing_and_non_pem_files_are_one_clear_line() {
    let missing = Identity::Files {
        cert: "/nonexistent/cert.pem".into(),
        key: "/nonexistent/key.pem".into(),
    };
    let error = TlsAcceptor::new(&missing, "127.0.0.1")
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "could not read --tls-cert /nonexistent/cert.pem: no such file or directory"
    );
    let junk = std::env::temp_dir().join(format!("duplex-tls-junk-{}", std::process::id()));
    std::fs::write(&junk, b"not a certificate\n").unwrap();
    let error = TlsConnector::new(&Verification::Roots {
        ca: Some(junk.clone()),
    })
    .unwrap_err()
    .to_string();
    let _ = std::fs::remove_file(&junk);
    assert!(error.ends_with("holds no PEM certificate"), "{error}");
    assert!(!error.contains('\n'));
}

/// A self-signed CA that signed nothing here (made once with openssl).
const UNRELATED_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUcDasrBNmOTWvs7NqPRUwZYqof+8wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJdW5yZWxhdGVkMCAXDTI2MTIwMTIxMzYzNFoYDzIxMjYxMTA3
MjEzNjM0WjAUMRIwEAYDVQQDDAl1bnJlbGF0ZWQwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASO6+tgmQclWbEvS8BSmtiRiaZZObmAli4YmMZnTLLdRBSn/AygBjBw
OH3vkUZ4DTWcnpx4KfnzTOK3BzbAgtxGo1MwUTAdBgNVHQ4EFgQU+7eVjXQKWUmw
yYNMKjJ1jqckn50wHwYDVR0jBBgwFoAU+7eVjXQKWUmwyYNMKjJ1jqckn50wDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAyBnqobf1FGhTzvGtB+PWS
YFHvAS/UKQzo74EPy8qQJwIhAPwINPhVwB/2h3N2KnlljNjJXqr6x9ZqioX1v32Q
5dYe
-----END CERTIFICATE-----
";

#[test]
fn presented_names_read_plainly_and_safely() {
    assert_eq!(presented_name("DnsName(\"a.example\")"), "a.example");
    assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
    assert_eq!(
        presented_name("DnsName(\"x\u{1b}]0;owned\u{7}\u{202e}\")"),
        "x<U+001B>]0;owned<U+0007><U+202E>"
    );
}
