"""Which engine answers, and where: Docker Engine or Podman Engine (Podman's Docker-compatible API), its
version, and the socket it was found on. Every engine message names it, and the engine's quirks are
decided here in one place (targets/podman.py holds what Podman needs done differently).

Where: DOCKER_HOST when set (the way Docker's own tools are pointed at an engine, Podman included);
otherwise the first of these sockets that exists: Docker's `/var/run/docker.sock`, rootful Podman's
`/run/podman/podman.sock`, rootless Podman's `$XDG_RUNTIME_DIR/podman/podman.sock`. A socket found that
way is handed to the Compose and `docker` CLIs too (as DOCKER_HOST), so every tool talks to one engine.

Measured on Podman 4.3.1 (Debian 12, rootful, no systemd): its /version names the component
"Podman Engine" (Docker's: "Engine"); it never runs HEALTHCHECKs by itself (it schedules them with systemd
timers); it has no BuildKit, so Compose v2 (buildx) builds fail unless DOCKER_BUILDKIT=0; it stores a
short image name as `localhost/NAME`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DOCKER_SOCK = "/var/run/docker.sock"
PODMAN_ROOTFUL_SOCK = "/run/podman/podman.sock"
PODMAN_SETUP = ("start Podman's API service: `podman system service --time=0 unix:///run/podman/podman.sock &` "
                "(scripts/setup-podman.sh does it)")
RLIMIT_HINT = ("rootful Podman asks the kernel for nofile=1048576 and nproc=4194304, more than this host allows: "
               "set `[containers]` `default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]` (within "
               "`ulimit -Hn` / `ulimit -Hu`) in /etc/containers/containers.conf, then restart `podman system "
               "service` (scripts/setup-podman.sh does both)")


@dataclass(frozen=True)
class EngineHost:
    """Where the engine is expected: a DOCKER_HOST-style URL and how it was chosen."""

    url: str
    source: str  # "DOCKER_HOST" or the name of the default socket it was found on

    @property
    def from_env(self) -> bool:
        return self.source == "DOCKER_HOST"

    @property
    def looks_like_podman(self) -> bool:
        return "podman" in self.url

    def describe(self) -> str:
        return f"{self.url} ({self.source})"


def find_host(env: Mapping[str, str] | None = None, exists: Callable[[str], bool] = os.path.exists) -> EngineHost:
    """DOCKER_HOST, else the first default socket that exists (Docker's, then Podman's rootful, then rootless)."""
    env = os.environ if env is None else env
    host = env.get("DOCKER_HOST", "").strip()
    if host:
        return EngineHost(host, "DOCKER_HOST")
    candidates = [(DOCKER_SOCK, "Docker's default socket"), (PODMAN_ROOTFUL_SOCK, "Podman's rootful socket")]
    runtime = env.get("XDG_RUNTIME_DIR", "").strip()
    if runtime:
        candidates.append((f"{runtime.rstrip('/')}/podman/podman.sock", "Podman's rootless socket"))
    for path, source in candidates:
        if exists(path):
            return EngineHost(f"unix://{path}", source)
    return EngineHost(f"unix://{DOCKER_SOCK}", "Docker's default socket; no engine socket exists")


@dataclass(frozen=True)
class EngineInfo:
    """The engine that answered: what `status` and every engine error name."""

    kind: str  # docker | podman
    name: str  # Docker Engine | Podman Engine
    version: str
    api_version: str
    libpod_api: str | None  # Podman: the version prefix of its own (libpod) endpoints, e.g. 4.3.1
    host: EngineHost

    @property
    def podman(self) -> bool:
        return self.kind == "podman"

    @property
    def label(self) -> str:
        """`Podman Engine 4.3.1`, `Docker Engine 20.10.24`."""
        return f"{self.name} {self.version}".strip()

    @property
    def runs_healthchecks(self) -> bool:
        """Whether the engine runs containers' HEALTHCHECKs by itself. Podman runs them from systemd timers,
        which a machine without systemd (a container, WSL, many CI runners) never fires."""
        return not self.podman

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "api_version": self.api_version,
                "host": self.host.url, "host_source": self.host.source}


def identify(version: Mapping[str, Any], host: EngineHost) -> EngineInfo:
    """The engine described by its `GET /version` answer (pure: unit-tested on recorded answers)."""
    components = [c for c in version.get("Components") or [] if isinstance(c, dict)]
    names = {str(c.get("Name", "")): c for c in components}
    podman = names.get("Podman Engine")
    if podman is not None:
        details = podman.get("Details") if isinstance(podman.get("Details"), dict) else {}
        return EngineInfo("podman", "Podman Engine", str(podman.get("Version") or version.get("Version") or "?"),
                          str(version.get("ApiVersion") or "?"),
                          str(details.get("APIVersion") or podman.get("Version") or version.get("Version") or ""),
                          host)
    engine = names.get("Engine", {})
    return EngineInfo("docker", "Docker Engine", str(version.get("Version") or engine.get("Version") or "?"),
                      str(version.get("ApiVersion") or "?"), None, host)


_current: EngineInfo | None = None


def remember(info: EngineInfo) -> None:
    global _current
    _current = info


def current() -> EngineInfo | None:
    """The engine this process connected to, if it has (errors before that name the host instead)."""
    return _current


def current_dict() -> dict[str, Any] | None:
    """The engine this process connected to, as `status --json` reports it (None: not connected)."""
    info = current()
    return info.to_dict() if info is not None else None


def require_swarm_mode() -> None:
    """Refuse the swarm target on an engine that has no Swarm mode (Podman), naming it."""
    from scaleout.errors import UsageError

    info = current()
    if info is not None and info.podman:
        raise UsageError(f"the swarm target needs Docker's Swarm mode, which {info.label} does not have",
                         hint="use the Compose target (the default) on Podman, or point DOCKER_HOST at a "
                         "Docker engine that is a swarm manager")


def describe_engine() -> str:
    """`Podman Engine 4.3.1 at unix:///run/podman/podman.sock`, or the expected host when none answered yet."""
    info = current()
    if info is not None:
        return f"{info.label} at {info.host.url}"
    host = find_host()
    return f"the {'Podman' if host.looks_like_podman else 'Docker'} engine at {host.describe()}"


def cli_env(info: EngineInfo | None = None) -> dict[str, str]:
    """What the Compose and `docker` CLIs need in their environment to use the same engine the same way:
    DOCKER_HOST for a socket found by default, and classic builds on Podman (it has no BuildKit)."""
    info = info or current()
    host = info.host if info is not None else find_host()
    env: dict[str, str] = {}
    if not host.from_env and (host.url != f"unix://{DOCKER_SOCK}"):
        env["DOCKER_HOST"] = host.url
    if info is not None and info.podman:
        env["DOCKER_BUILDKIT"] = "0"
    return env


def hint_for(detail: str) -> str | None:
    """The fix for an engine failure users meet first on Podman, when `detail` is one."""
    if "error setting rlimit" in detail or "setting rlimits" in detail:
        return RLIMIT_HINT
    return None


def unreachable_hint() -> str:
    """What to do when no engine answers, for the host that was tried."""
    host = find_host()
    if host.looks_like_podman:
        return PODMAN_SETUP + ", or point DOCKER_HOST at a running engine"
    return ("start Docker (scripts/setup-docker.sh does it), or Podman's API service (`podman system service "
            "--time=0 unix:///run/podman/podman.sock &`), or point DOCKER_HOST at a running engine")
