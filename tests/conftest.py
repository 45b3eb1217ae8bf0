"""Shared fixtures. e2e tests need a real Docker engine and browser tests Chromium: a missing one is a
failure, never a skip, on a developer machine as in CI. A quick run without them is asked for explicitly
(SCALEOUT_TESTS=fast, or `scripts/test.sh --fast`): it leaves those tests out and says how many."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCAL_IMAGE = os.environ.get("SCALEOUT_LOCAL_IMAGE", "scaleout-local/bookworm:1")


FAST = os.environ.get("SCALEOUT_TESTS", "") == "fast"
NEEDS_ENGINE = ("docker_engine", "images", "make_project", "nginx_checker")
MISSING_HINT = " (for a quick run without it: SCALEOUT_TESTS=fast, or scripts/test.sh --fast)"
_LEFT_OUT = pytest.StashKey[int]()


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden from the examples.")


def pytest_collection_modifyitems(config, items):
    """SCALEOUT_TESTS=fast: leave out every test that needs the engine or the browser, and count them."""
    if not FAST:
        return
    slow = [i for i in items if i.get_closest_marker("e2e") or i.get_closest_marker("browser")
            or any(f in getattr(i, "fixturenames", ()) for f in NEEDS_ENGINE)]
    if slow:
        items[:] = [i for i in items if i not in slow]
        config.hook.pytest_deselected(items=slow)
    config.stash[_LEFT_OUT] = len(slow)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if FAST:
        n = config.stash.get(_LEFT_OUT, 0)
        terminalreporter.write_line(f"SCALEOUT_TESTS=fast: left out {n} e2e/browser test(s) that need a Docker engine "
                                    "or Chromium; run without SCALEOUT_TESTS=fast for the full suite", yellow=True)


def unavailable(msg: str) -> None:
    """A missing engine or browser fails the test: a skipped e2e test proves nothing."""
    pytest.fail(msg + MISSING_HINT, pytrace=False)


def engine_available() -> bool:
    if not shutil.which("docker"):
        return False
    r = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return r.returncode == 0


@pytest.fixture(scope="session")
def docker_engine():
    """The real engine; without one the test fails."""
    if not engine_available():
        unavailable("no Docker engine answers: run scripts/setup-docker.sh")
    import docker

    return docker.from_env()


@pytest.fixture(scope="session")
def images(docker_engine) -> dict[str, str]:
    """Environment that points scaleout at locally available images."""
    env = {}
    for var in ("SCALEOUT_LB_IMAGE", "SCALEOUT_BASE_IMAGE"):
        env[var] = os.environ.get(var) or LOCAL_IMAGE
    for image in set(env.values()):
        try:
            docker_engine.images.get(image)
        except Exception:  # noqa: BLE001
            pytest.fail(f"image {image} is missing: run scripts/setup-docker.sh")
    return env


def free_port() -> int:
    """A port free on 127.0.0.1 now, below Linux's ephemeral range (32768-60999): a port the kernel hands
    out (port 0) can be taken by any outgoing connection before the balancer binds it."""
    import random

    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000 on 127.0.0.1")


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, check: bool = False):
    """Run the real `scaleout` CLI (python -m scaleout) and return the CompletedProcess."""
    # this checkout's package, whatever is installed (several worktrees may share one machine)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    r = subprocess.run([sys.executable, "-m", "scaleout", *args], cwd=cwd, env=full_env, capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"scaleout {' '.join(args)} exited {r.returncode}\n"
                             f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    return r


def remove_project(project: str) -> None:
    """Remove every container and network labelled with the Compose project (cleanup by label)."""
    import docker

    client = docker.from_env()
    for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
        with contextlib.suppress(Exception):
            c.remove(force=True)
    for n in client.networks.list(filters={"label": f"com.docker.compose.project={project}"}):
        with contextlib.suppress(Exception):
            n.remove()
    # the images scaleout built for it (scaleout/PROJECT-backend, -balancer on Swarm): no disk creep
    # the low-level list: images.list() inspects every image, and one removed meanwhile by another
    # project's cleanup on the shared engine would fail this one's teardown (404)
    for image in client.api.images():
        tags = image.get("RepoTags") or []
        if any(tag.startswith(f"scaleout/{project}-") for tag in tags):
            for tag in tags:
                with contextlib.suppress(Exception):
                    client.images.remove(tag, noprune=False)


class Project:
    """A scaffolded project in a temp folder with a unique name and a free port."""

    def __init__(self, path: Path, name: str, port: int, env: dict[str, str]):
        self.path, self.name, self.port, self.env = path, name, port, env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = False, timeout: float = 300):
        return run_cli(list(args), self.path, self.env, timeout=timeout, check=check)


@pytest.fixture
def make_project(tmp_path, images):
    """Factory: make_project(template="python", config_extra="") -> Project; removed afterwards by label."""
    made: list[Project] = []

    def factory(template: str = "python", replace: dict[str, str] | None = None) -> Project:
        name = f"t{uuid.uuid4().hex[:10]}"
        path = tmp_path / name
        port = free_port()
        r = run_cli(["init", str(path), "--template", template, "--name", name], tmp_path, images)
        assert r.returncode == 0, r.stderr
        cfg = path / "scaleout.yaml"
        text = cfg.read_text().replace("port: 8080", f"port: {port}")
        for old, new in (replace or {}).items():
            assert old in text, f"{old!r} not in scaleout.yaml"
            text = text.replace(old, new)
        cfg.write_text(text)
        p = Project(path, name, port, dict(images))
        made.append(p)
        return p

    yield factory
    for p in made:
        remove_project(p.name)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.25, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def nginx_checker(docker_engine, images):
    """nginx -t for rendered configs (see tests/nginx_check.py)."""
    from tests.nginx_check import NginxChecker

    checker = NginxChecker(docker_engine, images["SCALEOUT_LB_IMAGE"])
    yield checker
    checker.close()
