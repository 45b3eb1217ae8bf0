"""A log-bucketed latency histogram: constant memory however long the probe runs, mergeable across processes.

HdrHistogram's layout without its fixed range: a value's bucket is its binary exponent and the top 8 bits
of its mantissa (`math.frexp`), so a bucket spans at most 1/128 of its lower bound, and the bucket's
midpoint lies within 1/256 (0.39%) of every value in it, from nanoseconds to hours. A percentile is the
nearest-rank bucket's midpoint, clamped to the exact minimum and maximum, so it is within 0.4% of the
exact nearest-rank percentile of the recorded values; the mean and the maximum are exact.

Why not the `hdrhistogram` package (measured, benchmarks/RESULTS.md, section 7): its `record_value` is
pure Python over a ctypes array and costs 2.5 times the probe's whole per-answer recording here, it
records integers in a range fixed up front, and its objects do not pickle (they cross processes as
zlib+base64 text). This one is a dict of counts: it pickles as is,
and merging is adding counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

_frexp = math.frexp
SUB_BITS = 8  # mantissa bits kept: buckets are at most 2 ** -(SUB_BITS - 1) wide, relative to their value
RELATIVE_ERROR = 2.0 ** -SUB_BITS  # bound on |percentile - exact| / exact (midpoint of the widest bucket)


def bucket_of(x: float) -> int:
    """The bucket of a value >= 0 (0 has a bucket of its own: no positive value's mantissa bits are 0).
    Order buckets by `bucket_order`, not by their index."""
    m, e = _frexp(x)
    return (e << SUB_BITS) + int(m * 256.0)


def bucket_order(b: int) -> int:
    """Sort key of buckets in the order of their values: 0's bucket (index 0) comes before every other, whose
    indexes are negative below 0.5 (the hot path does not spend a branch on a value it never measures)."""
    return b if b & 255 else -(1 << 62)


def bucket_bounds(b: int) -> tuple[float, float]:
    """[low, high) of the values in bucket `b`."""
    sub, e = b & 255, b >> SUB_BITS
    if sub == 0:
        return 0.0, 0.0
    return math.ldexp(sub, e - SUB_BITS), math.ldexp(sub + 1, e - SUB_BITS)


class Histogram:
    """Counts per bucket, plus the exact sum, minimum and maximum. Values are >= 0 (seconds here)."""

    __slots__ = ("counts", "total", "low", "high")

    def __init__(self, values: Iterable[float] = ()) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0.0
        self.low = math.inf
        self.high = 0.0
        for x in values:
            self.record(x)

    def record(self, x: float) -> None:
        # the load engine's hot path (once per answer): bucket_of inlined (8 = SUB_BITS), no other call
        m, e = _frexp(x)
        b = (e << 8) + int(m * 256.0)
        c = self.counts
        c[b] = c.get(b, 0) + 1
        self.total += x
        if x > self.high:
            self.high = x
        if x < self.low:
            self.low = x

    def __len__(self) -> int:
        return sum(self.counts.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (self.counts, self.low, self.high) == (other.counts, other.low, other.high) and math.isclose(
            self.total, other.total, rel_tol=1e-9, abs_tol=1e-12)  # sums in another order differ in the last bits

    def __getstate__(self):
        return self.counts, self.total, self.low, self.high

    def __setstate__(self, state) -> None:
        self.counts, self.total, self.low, self.high = state

    def merge(self, other: Histogram) -> None:
        """Add `other`'s values to this histogram."""
        c = self.counts
        for b, n in other.counts.items():
            c[b] = c.get(b, 0) + n
        self.total += other.total
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile (as stats.percentile on the sorted values), within RELATIVE_ERROR; 0 when empty."""
        n = len(self)
        if not n:
            return 0.0
        rank = max(0, min(n - 1, math.ceil(q / 100.0 * n) - 1)) + 1
        seen = 0
        for b in sorted(self.counts, key=bucket_order):
            seen += self.counts[b]
            if seen >= rank:
                lo, hi = bucket_bounds(b)
                return min(self.high, max(self.low, (lo + hi) / 2))
        raise AssertionError("unreachable: the counts add up to n")  # pragma: no cover

    def count_at_least(self, x: float) -> int:
        """How many values were >= x, counting x's own bucket whole (so within one bucket of exact)."""
        b = bucket_order(bucket_of(x))
        return sum(n for k, n in self.counts.items() if bucket_order(k) >= b)

    def mean(self) -> float:
        n = len(self)
        return self.total / n if n else 0.0
