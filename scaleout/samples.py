"""What the load engine sends and records: the load specification and the samples, column by column."""

from __future__ import annotations

import json
from array import array
from dataclasses import asdict, dataclass
from typing import Iterator

# "tls": the TLS handshake of a new connection failed (certificate not verified, no common protocol)
ERROR_CLASSES = ("connect", "timeout", "reset", "protocol", "tls")
ERR_CODE = {name: i + 1 for i, name in enumerate(ERROR_CLASSES)}  # 0 = no error


@dataclass(frozen=True)
class TlsSpec:
    """How an https:// target is spoken to. Settings, not an ssl.SSLContext: every worker process builds
    its own context from them (scaleout.loadconn.client_context)."""

    server_hostname: str  # sent as SNI and matched against the certificate's names
    cafile: str | None = None  # the authorities to trust; None: the system's store
    verify: bool = True  # False only when the user asked (--insecure)


@dataclass
class TlsStats:
    """What the TLS of one run looked like: new TLS connections, and what the first one negotiated."""

    handshakes: int = 0
    version: str = ""
    cipher: str = ""
    alpn: str = ""

    def merge(self, other: TlsStats) -> None:
        self.handshakes += other.handshakes
        self.version = self.version or other.version
        self.cipher = self.cipher or other.cipher
        self.alpn = self.alpn or other.alpn


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


@dataclass
class Sample:
    latency_s: float
    status: int  # 0 on a transport error
    upstream: str  # last address in X-Upstream-Addr, "" when absent
    error: str = ""  # one of ERROR_CLASSES
    key: int = -1


class Samples:
    """Every request's outcome, column by column (cheap to collect, merge and ship between processes)."""

    def __init__(self) -> None:
        self.latency = array("d")  # seconds, from the (intended) send time
        self.status = array("H")  # 0 on a transport error
        self.upstream = array("H")  # index into `upstreams`; 0 = none
        self.error = array("B")  # 0 or 1 + index into ERROR_CLASSES
        self.key = array("i")  # sticky key, or empty when no keys were sent
        self.upstreams: list[str] = [""]
        self.duration_s = 0.0
        self.workers = 1
        self.tls: TlsStats | None = None  # over TLS only

    def __len__(self) -> int:
        return len(self.latency)

    def __iter__(self) -> Iterator[Sample]:
        ups, keys = self.upstreams, self.key
        for i in range(len(self.latency)):
            e = self.error[i]
            yield Sample(self.latency[i], self.status[i], ups[self.upstream[i]],
                         ERROR_CLASSES[e - 1] if e else "", keys[i] if keys else -1)

    def extend(self, other: Samples) -> None:
        """Append `other`, translating its upstream indexes into this value's table."""
        index = {u: i for i, u in enumerate(self.upstreams)}
        remap = array("H")
        for u in other.upstreams:
            if u not in index:
                index[u] = len(self.upstreams)
                self.upstreams.append(u)
            remap.append(index[u])
        self.latency.extend(other.latency)
        self.status.extend(other.status)
        self.upstream.extend(array("H", (remap[i] for i in other.upstream)))
        self.error.extend(other.error)
        self.key.extend(other.key)
        if other.tls is not None:
            if self.tls is None:
                self.tls = TlsStats()
            self.tls.merge(other.tls)

    def to_bytes(self) -> list[bytes]:
        return [self.latency.tobytes(), self.status.tobytes(), self.upstream.tobytes(), self.error.tobytes(),
                self.key.tobytes(), "\n".join(self.upstreams).encode(), str(self.duration_s).encode(),
                _tls_bytes(self.tls)]

    @classmethod
    def from_bytes(cls, parts: list[bytes]) -> Samples:
        s = cls()
        # parts also carries the upstream names and the duration after the five arrays
        for arr, raw in zip((s.latency, s.status, s.upstream, s.error, s.key), parts, strict=False):
            arr.frombytes(raw)
        s.upstreams = parts[5].decode().split("\n")
        s.duration_s = float(parts[6])
        if len(parts) > 7 and parts[7]:
            s.tls = TlsStats(**json.loads(parts[7]))
        return s


def _tls_bytes(tls: TlsStats | None) -> bytes:
    return json.dumps(asdict(tls)).encode() if tls is not None else b""


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

