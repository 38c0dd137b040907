#!/usr/bin/env python3
"""A second implementation of duplex's secret channel, written from SPEC.md
("Secret channel") alone, with python-spake2 and `cryptography`: proof that
the protocol is what SPEC says, not whatever duplex's code happens to do.

    secret_peer.py connect HOST PORT     # SPAKE2 side A, proves first
    secret_peer.py serve                 # side B on 127.0.0.1, a free port;
                                         # prints "listening on 127.0.0.1:PORT"
The secret is DUPLEX_SECRET. stdin (all of it) is sent as records, then the
end record and shutdown(Write); what the peer sends goes to stdout. Exit 0
only when the peer's end record arrived and opened; 1 with a line on stderr
for every failure (wrong secret, a record that does not open, a cut).
"""

import os
import socket
import struct
import sys
import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from spake2 import SPAKE2_A, SPAKE2_B

PREAMBLE = b"duplex-secret-1\n"
MAX_PLAIN = 65536


def fail(message):
    sys.stderr.write("secret_peer: " + message + "\n")
    sys.stderr.flush()
    os._exit(1)


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def hkdf(k, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(k)


def nonce(number):
    return b"\0\0\0\0" + struct.pack(">Q", number)


def handshake(sock, client, secret):
    sock.settimeout(10)
    ids = dict(idA=b"duplex-client", idB=b"duplex-server")
    spake = SPAKE2_A(secret, **ids) if client else SPAKE2_B(secret, **ids)
    sock.sendall(PREAMBLE + spake.start())
    if read_exact(sock, 16) != PREAMBLE:
        fail("the peer is not using --secret")
    theirs = read_exact(sock, 33)
    if theirs is None:
        fail("the peer closed during the handshake")
    k = spake.finish(theirs)
    tc = hkdf(k, b"duplex-secret-1 client confirm")
    ts = hkdf(k, b"duplex-secret-1 server confirm")
    kcs = hkdf(k, b"duplex-secret-1 client to server")
    ksc = hkdf(k, b"duplex-secret-1 server to client")
    if client:
        sock.sendall(tc)
        if read_exact(sock, 32) != ts:
            fail("wrong secret")
        out_key, in_key = kcs, ksc
    else:
        if read_exact(sock, 32) != tc:
            fail("wrong secret")
        sock.sendall(ts)
        out_key, in_key = ksc, kcs
    sock.settimeout(None)
    return ChaCha20Poly1305(out_key), ChaCha20Poly1305(in_key)


def send_all(sock, sealer):
    number = 0
    while True:
        chunk = sys.stdin.buffer.read1(MAX_PLAIN) if hasattr(sys.stdin.buffer, "read1") else sys.stdin.buffer.read(MAX_PLAIN)
        length = struct.pack(">I", len(chunk) + 16)
        sock.sendall(length + sealer.encrypt(nonce(number), chunk, length))
        number += 1
        if not chunk:
            break
    sock.shutdown(socket.SHUT_WR)


def receive_all(sock, opener):
    out = sys.stdout.buffer
    number = 0
    while True:
        length = read_exact(sock, 4)
        if length is None:
            fail("the connection was cut: the peer's end was not authenticated")
        n = struct.unpack(">I", length)[0]
        if not 16 <= n <= MAX_PLAIN + 16:
            fail("record length out of range")
        body = read_exact(sock, n)
        if body is None:
            fail("the connection was cut: the peer's end was not authenticated")
        try:
            plain = opener.decrypt(nonce(number), body, length)
        except Exception:
            fail("a record failed to open")
        number += 1
        if not plain:
            if sock.recv(1):
                fail("bytes after the end record")
            out.flush()
            return
        out.write(plain)
        out.flush()


def main():
    secret = os.environ.get("DUPLEX_SECRET", "").strip(" \t\r\n").encode()
    if not secret:
        fail("DUPLEX_SECRET is not set")
    if sys.argv[1] == "connect":
        sock = socket.create_connection((sys.argv[2], int(sys.argv[3])))
        client = True
    else:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sys.stderr.write("listening on 127.0.0.1:%d\n" % listener.getsockname()[1])
        sys.stderr.flush()
        sock, _ = listener.accept()
        client = False
    sealer, opener = handshake(sock, client, secret)
    sender = threading.Thread(target=send_all, args=(sock, sealer), daemon=True)
    sender.start()
    receive_all(sock, opener)
    sender.join(10)
    sock.close()


if __name__ == "__main__":
    main()
