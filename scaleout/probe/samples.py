"""What the load engine sends and records: the load specification, and what the answers were (aggregated)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from scaleout.probe.histogram import Histogram
from scaleout.probe.tls import TlsSpec, TlsStats

# "tls": the TLS handshake of a new connection failed (certificate not verified, no common protocol)
ERROR_CLASSES = ("connect", "timeout", "reset", "protocol", "tls")
ERR_CODE = {name: i + 1 for i, name in enumerate(ERROR_CLASSES)}  # 0 = no error
MAX_UPSTREAMS = 1024  # distinct X-Upstream-Addr addresses kept apart; the rest are counted as one
OTHER_UPSTREAMS = "(other addresses)"


@dataclass(frozen=True)
class LoadSpec:
    """What to send: the target, the request, and the load shape."""

    url: str
    requests: int = 1000
    concurrency: int = 16
    duration_s: float | None = None  # run for this long instead of a count
    rate: float | None = None  # open loop: requests per second (None: closed loop)
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 10.0
    sticky_keys: int = 0  # K distinct keys, round robin over requests
    sticky_via: str = "cookie"  # what carries the key: "cookie", "arg" (query argument) or "header"
    sticky_name: str = "session"  # the cookie, argument or header name
    workers: int = 0  # processes; 0 = automatic
    tls: TlsSpec | None = None  # set for https:// targets
    # the checked addresses of the URL's host (scaleout.probe.target): every connection goes to one of these,
    # the name stays the Host header and the SNI; empty: run_load resolves the host once itself
    addresses: tuple[str, ...] = ()


@dataclass
class Sample:
    latency_s: float
    status: int  # 0 on a transport error
    upstream: str  # last address in X-Upstream-Addr, "" when absent
    error: str = ""  # one of ERROR_CLASSES
    key: int = -1


class KeyAnswer(NamedTuple):
    """A sticky key and one upstream that answered it (what verdict.keys_served reads)."""

    key: int
    upstream: str
    error: str = ""


class Samples:
    """What the load saw, aggregated as it arrives: memory bounded by the replicas, status codes, latency
    buckets and sticky keys, never by the number of requests (cheap to merge and ship between processes).

    `cells`: (upstream index << 16 | status) -> latency Histogram of those answers; upstream 0 = none.
    `errors`: transport errors per class (ERR_CODE). `keys`: sticky key -> indexes of the upstreams that
    answered it. Transport errors carry no latency or upstream: the reports never used them.
    """

    def __init__(self) -> None:
        self.cells: dict[int, Histogram] = {}
        self.errors = [0] * (len(ERROR_CLASSES) + 1)  # [0] unused: ERR_CODE starts at 1
        self.keys: dict[int, set[int]] = {}
        self.upstreams: list[str] = [""]
        self.duration_s = 0.0
        self.workers = 1
        self.tls: TlsStats | None = None  # over TLS only

    # hot path: once per answer
    def answer(self, latency_s: float, status: int, up: int, key: int) -> None:
        cell = self.cells.get((up << 16) | status)
        if cell is None:
            cell = self.cells[(up << 16) | status] = Histogram()
        cell.record(latency_s)
        if key >= 0 and up:
            seen = self.keys.get(key)
            if seen is None:
                self.keys[key] = {up}
            else:
                seen.add(up)

    def fail(self, code: int) -> None:
        """A transport error; `code` from ERR_CODE."""
        self.errors[code] += 1

    def record(self, latency_s: float, status: int, upstream: str, error: str = "", key: int = -1) -> None:
        """One request's outcome by name (tests and tools; the engine calls `answer`/`fail` with indexes)."""
        if error:
            self.fail(ERR_CODE[error])
        else:
            self.answer(latency_s, status, self.index(upstream), key)

    def index(self, upstream: str) -> int:
        if upstream not in self.upstreams:
            self.upstreams.append(upstream)
        return self.upstreams.index(upstream)

    def __len__(self) -> int:
        return sum(len(h) for h in self.cells.values()) + sum(self.errors)

    def answers(self) -> dict[tuple[str, int], Histogram]:
        """(upstream name, status) -> latencies of those answers."""
        return {(self.upstreams[k >> 16], k & 0xFFFF): h for k, h in self.cells.items()}

    def latency(self, upstream: str | None = None) -> Histogram:
        """Latencies of every answer, or of those one upstream gave (transport errors have none)."""
        out = Histogram()
        for (up, _), h in self.answers().items():
            if upstream is None or up == upstream:
                out.merge(h)
        return out

    def error_counts(self) -> dict[str, int]:
        return {c: self.errors[ERR_CODE[c]] for c in ERROR_CLASSES}

    def key_answers(self) -> list[KeyAnswer]:
        """One (key, upstream) pair per sticky key and upstream that answered it."""
        return [KeyAnswer(k, self.upstreams[u]) for k, ups in sorted(self.keys.items()) for u in sorted(ups)]

    def extend(self, other: Samples) -> None:
        """Add `other`, translating its upstream indexes into this value's table."""
        remap = [self.index(u) for u in other.upstreams]
        for k, h in other.cells.items():
            mine = self.cells.setdefault((remap[k >> 16] << 16) | (k & 0xFFFF), Histogram())
            mine.merge(h)
        for code, n in enumerate(other.errors):
            self.errors[code] += n
        for key, ups in other.keys.items():
            self.keys.setdefault(key, set()).update(remap[u] for u in ups)
        if other.tls is not None:
            if self.tls is None:
                self.tls = TlsStats()
            self.tls.merge(other.tls)


def request_bytes(spec: LoadSpec, host: str, key: int) -> bytes:
    path = spec.path
    if key >= 0 and spec.sticky_via == "arg":
        path += ("&" if "?" in path else "?") + f"{spec.sticky_name}=scaleout-key-{key}"
    lines = [f"{spec.method} {path} HTTP/1.1"]
    if not any(k.lower() == "host" for k, _ in spec.headers):  # `probe --host` sends its own
        lines.append(f"Host: {host}")
    lines += ["User-Agent: scaleout-probe", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in spec.headers]
    if spec.method in ("POST", "PUT", "PATCH") and not any(k.lower() == "content-length" for k, _ in spec.headers):
        lines.append("Content-Length: 0")
    if key >= 0 and spec.sticky_via == "cookie":
        lines.append(f"Cookie: {spec.sticky_name}=scaleout-key-{key}")
    elif key >= 0 and spec.sticky_via == "header":
        lines.append(f"{spec.sticky_name}: scaleout-key-{key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

