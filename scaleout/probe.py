"""Load through the balancer and attribution of every response to a replica -> a `ProbeResult`.

Prints nothing. The load engine is a protocol-level asyncio HTTP/1.1 client (uvloop when installed,
the httptools parser) over keep-alive connections: a plain httpx AsyncClient is far too slow to load
nginx without becoming the bottleneck itself (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from scaleout.errors import ProbeTargetError

ERROR_CLASSES = ("connect", "timeout", "reset", "protocol")


@dataclass(frozen=True)
class ProbeOptions:
    url: str
    requests: int = 1000
    concurrency: int = 16
    duration_s: float | None = None
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 10.0
    sticky_keys: int = 0  # send K distinct session cookies, round robin over requests
    sticky_cookie: str = "session"


@dataclass
class Sample:
    latency_s: float
    status: int  # 0 on a transport error
    upstream: str  # last address in X-Upstream-Addr, "" when absent
    error: str = ""  # one of ERROR_CLASSES
    key: int = -1


@dataclass
class BackendStats:
    name: str
    address: str
    count: int
    share: float
    latency_ms: dict[str, float]
    status_codes: dict[str, int]
    keys: int = 0


@dataclass
class ProbeResult:
    url: str
    requests: int
    ok: int
    failed: int
    rps: float
    duration_s: float
    backends: list[BackendStats]
    status_codes: dict[str, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]
    strategy: str = "round_robin"
    verdict: str = "pass"
    reasons: list[str] = field(default_factory=list)
    spread: dict[str, float | None] = field(default_factory=dict)
    sticky: dict[str, int] | None = None
    cache_checks: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# --- the load engine ---------------------------------------------------------------------------

class _Conn(asyncio.Protocol):
    """One keep-alive connection. `request()` writes a request and waits for its response."""

    def __init__(self) -> None:
        import httptools

        self._parser_cls = httptools.HttpResponseParser
        self._parser_error = httptools.HttpParserError
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.parser = self._parser_cls(self)
        self.upstream = b""
        self.got_bytes = False
        self.complete = False

    # protocol callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except self._parser_error as exc:
            self._finish(exc)

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            try:  # a body delimited by the connection's end
                self.parser.feed_eof()
            except Exception:
                pass
            if self.waiter is not None and not self.waiter.done():
                self._finish(ConnectionResetError("connection closed"))

    # parser callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 15 and name.lower() == b"x-upstream-addr":
            self.upstream = value

    def on_message_complete(self) -> None:
        self.complete = True
        self._finish(None)

    def _finish(self, exc) -> None:
        w = self.waiter
        if w is not None and not w.done():
            if exc is None:
                w.set_result(self.parser.get_status_code())
            else:
                w.set_exception(exc)

    async def request(self, data: bytes, timeout: float) -> tuple[int, bytes, bool]:
        self._reset()
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        status = await asyncio.wait_for(self.waiter, timeout)
        keep = self.parser.should_keep_alive()
        return status, self.upstream, keep


def _request_bytes(opts: ProbeOptions, host: str, key: int) -> bytes:
    lines = [f"{opts.method} {opts.path} HTTP/1.1", f"Host: {host}", "User-Agent: scaleout-probe", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in opts.headers]
    if key >= 0:
        lines.append(f"Cookie: {opts.sticky_cookie}=scaleout-key-{key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _classify(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, (ConnectionRefusedError, OSError)) and not isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "connect" if not isinstance(exc, ConnectionResetError) else "reset"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    return "protocol"


async def _run_load(opts: ProbeOptions) -> tuple[list[Sample], float]:
    parts = urlsplit(opts.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    host_header = parts.netloc
    loop = asyncio.get_running_loop()
    keys = max(0, opts.sticky_keys)
    if keys:
        payloads = [_request_bytes(opts, host_header, k) for k in range(keys)]
    else:
        payloads = [_request_bytes(opts, host_header, -1)]
    samples: list[Sample] = []
    counter = 0
    total = opts.requests
    start = time.perf_counter()
    deadline = start + opts.duration_s if opts.duration_s else None

    def next_index() -> int | None:
        nonlocal counter
        if deadline is not None:
            if time.perf_counter() >= deadline:
                return None
        elif counter >= total:
            return None
        counter += 1
        return counter - 1

    async def connect() -> _Conn:
        _, proto = await asyncio.wait_for(loop.create_connection(_Conn, host, port), opts.timeout_s)
        return proto

    async def worker() -> None:
        conn: _Conn | None = None
        while True:
            i = next_index()
            if i is None:
                break
            key = i % keys if keys else -1
            data = payloads[key] if keys else payloads[0]
            t0 = time.perf_counter()
            for attempt in (0, 1):
                reused = conn is not None
                try:
                    if conn is None or conn.closed:
                        reused = False
                        conn = await connect()
                    status, upstream, keep = await conn.request(data, opts.timeout_s)
                    up = upstream.decode("latin-1")
                    if "," in up:
                        up = up.rsplit(",", 1)[1]
                    samples.append(Sample(time.perf_counter() - t0, status, up.strip(), "", key))
                    if not keep:
                        conn.transport.close()
                        conn = None
                    break
                except BaseException as exc:  # noqa: BLE001 - every transport failure is a data point
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    got_bytes = conn.got_bytes if conn is not None else False
                    if conn is not None and conn.transport is not None:
                        conn.transport.abort()
                    conn = None
                    # A keep-alive connection the server closed before answering: retry once on a
                    # new connection, as HTTP clients do for idempotent requests.
                    if attempt == 0 and reused and not got_bytes and isinstance(exc, (ConnectionResetError, BrokenPipeError)):
                        continue
                    samples.append(Sample(time.perf_counter() - t0, 0, "", _classify(exc), key))
                    break
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    n = max(1, opts.concurrency if deadline else min(opts.concurrency, max(total, 1)))
    await asyncio.gather(*(worker() for _ in range(n)))
    return samples, time.perf_counter() - start


def run_load(opts: ProbeOptions) -> tuple[list[Sample], float]:
    """Send the load described by `opts`; returns every sample and the wall time."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - platforms without uvloop
        runner = asyncio.run
    return runner(_run_load(opts))


