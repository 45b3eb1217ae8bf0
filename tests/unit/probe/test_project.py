"""`probe_project`, the whole `scaleout probe`, without an engine: a fake target tells which replicas run
and are routed, a local server answers like the balancer. Checks the decisions made before the verdict:
which replicas to expect, which strategy, which cache checks, which targets may be loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

import scaleout.probe.project as probe_mod
import scaleout.targets as targets_mod
from scaleout.errors import NotRunningError, ProbeTargetError
from scaleout.probe.project import ProbeAsk, probe_project
from scaleout.scaffold import init_project
from scaleout.targets import remember_strategy
from scaleout.targets.status import ServiceStatus, StackStatus
from tests.helpers.cachefake import FakeBalancer
from tests.helpers.probe_testserver import UPSTREAMS, MisbehavingServer

NAMES = {addr: f"backend-{i}" for i, addr in enumerate(UPSTREAMS, 1)}  # 10.9.0.1:8000 -> backend-1 ...


class FakeStack:
    """What a Target reports: replicas (name, health, routed), the balancer's URL, and their addresses."""

    def __init__(self, url: str | None, replicas: list[tuple[str, str, bool | None]], addresses=None):
        self.url = url
        self.replicas = replicas
        self.addresses = NAMES if addresses is None else addresses

    def status(self) -> StackStatus:
        services = [ServiceStatus(n, f"p-{n}-1", "running", h, None, "backend", r) for n, h, r in self.replicas]
        if self.url:
            services.append(ServiceStatus("lb", "p-lb-1", "running", "none", None, "balancer"))
        return StackStatus("p", self.url, services)

    def address_map(self) -> dict[str, str]:
        return dict(self.addresses)


@pytest.fixture
def project(tmp_path) -> Path:
    init_project(tmp_path / "proj", "python", name="proj")
    return tmp_path / "proj"


def use_stack(monkeypatch, stack: FakeStack) -> None:
    monkeypatch.setattr(targets_mod, "open_target", lambda target, cfg, *a, **kw: stack)


def healthy(*names: str) -> list[tuple[str, str, bool | None]]:
    return [(n, "healthy", True) for n in names]


ASK = ProbeAsk(requests=300, concurrency=3, workers=1, cache_check=False)


def test_the_replicas_routed_now_are_expected(project, monkeypatch):
    with MisbehavingServer() as srv:
        use_stack(monkeypatch, FakeStack(srv.url, healthy("backend-1", "backend-2", "backend-3")))
        r = probe_project(project, ASK)
    assert (r.verdict, r.reasons) == ("pass", [])
    assert [b.name for b in r.backends] == ["backend-1", "backend-2", "backend-3"] and r.url == srv.url


def test_a_routed_replica_that_serves_nothing_fails(project, monkeypatch):
    with MisbehavingServer() as srv:
        use_stack(monkeypatch, FakeStack(srv.url, healthy("backend-1", "backend-2", "backend-3", "backend-4")))
        r = probe_project(project, ASK)
    assert r.verdict == "fail" and "replica backend-4 served no request" in r.reasons


def test_an_unhealthy_or_unrouted_replica_is_not_expected_and_must_not_serve(project, monkeypatch):
    replicas = [*healthy("backend-1", "backend-2", "backend-3"), ("backend-4", "unhealthy", False),
                ("backend-5", "starting", True)]
    with MisbehavingServer() as srv:
        use_stack(monkeypatch, FakeStack(srv.url, replicas))
        assert probe_project(project, ASK).verdict == "pass"  # backend-4 and -5 are not expected
        unrouted = [*healthy("backend-1", "backend-3"), ("backend-2", "healthy", False)]
        use_stack(monkeypatch, FakeStack(srv.url, unrouted))
        r = probe_project(project, ProbeAsk(requests=300, concurrency=3, workers=1, cache_check=False, tolerance=10))
    assert r.failed_rules == ["unexpected_replica"] and r.reasons[0].startswith("backend-2 served 100 requests")


