"""The balancer's request record, read from the engine: lines of the balancer container's output (a Compose
container, or the balancer task's container on this swarm node), each read once, parsed by
scaleout/top/records.py. Addresses are named through the stack's own address map, read again on every
call, so it stays right across rescales, rolling updates and restarts."""

from __future__ import annotations

from typing import Any

from scaleout.layout import LABEL_STACK_NAMESPACE, LB_SERVICE
from scaleout.top.records import Cursor, Request, fresh, parse

SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"


def balancer_containers(stack: Any) -> list:
    """The running balancer containers of the stack: the Compose service's, or on Swarm the containers of
    the balancer service's tasks that run on this node (found by the stack's labels; two for a moment
    while a task is replaced)."""
    if getattr(stack, "name", "") == "swarm":
        from scaleout.targets.runner import docker_client

        project = stack.config.project
        return docker_client().containers.list(filters={"label": [
            f"{LABEL_STACK_NAMESPACE}={project}", f"{SWARM_SERVICE_LABEL}={project}_{LB_SERVICE}"]})
    return [c for c in stack.containers(LB_SERVICE) if c.status == "running"]


class RecordReader:
    """Reads the record of the balancer containers from where the last read ended: every line once. A
    container seen for the first time is read from `since` (epoch seconds)."""

    def __init__(self, since: float) -> None:
        self.since = since
        self._cursors: dict[str, Cursor] = {}

    def read(self, containers: list) -> list[Request]:
        out: list[Request] = []
        for c in containers:
            cur = self._cursors.get(c.id, Cursor())
            # whole seconds: the engine's bound is inclusive and exact; the cursor drops the overlap
            start = cur.second or self.since
            raw = c.logs(stdout=True, stderr=False, since=start, timestamps=True)
            lines, self._cursors[c.id] = fresh(raw.decode("utf-8", "replace").splitlines(), cur)
            out += [r for r in map(parse, lines) if r is not None]
        if len(containers) > 1:
            out.sort(key=lambda r: r.time)
        return out


def namer(address_map: dict[str, str]):
    """ip:port -> replica name; an unknown address (a replica already gone) is shown as itself."""
    return lambda addr: address_map.get(addr, addr)


class RequestPrinter:
    """`logs --requests`: a balancer line as a request line (None for its other lines). The address map is
    read again when an address is not in it (a replica added since)."""

    def __init__(self, stack: Any, timestamps: bool = False) -> None:
        self.stack, self.timestamps, self._map, self._read_at = stack, timestamps, None, 0.0

    def _name(self, addr: str) -> str:
        if not addr:
            return "lb"
        import time

        # an unknown address: a replica added since (read the map again, at most once a second) or one gone
        if self._map is None or (addr not in self._map and time.monotonic() - self._read_at > 1.0):
            self._map, self._read_at = self.stack.address_map(), time.monotonic()
        return self._map.get(addr, addr)

    def format(self, ln: Any) -> str | None:
        from scaleout.top.records import line_of

        r = parse(ln.text)
        if r is None:
            return None
        return line_of(r, self._name(r.upstream), ln.stamp if self.timestamps else "")
