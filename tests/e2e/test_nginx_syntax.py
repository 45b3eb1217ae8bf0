"""The rendered nginx config passes `nginx -t` in Debian's nginx 1.22 (the stand-in balancer image)."""

from __future__ import annotations

import pytest

from tests.unit.render.test_golden import GOLDEN, example_names

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("example", example_names())
def test_golden_nginx_conf_passes_nginx_t(nginx_checker, example):
    ok, out = nginx_checker.check((GOLDEN / example / "nginx" / "nginx.conf").read_text())
    assert ok, out
    assert "syntax is ok" in out


def test_a_broken_config_fails_nginx_t(nginx_checker):
    text = (GOLDEN / "python-demo" / "nginx" / "nginx.conf").read_text().replace("keepalive 32;", "keepalive 32")
    ok, out = nginx_checker.check(text)
    assert not ok and "emerg" in out


@pytest.mark.parametrize("cli", [("docker", "compose"), ("docker-compose",)], ids=["v2", "v1"])
@pytest.mark.parametrize("example", example_names())
def test_golden_compose_file_passes_compose_config(docker_engine, example, cli, tmp_path):
    """`docker compose config` (v2) and `docker-compose config` (v1) accept the rendered file."""
    import shutil
    import subprocess

    from tests.unit.render.test_golden import EXAMPLES

    project = tmp_path / example
    shutil.copytree(EXAMPLES / example, project)
    shutil.copytree(GOLDEN / example, project / ".scaleout")
    r = subprocess.run([*cli, "-p", example, "-f", str(project / ".scaleout" / "docker-compose.yml"), "config", "-q"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
