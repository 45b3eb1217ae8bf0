"""The contract between the rendered files and the balancer's health watcher (templates/nginx/lb.sh).
No engine needed; tests/test_e2e_lb.py runs the watcher for real."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scaleout.config.load import parse_config
from scaleout.layout import COMPOSE_FILE, LB_CONF_MOUNT, LB_SCRIPT, NGINX_CONF, WATCH_ENV
from scaleout.render.compose import render


def _files(tmp_path: Path, text: str) -> dict[str, str]:
    (tmp_path / "backend").mkdir(exist_ok=True)
    (tmp_path / "public").mkdir(exist_ok=True)
    return render(parse_config(text, tmp_path, env={}))


def test_watcher_settings_name_every_replica(tmp_path):
    files = _files(tmp_path, "name: demo\nbackend:\n  replicas: 4\n  port: 3000\n"
                             "  health: {path: /ready, timeout: 3}\n")
    env = dict(line.split("=", 1) for line in files[WATCH_ENV].splitlines() if not line.startswith("#"))
    assert env["REPLICAS"] == '"backend-1 backend-2 backend-3 backend-4"'
    assert env["PORT"] == "3000" and env["HEALTH_PATH"] == "/ready" and env["TIMEOUT"] == "3"


def test_upstream_block_is_what_the_watcher_rewrites(tmp_path):
    """lb.sh rewrites the `server NAME:PORT params;` lines inside `upstream backend {`: keep that shape."""
    files = _files(tmp_path, "name: demo\nbackend:\n  replicas: 3\n  weights: {backend-1: 3}\n  backup: [backend-3]\n")
    conf = files[NGINX_CONF]
    block = re.search(r"upstream backend \{\n(.*?)\n    \}", conf, re.S)
    assert block, conf
    servers = [line.strip() for line in block.group(1).splitlines() if line.strip().startswith("server ")]
    assert servers == [
        "server backend-1:8000 weight=3 max_fails=2 fail_timeout=5s;",
        "server backend-2:8000 max_fails=2 fail_timeout=5s;",
        "server backend-3:8000 max_fails=2 fail_timeout=5s backup;",
    ]


def test_balancer_runs_the_watcher_and_stops_gracefully(tmp_path):
    files = _files(tmp_path, "name: demo\n")
    lb = yaml.safe_load(files[COMPOSE_FILE])["services"]["lb"]
    assert lb["command"] == ["sh", f"{LB_CONF_MOUNT}/lb.sh"]
    assert lb["stop_signal"] == "SIGQUIT"
    assert "depends_on" not in lb  # rescaling must never change (and so recreate) the balancer
    assert files[LB_SCRIPT].startswith("#!/bin/sh\n")


@pytest.mark.parametrize("shell", ["dash", "bash"])  # Debian's /bin/sh (as in the nginx image), and bash
def test_watcher_script_parses_in_posix_shells(tmp_path, shell):
    exe = shutil.which(shell)
    assert exe, f"{shell} is not installed"
    script = tmp_path / "lb.sh"
    script.write_text(_files(tmp_path, "name: demo\n")[LB_SCRIPT])
    r = subprocess.run([exe, "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
