"""The whole loop on a real engine: init -> up 3 -> probe -> up 5 -> probe -> down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import docker
import docker.errors
import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.e2e


def _containers(project: str) -> list:
    return docker.from_env().containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})


def _curl(url: str, n: int) -> tuple[Counter, Counter]:
    """n requests with curl, each on its own connection, independently of the probe:
    (X-Upstream-Addr -> count, outcome -> count), where an outcome is the HTTP status ("200"), or
    "curl exit N" for a request that got no answer, or "no X-Upstream-Addr"."""
    upstreams: Counter = Counter()
    outcomes: Counter = Counter()
    for _ in range(n):
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "10", url + "/"],
                           capture_output=True, text=True, timeout=15)
        if r.returncode != 0:
            outcomes[f"curl exit {r.returncode}"] += 1
            continue
        lines = r.stdout.splitlines()
        outcomes[lines[0].split()[1] if lines and lines[0].startswith("HTTP/") else "unparsable"] += 1
        found = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("x-upstream-addr:")]
        if len(found) == 1:
            upstreams[found[0]] += 1
        else:
            outcomes["no X-Upstream-Addr" if not found else "several X-Upstream-Addr"] += 1
    return upstreams, outcomes


@pytest.mark.parametrize("template, compose", [
    pytest.param("python", "docker compose", id="python-compose-v2", marks=pytest.mark.nginx_matrix),
    pytest.param("python", "docker-compose", id="python-compose-v1"),
    pytest.param("node", "docker compose", id="node-compose-v2"),
])
def test_whole_loop(make_project, template, compose):
    p = make_project(template)
    p.env["SCALEOUT_COMPOSE"] = compose
    r = p.cli("up", "--replicas", "3", check=True)
    # Compose v2 names containers PROJECT-SERVICE-1, v1 PROJECT_SERVICE_1: the CLI asked for ran
    sep = "-" if compose == "docker compose" else "_"
    assert {c.name for c in _containers(p.name)} >= {f"{p.name}{sep}backend-1{sep}1", f"{p.name}{sep}lb{sep}1"}
    assert f"http://127.0.0.1:{p.port}" in r.stdout
    assert "backend-3" in r.stdout

    r = p.cli("probe", "--json", "--requests", "600")
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["verdict"] == "pass"
    assert res["failed"] == 0 and res["ok"] == 600
    assert sorted(b["name"] for b in res["backends"]) == ["backend-1", "backend-2", "backend-3"]
    for b in res["backends"]:
        assert abs(b["share"] - 1 / 3) <= 0.10, b
    for key in ("requests", "rps", "duration_s"):
        assert key in res

    # a verdict that does not hold exits 1: judged as ip_hash, one client must not reach three replicas
    r = p.cli("probe", "--json", "--requests", "60", "--strategy", "ip_hash", "--no-cache-check")
    assert r.returncode == 1 and json.loads(r.stdout)["verdict"] == "fail"

    # each nginx worker keeps its own round-robin position, so separate connections spread roughly evenly
    seen, outcomes = _curl(p.url, 30)
    assert outcomes == Counter({"200": 30}), outcomes
    assert len(seen) == 3 and sum(seen.values()) == 30 and all(5 <= c <= 15 for c in seen.values()), seen

    lb_before = [c.id for c in _containers(p.name) if c.labels["com.docker.compose.service"] == "lb"]
    p.cli("up", "--replicas", "5", check=True)
    res = json.loads(p.cli("probe", "--json", "--requests", "1000", check=True).stdout)
    assert len(res["backends"]) == 5 and res["verdict"] == "pass"
    lb_after = [c.id for c in _containers(p.name) if c.labels["com.docker.compose.service"] == "lb"]
    assert lb_before == lb_after  # rescaling never recreates the balancer

    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert [r["service"] for r in st["replicas"]] == [f"backend-{i}" for i in range(1, 6)]
    assert all(r["health"] == "healthy" for r in st["replicas"])
    assert st["url"] == p.url

    p.cli("down", check=True)
    assert _containers(p.name) == []
    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert st["running"] is False


def test_probe_fails_when_stack_not_running(make_project):
    p = make_project()
    r = p.cli("probe")
    assert r.returncode == 7
    assert "not running" in r.stderr and "Traceback" not in r.stderr


def test_unhealthy_replica_reports_its_logs(make_project):
    p = make_project()
    app = p.path / "backend" / "app.py"
    app.write_text(app.read_text().replace('if path == "/healthz":', 'if path == "/healthz-never":'))
    r = p.cli("up", "--replicas", "1", "--timeout", "40")
    assert r.returncode == 5, r.stderr
    assert "backend-1" in r.stderr and "last log lines" in r.stderr and "404" in r.stderr
    assert "Traceback" not in r.stderr
    # the balancer's container, created while the replica booted, is not left behind unstarted
    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert st["balancer"] is None and [x["service"] for x in st["replicas"]] == ["backend-1"]
    p.cli("down", check=True)
    assert _containers(p.name) == []


def test_build_failure_is_reported(make_project):
    p = make_project()
    df = p.path / "backend" / "Dockerfile"
    df.write_text(df.read_text().replace("COPY app.py", "COPY does-not-exist.py"))
    r = p.cli("up", "--replicas", "1")
    assert r.returncode == 4, r.stderr
    assert "building the backend image failed" in r.stderr and "Traceback" not in r.stderr


def test_missing_engine_is_reported(make_project, tmp_path):
    p = make_project()
    env = {**p.env, "DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    from tests.helpers import run_cli

    r = run_cli(["up", "--replicas", "1"], p.path, env)
    assert r.returncode == 3, r.stderr
    assert "Docker engine" in r.stderr and "Traceback" not in r.stderr
    assert not (p.path / ".scaleout" / "docker-compose.yml").exists()


def test_cold_up_creates_the_balancer_while_replicas_boot_and_starts_it_once_all_are_healthy(make_project):
    """Compose's call for the balancer runs while the replicas boot, off the critical path; its container
    still starts only after every replica is healthy (read in that order: a balancer seen running with a
    replica read later as not healthy broke the rule)."""
    p = make_project()
    app = p.path / "backend" / "app.py"
    app.write_text(app.read_text().replace("def main():\n", "def main():\n    time.sleep(5)\n", 1))
    client = docker.from_env()
    labels = {"label": [f"com.docker.compose.project={p.name}"]}

    def by_role(role: str) -> list:
        return client.containers.list(all=True, filters={"label": [*labels["label"], f"io.scaleout.role={role}"]})

    env = {**os.environ, **p.env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "scaleout", "up", "--replicas", "2", "--timeout", "120"],
                            cwd=p.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []  # (balancer state, replica health states), the balancer read first
    try:
        while proc.poll() is None:
            try:
                lb = [c.status for c in by_role("balancer")]
                health = sorted(c.attrs["State"].get("Health", {}).get("Status", "none") for c in by_role("backend"))
            except docker.errors.NotFound:  # listed, then removed before its inspection: read again
                continue
            seen.append((lb[0] if lb else None, health))
            time.sleep(0.1)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lb = [c.status for c in by_role("balancer")]
    seen.append((lb[0] if lb else None, sorted(c.attrs["State"]["Health"]["Status"] for c in by_role("backend"))))
    states = [lb for lb, _ in seen]
    assert [h for lb, h in seen if lb == "running"], states
    assert all(h == ["healthy", "healthy"] for lb, h in seen if lb == "running"), seen
    assert "created" in states, states  # created while the replicas still booted
    upstreams, outcomes = _curl(p.url, 6)
    assert outcomes == Counter({"200": 6}) and len(upstreams) == 2, (upstreams, outcomes)
    p.cli("down", check=True)
