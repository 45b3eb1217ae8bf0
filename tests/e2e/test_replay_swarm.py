"""`scaleout replay` on the Swarm target, on a real single-node swarm (one stack for the module: Swarm is slow
here): two backend tasks running tests/apps/replay/app.py behind the Swarm balancer. Each step is pinned to a
task through the balancer's published port (the pin header names the task's container, which the engine's DNS
resolves inside the stack's network); the session bug is found with its step and depends_on, the stateless
control passes, and without this stack's secret (or naming another task than a backend's) the pin header
pins nothing."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from tests.e2e.test_swarm import swarm, swarm_project  # noqa: F401  (fixtures)
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e

APP = ROOT / "tests" / "apps" / "replay"


def test_replay_on_swarm_finds_the_session_and_passes_the_control(swarm_project):  # noqa: F811
    p = swarm_project()
    shutil.copy(APP / "app.py", p.path / "backend" / "app.py")
    for f in ("session.http", "ok.http"):
        shutil.copy(APP / f, p.path / f)
    r = p.cli("up", "--target", "swarm", "--replicas", "2", timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    secret_file = p.path / ".scaleout" / "replay-secret"
    assert secret_file.stat().st_mode & 0o077 == 0
    assert (p.path / ".scaleout" / "swarm" / "nginx.conf").stat().st_mode & 0o077 == 0  # it holds the secret

    r = p.cli("replay", "session.http", "--json", timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["replicas"] == ["backend-1", "backend-2"]
    assert [(f["step"], f["depends_on"], f["kind"]) for f in out["findings"]] == [(2, 1, "session")]
    assert sorted(out["findings"][0]["replicas"]) == ["backend-1", "backend-2"]
    runs = out["steps"][0]["runs"]
    assert runs["pinned backend-1"]["replica"] == "backend-1" and runs["pinned backend-2"]["status"] == 200

    r = p.cli("replay", "ok.http", "--json", "--parallel", "2", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["findings"] == []

    # the pin header with this stack's secret names a task's container; any other secret pins nothing
    secret = secret_file.read_text().strip()
    status = json.loads(p.cli("status", "--json", check=True).stdout)
    task = next(s["container"] for s in status["replicas"] if s["service"] == "backend-1")
    balancer = status["balancer"]["container"]  # a task of this stack, but not of its backend
    with httpx.Client() as c:
        def hosts(pin: str) -> set[str]:
            return {c.get(f"{p.url}/ok/x", headers={"X-Scaleout-Pin": pin}).json()["host"] for _ in range(20)}

        assert hosts(f"{secret}:{task}") == {"backend-1"}
        assert hosts(f"{'0' * 64}:{task}") == {"backend-1", "backend-2"}  # balanced as before
        assert hosts(f"{secret}:{balancer}") == {"backend-1", "backend-2"}  # only backend tasks can be pinned
    r = p.cli("down", timeout=120)
    assert r.returncode == 0 and not secret_file.exists()  # rotated: the next `up` makes a new secret
