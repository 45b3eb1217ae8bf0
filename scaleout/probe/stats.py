"""Statistics over what the probe saw: percentiles, per-replica breakdown, goodness of fit.

Pure functions on numbers; no I/O, no third-party imports (the chi-square tail is computed here so the
probe needs no scipy).
"""

from __future__ import annotations

import math

from scaleout.probe.histogram import Histogram
from scaleout.probe.samples import Samples


def percentile(sorted_values, q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 when empty)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def _ms(x: float) -> float:
    return round(x * 1000.0, 3)


def latency_summary(latencies_s) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds, rounded to microseconds, exact (from every value: the reference
    `histogram_summary` is tested against)."""
    v = sorted(latencies_s)
    return {
        "p50": _ms(percentile(v, 50)),
        "p90": _ms(percentile(v, 90)),
        "p99": _ms(percentile(v, 99)),
        "max": _ms(v[-1] if v else 0.0),
        "mean": _ms(sum(v) / len(v) if v else 0.0),
    }


def histogram_summary(h: Histogram) -> dict[str, float]:
    """`latency_summary` of the values `h` recorded: percentiles within histogram.RELATIVE_ERROR, max and mean exact."""
    return {"p50": _ms(h.percentile(50)), "p90": _ms(h.percentile(90)), "p99": _ms(h.percentile(99)),
            "max": _ms(h.high), "mean": _ms(h.mean())}


def max_relative_deviation(counts: list[int], expected: list[float]) -> float:
    """Largest |observed - expected| / expected over the categories with an expectation."""
    return max((abs(c - e) / e for c, e in zip(counts, expected, strict=True) if e > 0), default=0.0)


def chi_square_p(counts: list[int], expected: list[float]) -> float | None:
    """p-value of Pearson's chi-square goodness of fit (None with fewer than two categories)."""
    if len(counts) < 2 or any(e <= 0 for e in expected):
        return None
    stat = sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True))
    return chi2_sf(stat, len(counts) - 1)


def chi2_sf(x: float, k: int) -> float:
    """Survival function of the chi-square distribution with k degrees of freedom
    (the regularized upper incomplete gamma function Q(k/2, x/2))."""
    a, x2 = k / 2.0, x / 2.0
    if x2 <= 0:
        return 1.0
    if x2 < a + 1:  # series for the lower part
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1
            term *= x2 / n
            total += term
            if abs(term) < abs(total) * 1e-12:
                break
        lower = total * math.exp(-x2 + a * math.log(x2) - math.lgamma(a))
        return max(0.0, min(1.0, 1.0 - lower))
    # continued fraction for the upper part (modified Lentz)
    b = x2 + 1 - a
    c = 1e300
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-12:
            break
    return max(0.0, min(1.0, h * math.exp(-x2 + a * math.log(x2) - math.lgamma(a))))


def breakdown(s: Samples) -> dict:
    """Overall and per-upstream counts, status codes, errors and latencies of `s`.

    Transport errors (connect, timeout, reset, protocol) carry no upstream: no response named one.
    """
    codes: dict[int, int] = {}
    per_codes: dict[str, dict[int, int]] = {}
    per_lat: dict[str, Histogram] = {}
    ok_lat = Histogram()
    ok = 0
    for (up, status), h in sorted(s.answers().items()):
        n = len(h)
        ok_lat.merge(h)
        codes[status] = codes.get(status, 0) + n
        if 200 <= status < 400:
            ok += n
        if up:
            per_codes.setdefault(up, {})[status] = n
            per_lat.setdefault(up, Histogram()).merge(h)
    per_keys: dict[str, int] = {}
    for ups in s.keys.values():
        for u in ups:
            per_keys[s.upstreams[u]] = per_keys.get(s.upstreams[u], 0) + 1
    attributed = sum(len(h) for h in per_lat.values())
    backends = {}
    for up, lats in per_lat.items():
        backends[up] = {
            "count": len(lats),
            "share": round(len(lats) / attributed, 4),  # attributed >= len(lats) > 0
            "latency_ms": histogram_summary(lats),
            "status_codes": {str(k): v for k, v in sorted(per_codes[up].items())},
            "keys": per_keys.get(up, 0),
        }
    return {
        "requests": len(s),
        "ok": ok,
        "unattributed": len(ok_lat) - attributed,
        "status_codes": {str(k): v for k, v in sorted(codes.items())},
        "errors": s.error_counts(),
        "latency_ms": histogram_summary(ok_lat),
        "backends": backends,
    }
