"""Shared fixtures. e2e tests need a real Docker engine and browser tests Chromium: a missing one is a
failure, never a skip, on a developer machine as in CI. A quick run without them is asked for explicitly
(SCALEOUT_TESTS=fast, or `scripts/test.sh --fast`): it leaves those tests out and says how many."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.helpers import (
    LOCAL_IMAGE,
    Project,
    engine_available,
    free_port,
    remove_project,
    run_cli,
    unavailable,
)

FAST = os.environ.get("SCALEOUT_TESTS", "") == "fast"
NEEDS_ENGINE = ("docker_engine", "images", "make_project", "nginx_checker")
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


@pytest.fixture(scope="session")
def nginx_checker(docker_engine, images):
    """nginx -t for rendered configs (see tests/helpers/nginx_check.py)."""
    from tests.helpers.nginx_check import NginxChecker

    checker = NginxChecker(docker_engine, images["SCALEOUT_LB_IMAGE"])
    yield checker
    checker.close()
