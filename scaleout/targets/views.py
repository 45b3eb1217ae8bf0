"""Typed, read-only views over the engine's inspect data (`docker inspect` of a container, a Swarm
task), so lifecycle code reads properties instead of chains of `.attrs.get(...) or {}`. Built from the
raw dicts, so they are unit-tested on recorded inspect JSON without an engine (as docker-compose 1.x's
`Container` class is)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scaleout.layout import (
    LABEL_COMPOSE_PROJECT,
    LABEL_COMPOSE_SERVICE,
    LABEL_PROJECT,
    LABEL_ROLE,
    LB_SERVICE,
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class PortBinding:
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class ContainerView:
    """One container, as `docker inspect` (or the SDK's `container.attrs`) describes it."""

    attrs: dict[str, Any]

    @classmethod
    def of(cls, container: Any) -> ContainerView:
        """From an SDK container object (its `attrs`)."""
        return cls(container.attrs if isinstance(container.attrs, dict) else {})

    @property
    def id(self) -> str:
        return str(self.attrs.get("Id", ""))

    @property
    def name(self) -> str:
        return str(self.attrs.get("Name", "")).lstrip("/")

    @property
    def labels(self) -> dict[str, str]:
        return _dict(_dict(self.attrs.get("Config")).get("Labels"))

    @property
    def compose_project(self) -> str | None:
        return self.labels.get(LABEL_COMPOSE_PROJECT)

    @property
    def scaleout_project(self) -> str | None:
        return self.labels.get(LABEL_PROJECT)

    @property
    def service(self) -> str:
        return self.labels.get(LABEL_COMPOSE_SERVICE, "?")

    @property
    def role(self) -> str:
        """backend | balancer | service: from scaleout's label, else from the service name."""
        role = self.labels.get(LABEL_ROLE)
        if role in ("backend", "balancer", "service"):
            return role
        return "balancer" if self.service == LB_SERVICE else "backend"

    @property
    def _state(self) -> dict[str, Any]:
        return _dict(self.attrs.get("State"))

    @property
    def state(self) -> str:
        return str(self._state.get("Status", "unknown"))

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def exit_code(self) -> int | None:
        code = self._state.get("ExitCode")
        return code if isinstance(code, int) else None

    @property
    def health(self) -> str:
        """healthy | unhealthy | starting | none (no health check). Podman reports a container without a
        health check as an empty status (Docker: no Health at all), and one whose check never ran as empty
        too on some versions: the container's own Healthcheck decides which of the two it is."""
        status = str(_dict(self._state.get("Health")).get("Status") or "")
        if status:
            return status
        return "starting" if self.has_healthcheck else "none"

    @property
    def has_healthcheck(self) -> bool:
        """Whether the container has a health check to run (`NONE` in an image disables it)."""
        test = _list(_dict(_dict(self.attrs.get("Config")).get("Healthcheck")).get("Test"))
        return bool(test) and test[0] != "NONE"

    @property
    def ready(self) -> bool:
        """Running, and healthy when it has a health check."""
        return self.running and self.health in ("healthy", "none")

    @property
    def last_health_output(self) -> str:
        probes = _list(_dict(self._state.get("Health")).get("Log"))
        return str(_dict(probes[-1]).get("Output") or "").strip() if probes else ""

    @property
    def health_checks_timed_out(self) -> bool:
        """Whether every failed check in Docker's health log ran out of time and none failed by answering:
        Docker's own timeout (exit -1, "exceeded timeout") or the client's ("curl: (28) Operation timed
        out", Python's "timed out"). On a loaded engine the check's own exec is what is slow."""
        probes = [_dict(p) for p in _list(_dict(self._state.get("Health")).get("Log"))]
        failed = [p for p in probes if p.get("ExitCode") != 0]
        return bool(failed) and all("exceeded timeout" in str(p.get("Output") or "")
                                    or "timed out" in str(p.get("Output") or "").lower() for p in failed)

    @property
    def image_id(self) -> str:
        return str(self.attrs.get("Image", ""))

    @property
    def image_ref(self) -> str:
        """The image as the container was asked to run it (a name:tag, not an ID)."""
        return str(_dict(self.attrs.get("Config")).get("Image", ""))

    @property
    def bind_targets(self) -> set[str]:
        """Where bind mounts appear inside the container (volumes an image declares are left out)."""
        return {str(m.get("Destination")) for m in _list(self.attrs.get("Mounts"))
                if isinstance(m, dict) and m.get("Type") == "bind"}

    @property
    def ip_addresses(self) -> list[str]:
        nets = _dict(_dict(self.attrs.get("NetworkSettings")).get("Networks"))
        return [str(n["IPAddress"]) for n in nets.values() if isinstance(n, dict) and n.get("IPAddress")]

    def address(self, port: int) -> str | None:
        """`ip:port` on its first network, or None when it has no address (stopped)."""
        ips = self.ip_addresses
        return f"{ips[0]}:{port}" if ips else None

    def published(self, container_port: int, proto: str = "tcp") -> list[PortBinding]:
        ports = _dict(_dict(self.attrs.get("NetworkSettings")).get("Ports"))
        out = []
        for b in _list(ports.get(f"{container_port}/{proto}")):
            b = _dict(b)
            if str(b.get("HostPort", "")).isdigit():
                out.append(PortBinding(str(b.get("HostIp") or ""), int(b["HostPort"])))
        return out

    def url(self, container_port: int = 80, scheme: str = "http") -> str | None:
        """The URL of a published port as this machine reaches it (0.0.0.0 and :: mean loopback)."""
        for b in self.published(container_port):
            host = b.host_ip if b.host_ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
            host = f"[{host}]" if ":" in host else host
            return f"{scheme}://{host}:{b.host_port}"
        return None


@dataclass(frozen=True)
class TaskView:
    """One Swarm task, as the SDK's `service.tasks()` returns it."""

    attrs: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.attrs.get("ID", ""))

    @property
    def slot(self) -> int:
        slot = self.attrs.get("Slot")
        return slot if isinstance(slot, int) else 0

    @property
    def _status(self) -> dict[str, Any]:
        return _dict(self.attrs.get("Status"))

    @property
    def state(self) -> str:
        return str(self._status.get("State", "unknown"))

    @property
    def desired_state(self) -> str:
        return str(self.attrs.get("DesiredState", ""))

    @property
    def error(self) -> str:
        return str(self._status.get("Err") or "")

    @property
    def message(self) -> str:
        return str(self._status.get("Message") or "")

    @property
    def container_id(self) -> str | None:
        cid = _dict(self._status.get("ContainerStatus")).get("ContainerID")
        return str(cid) if cid else None

    @property
    def has_healthcheck(self) -> bool:
        return bool(_dict(_dict(self.attrs.get("Spec")).get("ContainerSpec")).get("Healthcheck"))

    def address(self, network: str, port: int) -> str | None:
        for att in _list(self.attrs.get("NetworksAttachments")):
            att = _dict(att)
            if _dict(_dict(att.get("Network")).get("Spec")).get("Name") == network and _list(att.get("Addresses")):
                return f"{str(att['Addresses'][0]).split('/')[0]}:{port}"
        return None

    def published_port(self, target: int) -> int | None:
        for p in _list(_dict(self._status.get("PortStatus")).get("Ports")):
            p = _dict(p)
            if p.get("TargetPort") == target and p.get("PublishedPort"):
                return int(p["PublishedPort"])
        return None
