"""The probe's per-replica counts against an independent count: the balancer's own access log."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter

import docker
import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

_UPSTREAM = re.compile(r"upstream=(\S+(?:, \S+)*)")


def _lb_log_counts(project: str, marker: str, since: float) -> Counter:
    """Per-upstream counts of the request record's lines (log_format scaleout) since `since` for path `marker`
    (the record leaves query strings out)."""
    client = docker.from_env()
    lb = client.containers.list(filters={"label": [f"com.docker.compose.project={project}",
                                                   "com.docker.compose.service=lb"]})[0]
    seen: Counter = Counter()
    for line in lb.logs(stdout=True, stderr=False, since=since).decode(errors="replace").splitlines():
        if line.endswith(f" p={marker}"):
            m = _UPSTREAM.search(line)
            seen[m.group(1).split(",")[-1].strip() if m else "-"] += 1
    return seen


@pytest.mark.parametrize("extra", [["--workers", "2", "--concurrency", "8"], ["--rate", "300", "--concurrency", "8"]],
                         ids=["closed-loop-2-workers", "open-loop"])
def test_probe_counts_match_the_balancer_access_log(make_project, extra):
    p = make_project()
    p.cli("up", "--replicas", "3", check=True)
    marker = uuid.uuid4().hex
    n = 900
    since = time.time()
    r = p.cli("probe", "--json", "--requests", str(n), "--path", f"/api/whoami?m={marker}", "--no-cache-check", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["ok"] == n and res["unattributed"] == 0
    probe_counts = Counter({b["address"]: b["count"] for b in res["backends"]})
    assert sum(probe_counts.values()) == n and len(probe_counts) == 3

    log_counts = wait_for(lambda: (c := _lb_log_counts(p.name, "/api/whoami", since)) and sum(c.values()) >= n and c,
                          timeout=20, what=f"{n} access-log lines")
    assert log_counts == probe_counts
