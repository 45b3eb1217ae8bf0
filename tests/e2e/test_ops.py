"""`logs`, `exec`, `stop`, `start`, `restart` on a real 2-replica stack, through the real CLI: merged and
time-ordered logs with Compose's prefixes, exit codes of commands run in a replica, and a failure drill
in which the balancer routes around a stopped replica without one failed request."""

from __future__ import annotations

import collections
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import docker
import httpx
import pytest

from scaleout.targets.logs import stamp_ns
from tests.helpers import ROOT, wait_for

pytestmark = pytest.mark.e2e

PREFIX = re.compile(r"^(backend-1 |backend-2 |lb        ) \| ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _get(url: str) -> None:
    httpx.get(url, timeout=5, trust_env=False)


def _in_pty(p, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str]:
    """Run the CLI with a terminal as stdin, stdout and stderr; returns its exit code and output."""
    primary, secondary = pty.openpty()
    full_env = {**os.environ, **p.env, "PYTHONPATH": str(ROOT)}
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    proc = subprocess.Popen([sys.executable, "-m", "scaleout", *args], cwd=p.path, env=full_env, stdin=secondary,
                            stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the other side closed: the process is done
            break
        if not data:
            break
        out += data
    os.close(primary)
    return proc.wait(timeout=10), out.decode(errors="replace")


def test_logs_and_exec_on_a_running_stack(make_project):
    p = make_project()
    r = p.cli("logs")
    assert r.returncode == 7 and "scaleout up" in r.stderr, r.stderr  # nothing runs yet
    p.cli("up", "--replicas", "2", check=True)
    for _ in range(4):
        _get(p.url + "/")

    # every container's lines, prefixed like Compose, in the engine's time order, plain when not a tty
    r = p.cli("logs", "--timestamps")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(PREFIX.match(ln) for ln in lines), lines[:5]
    assert not ANSI.search(r.stdout)
    for name in ("backend-1", "backend-2"):
        assert f"{name}  | " in r.stdout and f"backend {name} listening" in r.stdout
    assert "lb         | " in r.stdout
    stamps = [stamp_ns(PREFIX.sub("", ln).split(" ")[0]) for ln in lines]
    assert all(stamps) and stamps == sorted(stamps)
    by_service = collections.Counter(PREFIX.match(ln).group(1).strip() for ln in lines)
    assert by_service["backend-1"] > 1 and by_service["backend-2"] > 1 and by_service["lb"] > 1

    # --tail: the last N lines of each named container, as the engine has them
    client = docker.from_env()
    c1 = next(c for c in client.containers.list(filters={"label": f"com.docker.compose.project={p.name}"})
              if c.labels.get("com.docker.compose.service") == "backend-1")
    called = time.time_ns()
    r = p.cli("logs", "--tail", "3", "--timestamps", "backend-1")
    assert r.returncode == 0, r.stderr
    got = [ln.removeprefix("backend-1  | ") for ln in r.stdout.splitlines()]
    assert len(got) == 3 and len(r.stdout.splitlines()) == 3
    engine = c1.logs(timestamps=True).decode().splitlines()
    at = engine.index(got[0])
    assert engine[at:at + 3] == got
    # lines after them were logged after the command started (health checks keep coming)
    assert all(stamp_ns(ln.split(" ")[0]) > called for ln in engine[at + 3:])

    # --since: what was logged before the time is left out, what came after is in
    before, after = f"/before-{uuid.uuid4().hex[:8]}", f"/after-{uuid.uuid4().hex[:8]}"
    _get(p.url + before)
    time.sleep(1.5)
    cut = time.time()
    time.sleep(0.5)
    _get(p.url + after)
    for since in (f"{cut:.3f}", time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cut)) + f".{int(cut % 1 * 1e6):06d}Z"):
        r = p.cli("logs", "--since", since)
        assert r.returncode == 0, r.stderr
        assert after in r.stdout and before not in r.stdout, since
    r = p.cli("logs", "--since", "1s", "lb")  # a duration back from now
    assert r.returncode == 0 and before not in r.stdout

    # on a terminal: one colour per service; NO_COLOR and --no-color turn them off
    code, out = _in_pty(p, "logs", "--tail", "2")
    assert code == 0, out
    colours = {m.group(2): m.group(1) for m in re.finditer(r"\x1b\[(\d+)m(backend-1|backend-2|lb) ", out)}
    assert set(colours) == {"backend-1", "backend-2", "lb"} and len(set(colours.values())) == 3, out
    for args, env in ((("logs", "--tail", "2"), {"NO_COLOR": "1"}), (("logs", "--tail", "2", "--no-color"), None)):
        code, out = _in_pty(p, *args, env=env)
        assert code == 0 and "backend-1  | " in out and not ANSI.search(out), out

    # unknown names: exit 2 listing the valid ones
    r = p.cli("logs", "backend-9")
    assert r.returncode == 2
    assert "backend-9" in r.stderr and "backend-1, backend-2, lb" in r.stderr and "Traceback" not in r.stderr

    # follow: new lines as they come, until Ctrl-C, which ends it cleanly
    marker = f"/follow-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **p.env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "scaleout", "logs", "-f", "--tail", "1"], cwd=p.path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(seen) >= 3, timeout=30, what="the history of logs -f")
        _get(p.url + marker)
        wait_for(lambda: any(marker in ln and ln.startswith("lb ") for ln in seen), timeout=30,
                 what="a new balancer line in logs -f")
        assert proc.poll() is None  # still following
        # a replica that starts while following (a rescale; a rolling update's new containers alike)
        p.cli("up", "--replicas", "3", check=True)
        wait_for(lambda: any(ln.startswith("backend-3 ") and "backend backend-3 listening" in ln for ln in seen),
                 timeout=30, what="the new replica's lines in logs -f")
        p.cli("up", "--replicas", "2", check=True)
        assert proc.poll() is None  # backend-3 removed: its lines end, the others go on
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)  # a generous bound for a busy machine: Ctrl-C ends it, it does not hang
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "interrupted" not in err

    # exec: the command's exit code and output, stdin passed through with -T, a TTY on a terminal
    r = p.cli("exec", "backend-1", "--", "sh", "-c", "echo on $SCALEOUT_REPLICA_NAME; exit 3")
    assert r.returncode == 3 and r.stdout == "on backend-1\n", r.stderr
    r = p.cli("exec", "backend-2", "printenv", "SCALEOUT_REPLICA_NAME")
    assert r.returncode == 0 and r.stdout == "backend-2\n"
    r = subprocess.run([sys.executable, "-m", "scaleout", "exec", "-T", "backend-1", "tr", "a-z", "A-Z"], cwd=p.path,
                       env=env, input="piped in\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "PIPED IN\n", r.stderr
    code, out = _in_pty(p, "exec", "backend-1", "tty")
    assert code == 0 and "/dev/pts/" in out, out
    code, out = _in_pty(p, "exec", "-T", "backend-1", "tty")
    assert code == 1 and "not a tty" in out, out
    r = p.cli("exec", "nope", "true")
    assert r.returncode == 2 and "backend-1, backend-2, lb" in r.stderr

    # down -v is down --volumes, as in Compose
    r = p.cli("down", "-v")
    assert r.returncode == 0, r.stderr
    assert "volumes too" in r.stderr


class Traffic:
    """Requests in a loop, counting every outcome. Each on a fresh connection, so that each is routed anew
    and none meets nginx closing an idle keep-alive connection at a reload (browsers and `scaleout probe`
    retry a request that a reused connection closed before answering; httpx does not)."""

    def __init__(self, url: str, threads: int = 3):
        self.url = url
        self.stop = threading.Event()
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.served: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=10, trust_env=False, limits=limits) as client:
            while not self.stop.is_set():
                try:
                    r = client.get(self.url + "/api/whoami")
                    self.outcomes[str(r.status_code)] += 1
                    if r.status_code == 200:
                        self.served[r.json()["backend"]] += 1
                except httpx.HTTPError as exc:
                    self.outcomes[type(exc).__name__] += 1
                    self.errors.append(f"{time.strftime('%H:%M:%S')} {exc}")

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=20)


