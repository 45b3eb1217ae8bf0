"""`scaleout top` and `logs --requests` on the real engine: traffic sent by an independent client is
counted per replica from the balancer's request record; the live view in a real terminal (tmux)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter

import httpx
import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def _send(url: str, n: int) -> Counter:
    """n requests from this test (not the probe); per X-Upstream-Addr."""
    seen: Counter = Counter()
    with httpx.Client(timeout=10) as c:
        for _ in range(n):
            r = c.get(f"{url}/api/whoami?secret=s3cr3t")
            assert r.status_code == 200
            seen[r.headers["X-Upstream-Addr"]] += 1
    return seen


def test_top_once_json_counts_each_replica_and_logs_requests(make_project):
    p = make_project()
    p.cli("up", "--replicas", "2", check=True)

    def top_once() -> dict:
        r = p.cli("top", "--once", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    # requests `up` itself sent (its readiness check) are in the record: count from here, once nginx has
    # written them (the record is buffered, flushed every second)
    time.sleep(1.5)
    before = {x["name"]: x["total"] for x in top_once()["replicas"]}
    sent = _send(p.url, 40)
    assert len(sent) == 2

    def grown():
        f = top_once()
        return f if sum(x["total"] for x in f["replicas"]) - sum(before.values()) >= 40 else None

    f = wait_for(grown, timeout=20, what="40 requests in top")
    assert f["schema"] == "scaleout.top/1"
    by = {x["name"]: x for x in f["replicas"]}
    assert set(by) == {"backend-1", "backend-2"}
    # per replica, what top counted is what the independent client saw (by the replica's address)
    assert {by[n]["address"]: by[n]["total"] - before[n] for n in by} == dict(sent)
    assert all(x["classes"]["2xx"] >= 1 and x["p50_ms"] is not None and not x["idle"] for x in by.values())

    r = p.cli("logs", "--requests")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if "/api/whoami" in ln]
    assert len(lines) == 40
    assert Counter(ln.split()[0] for ln in lines) == Counter({n: sent[by[n]["address"]] for n in by})
    assert "s3cr3t" not in r.stdout  # no query strings in the record

    r = p.cli("exec", "-T", "backend-2", "printenv", "SCALEOUT_REPLICA", "SCALEOUT_REPLICA_NAME")
    assert r.returncode == 0 and r.stdout == "2\nbackend-2\n", r.stdout + r.stderr


@pytest.mark.serial  # a time window or a spread that other tests' load would skew
def test_top_live_view_in_a_terminal_refreshes_and_ctrl_c_exits_0(make_project):
    p = make_project()
    p.cli("up", "--replicas", "2", check=True)
    session = f"top{uuid.uuid4().hex[:8]}"
    done = p.path / "top.rc"
    env = " ".join(f"{k}={v}" for k, v in p.env.items())
    cmd = f"cd {p.path} && env {env} {sys.executable} -m scaleout top; echo rc=$? > {done}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True)
    try:
        def screen() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                  text=True).stdout

        wait_for(lambda: "backend-2" in screen() and "no traffic" in screen(), timeout=30, what="idle replicas")
        _send(p.url, 20)
        wait_for(lambda: "/api/whoami" in screen() and "no traffic" not in screen(), timeout=15,
                 what="the view counting the new requests")
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        wait_for(done.exists, timeout=10, what="top to exit")
        assert done.read_text().strip() == "rc=0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
