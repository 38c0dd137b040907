//! `--tls` end to end (SPEC, "TLS"), against the TLS peers that exist:
//! `openssl s_server`/`s_client`, `ncat --ssl` and `socat OPENSSL:` (see
//! shared PEERS.md for how they are driven). Each test makes its own CA and
//! leaf certificates with `openssl req`/`x509`. Skipped loudly when a peer
//! is missing; `DUPLEX_REQUIRE_PEERS=1` turns that into a failure.

use crate::support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;

use support::{
    DEADLINE, Proc, duplex, fnv1a, free_port, noise_without_newline, program, require_peer, serve,
    wait_tcp_listen,
};

/// A CA and the certificates it signed, in a directory removed on drop.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    #[track_caller]
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("duplex-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=duplex test CA",
        ]);
        pki
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    #[track_caller]
    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `NAME.pem` and `NAME.key`: a leaf for `sans` (openssl's
    /// subjectAltName syntax), signed by this CA.
    #[track_caller]
    fn leaf(&self, name: &str, sans: &str) -> (String, String) {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(
            self.dir.join(&ext),
            format!(
                "subjectAltName={sans}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=duplex test leaf",
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
        (self.path(&pem), self.path(&key))
    }

    /// `sha256:HEX` of a PEM certificate, as openssl computes it.
    fn fingerprint(&self, pem: &str) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-in", pem, "-noout", "-fingerprint", "-sha256"])
            .output()
            .expect("run openssl x509");
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text.trim().rsplit('=').next().unwrap_or_default();
        format!("sha256:{}", hex.replace(':', "").to_lowercase())
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `openssl s_server` on a free loopback port with `cert`/`key`, for one
/// connection; waited for in /proc (a probe would be its one connection).
fn s_server(cert: &str, key: &str) -> (Proc, u16) {
    let port = free_port();
    let server = program("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
        .args(["-cert", cert, "-key", key, "-quiet", "-naccept", "1"])
        .spawn();
    wait_tcp_listen(port);
    (server, port)
}

fn connect_to(host: &str, port: u16, extra: &[&str]) -> Proc {
    duplex()
        .arg("connect")
        .args(extra)
        .args([host, &port.to_string()])
        .spawn()
}

/// The `tls fingerprint: sha256:…` line of a `serve --tls`.
fn served_fingerprint(server: &mut Proc) -> String {
    let line = server.wait_for_stderr("tls fingerprint: ");
    let fp = line
        .trim()
        .trim_start_matches("tls fingerprint: ")
        .to_owned();
    assert!(fp.starts_with("sha256:") && fp.len() == 71, "{line:?}");
    assert!(
        fp[7..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    fp
}

#[test]
fn connect_tls_trusts_an_openssl_server_through_tls_ca_and_chats_both_ways() {
    if !require_peer("openssl") {
        return;
    }
    let pki = Pki::new("trusted");
    let (cert, key) = pki.leaf("server", "DNS:localhost,IP:127.0.0.1");
    let (mut server, port) = s_server(&cert, &key);
    let mut client = connect_to(
        "localhost",
        port,
        &["--tls", "--tls-ca", &pki.path("ca.pem")],
    );
    client.wait_for_stderr("connected to");
    client.write(b"from duplex\n");
    server.wait_for_stdout(b"from duplex\n");
    server.write(b"from openssl\n");
    client.wait_for_stdout(b"from openssl\n");
    // Our goodbye: close_notify, FIN; s_server answers and leaves.
    client.close_stdin();
    client.assert_exit(0);
    client.assert_no_error_line();
    client.assert_stdout(b"from openssl\n");
    server.assert_exit(0);
}

#[test]
fn connect_tls_refuses_an_untrusted_server_before_sending_anything() {
    if !require_peer("openssl") {
        return;
    }
    let pki = Pki::new("untrusted");
    let (cert, key) = pki.leaf("server", "DNS:localhost,IP:127.0.0.1");
    let (mut server, port) = s_server(&cert, &key);
    // The system's roots do not hold this test's CA.
    let mut client = connect_to("localhost", port, &["--tls"]);
    client.write(b"nobody may read this\n");
    client.assert_exit(1);
    let fp = pki.fingerprint(&cert);
    let stderr = client.stderr();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("duplex: "))
        .unwrap_or_default();
    assert_eq!(
        line,
        format!(
            "duplex: certificate for localhost is not trusted: it is not signed by a trusted authority; use --tls-pin {fp} to trust this one"
        ),
        "{stderr}"
    );
    server.kill();
    assert!(!server.stdout().windows(6).any(|w| w == b"nobody"));
}

/// A self-signed certificate given to `--tls-ca` (what a new user tries
/// first): the error says what it is and offers the pin.
#[test]
fn connect_tls_says_a_self_signed_certificate_is_not_its_own_ca() {
    if !require_peer("openssl") {
        return;
    }
    let pki = Pki::new("selfsigned");
    let (mut server, port) = s_server(&pki.path("ca.pem"), &pki.path("ca.key"));
    let mut client = connect_to(
        "localhost",
        port,
        &["--tls", "--tls-ca", &pki.path("ca.pem")],
    );
    client.close_stdin();
    client.assert_exit(1);
    let stderr = client.stderr();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("duplex: "))
        .unwrap_or_default();
    assert!(
        line.contains("is not trusted: it is a CA's certificate, not a server's")
            && line.contains("; use --tls-pin sha256:"),
        "{stderr}"
    );
    server.kill();
}

#[test]
fn connect_tls_refuses_a_certificate_for_another_name() {
    if !require_peer("openssl") {
        return;
    }
    let pki = Pki::new("wrongname");
    let (cert, key) = pki.leaf("server", "DNS:elsewhere.example");
    let (mut server, port) = s_server(&cert, &key);
    let mut client = connect_to(
        "127.0.0.1",
        port,
        &["--tls", "--tls-ca", &pki.path("ca.pem")],
    );
    client.assert_exit(1);
    let stderr = client.stderr();
    assert!(
        stderr.contains(
            "certificate for 127.0.0.1 is not trusted: it is for elsewhere.example, not 127.0.0.1; use --tls-pin sha256:"
        ),
        "{stderr}"
    );
    server.kill();
}

#[test]
fn connect_tls_pin_accepts_exactly_the_pinned_leaf() {
    if !require_peer("openssl") {
        return;
    }
    let pki = Pki::new("pin");
    // Neither trusted nor named for 127.0.0.1: the pin is all that counts.
    let (cert, key) = pki.leaf("server", "DNS:elsewhere.example");
    let fp = pki.fingerprint(&cert);
    let (mut server, port) = s_server(&cert, &key);
    let mut client = connect_to("127.0.0.1", port, &["--tls", "--tls-pin", &fp]);
    client.write(b"pinned\n");
    server.wait_for_stdout(b"pinned\n");
    server.write(b"hello pinned\n");
    client.wait_for_stdout(b"hello pinned\n");
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);

    // Any other pin: refused, with the leaf it did send.
    let (mut server, port) = s_server(&cert, &key);
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let mut client = connect_to("127.0.0.1", port, &["--tls", "--tls-pin", &wrong]);
    client.assert_exit(1);
    let stderr = client.stderr();
    assert!(
        stderr.contains(&format!(
            "certificate for 127.0.0.1 does not match --tls-pin: it is {fp}"
        )),
        "{stderr}"
    );
    server.kill();
}

#[test]
fn connect_tls_insecure_to_ncat_ssl_says_so_even_quietly() {
    if !require_peer("ncat") {
        return;
    }
    let port = free_port();
    let mut ncat = program("ncat")
        .args(["--ssl", "-l", "127.0.0.1", &port.to_string()])
        .spawn();
    wait_tcp_listen(port);
    let mut client = connect_to("127.0.0.1", port, &["-q", "--tls", "--tls-insecure"]);
    client.wait_for_stderr("--tls-insecure: the server's certificate is not verified");
    client.write(b"from duplex\n");
    ncat.wait_for_stdout(b"from duplex\n");
    ncat.write(b"from ncat\n");
    client.wait_for_stdout(b"from ncat\n");
    // Our goodbye; ncat 7.93 stays until its own input ends, then closes
    // without close_notify, which ends our drain normally. (It must see the
    // goodbye first: a cut before it is a truncation.)
    client.write(b"\n");
    ncat.wait_for_stdout(b"from duplex\n\n");
    ncat.close_stdin();
    client.assert_exit(0);
    client.assert_stdout(b"from ncat\n");
    ncat.assert_exit(0);
}

#[test]
fn openssl_s_client_chats_with_serve_tls_on_a_throwaway_certificate() {
    if !require_peer("openssl") {
        return;
    }
    let (mut server, addr) = serve(&["--once", "--tls"]);
    served_fingerprint(&mut server);
    let mut client = program("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-quiet"])
        .spawn();
    server.wait_for_stderr("connection from");
    client.write(b"from openssl\n");
    server.wait_for_stdout(b"from openssl\n");
    server.write(b"from duplex\n");
    client.wait_for_stdout(b"from duplex\n");
    // The server's goodbye: close_notify and FIN; s_client leaves.
    server.write(b"\n");
    server.assert_exit(0);
    client.assert_exit(0);
    client.assert_stdout(b"from duplex\n\n");
    server.assert_stdout(b"from openssl\n");
}

/// A TLS 1.3 `KeyUpdate` mid-stream, asking for ours back (s_client's `K`
/// command): our receiver takes the peer's new key, and our answer, queued
/// by the receiver, goes out ahead of the sender's next record, so openssl
/// reads what we send under our new key.
#[test]
fn openssl_s_client_key_update_mid_stream_keeps_both_directions_going() {
    if !require_peer("openssl") {
        return;
    }
    let (mut server, addr) = serve(&["--once", "--tls"]);
    served_fingerprint(&mut server);
    // Not -quiet: that turns off s_client's command letters.
    let mut client = program("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-tls1_3", "-msg"])
        .spawn();
    server.wait_for_stderr("connection from");
    client.write(b"before the update\n");
    server.wait_for_stdout(b"before the update\n");
    client.write(b"K\n");
    client.wait_for_stderr("KEYUPDATE");
    client.write(b"after the update\n");
    server.wait_for_stdout(b"after the update\n");
    server.write(b"from duplex after the update\n");
    client.wait_for_stdout(b"from duplex after the update\n");
    // -msg shows the records openssl took: our answering KeyUpdate reached
    // it (the data after it, under our new key, read above).
    client.wait_for_stdout(b"<<< TLS 1.3, Handshake [length 0005], KeyUpdate");
    server.write(b"\n");
    server.assert_exit(0);
    client.assert_exit(0);
    server.assert_stdout(b"before the update\nafter the update\n");
}

#[test]
fn the_throwaway_certificate_is_the_printed_one_for_local_names_and_30_days() {
    if !require_peer("openssl") {
        return;
    }
    // -q: the fingerprint line is printed all the same.
    let mut server = duplex()
        .args([
            "serve",
            "-q",
            "--tls",
            "-b",
            "127.0.0.1",
            &free_port().to_string(),
        ])
        .spawn();
    let fp = served_fingerprint(&mut server);
    server.kill();

    let (mut server, addr) = serve(&["--once", "--tls"]);
    let fp2 = served_fingerprint(&mut server);
    assert_ne!(fp, fp2, "a throwaway certificate is made per run");
    let dir = Pki::new("throwaway");
    let pem = dir.path("seen.pem");
    let probe = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} </dev/null 2>/dev/null | openssl x509 -out {pem}"
        ))
        .status()
        .unwrap();
    assert!(probe.success());
    server.assert_exit(0);
    assert_eq!(dir.fingerprint(&pem), fp2);
    let text = Command::new("openssl")
        .args(["x509", "-in", &pem, "-noout", "-ext", "subjectAltName"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    for name in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
    ] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
    let valid_for = |days: u32| {
        Command::new("openssl")
            .args([
                "x509",
                "-in",
                &pem,
                "-noout",
                "-checkend",
                &(days * 86400).to_string(),
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(valid_for(29) && !valid_for(31), "not valid for 30 days");
}

#[test]
fn openssl_s_client_verifies_serve_tls_with_loaded_files() {
    if !require_peer("openssl") {
        return;
    }
    let pki = Pki::new("loaded");
    let (cert, key) = pki.leaf("server", "DNS:localhost,IP:127.0.0.1");
    let (mut server, addr) = serve(&["--once", "--tls", "--tls-cert", &cert, "--tls-key", &key]);
    assert_eq!(served_fingerprint(&mut server), pki.fingerprint(&cert));
    let mut client = program("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-quiet",
            "-verify_return_error",
        ])
        .args([
            "-CAfile",
            &pki.path("ca.pem"),
            "-verify_hostname",
            "localhost",
        ])
        .spawn();
    server.wait_for_stderr("connection from");
    client.write(b"verified\n");
    server.wait_for_stdout(b"verified\n");
    server.write(b"and answered\n");
    client.wait_for_stdout(b"and answered\n");
    server.close_stdin();
    server.assert_exit(0);
    client.assert_exit(0);
    server.assert_no_error_line();
}

#[test]
fn ncat_ssl_chats_with_serve_tls() {
    if !require_peer("ncat") {
        return;
    }
    let (mut server, addr) = serve(&["--once", "--tls"]);
    let mut client = program("ncat")
        .args(["--ssl", &addr.ip().to_string(), &addr.port().to_string()])
        .spawn();
    server.wait_for_stderr("connection from");
    client.write(b"from ncat\n");
    server.wait_for_stdout(b"from ncat\n");
    server.write(b"from duplex\n");
    client.wait_for_stdout(b"from duplex\n");
    // Our goodbye; ncat closes when its input ends, without close_notify:
    // that ends our drain normally.
    server.write(b"\n");
    client.wait_for_stdout(b"from duplex\n\n");
    client.close_stdin();
    server.assert_exit(0);
    server.assert_no_error_line();
    client.assert_exit(0);
    client.assert_stdout(b"from duplex\n\n");
}

const BULK: usize = 64 << 20;

#[test]
fn socat_openssl_sends_64_mib_to_serve_raw_tls() {
    if !require_peer("socat") {
        return;
    }
    let data = noise_without_newline(BULK, 7);
    let dir = Pki::new("bulk-in");
    let file = dir.path("data");
    std::fs::write(&file, &data).unwrap();
    let (mut server, addr) = {
        let mut p = duplex()
            .args(["serve", "--once", "--raw", "--tls", "-b", "127.0.0.1", "0"])
            .stdin_null()
            .spawn();
        let addr = p.wait_for_listening();
        (p, addr)
    };
    // Not `socat -u`: it never reads our close_notify, and closing with it
    // unread resets the connection (PEERS.md, "lost tails").
    let mut socat = program("socat")
        .args(["-t", "30", "-b", "65536", &format!("OPEN:{file},rdonly")])
        .arg(format!("OPENSSL:{addr},verify=0"))
        .spawn();
    server.assert_exit(0);
    socat.assert_exit(0);
    let got = server.stdout();
    assert_eq!(got.len(), BULK);
    assert_eq!(fnv1a(&got), fnv1a(&data));
}

#[test]
fn connect_raw_tls_sends_64_mib_to_socat_openssl_listen() {
    if !require_peer("socat") || !require_peer("openssl") {
        return;
    }
    let pki = Pki::new("bulk-out");
    let (cert, key) = pki.leaf("server", "DNS:localhost,IP:127.0.0.1");
    let data = noise_without_newline(BULK, 11);
    let out = pki.path("received");
    let port = free_port();
    let mut socat = program("socat")
        .args(["-u", "-b", "65536"])
        .arg(format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={cert},key={key},verify=0"
        ))
        .arg(format!("CREATE:{out}"))
        .spawn();
    wait_tcp_listen(port);
    let mut client = connect_to(
        "localhost",
        port,
        &["--raw", "--tls", "--tls-ca", &pki.path("ca.pem")],
    );
    let mut stdin = client.take_stdin();
    let feeder = {
        let data = data.clone();
        thread::spawn(move || stdin.write_all(&data))
    };
    client.assert_exit(0);
    feeder.join().unwrap().unwrap();
    socat.assert_exit(0);
    let got = std::fs::read(&out).unwrap();
    assert_eq!(got.len(), BULK);
    assert_eq!(fnv1a(&got), fnv1a(&data));
}

/// A TCP relay to `target` that forwards until told to cut: then it shuts
/// the client's side down (a FIN, no close_notify) and stops forwarding.
fn cutting_relay(target: SocketAddr) -> (SocketAddr, std::sync::mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut_tx, cut) = std::sync::mpsc::channel::<()>();
    thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let upstream = TcpStream::connect(target).unwrap();
        let pump = |mut from: TcpStream, mut to: TcpStream| {
            thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            })
        };
        pump(client.try_clone().unwrap(), upstream.try_clone().unwrap());
        // Server → client bytes go through this thread, so a cut is
        // exact: nothing after it reaches the client.
        let mut from = upstream.try_clone().unwrap();
        let mut to = client.try_clone().unwrap();
        from.set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 16 * 1024];
        let deadline = std::time::Instant::now() + DEADLINE;
        while std::time::Instant::now() < deadline {
            if cut.try_recv().is_ok() {
                break;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(_) => {}
            }
        }
        let _ = client.shutdown(Shutdown::Write);
        // Hold both sockets until the test is done with them.
        thread::sleep(DEADLINE);
        drop(upstream);
    });
    (addr, cut_tx)
}

