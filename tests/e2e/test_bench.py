"""`scaleout bench` on a real stack: every point measured, the plot written, the stack resized."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.e2e


def test_bench_measures_each_replica_count_and_writes_a_plot(make_project):
    p = make_project(replace={'CPU_WORK_MS: "0"': 'CPU_WORK_MS: "5"'})
    plot = p.path / "bench-out.svg"
    r = p.cli("bench", "--replicas", "1,2", "--duration", "2", "--warmup", "0.5", "--concurrency", "8",
              "--plot", str(plot), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["schema"] == "scaleout.bench/1" and res["cpu_work_ms"] == "5"
    assert [pt["replicas"] for pt in res["points"]] == [1, 2]
    for pt in res["points"]:
        assert pt["requests"] > 0 and pt["rps"] > 0 and pt["failed"] == 0
        assert pt["replicas_served"] == pt["replicas"]
        assert set(pt["latency_ms"]) >= {"p50", "p99", "max"}
    assert res["points"][0]["efficiency"] == 1.0 and res["points"][1]["efficiency"] > 0
    assert res["plot"] == str(plot)
    svg = ET.parse(plot).getroot()
    assert svg.tag.endswith("svg") and len(svg.findall(".//{http://www.w3.org/2000/svg}rect")) >= 3

    st = json.loads(p.cli("status", "--json", check=True).stdout)
    assert [x["service"] for x in st["replicas"]] == ["backend-1", "backend-2"]

    text = p.cli("bench", "--replicas", "2", "--duration", "1", "--warmup", "0", "--no-build")
    assert text.returncode == 0, text.stderr
    assert "efficiency" in text.stdout and "req/s" in text.stdout and (p.path / ".scaleout" / "bench.svg").exists()


def test_bench_rejects_bad_replica_counts(make_project):
    p = make_project()
    r = p.cli("bench", "--replicas", "1,x")
    assert r.returncode == 2 and "--replicas" in r.stderr and "Traceback" not in r.stderr
