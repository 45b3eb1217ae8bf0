"""Requests of the last few seconds per replica: requests/s, status classes, upstream p50/p99, last seen.
Pure: requests are added with their own time; a frame is computed for a given `now`."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from scaleout.top.records import Request

WINDOW_S = 10.0  # rates and percentiles over the last WINDOW_S seconds
RECENT = 8  # last requests shown


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`, None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


@dataclass
class ReplicaTraffic:
    requests: int = 0  # in the window
    rate: float = 0.0  # requests/s over the window
    classes: dict[str, int] = field(default_factory=lambda: {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0})
    p50_ms: float | None = None
    p99_ms: float | None = None
    last_seen: float | None = None  # epoch seconds of its last request (all time, not only the window)
    total: int = 0  # since top started


@dataclass
class Window:
    span_s: float = WINDOW_S
    _items: deque = field(default_factory=deque)  # (Request, replica name)
    _last: dict[str, float] = field(default_factory=dict)
    _total: dict[str, int] = field(default_factory=dict)
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT))

    def add(self, requests: Iterable[Request], name_of) -> None:
        """Add requests (in time order); `name_of(ip:port)` names the replica of an address."""
        for r in requests:
            name = name_of(r.upstream) if r.upstream else "lb"
            self._items.append((r, name))
            self.recent.append((r, name))
            self._last[name] = max(self._last.get(name, 0.0), r.time)
            self._total[name] = self._total.get(name, 0) + 1

    def traffic(self, now: float) -> dict[str, ReplicaTraffic]:
        """Per replica name (and "lb" for requests the balancer answered itself) over the window ending at `now`."""
        while self._items and self._items[0][0].time < now - self.span_s:
            self._items.popleft()
        out: dict[str, ReplicaTraffic] = {}
        times: dict[str, list[float]] = {}
        for r, name in self._items:
            t = out.setdefault(name, ReplicaTraffic())
            t.requests += 1
            cls = f"{r.status // 100}xx"
            if cls in t.classes:
                t.classes[cls] += 1
            if r.upstream_time is not None:
                times.setdefault(name, []).append(r.upstream_time * 1000)
        for name, last in self._last.items():
            t = out.setdefault(name, ReplicaTraffic())
            t.last_seen = last
            t.total = self._total[name]
            t.rate = t.requests / self.span_s
            t.p50_ms = percentile(times.get(name, []), 50)
            t.p99_ms = percentile(times.get(name, []), 99)
        return out
