"""The probe against a balancer made wrong behind scaleout's back: on one running stack the live nginx
configuration inside the balancer container (/tmp/scaleout/nginx.conf, see templates/nginx/lb.sh) is
rewritten and reloaded, one breakage at a time. Each time `scaleout probe` must exit 1 and name the
problem; restored, it passes again. scaleout itself (files, status, routing) never learns of the edit."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
import uuid

import docker
import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

LIVE = "/tmp/scaleout/nginx.conf"  # the copy nginx runs (lb.sh puts addresses in place of replica names)
_GEN = re.compile(r'add_header X-Scaleout-Config "([^"]*)" always;')


def _lb(p):
    found = docker.from_env().containers.list(filters={"label": [f"com.docker.compose.project={p.name}",
                                                                 "com.docker.compose.service=lb"]})
    assert len(found) == 1, found
    return found[0]


def _live(p) -> str:
    code, out = _lb(p).exec_run(["cat", LIVE])
    assert code == 0, out
    return out.decode()


def _generation(p) -> str | None:
    try:
        with urllib.request.urlopen(f"{p.url}/_scaleout/ping", timeout=2) as r:
            return r.headers.get("X-Scaleout-Config")
    except OSError:
        return None


def _install(p, text: str) -> None:
    """Write `text` as the live configuration, check it, reload, and wait until new connections get it
    (its X-Scaleout-Config generation answers at /_scaleout/ping, as lb.sh's own reloads do)."""
    gen = _GEN.search(text).group(1)
    lb = _lb(p)
    subprocess.run(["docker", "exec", "-i", lb.id, "sh", "-c", f"cat > {LIVE}.edit && mv {LIVE}.edit {LIVE}"],
                   input=text.encode(), check=True, timeout=30)
    code, out = lb.exec_run(["nginx", "-t", "-q", "-c", LIVE])
    assert code == 0, out.decode()
    code, out = lb.exec_run(["nginx", "-c", LIVE, "-s", "reload"])
    assert code == 0, out.decode()
    wait_for(lambda: _generation(p) == gen, timeout=20, what=f"nginx serving configuration {gen}")


def _break(p, good: str, old: str, new: str) -> None:
    # every occurrence: the attribution header is set in each proxied location (plain and WebSocket)
    assert old in good, f"{old!r} is not in the live configuration:\n{good}"
    marker = f"broken-{uuid.uuid4().hex[:8]}"
    _install(p, _GEN.sub(f'add_header X-Scaleout-Config "{marker}" always;', good.replace(old, new)))


def _probe(p, *args: str) -> tuple[int, dict]:
    r = p.cli("probe", "--json", "--no-cache-check", *args)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def _assert_pass(p, *args: str) -> dict:
    code, res = _probe(p, *args)
    assert code == 0 and res["verdict"] == "pass", res["reasons"]
    return res


def _assert_fails(p, rule: str, words: str, *args: str) -> dict:
    code, res = _probe(p, *args)
    assert code == 1 and res["verdict"] == "fail" and rule in res["failed_rules"], res
    assert any(words in reason for reason in res["reasons"]), res["reasons"]
    return res


def _status(p) -> dict[str, dict]:
    return {r["service"]: r for r in json.loads(p.cli("status", "--json", check=True).stdout)["replicas"]}


def test_probe_fails_on_a_balancer_broken_behind_scaleouts_back(make_project):
    p = make_project()
    cfg = p.path / "scaleout.yaml"
    base = cfg.read_text()

    # 1. hash on the session cookie: each key must stick to one replica
    cfg.write_text(base.replace("strategy: round_robin", "strategy: hash"))
    p.cli("up", "--replicas", "3", check=True)
    good = _live(p)
    _assert_pass(p, "--requests", "400", "--sticky-keys", "24")
    _break(p, good, "hash $cookie_session consistent;", "")  # now round robin: keys wander
    _assert_fails(p, "key_split", "served by more than one replica", "--requests", "400", "--sticky-keys", "24")
    _install(p, good)
    res = _assert_pass(p, "--requests", "400", "--sticky-keys", "24")
    assert res["strategy"] == "hash" and res["sticky"]["keys_split"] == 0

    # 2. round robin with backend-3 as a backup (a reload of the same stack)
    cfg.write_text(base.replace("  # backup: [backend-3]", "  backup: [backend-3]"))
    p.cli("up", "--no-build", check=True)
    good = _live(p)
    res = _assert_pass(p, "--requests", "600")
    assert res["strategy"] == "round_robin" and sorted(b["name"] for b in res["backends"]) == ["backend-1", "backend-2"]
    addr = {name: row["address"] for name, row in _status(p).items()}

    # a replica dropped from the upstream
    line = next(x for x in good.splitlines() if f"server {addr['backend-2']} " in x)
    _break(p, good, line + "\n", "")
    _assert_fails(p, "replica_idle", "replica backend-2 served no request", "--requests", "600")
    # ... and the text report names it too
    r = p.cli("probe", "--requests", "300", "--no-cache-check")
    assert r.returncode == 1 and "verdict: FAIL" in r.stdout and "replica backend-2 served no request" in r.stdout
    _install(p, good)
    _assert_pass(p, "--requests", "600")

    # the header that attributes answers to replicas removed
    _break(p, good, "add_header X-Upstream-Addr $upstream_addr always;", "")
    res = _assert_fails(p, "no_upstream_header", "X-Upstream-Addr", "--requests", "300")
    assert res["unattributed"] == 300
    _install(p, good)
    _assert_pass(p, "--requests", "600")

    # the backup no longer a backup: it takes traffic while both primaries are healthy
    backup_line = next(x for x in good.splitlines() if f"server {addr['backend-3']} " in x)
    assert backup_line.endswith(" backup;"), backup_line
    _break(p, good, backup_line, backup_line.replace(" backup;", ";"))
    _assert_fails(p, "backup_served", "backup replica backend-3 served", "--requests", "600")
    _install(p, good)
    _assert_pass(p, "--requests", "600")

    # scaleout never noticed: its files and the balancer's routing are as they were
    assert all(row["routed"] for row in _status(p).values())
    assert "backup" in (p.path / ".scaleout" / "nginx" / "nginx.conf").read_text()
