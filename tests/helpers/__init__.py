"""What the tests share besides fixtures (those are in tests/conftest.py): paths, the real CLI in a
subprocess, scaffolded projects and their cleanup by label, polling, free ports; and, beside this
module, fakes and load helpers (cachefake, lbload, nginx_check, probe_testserver)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TESTS = ROOT / "tests"
LOCAL_IMAGE = os.environ.get("SCALEOUT_LOCAL_IMAGE", "scaleout-local/bookworm:1")

MISSING_HINT = " (for a quick run without it: SCALEOUT_TESTS=fast, or scripts/test.sh --fast)"


def unavailable(msg: str) -> None:
    """A missing engine or browser fails the test: a skipped e2e test proves nothing."""
    pytest.fail(msg + MISSING_HINT, pytrace=False)


def engine_available() -> bool:
    if not shutil.which("docker"):
        return False
    r = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return r.returncode == 0


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
