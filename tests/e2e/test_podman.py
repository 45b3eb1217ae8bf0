"""The daily loop on Podman's Docker-compatible API (rootful Podman 4.3 from Debian, its API service started
by scripts/setup-podman.sh), beside Docker, with both Compose CLIs: init, a build, `up` health-gated with no
health-check helper running (Podman runs no HEALTHCHECK by itself without systemd: scaleout runs them),
services with and without a health check, probe, rescale 3->5->2 under load with no failed request and the
balancer proven to route exactly the replicas asked for, a rolling update, stop/start, exec, logs, status
naming the engine, down. A focused subset of the Docker e2e tests (a few minutes); a missing Podman fails
these tests, never skips them."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid

import pytest

from tests.helpers import LOCAL_IMAGE, ROOT, free_port, run_cli, unavailable
from tests.helpers.lbload import HeyLoad

pytestmark = pytest.mark.e2e

PODMAN_HOST = os.environ.get("SCALEOUT_PODMAN_HOST") or "unix:///run/podman/podman.sock"
FAST = {
    "    interval: 2        # seconds": "    interval: 1        # seconds",
    "    start_period: 10   # seconds": "    start_period: 6    # seconds",
}
SERVICES = (
    "services:\n"
    "  cache:\n"  # no health check: Podman reports an empty Health.Status for it
    f"    image: {LOCAL_IMAGE}\n"
    "    command: [\"sleep\", \"600\"]\n"
    "  db:\n"  # a health check that only passes once the service is ready, and nothing runs it but scaleout
    f"    image: {LOCAL_IMAGE}\n"
    "    command: [\"sh\", \"-c\", \"sleep 1; touch /tmp/ready; sleep 600\"]\n"
    "    healthcheck: {test: [\"CMD\", \"test\", \"-f\", \"/tmp/ready\"], interval: 30s, timeout: 5s, retries: 3,"
    " start_period: 20s}\n\n"
    "balancer:\n  # Published"
)


def _podman_client():
    """A Docker SDK client on Podman's API with the stand-in image, or why there is none."""
    import docker

    try:
        client = docker.DockerClient(base_url=PODMAN_HOST, timeout=60)
        version = client.version()
    except Exception as exc:  # noqa: BLE001
        return None, f"no Podman API answers at {PODMAN_HOST} ({exc})"
    if not any(c.get("Name") == "Podman Engine" for c in version.get("Components") or []):
        return None, f"{PODMAN_HOST} is not Podman's API (it says {version.get('Components')})"
    try:
        client.images.get(LOCAL_IMAGE)
    except Exception:  # noqa: BLE001
        return None, f"image {LOCAL_IMAGE} is not in Podman's storage"
    return client, ""


@pytest.fixture(scope="session")
def podman():
    """A Docker SDK client on Podman's API. When none answers, the test setup makes one: scripts/setup-podman.sh
    (idempotent: installs Podman, writes its containers.conf, starts its API service, copies the images);
    a Podman that still does not work fails the tests. Docker, beside it, must still answer afterwards."""
    client, why = _podman_client()
    if client is None and not os.environ.get("SCALEOUT_PODMAN_HOST"):
        setup = subprocess.run(["bash", str(ROOT / "scripts" / "setup-podman.sh")], capture_output=True, text=True,
                               timeout=900)
        client, why = _podman_client()
        if client is None:
            why += f"; scripts/setup-podman.sh exited {setup.returncode}:\n{setup.stderr[-2000:]}"
    if client is None:
        unavailable(why)
    yield client
    docker_info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                 text=True, timeout=60)
    assert docker_info.returncode == 0, f"Docker stopped answering beside Podman: {docker_info.stderr}"


