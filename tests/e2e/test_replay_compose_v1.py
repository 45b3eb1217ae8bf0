"""`scaleout replay` with the other Compose CLI, docker-compose v1 (SCALEOUT_COMPOSE forces it, as in
tests/e2e/test_podman.py; the rest of the replay e2e tests use the default, `docker compose` v2): one stack of
two replicas running tests/apps/replay/app.py, its session bug found with its step and depends_on and its
stateless control passing. The whole matrix runs once, with the default CLI."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from tests.helpers import ROOT, Project, free_port, remove_project, run_cli

pytestmark = pytest.mark.e2e

APP = ROOT / "tests" / "apps" / "replay"


def test_replay_with_docker_compose_v1(tmp_path, images, docker_engine):
    name = f"replayv1{uuid.uuid4().hex[:8]}"
    env = {**images, "SCALEOUT_COMPOSE": "docker-compose"}
    port = free_port()
    run_cli(["init", str(tmp_path / name), "--name", name], tmp_path, env, check=True)
    p = Project(tmp_path / name, name, port, env)
    cfg = p.path / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("port: 8080", f"port: {port}"))
    shutil.copy(APP / "app.py", p.path / "backend" / "app.py")
    for f in ("session.http", "ok.http"):
        shutil.copy(APP / f, p.path / f)
    try:
        p.cli("up", "--replicas", "2", check=True, timeout=600)
        made_by = {c.labels.get("com.docker.compose.version") for c in docker_engine.containers.list(
            filters={"label": f"com.docker.compose.project={name}"})}
        assert made_by and all(v and v.startswith("1.") for v in made_by), made_by  # v1 made the stack

        r = p.cli("replay", "session.http", "--json", timeout=180)
        assert r.returncode == 1, r.stdout + r.stderr
        out = json.loads(r.stdout)
        assert out["replicas"] == ["backend-1", "backend-2"]
        assert [(f["step"], f["depends_on"], f["kind"]) for f in out["findings"]] == [(2, 1, "session")]

        r = p.cli("replay", "ok.http", "--json", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["findings"] == []
    finally:
        p.cli("down", timeout=180)
        remove_project(name)
