"""`scaleout bench`: throughput and latency against the number of replicas -> a `BenchResult`.

For each replica count the stack is brought to that size through the zero-downtime path (`Stack.up`),
warmed up, then loaded in a closed loop for a fixed time (over HTTPS with balancer.tls, verified as
`probe` verifies). Prints nothing; report.py draws the table, the terminal plot and the SVG.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from scaleout.config.model import Config, Overrides
from scaleout.files import Plan
from scaleout.probe.engine import LoadSpec, run_load
from scaleout.probe.project import check_handshake, project_ca, summarize, tls_report, tls_settings
from scaleout.probe.target import check_target

SCHEMA = "scaleout.bench/1"  # documented in docs/probe-json.md


@dataclass
class BenchPoint:
    replicas: int
    requests: int
    failed: int
    rps: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    status_codes: dict[str, int]
    replicas_served: int  # replicas that answered at least one request
    efficiency: float | None = None  # rps(N) / (N * rps per replica of the smallest count)
    tls: dict | None = None  # over HTTPS: as `probe --json`'s tls (handshakes during the measurement)


@dataclass
class BenchResult:
    project: str
    url: str
    path: str
    concurrency: int
    duration_s: float
    warmup_s: float
    workers: int
    cpu_work_ms: str | None
    points: list[BenchPoint] = field(default_factory=list)
    plot: str | None = None

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}


def parse_counts(text: str, max_replicas: int) -> list[int]:
    """"1,2,4" -> [1, 2, 4]: distinct, ascending, each 1..max_replicas. Raises ValueError with a message."""
    try:
        counts = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ValueError(f"{text!r} must be replica counts separated by commas, such as 1,2,4") from None
    if not counts:
        raise ValueError("give at least one replica count, such as 1,2,4")
    bad = [c for c in counts if not 1 <= c <= max_replicas]
    if bad:
        raise ValueError(f"replica counts must be between 1 and {max_replicas} (got {bad[0]})")
    return sorted(set(counts))


def efficiencies(points: list[BenchPoint]) -> None:
    """Scale-out efficiency rps(N) / (N * rps(1)); without a 1-replica point, the smallest count's
    per-replica throughput stands in for rps(1)."""
    if not points:
        return
    base = min(points, key=lambda p: p.replicas)
    per_replica = base.rps / base.replicas
    for p in points:
        p.efficiency = round(p.rps / (p.replicas * per_replica), 3) if per_replica > 0 else None


def run_bench(
    cfg: Config,
    counts: list[int],
    *,
    render_files: Callable[[Config], Plan],
    duration_s: float = 5.0,
    warmup_s: float = 1.0,
    concurrency: int = 32,
    path: str = "/",
    workers: int = 0,
    build: bool = True,
    timeout_s: float = 180.0,
    progress: Callable[[str], None] = lambda _m: None,
    log: Callable[[str], None] = lambda _m: None,
    cacert: str | None = None,
    insecure: bool = False,
) -> BenchResult:
    """Measure each replica count in turn; the stack is left at the last count."""
    from scaleout.targets.compose import ComposeStack as Stack

    cpu_work = cfg.backend.env.get("CPU_WORK_MS")
    result = BenchResult(project=cfg.project, url=cfg.url, path=path, concurrency=concurrency, duration_s=duration_s,
                         warmup_s=warmup_s, workers=workers, cpu_work_ms=cpu_work.value if cpu_work else None)
    for i, n in enumerate(counts):
        c = cfg.with_overrides(Overrides(replicas=n))
        stack = Stack(c, progress=progress, log=log)
        progress(f"bench: bringing the stack to {n} replica(s)")
        st = stack.up(render_files(c), build=build and i == 0, timeout_s=timeout_s)
        url = (st.url or c.url).rstrip("/")
        result.url = url
        names = stack.address_map()
        # as `probe` does: resolved once, loopback or this project's containers only, connections to those addresses
        target = check_target(url, False, {a.rsplit(":", 1)[0] for a in names})
        tls = tls_settings(url, cacert=cacert, insecure=insecure, project_ca=project_ca(c))
        if tls is not None:  # an untrusted certificate: one clear error, not a point of failures
            check_handshake(url, tls, address=target.addresses[0])
        spec = LoadSpec(url=url, path=path, concurrency=concurrency, workers=workers, timeout_s=10.0, tls=tls,
                        addresses=target.addresses)
        if warmup_s > 0:
            progress(f"bench: warming up {n} replica(s) for {warmup_s:g}s")
            run_load(replace(spec, duration_s=warmup_s))
        progress(f"bench: measuring {n} replica(s) for {duration_s:g}s with {concurrency} connections")
        samples = run_load(replace(spec, duration_s=duration_s))
        r = summarize(samples, samples.duration_s, url, names)
        result.workers = samples.workers
        result.points.append(BenchPoint(
            replicas=n, requests=r.requests, failed=r.failed, rps=r.rps, latency_ms=r.latency_ms, errors=r.errors,
            status_codes=r.status_codes, replicas_served=sum(1 for b in r.backends if b.count),
            tls=tls_report(tls, samples.tls),
        ))
    efficiencies(result.points)
    return result
