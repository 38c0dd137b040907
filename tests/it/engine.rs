//! The engine in process: conversations and `serve` over 127.0.0.1:0 with
//! in-memory input and output (no binary, no stdin).

use crossbeam_channel::{Receiver, bounded};
use duplex::{
    Console, ConversationOptions, Ending, Input, Mode, ServeOptions, Shutdown, Status,
    conversation, serve, shutdown_channel,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

fn options(mode: Mode) -> ConversationOptions {
    ConversationOptions {
        mode,
        linger: Duration::from_secs(5),
        ..ConversationOptions::default()
    }
}

fn input_of(chunks: &[&[u8]]) -> Input {
    input_open(chunks).1
}

/// Input holding `chunks` that has not ended while the sender is kept.
fn input_open(chunks: &[&[u8]]) -> (crossbeam_channel::Sender<duplex::Chunk>, Input) {
    let (tx, input) = Input::channel();
    // Sent before the conversation starts, so it is all "already read".
    for chunk in chunks {
        tx.try_send(chunk.to_vec().into())
            .expect("the input channel holds a few chunks");
    }
    (tx, input)
}

/// Runs a conversation on its own thread; its result arrives on the channel.
fn converse(
    stream: TcpStream,
    mut input: Input,
    options: ConversationOptions,
    shutdown: Shutdown,
) -> Receiver<(duplex::Result<Ending>, Vec<u8>, Input)> {
    let (tx, rx) = bounded(1);
    let peer = stream.peer_addr().unwrap();
    thread::spawn(move || {
        let mut out = Vec::new();
        let mut console = Console::new(&mut input, &mut out).with_shutdown(shutdown);
        let result = conversation::run(stream, peer, &options, &mut console);
        let _ = tx.send((result, out, input));
    });
    rx
}

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (server, client)
}

#[test]
fn goodbye_line_is_sent_but_not_shown_and_the_rest_stays_in_the_input() {
    let (server, client) = pair();
    let server = converse(
        server,
        Input::silent(),
        options(Mode::Chat),
        Shutdown::never(),
    );
    let client = converse(
        client,
        input_of(&[b"a\nb\n\nc\n"]),
        options(Mode::Chat),
        Shutdown::never(),
    );
    let (ending, shown, _) = server.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ending.unwrap(), Ending::PeerGoodbye);
    assert_eq!(shown, b"a\nb\n");
    let (ending, _, mut input) = client.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ending.unwrap(), Ending::Goodbye);
    assert!(input.stopped_at_goodbye());
    assert_eq!(input.discard_pending(), 2, "\"c\\n\" was held back");
}

#[test]
fn both_directions_at_once_and_the_reply_to_a_goodbye_is_shown() {
    let (server, client) = pair();
    let lines: Vec<u8> = (0..2000)
        .flat_map(|i| format!("server {i}\n").into_bytes())
        .collect();
    let (_more_to_come, server_input) = input_open(&[&lines]);
    let server = converse(server, server_input, options(Mode::Chat), Shutdown::never());
    let client = converse(
        client,
        input_of(&[b"client 1\n", b"client 2\n"]),
        options(Mode::Chat),
        Shutdown::never(),
    );
    let (ending, from_client, _) = server.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ending.unwrap(), Ending::PeerClosed);
    assert_eq!(from_client, b"client 1\nclient 2\n");
    let (ending, from_server, _) = client.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ending.unwrap(), Ending::EndOfInput);
    // Everything the server had read when the client's EOF came was sent.
    assert_eq!(from_server, lines);
}

/// An output that tells the test what it was given, as it is given.
struct Watched(crossbeam_channel::Sender<Vec<u8>>);

impl Write for Watched {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_crlf_goodbye_split_across_reads_is_not_shown() {
    let (server, mut peer) = pair();
    let peer_addr = server.peer_addr().unwrap();
    let (shown_tx, shown) = crossbeam_channel::unbounded();
    let (done_tx, done) = bounded(1);
    thread::spawn(move || {
        let mut out = Watched(shown_tx);
        let mut input = Input::silent();
        let options = options(Mode::Chat);
        let result = conversation::run(
            server,
            peer_addr,
            &options,
            &mut Console::new(&mut input, &mut out),
        );
        let _ = done_tx.send(result);
    });
    peer.write_all(b"hi\r\n\r").unwrap();
    // "hi\r\n" is shown once the first read is in; the last `\r` is held
    // back. Only then does the rest go: the reads are split for sure.
    assert_eq!(shown.recv_timeout(DEADLINE).unwrap(), b"hi\r\n");
    peer.write_all(b"\nnot shown\n").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let ending = done.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ending.unwrap(), Ending::PeerGoodbye);
    // Nothing more was shown: not the held `\r`, not what followed.
    assert!(shown.try_recv().is_err());
    // The server closed cleanly: EOF, not a reset.
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
}