# --- statistics and verdict --------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def latency_summary(latencies_s: list[float]) -> dict[str, float]:
    v = sorted(latencies_s)
    ms = lambda x: round(x * 1000.0, 3)  # noqa: E731
    return {
        "p50": ms(percentile(v, 50)),
        "p90": ms(percentile(v, 90)),
        "p99": ms(percentile(v, 99)),
        "max": ms(v[-1] if v else 0.0),
        "mean": ms(sum(v) / len(v) if v else 0.0),
    }


def chi_square_p(counts: list[int], expected: list[float]) -> float | None:
    """p-value of Pearson's chi-square goodness of fit (None with fewer than two categories)."""
    if len(counts) < 2 or any(e <= 0 for e in expected):
        return None
    stat = sum((c - e) ** 2 / e for c, e in zip(counts, expected))
    return _chi2_sf(stat, len(counts) - 1)


def _chi2_sf(x: float, k: int) -> float:
    """Survival function of the chi-square distribution (regularized upper incomplete gamma)."""
    a, x2 = k / 2.0, x / 2.0
    if x2 <= 0:
        return 1.0
    if x2 < a + 1:  # series for the lower part
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1
            term *= x2 / n
            total += term
            if abs(term) < abs(total) * 1e-12:
                break
        lower = total * math.exp(-x2 + a * math.log(x2) - math.lgamma(a))
        return max(0.0, min(1.0, 1.0 - lower))
    # continued fraction for the upper part (Lentz)
    b = x2 + 1 - a
    c = 1e300
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-12:
            break
    return max(0.0, min(1.0, h * math.exp(-x2 + a * math.log(x2) - math.lgamma(a))))


def summarize(samples: list[Sample], duration_s: float, url: str, names: dict[str, str]) -> ProbeResult:
    """Aggregate samples; `names` maps `ip:port` to replica names (unknown addresses keep the address)."""
    per: dict[str, list[Sample]] = {}
    codes: dict[str, int] = {}
    errors = {c: 0 for c in ERROR_CLASSES}
    ok = 0
    for s in samples:
        if s.error:
            errors[s.error] += 1
            continue
        codes[str(s.status)] = codes.get(str(s.status), 0) + 1
        if 200 <= s.status < 400:
            ok += 1
        if s.upstream:
            per.setdefault(s.upstream, []).append(s)
    attributed = sum(len(v) for v in per.values())
    backends = []
    for addr, ss in per.items():
        sc: dict[str, int] = {}
        for s in ss:
            sc[str(s.status)] = sc.get(str(s.status), 0) + 1
        backends.append(BackendStats(
            name=names.get(addr, addr),
            address=addr,
            count=len(ss),
            share=round(len(ss) / attributed, 4) if attributed else 0.0,
            latency_ms=latency_summary([s.latency_s for s in ss]),
            status_codes=dict(sorted(sc.items())),
            keys=len({s.key for s in ss if s.key >= 0}),
        ))
    backends.sort(key=lambda b: (_index(b.name), b.name))
    total = len(samples)
    return ProbeResult(
        url=url,
        requests=total,
        ok=ok,
        failed=total - ok,
        rps=round(total / duration_s, 1) if duration_s > 0 else 0.0,
        duration_s=round(duration_s, 3),
        backends=backends,
        status_codes=dict(sorted(codes.items())),
        errors=errors,
        latency_ms=latency_summary([s.latency_s for s in samples if not s.error]),
    )


def _index(name: str) -> int:
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 10**6


