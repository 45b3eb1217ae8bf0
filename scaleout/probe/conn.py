"""One worker process of the load engine: keep-alive connections driven by protocol callbacks.

No coroutine or future per request: an answer's last byte records the sample and writes the next request
on the same connection. One sweeper timer handles timeouts for every connection.

Why the answer path looks like this (measured 2026-12-03, benchmarks/RESULTS.md section 10): on loopback
the client's system time per request is fixed by the kernel (one `send` and one `recv`: uvloop writes at
once, where wrk also pays two `epoll_ctl` per request), so what set the probe below wrk was its Python time
per answer: the httptools parser called back into Python once per header (six for a balancer's answer),
then for the end of the headers and of the message, then record, next request, send: ~15 Python calls.
Now `data_received` first looks the whole read up in `Worker.known`: nginx sends the same bytes answer
after answer (only the Date changes, once a second; X-Upstream-Addr once per replica), so one dict lookup
gives (status, upstream, keep-alive). A read not seen before goes through `whole_answer`, which accepts
only exactly one whole HTTP/1.1 answer framed by one plain Content-Length (no Transfer-Encoding, a status
with a body, nothing before or after it); everything else (split reads, chunked or connection-delimited
bodies, HEAD, 1xx/204/304, HTTP/1.0) goes to httptools from that byte on, as before, and the connection
returns to the fast path after the parser's `on_message_complete`. `whole_answer` is laxer than llhttp
about malformed header lines it does not read (it checks the status line and the framing only); the
answers it takes are what the parser would return for them. `Worker.answered` records the answer and
sends the next request of the closed loop in one call. The remembered answers are bounded
(_KNOWN_ANSWERS of at most _KNOWN_SIZE bytes, forgotten all at once when full): memory stays flat.
Per-answer Python time fell from ~5-7 us to ~2.5-3.5 us on this (busy) machine, CPU per request from
~21-24 us to ~14 us (wrk: ~10 us) under the same load.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
import time
from collections import deque
from typing import Callable
from urllib.parse import urlsplit

from scaleout.probe.samples import (
    ERR_CODE,
    MAX_UPSTREAMS,
    OTHER_UPSTREAMS,
    LoadSpec,
    Samples,
    request_bytes,
)
from scaleout.probe.tls import TlsStats, client_context, negotiated

_UPSTREAM = b"x-upstream-addr"
_FRAMING = (b"content-length", b"transfer-encoding")
_KNOWN_ANSWERS = 256  # distinct whole answers remembered (a Date per second, an address per replica)
_KNOWN_SIZE = 2048  # only answers up to this size are remembered
_AFTER_CODE = (b" ", b"\r")  # the status line goes on with a reason phrase, or ends


def whole_answer(data: bytes) -> tuple[int, bytes, bool] | None:
    """(status, X-Upstream-Addr, keep-alive) of `data` when it is exactly one whole HTTP/1.1 answer framed by
    a single Content-Length (nginx's usual answer); None for anything else (the parser decides then)."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or not data.startswith(b"HTTP/1.1 ") or data[12:13] not in _AFTER_CODE:
        return None
    code = data[9:12]
    h = data[:end].lower()
    i = h.find(b"\r\ncontent-length:")
    if (i < 0 or not code.isdigit() or h.find(b"\r\ntransfer-encoding:") >= 0
            or h.find(b"\r\ncontent-length:", i + 17) >= 0):
        return None
    length = _value(h, i + 17, end)
    status = int(code)
    if not length.isdigit() or end + 4 + int(length) != len(data) or status < 200 or status in (204, 304):
        return None  # a partial answer, more than one, or one without a body whatever its Content-Length
    u = h.find(b"\r\nx-upstream-addr:")
    k = h.find(b"\r\nconnection:")
    return (status, data[u + 18:end].split(b"\r\n", 1)[0].strip() if u >= 0 else b"",
            k < 0 or b"close" not in _value(h, k + 13, end))


def _value(head: bytes, start: int, end: int) -> bytes:
    """The header value that starts at `start` in the header block `head` (which ends at `end`)."""
    j = head.find(b"\r\n", start)
    return head[start:j if j >= 0 else end].strip()


# --- one connection ----------------------------------------------------------------------------

class _Conn(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time. All work happens in callbacks."""

    def __init__(self, w: Worker) -> None:
        self.w = w
        self.transport = None
        self.parser = w.parser_cls(self)
        self.t0 = 0.0  # the request's (intended) start: latency is measured from here
        self.sent = 0.0  # when it really went out: the timeout is measured from here
        self.key = -1
        self.retried = False
        self.busy = False
        self.served = 0  # responses on this connection: only a reused one may be retried
        self.got = False
        self.up = b""
        self.framed = False  # Content-Length or Transfer-Encoding seen: the body does not end with the connection
        self.hdone = False
        self.dead = False
        self.fast = w.fast  # the parser holds nothing of the current answer: a whole answer may skip it

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, t0: float, key: int, retried: bool, now: float = 0.0) -> None:
        self.t0, self.key, self.retried = t0, key, retried
        self.busy, self.got, self.up, self.framed, self.hdone = True, False, b"", False, False
        self.sent = now or self.w.clock()
        self.transport.write(self.w.payloads[key])

    def data_received(self, data: bytes) -> None:
        self.got = True
        if self.fast and self.busy:
            # one whole answer in this read (see the module docstring): nginx sends the same bytes again and
            # again (the Date changes once a second), so most answers are one dict lookup and no parser at all
            w = self.w
            seen = w.known.get(data)
            if seen is None:
                seen = whole_answer(data)
                if seen is not None and len(data) <= _KNOWN_SIZE:
                    if len(w.known) >= _KNOWN_ANSWERS:
                        w.known.clear()
                    w.known[data] = seen
            if seen is not None:
                self.busy = False
                self.served += 1
                self.up = seen[1]
                w.answered(self, seen[0], seen[2])
                return
            self.fast = False  # anything else: the parser decides, from this byte on
        try:
            self.parser.feed_data(data)
        except self.w.parser_error:
            self._fail("protocol")

    def on_header(self, name: bytes, value: bytes) -> None:
        n = len(name)
        if n == 15:
            if name.lower() == _UPSTREAM:
                self.up = value
        elif (n == 14 or n == 17) and name.lower() in _FRAMING:
            self.framed = True

    def on_headers_complete(self) -> None:
        self.hdone = True

    def on_message_complete(self) -> None:
        if not self.busy:
            return
        self.busy = False
        self.served += 1
        w = self.w
        self.fast = w.fast
        status, keep = self.parser.get_status_code(), self.parser.should_keep_alive()
        if w.fresh_parser:
            self.parser = w.parser_cls(self)
        w.answered(self, status, keep)

    def connection_lost(self, exc) -> None:
        if self.dead:
            return
        self.dead = True
        if self.busy:
            if self.hdone and not self.framed:  # a body delimited by the end of the connection
                self.on_message_complete()
            else:
                self._fail("reset", closed=True)

    def _fail(self, cls: str, closed: bool = False) -> None:
        """The request in flight failed: retry once when a reused connection closed before answering
        (as HTTP clients do for idempotent requests), otherwise record the error class."""
        if not self.busy:
            return
        self.busy = False
        self.dead = True
        if not closed and self.transport is not None:
            self.transport.abort()
        w = self.w
        if cls == "reset" and self.served and not self.got and not self.retried:
            w.dispatch(None, self.t0, self.key, True)
            return
        w.record_error(self.t0, cls, self.key)
        w.next_for(None)


class _HeadConn(_Conn):
    """HEAD responses announce a body they never send: complete them at the end of the headers."""

    def on_headers_complete(self) -> None:
        self.hdone = True
        self.on_message_complete()


# --- one worker process ------------------------------------------------------------------------

class Worker:
    def __init__(self, spec: LoadSpec, share: int, slots: int, rate: float | None, key_offset: int,
                 progress: Callable[[int], None] | None, claim: Callable[[], int] | None = None) -> None:
        import httptools

        self.spec = spec
        parts = urlsplit(spec.url)
        # numeric addresses, checked before the load (scaleout.probe.target): no connection looks up the name
        self.addresses = spec.addresses or (parts.hostname or "127.0.0.1",)
        self.next_address = key_offset
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        # over TLS every new connection starts with a handshake (counted in self.s.tls)
        self.tls_args: dict = {}
        if spec.tls is not None:
            self.tls_args = {"ssl": client_context(spec.tls), "server_hostname": spec.tls.server_hostname}
        self.keys = max(0, spec.sticky_keys)
        if self.keys:
            self.payloads = {k: request_bytes(spec, parts.netloc, k) for k in range(self.keys)}
        else:
            self.payloads = {-1: request_bytes(spec, parts.netloc, -1)}
        self.key_offset = key_offset
        self.parser_cls = httptools.HttpResponseParser
        self.parser_error = httptools.HttpParserError
        self.head = spec.method == "HEAD"
        self.fresh_parser = self.head
        self.known: dict[bytes, tuple[int, bytes, bool]] = {}  # whole answers seen -> (status, upstream, keep)
        self.fast = not self.head  # HEAD answers announce a length they do not send: the parser handles them
        self.conn_cls = _HeadConn if self.head else _Conn
        self.clock = time.perf_counter
        self.share = share  # requests for this worker (count mode)
        # count mode with several processes: more requests from the shared pool once `share` is sent, so a
        # process the scheduler starves leaves its work to the others instead of holding up the run's end
        self.claim = claim
        self.slots = slots
        self.rate = rate
        self.progress = progress
        self.s = Samples()
        if spec.tls is not None:
            self.s.tls = TlsStats()
        self.up_index = {b"": 0}
        self.issued = 0
        self.done = 0
        self.active = 0  # requests in flight or connecting
        self.finished_slots = 0
        self.conns: list[_Conn] = []
        self.queue: deque[tuple[float, int]] = deque()  # open loop: due requests waiting for a connection
        self.idle: list[_Conn | None] = []

    # hot path
    def answered(self, conn: _Conn, status: int, keep: bool) -> None:
        """`conn`'s answer is complete: record it, then give the connection its next request (the hot path:
        record_ok and next_for's closed loop written out here, one Python call less each per answer)."""
        now = self.clock()
        idx = self.up_index.get(conn.up)
        if idx is None:
            idx = self._intern(conn.up)
        self.s.answer(now - conn.t0, status, idx, conn.key)
        self.done += 1
        if not keep:  # Connection: close (nginx keepalive_requests, HTTP/1.0): the next request reconnects
            self.active -= 1
            conn.dead = True
            conn.transport.close()
            self.next_for(None)
        elif self.rate is None and (now < self.deadline if self.deadline is not None else self.issued < self.share):
            key = (self.issued + self.key_offset) % self.keys if self.keys else -1
            self.issued += 1  # the answered request leaves `active`, the next one enters it
            conn.send(now, key, False, now)
        else:
            self.active -= 1
            self.next_for(conn, now)

    def record_ok(self, t0: float, status: int, up: bytes, key: int, now: float = 0.0) -> None:
        idx = self.up_index.get(up)
        if idx is None:
            idx = self._intern(up)
        self.s.answer((now or self.clock()) - t0, status, idx, key)
        self.active -= 1
        self.done += 1

    def _intern(self, up: bytes) -> int:
        text = up.decode("latin-1")
        last = text.rsplit(",", 1)[-1].strip()  # after a retry nginx lists every upstream it tried
        if last not in self.s.upstreams and len(self.s.upstreams) > MAX_UPSTREAMS:
            last = OTHER_UPSTREAMS  # a target naming a new address in every answer must not grow memory
        idx = self.s.index(last)
        if len(self.up_index) <= 4 * MAX_UPSTREAMS:  # raw header values: retries list several addresses
            self.up_index[up] = idx
        return idx

    def record_error(self, t0: float, cls: str, key: int) -> None:
        self.s.fail(ERR_CODE[cls])
        self.active -= 1
        self.done += 1

    def next_for(self, conn: _Conn | None, now: float = 0.0) -> None:
        """A connection slot is free (`conn` None: it has no live connection): give it the next request."""
        if self.rate is None:
            now = now or self.clock()
            if (self.deadline is not None and now >= self.deadline) or (
                    self.deadline is None and self.issued >= self.share and not self._claim_more()):
                self._slot_done(conn)
                return
            key = (self.issued + self.key_offset) % self.keys if self.keys else -1
            self.issued += 1
            self.active += 1
            if conn is not None and not conn.dead:
                conn.send(now, key, False, now)
            else:
                self.dispatch(None, now, key, False)
        elif self.queue:
            t0, key = self.queue.popleft()
            self.active += 1
            self.dispatch(conn, t0, key, False)
        else:
            self.idle.append(conn)
            self._check_open_done()

    def _claim_more(self) -> bool:
        more = self.claim() if self.claim is not None else 0
        self.share += more
        return more > 0

    def dispatch(self, conn: _Conn | None, t0: float, key: int, retried: bool) -> None:
        if conn is None or conn.dead:
            self.loop.create_task(self._connect_and_send(t0, key, retried))
        else:
            conn.send(t0, key, retried)

    async def _connect_and_send(self, t0: float, key: int, retried: bool) -> None:
        address = self.addresses[self.next_address % len(self.addresses)]
        self.next_address += 1
        try:
            # AI_NUMERICHOST: the address is used as it is, never looked up (a name here would be resolved again)
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: self.conn_cls(self), address, self.port,
                                            flags=socket.AI_NUMERICHOST, **self.tls_args),
                self.spec.timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:
            # ssl.SSLError is an OSError too: a failed handshake is not a refused connection
            self.record_error(t0, "tls" if isinstance(exc, ssl.SSLError) else "connect", key)
            if self.rate is None and self.done_fut.done():
                return
            # a refused connection fails fast: pace retries so a dead target is not hammered in a tight loop
            await asyncio.sleep(0.001)
            self.next_for(None)
            return
        if self.s.tls is not None:
            negotiated(self.s.tls, conn.transport)
        self.conns.append(conn)
        if len(self.conns) > 4 * self.slots:
            self.conns = [c for c in self.conns if not c.dead]
        conn.send(t0, key, retried)

    def _slot_done(self, conn: _Conn | None) -> None:
        if conn is not None and not conn.dead:
            conn.dead = True
            conn.transport.close()
        self.finished_slots += 1
        if self.finished_slots >= self.slots and not self.done_fut.done():
            self.done_fut.set_result(None)

    # open loop
    def _tick(self) -> None:
        now = self.clock()
        due = int((now - self.start) * self.rate) + 1
        if self.total_open is not None:
            due = min(due, self.total_open)
        while self.issued < due:
            key = (self.issued + self.key_offset) % self.keys if self.keys else -1
            self.queue.append((self.start + self.issued / self.rate, key))
            self.issued += 1
        while self.queue and self.idle:
            t0, key = self.queue.popleft()
            self.active += 1
            self.dispatch(self.idle.pop(), t0, key, False)
        if self.total_open is not None and self.issued >= self.total_open:
            self._check_open_done()
            return
        nxt = self.start + self.issued / self.rate
        self.loop.call_at(self.loop.time() + max(0.0005, nxt - self.clock()), self._tick)

    def _check_open_done(self) -> None:
        if (self.total_open is not None and self.issued >= self.total_open and not self.queue
                and self.active == 0 and not self.done_fut.done()):
            for c in self.conns:
                if not c.dead:
                    c.dead = True
                    c.transport.close()
            self.done_fut.set_result(None)

    def _sweep(self) -> None:
        """Time out stalled requests (one timer for all connections, not one per request); report progress."""
        now = self.clock()
        limit = self.spec.timeout_s
        for c in self.conns:
            if c.busy and now - c.sent > limit:
                c._fail("timeout")
        if self.progress is not None:
            self.progress(self.done)
        if not self.done_fut.done():
            self.loop.call_later(self.sweep_every, self._sweep)

    async def run(self, start: float | None = None) -> Samples:
        self.loop = asyncio.get_running_loop()
        self.done_fut = self.loop.create_future()
        self.sweep_every = min(0.1, self.spec.timeout_s / 4)
        self.start = start if start is not None else self.clock()
        spec = self.spec
        self.deadline = self.start + spec.duration_s if spec.duration_s else None
        if self.rate is None:
            if self.share <= 0 and self.deadline is None:
                self.done_fut.set_result(None)
            for _ in range(self.slots):
                self.loop.call_soon(self.next_for, None)
        else:
            self.total_open = self.share if self.deadline is None else max(1, int(spec.duration_s * self.rate))
            self.idle = [None] * self.slots
            self._tick()
        self._sweep()
        gc.freeze()  # what exists now lives through the run: the collections the answers' garbage triggers skip it
        try:
            await self.done_fut
        finally:
            gc.unfreeze()
        self.s.duration_s = self.clock() - self.start
        if self.progress is not None:
            self.progress(self.done)
        return self.s

