"""The Docker engine and the Compose CLI: finding them, and turning their failures into user messages."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from scaleout.errors import ComposeUnavailableError, DockerUnavailableError, StackError

ENV_COMPOSE = "SCALEOUT_COMPOSE"  # force a Compose CLI: "docker compose" or "docker-compose"
ENGINE_HINT = "start Docker (or run scripts/setup-docker.sh), or point DOCKER_HOST at a running engine"


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Translate Docker SDK errors raised inside the block into user messages."""
    import docker.errors
    import requests.exceptions

    try:
        yield
    except docker.errors.DockerException as exc:
        if isinstance(exc, docker.errors.APIError) or not _looks_like_no_engine(exc):
            raise StackError(f"{action}: the Docker engine refused: {getattr(exc, 'explanation', None) or exc}") from None
        raise DockerUnavailableError(f"{action}: cannot reach the Docker engine ({_short(exc)})", hint=ENGINE_HINT) from None
    except requests.exceptions.ConnectionError as exc:
        raise DockerUnavailableError(f"{action}: cannot reach the Docker engine ({_short(exc)})", hint=ENGINE_HINT) from None


def _looks_like_no_engine(exc: Exception) -> bool:
    text = str(exc)
    return any(s in text for s in ("Connection aborted", "Connection refused", "No such file", "Error while fetching server API version", "connect"))


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


@lru_cache(maxsize=1)
def docker_client():
    """A Docker SDK client that has answered a ping. Raises DockerUnavailableError otherwise."""
    import docker

    with engine_errors("connecting"):
        client = docker.from_env(timeout=60)
        client.ping()
        return client


@lru_cache(maxsize=1)
def compose_cli() -> tuple[str, ...]:
    """The Compose command to run: `docker compose` (v2) when present, else `docker-compose` (v1)."""
    forced = os.environ.get(ENV_COMPOSE, "").strip()
    candidates = [tuple(forced.split())] if forced else [("docker", "compose"), ("docker-compose",)]
    for cand in candidates:
        if not shutil.which(cand[0]):
            continue
        try:
            r = subprocess.run([*cand, "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return cand
    raise ComposeUnavailableError(
        "no Compose CLI found: neither `docker compose` (v2 plugin) nor `docker-compose` (v1) answers"
        + (f" (SCALEOUT_COMPOSE={forced!r})" if forced else ""),
        hint="install the Docker Compose plugin, or docker-compose (scripts/setup-docker.sh does it on Debian)",
    )


@dataclass
class ComposeResult:
    returncode: int
    tail: list[str]


def run_compose(
    project: str,
    compose_file: Path,
    args: list[str],
    *,
    on_line: Callable[[str], None] | None = None,
    action: str = "compose",
    check: bool = True,
    error: type[StackError] | type = StackError,
) -> ComposeResult:
    """Run the Compose CLI on the generated file, streaming its output lines to `on_line`."""
    cmd = [*compose_cli(), "-p", project, "-f", str(compose_file), *args]
    env = dict(os.environ)
    env.setdefault("COMPOSE_PROGRESS", "plain")  # v2: line output, not a TTY animation
    env.setdefault("BUILDKIT_PROGRESS", "plain")
    tail: deque[str] = deque(maxlen=30)
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=env,
            cwd=compose_file.parent,
        )
    except OSError as exc:
        raise ComposeUnavailableError(f"cannot run {' '.join(cmd[:2])}: {exc}") from None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if on_line:
                on_line(line)
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    result = ComposeResult(proc.returncode, list(tail))
    if check and proc.returncode != 0:
        text = "\n".join("    " + t for t in result.tail[-15:])
        if any("Cannot connect to the Docker daemon" in t or "Is the docker daemon running" in t for t in result.tail):
            raise DockerUnavailableError(f"{action}: cannot reach the Docker engine", hint=ENGINE_HINT)
        raise error(f"{action} failed (exit {proc.returncode}); last output:\n{text}")
    return result
