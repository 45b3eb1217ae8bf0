"""Load through the balancer and attribution of every response to a replica -> a `ProbeResult`.

Prints nothing. The load engine lives in scaleout/loadgen.py (protocol-level HTTP/1.1 on uvloop and
httptools, several processes; see benchmarks/RESULTS.md for why), the statistics in scaleout/stats.py.
`ProbeResult.to_dict()` is the `--json` output; its schema is documented in docs/probe-json.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from scaleout.errors import ProbeTargetError
from scaleout.loadgen import ERROR_CLASSES, LoadSpec, Sample, Samples, run_load
from scaleout.stats import breakdown, chi_square_p, latency_summary, max_relative_deviation, percentile

__all__ = ["sticky_carrier", "ERROR_CLASSES", "SCHEMA", "ProbeOptions", "Sample", "Samples", "BackendStats", "ProbeResult",
           "summarize", "judge", "check_target", "run_probe", "chi_square_p", "latency_summary", "percentile"]

SCHEMA = "scaleout.probe/1"  # bump on any incompatible change of the JSON (docs/probe-json.md)

ProbeOptions = LoadSpec


@dataclass
class BackendStats:
    name: str
    address: str
    count: int
    share: float
    latency_ms: dict[str, float]
    status_codes: dict[str, int]
    keys: int = 0  # distinct sticky keys this replica served


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
    load: dict = field(default_factory=dict)
    unattributed: int = 0  # answered, but without X-Upstream-Addr

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}


# --- statistics --------------------------------------------------------------------------------

def summarize(samples: Samples, duration_s: float, url: str, names: dict[str, str],
              load: dict | None = None) -> ProbeResult:
    """Aggregate samples; `names` maps `ip:port` to replica names (unknown addresses keep the address)."""
    b = breakdown(samples)
    backends = [BackendStats(name=names.get(addr, addr), address=addr, **st) for addr, st in b["backends"].items()]
    backends.sort(key=lambda x: (_index(x.name), x.name))
    total = b["requests"]
    return ProbeResult(
        url=url,
        requests=total,
        ok=b["ok"],
        failed=total - b["ok"],
        rps=round(total / duration_s, 1) if duration_s > 0 else 0.0,
        duration_s=round(duration_s, 3),
        backends=backends,
        status_codes=b["status_codes"],
        errors=b["errors"],
        latency_ms=b["latency_ms"],
        load=load or {},
        unattributed=b["unattributed"],
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
        worst = max_relative_deviation(got, exp_counts)
        for n, e, g in zip(primaries, exp_counts, got):
            if e > 0:
                if max_relative_deviation([g], [e]) > tolerance and counts.get(n):
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


def load_shape(opts: ProbeOptions, workers: int) -> dict:
    """The `load` section of the JSON: what was asked for, so a result can be reproduced."""
    return {
        "mode": "open" if opts.rate else "closed",
        "requests": None if opts.duration_s else opts.requests,
        "duration_s": opts.duration_s,
        "concurrency": opts.concurrency,
        "rate": opts.rate,
        "workers": workers,
        "method": opts.method,
        "path": opts.path,
        "latency_from": "intended_send" if opts.rate else "send",
    }


def sticky_carrier(strategy: str, hash_key: str) -> tuple[str, str]:
    """How `--sticky-keys` sends its keys so that the balancer hashes them: ("cookie"|"arg"|"header", name).
    Raises UsageError where the probe cannot vary what the balancer hashes."""
    from scaleout.errors import UsageError

    if strategy == "ip_hash":
        raise UsageError(
            "--sticky-keys: ip_hash hashes the client's address, and the probe sends from one address",
            hint="run the probe without --sticky-keys: it then checks that this one client sticks to one replica",
        )
    if strategy != "hash":
        return "cookie", "session"
    for prefix, via in (("$cookie_", "cookie"), ("$arg_", "arg"), ("$http_", "header")):
        if hash_key.startswith(prefix):
            name = hash_key[len(prefix):]
            return via, name.replace("_", "-") if via == "header" else name
    raise UsageError(
        f"--sticky-keys: hash_key {hash_key} is not a cookie ($cookie_NAME), query argument ($arg_NAME) or header "
        "($http_NAME), so the probe cannot send distinct keys"
    )


def run_probe(opts: ProbeOptions, names: dict[str, str],
              progress: Callable[[int, int | None], None] | None = None) -> tuple[ProbeResult, Samples]:
    """Send the load and summarize it (the verdict is set by `judge`)."""
    samples = run_load(opts, progress)
    result = summarize(samples, samples.duration_s, opts.url, names, load_shape(opts, samples.workers))
    return result, samples
