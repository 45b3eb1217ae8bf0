"""The verdict of `scaleout probe`: pure rules on what the load saw, against what the balancer promises.

A PASS must mean the balancer is right, so every way to fail is a rule of its own here: a function on
plain data that returns `Finding`s (the rule's id and a sentence for the user). `decide` applies them
all. No I/O: the probe (scaleout/probe/project.py) gathers the data, the tests feed crafted data to each rule.
The rules are named in `RULES` and explained in docs/probe-json.md ("The verdict").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from scaleout.probe.stats import chi_square_p, max_relative_deviation

__all__ = ["RULES", "STICKY_STRATEGIES", "Expectation", "Finding", "Observed", "Verdict", "decide",
           "keys_served", "routed_replicas", "split_pool", "unrouted_replicas"]

STICKY_STRATEGIES = ("hash", "ip_hash")

# every way the verdict can fail, in the order `decide` applies them (docs/probe-json.md explains each)
RULES = ("no_requests", "failed_requests", "no_upstream_header", "unexpected_replica", "unrouted_replica",
         "backup_served",
         "hash_without_keys", "key_split", "ip_hash_split", "keys_on_one_replica", "replica_idle", "share_off",
         "cache_headers")


@dataclass(frozen=True)
class Finding:
    rule: str  # one of RULES
    message: str


@dataclass(frozen=True)
class Observed:
    """What the load saw. `counts`: replica name (or the bare address) -> answers it served;
    `keys`: sticky key -> the replicas that served it."""

    requests: int
    ok: int
    failed: int
    counts: Mapping[str, int]
    errors: Mapping[str, int] = field(default_factory=dict)
    status_codes: Mapping[str, int] = field(default_factory=dict)
    keys: Mapping[int, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Expectation:
    """What the balancer promises. `replicas`: those it routes to now (None: whichever answered);
    `unrouted`: running, healthy replicas of the project that the balancer does not route to."""

    strategy: str = "round_robin"
    replicas: tuple[str, ...] | None = None
    weights: Mapping[str, int] = field(default_factory=dict)
    backups: tuple[str, ...] = ()
    tolerance: float = 0.3
    max_failed: int = 0
    unrouted: tuple[str, ...] = ()


@dataclass
class Verdict:
    findings: list[Finding]
    spread: dict[str, float | None]
    sticky: dict[str, int] | None

    @property
    def verdict(self) -> str:
        return "fail" if self.findings else "pass"

    @property
    def reasons(self) -> list[str]:
        return [f.message for f in self.findings]


class _Replica(Protocol):
    service: str
    state: str
    health: str
    routed: bool | None


class _Sample(Protocol):
    key: int
    upstream: str
    error: str


def routed_replicas(replicas: Iterable[_Replica]) -> list[str]:
    """The replicas the balancer should send traffic to now: running, healthy (or without a health
    check), and not taken out by the balancer's health watcher (`routed` None: unknown, counted in)."""
    return [r.service for r in replicas
            if r.state == "running" and r.health in ("healthy", "none") and r.routed is not False]


def unrouted_replicas(replicas: Iterable[_Replica]) -> list[str]:
    """The replicas that run and are healthy (or have no health check) but that the balancer does not route
    to (`routed` False; None, unknown, is not counted)."""
    return [r.service for r in replicas
            if r.state == "running" and r.health in ("healthy", "none") and r.routed is False]


def keys_served(samples: Iterable[_Sample], names: Mapping[str, str]) -> dict[int, frozenset[str]]:
    """Sticky key -> replicas that answered it (answers that named an upstream; `names` maps address -> name)."""
    seen: dict[int, set[str]] = {}
    for s in samples:
        if s.key >= 0 and s.upstream and not s.error:
            seen.setdefault(s.key, set()).add(names.get(s.upstream, s.upstream))
    return {k: frozenset(v) for k, v in seen.items()}


def replica_order(name: str) -> tuple[bool, int, str] | tuple[bool, str]:
    """backend-2 before backend-10; names that are not replicas (bare addresses) after them, by name."""
    head, _, tail = name.rpartition("-")
    if head and tail.isdigit():
        return (False, int(tail), head)
    return (True, name)  # (the first element decides against a replica: never an int compared to a str)


def split_pool(expect: Expectation, counts: Mapping[str, int]) -> tuple[list[str], bool]:
    """(the replicas that should share the traffic, whether backups must stay idle). With no healthy
    primary nginx sends everything to the backups, which then share it like primaries."""
    pool = list(expect.replicas) if expect.replicas is not None else sorted(counts, key=replica_order)
    primaries = [n for n in pool if n not in expect.backups]
    if primaries:
        return primaries, True
    return [n for n in pool if n in expect.backups], False


# --- the rules ---------------------------------------------------------------------------------

def rule_no_requests(seen: Observed) -> list[Finding]:
    return [Finding("no_requests", "no request was sent")] if seen.requests == 0 else []


def rule_failed_requests(seen: Observed, max_failed: int) -> list[Finding]:
    if seen.failed <= max_failed:
        return []
    errs = ", ".join(f"{k} {v}" for k, v in seen.errors.items() if v)
    bad = ", ".join(f"HTTP {k}: {v}" for k, v in seen.status_codes.items() if not 200 <= int(k) < 400)
    detail = "; ".join(x for x in (errs, bad) if x)
    return [Finding("failed_requests", f"{seen.failed} of {seen.requests} requests failed ({detail})")]


def rule_no_upstream_header(seen: Observed) -> list[Finding]:
    if seen.ok and not sum(seen.counts.values()):
        return [Finding("no_upstream_header",
                        "no response carried X-Upstream-Addr: is the target a scaleout balancer?")]
    return []


