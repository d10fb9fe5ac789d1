"""Read the certificate chain of a server that only speaks what OpenSSL 3 refuses.

SSL 3.0-only, RC4- or 3DES-only and DH-512-only servers fail the handshake in the system
OpenSSL, yet up to TLS 1.2 the server sends its Certificate message in the clear, right
after its ServerHello. This sends one ClientHello (SSL 3.0 to TLS 1.2, the legacy suites
included), reads the handshake messages up to ServerHelloDone, and returns the chain. It
never completes the handshake: nothing is negotiated, so no weak key is ever used.
"""

from __future__ import annotations

import os
import socket
import struct
import time

from cryptography import x509

_HANDSHAKE = 22
_ALERT = 21
_SERVER_HELLO = 2
_CERTIFICATE = 11
_SERVER_HELLO_DONE = 14
_MAX_BYTES = 256 * 1024

# ECDHE/DHE/RSA with AES-GCM, AES-CBC, 3DES, RC4, DES (IANA code points), then the
# renegotiation SCSV: every family a legacy server might insist on.
_SUITES = (
    0xC02F, 0xC030, 0xC02B, 0xC02C, 0xC013, 0xC014, 0xC009, 0xC00A, 0xC027, 0xC028,
    0x009E, 0x009F, 0x0033, 0x0039, 0x0067, 0x006B, 0x0016, 0x0015,
    0x009C, 0x009D, 0x002F, 0x0035, 0x003C, 0x003D, 0x000A, 0xC012, 0x0005, 0x0004,
    0xC011, 0x0009, 0x0013, 0x0012, 0x00FF,
)  # fmt: skip


class NoCertificate(Exception):
    """The server answered without a readable Certificate message (alert, TLS 1.3 ...)."""


def read_chain(
    address: str, port: int, server_name: str | None, timeout: float
) -> list[x509.Certificate]:
    """The chain the server sends, leaf first. Raises OSError (network) or NoCertificate."""
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.sendall(client_hello(server_name))
        return _read_certificates(sock, deadline)


def client_hello(server_name: str | None) -> bytes:
    suites = b"".join(struct.pack(">H", suite) for suite in _SUITES)
    extensions = b""
    if server_name:
        name = server_name.encode("idna")
        entry = b"\x00" + struct.pack(">H", len(name)) + name
        extensions += _extension(0, struct.pack(">H", len(entry)) + entry)
    groups = struct.pack(">HHH", 23, 24, 25)  # P-256, P-384, P-521
    extensions += _extension(10, struct.pack(">H", len(groups)) + groups)
    extensions += _extension(11, b"\x01\x00")  # uncompressed points
    algorithms = bytes.fromhex("0401050106010201040305030203")  # RSA/ECDSA with SHA-2, SHA-1
    extensions += _extension(13, struct.pack(">H", len(algorithms)) + algorithms)
    body = (
        b"\x03\x03"  # offer up to TLS 1.2; an SSL 3.0 server answers 3.0
        + os.urandom(32)
        + b"\x00"  # no session id
        + struct.pack(">H", len(suites))
        + suites
        + b"\x01\x00"  # null compression only
        + struct.pack(">H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x00" + struct.pack(">H", len(handshake)) + handshake


def _extension(kind: int, data: bytes) -> bytes:
    return struct.pack(">HH", kind, len(data)) + data


def _read_certificates(sock: socket.socket, deadline: float) -> list[x509.Certificate]:
    messages = b""
    received = 0
    while True:
        header = _read(sock, 5, deadline)
        kind, length = header[0], struct.unpack(">H", header[3:5])[0]
        received += 5 + length
        if received > _MAX_BYTES:
            raise NoCertificate("more than 256 KiB before the certificate")
        payload = _read(sock, length, deadline)
        if kind == _ALERT:
            raise NoCertificate(f"the server sent alert {payload[-1] if payload else '?'}")
        if kind != _HANDSHAKE:
            raise NoCertificate(f"unexpected record type {kind} before the certificate")
        messages += payload
        while len(messages) >= 4:
            size = struct.unpack(">I", b"\x00" + messages[1:4])[0]
            if len(messages) < 4 + size:
                break
            message_type, body = messages[0], messages[4 : 4 + size]
            messages = messages[4 + size :]
            if message_type == _SERVER_HELLO and body[:2] == b"\x03\x04":
                raise NoCertificate("the server chose TLS 1.3 (the certificate is encrypted)")
            if message_type == _CERTIFICATE:
                return _parse_certificates(body)
            if message_type == _SERVER_HELLO_DONE:
                raise NoCertificate("the server sent no certificate (anonymous suite)")


def _parse_certificates(body: bytes) -> list[x509.Certificate]:
    total = struct.unpack(">I", b"\x00" + body[:3])[0]
    data = body[3 : 3 + total]
    chain = []
    while len(data) >= 3:
        size = struct.unpack(">I", b"\x00" + data[:3])[0]
        try:
            chain.append(x509.load_der_x509_certificate(data[3 : 3 + size]))
        except ValueError as error:
            raise NoCertificate(f"an unreadable certificate: {error}") from None
        data = data[3 + size :]
    if not chain:
        raise NoCertificate("an empty Certificate message")
    return chain


def _read(sock: socket.socket, count: int, deadline: float) -> bytes:
    data = b""
    while len(data) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no certificate in time")
        sock.settimeout(left)
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise NoCertificate("the server closed the connection before its certificate")
        data += chunk
    return data
