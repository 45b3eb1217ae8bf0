"""The rolling update's steps against a fake engine and balancer (no Docker): what nginx routes at every
reload, when containers start and stop, how many Compose calls there are, and what a new version that
never gets healthy leaves behind. The e2e tests (test_rolling_e2e.py) time the same steps for real."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import pytest

from scaleout.config.load import parse_config
from scaleout.errors import UnhealthyError
from scaleout.targets.rolling import RollingUpdate

SERVICES = ["backend-1", "backend-2", "backend-3"]


class FakeContainer:
    def __init__(self, engine: FakeEngine, service: str, number: int, status: str) -> None:
        self.engine, self.service, self.number, self.status = engine, service, number, status
        self.name = f"demo-{service}-{number}"

    @property
    def attrs(self) -> dict:
        return {
            "Id": f"{self.name}-id", "Name": f"/{self.name}",
            "Config": {"Labels": {"com.docker.compose.project": "demo", "com.docker.compose.service": self.service,
                                  "com.docker.compose.container-number": str(self.number),
                                  "io.scaleout.project": "demo", "io.scaleout.role": "backend"}},
            "State": {"Status": self.status, "Health": {"Status": "starting" if self.number > 1 else "healthy"}},
        }

    def start(self) -> None:
        assert self.status == "created", self.name
        self.status = "running"
        self.engine.event("start", self.name)

    def stop(self, timeout: int = 10) -> None:
        assert self.name not in self.engine.routed, f"{self.name} stopped while the balancer routes it"
        self.status = "exited"
        self.engine.event("stop", self.name)

    def remove(self) -> None:
        del self.engine.containers[self.name]
        self.engine.event("remove", self.name)

    def logs(self, tail: int = 20) -> bytes:
        return f"{self.name}: booting\n".encode()


class FakeEngine:
    """The engine, the Compose CLI and the balancer at once. `polls_until_healthy[name]`: how many of the
    balancer's health polls a new container fails first (None: it exits instead)."""

    def __init__(self, polls_until_healthy: dict[str, int | None]) -> None:
        self.containers = {f"demo-{s}-1": FakeContainer(self, s, 1, "running") for s in SERVICES}
        self.routed: list[str] = list(SERVICES)  # the upstream names nginx routes now
        self.polls_until_healthy = polls_until_healthy
        self.log: list[tuple] = []
        self.polls: list[float] = []  # the poll interval the balancer was given, each time
        self.containers_api = SimpleNamespace(get=self.get)
        self.balancer = self  # its control channel too (reload, routing_addresses)

    def event(self, *what) -> None:
        self.log.append(what)

    def get(self, name: str) -> FakeContainer:
        if name not in self.containers:
            raise docker.errors.NotFound(name)
        return self.containers[name]

    # --- the stack's methods the update calls ---
    def project_containers(self) -> list[FakeContainer]:
        return list(self.containers.values())

    def run_cli(self, args: list[str], action: str) -> None:
        self.event("compose", *args)
        assert "--no-start" in args
        for svc in [a.split("=")[0] for a in args if a.endswith("=2")]:
            c = FakeContainer(self, svc, 2, "created")
            self.containers[c.name] = c

    def reload(self, nginx_text, watch_env, *, record=True, quiet=False, once_healthy=None) -> bool:
        names = re.search(r'^REPLICAS="(.*)"$', watch_env, re.M).group(1).split()
        if once_healthy is not None:
            waiting, seconds, poll = once_healthy
            assert seconds >= 1
            self.polls.append(poll)
            for name in waiting:
                left = self.polls_until_healthy[name]
                if left is None:  # the container exits during its boot
                    self.containers[name].status = "exited"
                    return False
                if left > 0:
                    self.polls_until_healthy[name] = left - 1
                    return False
                assert self.containers[name].status == "running"
        for name in names:  # max unavailable 0: every replica has a running container in the new routing
            if name not in SERVICES:
                assert self.containers[name].status == "running", f"{name} routed but {self.containers[name].status}"
        assert len(names) == len(SERVICES)
        self.routed = names
        self.event("routes", *names)
        return True

    def status(self, routing: bool = True):
        return SimpleNamespace(replicas=[SimpleNamespace(service=s, address="addr") for s in SERVICES])

    def routing_addresses(self) -> dict[str, str]:
        return {s: "addr" for s in self.routed}


@pytest.fixture
def update(tmp_path: Path, monkeypatch):
    def make(polls_until_healthy: dict[str, int | None], yaml_extra: str = "") -> tuple[FakeEngine, RollingUpdate]:
        engine = FakeEngine(polls_until_healthy)
        engine.config = parse_config(f"name: demo\nbackend:\n  replicas: 3\n  drain_seconds: 0\n{yaml_extra}",
                                     tmp_path)
        engine.progress = lambda msg: engine.event("progress", msg)
        monkeypatch.setattr("scaleout.targets.runner.docker_client",
                            lambda **_: SimpleNamespace(containers=engine.containers_api))
        return engine, RollingUpdate(engine, "final nginx.conf", 'REPLICAS="backend-1 backend-2 backend-3"\n', 60)

    return make


