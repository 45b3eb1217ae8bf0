"""Statistics and the text report of the probe, on known numbers."""

from __future__ import annotations

import io
import math

import pytest

from scaleout.probe.engine import ERROR_CLASSES, Samples
from scaleout.probe.project import judge, summarize
from scaleout.probe.stats import breakdown, chi2_sf, chi_square_p, latency_summary, max_relative_deviation, percentile
from scaleout.report import ProgressBar, probe_text, spread_bar


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
    assert percentile(v, 100) == 0.100 and percentile(v, 0) == 0.001 and percentile(v, 250) == 0.100
    assert percentile(list(range(1, 1001)), 99) == 990
    assert latency_summary(v) == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0, "mean": 50.5}
    assert latency_summary([]) == {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    assert latency_summary([0.00123456])["p50"] == 1.235  # milliseconds to the microsecond


def test_max_relative_deviation():
    assert max_relative_deviation([120, 80, 100], [100.0] * 3) == pytest.approx(0.2)
    assert max_relative_deviation([1, 3], [0.5, 0.0]) == 1.0  # categories without an expectation are left out
    assert max_relative_deviation([], []) == 0.0


def test_chi_square_p_with_small_expectations():
    assert chi_square_p([1, 0], [0.5, 0.5]) == pytest.approx(chi2_sf(1.0, 1))
    assert chi_square_p([1, 0], [1.0, 0.0]) is None


@pytest.mark.parametrize("fn", [max_relative_deviation, chi_square_p])
def test_counts_and_expectations_of_different_lengths_are_a_bug(fn):
    with pytest.raises(ValueError):
        fn([1, 2, 3], [1.0, 2.0])


def closed_form_sf(x: float, k: int) -> float:
    """Chi-square survival function for k = 1..4 from closed forms (erfc, exp)."""
    if k == 1:
        return math.erfc(math.sqrt(x / 2))
    if k == 2:
        return math.exp(-x / 2)
    if k == 3:
        return math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    return math.exp(-x / 2) * (1 + x / 2)


# both of chi2_sf's methods (series below x/2 < k/2 + 1, continued fraction above), odd and even k
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("x", [0.01, 0.3, 1.0, 2.5, 4.0, 6.0, 9.0, 20.0, 60.0])
def test_chi_square_tail_matches_closed_forms(x, k):
    assert chi2_sf(x, k) == pytest.approx(closed_form_sf(x, k), rel=1e-9, abs=1e-15)


def samples_of(rows, keys=None) -> Samples:
    """rows: (latency_s, status, upstream, error_code); keys: the sticky key of each row (None: no keys sent)"""
    s = Samples()
    for (lat, status, up, err), key in zip(rows, keys if keys is not None else [-1] * len(rows), strict=True):
        s.record(lat, status, up, ERROR_CLASSES[err - 1] if err else "", key)
    return s


def test_summary_per_replica_and_overall():
    rows = [(0.001, 200, "10.0.0.2:8000", 0)] * 6 + [(0.003, 200, "10.0.0.3:8000", 0)] * 3 \
        + [(0.010, 502, "10.0.0.3:8000", 0)] + [(0.5, 0, "", 2), (0.1, 0, "", 3)]
    names = {"10.0.0.2:8000": "backend-1", "10.0.0.3:8000": "backend-2"}
    r = summarize(samples_of(rows), 2.0, "http://127.0.0.1:1", names)
    assert r.requests == 12 and r.ok == 9 and r.failed == 3 and r.rps == 6.0
    assert r.errors == {"connect": 0, "timeout": 1, "reset": 1, "protocol": 0, "tls": 0}
    assert r.status_codes == {"200": 9, "502": 1}
    b1, b2 = r.backends
    assert (b1.name, b1.count, b1.share) == ("backend-1", 6, 0.6)
    assert (b2.name, b2.count, b2.status_codes) == ("backend-2", 4, {"200": 3, "502": 1})
    assert b2.latency_ms["max"] == 10.0 and r.latency_ms["max"] == 10.0  # transport errors have no latency sample
    d = r.to_dict()
    assert d["schema"] == "scaleout.probe/1"


def test_breakdown_counts_keys_statuses_and_unattributed_answers():
    rows = [(0.001, 200, "10.0.0.2:8000", 0)] * 4 + [(0.001, 400, "10.0.0.2:8000", 0)] \
        + [(0.001, 399, "10.0.0.3:8000", 0)] * 2 + [(0.001, 200, "", 0)] * 3 + [(0.2, 0, "", 2)]
    s = samples_of(rows, keys=[0, 1, 2, 0, 1, 3, 3, 4, 5, 6, 7])
    b = breakdown(s)
    assert (b["requests"], b["ok"], b["unattributed"]) == (11, 9, 3)
    assert b["status_codes"] == {"200": 7, "399": 2, "400": 1}
    one, two = b["backends"]["10.0.0.2:8000"], b["backends"]["10.0.0.3:8000"]
    assert (one["count"], one["keys"], one["share"], one["status_codes"]) == (5, 3, 0.7143, {"200": 4, "400": 1})
    assert (two["count"], two["keys"], two["share"]) == (2, 1, 0.2857)
    s = samples_of([(0.001, 200, "10.0.0.2:8000", 0)] * 2)
    assert breakdown(s)["backends"]["10.0.0.2:8000"]["keys"] == 0  # no sticky keys sent


def test_breakdown_counts_every_transport_error_by_class():
    s = samples_of([(0.2, 0, "", 1)] * 2 + [(0.2, 0, "", 3)] + [(0.001, 200, "10.0.0.2:8000", 0)])
    b = breakdown(s)
    assert b["errors"] == {"connect": 2, "timeout": 0, "reset": 1, "protocol": 0, "tls": 0}
    assert (b["requests"], b["ok"]) == (4, 1)


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
