"""Results -> text for people and JSON for scripts. No other module formats output."""

from __future__ import annotations

import json
from typing import Any

from scaleout.probe import ProbeResult
from scaleout.stack import StackStatus

BAR_WIDTH = 30


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def status_text(st: StackStatus) -> str:
    if not st.services:
        return f"project {st.project}: not running"
    rows = [[s.service, s.state, s.health, s.address or "-", s.container] for s in st.services]
    lines = [f"project {st.project}" + (f" at {st.url}" if st.url else " (balancer not published)")]
    lines.append(table(["service", "state", "health", "address", "container"], rows))
    return "\n".join(lines)


def spread_bar(share: float, expected: float | None, top: float, width: int = BAR_WIDTH) -> str:
    """A bar of `share` scaled so `top` fills `width`; `|` marks the expected share when it falls past the bar."""
    n = max(1 if share > 0 else 0, round(share / top * width)) if top > 0 else 0
    cells = ["#"] * n + [" "] * (width - n)
    if expected:
        at = min(width - 1, max(0, round(expected / top * width) - 1))
        if at >= n:
            cells[at] = "|"
    return "".join(cells).rstrip()


def probe_text(r: ProbeResult) -> str:
    rows = []
    even = 1 / len(r.backends) if r.backends and r.strategy not in ("hash", "ip_hash") else None
    top = max([b.share for b in r.backends] + [even or 0.0]) if r.backends else 0.0
    for b in r.backends:
        codes = ",".join(k for k in b.status_codes if not 200 <= int(k) < 400)
        rows.append([b.name, b.address, str(b.count), f"{b.share:.1%}", f"{b.latency_ms['p50']:.1f}",
                     f"{b.latency_ms['p90']:.1f}", f"{b.latency_ms['p99']:.1f}", f"{b.latency_ms['max']:.1f}",
                     codes or "-", spread_bar(b.share, even, top)])
    load = r.load or {}
    shape = f", open loop at {load['rate']:g} req/s" if load.get("rate") else ""
    out = [f"probe {r.url}: {r.requests} requests in {r.duration_s:.2f}s ({r.rps:,.0f} req/s{shape}), "
           f"{r.ok} ok, {r.failed} failed"]
    if rows:
        out.append(table(["replica", "address", "count", "share", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "spread"],
                         rows, right={2, 3, 4, 5, 6, 7}))
    if r.unattributed:
        out.append(f"{r.unattributed} response(s) carried no X-Upstream-Addr")
    lat = r.latency_ms
    out.append(f"latency ms: p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}")
    errs = {k: v for k, v in r.errors.items() if v}
    if errs or any(not 200 <= int(k) < 400 for k in r.status_codes):
        out.append("status codes: " + ", ".join(f"{k}: {v}" for k, v in r.status_codes.items())
                   + ("; errors: " + ", ".join(f"{k}: {v}" for k, v in errs.items()) if errs else ""))
    if r.spread.get("max_relative_deviation") is not None:
        p = r.spread.get("chi_square_p")
        out.append(f"spread ({r.strategy}): largest deviation {r.spread['max_relative_deviation']:.1%} "
                   f"(tolerance {r.spread['tolerance']:.0%})" + (f", chi-square p = {p:.3g}" if p is not None else ""))
    if r.sticky:
        out.append(f"stickiness ({r.strategy}): {r.sticky['keys']} keys over {r.sticky['replicas_used']} replica(s), "
                   f"{r.sticky['keys_split']} split")
    for c in r.cache_checks:
        mark = "ok  " if c["ok"] else "FAIL"
        out.append(f"cache {mark} {c['path']}: {c['detail']}")
    out.append(f"verdict: {r.verdict.upper()}")
    out.extend(f"  - {reason}" for reason in r.reasons)
    return "\n".join(out)


class ProgressBar:
    """`[#####.....] 1200/5000 req  2.1s` on one line of `stream`, redrawn at most 10 times a second."""

    def __init__(self, stream, duration_s: float | None = None, width: int = 30) -> None:
        import time

        self.stream, self.duration_s, self.width = stream, duration_s, width
        self.clock = time.monotonic
        self.t0 = self.clock()
        self.last = 0.0
        self.drawn = False

    def update(self, done: int, total: int | None) -> None:
        now = self.clock()
        if now - self.last < 0.1 and not (total and done >= total):
            return
        self.last = now
        elapsed = now - self.t0
        if total:
            frac = done / total
            count = f"{done}/{total} req"
        else:
            frac = elapsed / self.duration_s if self.duration_s else 0.0
            count = f"{done} req"
        frac = max(0.0, min(1.0, frac))
        fill = round(frac * self.width)
        self.stream.write(f"\r[{'#' * fill}{'.' * (self.width - fill)}] {count}  {elapsed:.1f}s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