def _replicas(p) -> dict[str, dict]:
    st = json.loads(p.cli("status", "--json", check=True).stdout)
    return {r["service"]: r for r in st["replicas"]}


def test_stop_start_restart_drill_costs_no_request(make_project, docker_engine, images):
    p = make_project()
    p.cli("up", "--replicas", "2", check=True)

    with Traffic(p.url) as traffic:
        time.sleep(1.0)
        r = p.cli("stop", "backend-2")
        assert r.returncode == 0, r.stderr
        assert "routes around backend-2" in r.stderr
        st = _replicas(p)
        assert st["backend-2"]["state"] == "exited" and st["backend-2"]["routed"] is False
        assert st["backend-1"]["state"] == "running" and st["backend-1"]["routed"] is True
        text = p.cli("status", check=True).stdout
        row = next(ln for ln in text.splitlines() if ln.startswith("backend-2 "))
        assert row.split()[1] == "exited" and row.split()[3] == "no", text
        assert "scaleout start backend-2" in text
        served_before = traffic.served["backend-2"]
        time.sleep(2.0)  # traffic while backend-2 is stopped
        assert traffic.served["backend-2"] == served_before  # nothing reaches it
        res = json.loads(p.cli("probe", "--json", "--no-cache-check", "--requests", "300").stdout)
        assert res["verdict"] == "pass" and res["failed"] == 0, res["reasons"]
        assert [b["name"] for b in res["backends"]] == ["backend-1"]

        r = p.cli("start", "backend-2")
        assert r.returncode == 0, r.stderr
        assert "routes to backend-2 again" in r.stderr
        st = _replicas(p)
        assert st["backend-2"]["state"] == "running" and st["backend-2"]["routed"] is True
        served_before = traffic.served["backend-2"]
        wait_for(lambda: traffic.served["backend-2"] > served_before, timeout=10, what="backend-2 serving again")

        # a restart of every replica goes one at a time, each out of the balancer while it is down
        r = p.cli("restart", "backend-1", "backend-2")
        assert r.returncode == 0, r.stderr
        steps = [ln.split("] ", 1)[1] for ln in r.stderr.splitlines() if "] " in ln]
        assert steps.index("stopping backend-1") < steps.index("starting backend-1") < steps.index("stopping backend-2")
        time.sleep(1.0)
    assert set(traffic.outcomes) == {"200"}, (dict(traffic.outcomes), traffic.errors[:5])
    assert traffic.outcomes["200"] > 200 and traffic.served["backend-1"] and traffic.served["backend-2"]
    assert all(r["state"] == "running" and r["routed"] for r in _replicas(p).values())

    # `up` brings a stopped replica back too
    assert p.cli("stop", "backend-1").returncode == 0
    r = p.cli("up", "--replicas", "2", "--no-build")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: _replicas(p)["backend-1"]["routed"] is True, timeout=20, what="backend-1 routed after up")

    # only this project's containers: a container of another Compose project is never a target
    stranger = docker_engine.containers.run(
        images["SCALEOUT_LB_IMAGE"], ["sleep", "120"], detach=True, name=f"{p.name}-other-backend-3-1",
        labels={"com.docker.compose.project": f"{p.name}-other", "com.docker.compose.service": "backend-3",
                "io.scaleout.project": f"{p.name}-other"})
    try:
        for cmd in ("stop", "restart", "start"):
            r = p.cli(cmd, "backend-3")
            assert r.returncode == 2, r.stderr
            assert "backend-3" in r.stderr and "backend-1, backend-2, lb" in r.stderr
        stranger.reload()
        assert stranger.status == "running"
    finally:
        stranger.remove(force=True)
    r = p.cli("stop")
    assert r.returncode == 2 and "SERVICE" in r.stderr
