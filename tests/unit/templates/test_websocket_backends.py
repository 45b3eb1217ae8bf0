"""The sample backends' WebSocket endpoint (/ws), spoken to frame by frame: the RFC 6455 handshake,
masking, text, binary, fragmented and long messages, ping/pong, the closing handshake, protocol errors,
and the 1001 ("going away") a stopping replica sends. The Python backend runs as a local process; the
same tests run the Node one in the stand-in image in tests/e2e/test_websocket_backends.py."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import uuid

import pytest

from tests.helpers import ROOT, free_port, wait_for

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class Backend:
    def __init__(self, port: int, hostname: str, stop, alive):
        self.port, self.hostname, self.stop, self.alive = port, hostname, stop, alive


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(100).startswith(b"HTTP/1.1 200")
    return False


@contextlib.contextmanager
def python_backend():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "templates/init/python/backend/app.py")],
                            env={**os.environ, "PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(port), timeout=15, what="the python backend")
        yield Backend(port, socket.gethostname(), lambda: proc.send_signal(signal.SIGTERM), lambda: proc.poll() is None)
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def backend():
    with python_backend() as b:
        yield b


class Client:
    """A minimal, strict WebSocket client: every frame is written and read by hand."""

    def __init__(self, port: int, headers: dict[str, str] | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.key = base64.b64encode(os.urandom(16)).decode()
        head = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": self.key, "Sec-WebSocket-Version": "13", **(headers or {})}
        request = "GET /ws HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
        self.sock.sendall(request.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, f"connection closed during the handshake: {self.buf!r}"
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}

    def expected_accept(self) -> str:
        return base64.b64encode(hashlib.sha1(self.key.encode() + GUID).digest()).decode()

    def send(self, opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True, rsv: int = 0) -> None:
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
        bit = 0x80 if mask else 0
        if n < 126:
            head += bytes([bit | n])
        elif n < 65536:
            head += bytes([bit | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([bit | 127]) + n.to_bytes(8, "big")
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed with {len(self.buf)} of {n} bytes read")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame; server frames must be final and unmasked here."""
        b0, b1 = self._read(2)
        assert b0 & 0x80 and not b0 & 0x70, f"unexpected first byte {b0:#x}"
        assert not b1 & 0x80, "a server must not mask its frames"
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._read(2), "big")
        elif n == 127:
            n = int.from_bytes(self._read(8), "big")
        return b0 & 0x0F, self._read(n)

    def closed_by_peer(self) -> bool:
        """True once the server has closed the TCP connection (EOF)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def close_status(payload: bytes) -> int:
    return int.from_bytes(payload[:2], "big")


@pytest.fixture
def connect(backend):
    made: list[Client] = []

    def factory(**kw) -> Client:
        c = Client(backend.port, **kw)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


def opened(connect, backend) -> Client:
    c = connect()
    assert c.status == 101, c.headers
    assert c.headers["upgrade"].lower() == "websocket" and c.headers["connection"].lower() == "upgrade"
    assert c.headers["sec-websocket-accept"] == c.expected_accept()
    assert c.recv() == (TEXT, f"hello from {backend.hostname}".encode())
    return c


def test_handshake_then_hello_then_echo(backend, connect):
    c = opened(connect, backend)
    for opcode, payload in [
        (TEXT, "héllo wörld ✓".encode()),
        (TEXT, b""),
        (BINARY, bytes(range(256))),
        (TEXT, b"x" * 300),  # 16-bit length
        (BINARY, os.urandom(70_000)),  # 64-bit length
    ]:
        c.send(opcode, payload)
        assert c.recv() == (opcode, payload), (opcode, len(payload))


def test_fragments_are_joined_and_pings_answered_in_between(backend, connect):
    c = opened(connect, backend)
    c.send(TEXT, b"frag", fin=False)
    c.send(PING, b"are you there")
    c.send(CONTINUATION, b"ment", fin=False)
    c.send(CONTINUATION, " é".encode())
    assert c.recv() == (PONG, b"are you there")
    assert c.recv() == (TEXT, "fragment é".encode())
    c.send(PONG, b"unsolicited")  # ignored
    c.send(TEXT, b"still here")
    assert c.recv() == (TEXT, b"still here")


def test_the_closing_handshake_echoes_the_status(backend, connect):
    c = opened(connect, backend)
    c.send(CLOSE, (1000).to_bytes(2, "big") + b"bye")
    opcode, payload = c.recv()
    assert opcode == CLOSE and close_status(payload) == 1000
    wait_for(c.closed_by_peer, timeout=5, what="the server to close the TCP connection")


@pytest.mark.parametrize("frame, status", [
    ({"opcode": TEXT, "payload": b"not masked", "mask": False}, 1002),
    ({"opcode": TEXT, "payload": b"\xff\xfe not UTF-8"}, 1007),
    ({"opcode": CONTINUATION, "payload": b"no first fragment"}, 1002),
    ({"opcode": TEXT, "payload": b"an extension bit", "rsv": 4}, 1002),
    ({"opcode": 0x3, "payload": b"a reserved opcode"}, 1002),
    ({"opcode": PING, "payload": b"p" * 126}, 1002),
    ({"opcode": BINARY, "payload": b"\0" * ((1 << 20) + 1)}, 1009),
], ids=["unmasked", "bad-utf8", "stray-continuation", "rsv-bit", "reserved-opcode", "long-ping", "too-big"])
def test_protocol_errors_close_with_the_matching_status(backend, connect, frame, status):
    c = opened(connect, backend)
    with contextlib.suppress(OSError):  # the server may hang up before reading all of a large frame
        c.send(**frame)
    opcode, payload = c.recv()
    assert (opcode, close_status(payload)) == (CLOSE, status)


def test_a_plain_get_is_told_to_upgrade(backend):
    with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode().lower()
    assert head.startswith("http/1.1 426") and "upgrade: websocket" in head


def test_a_bad_key_gets_no_upgrade(backend, connect):
    c = connect(headers={"Sec-WebSocket-Key": "too-short"})
    assert c.status in (400, 426) and "sec-websocket-accept" not in c.headers


def test_a_stopping_replica_says_going_away(backend, connect):
    c = opened(connect, backend)
    c.send(TEXT, b"before")
    assert c.recv() == (TEXT, b"before")
    backend.stop()
    opcode, payload = c.recv()
    assert (opcode, close_status(payload)) == (CLOSE, 1001)
    c.send(CLOSE, payload[:2])
    wait_for(c.closed_by_peer, timeout=5, what="the server to close the TCP connection")
    # well inside Docker's 10 s stop timeout: nothing is left hanging on the open socket
    wait_for(lambda: not backend.alive(), timeout=5, what="the backend to exit")
