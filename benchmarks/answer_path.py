#!/usr/bin/env python3
"""The probe's Python time per answer, without sockets: CPU time of `data_received` for a balancer's answer.

    python benchmarks/answer_path.py                      # this checkout
    python benchmarks/answer_path.py --root OLD_CHECKOUT  # another checkout's engine (e.g. `git archive main`)

Feeds one connection of the engine a fresh copy of nginx's answer (as a socket read would give it) N times,
with a transport whose write does nothing; each answer is recorded and the next request "sent". What it
measures is the interpreter's work per answer (parser, attribution, histogram, next request), the part
of the client's cost that is not the kernel's; run it several times, interleaved with --root, and compare
the lowest numbers (a shared machine's steal time only ever adds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ANSWER = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 17:18:00 GMT\r\n"
          b"Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n"
          b"X-Upstream-Addr: 172.18.0.3:8000\r\n\r\nok\n")


class _Transport:
    def write(self, data: bytes) -> None:
        pass


def per_answer_ns(n: int) -> float:
    from scaleout.probe import conn
    from scaleout.probe.samples import LoadSpec

    w = conn.Worker(LoadSpec(url="http://127.0.0.1:9", requests=n + 1), n + 1, 1, None, 0, None)
    w.deadline = None
    c = conn._Conn(w)
    c.connection_made(_Transport())
    w.next_for(c)
    feed = c.data_received
    raw = bytearray(ANSWER)
    t = time.process_time()
    for _ in range(n):
        feed(bytes(raw))  # a new bytes object each time, as every read is
    spent = time.process_time() - t
    t = time.process_time()
    for _ in range(n):
        bytes(raw)
    spent -= time.process_time() - t  # the copies are the socket's work, not the engine's
    if len(w.s) != n:
        raise SystemExit(f"recorded {len(w.s)} answers of {n}")
    return spent / n * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("-n", type=int, default=300_000)
    args = ap.parse_args()
    sys.path.insert(0, str(args.root))
    print(f"{args.root}: {per_answer_ns(args.n):.0f} ns of CPU per answer")


if __name__ == "__main__":
    main()