def remove_project(client, project: str) -> None:
    label = f"com.docker.compose.project={project}"
    for c in client.containers.list(all=True, filters={"label": label}):
        with contextlib.suppress(Exception):
            c.remove(force=True)
    for n in client.networks.list(filters={"label": label}):
        with contextlib.suppress(Exception):
            n.remove()
    for image in client.images.list():
        for tag in image.tags:
            if f"scaleout/{project}-" in tag:
                with contextlib.suppress(Exception):
                    client.images.remove(tag)


class PodmanProject:
    def __init__(self, path, name, port, env):
        self.path, self.name, self.port, self.env = path, name, port, env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = False, timeout: float = 300):
        return run_cli(list(args), self.path, self.env, timeout=timeout, check=check)


@pytest.fixture
def podman_project(tmp_path, podman):
    made: list[PodmanProject] = []

    def factory(compose: str, replace: dict[str, str] | None = None) -> PodmanProject:
        name = f"podman{uuid.uuid4().hex[:8]}"
        env = {"DOCKER_HOST": PODMAN_HOST, "SCALEOUT_COMPOSE": compose, "SCALEOUT_LB_IMAGE": LOCAL_IMAGE,
               "SCALEOUT_BASE_IMAGE": LOCAL_IMAGE}
        r = run_cli(["init", str(tmp_path / name), "--template", "python", "--name", name], tmp_path, env)
        assert r.returncode == 0, r.stderr
        p = PodmanProject(tmp_path / name, name, free_port(), env)
        cfg = p.path / "scaleout.yaml"
        text = cfg.read_text().replace("port: 8080", f"port: {p.port}")
        for old, new in {**FAST, **(replace or {})}.items():
            assert old in text, old
            text = text.replace(old, new)
        cfg.write_text(text)
        made.append(p)
        return p

    yield factory
    for p in made:
        remove_project(podman, p.name)


def served(p, n: int = 300) -> dict[str, int]:
    """Replica -> requests it served in a probe that must pass."""
    r = p.cli("probe", "-n", str(n), "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    return {b["name"]: b["count"] for b in out["backends"]}


def status(p) -> dict:
    return json.loads(p.cli("status", "--json", check=True).stdout)


def test_main_loop_on_podman(podman_project, podman, monkeypatch):
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)  # scaleout itself must choose classic builds
    p = podman_project("docker compose", {"balancer:\n  # Published": SERVICES})

    # up, health-gated: nothing runs the health checks but scaleout (without it `up` exits 5 at its timeout)
    r = p.cli("up", "--replicas", "3", "--timeout", "90")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "db is healthy" in r.stderr and "cache is running (no health check)" in r.stderr
    st = status(p)
    assert st["engine"]["name"] == "Podman Engine" and st["engine"]["version"]
    assert {s["service"]: s["health"] for s in st["services"]} == {"cache": "none", "db": "healthy"}
    assert [(s["service"], s["health"], s["routed"]) for s in st["replicas"]] == [
        (f"backend-{i}", "healthy", True) for i in (1, 2, 3)]
    assert "on Podman Engine" in p.cli("status", check=True).stdout
    assert set(served(p)) == {"backend-1", "backend-2", "backend-3"}

    # rescale 3 -> 5 -> 2 under load: no failed request; the probe sees every replica asked for serve
    with HeyLoad(p.url + "/", concurrency=4) as load:
        time.sleep(1)
        up5 = p.cli("up", "--replicas", "5")
        assert up5.returncode == 0, up5.stdout + up5.stderr
        assert set(served(p)) == {f"backend-{i}" for i in range(1, 6)}
        up2 = p.cli("up", "--replicas", "2")
        assert up2.returncode == 0, up2.stdout + up2.stderr
        time.sleep(1)
    res = load.result
    assert res is not None and res.responses >= 200, res.text if res else "no hey report"
    assert set(res.status_codes) == {200} and res.errors == {}, res.text
    assert set(served(p)) == {"backend-1", "backend-2"}

    # a code change: a rolling update, health-gated on Podman too
    _code_change(p)
    with HeyLoad(p.url + "/", concurrency=4) as load:
        time.sleep(1)
        r = p.cli("up", "--timeout", "90")
        assert r.returncode == 0, r.stdout + r.stderr
        time.sleep(1)
    assert "replaced" in r.stderr, r.stderr
    res = load.result
    lb_log = p.cli("logs", "--tail", "60", "lb").stdout
    assert res is not None and set(res.status_codes) == {200} and res.errors == {}, (res.text if res else "") + lb_log
    assert "is down" not in lb_log, lb_log  # no replica, old or new, left the balancer during the update
    out = run_cli(["exec", "backend-1", "--", "sh", "-c", "curl -s -D - -o /dev/null localhost:8000/"], p.path, p.env)
    assert out.returncode == 0 and "X-App-Version: 2" in out.stdout, out.stdout + out.stderr

    # stop and start a replica: the balancer routes around it and back
    assert p.cli("stop", "backend-2").returncode == 0
    assert p.cli("start", "backend-2", "--timeout", "60").returncode == 0
    assert set(served(p)) == {"backend-1", "backend-2", "backend-3"}  # scaleout.yaml's 3, since the update
    logs = p.cli("logs", "--tail", "5", "db")
    assert logs.returncode == 0, logs.stderr

    r = p.cli("down")
    assert r.returncode == 0, r.stderr
    assert podman.containers.list(all=True, filters={"label": f"com.docker.compose.project={p.name}"}) == []


