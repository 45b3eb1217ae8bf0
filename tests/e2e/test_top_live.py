"""`scaleout top` while the stack changes under it, on the real engine: a replica stopped with `scaleout
stop` shows as out of the balancer in the live view (a real terminal, tmux) within 2 s; `--once` (text)
and `--json` count exactly what an independent client sent; replicas appear and leave through a rescale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.test_top import _send
from tests.helpers import ROOT, wait_for

pytestmark = pytest.mark.e2e


def _rows(screen: str) -> dict[str, list[str]]:
    """The replica rows of a text frame: name -> its columns."""
    return {ln.split()[0]: ln.split() for ln in screen.splitlines() if ln.startswith("backend-")}


class TmuxTop:
    """`scaleout top` in a real terminal (a detached tmux session), read with capture-pane."""

    def __init__(self, p, *args: str) -> None:
        self.session = f"htop{uuid.uuid4().hex[:8]}"
        env = " ".join(f"{k}={v}" for k, v in {**p.env, "PYTHONPATH": str(ROOT)}.items())
        cmd = f"cd {p.path} && env {env} {sys.executable} -m scaleout top {' '.join(args)}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "140", "-y", "45", cmd], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True,
                              text=True).stdout

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


class JsonTop:
    """`scaleout top --json` running beside the test; its frames collected by a thread."""

    def __init__(self, p, interval: float = 0.5) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scaleout", "top", "--json", "--interval", str(interval)], cwd=p.path,
            env={**os.environ, **p.env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.frames: list[dict] = []
        threading.Thread(target=lambda: self.frames.extend(json.loads(ln) for ln in self.proc.stdout),
                         daemon=True).start()

    def frame_with(self, pred, what: str, timeout: float = 30) -> dict:
        """The latest frame that satisfies `pred` (waiting for it)."""
        return wait_for(lambda: next((f for f in reversed(self.frames[-3:]) if pred(f)), None), timeout=timeout,
                        what=what)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        assert self.proc.returncode in (0, -15), self.proc.stderr.read()


@pytest.mark.serial  # a time window or a spread that other tests' load would skew
def test_a_replica_stopped_with_scaleout_stop_shows_out_of_the_balancer_within_2s(make_project):
    p = make_project()
    p.cli("up", "--replicas", "2", check=True)
    top = TmuxTop(p)
    try:
        wait_for(lambda: [r[1:4] for r in _rows(top.screen()).values()] == [["running", "healthy", "yes"]] * 2,
                 timeout=30, what="both replicas routed in the view")
        r = p.cli("stop", "backend-2")
        stopped = time.monotonic()
        assert r.returncode == 0, r.stdout + r.stderr
        while True:  # the view, polled: backend-2 out of the balancer, backend-1 still in
            rows = _rows(top.screen())
            if rows.get("backend-2", [""] * 4)[3] == "NO":
                break
            assert time.monotonic() - stopped <= 2.0, f"after 2 s the view still shows:\n{top.screen()}"
            time.sleep(0.05)
        assert rows["backend-2"][1] == "exited" and rows["backend-1"][1:4] == ["running", "healthy", "yes"]
    finally:
        top.close()


def test_once_and_json_count_exactly_what_an_independent_client_sent(make_project):
    p = make_project()
    p.cli("up", "--replicas", "2", check=True)

    def once(*args: str) -> str:
        r = p.cli("top", "--once", *args)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    # `up`'s own requests (its readiness check) are in the record: count from here, once nginx has written
    # them (buffered, flushed every second); a window of 10 min, so that nothing ages out on a slow machine
    time.sleep(1.5)
    wide = ("--window", "600")

    def by_address(f: dict, key: str) -> dict:
        return {x["address"]: x[key] for x in f["replicas"]}

    before = json.loads(once("--json", *wide))
    before_text = _rows(once(*wide))
    live = JsonTop(p, interval=0.3)  # reads the record many times: each read meets the last at a boundary
    try:
        first = live.frame_with(lambda f: len(f["replicas"]) == 2, "top --json running")
        n = 30
        sent = _send(p.url, n)
        assert len(sent) == 2 and sum(sent.values()) == n

        def counted() -> dict | None:
            f = json.loads(once("--json", *wide))
            return f if sum(by_address(f, "requests").values()) - sum(by_address(before, "requests").values()) \
                >= n else None

        wait_for(counted, timeout=20, interval=0.3, what=f"{n} requests in top --once --json")
        with ThreadPoolExecutor(2) as pool:  # both forms at one moment
            as_json, as_text = pool.map(lambda a: once(*a), [("--json", *wide), wide])
        f = json.loads(as_json)
        was = by_address(before, "classes")
        # per replica, what top counted is what the independent client saw (so the sum is n): every status
        assert {a: {k: c[k] - was[a][k] for k in c} for a, c in by_address(f, "classes").items()} == {
            a: {"2xx": k, "3xx": 0, "4xx": 0, "5xx": 0} for a, k in sent.items()}
        assert f["balancer"] == before["balancer"]  # nothing the balancer answered itself
        # the text of --once says the same: its 2xx column per replica
        addr = {x["name"]: x["address"] for x in f["replicas"]}
        assert {addr[name]: int(cols[5]) - int(before_text[name][5]) for name, cols in _rows(as_text).items()} \
            == dict(sent)
        # the running top, read after read, counted each request once: its totals since it started
        live.frame_with(lambda f: sum(by_address(f, "total").values()) - sum(by_address(first, "total").values())
                        >= n, "the requests in top --json")
        time.sleep(2.5)  # more reads over the same seconds: nothing counted twice
        last, start = by_address(live.frames[-1], "total"), by_address(first, "total")
        assert {a: last[a] - start[a] for a in last} == dict(sent)
    finally:
        live.stop()


def test_replicas_appear_and_leave_while_top_runs_through_a_rescale(make_project):
    p = make_project()
    p.cli("up", "--replicas", "2", check=True)
    live = JsonTop(p)

    def names(f: dict) -> list[str]:
        return [x["name"] for x in f["replicas"]]

    try:
        live.frame_with(lambda f: names(f) == ["backend-1", "backend-2"], "a frame of the 2 replicas")
        r = p.cli("up", "--replicas", "3")
        assert r.returncode == 0, r.stdout + r.stderr
        live.frame_with(lambda f: names(f) == ["backend-1", "backend-2", "backend-3"], "backend-3 appearing")
        sent = _send(p.url, 30)
        assert len(sent) == 3
        f = live.frame_with(lambda f: sum(x["requests"] for x in f["replicas"]) >= 30, "the 30 requests counted")
        assert all(x["requests"] >= 1 for x in f["replicas"])
        r = p.cli("up", "--replicas", "1")
        assert r.returncode == 0, r.stdout + r.stderr
        # backend-2 and -3 leave the replicas; what they served in the window stays visible as gone
        f = live.frame_with(lambda f: names(f) == ["backend-1"], "backend-2 and backend-3 leaving")
        assert {g["name"] for g in f["gone"]} == {"backend-2", "backend-3"}
        assert live.proc.poll() is None  # still running through both rescales
    finally:
        live.stop()


def test_a_rolling_update_while_top_runs_names_the_new_containers(make_project):
    p = make_project()
    p.cli("up", "--replicas", "2", check=True)

    def replicas() -> dict[str, tuple[str, str]]:
        """name -> (container, address), from `status --json`."""
        r = p.cli("status", "--json", check=True)
        return {x["service"]: (x["container"], x["address"]) for x in json.loads(r.stdout)["replicas"]}

    live = JsonTop(p)
    try:
        old = replicas()
        live.frame_with(lambda f: len(f["replicas"]) == 2, "a frame of the 2 replicas")
        cfg = p.path / "scaleout.yaml"
        cfg.write_text(cfg.read_text().replace('CPU_WORK_MS: "0"', 'CPU_WORK_MS: "1"'))
        r = p.cli("up", "--replicas", "2")  # the replicas' settings changed: a rolling update replaces both containers
        assert r.returncode == 0, r.stdout + r.stderr
        new = replicas()
        assert set(new) == {"backend-1", "backend-2"}
        assert not {c for c, _ in new.values()} & {c for c, _ in old.values()}, (old, new)  # all replaced
        at = {n: a for n, (_, a) in new.items()}
        live.frame_with(lambda f: {x["name"]: x["address"] for x in f["replicas"]} == at,
                        "the view showing the new containers")
        # `up`'s own last requests (its readiness and routing checks) reach the record when nginx flushes
        # its buffer (every second): count from a frame read after that flush
        time.sleep(1.5)
        seen = len(live.frames)
        f = live.frame_with(lambda f: len(live.frames) > seen + 1 and
                            {x["name"]: x["address"] for x in f["replicas"]} == at, "a frame after the flush")
        before = {x["name"]: x["total"] for x in f["replicas"]}
        sent = _send(p.url, 20)
        assert set(sent) == set(at.values())  # only the new containers answer
        f = live.frame_with(lambda f: sum(x["total"] for x in f["replicas"]) - sum(before.values()) >= 20,
                            "the 20 requests, named after the new containers")
        assert {x["address"]: x["total"] - before[x["name"]] for x in f["replicas"]} == dict(sent)
    finally:
        live.stop()