#[test]
fn an_eof_without_close_notify_is_a_truncation_exit_1() {
    for raw in [false, true] {
        let mode: &[&str] = if raw { &["--raw"] } else { &[] };
        let (mut server, addr) = serve(&[&["--once", "--tls"], mode].concat());
        let fp = served_fingerprint(&mut server);
        let (relay, cut) = cutting_relay(addr);
        let mut client = duplex()
            .arg("connect")
            .args(mode)
            .args([
                "--tls",
                "--tls-pin",
                &fp,
                "127.0.0.1",
                &relay.port().to_string(),
            ])
            .spawn();
        server.wait_for_stderr("connection from");
        server.write(b"the first half\n");
        client.wait_for_stdout(b"the first half\n");
        cut.send(()).unwrap();
        client.assert_exit(1);
        let stderr = client.stderr();
        assert!(stderr.contains("without TLS close_notify"), "{stderr}");
        server.kill();
    }
}

#[test]
fn plain_and_tls_peers_are_told_apart_without_a_hang() {
    // A plain client greeting a TLS server.
    let (mut server, addr) = serve(&["--once", "--tls"]);
    let mut client = support::connect(addr, &["--linger", "1"]);
    client.write(b"hello\n");
    server.assert_exit(1);
    let stderr = server.stderr();
    assert!(stderr.contains("does not speak TLS"), "{stderr}");
    let _ = client.wait_exit(DEADLINE);

    // A TLS client at a plain server that greets.
    let (mut server, addr) = serve(&["--once", "--linger", "1"]);
    let mut client = support::connect(addr, &["--tls", "--tls-insecure"]);
    server.write(b"hello\n");
    client.assert_exit(1);
    let stderr = client.stderr();
    assert!(
        stderr.contains("TLS handshake with") && stderr.contains("does not speak TLS"),
        "{stderr}"
    );
    let _ = server.wait_exit(DEADLINE);
}

