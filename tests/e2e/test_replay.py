"""`scaleout replay` on a real Compose stack of two replicas running tests/apps/replay/app.py: each state bug
is found with the right step and depends_on, the stateless control passes, and the pin route needs the secret."""

from __future__ import annotations

import json
import shutil
import uuid

import httpx
import pytest

from tests.helpers import ROOT, Project, free_port, remove_project, run_cli

pytestmark = pytest.mark.e2e

APP = ROOT / "tests" / "apps" / "replay"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, images):
    base = tmp_path_factory.mktemp("replay")
    name = f"replay{uuid.uuid4().hex[:8]}"
    path = base / name
    port = free_port()
    run_cli(["init", str(path), "--name", name], base, images, check=True)
    cfg = path / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("port: 8080", f"port: {port}"))
    shutil.copy(APP / "app.py", path / "backend" / "app.py")
    for f in APP.glob("*.http"):
        shutil.copy(f, path / f.name)
    p = Project(path, name, port, dict(images))
    try:
        p.cli("up", "--replicas", "2", check=True, timeout=600)
        yield p
    finally:
        p.cli("down")
        remove_project(name)


@pytest.mark.parametrize("flow,step,depends_on,kind", [
    ("session.http", 2, 1, "session"),
    ("disk.http", 3, 2, "local-disk"),
    ("key.http", 2, 1, "session"),
    ("csrf.http", 2, 1, "token"),
])
def test_each_bug_is_found_with_its_step(stack, flow, step, depends_on, kind):
    r = stack.cli("replay", flow, "--json", timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["schema"] == "scaleout.replay/1" and out["verdict"] == "fail"
    assert [(f["step"], f["depends_on"], f["kind"]) for f in out["findings"]] == [(step, depends_on, kind)]


def test_stateless_control_passes_every_time(stack):
    for _ in range(2):
        r = stack.cli("replay", "ok.http", "--json", "--parallel", "2", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        out = json.loads(r.stdout)
        assert out["verdict"] == "pass" and out["findings"] == []
        assert [s["index"] for s in out["steps"]] == [1, 2, 3]


def test_pin_route_needs_the_secret(stack):
    secret = (stack.path / ".scaleout" / "replay-secret").read_text().strip()
    assert (stack.path / ".scaleout" / "replay-secret").stat().st_mode & 0o077 == 0
    with httpx.Client() as c:
        pinned = {c.get(f"{stack.url}/ok/x", headers={"X-Scaleout-Pin": f"{secret}:backend-1"}).json()["host"]
                  for _ in range(6)}
        wrong = {c.get(f"{stack.url}/ok/x", headers={"X-Scaleout-Pin": f"{'0' * 64}:backend-1"}).json()["host"]
                 for _ in range(6)}
    assert len(pinned) == 1
    assert len(wrong) == 2  # round robin over both replicas: the wrong secret pins nothing


def test_a_third_replica_takes_part(stack):
    """Rescaled to 3: every replica is pinned and compared (the pin map follows the rescale)."""
    stack.cli("up", "--replicas", "3", check=True, timeout=600)
    r = stack.cli("replay", "session.http", "--json", timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["replicas"] == ["backend-1", "backend-2", "backend-3"], r.stderr
    assert {"pinned backend-3", "mixed, offset 2"} <= set(out["steps"][0]["runs"])
    assert [(f["step"], f["depends_on"], f["kind"]) for f in out["findings"]] == [(2, 1, "session")]
    r = stack.cli("replay", "ok.http", "--json", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