def rule_unexpected_replica(seen: Observed, expect: Expectation) -> list[Finding]:
    if expect.replicas is None:
        return []
    return [Finding("unexpected_replica", f"{name} served {n} requests, but the balancer should not route to it "
                    "now (it is not a running, healthy, routed replica of this project)")
            for name, n in seen.counts.items() if n and name not in expect.replicas]


def rule_unrouted_replica(seen: Observed, expect: Expectation) -> list[Finding]:
    """A replica that runs and is healthy but got no traffic because the balancer does not route it (a rescale
    whose reload never took): the stack serves with fewer replicas than it runs."""
    idle = [name for name in expect.unrouted if not seen.counts.get(name)]
    if not idle:
        return []
    return [Finding("unrouted_replica", f"{', '.join(idle)} {'runs' if len(idle) == 1 else 'run'} and "
                    f"{'is' if len(idle) == 1 else 'are'} healthy but got no traffic: the balancer does not "
                    "route to " + ("it" if len(idle) == 1 else "them") + " (`scaleout up` reloads it)")]


def rule_backup_served(seen: Observed, expect: Expectation, backups_idle: bool) -> list[Finding]:
    if not backups_idle:
        return []
    return [Finding("backup_served", f"backup replica {name} served {seen.counts[name]} requests while primaries "
                    "were healthy") for name in expect.backups if seen.counts.get(name)]


def rule_replica_idle(seen: Observed, primaries: Sequence[str]) -> list[Finding]:
    return [Finding("replica_idle", f"replica {name} served no request") for name in primaries
            if not seen.counts.get(name)]


def expected_counts(seen: Observed, primaries: Sequence[str], weights: Mapping[str, int]) -> dict[str, float]:
    """The answers each primary should have served: all attributed answers, split by weight (each >= 1)."""
    total = sum(weights.get(n, 1) for n in primaries)
    attributed = sum(seen.counts.values())
    return {n: attributed * weights.get(n, 1) / total for n in primaries}


def rule_share_off(seen: Observed, primaries: Sequence[str], expect: Expectation) -> list[Finding]:
    """Only replicas that served at all: an idle one is `replica_idle`'s finding."""
    attributed = sum(seen.counts.values())
    out = []
    for name, want in expected_counts(seen, primaries, expect.weights).items():
        got = seen.counts.get(name)
        if got and abs(got - want) > expect.tolerance * want:
            out.append(Finding("share_off", f"replica {name} got {got / attributed:.1%} of requests, expected "
                               f"{want / attributed:.1%} ± {expect.tolerance:.0%} (relative)"))
    return out


def rule_hash_without_keys(seen: Observed, strategy: str) -> list[Finding]:
    if strategy == "hash" and not seen.keys:
        return [Finding("hash_without_keys", "strategy hash: run the probe with --sticky-keys K to check stickiness")]
    return []


def rule_key_split(seen: Observed) -> list[Finding]:
    split = sorted(k for k, v in seen.keys.items() if len(v) > 1)
    if not split:
        return []
    return [Finding("key_split", f"{len(split)} key(s) were served by more than one replica (e.g. key {split[0]})")]


def rule_ip_hash_split(seen: Observed, strategy: str) -> list[Finding]:
    """Without keys the probe is one client address: ip_hash must send all of it to one replica."""
    if strategy == "ip_hash" and not seen.keys and len([n for n, c in seen.counts.items() if c]) > 1:
        return [Finding("ip_hash_split", "ip_hash: requests from one client address reached more than one replica")]
    return []


def rule_keys_on_one_replica(seen: Observed, primaries: Sequence[str]) -> list[Finding]:
    used = {n for v in seen.keys.values() for n in v}
    if seen.keys and len(primaries) > 1 and len(used) < 2:
        return [Finding("keys_on_one_replica", f"{len(seen.keys)} distinct keys all landed on one replica: no spread")]
    return []


def rule_cache_headers(cache_checks: Iterable[Mapping[str, Any]]) -> list[Finding]:
    return [Finding("cache_headers", f"cache headers: {c['path']}: {c['detail']}") for c in cache_checks if not c["ok"]]


# --- all of them -------------------------------------------------------------------------------

def decide(seen: Observed, expect: Expectation, cache_checks: Iterable[Mapping[str, Any]] = ()) -> Verdict:
    """Every rule that applies to the strategy; the verdict fails on any finding."""
    primaries, backups_idle = split_pool(expect, seen.counts)
    findings = [*rule_no_requests(seen), *rule_failed_requests(seen, expect.max_failed),
                *rule_no_upstream_header(seen), *rule_unexpected_replica(seen, expect),
                *rule_unrouted_replica(seen, expect), *rule_backup_served(seen, expect, backups_idle)]
    sticky = None
    if expect.strategy in STICKY_STRATEGIES:
        findings += [*rule_hash_without_keys(seen, expect.strategy), *rule_key_split(seen),
                     *rule_ip_hash_split(seen, expect.strategy), *rule_keys_on_one_replica(seen, primaries)]
        spread: dict[str, float | None] = {"max_relative_deviation": None, "chi_square_p": None,
                                           "tolerance": expect.tolerance}
        sticky = {"keys": len(seen.keys), "keys_split": sum(1 for v in seen.keys.values() if len(v) > 1),
                  "replicas_used": len({n for v in seen.keys.values() for n in v})}
    else:
        findings += [*rule_replica_idle(seen, primaries), *rule_share_off(seen, primaries, expect)]
        want = list(expected_counts(seen, primaries, expect.weights).values())
        got = [seen.counts.get(n, 0) for n in primaries]
        spread = {"max_relative_deviation": round(max_relative_deviation(got, want), 4),
                  "chi_square_p": chi_square_p(got, want), "tolerance": expect.tolerance}
    findings += rule_cache_headers(cache_checks)
    return Verdict(findings, spread, sticky)
