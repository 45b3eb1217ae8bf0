"""The Docker engine and its CLIs (Compose, `docker stack`): finding them, running them, and turning
their failures into user messages, in one place for every target."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from scaleout.errors import ComposeUnavailableError, DockerUnavailableError, StackError, UnhealthyError

Progress = Callable[[str], None]
ENV_COMPOSE = "SCALEOUT_COMPOSE"  # force a Compose CLI: "docker compose" or "docker-compose"
MISS_CHECK_S = 0.3  # poll_balancer: how often a failed try also asks `on_miss` (an engine call)
ENGINE_HINT = ("start Docker (or run scripts/setup-docker.sh), or Podman's API service (scripts/setup-podman.sh), "
               "or point DOCKER_HOST at a running engine")


def quiet(_: str) -> None:
    """A progress or log callback that shows nothing."""


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Translate Docker SDK errors raised inside the block into user messages naming the engine."""
    import docker.errors
    import requests.exceptions

    from scaleout.targets import engine

    try:
        yield
    except docker.errors.DockerException as exc:
        if isinstance(exc, docker.errors.APIError) or not _looks_like_no_engine(exc):
            detail = str(getattr(exc, "explanation", None) or exc)
            raise StackError(f"{action}: {engine.describe_engine()} refused: {detail}",
                             hint=engine.hint_for(detail)) from None
        raise DockerUnavailableError(f"{action}: cannot reach {engine.describe_engine()} ({_short(exc)})",
                                     hint=engine.unreachable_hint()) from None
    except requests.exceptions.ConnectionError as exc:
        raise DockerUnavailableError(f"{action}: cannot reach {engine.describe_engine()} ({_short(exc)})",
                                     hint=engine.unreachable_hint()) from None


def _looks_like_no_engine(exc: Exception) -> bool:
    text = str(exc)
    return any(s in text for s in ("Connection aborted", "Connection refused", "No such file",
                                   "Error while fetching server API version", "connect"))


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


def list_containers(filters: dict, *, all_: bool = True, action: str = "listing containers") -> list:
    """Containers matching `filters`. The SDK lists, then inspects each one: a container removed in
    between (a rolling update, a `down` running beside) makes that inspect fail, so list again."""
    import docker.errors

    with engine_errors(action):
        for attempt in range(5):
            try:
                return docker_client().containers.list(all=all_, filters=filters)
            except docker.errors.NotFound:
                if attempt == 4:
                    raise
                time.sleep(0.1)
    return []


@lru_cache(maxsize=1)
def docker_client(max_pool_size: int = 10):
    """A Docker SDK client that has answered a ping, on the engine targets/engine.py finds (DOCKER_HOST, else
    Docker's or Podman's default socket). Raises DockerUnavailableError otherwise. `max_pool_size`: the
    connections it keeps, for calls made from that many threads at once (targets/removal.py)."""
    import docker

    from scaleout.targets import engine

    host = engine.find_host()
    with engine_errors("connecting"):
        kw = {"timeout": 60, "max_pool_size": max_pool_size}
        client = docker.from_env(**kw) if host.from_env else docker.DockerClient(base_url=host.url, **kw)
        client.ping()
        engine.remember(engine.identify(client.version(), host))
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
    dotenv: Mapping[str, str] | None = None,
) -> ComposeResult:
    """Run the Compose CLI on the generated file, streaming its output lines to `on_line`. `dotenv` (the
    project's .env variables) resolves the file's references; it never enters Compose's environment
    (see targets.childenv)."""
    from scaleout.targets.childenv import child_environment, compose_inputs
    from scaleout.targets.engine import cli_env

    _identify_engine()
    tail: deque[str] = deque(maxlen=30)
    with compose_inputs(compose_file, dotenv or {}) as (file, env_file):
        cmd = [*compose_cli(), "-p", project, "-f", str(file), "--env-file", str(env_file), *args]
        try:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                env=child_environment(cli_env()), cwd=compose_file.parent,
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
        raise_for_output(action, proc.returncode, result.tail, error)
    return result


def _identify_engine() -> None:
    """Connect once before a CLI runs, so that what it needs on this engine (classic builds on Podman) is
    known; an engine that does not answer is the CLI's own error to report."""
    with contextlib.suppress(DockerUnavailableError, StackError):
        docker_client()


