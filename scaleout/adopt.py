"""`scaleout init --from docker-compose.yml`: adopt an existing Compose project.

One service (the web app) becomes the replicated backend, every other service a `services:` entry of
scaleout.yaml. What scaleout cannot carry over becomes a note: one line, what was dropped and what
scaleout does instead. Compose's `${VAR}` references are kept as written wherever scaleout.yaml passes
the value on (environment, commands, images and ports of services); values scaleout itself must
understand (the backend's port, build folder, image, health path, paths of mounts and env files) are
resolved the way Compose resolves them (the environment, then the `.env` beside the Compose file), and a
note says so when that changed what was written. The user's files are only read.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleout.compose_file import (
    ComposeFile,
    InterpolationError,
    interpolate,
    load_compose_file,
    read_bounded,
    read_dotenv,
)
from scaleout.errors import ConfigError, RenderConflictError, UsageError
from scaleout.layout import CONFIG_FILE, LB_SERVICE, is_replica_name

__all__ = ["Adoption", "adopt", "write_adoption"]

DEFAULT_PORT = 8000
DEFAULT_REPLICAS = 3
_SHOWN = 60  # characters of a user's value quoted in a note

# every key a Compose service may have (the Compose Specification, plus the old v2 file format's)
COMPOSE_SERVICE_KEYS = frozenset("""
annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent command configs container_name
cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpu_shares cpus cpuset credential_spec
depends_on deploy develop device_cgroup_rules devices dns dns_opt dns_search domainname driver_opts entrypoint
env_file environment expose extends external_links extra_hosts gpus group_add healthcheck hostname image init
ipc isolation labels label_file links logging mac_address mem_limit mem_reservation mem_swappiness memswap_limit
models network_mode networks oom_kill_disable oom_score_adj pid pids_limit platform ports post_start pre_stop
privileged profiles provider pull_policy read_only restart runtime scale secrets security_opt shm_size
stdin_open stop_grace_period stop_signal storage_opt sysctls tmpfs tty ulimits use_api_socket user userns_mode
uts volumes volumes_from volume_driver working_dir
""".split())
TOP_LEVEL_KEYS = frozenset({"version", "name", "services", "volumes", "networks", "secrets", "configs", "include",
                            "models"})

_WEB_HANDLED = frozenset({"build", "image", "ports", "expose", "healthcheck", "environment", "env_file", "depends_on",
                          "deploy", "scale", "mem_limit", "pids_limit"})
_SERVICE_HANDLED = frozenset({"build", "image", "command", "environment", "env_file", "volumes", "healthcheck", "ports",
                              "expose"})  # expose: every port is reachable on the project network anyway

_NAMESPACES = "not carried over: scaleout does not share the host's namespaces"
_NETWORK = "every container joins the project's default network and reaches the others by service name"
_SECRETS = "not carried over: pass the value through environment or env_file"
_LIMITS = "scaleout sets memory and process limits only (backend.limits)"

# what scaleout does instead, for keys of the replicated service
_WEB_INSTEAD = {
    "container_name": "the replicas are named backend-1..N; one fixed container name cannot be given to several",
    "hostname": "each replica's hostname is its own name (backend-1, backend-2, ...)",
    "network_mode": "the replicas join the project's network, where the balancer reaches them",
    "networks": _NETWORK,
    "links": _NETWORK,
    "external_links": _NETWORK,
    "extends": "not resolved: the keys it would add are missing here; copy them into the service",
    "profiles": "scaleout always starts the backend",
    "pid": _NAMESPACES,
    "ipc": _NAMESPACES,
    "uts": _NAMESPACES,
    "userns_mode": _NAMESPACES,
    "privileged": "not carried over: the replicas run unprivileged, with no-new-privileges",
    "cap_add": "not carried over: the replicas run with the image's default capabilities",
    "devices": "not carried over: the replicas get no host devices",
    "security_opt": "the replicas run with no-new-privileges",
    "volumes": "not carried over: the replicas run the built image (rebuilt by `scaleout up`); keep state in a "
               "service or a database",
    "volumes_from": "not carried over: the replicas run the built image",
    "tmpfs": "not carried over: the replicas run the built image",
    "command": "the replicas run the image's own command: put it in the Dockerfile (CMD)",
    "entrypoint": "the replicas run the image's own entrypoint: put it in the Dockerfile (ENTRYPOINT)",
    "user": "set USER in the Dockerfile",
    "working_dir": "set WORKDIR in the Dockerfile",
    "restart": "scaleout restarts the replicas unless they were stopped",
    "labels": "scaleout labels the replicas itself",
    "stop_signal": "the replicas get SIGTERM (set STOPSIGNAL in the Dockerfile)",
    "stop_grace_period": "the replicas get 10 s to finish in-flight requests",
    "secrets": _SECRETS,
    "configs": _SECRETS,
    "cpus": _LIMITS,
    "cpu_shares": _LIMITS,
    "cpu_quota": _LIMITS,
    "cpuset": _LIMITS,
    "mem_reservation": _LIMITS,
    "memswap_limit": _LIMITS,
}
# and for keys of the other services
_SERVICE_INSTEAD = {
    "container_name": "Compose names the container after the project; the others reach it by its service name",
    "network_mode": "the service joins the project's network, where the replicas reach it by name",
    "networks": _NETWORK,
    "links": _NETWORK,
    "external_links": _NETWORK,
    "extends": "not resolved: the keys it would add are missing here; copy them into the service",
    "pid": _NAMESPACES,
    "ipc": _NAMESPACES,
    "uts": _NAMESPACES,
    "userns_mode": _NAMESPACES,
    "privileged": "not carried over: scaleout runs no privileged container",
    "cap_add": "not carried over: the service runs with the image's default capabilities",
    "devices": "not carried over: scaleout gives no container a host device",
    "entrypoint": "not carried over: the image's entrypoint runs (fold it into command)",
    "deploy": "not carried over: scaleout runs one container per service",
    "scale": "not carried over: scaleout runs one container per service",
    "secrets": _SECRETS,
    "configs": _SECRETS,
}


def _why(key: str, table: Mapping[str, str]) -> str:
    if key in table:
        return table[key]
    if key in COMPOSE_SERVICE_KEYS:
        return "not carried over (scaleout.yaml has no such setting)"
    return "not a Compose key: ignored"


def show(value: Any) -> str:
    """A user's value as one short, printable line (notes end up in a YAML comment: no line breaks)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {show(v)}" for k, v in value.items())
    elif isinstance(value, list):
        text = " ".join(show(v) for v in value)
    else:
        text = "" if value is None else str(value)
    text = show_line(text)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


