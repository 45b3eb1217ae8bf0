"""The other services: entries of `services:` in scaleout.yaml."""

from __future__ import annotations

import re
from typing import Any

from scaleout.adopt.context import SERVICE_HANDLED, SERVICE_INSTEAD, Context, show, why
from scaleout.adopt.fields import (
    entries,
    map_build,
    map_env_files,
    map_environment,
    parse_port,
    read_depends_on,
    written_build,
)
from scaleout.adopt.health import service_healthcheck
from scaleout.layout import LB_SERVICE

_VOLUME_MODES = frozenset({"ro", "rw", "z", "Z", "nocopy", "cached", "delegated", "consistent"})


def _volume_parts(ctx: Context, name: str, entry: Any, keys: tuple[object, ...]) -> tuple[Any, Any, str] | None:
    """(source, target, mode) of a volume in the short or the long syntax, or None after a note."""
    if isinstance(entry, dict):
        kind = entry.get("type", "volume")
        source, target = entry.get("source"), entry.get("target")
        extra = [k for k in entry if k not in ("type", "source", "target", "read_only")]
        if kind not in ("volume", "bind") or not isinstance(target, str) or (kind == "bind" and not source):
            ctx.note(name, "volumes", entry, f"a {kind} mount is not carried over; scaleout mounts named volumes and "
                                             "folders inside the project")
            return None
        if extra:
            ctx.note(name, "volumes", entry, f"{', '.join(extra)}: not carried over")
        if source and kind == "bind" and not str(source).startswith((".", "/", "~")):
            source = "./" + str(source)
        return (ctx.resolve(source, keys) if source else None), target, "ro" if entry.get("read_only") else ""
    if not isinstance(entry, str):
        raise ctx.error(keys, f"must be a string or a mapping (got {show(entry)!r})")
    parts = ctx.resolve(entry, keys).split(":")
    if len(parts) > 3:
        ctx.note(name, "volumes", entry, "not a volume scaleout understands: not carried over")
        return None
    source, target, mode = [None, parts[0], ""] if len(parts) == 1 else (parts + [""])[:3]
    if mode and not set(mode.split(",")) <= _VOLUME_MODES:
        ctx.note(name, "volumes", entry, f"mode {mode} is not carried over")
        mode = ""
    # scaleout mounts read-only or read-write; SELinux labels and copy/consistency hints have no slot
    kept = [m for m in mode.split(",") if m in ("ro", "rw")] if mode else []
    if mode and len(kept) != len(mode.split(",")):
        dropped = ",".join(m for m in mode.split(",") if m not in ("ro", "rw"))
        ctx.note(name, "volumes", entry, f"option {dropped} is not carried over")
    mode = kept[-1] if kept else ""
    return source, target, mode


def _volume(ctx: Context, name: str, entry: Any, i: int) -> str | None:
    """A volume as the short syntax scaleout takes (named volume or bind inside the project), else a note."""
    keys = ("services", name, "volumes", i)
    parts = _volume_parts(ctx, name, entry, keys)
    if parts is None:
        return None
    source, target, mode = parts
    suffix = f":{mode}" if mode else ""
    if not target.startswith("/"):
        ctx.note(name, "volumes", entry, "the container path must be absolute: not carried over")
        return None
    if not source:
        ctx.note(name, "volumes", entry, "an anonymous volume is not carried over (give it a name to keep its data)")
        return None
    if source.startswith((".", "/", "~")):
        rel, problem = ctx.project_path(source, keys, resolved=True)
        if rel is None:
            ctx.note(name, "volumes", entry, f"{problem}: not carried over; scaleout mounts named volumes and folders "
                                             "inside the project")
            return None
        out = f"./{rel}:{target}{suffix}" if rel != "." else f".:{target}{suffix}"
        if isinstance(entry, str) and "$" in entry:
            ctx.note(name, "volumes", entry, f"written as {out} (scaleout resolves paths: they must stay inside)")
        return out
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", source):
        ctx.note(name, "volumes", entry, "not a volume name: not carried over")
        return None
    return f"{source}:{target}{suffix}"


