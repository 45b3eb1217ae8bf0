"""Compose fields both the replicated service and the other services have, in either syntax Compose
allows: ports, build, environment, env files, dependencies."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleout.adopt.context import Context, show
from scaleout.errors import ConfigError
from scaleout.files import inside, read_capped

_PORT = re.compile(
    r"^(?:(?P<ip>\[[0-9A-Fa-f:.]+\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3}):)?(?:(?P<published>[0-9]+(?:-[0-9]+)?)?:)?"
    r"(?P<target>[0-9]+(?:-[0-9]+)?)(?:/(?P<protocol>tcp|udp|sctp))?$")


@dataclass(frozen=True)
class PortSpec:
    written: str
    target: str  # a port or a range
    published: str
    host_ip: str
    protocol: str

    @property
    def single(self) -> int | None:
        return int(self.target) if self.target.isdigit() and 1 <= int(self.target) <= 65535 else None

    def short(self) -> str:
        """The short syntax of this mapping."""
        out = self.target if not self.published and not self.host_ip else f"{self.published}:{self.target}"
        if self.host_ip:
            out = f"{self.host_ip}:{out}"
        return out + ("" if self.protocol == "tcp" else f"/{self.protocol}")


def parse_port(ctx: Context, entry: Any, keys: tuple[object, ...]) -> PortSpec:
    """A `ports` or `expose` entry in short or long syntax (variables resolved)."""
    if isinstance(entry, dict):
        target = entry.get("target")
        if target is None:
            raise ctx.error(keys, "a port in the long syntax needs target:")
        published = entry.get("published")
        spec = PortSpec(written="", target=ctx.resolve(target, keys),
                        published="" if published is None else ctx.resolve(published, keys),
                        host_ip=ctx.resolve(entry.get("host_ip") or "", keys),
                        protocol=str(entry.get("protocol") or "tcp").lower())
        if not _PORT.match(spec.short()):
            raise ctx.error(keys, f"not a port mapping (got {show(entry)!r})")
        return dataclasses.replace(spec, written=spec.short())
    if isinstance(entry, bool) or not isinstance(entry, (str, int)):
        raise ctx.error(keys, f"not a port mapping (got {show(entry)!r})")
    m = _PORT.match(ctx.resolve(entry, keys).strip())
    if not m:
        raise ctx.error(keys, f"not a port mapping such as 8000:5000 or 5000 (got {show(entry)!r})")
    return PortSpec(written=str(entry), target=m["target"], published=m["published"] or "", host_ip=m["ip"] or "",
                    protocol=m["protocol"] or "tcp")


def entries(ctx: Context, svc_name: str, svc: dict[str, Any], key: str) -> list[Any]:
    value = svc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.error(("services", svc_name, key), f"must be a list (got {show(value)!r})")
    return value


def map_build(ctx: Context, name: str, svc: dict[str, Any], *, web: bool) -> dict[str, Any]:
    """`build` as {build: folder, dockerfile: name} (project-relative), plus BASE_IMAGE if given as an argument."""
    build = svc["build"]
    keys: tuple[object, ...] = ("services", name, "build")
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        raise ctx.error(keys, f"must be a folder or a mapping with context: (got {show(build)!r})")
    if "dockerfile_inline" in build:
        raise ctx.error((*keys, "dockerfile_inline"), "an inline Dockerfile is not supported",
                        hint="write it to a Dockerfile in the build folder")
    context = build.get("context", ".")
    if not isinstance(context, str) or re.match(r"^[a-z][a-z0-9+.-]*://|^git@", ctx.resolve(context, keys)):
        raise ctx.error((*keys, "context"), f"scaleout builds from a folder inside the project (got {show(context)!r})",
                        hint="clone it into the project, or use image:")
    rel, problem = ctx.project_path(context, (*keys, "context"))
    if rel is None:
        raise ctx.error((*keys, "context"), f"{show(context)} is {problem}",
                        hint="write scaleout.yaml into the Compose file's folder (or a folder above the build folder)")
    if not (ctx.root / rel).is_dir():
        raise ctx.error((*keys, "context"), f"folder {show(context)} does not exist")
    out: dict[str, Any] = {"build": rel}
    dockerfile = ctx.resolve(build.get("dockerfile", "Dockerfile"), (*keys, "dockerfile"))
    if dockerfile.startswith("/") or ".." in Path(dockerfile).parts or re.search(r"[\x00-\x1f\x7f]", dockerfile):
        raise ctx.error((*keys, "dockerfile"), f"must be a file inside the build folder (got {show(dockerfile)!r})")
    if dockerfile != "Dockerfile":
        out["dockerfile"] = dockerfile
    base_image = _build_args(ctx, name, build.get("args"), keys)
    if base_image is not None:
        out["base_image"] = base_image
    for key in build:
        if key not in ("context", "dockerfile", "args"):
            why = ("scaleout builds the Dockerfile's last stage" if key == "target"
                   else "not carried over (scaleout.yaml has no such build setting)")
            ctx.note(name, f"build.{key}", build[key], why)
    if web and "image" in svc:
        ctx.note(name, "image", svc["image"], "scaleout builds from build: and names the image itself")
    return out


def written_build(ctx: Context, target: str, svc: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """`out` of map_build with its folder and Dockerfile as the Compose file writes them, where a variable of
    .env or the environment sets them (ctx.kept); call it once the Dockerfile was read."""
    build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
    context = build.get("context", ".")
    as_resolved = ctx.resolve(context, ())
    same = ctx.root == ctx.cf.folder and os.path.normpath(as_resolved) == out["build"]
    kept = {**out, "build": ctx.kept(f"{target}.build", context, out["build"], whole=same, text=as_resolved)}
    if "dockerfile" in out:
        kept["dockerfile"] = ctx.kept(f"{target}.dockerfile", build.get("dockerfile"), out["dockerfile"])
    return kept


def _build_args(ctx: Context, name: str, args: Any, keys: tuple[object, ...]) -> str | None:
    """BASE_IMAGE from build.args (scaleout passes that one argument); a note for every other one."""
    args = args or {}
    if isinstance(args, list):
        args = dict(str(a).split("=", 1) if "=" in str(a) else (str(a), None) for a in args)
    if not isinstance(args, dict):
        raise ctx.error((*keys, "args"), "must be a list or a mapping")
    base_image = None
    for arg, value in args.items():
        if arg == "BASE_IMAGE" and value is not None:
            base_image = ctx.resolve(value, (*keys, "args", arg))
            secret = [v for v in ctx.given(value) if not v.endswith("_IMAGE")]
            if secret:  # images.base is written resolved into generated files: never a value of .env
                ctx.note(name, "build.args.BASE_IMAGE", value, f"not carried over: it takes its value from "
                         f"${{{secret[0]}}} (.env); write images.base in scaleout.yaml")
                base_image = None
            elif ctx.given(value):
                base_image = ctx.kept("images.base", value, base_image)
        else:
            ctx.note(name, "build.args", f"{arg}", "scaleout passes only BASE_IMAGE to the build: give the ARG a "
                                                   "default in the Dockerfile")
    return base_image


def read_dockerfile(ctx: Context, name: str, build: dict[str, Any]) -> str:
    rel = f"{build['build']}/{build.get('dockerfile', 'Dockerfile')}"
    path = ctx.root / rel
    if not inside(ctx.root, path):
        raise ctx.error(("services", name, "build"), f"{rel} leads outside the project folder (a link?)")
    display = f"{ctx.cf.where('services', name, 'build')}: services.{name}.build: {rel}"
    try:
        data = read_capped(path, display=display, limit=256 * 1024)
    except FileNotFoundError:
        raise ConfigError(f"{display}: not found") from None
    return data.decode("utf-8", errors="replace")


def base_image_of(dockerfile: str) -> str | None:
    """The default of `ARG BASE_IMAGE` before the first FROM (scaleout always passes BASE_IMAGE)."""
    for line in dockerfile.splitlines():
        s = line.strip()
        if re.match(r"(?i)^FROM\s", s):
            return None
        m = re.match(r"(?i)^ARG\s+BASE_IMAGE\s*=\s*(\S+)\s*$", s)
        if m:
            return m.group(1).strip("\"'")
    return None


_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def map_environment(ctx: Context, name: str, svc: dict[str, Any]) -> dict[str, str]:
    """`environment` (list or map) as a map of strings; values keep their ${VAR} references."""
    raw = svc.get("environment")
    keys = ("services", name, "environment")
    if raw is None:
        return {}
    pairs: list[tuple[str, Any]] = []
    if isinstance(raw, list):
        for item in raw:
            if not isinstance(item, str):
                raise ctx.error(keys, f"a list entry must be KEY=VALUE (got {show(item)!r})")
            k, sep, v = item.partition("=")
            pairs.append((k, v if sep else None))
    elif isinstance(raw, dict):
        pairs = [(str(k), v) for k, v in raw.items()]
    else:
        raise ctx.error(keys, "must be a list of KEY=VALUE or a mapping")
    env: dict[str, str] = {}
    for k, v in pairs:
        if not _ENV_KEY.match(k):
            ctx.note(name, "environment", k, "not carried over: scaleout takes variable names of letters, digits "
                                             "and _ only")
            continue
        if v is None:
            ctx.note(name, "environment", k, f"has no value (Compose passes the shell's); written as ${{{k}:-}}")
            v = f"${{{k}:-}}"
        if isinstance(v, bool):
            v = "true" if v else "false"
        if isinstance(v, (dict, list)):
            raise ctx.error((*keys, k), f"must be a string, number or boolean (got {show(v)!r})")
        v = str(v)
        if any(ord(c) < 32 and c != "\t" for c in v):
            ctx.note(name, "environment", k, "not carried over: a value with line breaks (put it in an env_file)")
            continue
        env[k] = v
    return env


def map_env_files(ctx: Context, name: str, svc: dict[str, Any]) -> list[str]:
    raw = svc.get("env_file")
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for i, item in enumerate(items):
        keys = ("services", name, "env_file", i)
        required = True
        if isinstance(item, dict):
            required = item.get("required", True) is not False
            item = item.get("path")
        if not isinstance(item, str):
            raise ctx.error(keys, f"must be a path (got {show(item)!r})")
        rel, problem = ctx.project_path(item, keys)
        if rel is None:
            ctx.note(name, "env_file", item, f"{problem}: not carried over (env files must be inside the project)")
            continue
        if not required and not (ctx.root / rel).exists():
            ctx.note(name, "env_file", item, "optional and missing: not carried over")
            continue
        out.append(rel)
    return out


def read_depends_on(ctx: Context, name: str, svc: dict[str, Any]) -> list[tuple[str, str]]:
    """(service, condition) pairs of `depends_on` in either syntax."""
    raw = svc.get("depends_on")
    if raw is None:
        return []
    keys = ("services", name, "depends_on")
    if isinstance(raw, list):
        if not all(isinstance(d, str) for d in raw):
            raise ctx.error(keys, "must list service names")
        return [(d, "service_started") for d in raw]
    if isinstance(raw, dict):
        out = []
        for dep, spec in raw.items():
            cond = spec.get("condition", "service_started") if isinstance(spec, dict) else "service_started"
            out.append((str(dep), str(cond)))
        return out
    raise ctx.error(keys, "must be a list of service names or a mapping")
