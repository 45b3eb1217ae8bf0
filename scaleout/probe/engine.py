"""The probe's load engine: HTTP/1.1 over keep-alive connections, driven by protocol callbacks.

Why it looks like this (measured, see benchmarks/RESULTS.md): one coroutine and one future per request
cost more than the request itself, so the request/response loop lives in the protocol callbacks
(uvloop when installed, the httptools parser, only the header callback it needs). Several worker
processes, each with its own event loop, use every core, as hey and wrk do.

Count mode with several processes: each starts with a small share and then claims requests from a pool
shared by the processes (a lock per claim of up to 512 requests), so a process the scheduler starves on
shared cores leaves its work to the others. With fixed shares the run's end waited for the slowest process:
on the 2 shared cores it measured 8k req/s in a round where one process alone did 46k.

Load shapes: closed loop (each connection sends its next request when the previous answer arrived) by
count or by duration, and open loop at a constant arrival rate, where a request's latency is measured
from its *intended* send time, so a stalled server shows up as high latency (no coordinated omission).

Prints nothing: `run_load` returns a `Samples` value (counts and latency histograms, merged across the
processes: its size does not grow with the run's length); progress is reported through a callback.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Callable

from scaleout.probe.conn import Worker
from scaleout.probe.samples import ERROR_CLASSES, LoadSpec, Sample, Samples, request_bytes

__all__ = ["ERROR_CLASSES", "LoadSpec", "Sample", "Samples", "request_bytes", "run_load", "default_workers"]


def _event_loop_runner():
    try:
        import uvloop

        return uvloop.run
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run


def default_workers() -> int:
    """One process per core, at most 4 (connections are shared out among them)."""
    if sys.platform != "linux":
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0))))


def _plan(spec: LoadSpec) -> list[tuple[int, int, float | None]]:
    """Split requests, connections and rate among worker processes: [(share, slots, rate)]."""
    n = spec.workers or default_workers()
    n = max(1, min(n, spec.concurrency))
    if spec.duration_s is None:
        n = max(1, min(n, spec.requests))
        if spec.requests < 2000:  # a short run is over before a second process pays for its start
            n = 1
    slots = [spec.concurrency // n + (1 if i < spec.concurrency % n else 0) for i in range(n)]
    shares = [spec.requests // n + (1 if i < spec.requests % n else 0) for i in range(n)]
    rates = [spec.rate / n if spec.rate else None for _ in range(n)]
    if spec.duration_s is None:
        slots = [min(sl, sh) for sl, sh in zip(slots, shares, strict=True)]
    return list(zip(shares, slots, rates, strict=True))


def run_load(spec: LoadSpec, progress: Callable[[int, int | None], None] | None = None) -> Samples:
    """Send the load `spec` describes and return what it saw. `progress(done, total)` is called a few
    times a second from this process (total is None for a run by duration)."""
    if not spec.addresses:  # one lookup here, none per connection (every worker connects to these addresses)
        from dataclasses import replace

        from scaleout.probe.target import resolve_addresses

        spec = replace(spec, addresses=resolve_addresses(spec.url))
    plan = _plan(spec)
    total = None if spec.duration_s else (spec.requests if spec.rate is None or spec.duration_s is None else None)
    run = _event_loop_runner()
    if len(plan) == 1:
        share, slots, rate = plan[0]
        cb = (lambda done: progress(done, total)) if progress else None
        out = run(Worker(spec, share, slots, rate, 0, cb).run())
        out.workers = 1
        return out
    return _run_processes(spec, plan, progress, total)


def _run_processes(spec, plan, progress, total) -> Samples:
    import multiprocessing as mp

    import httptools  # noqa: F401 - imported once here, inherited by every forked worker

    ctx = mp.get_context("fork")
    counters = [ctx.RawValue("q", 0) for _ in plan]
    pool = None
    if spec.duration_s is None and spec.rate is None:  # count mode, closed loop: a first share each, then claims
        pool = (ctx.RawValue("q", 0), ctx.Lock(), max(16, min(512, spec.requests // (8 * len(plan)))))
        first = [min(share, pool[2]) for share, _, _ in plan]
        pool[0].value = spec.requests - sum(first)
        plan = [(f, slots, rate) for f, (_, slots, rate) in zip(first, plan, strict=True)]
    # the clock starts when every worker is ready: a slow fork must not count as slow load
    ready = ctx.Barrier(len(plan) + 1)
    pipes, procs = [], []
    for i, (share, slots, rate) in enumerate(plan):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_child, args=(spec, share, slots, rate, i, counters[i], ready, send, pool),
                        daemon=True)
        pipes.append(recv)
        procs.append((p, send))
    for p, _ in procs:
        p.start()
    for _, send in procs:
        send.close()
    try:
        ready.wait(timeout=60)
    except threading.BrokenBarrierError:
        raise RuntimeError("the load worker processes did not start") from None
    merged = Samples()
    results: list[Samples | None] = [None] * len(plan)
    import multiprocessing.connection as mpc

    waiting = dict(enumerate(pipes))
    while waiting:
        ready = mpc.wait(list(waiting.values()), timeout=0.2)
        for r in ready:
            i = next(k for k, v in waiting.items() if v is r)
            try:
                results[i] = r.recv()  # a worker's Samples, pickled: a few thousand counts, not one per request
            except EOFError:
                raise RuntimeError(f"load worker {i} died (exit code {procs[i][0].exitcode})") from None
            del waiting[i]
        if progress:
            progress(sum(c.value for c in counters), total)
    for p, _ in procs:
        p.join()
    for r in results:
        merged.extend(r)
    merged.duration_s = max(r.duration_s for r in results)
    merged.workers = len(plan)
    return merged


def _child(spec, share, slots, rate, index, counter, ready, conn, pool) -> None:
    def report(done: int) -> None:
        counter.value = done

    claim = None
    if pool is not None:
        left, lock, chunk = pool

        def claim() -> int:
            with lock:  # once per `chunk` requests: the lock costs nothing measurable
                n = min(chunk, left.value)
                left.value -= n
            return n

    ready.wait()
    conn.send(_event_loop_runner()(Worker(spec, share, slots, rate, index, report, claim).run()))
    conn.close()