def map_service(ctx: Context, name: str, svc: dict[str, Any], web: str) -> dict[str, Any]:
    """One `services:` entry: image or build, command, environment, env_file, volumes, healthcheck, ports."""
    out = _service_source(ctx, name, svc)
    command = svc.get("command")
    if command is not None:
        if not isinstance(command, (str, list)) or (isinstance(command, list) and not all(
                isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in command)):
            raise ctx.error(("services", name, "command"), "must be a string or a list of strings")
        out["command"] = command if isinstance(command, str) else [str(c) for c in command]
    env = map_environment(ctx, name, svc)
    if env:
        out["environment"] = env
    env_files = map_env_files(ctx, name, svc)
    if env_files:
        out["env_file"] = env_files
    volumes = [v for i, e in enumerate(entries(ctx, name, svc, "volumes")) if (v := _volume(ctx, name, e, i))]
    if volumes:
        out["volumes"] = volumes
    if svc.get("healthcheck") is not None:
        hc = service_healthcheck(ctx, name, svc["healthcheck"])
        if hc:
            out["healthcheck"] = hc
    ports = _service_ports(ctx, name, svc)
    if ports:
        out["ports"] = ports
    _service_depends_on(ctx, name, svc, web)
    for key, value in svc.items():
        if key not in SERVICE_HANDLED and key not in ("depends_on", "profiles") and not key.startswith("x-"):
            ctx.note(name, key, value, why(key, SERVICE_INSTEAD))
    return out


def _service_source(ctx: Context, name: str, svc: dict[str, Any]) -> dict[str, Any]:
    if "build" in svc:
        build = map_build(ctx, name, svc, web=False)
        build.pop("base_image", None)
        build = written_build(ctx, f"services.{name}", svc, build)
        if "image" in svc:
            ctx.note(name, "image", svc["image"], "the service is built from build:, its image named by scaleout")
        return build
    if "image" in svc:
        if not isinstance(svc["image"], str):
            raise ctx.error(("services", name, "image"), f"must be an image reference (got {show(svc['image'])!r})")
        return {"image": svc["image"]}
    raise ctx.error(("services", name), "has neither image nor build")


def _service_depends_on(ctx: Context, name: str, svc: dict[str, Any], web: str) -> None:
    deps = [d for d, _ in read_depends_on(ctx, name, svc)]
    if web in deps:
        ctx.note(name, "depends_on", deps, f"services start before the replicas; {web} is replicated now: reach it "
                                           f"through the balancer at http://{LB_SERVICE}:80")
    elif deps:
        ctx.note(name, "depends_on", deps, "services start before the replicas; their order among themselves "
                                           "is not kept")


def _service_ports(ctx: Context, name: str, svc: dict[str, Any]) -> list[str]:
    from scaleout.config.sections import BalancerConfig

    bind = BalancerConfig().bind
    out = []
    for i, entry in enumerate(entries(ctx, name, svc, "ports")):
        spec = parse_port(ctx, entry, ("services", name, "ports", i))
        written = entry if isinstance(entry, str) else spec.short()
        if isinstance(entry, dict):
            extra = [k for k in entry if k not in ("target", "published", "host_ip", "protocol", "mode")]
            if extra:
                ctx.note(name, "ports", entry, f"{', '.join(extra)}: not carried over")
        if not spec.published:
            ctx.note(name, "ports", written, "Compose publishes it on a random host port; scaleout publishes only "
                                             "HOST:CONTAINER: not published "
                                             f"(the replicas reach it as {name}:{spec.target})")
            continue
        if not spec.host_ip and spec.published:
            ctx.note(name, "ports", written, f"published on {bind} only; write an address (0.0.0.0:{spec.published}:"
                                             f"{spec.target}) to publish it beyond this machine")
        elif spec.host_ip in ("0.0.0.0", "[::]"):
            ctx.note(name, "ports", written, "published on every interface of this machine, as written")
        out.append(str(written))
    return out
