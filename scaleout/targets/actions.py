"""Actions on single services of the Compose stack, for failure drills and debugging: stop, start and
restart replicas (the balancer routes around a stopped one, see templates/nginx/lb.sh), run a command
in one. Only this project's containers can be named: they are looked up by the project's labels.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from scaleout.config.model import Config
from scaleout.errors import DockerUnavailableError, NotRunningError, UnhealthyError, UsageError
from scaleout.layout import LB_SERVICE, WATCH_FALL, WATCH_INTERVAL_S
from scaleout.targets.compose import ComposeStack
from scaleout.targets.health import wait_healthy
from scaleout.targets.runner import Progress, engine_errors, quiet
from scaleout.targets.views import ContainerView

STOP_GRACE_S = 10  # as the rendered compose file's stop_grace_period
# the watcher marks a replica down after WATCH_FALL failed checks, WATCH_INTERVAL_S apart (plus a reload)
ROUTE_WAIT_S = WATCH_INTERVAL_S * (WATCH_FALL + 2) + 15


def compose_stack(config: Config, command: str, progress: Progress = quiet, log: Progress = quiet) -> ComposeStack:
    """The project's Compose stack; these commands refuse a project that was brought up on Swarm."""
    from scaleout.targets import resolve_target

    if resolve_target(config.project_dir, None) != "compose":
        raise UsageError(f"{command}: works on the Compose stack on this machine, but this project was last brought "
                         "up on Swarm", hint="on Swarm use `docker service logs` / `docker service ps`")
    return ComposeStack(config, progress=progress, log=log)


def select(stack: ComposeStack, names: Sequence[str], command: str) -> dict[str, Any]:
    """The containers of the named services (all of them when none is named), by service name."""
    with engine_errors("listing containers"):
        every = stack.containers_by_service()
    if not every:
        raise NotRunningError(f"project {stack.config.project} has no containers", hint="run `scaleout up` first")
    unknown = [n for n in names if n not in every]
    if unknown:
        raise UsageError(f"{command}: project {stack.config.project} has no service "
                         f"{', '.join(repr(n) for n in unknown)}; its services are: {', '.join(every)}")
    return {n: every[n] for n in dict.fromkeys(names)} if names else every


def _role(container: Any) -> str:
    return ContainerView.of(container).role


def _wait_routing(stack: ComposeStack, replicas: list[str], routed: bool, timeout_s: float) -> bool:
    """Poll the balancer's watcher until each of `replicas` is (or is no longer) routed to."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = stack.balancer.routing()
        if now and all(now.get(r, False) is routed for r in replicas):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.3)


def stop(stack: ComposeStack, chosen: dict[str, Any]) -> None:
    """Stop the chosen containers (kept, not removed); wait until the balancer routes around replicas."""
    for service, c in chosen.items():
        if c.status != "running":
            stack.progress(f"{service} is not running ({c.status})")
            continue
        stack.progress(f"stopping {service}")
        with engine_errors(f"stopping {service}"):
            c.stop(timeout=STOP_GRACE_S)
    replicas = [s for s, c in chosen.items() if _role(c) == "backend"]
    if not replicas or stack.lb_container() is None:
        return
    with engine_errors("reading the balancer's routing"):
        if _wait_routing(stack, replicas, False, ROUTE_WAIT_S):
            stack.progress(f"the balancer routes around {', '.join(replicas)}")
        else:
            stack.progress(f"note: the balancer still lists {', '.join(replicas)} after {ROUTE_WAIT_S}s; "
                           "nginx retries failed requests on the other replicas meanwhile")
        routed = stack.balancer.routing()
    if routed and not any(routed.values()):
        stack.progress("note: no replica is left running: the balancer has nowhere to send requests "
                       "(`scaleout start` brings them back)")


def start(stack: ComposeStack, chosen: dict[str, Any], *, timeout_s: float) -> None:
    """Start the chosen (stopped) containers; wait until they are healthy and, for replicas, until the
    balancer sends them traffic again."""
    for service, c in chosen.items():
        stack.progress(f"starting {service}")
        with engine_errors(f"starting {service}"):
            c.start()
    _wait_ready(stack, chosen, timeout_s)


def restart(stack: ComposeStack, chosen: dict[str, Any], *, timeout_s: float) -> None:
    """Restart the chosen containers. Running replicas behind a running balancer go one at a time: stop,
    the balancer routes around it, start, healthy and routed again, then the next; so a restart of every
    replica costs no request. (A restart quicker than the watcher's checks would also leave the replica
    marked failed in nginx's workers for fail_timeout seconds, where a second failing replica would leave
    nginx none to try.)"""
    rolling = {}
    if stack.lb_container() is not None:
        rolling = {s: c for s, c in chosen.items() if _role(c) == "backend" and c.status == "running"}
    for service, c in rolling.items():
        stop(stack, {service: c})
        start(stack, {service: c}, timeout_s=timeout_s)
    rest = {s: c for s, c in chosen.items() if s not in rolling}
    for service, c in rest.items():
        stack.progress(f"restarting {service}")
        with engine_errors(f"restarting {service}"):
            c.restart(timeout=STOP_GRACE_S)
    if rest:
        _wait_ready(stack, rest, timeout_s)


def _wait_ready(stack: ComposeStack, chosen: dict[str, Any], timeout_s: float) -> None:
    wait_healthy(stack, list(chosen), timeout_s)
    if LB_SERVICE in chosen:
        stack.balancer.wait(timeout_s)
    replicas = [s for s, c in chosen.items() if _role(c) == "backend"]
    if not replicas or stack.lb_container() is None:
        return
    wait_s = max(timeout_s, ROUTE_WAIT_S)
    with engine_errors("reading the balancer's routing"):
        if not _wait_routing(stack, replicas, True, wait_s):
            raise UnhealthyError(f"{', '.join(replicas)}: healthy, but the balancer does not route to "
                                 f"{'it' if len(replicas) == 1 else 'them'} after {wait_s:.0f}s",
                                 hint="`scaleout logs lb` shows what its health watcher sees")
    stack.progress(f"the balancer routes to {', '.join(replicas)} again")


def exec_command(stack: ComposeStack, service: str, command: Sequence[str], *, tty: bool, user: str | None = None,
                 workdir: str | None = None, env: Sequence[str] = ()) -> int:
    """Run `command` in the service's container with the `docker exec` CLI (stdin passed through, a TTY
    when asked), as `docker compose exec` does. Returns the command's exit code."""
    if not command:
        raise UsageError(f"exec: name the command to run, e.g. `scaleout exec {service} -- sh`")
    for item in env:
        if "=" not in item or not item.split("=", 1)[0]:
            raise UsageError(f"--env: {item!r} must look like NAME=value")
    c = select(stack, [service], "exec")[service]
    if c.status != "running":
        raise NotRunningError(f"{service} is not running (state {c.status})", hint=f"`scaleout start {service}`")
    docker = shutil.which("docker")
    if docker is None:
        raise DockerUnavailableError("the `docker` command is not installed; `scaleout exec` runs `docker exec`",
                                     hint="install the Docker CLI")
    args = [docker, "exec", "--interactive"] + (["--tty"] if tty else [])
    if user:
        args += ["--user", user]
    if workdir:
        args += ["--workdir", workdir]
    for item in env:
        args += ["--env", item]
    from scaleout.targets.childenv import child_environment
    from scaleout.targets.engine import cli_env

    proc = subprocess.Popen([*args, c.id, *command], env=child_environment(cli_env()))
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue  # Ctrl-C reached the command too (or its TTY): its exit code is the answer
