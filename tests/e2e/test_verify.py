"""On Docker: a balancer that does not route what `up` asked for makes `up` fail (targets/verify.py), and
replicas that run but that the balancer does not route make `probe` fail naming them (the probe rule
unrouted_replica). The balancer is made wrong behind scaleout's back:
 - a replica cut off from the balancer: disconnected from the project network, it still passes its own
   (in-container) health check, so the engine calls it healthy while the balancer's watcher marks it down;
 - a reload that does not take: the balancer's pid file names a process that ignores SIGHUP, so
   `nginx -s reload` succeeds and nginx keeps its old configuration."""

from __future__ import annotations

import json

import docker
import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

FAST = {
    "    interval: 2        # seconds": "    interval: 1        # seconds",
    "    start_period: 10   # seconds": "    start_period: 6    # seconds",
}


def _containers(p, service: str):
    return docker.from_env().containers.list(filters={"label": [f"com.docker.compose.project={p.name}",
                                                                f"com.docker.compose.service={service}"]})


def _lb(p):
    found = _containers(p, "lb")
    assert len(found) == 1, found
    return found[0]


def _sh(container, script: str) -> str:
    code, out = container.exec_run(["sh", "-c", script])
    assert code == 0, out
    return out.decode()


def _probe(p) -> tuple[int, dict]:
    r = p.cli("probe", "--json", "--no-cache-check", "--requests", "300")
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r.returncode, json.loads(r.stdout)


def test_up_and_probe_fail_when_the_balancer_does_not_route_what_up_asked_for(make_project):
    p = make_project(replace=FAST)
    p.cli("up", "--replicas", "3", check=True)

    # backend-2 cut off from the balancer: the engine says healthy, the balancer routes it no more
    (cut,) = _containers(p, "backend-2")
    docker.from_env().networks.get(f"{p.name}_default").disconnect(cut)
    r = p.cli("up", "--replicas", "3", "--no-build")
    assert r.returncode == 5, r.stdout + r.stderr
    assert "not routed (no traffic): backend-2" in r.stderr, r.stderr
    code, res = _probe(p)
    assert code == 1 and "unrouted_replica" in res["failed_rules"], res
    assert any("backend-2" in reason and "does not route" in reason for reason in res["reasons"]), res["reasons"]
    assert sorted(b["name"] for b in res["backends"]) == ["backend-1", "backend-3"]

    # a new backend-2: `up` starts it, the balancer routes it, and every replica serves
    cut.remove(force=True)
    p.cli("up", "--replicas", "3", "--no-build", check=True)
    code, res = _probe(p)
    assert code == 0, res["reasons"]
    assert sorted(b["name"] for b in res["backends"]) == ["backend-1", "backend-2", "backend-3"]

    # `nginx -s reload` that does not take: `up` fails
    lb = _lb(p)
    _sh(lb, "cp /tmp/nginx.pid /tmp/nginx.pid.real")
    # the decoy inherits the ignored SIGHUP (an ignored signal stays ignored across exec)
    lb.exec_run(["sh", "-c", "trap '' HUP; sleep 600 & echo $! >/tmp/decoy.pid; wait"], detach=True)
    wait_for(lambda: lb.exec_run(["test", "-s", "/tmp/decoy.pid"])[0] == 0, timeout=10, what="the decoy")
    _sh(lb, "cp /tmp/decoy.pid /tmp/nginx.pid")
    r = p.cli("up", "--replicas", "2", "--no-build")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "did not switch to configuration" in r.stderr, r.stderr
    _sh(lb, "kill $(cat /tmp/nginx.pid); mv /tmp/nginx.pid.real /tmp/nginx.pid")
    p.cli("up", "--replicas", "2", "--no-build", check=True)
    code, res = _probe(p)
    assert code == 0 and sorted(b["name"] for b in res["backends"]) == ["backend-1", "backend-2"], res
