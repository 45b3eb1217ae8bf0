"""The benchmark script runs and writes its results (no timing is asserted: speed belongs to benchmarks/)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT
from tests.helpers.probe_testserver import MisbehavingServer

SCRIPT = ROOT / "benchmarks" / "run.py"


def run(*args: str, out) -> dict:
    r = subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(out.read_text())


def test_startup_section_writes_medians(tmp_path):
    res = run("startup", "--rounds", "1", out=tmp_path / "r.json")
    assert set(res["startup"]["median_ms"]) == {"python -c pass", "scaleout --help", "scaleout render"}
    assert res["machine"]["cpus"] >= 1


def test_speed_section_compares_probe_hey_and_wrk_on_one_target(tmp_path):
    with MisbehavingServer() as srv:
        res = run("speed", "--url", srv.url + "/", "--rounds", "1", "--requests", "300", "--concurrency", "4",
                  "--wrk-seconds", "1", out=tmp_path / "r.json")
    med = res["speed"]["median"]
    rates = ("probe", "probe (1 worker)", "hey", "wrk", "probe/hey", "probe/wrk")
    assert all(med[k] > 0 for k in rates)
    # client CPU per request: hey's and wrk's as measured; the probe's has its CLI's start taken off, which
    # at 300 requests is within that start's own noise (a value, of either sign)
    assert med["hey us/req"] > 0 and med["wrk us/req"] > 0
    assert all(isinstance(med[f"{k} us/req"], float | int) for k in ("probe", "probe (1 worker)"))
