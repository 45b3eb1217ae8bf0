"""`scaleout logs`: the output of the stack's containers, merged in time order, as Compose shows it.

Every line is read with the engine's own timestamp (`docker logs --timestamps`), which is what makes a
merge across containers possible: each container's lines are already in order, so the history is a
k-way merge by timestamp. Following is two phases: first the history (printed merged), then one reader
thread per container from the last timestamp it had, feeding one queue. A reader whose container stops
waits for it to run again (a `scaleout restart` during a failure drill) and goes on from where it was;
it ends when the container is removed. Containers that start later (a rolling update replaces every
replica's container; a rescale adds replicas) are found by looking at the stack again every second, and
`logs -f` ends when every reader has and no new container came (`scaleout down`).
"""

from __future__ import annotations

import heapq
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scaleout.config.values import duration_seconds
from scaleout.errors import UsageError

_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")
REATTACH_POLL_S = 0.5
RESCAN_S = 1.0  # how often `logs -f` looks for containers that started since


@dataclass(frozen=True)
class LogLine:
    service: str
    stamp: str  # the engine's RFC 3339 timestamp, as it gave it
    text: str
    ns: int = field(compare=False)  # the stamp in nanoseconds since the epoch (0: no stamp)


def stamp_ns(stamp: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 timestamp with up to 9 fraction digits; 0 if not one."""
    m = _STAMP.match(stamp)
    if not m:
        return 0
    whole, frac, zone = m.groups()
    dt = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return int(dt.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


def parse_line(service: str, raw: str) -> LogLine:
    """One `--timestamps` line: `STAMP text`."""
    raw = raw.rstrip("\r")
    stamp, _, text = raw.partition(" ")
    ns = stamp_ns(stamp)
    if not ns:  # not stamped (cannot happen with timestamps=True, but never lose a line over it)
        return LogLine(service, "", raw, 0)
    return LogLine(service, stamp, text.rstrip("\r"), ns)


def parse_chunk(service: str, data: bytes) -> list[LogLine]:
    return [parse_line(service, raw) for raw in data.decode("utf-8", errors="replace").split("\n") if raw]


def merge(per_service: Iterable[list[LogLine]]) -> list[LogLine]:
    """Lines of several containers, each already in time order, merged by timestamp (ties keep the
    containers' order)."""
    return list(heapq.merge(*per_service, key=lambda ln: ln.ns))


def parse_since(value: str, now: float | None = None) -> float:
    """`--since` as Docker takes it: an RFC 3339 date or time (local time without a zone), a Unix
    timestamp, or a duration back from now (`10m`, `1h30m`, `45s`). Returns seconds since the epoch."""
    now = time.time() if now is None else now
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    back = duration_seconds(text)
    if back is not None:
        return now - back
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: {value!r} is not a time: use a duration such as 10m or 1h30m, a date such as "
                         "2024-05-01T12:00:00Z, or a Unix timestamp") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # as Docker does: a time without a zone is local time
    return dt.timestamp()


def parse_tail(value: str) -> int | str:
    """`--tail`: a number of lines per container, or `all`."""
    text = value.strip().lower()
    if text == "all":
        return "all"
    if text.isdigit():
        return int(text)
    raise UsageError(f"--tail: must be a number of lines or 'all' (got {value!r})")


def read_history(containers: dict[str, Any], *, since: float | None, tail: int | str) -> list[LogLine]:
    """Every selected container's lines so far (`since`, `tail` per container), merged in time order."""
    per_service = []
    for service, c in containers.items():
        kwargs: dict[str, Any] = {"timestamps": True, "tail": tail}
        if since is not None:
            kwargs["since"] = max(since, 1e-6)
        per_service.append(parse_chunk(service, c.logs(**kwargs)))
    return merge(per_service)


@dataclass
class _Done:
    service: str
    error: BaseException | None = None


class Follower:
    """One reader thread per container, from where the history ended; `lines()` yields what they read.
    With `rescan` (the stack's containers now, as (service, container) pairs), containers that start
    later are followed too: a rolling update's new replicas, a rescale's new ones, a recreated balancer."""

    def __init__(self, containers: dict[str, Any], history: list[LogLine], started: float,
                 rescan: Callable[[], Iterable[tuple[str, Any]]] | None = None, rescan_s: float = RESCAN_S) -> None:
        self.queue: queue.Queue[LogLine | _Done] = queue.Queue()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.known: set[str] = set()
        self.rescan = rescan
        self.rescan_s = rescan_s
        for service, c in containers.items():
            own = [ln for ln in history if ln.service == service and ln.ns]
            last_ns = own[-1].ns if own else int(started * 1e9)
            seen = {ln.text for ln in own if ln.ns == last_ns}
            self._add(service, c, last_ns, seen)

    def _add(self, service: str, container: Any, last_ns: int, seen: set[str]) -> threading.Thread:
        self.known.add(_ident(container))
        t = threading.Thread(target=self._read, args=(service, container, last_ns, seen), daemon=True,
                             name=f"logs-{service}")
        self.threads.append(t)
        return t

    def _scan(self) -> int:
        """Start readers for running containers not followed yet (their whole log is new); how many."""
        started = 0
        for service, c in self.rescan() if self.rescan is not None else ():
            if _ident(c) in self.known or getattr(c, "status", "running") != "running":
                continue  # followed already, or not running yet (the next scan sees it start)
            self._add(service, c, 0, set()).start()
            started += 1
        return started

    def lines(self, poll_s: float = 0.2) -> Iterator[LogLine]:
        """Lines as they come, until every container is gone. Raises what a reader met (engine errors)."""
        for t in self.threads:
            t.start()
        running = len(self.threads)
        next_scan = time.monotonic() + self.rescan_s
        while True:
            if self.rescan is not None and (not running or time.monotonic() >= next_scan):
                running += self._scan()
                next_scan = time.monotonic() + self.rescan_s
            if not running:
                return
            try:
                item = self.queue.get(timeout=poll_s)
            except queue.Empty:
                continue
            if isinstance(item, _Done):
                running -= 1
                if item.error is not None:
                    self.stop.set()
                    raise item.error
                continue
            yield item

    def close(self) -> None:
        """Let the readers go: they are daemon threads, blocked in the engine's stream at worst."""
        self.stop.set()

    def _read(self, service: str, container: Any, last_ns: int, seen: set[str]) -> None:
        import docker.errors
        import requests.exceptions

        def put_new(lines: list[LogLine]) -> None:
            nonlocal last_ns, seen
            for ln in lines:
                if ln.ns and (ln.ns < last_ns or (ln.ns == last_ns and ln.text in seen)):
                    continue  # printed already (the history, or before a restart)
                if ln.ns > last_ns:
                    last_ns, seen = ln.ns, set()
                seen.add(ln.text)
                self.queue.put(ln)

        try:
            while not self.stop.is_set():
                # a millisecond early, then drop what was printed: `since` travels as a rounded float (and
                # the engine refuses a float in exponent notation: a new container's log is read whole)
                since = round(last_ns / 1e9 - 0.001, 6) if last_ns > 1_000_000 else None
                pending = b""
                for chunk in container.logs(stream=True, follow=True, timestamps=True, since=since):
                    if self.stop.is_set():
                        return
                    complete, _, pending = (pending + chunk).rpartition(b"\n")
                    put_new(parse_chunk(service, complete))
                put_new(parse_chunk(service, pending))
                # the stream ends when the container stops: wait for it to run again, or to be removed
                while not self.stop.is_set():
                    container.reload()
                    if container.status == "running":
                        break
                    self.stop.wait(REATTACH_POLL_S)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            self.queue.put(_Done(service, exc))
            return
        self.queue.put(_Done(service))


def _ident(container: Any) -> str:
    return getattr(container, "id", None) or f"object-{id(container)}"


def follow(containers: dict[str, Any], history: list[LogLine], started: float,
           emit: Callable[[LogLine], None], rescan: Callable[[], Iterable[tuple[str, Any]]] | None = None) -> None:
    """Print new lines of every container until all are removed or the user stops it (Ctrl-C); with
    `rescan`, containers that start meanwhile are followed too."""
    f = Follower(containers, history, started, rescan=rescan)
    try:
        for ln in f.lines():
            emit(ln)
    finally:
        f.close()