#[test]
fn raw_mode_carries_blank_lines_and_each_direction_ends_on_its_own() {
    let (server, client) = pair();
    let server = converse(
        server,
        input_of(&[b"reply\n\n"]),
        options(Mode::Raw),
        Shutdown::never(),
    );
    let client = converse(
        client,
        input_of(&[b"x\n\n", b"\n\ny"]),
        options(Mode::Raw),
        Shutdown::never(),
    );
    let (ending, shown, _) = server.recv_timeout(DEADLINE).unwrap();
    ending.unwrap();
    assert_eq!(shown, b"x\n\n\n\ny");
    let (ending, shown, _) = client.recv_timeout(DEADLINE).unwrap();
    ending.unwrap();
    assert_eq!(shown, b"reply\n\n");
}

/// A caller may hand in a socket it made nonblocking: the engine makes it
/// block, so a send that fills the socket waits instead of failing with
/// "would block" (or spinning).
#[test]
fn a_nonblocking_socket_still_carries_a_large_raw_transfer() {
    let (server, mut peer) = pair();
    server.set_nonblocking(true).unwrap();
    let big = vec![7u8; 8 << 20];
    let server = converse(
        server,
        input_of(&[&big]),
        options(Mode::Raw),
        Shutdown::never(),
    );
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), big.len());
    let (ending, _, _) = server.recv_timeout(DEADLINE).unwrap();
    ending.unwrap();
}

#[test]
fn a_silent_peer_that_never_closes_ends_by_linger() {
    let (server, peer) = pair();
    let options = ConversationOptions {
        linger: Duration::from_millis(200),
        ..options(Mode::Chat)
    };
    let server = converse(server, input_of(&[b"bye\n\n"]), options, Shutdown::never());
    let (ending, _, _) = server.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ending.unwrap(), Ending::LingerExpired);
    drop(peer);
}

#[test]
fn idle_timeout_ends_a_quiet_conversation() {
    let (server, mut peer) = pair();
    let options = ConversationOptions {
        idle_timeout: Some(Duration::from_millis(200)),
        ..options(Mode::Chat)
    };
    let server = converse(server, Input::silent(), options, Shutdown::never());
    // We see the server's half-close (EOF); then we close, as a peer should.
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    drop(peer);
    let (ending, _, _) = server.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ending.unwrap(), Ending::IdleTimeout);
}

#[test]
fn a_shutdown_closes_gracefully() {
    let (server, mut peer) = pair();
    let (trigger, shutdown) = shutdown_channel();
    let server = converse(server, Input::silent(), options(Mode::Chat), shutdown);
    peer.write_all(b"hello\n").unwrap();
    assert!(trigger.fire());
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest)
        .expect("a clean EOF, not a reset");
    drop(peer);
    let (ending, _, _) = server.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ending.unwrap(), Ending::Interrupted);
}

#[test]
fn serve_keeps_what_one_peer_did_not_take_for_the_next() {
    let (port_tx, port_rx) = bounded::<SocketAddr>(1);
    let status = Status::with_sink(
        false,
        Arc::new(move |line: &str| {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = port_tx.send(addr.parse().unwrap());
            }
        }),
    );
    let options = ServeOptions {
        bind: "127.0.0.1".into(),
        port: 0,
        conversation: options(Mode::Chat),
        ..ServeOptions::default()
    };
    let (done_tx, done_rx) = bounded(1);
    thread::spawn(move || {
        let mut input = input_of(&[b"one\n\ntwo\n"]);
        let mut out = Vec::new();
        let result = serve(
            &options,
            &mut Console::new(&mut input, &mut out).with_status(status),
        );
        let _ = done_tx.send((result, out));
    });
    let addr = port_rx.recv_timeout(DEADLINE).unwrap();
    let mut got = Vec::new();
    for hello in [b"first\n", b"later\n"] {
        let mut peer = TcpStream::connect(addr).unwrap();
        peer.write_all(hello).unwrap();
        let mut heard = Vec::new();
        peer.read_to_end(&mut heard).unwrap();
        got.push(heard);
    }
    assert_eq!(got, [b"one\n\n".to_vec(), b"two\n".to_vec()]);
    let (result, out) = done_rx.recv_timeout(DEADLINE).unwrap();
    // The server's input ended in the second conversation: it exits.
    assert_eq!(result.unwrap(), Ending::EndOfInput);
    assert_eq!(out, b"first\nlater\n");
}