def raise_for_output(action: str, returncode: int, tail: list[str],
                     error: type[StackError] | type = StackError) -> None:
    """The error for a CLI that failed: the engine is gone, or `error` with the last output lines (and the fix,
    for the failures targets/engine.py knows)."""
    from scaleout.targets import engine

    if any("Cannot connect to the Docker daemon" in t or "Is the docker daemon running" in t for t in tail):
        raise DockerUnavailableError(f"{action}: cannot reach {engine.describe_engine()}",
                                     hint=engine.unreachable_hint())
    text = "\n".join("    " + t for t in tail[-15:])
    on = f" on {engine.current().label}" if engine.current() is not None else ""
    raise error(f"{action} failed{on} (exit {returncode}); last output:\n{text}",
                hint=engine.hint_for("\n".join(tail)))


def run_docker(args: list[str], *, cwd: Path, action: str, extra_env: Mapping[str, str] | None = None,
               on_line: Callable[[str], None] | None = None, timeout_s: float = 300) -> list[str]:
    """Run the `docker` CLI (e.g. `docker stack deploy`) in the user's environment plus `extra_env`
    (values scaleout chose); returns its output lines, raises on failure."""
    from scaleout.targets.childenv import child_environment
    from scaleout.targets.engine import cli_env

    _identify_engine()
    env = child_environment({**cli_env(), **(extra_env or {})})
    try:
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, errors="replace",
                              timeout=timeout_s)
    except FileNotFoundError:
        raise DockerUnavailableError(f"the `docker` command is not installed; scaleout runs `{' '.join(args[:3])}`",
                                     hint="install the Docker CLI") from None
    except subprocess.TimeoutExpired:
        raise StackError(f"{action}: `{' '.join(args[:3])}` did not finish within {timeout_s:.0f} s") from None
    lines = (proc.stdout + proc.stderr).splitlines()
    for line in lines:
        if on_line:
            on_line(line)
    if proc.returncode != 0:
        raise_for_output(action, proc.returncode, lines[-20:])
    return lines


def balancer_verify(tls, project_dir: Path) -> ssl.SSLContext | bool:
    """How the readiness poll checks the balancer's certificate (`tls`: balancer.tls): against the local
    authority that signed it; a user's own certificate is not checked (its authority may be known only to
    their browser, its names may not include the loopback address), which costs nothing on loopback."""
    if tls is None:
        return True
    if tls == "local":
        from scaleout.files import confined
        from scaleout.layout import TLS_CA

        return ssl.create_default_context(cafile=str(confined(project_dir, TLS_CA)))
    return False


def poll_balancer(url: str, timeout_s: float, on_miss: Callable[[], None] | None = None,
                  verify: ssl.SSLContext | bool = True, *, path: str) -> None:
    """Poll `url` + `path` until the balancer answers below 500 (a request reached a replica); `on_miss` runs
    after a failed try, at most every MISS_CHECK_S (it may raise to stop early). Raises UnhealthyError
    after `timeout_s`. `verify`: how an https:// URL's certificate is checked. `path` is the backend's
    health path: scaleout's own requests never visit the app's pages (a page-view counter, a side effect).

    The standard library's HTTP client, not httpx: importing httpx costs more than the whole poll on a
    cold `up` (it pulls in its own CLI), and one GET on loopback needs none of it. Tries come quickly
    (nginx starts within a fraction of a second of its container, and a refused loopback connection costs
    nothing); the engine is asked (`on_miss`) less often."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    pause = 0.02
    last_miss_check = time.monotonic()
    while time.monotonic() < deadline:
        try:
            code = http_status(url.rstrip("/") + path, timeout_s=2.0, verify=verify)
            if code < 500:
                return
            last = f"HTTP {code}"
        except (OSError, http.client.HTTPException) as exc:
            last = type(exc).__name__
        if on_miss is not None and time.monotonic() - last_miss_check >= MISS_CHECK_S:
            last_miss_check = time.monotonic()
            on_miss()
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    raise UnhealthyError(f"the load balancer at {url} did not answer within {timeout_s:.0f}s (last: {last})")


def http_status(url: str, *, timeout_s: float, verify: ssl.SSLContext | bool = True) -> int:
    """The status code of one GET of `url`. Never through a proxy: http.client ignores proxy variables,
    which must never carry scaleout's own loopback requests."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        if isinstance(verify, ssl.SSLContext):
            context = verify
        elif verify:
            context = ssl.create_default_context()
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout_s, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        return conn.getresponse().status
    finally:
        conn.close()


def port_free(bind: str, port: int) -> bool:
    """Whether this machine can bind `port` on `bind` now (a listener already there makes it busy)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((bind, port))
        except OSError:
            return False
    return True
