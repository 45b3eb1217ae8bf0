"""Rolling updates on a real engine, with both Compose CLIs: steady load through the balancer while the
backend's code changes to a version that takes 4 s to boot (zero failed requests, every replica serves
the new code, the balancer is never recreated), then to a version that never becomes healthy (the
running one keeps serving, `up` exits 5 with the new container's log lines), then back (nothing to do)."""

from __future__ import annotations

import json
import re
import time

import docker
import httpx
import pytest

from tests.helpers.lbload import HeyLoad

pytestmark = pytest.mark.e2e

# short health timing, so that the 4 s boot and the broken version are seen quickly
FAST = {
    "    interval: 2        # seconds": "    interval: 1        # seconds",
    "    start_period: 10   # seconds": "    start_period: 6    # seconds",
    "  replicas: 3\n": "  replicas: 3\n  drain_seconds: 1\n",
}
STEPS = ("starting the new version", "is healthy", "routed to", "is out of the balancer, draining", "replaced")


def write_app(p, original: str, version: str, boot_s: float = 0, healthy: bool = True) -> None:
    """The scaffolded backend, answering with an X-App-Version header; booting slowly or never healthy."""
    text = original.replace('        self.send_header("X-Backend-Id", HOSTNAME)\n',
                            '        self.send_header("X-Backend-Id", HOSTNAME)\n'
                            f'        self.send_header("X-App-Version", "{version}")\n')
    if boot_s:
        text = text.replace("def main():\n", f"def main():\n    time.sleep({boot_s})  # a slow boot\n")
    if not healthy:
        text = text.replace('        if path == "/healthz":\n',
                            '        if path == "/healthz":\n'
                            f'            print("{version}: health check failing on purpose", flush=True)\n'
                            '            return self._send(503, "broken\\n", "text/plain")\n')
    assert text != original
    (p.path / "backend" / "app.py").write_text(text)


def containers(p) -> dict[str, str]:
    """name -> id of every container of the project."""
    found = docker.from_env().containers.list(all=True, filters={"label": f"com.docker.compose.project={p.name}"})
    return {c.name: c.id for c in found}


def lb_id(p) -> str:
    (lb,) = docker.from_env().containers.list(filters={"label": [f"com.docker.compose.project={p.name}",
                                                                  "com.docker.compose.service=lb"]})
    return lb.id


def replicas(p) -> dict[str, dict]:
    st = json.loads(p.cli("status", "--json", check=True).stdout)
    return {r["service"]: r for r in st["replicas"]}


def served(p, n: int = 60) -> dict[str, set[str]]:
    """Upstream address -> app versions seen through the balancer (new connections: the spread is visible)."""
    out: dict[str, set[str]] = {}
    for _ in range(n):
        r = httpx.get(p.url + "/", timeout=5, trust_env=False)
        assert r.status_code == 200, r.text
        out.setdefault(r.headers["X-Upstream-Addr"], set()).add(r.headers.get("X-App-Version", "?"))
    return out


def assert_clean(load: HeyLoad, min_responses: int = 1000) -> None:
    res = load.result
    assert res is not None and res.responses >= min_responses, res.text if res else "no hey report"
    assert set(res.status_codes) == {200}, f"statuses: {res.status_codes}\n{res.text}"
    assert res.errors == {}, f"errors: {res.errors}"


def assert_all_serve(p, version: str) -> None:
    reps = replicas(p)
    assert sorted(reps) == ["backend-1", "backend-2", "backend-3"], reps
    assert all(r["state"] == "running" and r["health"] == "healthy" and r["routed"] for r in reps.values()), reps
    seen = served(p)
    assert set(seen) == {r["address"] for r in reps.values()}, (seen, reps)  # every replica answered...
    assert all(v == {version} for v in seen.values()), seen  # ...with this version only


@pytest.mark.parametrize("compose", ["docker compose", "docker-compose"])
def test_rolling_update_fails_no_request_and_a_broken_version_keeps_the_old_one(make_project, compose):
    p = make_project(replace=FAST)
    p.env["SCALEOUT_COMPOSE"] = compose
    app = p.path / "backend" / "app.py"
    original = app.read_text()
    write_app(p, original, "v1")
    p.cli("up", "--replicas", "3", check=True)
    balancer = lb_id(p)
    assert_all_serve(p, "v1")

    # a new version that takes 4 s to boot, rolled out under steady load
    write_app(p, original, "v2", boot_s=4)
    with HeyLoad(p.url + "/", concurrency=8) as load:
        time.sleep(1.0)
        r = p.cli("up", "--json")
        time.sleep(1.0)
    assert r.returncode == 0, r.stderr
    assert_clean(load)
    # the build is timed apart from the roll, in the progress output and in --json
    timings = json.loads(r.stdout)["timings"]
    assert {"build_s", "roll_s", "total_s"} <= set(timings), timings
    assert re.search(r"built the backend image in [0-9.]+s", r.stderr), r.stderr
    assert re.search(r"rolling update of 3 replica\(s\) done in [0-9.]+s \(the build before it", r.stderr), r.stderr
    for svc in ("backend-1", "backend-2", "backend-3"):
        for step in STEPS:
            assert re.search(rf"{svc}: .*{step}", r.stderr), f"{svc}: no '{step}' line\n{r.stderr}"
    assert_all_serve(p, "v2")
    assert lb_id(p) == balancer
    after_v2 = containers(p)
    assert len(after_v2) == 4, after_v2  # 3 replicas and the balancer: every old container is gone

    # a version that never becomes healthy: the update stops at the first replica, v2 keeps serving
    write_app(p, original, "v3", healthy=False)
    with HeyLoad(p.url + "/", concurrency=8) as load:
        time.sleep(1.0)
        r = p.cli("up")
        time.sleep(1.0)
    assert r.returncode == 5, r.stderr
    assert "rolling update stopped: the new container of backend-1" in r.stderr, r.stderr
    assert "v3: health check failing on purpose" in r.stderr, r.stderr  # its last log lines
    assert_clean(load, min_responses=500)
    assert_all_serve(p, "v2")
    assert containers(p) == after_v2  # the failed new container is gone, nothing else changed

    # back to v2's code: the same image (build cache), so nothing to roll out and no container changes
    write_app(p, original, "v2", boot_s=4)
    r = p.cli("up")
    assert r.returncode == 0, r.stderr
    assert "every replica already runs the current image and settings" in r.stderr, r.stderr
    assert containers(p) == after_v2

    p.cli("down", check=True)
    assert containers(p) == {}