@dataclass
class Adoption:
    """The scaleout.yaml adopted from a Compose file, and the notes on what did not carry over."""

    compose: ComposeFile
    service: str
    project_dir: Path
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.project_dir / CONFIG_FILE

    def text(self) -> str:
        import yaml

        src = os.path.relpath(self.compose.path, self.project_dir)
        lines = [
            f"# scaleout.yaml generated by `scaleout init --from {show_line(src)} --service {self.service}`:",
            f"# the Compose service {self.service} is the replicated backend, every other service is under services:.",
            "# ${VAR} references are kept as Compose wrote them; scaleout reads the .env beside this file.",
        ]
        if self.notes:
            lines.append("# Not carried over, and what scaleout does instead:")
            lines.extend(f"#   - {show_line(n)}" for n in self.notes)
        body = yaml.safe_dump(self.data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
        return "\n".join(lines) + "\n" + body


def show_line(text: str) -> str:
    """Text for one line of a YAML comment: every unprintable character (control characters, and line
    breaks YAML knows beyond \\n: NEL, U+2028, U+2029) becomes '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


class _Ctx:
    """What the mapping of one Compose file needs: the file, the project root, the variables Compose
    would interpolate with, and the notes collected so far."""

    def __init__(self, cf: ComposeFile, root: Path, env: Mapping[str, str]) -> None:
        self.cf, self.root, self.env = cf, root, env
        self.notes: list[str] = []

    def note(self, svc: str, key: str, value: Any, text: str) -> None:
        """One line: `service: key value: what scaleout does instead`."""
        what = " ".join(p for p in (show(key), show(value)) if p)
        self.notes.append(f"{svc}: {what}: {text}" if what else f"{svc}: {text}")

    def error(self, keys: tuple[object, ...], message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{self.cf.where(*keys)}: {'.'.join(map(str, keys))}: {message}", hint=hint)

    def resolve(self, value: Any, keys: tuple[object, ...]) -> str:
        """Compose's interpolation of a value scaleout must understand."""
        try:
            return interpolate(str(value), self.env)
        except InterpolationError as exc:
            raise self.error(keys, str(exc)) from None

    def project_path(self, written: str, keys: tuple[object, ...], *, resolved: bool = False) -> tuple[str | None, str]:
        """A path relative to the Compose file, as a path relative to the project: (path, problem)."""
        resolved_path = written if resolved else self.resolve(written, keys)
        if not resolved_path or re.search(r"[\x00-\x1f\x7f]", resolved_path):
            return None, "not a path"
        if resolved_path.startswith("~") or os.path.isabs(resolved_path):
            return None, "an absolute path"
        full = os.path.normpath(os.path.join(self.cf.folder, resolved_path))
        rel = os.path.relpath(full, self.root)
        if rel == ".." or rel.startswith("../") or not _inside(self.root, Path(full)):
            return None, "outside the project folder"
        return Path(rel).as_posix(), ""


def _inside(root: Path, path: Path) -> bool:
    try:
        real = path.resolve(strict=False)
    except (OSError, RuntimeError):
        return False
    return real == root or root in real.parents


def _dns_label(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")


# --- choosing the service -------------------------------------------------------------------------------

def _services(cf: ComposeFile) -> dict[str, dict[str, Any]]:
    services = cf.data.get("services")
    if services is None:
        if any(isinstance(v, dict) and ("image" in v or "build" in v) for v in cf.data.values()):
            raise ConfigError(f"{cf.source}: services at the top level (the old version 1 format) are not read",
                              hint="put them under `services:` (the Compose Specification format)")
        raise ConfigError(f"{cf.source}: no `services:` mapping: not a Compose file")
    if not isinstance(services, dict) or not services:
        raise ConfigError(f"{cf.where('services')}: services: must be a mapping of service names to services")
    for name, svc in services.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ConfigError(f"{cf.where('services', name)}: services: {show(name)!r} is not a service name "
                              "(letters, digits, '.', '_', '-')")
        if not isinstance(svc, dict):
            raise ConfigError(f"{cf.where('services', name)}: services.{name}: must be a mapping "
                              f"(image:, build:, ...), not {type(svc).__name__}")
    return services


def _describe_candidate(svc: dict[str, Any]) -> str:
    parts = []
    if "build" in svc:
        parts.append("build")
    if svc.get("ports"):
        parts.append("ports " + show(svc["ports"]))
    if "image" in svc:
        parts.append("image " + show(svc["image"]))
    return ", ".join(parts)


def pick_service(cf: ComposeFile, services: dict[str, dict[str, Any]], wanted: str | None) -> str:
    """The service to replicate: `wanted`, else the only one with a build, else the only one publishing ports."""
    if wanted is not None:
        if wanted not in services:
            raise UsageError(f"--service: {cf.source} has no service {wanted!r} "
                             f"(services: {', '.join(services)})")
        return wanted
    builds = [n for n, s in services.items() if "build" in s]
    if len(builds) == 1:
        return builds[0]
    if not builds:
        published = [n for n, s in services.items() if s.get("ports")]
        if len(published) == 1:
            return published[0]
    candidates = builds or [n for n, s in services.items() if s.get("ports")] or list(services)
    listing = "; ".join(f"{n} ({_describe_candidate(services[n]) or 'no build, no ports'})" for n in candidates)
    raise UsageError(f"{cf.source}: which service is the web app to replicate? candidates: {listing}",
                     hint="pass --service NAME")


def _check_names(cf: ComposeFile, services: dict[str, dict[str, Any]], web: str) -> None:
    for name in services:
        if name == web:
            continue
        low = name.lower()
        if low == LB_SERVICE or low == "backend" or is_replica_name(low) or low.startswith("backend-"):
            what = "its load balancer" if low == LB_SERVICE else "its replicas (backend-1..N)"
            raise ConfigError(
                f"{cf.where('services', name)}: services.{name}: the name {name!r} is taken by scaleout for {what}",
                hint=f"rename the service in the Compose file (and where others refer to it), or choose it with "
                     f"--service {name} if it is the web app")


# --- the replicated service -------------------------------------------------------------------------------

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


def parse_port(ctx: _Ctx, entry: Any, keys: tuple[object, ...]) -> PortSpec:
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


def _entries(ctx: _Ctx, svc_name: str, svc: dict[str, Any], key: str) -> list[Any]:
    value = svc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.error(("services", svc_name, key), f"must be a list (got {show(value)!r})")
    return value


def _container_port(ctx: _Ctx, name: str, svc: dict[str, Any], dockerfile: str | None) -> int:
    """The one port the balancer sends traffic to; a note for every published port and every other port."""
    ports = [parse_port(ctx, e, ("services", name, "ports", i))
             for i, e in enumerate(_entries(ctx, name, svc, "ports"))]
    exposed = [parse_port(ctx, e, ("services", name, "expose", i))
               for i, e in enumerate(_entries(ctx, name, svc, "expose"))]
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
    from scaleout.config import BalancerConfig

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


def _build(ctx: _Ctx, name: str, svc: dict[str, Any], *, web: bool) -> dict[str, Any]:
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


def _build_args(ctx: _Ctx, name: str, args: Any, keys: tuple[object, ...]) -> str | None:
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
        else:
            ctx.note(name, "build.args", f"{arg}", "scaleout passes only BASE_IMAGE to the build: give the ARG a "
                                                   "default in the Dockerfile")
    return base_image


def _read_dockerfile(ctx: _Ctx, name: str, build: dict[str, Any]) -> str:
    rel = f"{build['build']}/{build.get('dockerfile', 'Dockerfile')}"
    path = ctx.root / rel
    if not _inside(ctx.root, path):
        raise ctx.error(("services", name, "build"), f"{rel} leads outside the project folder (a link?)")
    data = read_bounded(path, f"{ctx.cf.where('services', name, 'build')}: services.{name}.build: {rel}",
                        max_bytes=256 * 1024)
    return data.decode("utf-8", errors="replace")


def _base_image(dockerfile: str) -> str | None:
    """The default of `ARG BASE_IMAGE` before the first FROM (scaleout always passes BASE_IMAGE)."""
    for line in dockerfile.splitlines():
        s = line.strip()
        if re.match(r"(?i)^FROM\s", s):
            return None
        m = re.match(r"(?i)^ARG\s+BASE_IMAGE\s*=\s*(\S+)\s*$", s)
        if m:
            return m.group(1).strip("\"'")
    return None


# --- health --------------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|us|µs|ns|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_HEALTH_BOUNDS = {"interval": (1, 300), "timeout": (1, 300), "retries": (1, 100), "start_period": (0, 3600)}
_LOCAL_URL = re.compile(r"^http://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(?P<port>[0-9]+))?(?P<path>/[^?#]*)?$")
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_VALUE_FLAGS = frozenset({"-o", "-O", "--output", "--output-document", "-m", "--max-time", "-T", "--timeout", "-t",
                          "--tries", "--retry", "--connect-timeout"})


def duration_seconds(value: Any) -> float | None:
    """A Compose duration ("30s", "1m30s", "500ms") in seconds, or None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    parts = _DURATION_PART.findall(value)
    if "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def _http_probe_path(argv: list[str], port: int) -> str | None:
    """The URL path when `argv` is curl or wget fetching the container's own port, else None."""
    if not argv or os.path.basename(argv[0]) not in ("curl", "wget"):
        return None
    urls = []
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg in _VALUE_FLAGS:
            skip = True
        elif not arg.startswith("-"):
            urls.append(arg)
    if len(urls) != 1:
        return None
    m = _LOCAL_URL.match(urls[0])
    if not m or int(m["port"] or 80) != port:
        return None
    path = m["path"] or "/"
    segments = path.strip("/").split("/")
    if not _URL_PATH.match(path) or (path != "/" and any(s in ("", ".", "..") for s in segments if path.strip("/"))):
        return None
    return path


def _probe_argv(ctx: _Ctx, shell: str | None, argv: list[str] | None) -> list[str] | None:
    """The probe as an argument list when it is a plain command (`|| exit 1` allowed), with variables resolved."""
    if argv is not None:
        return [ctx.resolve(a, ()) for a in argv]
    assert shell is not None
    simple = re.sub(r"\s*\|\|\s*exit(?:\s+1)?\s*$", "", shell)
    if re.search(r"[;&|<>`()\n]", simple):
        return None
    try:
        return shlex.split(ctx.resolve(simple, ()))
    except ValueError:
        return None


def _health_test(ctx: _Ctx, name: str, hc: dict[str, Any]) -> tuple[str | None, list[str] | None, bool]:
    """(shell string, argv, disabled) of a healthcheck's test."""
    keys = ("services", name, "healthcheck", "test")
    test = hc.get("test")
    if hc.get("disable") is True:
        return None, None, True
    if test is None:
        return None, None, False
    if isinstance(test, str):
        return test, None, False
    if not isinstance(test, list) or not test or not all(isinstance(t, (str, int, float)) for t in test):
        raise ctx.error(keys, f"must be a string or a list such as [CMD, curl, -f, URL] (got {show(test)!r})")
    words = [str(t) for t in test]
    if words[0] == "NONE":
        return None, None, True
    if words[0] == "CMD-SHELL" and len(words) >= 2:
        return " ".join(words[1:]), None, False
    if words[0] == "CMD" and len(words) >= 2:
        return None, words[1:], False
    raise ctx.error(keys, f"must start with CMD, CMD-SHELL or NONE (got {show(test)!r})")


def _health_timing(ctx: _Ctx, name: str, hc: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, (lo, hi) in _HEALTH_BOUNDS.items():
        if key not in hc:
            continue
        raw = hc[key]
        resolved = ctx.resolve(raw, ("services", name, "healthcheck", key)) if isinstance(raw, str) else raw
        if key == "retries":
            value = int(resolved) if str(resolved).isdigit() else None
        else:
            secs = duration_seconds(resolved)
            value = None if secs is None else math.ceil(secs - 1e-9)
        if value is None:
            ctx.note(name, f"healthcheck.{key}", raw, f"not a {'count' if key == 'retries' else 'duration'}: "
                                                      "scaleout's default is used")
            continue
        if not lo <= value <= hi:
            clamped = min(max(value, lo), hi)
            ctx.note(name, f"healthcheck.{key}", raw, f"outside scaleout's range {lo}-{hi}: {clamped} is used")
            value = clamped
        out[key] = value
    for key in hc:
        if key not in (*_HEALTH_BOUNDS, "test", "disable"):
            ctx.note(name, f"healthcheck.{key}", hc[key], "not carried over (scaleout.yaml has no such setting)")
    return out


def _health(ctx: _Ctx, name: str, svc: dict[str, Any], port: int) -> dict[str, Any]:
    """backend.health: an HTTP probe of the replica's own port becomes `path`, anything else `command`."""
    hc = svc.get("healthcheck")
    fallback = f"scaleout probes GET / on port {port} (safer than /healthz for an existing app): set " \
               "backend.health.path to a cheap endpoint"
    if hc is None:
        ctx.note(name, "healthcheck", "", f"none given: {fallback}")
        return {"path": "/"}
    if not isinstance(hc, dict):
        raise ctx.error(("services", name, "healthcheck"), "must be a mapping (test:, interval:, ...)")
    shell, argv, disabled = _health_test(ctx, name, hc)
    timing = _health_timing(ctx, name, hc)
    if disabled:
        ctx.note(name, "healthcheck", "disabled", f"scaleout gates traffic on health: {fallback}")
        return {"path": "/", **timing}
    if shell is None and argv is None:
        ctx.note(name, "healthcheck", "no test", f"the image's own HEALTHCHECK is not read: {fallback}")
        return {"path": "/", **timing}
    probe = _probe_argv(ctx, shell, argv)
    path = _http_probe_path(probe, port) if probe else None
    if path is not None:
        return {"path": path, **timing}
    command = shell if shell is not None else shlex.join(argv or [])
    command = command.strip()
    if not command or any(c in command for c in "\r\n\0"):
        ctx.note(name, "healthcheck.test", command, f"a multi-line command cannot be carried over: {fallback}")
        return {"path": "/", **timing}
    return {"command": command, **timing}


# --- environment, env files, dependencies, deploy -----------------------------------------------------------

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _environment(ctx: _Ctx, name: str, svc: dict[str, Any]) -> dict[str, str]:
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


def _env_files(ctx: _Ctx, name: str, svc: dict[str, Any]) -> list[str]:
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


def _depends_on(ctx: _Ctx, name: str, svc: dict[str, Any]) -> list[tuple[str, str]]:
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


def _replicas(ctx: _Ctx, name: str, svc: dict[str, Any]) -> int:
    deploy = svc.get("deploy") if isinstance(svc.get("deploy"), dict) else {}
    for key, raw in (("deploy.replicas", deploy.get("replicas")), ("scale", svc.get("scale"))):
        if raw is None:
            continue
        text = ctx.resolve(raw, ("services", name, *key.split(".")))
        if not text.isdigit():
            raise ctx.error(("services", name, *key.split(".")), f"must be a number (got {show(raw)!r})")
        n = min(max(int(text), 1), 32)
        ctx.note(name, key, raw, f"carried over as backend.replicas: {n}" + ("" if str(n) == text else " (1-32)"))
        return n
    return DEFAULT_REPLICAS


def _limits(ctx: _Ctx, name: str, svc: dict[str, Any]) -> dict[str, Any]:
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
        why = ("scaleout runs backend.replicas replicas on this machine" if key == "deploy.mode"
               else _LIMITS if key.startswith("deploy.resources") else
               "not carried over: a Swarm setting; scaleout starts, restarts and replaces the replicas itself")
        ctx.note(name, key, value, why)
    if candidates["memory"] is not None:
        mem = _memory(ctx.resolve(candidates["memory"], ("services", name, "deploy")))
        if mem is None:
            ctx.note(name, "memory limit", candidates["memory"],
                     "not a size scaleout takes (6m or more): not carried over")
        else:
            limits["memory"] = mem
    if candidates["pids"] is not None:
        text = ctx.resolve(candidates["pids"], ("services", name, "deploy"))
        if text.isdigit() and 16 <= int(text) <= 1_000_000:
            limits["pids"] = int(text)
        else:
            ctx.note(name, "pids limit", candidates["pids"], "scaleout takes 16-1000000: not carried over")
    return limits


def _backend(ctx: _Ctx, name: str, svc: dict[str, Any], carried: list[str]) -> tuple[dict[str, Any], str | None]:
    """backend: of scaleout.yaml for the replicated service, and the base image its Dockerfile expects."""
    out: dict[str, Any] = {}
    base_image = None
    dockerfile = None
    if "build" in svc:
        build = _build(ctx, name, svc, web=True)
        dockerfile = _read_dockerfile(ctx, name, build)
        base_image = build.pop("base_image", None) or _base_image(dockerfile)
        out.update(build)
    elif "image" in svc:
        out["image"] = ctx.resolve(svc["image"], ("services", name, "image"))
        if out["image"] != str(svc["image"]):
            ctx.note(name, "image", svc["image"], f"written as {show(out['image'])} (scaleout needs the value)")
    else:
        raise ctx.error(("services", name), "has neither image nor build: there is nothing to replicate")
    port = _container_port(ctx, name, svc, dockerfile)
    out["port"] = port
    out["replicas"] = _replicas(ctx, name, svc)
    out["health"] = _health(ctx, name, svc, port)
    env = _environment(ctx, name, svc)
    if env:
        out["env"] = env
    env_files = _env_files(ctx, name, svc)
    if env_files:
        out["env_file"] = env_files
    deps = []
    for dep, cond in _depends_on(ctx, name, svc):
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
        if key not in _WEB_HANDLED and not key.startswith("x-"):
            ctx.note(name, key, value, _why(key, _WEB_INSTEAD))
    return out, base_image


# --- the other services -----------------------------------------------------------------------------------

_VOLUME_MODES = frozenset({"ro", "rw", "z", "Z", "nocopy", "cached", "delegated", "consistent"})


def _volume(ctx: _Ctx, name: str, entry: Any, i: int) -> str | None:
    """A volume as the short syntax scaleout takes (named volume or bind inside the project), else a note."""
    keys = ("services", name, "volumes", i)
    if isinstance(entry, dict):
        kind = entry.get("type", "volume")
        source, target = entry.get("source"), entry.get("target")
        mode = "ro" if entry.get("read_only") else ""
        extra = [k for k in entry if k not in ("type", "source", "target", "read_only")]
        if kind not in ("volume", "bind") or not isinstance(target, str) or (kind == "bind" and not source):
            ctx.note(name, "volumes", entry, f"a {kind} mount is not carried over; scaleout mounts named volumes and "
                                             "folders inside the project")
            return None
        if extra:
            ctx.note(name, "volumes", entry, f"{', '.join(extra)}: not carried over")
        if not source:
            source = None
        elif kind == "bind" and not str(source).startswith((".", "/", "~")):
            source = "./" + str(source)
    elif isinstance(entry, str):
        parts = ctx.resolve(entry, keys).split(":")
        if len(parts) == 1:
            source, target, mode = None, parts[0], ""
        elif len(parts) in (2, 3):
            source, target, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
        else:
            ctx.note(name, "volumes", entry, "not a volume scaleout understands: not carried over")
            return None
        if mode and not set(mode.split(",")) <= _VOLUME_MODES:
            ctx.note(name, "volumes", entry, f"mode {mode} is not carried over")
            mode = ""
    else:
        raise ctx.error(keys, f"must be a string or a mapping (got {show(entry)!r})")
    suffix = f":{mode}" if mode else ""
    if source is None:
        ctx.note(name, "volumes", entry, "an anonymous volume is not carried over (give it a name to keep its data)")
        return None
    source = str(source) if isinstance(entry, str) else ctx.resolve(source, keys)
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


def _service_healthcheck(ctx: _Ctx, name: str, hc: Any) -> dict[str, Any] | None:
    if not isinstance(hc, dict):
        raise ctx.error(("services", name, "healthcheck"), "must be a mapping (test:, interval:, ...)")
    _, _, disabled = _health_test(ctx, name, hc)
    if disabled:
        ctx.note(name, "healthcheck", "disabled", "not carried over: the service runs without a health check")
        return None
    out: dict[str, Any] = {}
    for key in ("test", "interval", "timeout", "retries", "start_period"):
        if key not in hc:
            continue
        value = hc[key]
        if key in ("interval", "timeout", "start_period") and duration_seconds(ctx.resolve(value, ())) is None:
            ctx.note(name, f"healthcheck.{key}", value, "not a duration such as 5s: Compose's default is used")
            continue
        if key == "test" and isinstance(value, list):
            value = [str(v) for v in value]
        out[key] = value
    for key in hc:
        if key not in ("test", "interval", "timeout", "retries", "start_period", "disable"):
            ctx.note(name, f"healthcheck.{key}", hc[key], "not carried over (scaleout.yaml has no such setting)")
    return out or None


def _service(ctx: _Ctx, name: str, svc: dict[str, Any], web: str) -> dict[str, Any]:
    """One `services:` entry: image or build, command, environment, env_file, volumes, healthcheck, ports."""
    out = _service_source(ctx, name, svc)
    command = svc.get("command")
    if command is not None:
        if not isinstance(command, (str, list)) or (isinstance(command, list) and not all(
                isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in command)):
            raise ctx.error(("services", name, "command"), "must be a string or a list of strings")
        out["command"] = command if isinstance(command, str) else [str(c) for c in command]
    env = _environment(ctx, name, svc)
    if env:
        out["environment"] = env
    env_files = _env_files(ctx, name, svc)
    if env_files:
        out["env_file"] = env_files
    volumes = [v for i, e in enumerate(_entries(ctx, name, svc, "volumes")) if (v := _volume(ctx, name, e, i))]
    if volumes:
        out["volumes"] = volumes
    if svc.get("healthcheck") is not None:
        hc = _service_healthcheck(ctx, name, svc["healthcheck"])
        if hc:
            out["healthcheck"] = hc
    ports = _service_ports(ctx, name, svc)
    if ports:
        out["ports"] = ports
    _service_depends_on(ctx, name, svc, web)
    for key, value in svc.items():
        if key not in _SERVICE_HANDLED and key not in ("depends_on", "profiles") and not key.startswith("x-"):
            ctx.note(name, key, value, _why(key, _SERVICE_INSTEAD))
    return out


def _service_source(ctx: _Ctx, name: str, svc: dict[str, Any]) -> dict[str, Any]:
    if "build" in svc:
        build = _build(ctx, name, svc, web=False)
        build.pop("base_image", None)
        if "image" in svc:
            ctx.note(name, "image", svc["image"], "the service is built from build:, its image named by scaleout")
        return build
    if "image" in svc:
        if not isinstance(svc["image"], str):
            raise ctx.error(("services", name, "image"), f"must be an image reference (got {show(svc['image'])!r})")
        return {"image": svc["image"]}
    raise ctx.error(("services", name), "has neither image nor build")


def _service_depends_on(ctx: _Ctx, name: str, svc: dict[str, Any], web: str) -> None:
    deps = [d for d, _ in _depends_on(ctx, name, svc)]
    if web in deps:
        ctx.note(name, "depends_on", deps, f"services start before the replicas; {web} is replicated now: reach it "
                                           f"through the balancer at http://{LB_SERVICE}:80")
    elif deps:
        ctx.note(name, "depends_on", deps, "services start before the replicas; their order among themselves "
                                           "is not kept")


def _service_ports(ctx: _Ctx, name: str, svc: dict[str, Any]) -> list[str]:
    from scaleout.config import BalancerConfig

    bind = BalancerConfig().bind
    out = []
    for i, entry in enumerate(_entries(ctx, name, svc, "ports")):
        spec = parse_port(ctx, entry, ("services", name, "ports", i))
        written = entry if isinstance(entry, str) else spec.short()
        if isinstance(entry, dict):
            extra = [k for k in entry if k not in ("target", "published", "host_ip", "protocol", "mode")]
            if extra:
                ctx.note(name, "ports", entry, f"{', '.join(extra)}: not carried over")
        if not spec.host_ip and spec.published:
            ctx.note(name, "ports", written, f"published on {bind} only; write an address (0.0.0.0:{spec.published}:"
                                             f"{spec.target}) to publish it beyond this machine")
        elif spec.host_ip in ("0.0.0.0", "[::]"):
            ctx.note(name, "ports", written, "published on every interface of this machine, as written")
        out.append(str(written))
    return out


# --- the whole file ----------------------------------------------------------------------------------------

def _compose_project_name(cf: ComposeFile) -> str:
    """The name Compose gives the project (and prefixes its volumes with) when run in its folder."""
    top = cf.data.get("name")
    base = str(top) if isinstance(top, str) else cf.folder.name
    return re.sub(r"[^a-z0-9_-]", "", base.lower()).lstrip("_-")


def _name(ctx: _Ctx, given: str | None) -> str:
    if given is not None:
        if _dns_label(given) != given or not given:
            raise UsageError(f"--name: must be a DNS label: lower-case letters, digits and '-' (got {given!r})")
        return given
    top = ctx.cf.data.get("name")
    if top is not None:
        resolved = ctx.resolve(top, ("name",))
        label = _dns_label(resolved) or "scaleout"
        if label != str(top):
            ctx.note("name", "", top, f"written as {label} (a project name is a DNS label)")
        return label
    return _dns_label(ctx.cf.folder.name) or "scaleout"


def _top_level(ctx: _Ctx, name: str, carried: dict[str, dict[str, Any]]) -> None:
    data = ctx.cf.data
    for key, value in data.items():
        if key in ("version", "name", "services") or key.startswith("x-"):
            continue
        if key == "volumes":
            _top_volumes(ctx, name, value, carried)
        elif key == "networks":
            ctx.note(key, "", list(value) if isinstance(value, dict) else value, _NETWORK)
        elif key in ("secrets", "configs"):
            ctx.note(key, "", list(value) if isinstance(value, dict) else value, _SECRETS)
        elif key == "include":
            ctx.note(key, "", value, "included Compose files are not read: adopt them separately or merge them")
        else:
            ctx.note(key, "", "", "not a top-level key scaleout reads: ignored" if key in TOP_LEVEL_KEYS
                     else "not a Compose key: ignored")


def _top_volumes(ctx: _Ctx, name: str, value: Any, carried: dict[str, dict[str, Any]]) -> None:
    used = {v.split(":", 1)[0] for s in carried.values() for v in s.get("volumes", []) if not v.startswith(".")}
    if isinstance(value, dict):
        for vol, spec in value.items():
            if isinstance(spec, dict) and spec:
                ctx.note(f"volumes.{vol}", "", spec, "driver, name and external settings are not carried over: "
                                                     f"scaleout creates the project volume {name}_{vol}")
    compose_name = _compose_project_name(ctx.cf)
    if used and compose_name != name:
        ctx.note("volumes", "", sorted(used), f"Compose named them {compose_name}_VOLUME, scaleout's project "
                                              f"{name}_VOLUME: new, empty volumes (copy the data if you need it)")


def adopt(compose_path: Path, *, service: str | None = None, project_dir: Path | None = None, name: str | None = None,
          env: Mapping[str, str] | None = None, source: str | None = None) -> Adoption:
    """Map a Compose file to scaleout.yaml data. Nothing is written; raises ConfigError/UsageError (exit 2)."""
    cf = load_compose_file(compose_path, source)
    root = (project_dir or cf.folder).resolve()
    dotenv = read_dotenv(cf.folder / ".env", f"{cf.source}: .env")
    ctx = _Ctx(cf, root, {**dotenv, **(os.environ if env is None else env)})
    services = _services(cf)
    web = pick_service(cf, services, service)
    _check_names(cf, services, web)
    carried: dict[str, dict[str, Any]] = {}
    skipped = []
    for svc_name, svc in services.items():
        if svc_name != web and svc.get("profiles"):
            ctx.note(svc_name, "profiles", svc["profiles"], "Compose starts it only on request: not carried over")
            skipped.append(svc_name)
    project = _name(ctx, name)
    backend, base_image = _backend(ctx, web, services[web], [n for n in services if n not in skipped and n != web])
    for svc_name, svc in services.items():
        if svc_name != web and svc_name not in skipped:
            carried[svc_name] = _service(ctx, svc_name, svc, web)
    _top_level(ctx, project, carried)
    if root != cf.folder and (cf.folder / ".env").exists():
        ctx.note(".env", "", "", f"Compose read {cf.folder / '.env'} for ${{VAR}}; scaleout reads the .env beside "
                                 "scaleout.yaml: copy it there")
    data: dict[str, Any] = {"name": project, "backend": backend}
    if carried:
        data["services"] = carried
    # an adopted app owns every path: the balancer serves no static route of its own
    data["static"] = {"dir": ".", "routes": [], "service_workers": [], "generate_worker": False}
    if base_image:
        data["images"] = {"base": base_image}
    adoption = Adoption(compose=cf, service=web, project_dir=root, data=data, notes=ctx.notes)
    _validate(adoption, ctx.env)
    return adoption


def _known_part(data: Any, model: Any) -> Any:
    """The part of `data` that the installed Config model knows (keys it does not know yet are skipped)."""
    from pydantic import BaseModel

    if not isinstance(data, dict) or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return data
    out = {}
    for key, value in data.items():
        f = model.model_fields.get(key)
        if f is not None:
            out[key] = _known_part(value, f.annotation)
    return out


def _validate(adoption: Adoption, env: Mapping[str, str]) -> None:
    """The adopted data must pass scaleout's own validation (as far as this version's Config knows it)."""
    import yaml

    from scaleout.config import Config, parse_config

    text = yaml.safe_dump(_known_part(adoption.data, Config), sort_keys=False)
    try:
        parse_config(text, adoption.project_dir, source=f"{CONFIG_FILE} (from {adoption.compose.source})",
                     env=dict(env))
    except ConfigError as exc:
        raise ConfigError(exc.problems, hint="the Compose file holds a value scaleout does not take; adjust it "
                                             "there, or write scaleout.yaml by hand") from None


def write_adoption(adoption: Adoption, *, force: bool = False) -> Path:
    """Write scaleout.yaml (atomically); an existing one is replaced only with `force`."""
    from scaleout.files import atomic_write

    path = adoption.path
    if os.path.lexists(path) and not force:
        raise RenderConflictError(f"{path}: already exists", hint="pass --force to replace it")
    atomic_write(path, adoption.text())
    return path
