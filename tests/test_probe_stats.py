"""Statistics and the text report of the probe, on known numbers."""

from __future__ import annotations

import io

import pytest

from scaleout.loadgen import Samples
from scaleout.probe import judge, summarize
from scaleout.report import ProgressBar, probe_text, spread_bar
from scaleout.stats import chi2_sf, chi_square_p, latency_summary, max_relative_deviation, percentile


@pytest.mark.parametrize("x,k,p", [(3.841459, 1, 0.05), (5.991465, 2, 0.05), (6.634897, 1, 0.01),
                                   (0.0, 3, 1.0), (2.0, 2, 0.367879), (30.0, 4, 4.894437e-06)])
def test_chi_square_tail_matches_tables(x, k, p):
    assert chi2_sf(x, k) == pytest.approx(p, rel=1e-4, abs=1e-9)


def test_chi_square_p_of_an_even_and_an_uneven_spread():
    assert chi_square_p([100, 100, 100], [100.0] * 3) == pytest.approx(1.0)
    assert chi_square_p([150, 100, 50], [100.0] * 3) < 1e-9
    assert chi_square_p([5], [5.0]) is None


def test_percentiles_are_nearest_rank():
    v = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert percentile(v, 50) == 0.050 and percentile(v, 99) == 0.099 and percentile([], 50) == 0.0
    assert latency_summary(v) == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0, "mean": 50.5}


def test_max_relative_deviation():
    assert max_relative_deviation([120, 80, 100], [100.0] * 3) == pytest.approx(0.2)


def samples_of(rows) -> Samples:
    """rows: (latency_s, status, upstream, error_code)"""
    s = Samples()
    for lat, status, up, err in rows:
        if up not in s.upstreams:
            s.upstreams.append(up)
        s.latency.append(lat)
        s.status.append(status)
        s.upstream.append(s.upstreams.index(up))
        s.error.append(err)
    return s


def test_summary_per_replica_and_overall():
    rows = [(0.001, 200, "10.0.0.2:8000", 0)] * 6 + [(0.003, 200, "10.0.0.3:8000", 0)] * 3 \
        + [(0.010, 502, "10.0.0.3:8000", 0)] + [(0.5, 0, "", 2), (0.1, 0, "", 3)]
    r = summarize(samples_of(rows), 2.0, "http://127.0.0.1:1",
                  {"10.0.0.2:8000": "backend-1", "10.0.0.3:8000": "backend-2"})
    assert r.requests == 12 and r.ok == 9 and r.failed == 3 and r.rps == 6.0
    assert r.errors == {"connect": 0, "timeout": 1, "reset": 1, "protocol": 0}
    assert r.status_codes == {"200": 9, "502": 1}
    b1, b2 = r.backends
    assert (b1.name, b1.count, b1.share) == ("backend-1", 6, 0.6)
    assert (b2.name, b2.count, b2.status_codes) == ("backend-2", 4, {"200": 3, "502": 1})
    assert b2.latency_ms["max"] == 10.0 and r.latency_ms["max"] == 10.0  # transport errors have no latency sample
    d = r.to_dict()
    assert d["schema"] == "scaleout.probe/1"


def test_text_report_shows_bars_errors_and_verdict():
    rows = [(0.001, 200, "10.0.0.2:8000", 0)] * 60 + [(0.002, 200, "10.0.0.3:8000", 0)] * 40
    s = samples_of(rows)
    r = summarize(s, 1.0, "http://127.0.0.1:1", {"10.0.0.2:8000": "backend-1", "10.0.0.3:8000": "backend-2"})
    judge(r, s, strategy="round_robin", expected=["backend-1", "backend-2"], tolerance=0.1)
    text = probe_text(r)
    assert "backend-1" in text and "60.0%" in text and "chi-square p" in text
    assert "verdict: FAIL" in text and "expected 50.0%" in text
    lines = [line for line in text.splitlines() if line.startswith("backend-")]
    assert lines[0].count("#") > lines[1].count("#") > 0


def test_spread_bar_marks_the_expected_share():
    assert spread_bar(0.5, 0.5, 0.5, width=10) == "#" * 10
    assert spread_bar(0.25, 0.5, 0.5, width=10) == "#####    |"
    assert spread_bar(0.0, None, 0.5, width=10) == ""


def test_progress_bar_draws_on_its_stream_and_ends_the_line():
    out = io.StringIO()
    bar = ProgressBar(out)
    bar.update(50, 100)
    bar.update(100, 100)
    bar.close()
    text = out.getvalue()
    assert "\r[" in text and "100/100 req" in text and text.endswith("\n")
