"""The services beside the replicas (a database, a cache, a queue) as Compose services: never
replicated, never behind the balancer, reached by the replicas under their own name. Pure.

Environment values and commands are written in Compose's own syntax as the user wrote them (`${VAR}`
references kept, a literal `$` as `$$`), so values from the shell, `.env` or an env file are resolved by
the engine at run time and never copied into a generated file.
"""

from __future__ import annotations

from typing import Any

from scaleout.config.interpolated import command_text, compose_texts
from scaleout.config.model import Config
from scaleout.layout import LABEL_PROJECT, LABEL_ROLE

SERVICE_ROLE = "service"


def service_image(config: Config, name: str) -> str:
    """The image of a service: its own, or the one scaleout builds from its folder."""
    svc = config.services[name]
    return svc.image or f"scaleout/{config.name}-{name}:latest"


def from_out(rel: str) -> str:
    """A project-relative path as seen from .scaleout/, where the compose file lives."""
    rel = rel.removeprefix("./").rstrip("/")
    return ".." if rel in ("", ".") else f"../{rel}"


def _duration(seconds: int | float | None) -> str | None:
    if seconds is None:
        return None
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds}s"


def healthcheck_data(hc: Any) -> dict[str, Any] | None:
    """Compose's healthcheck mapping from a validated service health check (or None)."""
    if hc is None:
        return None
    if getattr(hc, "disable", False):
        return {"disable": True}
    out: dict[str, Any] = {"test": [a.compose for a in hc.test or ()]}
    for key in ("interval", "timeout", "start_period"):
        value = _duration(getattr(hc, key, None))
        if value is not None:
            out[key] = value
    if getattr(hc, "retries", None) is not None:
        out["retries"] = hc.retries
    return out


def volume_data(v: Any) -> Any:
    """A named volume as Compose's short syntax; a bind mount as the long syntax (explicit, read-only flag)."""
    if v.kind == "named":
        return f"{v.source}:{v.target}" + (":ro" if v.read_only else "")
    return {"type": "bind", "source": from_out(v.source), "target": v.target, "read_only": bool(v.read_only)}


def port_data(config: Config, p: Any) -> str:
    """A published port: on balancer.bind's address unless the user wrote one (never 0.0.0.0 by default)."""
    host_ip = p.host_ip or config.balancer.bind
    host = f"[{host_ip}]" if ":" in host_ip else host_ip
    return f"{host}:{p.host_port}:{p.container_port}/{p.protocol}"


def services_data(config: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    """(services, named volumes) for the compose file."""
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for name, svc in sorted(config.services.items()):
        data: dict[str, Any] = {"image": service_image(config, name)}
        if svc.build is not None:
            data["build"] = {"context": from_out(svc.build), "dockerfile": svc.dockerfile}
        if svc.command is not None:
            data["command"] = command_text(svc.command)
        if svc.environment:
            data["environment"] = compose_texts(svc.environment)
        if svc.env_file:
            data["env_file"] = [from_out(f) for f in svc.env_file]
        if svc.volumes:
            data["volumes"] = [volume_data(v) for v in svc.volumes]
            volumes.update({v.source: {} for v in svc.volumes if v.kind == "named"})
        health = healthcheck_data(svc.healthcheck)
        if health is not None:
            data["healthcheck"] = health
        if svc.ports:
            data["ports"] = [port_data(config, p) for p in svc.ports]
        data.update({
            "restart": "unless-stopped",
            "security_opt": ["no-new-privileges:true"],
            "labels": {LABEL_PROJECT: config.name, LABEL_ROLE: SERVICE_ROLE},
        })
        services[name] = data
    return services, dict(sorted(volumes.items()))
