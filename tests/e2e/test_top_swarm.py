"""`scaleout top` on the Swarm target, on a real single-node swarm: the record is read from the balancer
task's container, the replicas are the backend service's tasks, and the counts are what an independent
client sent. The swarm fixtures (shared with test_swarm_e2e) init a swarm only when none is active, and
never leave it."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_swarm import swarm, swarm_project  # noqa: F401  (fixtures)
from tests.e2e.test_top import _send
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def test_top_on_swarm_counts_each_task_replica(swarm_project):  # noqa: F811
    p = swarm_project()
    r = p.cli("up", "--target", "swarm", "--replicas", "2", timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr

    def once() -> dict:
        r = p.cli("top", "--once", "--json", "--window", "600")
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    def totals(f: dict) -> dict[str, int]:
        return {x["address"]: x["requests"] for x in f["replicas"]}

    # both tasks running and healthy before counting; `up`'s own requests written by nginx (1 s buffer)
    wait_for(lambda: [(x["name"], x["state"], x["health"]) for x in once()["replicas"]] == [
        ("backend-1", "running", "healthy"), ("backend-2", "running", "healthy")], timeout=60, interval=1,
        what="two healthy backend tasks in top")
    before = once()
    assert before["schema"] == "scaleout.top/1" and all(x["address"] for x in before["replicas"])
    n = 30
    sent = _send(p.url, n)
    assert len(sent) == 2, sent  # both tasks answered

    def counted():
        f = once()
        return f if sum(totals(f).values()) - sum(totals(before).values()) >= n else None

    f = wait_for(counted, timeout=30, interval=0.5, what=f"{n} requests in top on swarm")
    now, was = totals(f), totals(before)
    assert {a: now[a] - was.get(a, 0) for a in now} == dict(sent)  # per task, exactly; so the sum is n
    assert {x["name"] for x in f["replicas"]} == {"backend-1", "backend-2"}
    assert any(x["path"] == "/api/whoami" and x["replica"] in ("backend-1", "backend-2") for x in f["recent"])

    r = p.cli("up", "--target", "swarm", "--replicas", "3", timeout=400)  # a rescale: a task appears
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: [x["name"] for x in once()["replicas"]] == ["backend-1", "backend-2", "backend-3"],
             timeout=60, interval=1, what="backend-3 in top on swarm")
