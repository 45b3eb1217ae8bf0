"""`scaleout watch` through the real CLI on a real engine: a saved change reaches every replica, an
ignored path triggers nothing, a failed build leaves the running version serving and watching goes on,
and Ctrl-C stops watching with the stack left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.test_rolling import FAST, assert_all_serve, containers, replicas, served, write_app
from tests.helpers import ROOT, wait_for

pytestmark = pytest.mark.e2e


class WatchProcess:
    """`python -m scaleout watch` in the background, its stderr collected in a file."""

    def __init__(self, p) -> None:
        self.log = p.path.parent / f"{p.name}-watch.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), **p.env}
        # started as a shell's background job is (SIGINT ignored): Ctrl-C must still stop it
        self.proc = subprocess.Popen(["sh", "-c", 'trap "" INT; exec "$0" -m scaleout watch', sys.executable],
                                     cwd=p.path, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("w"))

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def count(self, needle: str) -> int:
        return self.text.count(needle)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def _serves_everywhere(p, version: str) -> bool:
    reps = replicas(p)
    if len(reps) != 3 or not all(r["routed"] for r in reps.values()):
        return False
    seen = served(p, 30)
    return set(seen) == {r["address"] for r in reps.values()} and all(v == {version} for v in seen.values())


def test_watch_rolls_out_saved_changes_ignores_ignored_paths_and_stops_on_ctrl_c(make_project):
    p = make_project(replace=FAST)
    backend = p.path / "backend"
    original = (backend / "app.py").read_text()
    write_app(p, original, "v1")
    p.cli("up", "--replicas", "3", check=True)

    w = WatchProcess(p)
    try:
        wait_for(lambda: "watching" in w.text, timeout=30, what="scaleout watch to start")
        time.sleep(0.5)

        write_app(p, original, "v2")
        wait_for(lambda: _serves_everywhere(p, "v2"), timeout=180, interval=1.0,
                 what=f"every replica serving v2; watch said:\n{w.text}")
        wait_for(lambda: w.count("rolled out in") == 1, timeout=30, what="the round to finish")
        before = containers(p)

        # .dockerignore of the scaffolded backend: __pycache__/ and *.pyc never reach the build
        (backend / "__pycache__").mkdir(exist_ok=True)
        (backend / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
        (backend / "notes.pyc").write_bytes(b"\0")
        time.sleep(4.0)  # well past the debounce
        assert w.count("changed:") == 1, w.text
        assert containers(p) == before

        # a build that fails: reported, v2 keeps serving, and the next save is picked up again
        dockerfile = backend / "Dockerfile"
        good = dockerfile.read_text()
        dockerfile.write_text(good + "RUN echo 'build broken on purpose' && exit 3\n")
        wait_for(lambda: "the running version keeps serving" in w.text, timeout=120, what=f"the failure\n{w.text}")
        assert "error: building the backend image failed" in w.text, w.text
        assert_all_serve(p, "v2")
        assert containers(p) == before
        dockerfile.write_text(good)
        wait_for(lambda: w.count("rolled out in") == 2, timeout=120, what=f"the next round\n{w.text}")
        assert w.proc.poll() is None, w.text
    finally:
        code = w.stop()

    assert code == 0, w.text
    assert "stopped watching; the stack keeps running" in w.text
    reps = replicas(p)
    assert len(reps) == 3 and all(r["state"] == "running" and r["routed"] for r in reps.values()), reps
    assert containers(p) == before  # the same containers: restoring the Dockerfile rebuilt the same image
