"""The probe's latency histogram and aggregated samples: percentiles against exact computation, merges,
and a size that does not grow with the number of requests."""

from __future__ import annotations

import pickle
import random

import pytest

from scaleout.probe.histogram import RELATIVE_ERROR, Histogram, bucket_bounds, bucket_of, bucket_order
from scaleout.probe.samples import ERR_CODE, Samples
from scaleout.probe.stats import breakdown, histogram_summary, latency_summary, percentile

QS = (0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100)


def distributions() -> dict[str, list[float]]:
    rnd = random.Random(14)
    return {
        "lognormal": [rnd.lognormvariate(-7, 1.2) for _ in range(20000)],
        "pareto heavy tail": [0.0005 * rnd.paretovariate(1.1) for _ in range(20000)],
        "exponential": [rnd.expovariate(1000) for _ in range(20000)],
        "uniform": [rnd.uniform(0.001, 0.002) for _ in range(5000)],
        "tiny values": [rnd.uniform(1e-9, 3e-7) for _ in range(5000)],
        "hours": [rnd.uniform(3600, 7200) for _ in range(500)],
        "single value": [0.00123456] * 777,
        "one sample": [0.0421],
        "two clusters": [0.001] * 990 + [2.5] * 10,
        "with zeros": [0.0] * 30 + [rnd.uniform(0.001, 0.01) for _ in range(70)],
    }


@pytest.mark.parametrize("name", list(distributions()))
def test_percentiles_are_within_the_bound_of_exact_nearest_rank(name):
    values = distributions()[name]
    h = Histogram(values)
    exact = sorted(values)
    for q in QS:
        want = percentile(exact, q)
        got = h.percentile(q)
        assert abs(got - want) <= RELATIVE_ERROR * want * (1 + 1e-12), (q, got, want)
        assert abs(got - want) <= 0.01 * want  # what the probe promises: 1%
    assert h.high == exact[-1] and h.low == exact[0] and len(h) == len(values)
    assert h.mean() == pytest.approx(sum(values) / len(values), rel=1e-12)


@pytest.mark.parametrize("name", ["lognormal", "pareto heavy tail", "single value", "two clusters"])
def test_the_summary_matches_the_exact_one(name):
    values = distributions()[name]
    got, want = histogram_summary(Histogram(values)), latency_summary(values)
    assert got.keys() == want.keys()
    assert got["max"] == want["max"] and got["mean"] == pytest.approx(want["mean"], abs=0.001)
    for p in ("p50", "p90", "p99"):
        assert got[p] == pytest.approx(want[p], rel=0.01, abs=0.0005), p  # abs: both rounded to the microsecond


def test_an_empty_histogram_summarizes_to_zeros():
    assert histogram_summary(Histogram()) == latency_summary([])


@pytest.mark.parametrize("x", [0.0, 1e-300, 1e-9, 0.25, 0.5, 0.999999, 1.0, 1.0000001, 3.3, 2.0**20, 1e5])
def test_every_value_lies_in_its_bucket_and_buckets_are_narrow(x):
    lo, hi = bucket_bounds(bucket_of(x))
    if x == 0:
        assert (lo, hi) == (0.0, 0.0)
    else:
        assert lo <= x < hi and (hi - lo) / lo <= 2 * RELATIVE_ERROR


def test_buckets_keep_the_order_of_values():
    rnd = random.Random(3)
    values = sorted([0.0] + [10 ** rnd.uniform(-9, 4) for _ in range(3000)])
    buckets = [bucket_order(bucket_of(x)) for x in values]
    assert buckets == sorted(buckets)


def test_merging_equals_the_histogram_of_the_union():
    values = distributions()["lognormal"]
    a, b = Histogram(values[:7000]), Histogram(values[7000:])
    a.merge(b)
    assert a == Histogram(values)
    assert pickle.loads(pickle.dumps(a)) == a  # how a worker process sends it
    assert a != Histogram(values[1:])


