"""`scaleout top` on the Swarm target, on a real single-node swarm: the record is read from the balancer
task's container, the replicas are the backend service's tasks, and the counts are what an independent
client sent, and ROUTED is what the balancer's DNS resolves the backend's tasks to: yes for the healthy
tasks, NO for one that runs but has not passed its health check yet. The swarm fixtures (shared with
test_swarm_e2e) init a swarm only when none is active, and never leave it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.e2e.test_swarm import swarm, swarm_project  # noqa: F401  (fixtures)
from tests.e2e.test_top import _send
from tests.helpers import ROOT, wait_for

pytestmark = pytest.mark.e2e


# the third task stays `starting` until the test creates /tmp/ready in it (start_period: a failing check does
# not count yet); `$$` is a literal `$`, so the shell in the container reads its own SCALEOUT_REPLICA
HOLD_THIRD = {
    "    path: /healthz\n": "    path: /healthz\n    command: test \"$$SCALEOUT_REPLICA\" != 3 || test -e /tmp/ready\n",
    "start_period: 10": "start_period: 120",
}


def _resolved(client, project: str) -> list[str]:
    """What each balancer container of the stack resolves the backend's tasks to (for a failure's message)."""
    lbs = client.containers.list(filters={"label": f"com.docker.swarm.service.name={project}_lb"})
    return [c.exec_run(["getent", "hosts", "tasks.backend"]).output.decode() for c in lbs]


def test_top_on_swarm_counts_each_task_replica_and_shows_what_the_balancer_routes(swarm_project, swarm):  # noqa: F811
    p = swarm_project(replace=HOLD_THIRD)
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

    assert [x["routed"] for x in f["replicas"]] == [True, True]

    # a rescale: backend-3 runs, not yet healthy, so Swarm's DNS does not list it and the balancer sends it nothing
    up = subprocess.Popen([sys.executable, "-m", "scaleout", "up", "--target", "swarm", "--replicas", "3"],
                          cwd=p.path, env={**os.environ, **p.env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    try:
        def held() -> dict | None:
            f = once()
            rows = {x["name"]: x for x in f["replicas"]}
            third = rows.get("backend-3")
            return f if third and third["state"] == "starting" and third["address"] else None

        wait_for(held, timeout=120, interval=1, what="backend-3 starting in top on swarm")
        # Swarm's DNS follows the tasks within a moment (seen once: a frame in which it did not yet)
        want = [("backend-1", True), ("backend-2", True), ("backend-3", False)]
        for _ in range(20):
            f = held()
            if f and [(x["name"], x["routed"]) for x in f["replicas"]] == want:
                break
            time.sleep(1)
        else:
            raise AssertionError(([(x["name"], x["state"], x["address"], x["routed"]) for x in f["replicas"]]
                                  if f else None, _resolved(swarm, p.name)))
        r = p.cli("top", "--once")
        assert r.returncode == 0, r.stdout + r.stderr
        rows = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line.startswith("backend-")}
        assert [rows[n][3] for n in ("backend-1", "backend-2", "backend-3")] == ["yes", "yes", "NO"], r.stdout

        backend = swarm.containers.list(filters={"label": f"com.docker.swarm.service.name={p.name}_backend"})
        [third] = [c for c in backend
                   if c.labels.get("com.docker.swarm.task.name", "").startswith(f"{p.name}_backend.3.")]
        assert third.exec_run(["touch", "/tmp/ready"]).exit_code == 0
        out, _ = up.communicate(timeout=300)
        assert up.returncode == 0, out
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    wait_for(lambda: [(x["name"], x["routed"]) for x in once()["replicas"]] == [
        ("backend-1", True), ("backend-2", True), ("backend-3", True)], timeout=60, interval=1,
        what="backend-3 routed in top on swarm")
