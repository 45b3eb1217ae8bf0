"""`up --target swarm` with services, engine-free: the wait for the backend's dependencies, fed with
recorded-shape task data, and the checks made before anything is deployed."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleout.config.load import parse_config
from scaleout.errors import PortInUseError, UnhealthyError, UsageError
from scaleout.targets import swarm as swarm_target
from scaleout.targets.swarm import SwarmStack
from scaleout.targets.views import TaskView

CONFIG = """
name: shop
backend: {replicas: 3, image: "registry.example.com/shop:1"}
services:
  redis: {image: "redis:7", healthcheck: {test: ["CMD", "redis-cli", "ping"]}}
"""


def task(tid: str, slot: int, state: str, desired: str = "running") -> TaskView:
    return TaskView({"ID": tid, "Slot": slot, "DesiredState": desired, "Status": {"State": state}})


class FakeService:
    def __init__(self, short: str) -> None:
        self.name = f"shop_{short}"
        self.short = short
        self.attrs: dict = {"UpdateStatus": {}}

    def reload(self) -> None:
        pass


class Scenario:
    """What Swarm shows on each pass of the wait: {service: [tasks]} per pass (the last one repeats)."""

    def __init__(self, passes: list[dict[str, list[TaskView]]]) -> None:
        self.passes, self.n = passes, -1

    def services(self) -> dict[str, FakeService]:
        self.n += 1
        return {short: FakeService(short) for short in self.current}

    @property
    def current(self) -> dict[str, list[TaskView]]:
        return self.passes[min(self.n, len(self.passes) - 1)]

    def tasks(self, service: FakeService, running_only: bool = True) -> list[TaskView]:
        tasks = self.current[service.short]
        return [t for t in tasks if t.desired_state == "running"] if running_only else tasks


@pytest.fixture
def stack(tmp_path: Path, monkeypatch):
    said: list[str] = []
    stack = SwarmStack(parse_config(CONFIG, tmp_path, env={}), progress=said.append)

    def use(scenario: Scenario) -> list[str]:
        monkeypatch.setattr(stack, "_services", scenario.services)
        monkeypatch.setattr(stack, "_tasks", scenario.tasks)
        monkeypatch.setattr(swarm_target.time, "sleep", lambda s: None)
        return said

    return stack, use


BACKEND_READY = [task("b4", 1, "running"), task("b5", 2, "running"), task("b6", 3, "running")]
# replicas that could not reach Redis yet: Swarm stopped them and started new ones
BACKEND_FAILED = [task(f"f{i}", i, "failed", desired="shutdown") for i in (1, 2, 3)]
LB = [task("l1", 1, "running")]


def test_the_backend_is_reported_ready_only_after_its_dependencies_and_early_failures_are_forgiven(stack):
    stack, use = stack
    said = use(Scenario([
        {"redis": [task("r1", 1, "starting")], "backend": BACKEND_FAILED + BACKEND_READY, "lb": LB},
        {"redis": [task("r1", 1, "starting")], "backend": BACKEND_FAILED + BACKEND_READY, "lb": LB},
        {"redis": [task("r1", 1, "running")], "backend": BACKEND_FAILED + BACKEND_READY, "lb": LB},
    ]))
    stack.wait_converged(30)
    ready = [line for line in said if line.endswith(" is ready")]
    assert sorted(ready) == ["backend-1 is ready", "backend-2 is ready", "backend-3 is ready", "lb is ready",
                             "redis is ready"]
    backend = [i for i, line in enumerate(ready) if line.startswith("backend-")]
    assert ready.index("redis is ready") < min(backend), said


def test_failures_after_the_dependencies_are_ready_stop_up(stack):
    stack, use = stack
    use(Scenario([{"redis": [task("r1", 1, "running")], "backend": BACKEND_FAILED, "lb": LB}]))
    with pytest.raises(UnhealthyError, match="3 new task\\(s\\) of backend stopped before becoming ready"):
        stack.wait_converged(30)


def test_a_dependency_that_keeps_failing_stops_up_with_its_name(stack):
    stack, use = stack
    failed = [task(f"r{i}", 1, "failed", desired="shutdown") for i in range(3)]
    use(Scenario([{"redis": failed, "backend": BACKEND_READY, "lb": LB}]))
    with pytest.raises(UnhealthyError, match="of redis stopped before becoming ready"):
        stack.wait_converged(30)


def test_status_names_the_services_beside_the_replicas(stack, monkeypatch):
    stack, use = stack
    use(Scenario([{"redis": [task("r1", 1, "running")], "backend": BACKEND_READY, "lb": LB}]))
    monkeypatch.setattr(stack, "_health", lambda t: "healthy")
    monkeypatch.setattr(stack, "_address", lambda t: None if t.slot == 3 else f"10.0.1.{t.slot}:8000")
    monkeypatch.setattr(stack, "_routed", lambda: {"10.0.1.1"})  # the balancer's DNS lists backend-1 only
    st = stack.status()
    assert [(s.service, s.role) for s in st.dependencies] == [("redis", "service")]
    assert [s.service for s in st.replicas] == ["backend-1", "backend-2", "backend-3"]
    assert [s.routed for s in st.replicas] == [True, False, None]  # no address: unknown
    assert st.balancer is not None and st.balancer.service == "lb"
    assert [s.routed for s in stack.status(routing=False).replicas] == [None, None, None]


class FakeClient:
    def __init__(self, nodes: int) -> None:
        self.nodes = type("Nodes", (), {"list": lambda _self: [object()] * nodes})()


def test_a_bind_mount_is_refused_on_a_swarm_of_several_nodes(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    text = CONFIG.replace('image: "redis:7",', 'image: "redis:7", volumes: ["./conf:/etc/redis"],')
    stack = SwarmStack(parse_config(text, tmp_path, env={}), registry="registry.example.com/team")
    monkeypatch.setattr(stack, "_client", lambda: FakeClient(3))
    monkeypatch.setattr(stack, "_services", lambda: {})
    with pytest.raises(UsageError, match="services.redis.volumes: ./conf") as err:
        stack.preflight()
    assert "exists only on the node" in str(err.value) and "named volume" in err.value.hint
    monkeypatch.setattr(stack, "_client", lambda: FakeClient(1))
    monkeypatch.setattr(swarm_target, "port_free", lambda ip, port: True)
    assert stack.preflight() == {}  # one node: the folder is there (up prints a note instead)


def test_a_service_port_in_use_is_refused_before_deploying(tmp_path, monkeypatch):
    text = CONFIG.replace('image: "redis:7",', 'image: "redis:7", ports: ["16379:6379"],')
    stack = SwarmStack(parse_config(text, tmp_path, env={}))
    monkeypatch.setattr(stack, "_client", lambda: FakeClient(1))
    monkeypatch.setattr(stack, "_services", lambda: {})
    monkeypatch.setattr(swarm_target, "port_free", lambda ip, port: port != 16379)
    with pytest.raises(PortInUseError, match="port 16379 \\(service redis\\)") as err:
        stack.preflight()
    assert "services.redis.ports" in err.value.hint