def rows(n: int, seed: int = 1):
    """n recorded requests: (latency_s, status, upstream, error class, key)"""
    rnd = random.Random(seed)
    ups = ["10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000", ""]
    out = []
    for _ in range(n):
        err = rnd.choice(["", "", "", "", "", "", "timeout", "reset"])
        out.append((rnd.lognormvariate(-6, 1), 0 if err else rnd.choice([200, 200, 200, 502]),
                    "" if err else rnd.choice(ups), err, rnd.randrange(20)))
    return out


def samples_of(recorded) -> Samples:
    s = Samples()
    for r in recorded:
        s.record(*r)
    return s


def test_merged_samples_equal_the_samples_of_all_requests():
    recorded = rows(6000)
    one, two = samples_of(recorded[:2500]), samples_of(recorded[2500:])
    two.index("10.0.0.9:8000")  # the second worker met upstreams in another order
    one.extend(pickle.loads(pickle.dumps(two)))
    whole = samples_of(recorded)
    assert one.answers() == whole.answers()
    assert one.error_counts() == whole.error_counts() and len(one) == len(whole) == 6000
    assert sorted(one.key_answers()) == sorted(whole.key_answers())
    assert breakdown(one) == breakdown(whole)


def test_breakdown_latencies_are_within_one_percent_of_the_exact_ones():
    recorded = rows(20000, seed=5)
    b = breakdown(samples_of(recorded))
    answered = [r for r in recorded if not r[3]]
    assert b["latency_ms"] == pytest.approx(latency_summary([r[0] for r in answered]), rel=0.01, abs=0.0005)
    for up in ("10.0.0.2:8000", "10.0.0.3:8000"):
        exact = latency_summary([r[0] for r in answered if r[2] == up])
        assert b["backends"][up]["latency_ms"] == pytest.approx(exact, rel=0.01, abs=0.0005)
        assert b["backends"][up]["keys"] == len({r[4] for r in answered if r[2] == up})


def shape(s: Samples) -> tuple:
    """Everything whose number could grow: cells, buckets, error slots, keys, the upstreams each key reached."""
    return (len(s.cells), sum(len(h.counts) for h in s.cells.values()), len(s.errors), len(s.upstreams),
            len(s.keys), sum(len(v) for v in s.keys.values()))


def test_the_size_does_not_grow_with_the_number_of_requests():
    recorded = rows(1000, seed=9)
    s = Samples()
    ups = [s.index(u) for u in ("", "10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000")]
    index = {u: i for u, i in zip(("", "10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"), ups, strict=True)}
    calls = [(lat, status, index[up], key, ERR_CODE[err] if err else 0) for lat, status, up, err, key in recorded]

    def send(times: int) -> None:  # as the engine does: answer() and fail() with indexes
        for _ in range(times):
            for lat, status, up, key, err in calls:
                if err:
                    s.fail(err)
                else:
                    s.answer(lat, status, up, key)

    send(1)
    small, small_bytes = shape(s), len(pickle.dumps(s))
    send(999)
    assert len(s) == 1_000_000
    assert shape(s) == small
    assert len(pickle.dumps(s)) < 1.5 * small_bytes  # only the counts' digits grow


def test_a_target_naming_a_new_upstream_in_every_answer_does_not_grow_the_tables():
    from scaleout.probe.conn import Worker
    from scaleout.probe.samples import MAX_UPSTREAMS, OTHER_UPSTREAMS, LoadSpec

    w = Worker(LoadSpec(url="http://127.0.0.1:9"), 1, 1, None, 0, None)
    w.active = 20 * MAX_UPSTREAMS
    for i in range(20 * MAX_UPSTREAMS):
        w.record_ok(w.clock(), 200, f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}:80".encode(), -1)
    assert len(w.s.upstreams) == MAX_UPSTREAMS + 2  # "", the first MAX_UPSTREAMS addresses, the rest as one
    assert len(w.up_index) <= 4 * MAX_UPSTREAMS + 1
    counts = {up: len(h) for (up, _), h in w.s.answers().items()}
    assert counts[OTHER_UPSTREAMS] == 19 * MAX_UPSTREAMS and counts["10.0.0.0:80"] == 1
    assert len(w.s) == 20 * MAX_UPSTREAMS