def judge(
    result: ProbeResult,
    samples: list[Sample],
    *,
    strategy: str,
    expected: list[str] | None,
    weights: dict[str, int] | None = None,
    backups: tuple[str, ...] = (),
    tolerance: float = 0.3,
    max_failed: int = 0,
) -> ProbeResult:
    """Set the verdict: no failed requests, every expected replica served, and the spread the
    strategy promises (even, weighted, or sticky per key) within `tolerance` (relative)."""
    reasons: list[str] = []
    result.strategy = strategy
    if result.requests == 0:
        reasons.append("no request was sent")
    if result.failed > max_failed:
        errs = ", ".join(f"{k} {v}" for k, v in result.errors.items() if v)
        bad = ", ".join(f"HTTP {k}: {v}" for k, v in result.status_codes.items() if not 200 <= int(k) < 400)
        reasons.append(f"{result.failed} of {result.requests} requests failed ({'; '.join(x for x in (errs, bad) if x)})")
    counts = {b.name: b.count for b in result.backends}
    attributed = sum(counts.values())
    if result.ok and not attributed:
        reasons.append("no response carried X-Upstream-Addr: is the target a scaleout balancer?")
    pool = expected or sorted(counts, key=_index)
    primaries = [n for n in pool if n not in backups]
    if primaries:
        for name in backups:
            if counts.get(name):
                reasons.append(f"backup replica {name} served {counts[name]} requests while primaries were healthy")
    else:  # no primary is healthy: nginx sends everything to the backups, spread like primaries
        primaries = [n for n in pool if n in backups]
    sticky = strategy in ("hash", "ip_hash")
    if not sticky:
        for name in primaries:
            if not counts.get(name):
                reasons.append(f"replica {name} served no request")
        w = {n: (weights or {}).get(n, 1) for n in primaries}
        wsum = sum(w.values()) or 1
        exp_counts = [attributed * w[n] / wsum for n in primaries]
        got = [counts.get(n, 0) for n in primaries]
        worst = 0.0
        for n, e, g in zip(primaries, exp_counts, got):
            if e > 0:
                dev = abs(g - e) / e
                worst = max(worst, dev)
                if dev > tolerance and counts.get(n):
                    reasons.append(
                        f"replica {n} got {g / attributed:.1%} of requests, expected {e / attributed:.1%} ± {tolerance:.0%} (relative)"
                    )
        result.spread = {"max_relative_deviation": round(worst, 4), "chi_square_p": chi_square_p(got, exp_counts), "tolerance": tolerance}
    else:
        key_to: dict[int, set[str]] = {}
        for s in samples:
            if s.key >= 0 and s.upstream and not s.error:
                key_to.setdefault(s.key, set()).add(result_name(result, s.upstream))
        split = sorted(k for k, v in key_to.items() if len(v) > 1)
        used = {n for v in key_to.values() for n in v}
        if not key_to and strategy == "hash":
            reasons.append("strategy hash: run the probe with --sticky-keys K to check stickiness")
        if split:
            reasons.append(f"{len(split)} key(s) were served by more than one replica (e.g. key {split[0]})")
        if strategy == "ip_hash" and not key_to:
            # one client address: everything must land on one replica
            if len([n for n, c in counts.items() if c]) > 1:
                reasons.append("ip_hash: requests from one client address reached more than one replica")
        elif key_to and len(primaries) > 1 and len(used) < 2:
            reasons.append(f"{len(key_to)} distinct keys all landed on one replica: no spread")
        result.sticky = {"keys": len(key_to), "keys_split": len(split), "replicas_used": len(used)}
        result.spread = {"max_relative_deviation": None, "chi_square_p": None, "tolerance": tolerance}
    result.reasons = reasons
    result.verdict = "fail" if reasons else "pass"
    return result


def result_name(result: ProbeResult, address: str) -> str:
    for b in result.backends:
        if b.address == address:
            return b.name
    return address


def check_target(url: str, allow_remote: bool, own_addresses: set[str] = frozenset()) -> None:
    """Refuse targets other than loopback or this project's own containers unless allowed."""
    import ipaddress
    import socket

    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ProbeTargetError(f"--url: {url!r} must be an http:// URL with a host")
    if allow_remote:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ProbeTargetError(f"--url: cannot resolve {parts.hostname}: {exc.strerror}") from None
    for info in infos:
        ip = info[4][0]
        if not (ipaddress.ip_address(ip).is_loopback or ip in own_addresses):
            raise ProbeTargetError(
                f"--url: {parts.hostname} ({ip}) is not this machine: the probe only loads loopback or this project's containers",
                hint="pass --allow-remote if you really mean to send load to another host",
            )


def run_probe(opts: ProbeOptions, names: dict[str, str]) -> tuple[ProbeResult, list[Sample]]:
    """Send the load and summarize it (the verdict is set by `judge`)."""
    samples, duration = run_load(opts)
    return summarize(samples, duration, opts.url, names), samples
