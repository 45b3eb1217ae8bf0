"""Results -> text for people and JSON for scripts. No other module formats output."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from scaleout.targets.status import StackStatus

if TYPE_CHECKING:  # the probe's load engine is not imported by `up` and `status`, which print no probe
    from scaleout.probe.project import ProbeResult

BAR_WIDTH = 30


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def status_text(st: StackStatus) -> str:
    if not st.services:
        return f"project {st.project}: not running" + (f" on {st.engine['name']} {st.engine['version']}"
                                                        if st.engine else "")
    routed = {True: "yes", False: "no", None: "-"}
    front = [s for s in st.services if s.role != "service"]
    rows = [[s.service, s.state, s.health, routed[s.routed], s.address or "-", s.container] for s in front]
    lines = [f"project {st.project}" + (f" at {st.url}" if st.url else " (balancer not published)")
             + (f" on {st.engine['name']} {st.engine['version']}" if st.engine else "")]
    lines.append(table(["service", "state", "health", "in lb", "address", "container"], rows))
    if st.dependencies:
        lines.append("\nservices beside the replicas (not behind the balancer):")
        lines.append(table(["service", "state", "health", "container"],
                           [[s.service, s.state, s.health, s.container] for s in st.dependencies]))
    stopped = [s.service for s in st.services if s.state in ("exited", "created", "paused", "dead")]
    if stopped:
        names = " ".join(stopped)
        lines.append(f"\nstopped: {', '.join(stopped)}; `scaleout start {names}` or `scaleout up` brings "
                     f"{'it' if len(stopped) == 1 else 'them'} back")
    return "\n".join(lines)


# Compose's order of prefix colours: cyan, yellow, green, magenta, blue, then their bright variants
LOG_COLORS = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)


class LogPrinter:
    """Log lines as Compose prints them: `service  | text`, names padded to one width, one colour per
    service on a terminal."""

    def __init__(self, services: list[str], *, color: bool, timestamps: bool, prefix: bool = True) -> None:
        self.width = max((len(s) for s in services), default=0) + 1
        self.timestamps = timestamps
        self.color = color
        self.prefix = prefix
        self.prefixes: dict[str, str] = {}
        for name in services:
            self._prefix(name)

    def _prefix(self, name: str) -> str:
        """The prefix of a service, made the first time it is seen (`logs -f` meets services that start
        later, such as a rescale's new replicas: they get the next colour)."""
        if name not in self.prefixes:
            text = f"{name:<{self.width}} | " if self.prefix else ""
            if self.color and text:
                text = f"\033[{LOG_COLORS[len(self.prefixes) % len(LOG_COLORS)]}m{text}\033[0m"
            self.prefixes[name] = text
        return self.prefixes[name]

    def format(self, line) -> str:
        """One LogLine (scaleout.targets.logs) as text, without the newline."""
        stamp = f"{line.stamp} " if self.timestamps and line.stamp else ""
        return f"{self._prefix(line.service)}{stamp}{line.text}"


def spread_bar(share: float, expected: float | None, top: float, width: int = BAR_WIDTH) -> str:
    """A bar of `share` scaled so `top` fills `width`; `|` marks the expected share when it falls past the bar."""
    n = max(1 if share > 0 else 0, round(share / top * width)) if top > 0 else 0
    cells = ["#"] * n + [" "] * (width - n)
    if expected:
        at = min(width - 1, max(0, round(expected / top * width) - 1))
        if at >= n:
            cells[at] = "|"
    return "".join(cells).rstrip()


def tls_line(t: dict) -> str:
    """`tls: TLSv1.3 TLS_AES_256_GCM_SHA384, ALPN http/1.1, 12 handshakes, certificate verified (ca.pem)`."""
    if not t["handshakes"]:
        return f"tls: no TLS connection succeeded (certificate of {t['server_name']} checked against {t['trusted']})"
    check = (f"certificate of {t['server_name']} verified against {t['trusted']}" if t["verified"]
             else "certificate NOT verified (--insecure)")
    return (f"tls: {t['version'] or '?'} {t['cipher'] or '?'}, ALPN {t['alpn'] or 'none'}, "
            f"{t['handshakes']} handshake(s), {check}")


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
    if r.tls:
        out.append(tls_line(r.tls))
    if rows:
        out.append(table(["replica", "address", "count", "share", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors",
                          "spread"], rows, right={2, 3, 4, 5, 6, 7}))
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


# --- bench ---------------------------------------------------------------------------------------

def bench_text(b) -> str:
    """Table and terminal plot of a `BenchResult`: requests/s (bars) and p99 against replicas."""
    rows = []
    top = max((p.rps for p in b.points), default=0.0)
    for p in b.points:
        rows.append([str(p.replicas), f"{p.rps:,.0f}", f"{p.latency_ms['p50']:.1f}", f"{p.latency_ms['p99']:.1f}",
                     f"{p.efficiency:.0%}" if p.efficiency is not None else "-", str(p.requests), str(p.failed),
                     f"{p.replicas_served}/{p.replicas}"])
    out = [f"bench {b.url}{b.path}: {b.duration_s:g}s per point, {b.concurrency} connections, "
           f"CPU_WORK_MS={b.cpu_work_ms or 0}"]
    if b.points and b.points[-1].tls:
        out.append(tls_line(b.points[-1].tls) + " (last point)")
    out.append(table(["replicas", "req/s", "p50 ms", "p99 ms", "efficiency", "requests", "failed", "served"],
                     rows, right={0, 1, 2, 3, 4, 5, 6}))
    out.append("")
    out.append("req/s by replicas (# measured, . ideal linear scaling from the first point)")
    first = b.points[0] if b.points else None
    ideals = [first.rps / first.replicas * p.replicas if first and first.replicas else 0.0 for p in b.points]
    scale = max([top] + ideals)
    for p, ideal in zip(b.points, ideals, strict=True):
        n = round(p.rps / scale * BAR_WIDTH) if scale else 0
        m = min(BAR_WIDTH, round(ideal / scale * BAR_WIDTH)) if scale else 0
        bar = "#" * n + "." * max(0, m - n)
        out.append(f"{p.replicas:>3} | {bar:<{BAR_WIDTH}} {p.rps:,.0f} req/s, p99 {p.latency_ms['p99']:.1f} ms")
    if b.plot:
        out.append(f"plot: {b.plot}")
    return "\n".join(out)


def bench_svg(b, width: int = 640, height: int = 360) -> str:
    """A self-contained SVG: requests/s (bars, left axis), ideal scaling (dashed), p99 (line, right axis)."""
    from xml.sax.saxutils import escape

    pts = b.points
    left, right, top_m, bottom = 70, 70, 40, 50
    pw, ph = width - left - right, height - top_m - bottom
    first = pts[0] if pts else None
    ideal = [first.rps / first.replicas * p.replicas for p in pts] if first and first.replicas else []
    ymax = _nice(max(ideal + [p.rps * 1.05 for p in pts] + [1.0]))
    ideal_cap = ideal
    lmax = _nice(max([p.latency_ms["p99"] for p in pts] + [1.0]) * 1.1)
    n = max(1, len(pts))
    slot = pw / n
    x = [left + slot * (i + 0.5) for i in range(n)]

    def yr(v: float) -> float:
        return top_m + ph - v / ymax * ph

    def yl(v: float) -> float:
        return top_m + ph - v / lmax * ph

    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
         'font-family="sans-serif" font-size="12">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">'
         f'{escape(b.project)}: requests/s and p99 latency by replicas</text>']
    for k in range(5):  # grid and left axis labels
        v = ymax * k / 4
        e.append(f'<line x1="{left}" x2="{left + pw}" y1="{yr(v):.1f}" y2="{yr(v):.1f}" stroke="#ddd"/>')
        e.append(f'<text x="{left - 6}" y="{yr(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
        lv = lmax * k / 4
        e.append(f'<text x="{left + pw + 6}" y="{yl(lv) + 4:.1f}" fill="#c0392b">{lv:.1f}</text>')
    for i, p in enumerate(pts):
        bw = slot * 0.5
        e.append(f'<rect x="{x[i] - bw / 2:.1f}" y="{yr(p.rps):.1f}" width="{bw:.1f}" '
                 f'height="{top_m + ph - yr(p.rps):.1f}" '
                 f'fill="#2e86c1"><title>{p.replicas} replicas: {p.rps:,.0f} req/s</title></rect>')
        e.append(f'<text x="{x[i]:.1f}" y="{yr(p.rps) - 4:.1f}" text-anchor="middle">{p.rps:,.0f}</text>')
        e.append(f'<text x="{x[i]:.1f}" y="{top_m + ph + 18}" text-anchor="middle">{p.replicas}</text>')
        if p.efficiency is not None:
            e.append(f'<text x="{x[i]:.1f}" y="{top_m + ph + 32}" text-anchor="middle" fill="#555">'
                     f'{p.efficiency:.0%}</text>')
    if len(pts) > 1:
        e.append('<polyline fill="none" stroke="#2e86c1" stroke-dasharray="5,4" points="'
                 + " ".join(f"{x[i]:.1f},{yr(v):.1f}" for i, v in enumerate(ideal_cap)) + '"/>')
    e.append('<polyline fill="none" stroke="#c0392b" stroke-width="2" points="'
             + " ".join(f"{x[i]:.1f},{yl(p.latency_ms['p99']):.1f}" for i, p in enumerate(pts)) + '"/>')
    for i, p in enumerate(pts):
        e.append(f'<circle cx="{x[i]:.1f}" cy="{yl(p.latency_ms["p99"]):.1f}" r="3.5" fill="#c0392b">'
                 f'<title>p99 {p.latency_ms["p99"]:.1f} ms</title></circle>')
    e.append(f'<line x1="{left}" x2="{left}" y1="{top_m}" y2="{top_m + ph}" stroke="#333"/>')
    e.append(f'<line x1="{left}" x2="{left + pw}" y1="{top_m + ph}" y2="{top_m + ph}" stroke="#333"/>')
    e.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">replicas (efficiency below)</text>')
    e.append(f'<text x="16" y="{top_m + ph / 2}" transform="rotate(-90 16 {top_m + ph / 2})" text-anchor="middle" '
             'fill="#2e86c1">requests/s (bars; dashed: ideal)</text>')
    e.append(f'<text x="{width - 14}" y="{top_m + ph / 2}" transform="rotate(90 {width - 14} {top_m + ph / 2})" '
             'text-anchor="middle" fill="#c0392b">p99 latency, ms</text>')
    e.append("</svg>")
    return "\n".join(e) + "\n"


def _nice(v: float) -> float:
    """Round an axis maximum up to 1, 2 or 5 times a power of ten."""
    import math

    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag
