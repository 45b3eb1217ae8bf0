"""scaleout's own readiness requests (after `up`, a rescale and a rolling update) go to the backend's
health path, never to the app's pages: the scaffolded app logs every request it serves, and those logs
hold no request other than the health path (a page-view counter would count nothing)."""

from __future__ import annotations

import re

import docker
import pytest

pytestmark = pytest.mark.e2e

HEALTH = "/scaleout-ready-check"
REQUEST = re.compile(r'"([A-Z]+) (\S+) HTTP/1\.[01]"')


def requests_seen(project: str) -> dict[str, list[str]]:
    """backend container name -> the request paths its app logged."""
    client = docker.from_env()
    out = {}
    for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
        if c.labels.get("com.docker.compose.service", "").startswith("backend-"):
            out[c.name] = [m.group(2) for m in REQUEST.finditer(c.logs().decode(errors="replace"))]
    return out


def assert_only_health(p, step: str, replicas: int) -> None:
    seen = requests_seen(p.name)
    assert len(seen) == replicas, (step, seen)
    other = {name: sorted(set(paths) - {HEALTH}) for name, paths in seen.items() if set(paths) - {HEALTH}}
    assert not other, f"after {step} the app saw requests other than {HEALTH}: {other}"
    assert all(HEALTH in paths for paths in seen.values()), (step, seen)  # the log is read, and it is there


def test_up_rescale_and_rolling_update_visit_only_the_health_path(make_project):
    p = make_project(replace={"    path: /healthz": f"    path: {HEALTH}", "  replicas: 3\n": "  replicas: 1\n",
                              "    interval: 2        # seconds": "    interval: 1        # seconds"})
    app = p.path / "backend" / "app.py"
    text = app.read_text()
    assert 'if path == "/healthz":' in text
    app.write_text(text.replace('if path == "/healthz":', f'if path == "{HEALTH}":'))

    r = p.cli("up", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_only_health(p, "up", 1)

    r = p.cli("up", "-q", "--replicas", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_only_health(p, "the rescale", 2)

    app.write_text(app.read_text().replace('"X-Backend-Id", HOSTNAME)', '"X-Backend-Id", HOSTNAME + "")'))
    r = p.cli("up", "--replicas", "2")  # a new image: a rolling update of both replicas
    assert r.returncode == 0, r.stdout + r.stderr
    assert "starting the new version" in r.stderr, r.stderr
    assert_only_health(p, "the rolling update", 2)
