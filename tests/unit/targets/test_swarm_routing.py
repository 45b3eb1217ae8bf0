"""What the balancer routes on Swarm, from `getent hosts tasks.backend` inside its container."""

from __future__ import annotations

from scaleout.targets.status import ServiceStatus
from scaleout.targets.swarm_routing import mark_routed, parse_hosts, routed_addresses

# recorded in a balancer task's container (Debian's getent) with two healthy tasks of three
GETENT = b"10.0.1.5        tasks.backend\n10.0.1.7        tasks.backend\n"


def task(name: str, address: str | None, role: str = "backend") -> ServiceStatus:
    return ServiceStatus(name, f"p_backend.{name[-1]}.x", "running", "healthy", address, role)


def test_the_answer_lists_each_address_once():
    assert parse_hosts(0, GETENT) == {"10.0.1.5", "10.0.1.7"}
    assert parse_hosts(0, b"10.0.1.5 tasks.backend\n\n  \n") == {"10.0.1.5"}


def test_a_name_with_no_task_routes_nothing_and_a_failed_lookup_is_unknown():
    assert parse_hosts(2, b"") == set()  # getent: not found
    assert parse_hosts(127, b"sh: getent: not found") is None
    assert parse_hosts(1, b"") is None


def test_each_backend_task_is_routed_by_its_ip():
    services = [task("backend-1", "10.0.1.5:8000"), task("backend-2", "10.0.1.6:8000"),
                task("backend-3", "10.0.1.7:8000"), task("backend-4", None), task("db", "10.0.1.9:5432", "service")]
    mark_routed(services, parse_hosts(0, GETENT))
    assert [s.routed for s in services] == [True, False, True, None, None]
    mark_routed(services, None)
    assert [s.routed for s in services[:3]] == [None, None, None]
    mark_routed(services, set())
    assert [s.routed for s in services[:3]] == [False, False, False]


class FakeLb:
    def __init__(self, result=None, error: Exception | None = None):
        self.result, self.error, self.asked = result, error, []

    def exec_run(self, cmd):
        self.asked.append(cmd)
        if self.error is not None:
            raise self.error
        return self.result


def test_the_balancer_is_asked_for_the_name_nginx_resolves():
    import docker.errors

    from scaleout.render.swarm import SWARM_BACKEND_HOST

    lb = FakeLb((0, GETENT))
    assert routed_addresses(lb) == {"10.0.1.5", "10.0.1.7"}
    assert lb.asked == [["getent", "hosts", SWARM_BACKEND_HOST]] and SWARM_BACKEND_HOST == "tasks.backend"
    assert routed_addresses(FakeLb((0, None))) == set()
    assert routed_addresses(FakeLb(error=docker.errors.APIError("gone"))) is None
