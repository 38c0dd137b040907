//! Interop with the classic peers (SPEC "Chat mode": the wire format is what
//! netcat and socat speak). See shared PEERS.md for how they are driven.
//! Skipped loudly when a peer is missing; `DUPLEX_REQUIRE_PEERS=1` turns a
//! missing peer into a failure.

use crate::support;

use support::{
    connect, free_port, program, require_openbsd_nc, require_peer, serve, wait_tcp_listen,
};

#[test]
fn interop_nc_client_to_duplex_serve() {
    if !require_openbsd_nc() {
        return;
    }
    let (mut server, addr) = serve(&["--once"]);
    // -N: half-close at stdin EOF, then wait for the peer to close.
    let mut nc = program("nc")
        .args(["-N", &addr.ip().to_string(), &addr.port().to_string()])
        .spawn();
    server.wait_for_stderr("connection from");

    server.write(b"from duplex 1\nfrom duplex 2\n");
    nc.write(b"from nc 1\nfrom nc 2\n");
    nc.wait_for_stdout(b"from duplex 1\nfrom duplex 2\n");
    server.wait_for_stdout(b"from nc 1\nfrom nc 2\n");

    // nc's end of input is a goodbye; both end cleanly.
    nc.close_stdin();
    server.assert_exit(0);
    nc.assert_exit(0);
    server.assert_stdout(b"from nc 1\nfrom nc 2\n");
    nc.assert_stdout(b"from duplex 1\nfrom duplex 2\n");
}

#[test]
fn interop_duplex_connect_to_socat_listener() {
    if !require_peer("socat") {
        return;
    }
    // socat cannot report a port it picked: take a free one, then poll
    // /proc/net/tcp for its LISTEN socket (a probe connection would be its
    // one conversation).
    let port = free_port();
    let mut socat = program("socat")
        .args([
            "-t".to_string(),
            "5".to_string(),
            format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"),
            "STDIO".to_string(),
        ])
        .spawn();
    wait_tcp_listen(port);

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut client = connect(addr, &[]);
    client.wait_for_stderr("connected to");

    socat.write(b"from socat 1\nfrom socat 2\n");
    client.write(b"from duplex 1\nfrom duplex 2\n");
    client.wait_for_stdout(b"from socat 1\nfrom socat 2\n");
    socat.wait_for_stdout(b"from duplex 1\nfrom duplex 2\n");

    // duplex says goodbye by EOF and half-closes; socat's end of input
    // half-closes the other way; both exit cleanly.
    client.close_stdin();
    socat.close_stdin();
    client.assert_exit(0);
    socat.assert_exit(0);
    client.assert_no_error_line();
    client.assert_stdout(b"from socat 1\nfrom socat 2\n");
    socat.assert_stdout(b"from duplex 1\nfrom duplex 2\n");
}