#[test]
fn tls_options_are_checked_on_the_command_line() {
    let usage = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_duplex"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for args in [
        &["serve", "--tls", "--tls-cert", "c.pem", "0"][..],
        &["serve", "--tls", "--tls-key", "k.pem", "0"],
        &["serve", "--tls-cert", "c.pem", "--tls-key", "k.pem", "0"],
        &["serve", "--tls", "--tls-pin", "sha256:00", "0"],
        &["serve", "--tls", "--tls-insecure", "0"],
        &["serve", "--tls", "--tls-ca", "ca.pem", "0"],
        &["connect", "--tls-insecure", "h", "1"],
        &["connect", "--tls-ca", "ca.pem", "h", "1"],
        &["connect", "--tls", "--tls-pin", "sha256:xyz", "h", "1"],
        &["connect", "--tls", "--tls-pin", "00", "h", "1"],
        &[
            "connect",
            "--tls",
            "--tls-insecure",
            "--tls-pin",
            &format!("sha256:{}", "0".repeat(64)),
            "h",
            "1",
        ],
        &["connect", "--tls", "--tls-cert", "c.pem", "h", "1"],
    ] {
        let (code, stderr) = usage(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
    }
    let (code, stderr) = usage(&[
        "serve",
        "--tls",
        "--tls-cert",
        "/nonexistent/c.pem",
        "--tls-key",
        "/nonexistent/k.pem",
        "0",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "duplex: could not read --tls-cert /nonexistent/c.pem: no such file or directory\n"
    );
    let not_pem = std::env::temp_dir().join(format!("duplex-tls-{}-notpem", std::process::id()));
    std::fs::write(&not_pem, b"hello\n").unwrap();
    let not_pem = not_pem.to_string_lossy().into_owned();
    let (code, stderr) = usage(&[
        "serve",
        "--tls",
        "--tls-cert",
        &not_pem,
        "--tls-key",
        &not_pem,
        "0",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!("duplex: --tls-cert {not_pem} holds no PEM certificate\n")
    );
    let (code, stderr) = usage(&["connect", "--tls", "--tls-ca", &not_pem, "127.0.0.1", "1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!("duplex: --tls-ca {not_pem} holds no PEM certificate\n")
    );
    let _ = std::fs::remove_file(&not_pem);
}

#[test]
fn tls_1_2_works_both_ways() {
    if !require_peer("openssl") {
        return;
    }
    let pki = Pki::new("tls12");
    let (cert, key) = pki.leaf("server", "DNS:localhost,IP:127.0.0.1");
    // duplex connect to an s_server that only speaks TLS 1.2.
    let port = free_port();
    let mut server = program("openssl")
        .args([
            "s_server",
            "-tls1_2",
            "-accept",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["-cert", &cert, "-key", &key, "-quiet", "-naccept", "1"])
        .spawn();
    wait_tcp_listen(port);
    let mut client = connect_to(
        "localhost",
        port,
        &["--tls", "--tls-ca", &pki.path("ca.pem")],
    );
    client.write(b"over 1.2\n");
    server.wait_for_stdout(b"over 1.2\n");
    server.write(b"yes\n");
    client.wait_for_stdout(b"yes\n");
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);

    // s_client -tls1_2 to duplex serve --tls.
    let (mut server, addr) = serve(&["--once", "--tls", "--tls-cert", &cert, "--tls-key", &key]);
    let mut client = program("openssl")
        .args([
            "s_client",
            "-tls1_2",
            "-connect",
            &addr.to_string(),
            "-quiet",
        ])
        .args(["-verify_return_error", "-CAfile", &pki.path("ca.pem")])
        .spawn();
    client.write(b"1.2 in\n");
    server.wait_for_stdout(b"1.2 in\n");
    server.write(b"1.2 out\n\n");
    client.wait_for_stdout(b"1.2 out\n");
    server.assert_exit(0);
    client.assert_exit(0);
}

#[test]
fn serve_tls_goes_on_after_a_failed_handshake() {
    let (mut server, addr) = serve(&["--tls", "--linger", "1"]);
    let fp = served_fingerprint(&mut server);
    // A plain peer first: its handshake fails, the server takes the next.
    let mut plain = support::connect(addr, &["--linger", "1"]);
    plain.write(b"hello\n");
    server.wait_for_stderr("does not speak TLS");
    let _ = plain.wait_exit(DEADLINE);
    let mut client = support::connect(addr, &["--tls", "--tls-pin", &fp]);
    client.write(b"second\n");
    server.wait_for_stdout(b"second\n");
    client.close_stdin();
    client.assert_exit(0);
    server.kill();
}

/// `serve --room --tls`: every peer gets its own TLS session, on its own
/// threads, and lines are relayed between them (SPEC, "TLS": a room runs TLS
/// with each peer).
#[test]
fn a_room_over_tls_relays_between_pinned_peers() {
    let (mut room, addr) = serve(&["--room", "--tls", "--linger", "0.5"]);
    let fp = served_fingerprint(&mut room);
    let port = addr.port();
    let pinned = ["--tls", "--tls-pin", fp.as_str(), "--linger", "0.5"];
    let mut alice = connect_to(
        "127.0.0.1",
        port,
        &[&pinned[..], &["--name", "alice"]].concat(),
    );
    alice.wait_for_stdout(b"is now [alice]\n");
    let mut bob = connect_to(
        "127.0.0.1",
        port,
        &[&pinned[..], &["--name", "bob"]].concat(),
    );
    bob.wait_for_stdout(b"is now [bob]\n");
    alice.write(b"hello over tls\n");
    bob.wait_for_stdout(b"[alice] hello over tls\n");
    room.wait_for_stdout(b"[alice] hello over tls\n");
    room.write(b"from the server\n");
    alice.wait_for_stdout(b"[server] from the server\n");
    bob.wait_for_stdout(b"[server] from the server\n");
    alice.close_stdin();
    alice.assert_exit(0);
    bob.close_stdin();
    bob.assert_exit(0);
    room.close_stdin();
    room.assert_exit(0);
}
