"""Container hardening on a real engine: the balancer runs with no capabilities beyond nginx's needs,
a read-only root filesystem and resource limits; the replicas get the limits scaleout.yaml sets."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_balancer_and_replicas_run_hardened(make_project, docker_engine):
    p = make_project(replace={"replicas: 3": "replicas: 1\n  limits: {memory: 128m, pids: 64}"})
    # a cloned repository's public/ may hold links to files of the balancer's container
    (p.path / "public" / "static").mkdir(exist_ok=True)
    (p.path / "public" / "static" / "leak.txt").symlink_to("/etc/passwd")
    (p.path / "public" / "static" / "again.html").symlink_to("../offline.html")
    # a name that says it holds a secret (a committed .env, a .git/ folder) stops `up` before anything starts
    (p.path / "public" / "static" / ".env").write_text("SECRET=hidden-value\n")
    (p.path / "public" / "static" / "sub" / ".git").mkdir(parents=True)
    (p.path / "public" / "static" / "sub" / ".git" / "config").write_text("hidden-value\n")
    r = p.cli("up", "-q")
    assert r.returncode == 2 and "public/static/.env" in r.stderr and "public/static/sub/.git" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not docker_engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={p.name}"})
    (p.path / "public" / "static" / ".env").unlink()
    (p.path / "public" / "static" / "sub" / ".git" / "config").unlink()
    (p.path / "public" / "static" / "sub" / ".git").rmdir()
    # any other hidden file or folder under a folder route is never served
    (p.path / "public" / "static" / ".notes").write_text("hidden-value\n")
    (p.path / "public" / "static" / "sub" / ".build").mkdir()
    (p.path / "public" / "static" / "sub" / ".build" / "config").write_text("hidden-value\n")
    (p.path / "public" / "static" / "sub" / ".hidden.0123456789ab.js").write_text("hidden-value\n")
    (p.path / "public" / "static" / "sub" / "shown.txt").write_text("shown\n")
    r = p.cli("up", "-q")
    assert r.returncode == 0, r.stderr
    by_service = {c.labels["com.docker.compose.service"]: c
                  for c in docker_engine.containers.list(filters={"label": f"com.docker.compose.project={p.name}"})}
    lb = by_service["lb"].attrs["HostConfig"]
    assert lb["CapDrop"] == ["ALL"] and "NET_BIND_SERVICE" in lb["CapAdd"] and "SYS_ADMIN" not in lb["CapAdd"]
    assert lb["ReadonlyRootfs"] is True and "/tmp" in lb["Tmpfs"]
    assert lb["Memory"] == 256 * 1024 * 1024 and lb["PidsLimit"] == 1024
    backend = by_service["backend-1"].attrs["HostConfig"]
    assert backend["Memory"] == 128 * 1024 * 1024 and backend["PidsLimit"] == 64
    # and it still serves: through the balancer, and its static files
    assert httpx.get(p.url + "/", trust_env=False).status_code == 200
    assert httpx.get(p.url + "/offline.html", trust_env=False).status_code == 200
    for link in ("/static/leak.txt", "/static/again.html"):  # no symlink is followed, not even one inside public/
        r = httpx.get(p.url + link, trust_env=False)
        assert r.status_code == 403 and "root:" not in r.text, (link, r.status_code)
    for hidden in ("/static/.notes", "/static/sub/.build/config", "/static/sub/.hidden.0123456789ab.js",
                   "/static/%2enotes"):
        r = httpx.get(p.url + hidden, trust_env=False)
        assert r.status_code == 403 and "hidden-value" not in r.text, (hidden, r.status_code)
    shown = httpx.get(p.url + "/static/sub/shown.txt", trust_env=False)
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-cache"
    code, _ = by_service["lb"].exec_run(["sh", "-c", "touch /etc/x"])
    assert code != 0  # the root filesystem is read-only
