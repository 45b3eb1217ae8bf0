"""Bad environments: a taken port, a backend that exits, Ctrl-C in the middle of `up`. Each gives an
actionable message and a non-zero exit; `status` tells the truth afterwards and `down` cleans completely."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import docker
import pytest

from tests.helpers import LOCAL_IMAGE, ROOT, wait_for

pytestmark = pytest.mark.e2e


def _containers(project: str) -> list:
    # sparse: no inspect of each one, which races with a container removed meanwhile (404)
    return docker.from_env().containers.list(all=True, sparse=True,
                                             filters={"label": f"com.docker.compose.project={project}"})


def test_port_in_use_is_detected_before_building(make_project):
    p = make_project()
    with socket.socket() as s:
        s.bind(("127.0.0.1", p.port))
        s.listen(1)
        r = p.cli("up", "--replicas", "1")
    assert r.returncode == 6, r.stderr
    assert f"port {p.port}" in r.stderr and "already in use" in r.stderr and "--port" in r.stderr
    assert "building" not in r.stderr and "Traceback" not in r.stderr
    assert _containers(p.name) == []
    assert not (p.path / ".scaleout").exists()  # detected before anything was written


def test_backend_that_exits_at_start(make_project):
    p = make_project()
    app = p.path / "backend" / "app.py"
    crash = "def main():\n    raise SystemExit('backend: missing DATABASE_URL')"
    app.write_text(app.read_text().replace("def main():", crash, 1))
    r = p.cli("up", "--replicas", "2", "--timeout", "60")
    assert r.returncode == 5, r.stderr
    assert "missing DATABASE_URL" in r.stderr and "Traceback" not in r.stderr.split("last log lines")[0]
    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert st["replicas"] and all(x["health"] != "healthy" or x["state"] != "running" for x in st["replicas"][:1])
    p.cli("down", check=True)
    assert _containers(p.name) == []


def test_port_taken_while_the_replicas_boot_fails_clearly_and_leaves_no_unstarted_balancer(make_project):
    """Another program takes the balancer's port after the checks, while the replicas boot: the balancer's
    container (created meanwhile) cannot start; `up` says so and does not leave it behind."""
    p = make_project()
    app = p.path / "backend" / "app.py"
    app.write_text(app.read_text().replace("def main():\n", "def main():\n    time.sleep(4)\n", 1))
    env = {**os.environ, **p.env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "scaleout", "up", "--replicas", "1", "--timeout", "120"],
                            cwd=p.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with socket.socket() as s:
        try:
            wait_for(lambda: _containers(p.name), timeout=90, what="the replica to be created")
            s.bind(("127.0.0.1", p.port))
            s.listen(1)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode != 0, err
    assert "starting the load balancer" in err and str(p.port) in err and "Traceback" not in err, err
    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert st["balancer"] is None and [x["service"] for x in st["replicas"]] == ["backend-1"], st
    p.cli("down", check=True)
    assert _containers(p.name) == []


def test_ctrl_c_during_up_leaves_a_stack_that_down_cleans(make_project):
    # a long grace period (its failed checks do not count) and a slow health endpoint keep `up` waiting long
    # enough to interrupt it, however slowly a busy machine creates the containers
    p = make_project(replace={"start_period: 10 ": "start_period: 600 "})
    app = p.path / "backend" / "app.py"
    never = 'if path == "/healthz" and time.sleep(30) is None and False:'
    app.write_text(app.read_text().replace('if path == "/healthz":', never, 1))
    env = {**os.environ, **p.env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "scaleout", "up", "--replicas", "2", "--timeout", "120"], cwd=p.path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(_containers(p.name)) >= 2, timeout=90, what="replicas to be created")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "scaleout down" in err and "Traceback" not in err
    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert [x["service"] for x in st["replicas"]] == ["backend-1", "backend-2"]
    assert st["balancer"] is None
    assert st["running"] is True
    p.cli("down", check=True)
    assert _containers(p.name) == []
    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert st["running"] is False and st["replicas"] == []


def test_down_keeps_volumes_unless_asked(make_project, docker_engine):
    """A named volume of a service (declared in the rendered compose file) survives `down` with its data,
    and `down --volumes` removes it."""
    p = make_project(replace={"balancer:\n  # Published": (
        "services:\n"
        "  store:\n"
        f"    image: {LOCAL_IMAGE}\n"
        "    command: [\"sh\", \"-c\", \"test -f /data/mark || date > /data/mark; exec sleep 600\"]\n"
        "    volumes: [\"data:/data\"]\n\n"
        "balancer:\n  # Published")})
    p.cli("up", "--replicas", "1", "-q", check=True)
    volume = f"{p.name}_data"
    mark = _read_mark(docker_engine, p.name)
    p.cli("down", check=True)
    assert docker_engine.volumes.get(volume)  # still there, with its data
    p.cli("up", "--replicas", "1", "-q", check=True)
    assert _read_mark(docker_engine, p.name) == mark
    p.cli("down", "--volumes", check=True)
    with pytest.raises(docker.errors.NotFound):
        docker_engine.volumes.get(volume)


def _read_mark(engine, project: str) -> str:
    [store] = engine.containers.list(filters={"label": [f"com.docker.compose.project={project}",
                                                        "com.docker.compose.service=store"]})
    for _ in range(50):
        code, out = store.exec_run(["cat", "/data/mark"])
        if code == 0:
            return out.decode()
        time.sleep(0.1)
    raise AssertionError("the store service never wrote its mark")


def test_missing_compose_cli(make_project):
    p = make_project()
    from tests.helpers import run_cli

    r = run_cli(["up", "--replicas", "1"], p.path, {**p.env, "SCALEOUT_COMPOSE": "no-such-compose"})
    assert r.returncode == 3, r.stderr
    assert "no Compose CLI found" in r.stderr and "install" in r.stderr and "Traceback" not in r.stderr
    assert not (p.path / ".scaleout" / "docker-compose.yml").exists()


def test_refuses_a_compose_project_that_has_containers_of_its_own(make_project, docker_engine, images):
    """A user's own docker-compose.yml in the same folder shares the default project name: scaleout must
    neither adopt nor remove its containers."""
    p = make_project()
    other = docker_engine.containers.run(images["SCALEOUT_LB_IMAGE"], ["sleep", "300"], detach=True,
                                         name=f"{p.name}-db-1", labels={"com.docker.compose.project": p.name,
                                                                         "com.docker.compose.service": "db"})
    try:
        for cmd in (["up", "--replicas", "1"], ["down"]):
            r = p.cli(*cmd)
            assert r.returncode == 6, r.stderr
            assert f"{p.name}-db-1" in r.stderr and "name:" in r.stderr and "Traceback" not in r.stderr
        other.reload()
        assert other.status == "running"
        assert not (p.path / ".scaleout").exists()
    finally:
        other.remove(force=True)


def test_no_build_never_pulls_a_same_named_image(make_project):
    p = make_project()
    r = p.cli("up", "--replicas", "1", "--no-build")
    assert r.returncode == 4, r.stderr
    assert "has not been built" in r.stderr and "Traceback" not in r.stderr
    assert _containers(p.name) == []
