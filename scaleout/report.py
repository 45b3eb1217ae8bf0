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
    routed = {True: "yes", False: "no", None: "-"}
    rows = [[s.service, s.state, s.health, routed[s.routed], s.address or "-", s.container] for s in st.services]
    lines = [f"project {st.project}" + (f" at {st.url}" if st.url else " (balancer not published)")]
    lines.append(table(["service", "state", "health", "in lb", "address", "container"], rows))
    return "\n".join(lines)


def probe_text(r: ProbeResult) -> str:
    rows = []
    for b in r.backends:
        bar = "#" * max(1 if b.count else 0, round(b.share * BAR_WIDTH))
        rows.append([b.name, b.address, str(b.count), f"{b.share:.1%}", f"{b.latency_ms['p50']:.1f}",
                     f"{b.latency_ms['p99']:.1f}", bar])
    out = [f"probe {r.url}: {r.requests} requests in {r.duration_s:.2f}s ({r.rps:,.0f} req/s), "
           f"{r.ok} ok, {r.failed} failed"]
    if rows:
        out.append(table(["replica", "address", "count", "share", "p50 ms", "p99 ms", "spread"], rows, right={2, 3, 4, 5}))
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
