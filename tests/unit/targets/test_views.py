"""The engine views read recorded `docker inspect` JSON (tests/fixtures/inspect/, taken from real
containers of Docker 20.10) without an engine."""

from __future__ import annotations

import json

import pytest

from scaleout.targets.views import ContainerView, PortBinding, TaskView
from tests.helpers import TESTS

FIXTURES = TESTS / "fixtures" / "inspect"


def view(name: str) -> ContainerView:
    return ContainerView(json.loads((FIXTURES / name).read_text()))


def test_a_healthy_replica():
    v = view("backend-healthy.json")
    assert v.service == "backend-1" and v.role == "backend"
    assert v.state == "running" and v.running and v.health == "healthy" and v.ready
    assert v.scaleout_project == v.compose_project and v.scaleout_project
    assert len(v.ip_addresses) == 1 and v.address(8000) == f"{v.ip_addresses[0]}:8000"
    assert v.name.endswith("backend-1-1") and not v.name.startswith("/")
    assert v.image_id.startswith("sha256:")


def test_the_balancer_publishes_on_loopback():
    v = view("balancer-running.json")
    assert v.role == "balancer" and v.service == "lb"
    [binding] = v.published(80)
    assert binding.host_ip == "127.0.0.1" and binding.host_port > 0
    assert v.url(80) == f"http://127.0.0.1:{binding.host_port}"
    assert v.published(443) == [] and v.url(443) is None


def test_an_unhealthy_replica_keeps_its_last_health_output():
    v = view("backend-unhealthy.json")
    assert v.running and v.health == "unhealthy" and not v.ready
    assert v.last_health_output == "nope"
    assert v.service == "backend-2" and v.role == "backend"


def _with_health_log(*probes: tuple[int, str]) -> ContainerView:
    attrs = json.loads((FIXTURES / "backend-unhealthy.json").read_text())
    attrs["State"]["Health"]["Log"] = [{"ExitCode": code, "Output": out} for code, out in probes]
    return ContainerView(attrs)


def test_checks_that_only_ran_out_of_time_are_told_from_checks_that_failed():
    timeout = (-1, "Health check exceeded timeout (2s)")
    assert _with_health_log((0, ""), timeout, timeout, timeout).health_checks_timed_out
    curl = (28, "curl: (28) Operation timed out after 2001 milliseconds with 0 bytes received")
    assert _with_health_log(timeout, curl, timeout).health_checks_timed_out
    assert not _with_health_log(timeout, (7, "curl: (7) Failed to connect: Connection refused")).health_checks_timed_out
    assert not _with_health_log(timeout, (1, "curl: (22) 500"), timeout).health_checks_timed_out
    assert not _with_health_log((0, "")).health_checks_timed_out
    assert not view("backend-unhealthy.json").health_checks_timed_out  # its check answered "nope"


def test_an_exited_container():
    v = view("exited.json")
    assert v.state == "exited" and not v.running and not v.ready
    assert v.exit_code == 3 and v.health == "none"
    assert v.address(8000) is None and v.ip_addresses == []
    assert v.service == "?" and v.scaleout_project == "demo" and v.compose_project is None


@pytest.mark.parametrize("attrs", [{}, {"State": None, "Config": None, "NetworkSettings": {"Networks": None}},
                                   {"State": "x", "NetworkSettings": {"Ports": {"80/tcp": [{"HostPort": "abc"}]}}}])
def test_missing_or_odd_fields_never_raise(attrs):
    v = ContainerView(attrs)
    assert v.state == "unknown" and v.health == "none" and v.ip_addresses == [] and v.published(80) == []
    assert v.labels == {} and v.role == "backend" and v.url() is None


def test_published_ipv6_and_wildcard_addresses_map_to_a_reachable_url():
    v = ContainerView({"NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}})
    assert v.published(80) == [PortBinding("0.0.0.0", 8080)] and v.url() == "http://127.0.0.1:8080"
    v6 = ContainerView({"NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}}})
    assert v6.url() == "http://[::1]:8080"


def test_a_swarm_task():
    task = TaskView({
        "ID": "t1", "Slot": 2, "DesiredState": "running",
        "Status": {"State": "running", "ContainerStatus": {"ContainerID": "c1"},
                   "PortStatus": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}},
        "Spec": {"ContainerSpec": {"Healthcheck": {"Test": ["CMD", "true"]}}},
        "NetworksAttachments": [{"Network": {"Spec": {"Name": "demo_default"}}, "Addresses": ["10.0.1.5/24"]}],
    })
    assert task.slot == 2 and task.state == "running" and task.desired_state == "running"
    assert task.container_id == "c1" and task.has_healthcheck
    assert task.address("demo_default", 8000) == "10.0.1.5:8000" and task.address("other", 8000) is None
    assert task.published_port(80) == 8080 and task.published_port(443) is None
    failed = TaskView({"Status": {"State": "failed", "Err": "task: non-zero exit (1)"}})
    assert failed.error == "task: non-zero exit (1)" and failed.container_id is None and failed.slot == 0
