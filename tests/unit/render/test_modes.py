"""Generated files that may hold environment values are readable by their owner only (0600), whatever the
umask: the Compose file and the Swarm stack file scaleout writes under .scaleout/ (also when an earlier
version left them 0644), and every file of an export (its ledger of names and checksums aside)."""

from __future__ import annotations

import os
import stat

import pytest

from scaleout.config.load import load_config
from scaleout.files import write_plan
from scaleout.layout import COMPOSE_FILE, SWARM_DIR, SWARM_STACK_FILE
from scaleout.render import plan_for
from scaleout.scaffold import init_project
from tests.helpers import run_cli


@pytest.fixture
def project(tmp_path):
    old = os.umask(0o022)
    init_project(tmp_path / "p", "python", name="p")
    cfg = tmp_path / "p" / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace('    CPU_WORK_MS: "0"', '    CPU_WORK_MS: "0"\n    TOKEN: "${TOKEN}"'))
    (tmp_path / "p" / ".env").write_text("TOKEN=s3cret\n")
    yield tmp_path / "p"
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_render_writes_the_compose_file_0600_and_fixes_an_older_0644(project):
    r = run_cli(["render"], project, timeout=60)
    assert r.returncode == 0, r.stderr
    compose = project / COMPOSE_FILE
    assert _mode(compose) == 0o600
    nginx_conf = project / ".scaleout" / "nginx" / "nginx.conf"
    # render writes what up would (replay's pin route, keyed by the stack's secret, is in it): its owner's only
    assert "http_x_scaleout_pin" in nginx_conf.read_text() and _mode(nginx_conf) == 0o600
    os.chmod(compose, 0o644)  # as an earlier version wrote it
    r = run_cli(["render"], project, timeout=60)
    assert r.returncode == 0 and _mode(compose) == 0o600, r.stderr


def test_the_swarm_stack_file_is_0600(project):
    cfg = load_config(project)
    write_plan(project.resolve(), plan_for("swarm", cfg))
    assert _mode(project / SWARM_DIR / SWARM_STACK_FILE) == 0o600


@pytest.mark.parametrize("kind", ["swarm", "k8s"])
def test_every_exported_file_is_0600(project, kind):
    extra = ["--image", "registry.example.test/p:1"] if kind == "k8s" else []
    r = run_cli(["export", kind, "--out", "out", *extra], project, timeout=60)
    assert r.returncode == 0, r.stderr
    # the export's ledger holds names and checksums only
    files = [p for p in (project / "out").rglob("*") if p.is_file() and p.name != ".scaleout-export.json"]
    assert files and {p.relative_to(project / "out").as_posix(): _mode(p) for p in files if _mode(p) != 0o600} == {}
