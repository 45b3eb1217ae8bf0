"""The replicated service: `backend:` of scaleout.yaml."""

from __future__ import annotations

import math
import re
from typing import Any

from scaleout.adopt.context import DEFAULT_PORT, DEFAULT_REPLICAS, LIMITS, WEB_HANDLED, WEB_INSTEAD, Context, show, why
from scaleout.adopt.fields import (
    base_image_of,
    entries,
    map_build,
    map_env_files,
    map_environment,
    parse_port,
    read_depends_on,
    read_dockerfile,
    written_build,
)
from scaleout.adopt.health import map_health


def _container_port(ctx: Context, name: str, svc: dict[str, Any], dockerfile: str | None) -> int:
    """The one port the balancer sends traffic to; a note for every published port and every other port."""
    ports = [parse_port(ctx, e, ("services", name, "ports", i))
             for i, e in enumerate(entries(ctx, name, svc, "ports"))]
    exposed = [parse_port(ctx, e, ("services", name, "expose", i))
               for i, e in enumerate(entries(ctx, name, svc, "expose"))]
    tcp = [p.single for p in ports + exposed if p.protocol == "tcp" and p.single]
    port = tcp[0] if tcp else None
    if port is None and dockerfile:
        m = re.search(r"^\s*EXPOSE\s+([0-9]+)(?:/tcp)?\b", dockerfile, re.MULTILINE | re.IGNORECASE)
        if m and 1 <= int(m.group(1)) <= 65535:
            port = int(m.group(1))
            ctx.note(name, "ports", "", f"none given: port {port} from the Dockerfile's EXPOSE is balanced")
    if port is None:
        port = DEFAULT_PORT
        ctx.note(name, "ports", "", f"none given: scaleout assumes the app listens on {port} (edit backend.port)")
    from scaleout.config.sections import BalancerConfig

    lb = BalancerConfig()
    for p in ports:
        if p.single == port and p.protocol == "tcp":
            ctx.note(name, "ports", p.written, f"the replicas are not published; the balancer listens on "
                                               f"{lb.bind}:{lb.port} instead")
        else:
            ctx.note(name, "ports", p.written, f"not published: scaleout balances one port ({port}) and publishes "
                                               "only the balancer")
    for p in exposed:
        if p.single != port or p.protocol != "tcp":
            ctx.note(name, "expose", p.written, f"scaleout balances one port ({port})")
    return port


