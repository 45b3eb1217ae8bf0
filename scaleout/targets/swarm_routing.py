"""What the balancer routes on Swarm. There is no upstream block and no health watcher there: nginx
resolves the backend's task name (`tasks.backend`) through Docker's embedded DNS per request (cached for
DNS_VALID_S), and Swarm lists a task in that name only while it runs and passes its health check. So the
tasks the balancer sends traffic to are the addresses that name resolves to inside the balancer's own
container: read there with the container's resolver (`getent hosts`), which asks the same DNS server.

`routed` per backend task is then yes (its address is in the answer) or no; unknown (None) when the
balancer runs on another node, or its image has no `getent`.
"""

from __future__ import annotations

from collections.abc import Iterable

from scaleout.render.swarm import SWARM_BACKEND_HOST
from scaleout.targets.status import ServiceStatus

# getent's exit status when the name does not resolve: no task is listed (none runs, or none is healthy)
_NOT_FOUND = 2


def parse_hosts(code: int, output: bytes) -> set[str] | None:
    """The addresses in `getent hosts NAME`'s answer (one `address name...` line each); empty when the name
    has none; None when getent could not answer (missing, or another failure)."""
    if code == _NOT_FOUND:
        return set()
    if code != 0:
        return None
    return {line.split()[0] for line in output.decode(errors="replace").splitlines() if line.split()}


def routed_addresses(lb) -> set[str] | None:
    """The backend task addresses the balancer container `lb` resolves now (None: cannot tell)."""
    import docker.errors

    try:
        code, out = lb.exec_run(["getent", "hosts", SWARM_BACKEND_HOST])
    except docker.errors.APIError:  # the container stopped meanwhile, or exec is refused
        return None
    return parse_hosts(code, out or b"")


def mark_routed(services: Iterable[ServiceStatus], addresses: set[str] | None) -> None:
    """Set `routed` of each backend task from the balancer's answer (`ip:port` addresses, by IP)."""
    for s in services:
        if s.role == "backend":
            s.routed = None if addresses is None or s.address is None else s.address.rsplit(":", 1)[0] in addresses