def test_the_projects_weights_and_backups_are_the_promise(project, monkeypatch):
    cfg = project / "scaleout.yaml"
    text = cfg.read_text()
    cfg.write_text(text.replace("  # backup: [backend-3]", "  backup: [backend-3]"))
    with MisbehavingServer() as srv:
        use_stack(monkeypatch, FakeStack(srv.url, healthy("backend-1", "backend-2", "backend-3")))
        r = probe_project(project, ProbeAsk(requests=300, concurrency=3, workers=1, cache_check=False, tolerance=10))
        assert r.failed_rules == ["backup_served"]
        cfg.write_text(text.replace("  # weights: {backend-1: 2}", "  weights: {backend-1: 2}"))
        r = probe_project(project, ASK)
    assert r.failed_rules == ["share_off"] and "expected 50.0%" in r.reasons[0]


def test_the_deployed_strategy_is_judged_unless_one_is_asked(project, monkeypatch):
    remember_strategy(project, "ip_hash")  # what the last `up` deployed
    with MisbehavingServer() as srv:
        use_stack(monkeypatch, FakeStack(srv.url, healthy("backend-1", "backend-2", "backend-3")))
        r = probe_project(project, ASK)
        assert (r.strategy, r.failed_rules) == ("ip_hash", ["ip_hash_split"])
        r = probe_project(project, ProbeAsk(requests=300, concurrency=3, workers=1, cache_check=False,
                                            strategy="round_robin"))
    assert (r.strategy, r.verdict) == ("round_robin", "pass")


def test_failed_cache_checks_are_reasons(project, monkeypatch):
    with FakeBalancer() as fake:
        use_stack(monkeypatch, FakeStack(fake.url, healthy("backend-1"), {"127.0.0.1:9": "backend-1"}))
        r = probe_project(project, ProbeAsk(requests=20, concurrency=1, workers=1))
        assert r.verdict == "pass" and r.cache_checks and all(c["ok"] for c in r.cache_checks), r.reasons
        del fake.routes["/offline.html"]
        r = probe_project(project, ProbeAsk(requests=20, concurrency=1, workers=1))
    assert r.failed_rules == ["cache_headers"]
    assert r.reasons[0].startswith("cache headers: /offline.html: HTTP 404")


def test_a_stopped_project_is_not_probed(project, monkeypatch):
    use_stack(monkeypatch, FakeStack(None, []))
    with pytest.raises(NotRunningError, match="not running"):
        probe_project(project, ASK)


def test_a_url_without_a_running_project_expects_whatever_answers(project, monkeypatch):
    with MisbehavingServer() as srv:
        use_stack(monkeypatch, FakeStack(None, [], {}))
        r = probe_project(project, ProbeAsk(url=srv.url, requests=300, concurrency=3, workers=1, cache_check=False))
    assert r.verdict == "pass" and sorted(b.name for b in r.backends) == sorted(UPSTREAMS)


# --- which targets may be loaded ---------------------------------------------------------------

class NoLoad(Exception):
    pass


def refuse_load(monkeypatch) -> list:
    """Replace the load by a recorder: these tests must never send anything to a non-loopback address."""
    calls: list = []

    def fake_run_probe(opts, names, progress=None):
        calls.append(opts.url)
        raise NoLoad(opts.url)

    monkeypatch.setattr(probe_mod, "run_probe", fake_run_probe)
    return calls


def test_a_replica_of_this_project_may_be_probed_directly(project, monkeypatch):
    calls = refuse_load(monkeypatch)
    use_stack(monkeypatch, FakeStack("http://127.0.0.1:1", healthy("backend-1"), {"172.31.0.5:8000": "backend-1"}))
    with pytest.raises(NoLoad):
        probe_project(project, ProbeAsk(url="http://172.31.0.5:8000", cache_check=False))
    assert calls == ["http://172.31.0.5:8000"]


def test_other_addresses_are_refused_before_any_request(project, monkeypatch, tmp_path):
    calls = refuse_load(monkeypatch)
    use_stack(monkeypatch, FakeStack("http://127.0.0.1:1", healthy("backend-1"), {"172.31.0.5:8000": "backend-1"}))
    for url in ("http://172.31.0.6:8000", "http://192.0.2.1"):
        with pytest.raises(ProbeTargetError, match="--allow-remote"):
            probe_project(project, ProbeAsk(url=url))
    with pytest.raises(ProbeTargetError, match="not this machine"):  # no project: no containers of its own
        probe_project(tmp_path, ProbeAsk(url="http://172.31.0.5:8000"))
    assert calls == []
    with pytest.raises(NoLoad):
        probe_project(project, ProbeAsk(url="http://192.0.2.1", allow_remote=True, cache_check=False))
    assert calls == ["http://192.0.2.1"]