def _memory(value: Any) -> str | None:
    """A Compose memory size as scaleout's `512m` / `1g` (rounded up to whole MiB), or None."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([bkmg]?)b?", str(value).strip().lower())
    if not m:
        return None
    factor = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]
    mib = math.ceil(float(m.group(1)) * factor / 1024**2)
    if not 6 <= mib <= 999_999:
        return None
    return f"{mib // 1024}g" if mib % 1024 == 0 else f"{mib}m"


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [item for k, v in value.items() for item in _flatten(f"{prefix}.{k}", v)]
    return [(prefix, value)]


# the container port at the end of a short port mapping, when it is one reference (`${HOST}:${APP_PORT}`)
_TARGET_REF = re.compile(r"(?:^|:)(\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-[0-9]*)?\}|\$[A-Za-z_][A-Za-z0-9_]*)(?:/tcp)?$")


def _written_port(ctx: Context, svc: dict[str, Any], port: int) -> Any:
    """backend.port: the reference the Compose file gives the balanced port as, kept as written when a
    variable of .env or the environment sets it (ctx.kept), else the number."""
    for key in ("ports", "expose"):
        for entry in svc.get(key) or []:
            raw = entry.get("target") if isinstance(entry, dict) else entry
            if not isinstance(raw, (str, int)) or not ctx.given(str(raw)):
                continue
            m = _TARGET_REF.search(str(raw))
            if m and ctx.resolve(m[1], ()) == str(port):
                return ctx.kept("backend.port", m[1], port)
            if ctx.resolve(str(raw), ()).rsplit(":", 1)[-1].split("/")[0] == str(port):
                return ctx.kept("backend.port", str(raw), port, whole=False)
    return port


def _replicas(ctx: Context, name: str, svc: dict[str, Any]) -> int:
    from scaleout.config.sections import MAX_REPLICAS

    deploy = svc.get("deploy") if isinstance(svc.get("deploy"), dict) else {}
    for key, raw in (("deploy.replicas", deploy.get("replicas")), ("scale", svc.get("scale"))):
        if raw is None:
            continue
        text = ctx.resolve(raw, ("services", name, *key.split(".")))
        if not text.isdigit():
            raise ctx.error(("services", name, *key.split(".")), f"must be a number (got {show(raw)!r})")
        n = min(max(int(text), 1), MAX_REPLICAS)
        if ctx.given(raw):
            return ctx.kept("backend.replicas", raw, n)
        ctx.note(name, key, raw, f"carried over as backend.replicas: {n}"
                 + ("" if str(n) == text else f" (1-{MAX_REPLICAS})"))
        return n
    return DEFAULT_REPLICAS


def _limits(ctx: Context, name: str, svc: dict[str, Any]) -> dict[str, Any]:
    """backend.limits from deploy.resources.limits (or mem_limit / pids_limit); a note for every other deploy key."""
    deploy = svc.get("deploy")
    if deploy is not None and not isinstance(deploy, dict):
        raise ctx.error(("services", name, "deploy"), "must be a mapping")
    limits: dict[str, Any] = {}
    candidates = {"memory": svc.get("mem_limit"), "pids": svc.get("pids_limit")}
    for key, value in _flatten("deploy", deploy) if deploy else []:
        if key == "deploy.replicas":
            continue
        if key in ("deploy.resources.limits.memory", "deploy.resources.limits.pids"):
            candidates[key.rsplit(".", 1)[1]] = value
            continue
        instead = ("scaleout runs backend.replicas replicas on this machine" if key == "deploy.mode"
                   else LIMITS if key.startswith("deploy.resources") else
                   "not carried over: a Swarm setting; scaleout starts, restarts and replaces the replicas itself")
        ctx.note(name, key, value, instead)
    if candidates["memory"] is not None:
        mem = _memory(ctx.resolve(candidates["memory"], ("services", name, "deploy")))
        if mem is None:
            ctx.note(name, "memory limit", candidates["memory"],
                     "not a size scaleout takes (6m or more): not carried over")
        else:
            limits["memory"] = ctx.kept("backend.limits.memory", candidates["memory"], mem)
    if candidates["pids"] is not None:
        text = ctx.resolve(candidates["pids"], ("services", name, "deploy"))
        if text.isdigit() and 16 <= int(text) <= 1_000_000:
            limits["pids"] = ctx.kept("backend.limits.pids", candidates["pids"], int(text))
        else:
            ctx.note(name, "pids limit", candidates["pids"], "scaleout takes 16-1000000: not carried over")
    return limits


def map_backend(ctx: Context, name: str, svc: dict[str, Any], carried: list[str]) -> tuple[dict[str, Any], str | None]:
    """backend: of scaleout.yaml for the replicated service, and the base image its Dockerfile expects."""
    out: dict[str, Any] = {}
    base_image = None
    dockerfile = None
    if "build" in svc:
        build = map_build(ctx, name, svc, web=True)
        dockerfile = read_dockerfile(ctx, name, build)
        base_image = build.pop("base_image", None) or base_image_of(dockerfile)
        out.update(written_build(ctx, "backend", svc, build))
    elif "image" in svc:
        out["image"] = ctx.resolve(svc["image"], ("services", name, "image"))
        secret = [v for v in ctx.given(svc["image"]) if not v.endswith("_IMAGE")]
        if secret:  # an image reference is written resolved into generated files and sent to a registry
            raise ctx.error(("services", name, "image"), f"takes its value from ${{{secret[0]}}} (.env or the "
                            "environment), and scaleout writes the image resolved into generated files",
                            hint=f"write the image itself there, or name the variable *_IMAGE (as {name.upper()}"
                                 "_IMAGE): a variable of that name may choose an image and is kept as written")
        if ctx.given(svc["image"]):
            out["image"] = ctx.kept("backend.image", svc["image"], out["image"])
        elif out["image"] != str(svc["image"]):
            ctx.note(name, "image", svc["image"], f"written as {show(out['image'])} (scaleout needs the value)")
    else:
        raise ctx.error(("services", name), "has neither image nor build: there is nothing to replicate")
    port = _container_port(ctx, name, svc, dockerfile)
    out["port"] = _written_port(ctx, svc, port)
    out["replicas"] = _replicas(ctx, name, svc)
    out["health"] = map_health(ctx, name, svc, port)
    env = map_environment(ctx, name, svc)
    if env:
        out["env"] = env
    env_files = map_env_files(ctx, name, svc)
    if env_files:
        out["env_file"] = env_files
    deps = []
    for dep, cond in read_depends_on(ctx, name, svc):
        if dep not in carried:
            ctx.note(name, "depends_on", dep, "not a service scaleout starts: dropped")
            continue
        if cond == "service_completed_successfully":
            ctx.note(name, "depends_on", f"{dep} ({cond})", "scaleout waits for it to start (and be healthy, if it "
                                                            "has a health check), not to finish")
        deps.append(dep)
    if deps:
        out["depends_on"] = deps
    limits = _limits(ctx, name, svc)
    if limits:
        out["limits"] = limits
    for key, value in svc.items():
        if key not in WEB_HANDLED and not key.startswith("x-"):
            ctx.note(name, key, value, why(key, WEB_INSTEAD))
    return out, base_image
