"""A small HTTP/1.1 server on 127.0.0.1 that misbehaves on purpose, for the probe's engine tests.

It answers like a scaleout balancer (X-Upstream-Addr names one of three fake replicas, round robin) and
can: close connections after N requests (announced or silently), reset every Nth request, answer with
chunked or connection-delimited bodies, answer slowly, and stall every request for a while. Given an
ssl.SSLContext it speaks HTTPS instead (offering h2 and http/1.1 by ALPN, as nginx with HTTP/2 does).
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field

UPSTREAMS = ("10.9.0.1:8000", "10.9.0.2:8000", "10.9.0.3:8000")


@dataclass
class Behaviour:
    close_after: int = 0  # answer N requests on a connection, the last with `Connection: close`
    silent_close_after: int = 0  # answer N requests, then close without answering the next one
    reset_every: int = 0  # abort (RST) instead of answering every Nth request overall
    chunked: bool = False
    close_delimited: bool = False  # no Content-Length: the body ends with the connection
    delay_s: float = 0.0  # every answer waits this long
    stall_after_s: float | None = None  # from the first request on: stall every answer from then...
    stall_for_s: float = 0.0  # ...for this long (answers resume together at the end)


@dataclass
class Counters:
    requests: int = 0
    answered: dict[str, int] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    handshakes: int = 0  # TLS handshakes completed
    handshake_failures: int = 0
    alpn: set[str] = field(default_factory=set)  # protocols the clients chose
    sni: set[str | None] = field(default_factory=set)  # server names the clients sent (None: no SNI)


class MisbehavingServer:
    def __init__(self, behaviour: Behaviour | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.b = behaviour or Behaviour()
        self.tls = tls
        if tls is not None:
            tls.set_alpn_protocols(["h2", "http/1.1"])
        self.c = Counters()
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.c.sni.add(name)
        self.lock = threading.Lock()
        self.first: float | None = None
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> MisbehavingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping = True
        self.sock.close()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        served = 0
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                with self.lock:
                    self.c.handshake_failures += 1
                conn.close()
                return
            with self.lock:
                self.c.handshakes += 1
                self.c.alpn.add(conn.selected_alpn_protocol() or "")
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                with self.lock:
                    if self.first is None:
                        self.first = time.monotonic()
                    self.c.requests += 1
                    n = self.c.requests
                    self.c.methods[method] = self.c.methods.get(method, 0) + 1
                    self.c.paths[path] = self.c.paths.get(path, 0) + 1
                    if len(self.c.headers) < 5:
                        self.c.headers.append(headers)
                b = self.b
                if b.silent_close_after and served >= b.silent_close_after:
                    return  # the client sent a request on a connection we are closing: it must retry
                if b.reset_every and n % b.reset_every == 0:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if b.stall_after_s is not None:
                    start = self.first + b.stall_after_s
                    end = start + b.stall_for_s
                    now = time.monotonic()
                    if start <= now < end:
                        time.sleep(end - now)
                if b.delay_s:
                    time.sleep(b.delay_s)
                served += 1
                with self.lock:
                    k = sum(self.c.answered.values())
                    up = UPSTREAMS[k % len(UPSTREAMS)]
                    self.c.answered[up] = self.c.answered.get(up, 0) + 1
                close = bool(b.close_after and served >= b.close_after) or b.close_delimited
                conn.sendall(self._response(up, close, method))
                if close:
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _response(self, up: str, close: bool, method: str) -> bytes:
        body = b"hello from " + up.encode() + b"\n"
        head = ["HTTP/1.1 200 OK", "Content-Type: text/plain", f"X-Upstream-Addr: {up}"]
        if close:
            head.append("Connection: close")
        if self.b.chunked:
            head.append("Transfer-Encoding: chunked")
            half = len(body) // 2
            payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:])) + b"0\r\n\r\n"
        elif self.b.close_delimited:
            payload = body
        else:
            head.append(f"Content-Length: {len(body)}")
            payload = body
        if method == "HEAD":
            payload = b""
        return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


class Listener:
    """A TCP listener that counts the connections it is offered and closes them (a would-be proxy, or where
    a rebound name would point)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()
