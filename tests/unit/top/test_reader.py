"""Reading the balancer's record from the engine, read after read: a request at the boundary of two reads
is counted once, however the engine's inclusive `since` and equal timestamps fall (a fake engine)."""

from __future__ import annotations

import calendar
import time

from scaleout.targets.requests import RecordReader
from scaleout.top.records import Cursor, fresh, parse
from scaleout.top.window import Window


def _stamp(sec: int, nanos: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{nanos:09d}Z"


def _record(i: int, t: float) -> str:
    return f"scaleout-request t={t:.3f} st=200 m=GET rt=0.001 urt=0.001 b=2 upstream=10.0.0.{i % 2 + 2}:8000 p=/r{i}"


class FakeBalancer:
    """The engine's `logs(since=..., timestamps=True)`: every line whose timestamp is >= since (the engine's
    bound includes its value), each prefixed with its RFC 3339 nanosecond stamp."""

    id = "lb1"

    def __init__(self) -> None:
        self.lines: list[tuple[int, int, str]] = []  # (second, nanos, text)
        self.reads: list[float] = []

    def log(self, sec: int, nanos: int, text: str) -> None:
        self.lines.append((sec, nanos, text))

    def logs(self, *, stdout: bool, stderr: bool, since: float, timestamps: bool) -> bytes:
        assert stdout and not stderr and timestamps
        self.reads.append(since)
        return "".join(f"{_stamp(s, n)} {t}\n" for s, n, t in self.lines if s + n / 1e9 >= since).encode()


T0 = 1_800_000_000


def test_a_request_at_the_boundary_of_two_reads_is_counted_once():
    lb = FakeBalancer()
    reader = RecordReader(since=T0)
    lb.log(T0, 0, _record(0, T0))  # exactly at the first read's `since`
    lb.log(T0, 500_000_000, _record(1, T0 + 0.5))
    first = reader.read([lb])
    # the next read starts at the whole second of the last line: the engine gives both lines again
    lb.log(T0, 500_000_000, _record(2, T0 + 0.5))  # same nanosecond as the last line read
    lb.log(T0 + 1, 0, _record(3, T0 + 1))  # exactly on the next whole second
    second = reader.read([lb])
    third = reader.read([lb])  # nothing new
    lb.log(T0 + 1, 0, _record(4, T0 + 1))  # again that very stamp, logged after the read
    fourth = reader.read([lb])
    assert [r.path for r in first] == ["/r0", "/r1"]
    assert [r.path for r in second] == ["/r2", "/r3"]
    assert third == []
    assert [r.path for r in fourth] == ["/r4"]
    assert lb.reads == [T0, T0, T0 + 1, T0 + 1]  # whole seconds, exact for the engine


def test_many_reads_count_every_request_exactly_once():
    lb = FakeBalancer()
    reader = RecordReader(since=T0 - 10)
    seen = []
    n = 0
    for step in range(40):  # 4 lines every step, often 2 on one stamp, read after every step
        for j in range(4):
            nanos = (step * 250_000_000 + (j // 2) * 125_000_000) % 1_000_000_000
            sec = T0 + (step * 250_000_000) // 1_000_000_000
            lb.log(sec, nanos, _record(n, sec + nanos / 1e9))
            n += 1
        seen += reader.read([lb])
    assert [r.path for r in seen] == [f"/r{i}" for i in range(n)]
    window = Window(span_s=1000)
    window.add(seen, lambda a: a)
    assert sum(t.requests for t in window.traffic(T0 + 20).values()) == n


def test_a_new_balancer_container_is_read_from_the_start():
    old, new = FakeBalancer(), FakeBalancer()
    new.id = "lb2"
    reader = RecordReader(since=T0)
    old.log(T0 + 1, 0, _record(0, T0 + 1))
    assert len(reader.read([old])) == 1
    new.log(T0 + 1, 0, _record(1, T0 + 1))  # same stamp, other container: a request of its own
    old.log(T0 + 2, 0, _record(2, T0 + 2))
    assert [r.path for r in reader.read([old, new])] == ["/r1", "/r2"]


def test_fresh_drops_what_the_cursor_read_and_orders_fractions_of_any_length():
    a, b = _stamp(T0, 100_000_000), _stamp(T0, 200_000_000)
    lines = [f"{a} x", f"{b} y", f"{b} z"]
    out, cur = fresh(lines, Cursor())
    assert out == ["x", "y", "z"] and cur == Cursor(b, 2)
    assert fresh(lines, cur) == ([], cur)
    short = b.replace(".200000000Z", ".2Z")  # the same instant without trailing zeros
    assert fresh([f"{short} y", f"{short} z", f"{short} w"], cur) == (["w"], Cursor(b, 3))
    assert cur.second == T0 == calendar.timegm(time.gmtime(T0))


def test_window_counts_a_request_on_its_lower_edge_and_drops_it_after():
    w = Window(span_s=10)
    w.add([r for r in map(parse, [_record(0, T0), _record(1, T0 + 5)]) if r], lambda a: "x")
    assert w.traffic(T0 + 10)["x"].requests == 2  # [now - span, now]: T0 is inside
    assert w.traffic(T0 + 10.001)["x"].requests == 1
    assert w.traffic(T0 + 10.001)["x"].total == 2
