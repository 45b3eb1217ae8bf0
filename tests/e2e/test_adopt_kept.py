"""`init --from` keeps `${VAR}` references for the values scaleout reads from `.env` (port, replicas, health
path): the scaleout.yaml it writes holds no `.env` value, and `up` resolves them from the same `.env`, so the
adopted stack runs as Compose would have run it. On a real engine, with the flask-redis fixture."""

from __future__ import annotations

import json
import re
import shutil
import uuid

import pytest
import yaml

from tests.e2e.test_adopt import FIXTURES, _remove_volumes, get, service_images  # noqa: F401 - a fixture
from tests.helpers import free_port, remove_project, run_cli

pytestmark = pytest.mark.e2e

SECRET = "tok-k3pt-0ut-0f-the-file"


def test_adopted_references_resolve_from_dotenv_at_up(tmp_path, images, service_images):  # noqa: F811
    name = f"hsafe3{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    shutil.copytree(FIXTURES / "flask-redis", root)
    compose = root / "docker-compose.yml"
    text = compose.read_text().replace('"8000:5000"', '"8000:${APP_PORT}"')
    text = text.replace("http://localhost:5000/health", "http://localhost:${APP_PORT}/${HEALTH}")
    text = text.replace("      - FLASK_DEBUG\n", "      - FLASK_DEBUG\n      - API_TOKEN=${API_TOKEN}\n")
    text = text.replace("    deploy:\n", "    deploy:\n      replicas: ${REPLICAS}\n")
    compose.write_text(text)
    with open(root / ".env", "a") as fh:
        fh.write(f"APP_PORT=5000\nHEALTH=health\nREPLICAS=2\nAPI_TOKEN={SECRET}\n")
    env = dict(images)
    r = run_cli(["init", "--from", "docker-compose.yml", "--service", "web", "--name", name], root, env)
    assert r.returncode == 0, r.stderr
    written = (root / "scaleout.yaml").read_text()
    assert SECRET not in written, written
    data = yaml.safe_load(written)
    assert data["backend"]["port"] == "${APP_PORT}" and data["backend"]["replicas"] == "${REPLICAS}"
    assert data["backend"]["health"]["path"] == "/${HEALTH}"
    assert "note: backend.port: ${APP_PORT}: kept as written" in r.stdout + r.stderr
    port = free_port()
    data["balancer"] = {"port": port}
    (root / "scaleout.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        r = run_cli(["up", "--timeout", "300"], root, env, timeout=900)
        assert r.returncode == 0, f"up:\n{r.stdout}\n{r.stderr}"
        r = run_cli(["status", "--json"], root, env, timeout=120)
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        assert len(status["replicas"]) == 2, status  # ${REPLICAS} from .env
        hosts = {re.search(r"served by (\S+)", get(f"http://127.0.0.1:{port}/"))[1] for _ in range(8)}
        assert len(hosts) == 2, hosts  # both replicas healthy on ${APP_PORT}, gated by /${HEALTH}
        for generated in (root / ".scaleout").rglob("*"):
            if generated.is_file() and generated.stat().st_mode & 0o044:
                assert SECRET not in generated.read_text(errors="replace"), generated  # no 0644 file holds it
    finally:
        run_cli(["down", "--volumes"], root, env, timeout=300)
        remove_project(name)
        _remove_volumes(name)
