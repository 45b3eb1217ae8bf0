"""One frame of `scaleout top`: a dict (schema scaleout.top/1, docs/top.md) and its text."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from scaleout.top.window import ReplicaTraffic, Window

TOP_SCHEMA = "scaleout.top/1"


def frame(status: Any, window: Window, now: float) -> dict[str, Any]:
    """`status` is a targets.status.StackStatus; replicas without traffic are listed with requests 0."""
    traffic = window.traffic(now)
    replicas = []
    for s in status.replicas:
        t = traffic.get(s.service, ReplicaTraffic())
        replicas.append({
            "name": s.service, "state": s.state, "health": s.health, "routed": s.routed,
            "address": s.address, **asdict(t), "idle": t.requests == 0,
        })
    known = {s.service for s in status.replicas}
    gone = [{"name": n, **asdict(t)} for n, t in sorted(traffic.items()) if n not in known and n != "lb"]
    return {
        "schema": TOP_SCHEMA,
        "time": now,
        "project": status.project,
        "window_s": window.span_s,
        "replicas": replicas,
        "gone": gone,  # served requests in the window, no longer in the stack (a rescale, a rolling update)
        "balancer": asdict(traffic["lb"]) if "lb" in traffic else None,
        "services": [{"name": s.service, "state": s.state, "health": s.health} for s in status.dependencies],
        "recent": [{"time": r.time, "replica": name, "method": r.method, "path": r.path, "status": r.status,
                    "upstream_ms": None if r.upstream_time is None else round(r.upstream_time * 1000, 1)}
                   for r, name in window.recent],
    }


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _ago(last: float | None, now: float) -> str:
    return "never" if last is None else f"{max(0.0, now - last):.0f}s ago"


def text(f: dict[str, Any], color: bool = False) -> str:
    now = f["time"]
    head = f"scaleout top  {f['project']}  {time.strftime('%H:%M:%S', time.localtime(now))}  " \
           f"(last {f['window_s']:.0f}s)"
    rows = [head, "",
            f"{'REPLICA':<12} {'STATE':<9} {'HEALTH':<10} {'ROUTED':<6} {'REQ/S':>7} {'2xx':>6} {'3xx':>5} "
            f"{'4xx':>5} {'5xx':>5} {'P50ms':>7} {'P99ms':>7}  LAST SEEN"]
    for r in f["replicas"]:
        routed = "?" if r["routed"] is None else ("yes" if r["routed"] else "NO")
        c = r["classes"]
        line = (f"{r['name']:<12} {r['state']:<9} {r['health']:<10} {routed:<6} {r['rate']:>7.1f} {c['2xx']:>6} "
                f"{c['3xx']:>5} {c['4xx']:>5} {c['5xx']:>5} {_ms(r['p50_ms']):>7} {_ms(r['p99_ms']):>7}  "
                + ("no traffic" if r["idle"] and r["last_seen"] is None else _ago(r["last_seen"], now)))
        if color and (c["5xx"] or r["routed"] is False):
            line = f"\x1b[31m{line}\x1b[0m"
        rows.append(line)
    for g in f["gone"]:
        rows.append(f"{g['name']:<12} {'gone':<9} {'-':<10} {'-':<6} {g['rate']:>7.1f}")
    if f["services"]:
        rows += ["", "SERVICES  " + "  ".join(f"{s['name']}: {s['state']}/{s['health']}" for s in f["services"])]
    rows += ["", "LAST REQUESTS"]
    for q in reversed(f["recent"]):
        rows.append(f"  {time.strftime('%H:%M:%S', time.localtime(q['time']))} {q['replica']:<12} {q['status']} "
                    f"{_ms(q['upstream_ms']):>7}ms {q['method']} {q['path']}")
    if not f["recent"]:
        rows.append("  (none yet: the balancer's request record is empty)")
    return "\n".join(rows)
