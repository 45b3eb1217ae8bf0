"""Adopted Compose projects on a real engine: init --from, up, probe, and the app's own state shared by
the replicas (a Redis counter, a reachable PostgreSQL). Needs the services runtime (scaleout.yaml's
`services:`, `backend.env_file`, `backend.depends_on`, interpolation with the `.env` beside the file).

The fixtures name the official images (redis:7-alpine, postgres:16); no registry is reachable here, so
the local stand-ins (scripts/setup-service-images.sh) are tagged with those names. The tags stay: they
are aliases of local images, and another test may be using them at the same moment."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import urllib.request
import uuid

import pytest
import yaml

from tests.helpers import TESTS, free_port, remove_project, run_cli

pytestmark = pytest.mark.e2e

FIXTURES = TESTS / "fixtures" / "compose"
STAND_INS = {"redis:7-alpine": "scaleout-local/redis:1", "postgres:16": "scaleout-local/postgres:1"}


@pytest.fixture(scope="module")
def service_images(docker_engine):
    import docker

    for name, local in STAND_INS.items():
        try:
            image = docker_engine.images.get(local)
        except docker.errors.ImageNotFound:
            pytest.fail(f"image {local} is missing: run scripts/setup-service-images.sh")
        try:
            docker_engine.images.get(name)
        except docker.errors.ImageNotFound:
            repo, tag = name.rsplit(":", 1)
            image.tag(repo, tag)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - the test's own balancer on 127.0.0.1
        return r.read().decode()


def check_flask_redis(url: str) -> None:
    """Every replica counts in the one Redis: the counter only goes up, whichever replica answers."""
    seen = []
    for _ in range(12):
        m = re.match(r"Hello from the adopted flask-redis app: (\d+) visits \(served by (\S+)\)", get(url + "/"))
        assert m, "the greeting comes from web.env (env_file carried over)"
        seen.append((int(m.group(1)), m.group(2)))
    counts = [c for c, _ in seen]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert len({host for _, host in seen}) >= 2


def check_express_postgres(url: str) -> None:
    body = json.loads(get(url + "/"))
    assert body["db"] == "reachable"
    assert body["database"] == "app"  # ${POSTGRES_DB:-app} from the .env beside scaleout.yaml


CASES = [
    ("flask-redis", "docker-compose.yml", "web", 3, check_flask_redis),
    ("express-postgres", "compose.yaml", "backend", 2, check_express_postgres),
]


@pytest.mark.parametrize("fixture, compose, service, replicas, check", CASES, ids=[c[0] for c in CASES])
def test_adopted_project_runs_and_spreads(tmp_path, images, service_images, fixture, compose, service, replicas,
                                          check):
    name = f"t{uuid.uuid4().hex[:10]}"
    root = tmp_path / name
    shutil.copytree(FIXTURES / fixture, root)
    env = dict(images)
    r = run_cli(["init", "--from", compose, "--service", service, "--name", name], root, env)
    assert r.returncode == 0, r.stderr
    # a free port for the balancer, set the way a user would edit the file
    port = free_port()
    cfg = root / "scaleout.yaml"
    data = yaml.safe_load(cfg.read_text())
    assert data["backend"]["replicas"] == replicas
    data["balancer"] = {"port": port}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    url = f"http://127.0.0.1:{port}"
    try:
        r = run_cli(["up", "--timeout", "300"], root, env, timeout=900)
        assert r.returncode == 0, f"up:\n{r.stdout}\n{r.stderr}"
        r = run_cli(["probe", "-n", "300", "-c", "8", "--no-cache-check", "--json"], root, env, timeout=300)
        assert r.returncode == 0, f"probe:\n{r.stdout}\n{r.stderr}"
        result = json.loads(r.stdout)
        assert result["verdict"] == "pass" and result["failed"] == 0
        served = [b for b in result["backends"] if b["count"] > 0]
        assert len(served) == replicas, result["backends"]
        check(url)
    finally:
        run_cli(["down", "--volumes"], root, env, timeout=300)
        remove_project(name)
        _remove_volumes(name)


def _remove_volumes(project: str) -> None:
    import docker

    client = docker.from_env()
    for v in client.volumes.list(filters={"label": f"com.docker.compose.project={project}"}):
        with contextlib.suppress(Exception):
            v.remove(force=True)
