"""What `status` reports: the stack as read from the engine (never from the config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from scaleout.layout import replica_index

STATUS_SCHEMA = "scaleout.status/1"
_ROLE_ORDER = {"backend": 0, "balancer": 1, "service": 2}


def listing_key(role: str, service: str) -> tuple[int, int, str]:
    """The order every listing of a stack uses: replicas by index, then the balancer, then the services."""
    return _ROLE_ORDER.get(role, 3), replica_index(service), service


@dataclass
class ServiceStatus:
    service: str
    container: str
    state: str  # running, exited, restarting, ...
    health: str  # healthy, unhealthy, starting, none
    address: str | None  # ip:port on the project network (replicas)
    role: str  # backend | balancer | service
    routed: bool | None = None  # replicas: does the balancer send it traffic now (None: unknown)


@dataclass
class StackStatus:
    project: str
    url: str | None
    services: list[ServiceStatus] = field(default_factory=list)
    engine: dict | None = None  # which engine answered: name, version, api_version, host, host_source
    timings: dict | None = None  # after `up`: seconds per phase (targets/timing.py), the build apart

    @property
    def replicas(self) -> list[ServiceStatus]:
        return [s for s in self.services if s.role == "backend"]

    @property
    def balancer(self) -> ServiceStatus | None:
        return next((s for s in self.services if s.role == "balancer"), None)

    @property
    def dependencies(self) -> list[ServiceStatus]:
        """The services beside the replicas (database, cache, ...), never behind the balancer."""
        return [s for s in self.services if s.role == "service"]

    @property
    def running(self) -> bool:
        return any(s.state == "running" for s in self.services)

    def to_dict(self) -> dict:
        return {
            "schema": STATUS_SCHEMA,
            "project": self.project,
            "url": self.url,
            "running": self.running,
            "replicas": [asdict(s) for s in self.replicas],
            "balancer": asdict(self.balancer) if self.balancer else None,
            "services": [asdict(s) for s in self.dependencies],
            "engine": self.engine,
            **({"timings": self.timings} if self.timings is not None else {}),
        }