def _code_change(p) -> None:
    app = p.path / "backend" / "app.py"
    app.write_text(app.read_text().replace('        self.send_header("X-Backend-Id", HOSTNAME)\n',
                                           '        self.send_header("X-Backend-Id", HOSTNAME)\n'
                                           '        self.send_header("X-App-Version", "2")\n'))


def test_compose_v1_on_podman(podman_project, podman, monkeypatch):
    """docker-compose v1 (Debian 12's 1.29): build, services with and without a health check, a rescale under
    load, a rolling update, a restart of two replicas under load, down."""
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    p = podman_project("docker-compose", {"balancer:\n  # Published": SERVICES})
    r = p.cli("up", "--replicas", "2", "--timeout", "90")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "db is healthy" in r.stderr and "cache is running (no health check)" in r.stderr
    assert set(served(p)) == {"backend-1", "backend-2"}
    with HeyLoad(p.url + "/", concurrency=4) as load:
        time.sleep(1)
        up3 = p.cli("up", "--replicas", "3")
        assert up3.returncode == 0, up3.stdout + up3.stderr
        _code_change(p)
        roll = p.cli("up", "--replicas", "3", "--timeout", "90")
        assert roll.returncode == 0, roll.stdout + roll.stderr
        time.sleep(1)
    res = load.result
    assert res is not None and set(res.status_codes) == {200} and res.errors == {}, res.text if res else ""
    assert "replaced" in roll.stderr, roll.stderr
    assert set(served(p)) == {"backend-1", "backend-2", "backend-3"}
    out = run_cli(["exec", "backend-3", "--", "sh", "-c", "curl -s -D - -o /dev/null localhost:8000/"], p.path, p.env)
    assert out.returncode == 0 and "X-App-Version: 2" in out.stdout, out.stdout + out.stderr
    # restart, one replica at a time behind the balancer: healthy and routed again before it returns
    with HeyLoad(p.url + "/", concurrency=2) as load:
        time.sleep(1)
        r = p.cli("restart", "backend-1", "backend-2", "--timeout", "60")
        assert r.returncode == 0, r.stdout + r.stderr
    res = load.result
    assert res is not None and set(res.status_codes) == {200} and res.errors == {}, res.text if res else ""
    assert [(s["service"], s["routed"]) for s in status(p)["replicas"]] == [(f"backend-{i}", True) for i in (1, 2, 3)]
    assert p.cli("down").returncode == 0
    assert podman.containers.list(all=True, filters={"label": f"com.docker.compose.project={p.name}"}) == []
