"""`scaleout replay` and a stale in-process cache, on a real Compose stack: the data lives in the `redis` service
both replicas share (python-redis template, tests/apps/replay_cache/app.py); reads through an in-process cache
go stale when the other replica writes -> a finding naming the read step and the write step, kind `cache`.
The same flow without the cache passes."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from tests.e2e.test_services import REDIS_IMAGE
from tests.helpers import ROOT, Project, free_port, remove_project, run_cli

pytestmark = pytest.mark.e2e

APP = ROOT / "tests" / "apps" / "replay_cache"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, images, docker_engine):
    try:
        docker_engine.images.get(REDIS_IMAGE)
    except Exception:  # noqa: BLE001
        pytest.fail(f"image {REDIS_IMAGE} is missing: run scripts/setup-service-images.sh")
    base = tmp_path_factory.mktemp("replay-cache")
    name = f"rcache{uuid.uuid4().hex[:8]}"
    path = base / name
    port = free_port()
    run_cli(["init", str(path), "--template", "python-redis", "--name", name], base, images, check=True)
    cfg = path / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("port: 8080", f"port: {port}"))
    shutil.copy(APP / "app.py", path / "backend" / "app.py")
    for f in APP.glob("*.http"):
        shutil.copy(f, path / f.name)
    p = Project(path, name, port, {**images, "REDIS_IMAGE": REDIS_IMAGE})
    try:
        p.cli("up", "--replicas", "2", check=True, timeout=600)
        yield p
    finally:
        p.cli("down", "--volumes")
        remove_project(name)


def test_stale_cache_names_the_read_and_the_write(stack):
    r = stack.cli("replay", "cached.http", "--json", timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert [(f["step"], f["depends_on"], f["kind"]) for f in out["findings"]] == [(3, 2, "cache")]
    finding = out["findings"][0]
    assert set(finding["replicas"]) == {"backend-1", "backend-2"} and "in-process cache" in finding["fix"]


def test_same_flow_without_the_cache_passes(stack):
    r = stack.cli("replay", "direct.http", "--json", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["findings"] == []
