"""One line of the balancer's request record (log_format `scaleout` in templates/nginx/nginx.conf.j2):

    scaleout-request t=<msec> st=<status> m=<method> rt=<request_time> urt=<upstream_response_time>
    b=<body_bytes_sent> upstream=<upstream_addr> p=<uri>

`upstream` and `urt` list every try (`a:80, b:80`) when nginx retried on another replica; the last one
answered. `p` is the path without its query string, last on the line because it may hold spaces."""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "scaleout-request "
_LINE = re.compile(
    r"scaleout-request t=(?P<t>\d+(?:\.\d+)?) st=(?P<st>\d{3}) m=(?P<m>\S+) rt=(?P<rt>\S+) "
    r"urt=(?P<urt>.*?) b=(?P<b>\d+) upstream=(?P<up>.*?) p=(?P<p>.*)$"
)


@dataclass(frozen=True)
class Request:
    time: float  # seconds since the epoch, as nginx logged it (ms resolution)
    status: int
    method: str
    request_time: float  # seconds, whole request at the balancer
    upstream_time: float | None  # seconds of the answering replica; None when no replica answered
    bytes: int
    upstream: str  # ip:port of the replica that answered ("" when the balancer answered itself)
    path: str


def _last(field: str) -> str:
    """The answering try of a `a, b : c` list (`:` separates tries across upstream groups)."""
    return re.split(r"\s*[,:]\s+", field.strip())[-1] if field.strip() else ""


def _seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "-": no upstream


def parse(line: str) -> Request | None:
    """The request of one record line, or None for any other line (nginx's own messages, lb.sh's)."""
    i = line.find(PREFIX)
    if i < 0:
        return None
    m = _LINE.match(line.rstrip("\r\n")[i:])
    if not m:
        return None
    up = _last(m["up"])
    return Request(
        time=float(m["t"]),
        status=int(m["st"]),
        method=m["m"],
        request_time=_seconds(m["rt"]) or 0.0,
        upstream_time=_seconds(_last(m["urt"])),
        bytes=int(m["b"]),
        upstream="" if up == "-" else up,
        path=m["p"],
    )


def line_of(r: Request, replica: str, stamp: str = "") -> str:
    """One request as `scaleout logs --requests` prints it: who served it first."""
    urt = "-" if r.upstream_time is None else f"{r.upstream_time * 1000:.1f}ms"
    return (f"{stamp + ' ' if stamp else ''}{replica:<12} {r.status} {r.method} {r.path} "
            f"{r.request_time * 1000:.1f}ms upstream={urt} {r.bytes}B")


@dataclass(frozen=True)
class Cursor:
    """How far a container's output has been read: the engine's timestamp of the last line read
    (RFC 3339, nanoseconds, UTC, as `docker logs --timestamps` prints it) and how many of the lines read
    carried that very timestamp. The engine's `since` includes its bound (and its `until` too), so reads
    that meet at a boundary overlap; the cursor drops what was read already, and nothing else."""

    stamp: str = ""
    same: int = 0

    @property
    def second(self) -> int:
        """The whole second of `stamp` (epoch seconds), where the next read starts; 0 before any line."""
        if not self.stamp:
            return 0
        import calendar
        import time

        return calendar.timegm(time.strptime(self.stamp[:19], "%Y-%m-%dT%H:%M:%S"))


def _key(stamp: str) -> tuple[str, str]:
    """Orders engine timestamps (a fraction of any length, trailing zeros dropped or not)."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    return whole, frac.ljust(9, "0")


def fresh(lines: list[str], cursor: Cursor) -> tuple[list[str], Cursor]:
    """The lines (`<stamp> <text>`, in the engine's order) that come after `cursor`, without their stamp,
    and the cursor after them."""
    out = []
    at = _key(cursor.stamp) if cursor.stamp else None
    stamp, skip, same = cursor.stamp, cursor.same, cursor.same
    for line in lines:
        s, _, text = line.partition(" ")
        k = _key(s)
        if at is not None and (k < at or (k == at and skip > 0)):
            skip -= k == at
            continue
        out.append(text)
        if at == k:
            same += 1
        else:
            at, stamp, same, skip = k, s, 1, 0
    return out, Cursor(stamp, same)
