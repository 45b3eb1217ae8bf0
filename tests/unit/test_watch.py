"""Watch mode without an engine: .dockerignore semantics (as `docker build` applies them), the change
filter, and the loop on a real folder with real file notifications (debounce, ignored paths, a failing
round that does not stop watching)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from scaleout.errors import BuildError
from scaleout.watch import ContextFilter, DockerIgnore, watch_backend
from tests.helpers import wait_for

IGNORE = """
# comments and blank lines are skipped

__pycache__/
*.pyc
**/*.log
/build
docs/**
!docs/keep.md
data/[0-9]*.csv
node_modules
"""


@pytest.mark.parametrize("path, ignored", [
    ("__pycache__/app.cpython-311.pyc", True),  # a folder pattern leaves out everything below it
    ("app.pyc", True),
    ("pkg/app.pyc", False),  # `*` does not cross a folder: Docker matches *.pyc at the top only
    ("pkg/deep/x.log", True),  # `**/` crosses any number of folders, none included
    ("x.log", True),
    ("build/out.bin", True),  # a leading slash means the context's top, as without it
    ("docs/a.md", True),
    ("docs/keep.md", False),  # a later `!` line brings it back
    ("data/1.csv", True),
    ("data/a.csv", False),
    ("node_modules/express/index.js", True),
    ("app.py", False),
    ("Dockerfile", False),
])
def test_dockerignore_semantics(path, ignored):
    assert DockerIgnore(IGNORE).ignored(path) is ignored


def test_the_last_matching_line_wins():
    assert DockerIgnore("*.md\n!README.md\n").ignored("README.md") is False
    assert DockerIgnore("!README.md\n*.md\n").ignored("README.md") is True


def test_filter_keeps_scaleouts_own_output_and_the_outside_out(tmp_path):
    (tmp_path / ".dockerignore").write_text("*\n!app.py\n")
    flt = ContextFilter(tmp_path, "Dockerfile")
    assert flt(None, str(tmp_path / "app.py"))
    assert not flt(None, str(tmp_path / "notes.txt"))
    assert flt(None, str(tmp_path / "Dockerfile"))  # docker build reads it whatever .dockerignore says
    assert flt(None, str(tmp_path / ".dockerignore"))
    assert not flt(None, str(tmp_path / ".scaleout" / "docker-compose.yml"))
    assert not flt(None, str(tmp_path.parent / "elsewhere.py"))


def test_a_changed_dockerignore_is_read_again(tmp_path):
    (tmp_path / ".dockerignore").write_text("")
    flt = ContextFilter(tmp_path, "Dockerfile")
    assert flt(None, str(tmp_path / "a.tmp"))
    (tmp_path / ".dockerignore").write_text("*.tmp\n")
    assert flt(None, str(tmp_path / ".dockerignore"))
    assert not flt(None, str(tmp_path / "a.tmp"))


class Loop:
    """watch_backend on a folder in a thread, recording each deploy and every message."""

    def __init__(self, folder: Path, fail_first: bool = False) -> None:
        self.folder = folder
        self.deploys: list[float] = []
        self.lines: list[str] = []
        self.fail_first = fail_first
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.rounds: int | None = None

    def _deploy(self) -> None:
        self.deploys.append(time.monotonic())
        if self.fail_first and len(self.deploys) == 1:
            raise BuildError("building the backend image failed (exit 1)")

    def _run(self) -> None:
        self.rounds = watch_backend(self.folder, "Dockerfile", self._deploy, progress=self.lines.append,
                                    message=self.lines.append, debounce_ms=1500, step_ms=300, stop_event=self.stop)

    def __enter__(self) -> Loop:
        self.thread.start()
        wait_for(lambda: any("watching" in line for line in self.lines), timeout=10, what="the watcher to start")
        time.sleep(0.3)  # the OS watch is registered right after the first message
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def _backend(tmp_path: Path) -> Path:
    folder = tmp_path / "backend"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM scratch\n")
    (folder / "app.py").write_text("v = 1\n")
    (folder / ".dockerignore").write_text("__pycache__/\n*.pyc\n")
    return folder


def test_a_burst_of_saves_is_one_rebuild_and_ignored_paths_none(tmp_path):
    folder = _backend(tmp_path)
    with Loop(folder) as loop:
        for i in range(5):  # an editor saving several files, and one file twice
            (folder / f"mod{i % 3}.py").write_text(f"v = {i}\n")
            time.sleep(0.05)
        wait_for(lambda: loop.deploys, timeout=10, what="a rebuild")
        time.sleep(2.0)  # longer than the debounce: a second round would have started
        assert len(loop.deploys) == 1, loop.lines
        assert any("changed: mod0.py, mod1.py, mod2.py" in line for line in loop.lines), loop.lines

        (folder / "__pycache__").mkdir()
        (folder / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
        (folder / "app.pyc").write_bytes(b"\0")
        time.sleep(2.0)
        assert len(loop.deploys) == 1, loop.lines
    assert loop.rounds == 1


def test_a_failed_round_is_reported_and_watching_goes_on(tmp_path):
    folder = _backend(tmp_path)
    with Loop(folder, fail_first=True) as loop:
        (folder / "app.py").write_text("v = 2\n")
        wait_for(lambda: loop.deploys, timeout=10, what="the first rebuild")
        wait_for(lambda: any("keeps serving" in line for line in loop.lines), timeout=5, what="the failure message")
        assert any(line.startswith("error: building the backend image failed") for line in loop.lines)
        (folder / "app.py").write_text("v = 3\n")
        wait_for(lambda: len(loop.deploys) == 2, timeout=10, what="the second rebuild")
        wait_for(lambda: any("rolled out" in line for line in loop.lines), timeout=5, what="the success message")
