"""The balancer's request record, read from the engine: lines of the balancer container's output since a
time, parsed by scaleout/top/records.py. Addresses are named through the stack's own address map, read
again on every call, so it stays right across rescales, rolling updates and restarts."""

from __future__ import annotations

from typing import Any

from scaleout.layout import LB_SERVICE
from scaleout.top.records import Request, parse


def balancer_container(stack: Any):
    """The running balancer container of a Compose stack, or None."""
    for c in stack.containers(LB_SERVICE):
        if c.status == "running":
            return c
    return None


def read_since(container: Any, since: float, until: float) -> list[Request]:
    """Requests the balancer logged in [since, until) (engine timestamps), in order."""
    raw = container.logs(stdout=True, stderr=False, since=since, until=until, timestamps=False)
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        r = parse(line)
        if r is not None:
            out.append(r)
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
