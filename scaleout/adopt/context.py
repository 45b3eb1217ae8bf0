"""What every part of the adoption shares: the notes (one line each, with what scaleout does instead),
the table of those explanations, and the mapping context (the Compose file, the project root, the
variables Compose would interpolate with)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scaleout.adopt.compose_file import ComposeFile
from scaleout.config.interpolation import Budget, InterpolationError, interpolate
from scaleout.errors import ConfigError
from scaleout.files import inside

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

WEB_HANDLED = frozenset({"build", "image", "ports", "expose", "healthcheck", "environment", "env_file", "depends_on",
                         "deploy", "scale", "mem_limit", "pids_limit"})
# expose: every port of a service is reachable on the project network anyway
SERVICE_HANDLED = frozenset({"build", "image", "command", "environment", "env_file", "volumes", "healthcheck", "ports",
                             "expose"})

_NAMESPACES = "not carried over: scaleout does not share the host's namespaces"
NETWORK = "every container joins the project's default network and reaches the others by service name"
SECRETS = "not carried over: pass the value through environment or env_file"
LIMITS = "scaleout sets memory and process limits only (backend.limits)"

# what scaleout does instead, for keys of the replicated service
WEB_INSTEAD = {
    "container_name": "the replicas are named backend-1..N; one fixed container name cannot be given to several",
    "hostname": "each replica's hostname is its own name (backend-1, backend-2, ...)",
    "network_mode": "the replicas join the project's network, where the balancer reaches them",
    "networks": NETWORK,
    "links": NETWORK,
    "external_links": NETWORK,
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
    "secrets": SECRETS,
    "configs": SECRETS,
    "cpus": LIMITS,
    "cpu_shares": LIMITS,
    "cpu_quota": LIMITS,
    "cpuset": LIMITS,
    "mem_reservation": LIMITS,
    "memswap_limit": LIMITS,
}
# and for keys of the other services
SERVICE_INSTEAD = {
    "container_name": "Compose names the container after the project; the others reach it by its service name",
    "network_mode": "the service joins the project's network, where the replicas reach it by name",
    "networks": NETWORK,
    "links": NETWORK,
    "external_links": NETWORK,
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
    "secrets": SECRETS,
    "configs": SECRETS,
}


def why(key: str, table: Mapping[str, str]) -> str:
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


def show_line(text: str) -> str:
    """Text for one line of a YAML comment: every unprintable character (control characters, and line
    breaks YAML knows beyond \\n: NEL, U+2028, U+2029) becomes '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


class Context:
    """What the mapping of one Compose file needs: the file, the project root, the variables Compose
    would interpolate with, and the notes collected so far."""

    def __init__(self, cf: ComposeFile, root: Path, env: Mapping[str, str]) -> None:
        self.cf, self.root, self.env = cf, root, env
        self.notes: list[str] = []
        self.budget = Budget()  # what interpolation may produce for the whole file

    def note(self, svc: str, key: str, value: Any, text: str) -> None:
        """One line: `service: key value: what scaleout does instead`."""
        what = " ".join(p for p in (show(key), show(value)) if p)
        # one printable line, as the terminal and the YAML comment show it (a name from the file may hold
        # control characters)
        self.notes.append(show_line(f"{svc}: {what}: {text}" if what else f"{svc}: {text}"))

    def error(self, keys: tuple[object, ...], message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{self.cf.where(*keys)}: {'.'.join(map(str, keys))}: {message}", hint=hint)

    def resolve(self, value: Any, keys: tuple[object, ...]) -> str:
        """Compose's interpolation of a value scaleout must understand."""
        try:
            return interpolate(str(value), self.env.get, self.budget, extended=True).value
        except InterpolationError as exc:
            raise self.error(keys, str(exc)) from None

    def given(self, value: Any) -> tuple[str, ...]:
        """The variables set in .env or the environment that a Compose value refers to."""
        if not isinstance(value, str) or "$" not in value:
            return ()
        try:
            result = interpolate(value, self.env.get, Budget(), extended=True)
        except InterpolationError:
            return ()
        return tuple(dict.fromkeys(n for n in result.variables if self.env.get(n) is not None))

    def kept(self, target: str, raw: Any, resolved: Any, *, whole: bool = True, text: str | None = None) -> Any:
        """What scaleout.yaml gets at `target` for a value resolved from the Compose text `raw`: `resolved`
        when no variable set in .env or the environment went into it; else `raw` as written when it maps to
        the key whole (scaleout resolves it from the .env beside scaleout.yaml, so no .env value is copied
        into a file people commit); else `resolved`, with a note naming the variable. `text`: what `raw` must
        resolve to, to be kept (default: `resolved`)."""
        given = self.given(raw)
        if not given:
            return resolved
        ref = "${" + given[0] + "}"
        if whole and isinstance(raw, str) and _plain(raw, self.env) == (str(resolved) if text is None else text):
            self.note(target, "", raw, f"kept as written: scaleout resolves {ref} from the .env beside scaleout.yaml")
            return raw
        self.note(target, "", raw, f"written resolved as {show(resolved)}: scaleout needs the value itself here; "
                                   f"edit scaleout.yaml when {given[0]} changes")
        return resolved

    def project_path(self, written: str, keys: tuple[object, ...], *, resolved: bool = False) -> tuple[str | None, str]:
        """A path relative to the Compose file, as a path relative to the project: (path, problem)."""
        resolved_path = written if resolved else self.resolve(written, keys)
        if not resolved_path or re.search(r"[\x00-\x1f\x7f]", resolved_path):
            return None, "not a path"
        if resolved_path.startswith("~") or os.path.isabs(resolved_path):
            return None, "an absolute path"
        full = os.path.normpath(os.path.join(self.cf.folder, resolved_path))
        rel = os.path.relpath(full, self.root)
        if rel == ".." or rel.startswith("../") or not inside(self.root, Path(full)):
            return None, "outside the project folder"
        return Path(rel).as_posix(), ""


def _plain(raw: str, env: Mapping[str, str]) -> str | None:
    """`raw` resolved with scaleout.yaml's own interpolation (not the extended one), or None if it takes
    syntax only Compose v2 reads (`${A:+x}`, nested defaults)."""
    try:
        return interpolate(raw, env.get, Budget()).value
    except InterpolationError:
        return None


def dns_label(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