def _kinds(log: list[tuple], *kinds: str) -> list[tuple]:
    return [e for e in log if e[0] in kinds]


def test_one_compose_call_then_one_swap_per_replica_and_never_fewer_routed(update):
    engine, upd = update({"demo-backend-1-2": 3, "demo-backend-2-2": 0, "demo-backend-3-2": 12})
    upd.run(SERVICES)
    log = engine.log
    compose = _kinds(log, "compose")
    assert len(compose) == 1 and "--scale" in compose[0] and "backend-3=2" in compose[0]
    first_start = log.index(("start", "demo-backend-1-2"))
    # before any new container runs, nginx names every old one by its container name
    assert log.index(("routes", "demo-backend-1-1", "demo-backend-2-1", "demo-backend-3-1")) < first_start
    # one reload per replica swaps the new container for the old one, in order, each new one started just
    # before (max surge 1: never two new containers running unrouted)
    assert _kinds(log, "routes", "start") == [
        ("routes", "demo-backend-1-1", "demo-backend-2-1", "demo-backend-3-1"),
        ("start", "demo-backend-1-2"),
        ("routes", "demo-backend-1-2", "demo-backend-2-1", "demo-backend-3-1"),
        ("start", "demo-backend-2-2"),
        ("routes", "demo-backend-1-2", "demo-backend-2-2", "demo-backend-3-1"),
        ("start", "demo-backend-3-2"),
        ("routes", "demo-backend-1-2", "demo-backend-2-2", "demo-backend-3-2"),
        ("routes", "backend-1", "backend-2", "backend-3"),  # the rendered file again, once all are replaced
    ]
    # every old container stopped (after it left the balancer: FakeContainer.stop checks) and removed
    assert sorted(engine.containers) == ["demo-backend-1-2", "demo-backend-2-2", "demo-backend-3-2"]
    assert sorted(e[1] for e in _kinds(log, "remove")) == ["demo-backend-1-1", "demo-backend-2-1", "demo-backend-3-1"]
    assert log.index(("remove", "demo-backend-3-1")) < log.index(("routes", "backend-1", "backend-2", "backend-3"))
    assert upd.draining == [] and sorted(upd.replaced) == SERVICES
    # right after a start (this fake boots in no time) the balancer polls every 0.1 s
    assert engine.polls == [0.1] * (4 + 1 + 13)


def test_a_new_version_that_exits_stops_the_update_and_leaves_no_new_container_behind(update):
    engine, upd = update({"demo-backend-1-2": 1, "demo-backend-2-2": None, "demo-backend-3-2": 0})
    with pytest.raises(UnhealthyError) as err:
        upd.run(SERVICES)
    assert "the new container of backend-2 (demo-backend-2-2) exited" in str(err.value)
    assert "demo-backend-2-2: booting" in str(err.value)  # its last log lines
    # backend-1 was replaced; backend-2 and -3 keep their old containers; the new ones are gone,
    # the one created for backend-3 never started
    assert sorted(engine.containers) == ["demo-backend-1-2", "demo-backend-2-1", "demo-backend-3-1"]
    assert ("start", "demo-backend-3-2") not in engine.log
    assert engine.routed == ["backend-1", "backend-2", "backend-3"]  # back to the rendered configuration


def test_parallelism_two_swaps_two_replicas_in_one_reload(update):
    engine, upd = update({"demo-backend-1-2": 1, "demo-backend-2-2": 0, "demo-backend-3-2": 0},
                         "  update:\n    parallelism: 2\n    max_surge: 2\n")
    upd.run(SERVICES)
    assert _kinds(engine.log, "routes", "start")[1:5] == [
        ("start", "demo-backend-1-2"),
        ("start", "demo-backend-2-2"),
        ("routes", "demo-backend-1-2", "demo-backend-2-2", "demo-backend-3-1"),
        ("start", "demo-backend-3-2"),
    ]


def test_new_containers_created_ahead_by_prepare_roll_out_the_same_way(update):
    engine, upd = update({"demo-backend-1-2": 0, "demo-backend-2-2": 2, "demo-backend-3-2": 0})
    upd.prepare(SERVICES)  # `up` creates them while it still reloads and checks the balancer
    upd.creating.result()
    assert [e[0] for e in engine.log] == ["compose"]  # created, none started, nginx not told yet
    upd.run(SERVICES)
    assert len(_kinds(engine.log, "compose")) == 1  # run waited for prepare's call: no second one
    assert _kinds(engine.log, "routes", "start")[:2] == [
        ("routes", "demo-backend-1-1", "demo-backend-2-1", "demo-backend-3-1"),
        ("start", "demo-backend-1-2"),
    ]
    assert sorted(engine.containers) == ["demo-backend-1-2", "demo-backend-2-2", "demo-backend-3-2"]


def test_an_up_that_fails_after_prepare_leaves_no_new_container(update):
    engine, upd = update({})
    upd.prepare(SERVICES)
    upd.abandon()  # e.g. the new nginx configuration failed `nginx -t` in the running balancer
    assert sorted(engine.containers) == ["demo-backend-1-1", "demo-backend-2-1", "demo-backend-3-1"]
    assert not _kinds(engine.log, "start", "routes")
