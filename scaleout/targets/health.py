"""Waiting for a Compose stack's containers to be healthy, and the failure that names the one that is
not: its state, its last health check output and its last log lines."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Protocol

from scaleout.config.model import Config
from scaleout.errors import UnhealthyError
from scaleout.targets.runner import Progress, docker_client
from scaleout.targets.status import ServiceStatus, StackStatus
from scaleout.targets.views import ContainerView


class RunningStack(Protocol):
    """What health waiting and the balancer's control channel need of a Compose stack (targets/compose.py)."""

    config: Config
    dir: Path
    compose_file: Path
    progress: Progress
    log: Progress

    def status(self, routing: bool = True) -> StackStatus: ...

    def lb_container(self) -> Any: ...

    def containers(self, service: str) -> list: ...

    def run_cli(self, args: list[str], action: str, *, error: Any = None, check: bool = True) -> Any: ...


def health_poll_interval(n_services: int) -> float:
    """Seconds between two health reads of `n_services` containers (each read inspects every one): often for
    a few, so that `up` goes on within a tenth of a second of the engine's verdict; less often for many."""
    return min(0.5, 0.08 + 0.02 * n_services)


def wait_healthy(stack: RunningStack, services: list[str], timeout_s: float) -> None:
    """Poll until every service's container is running and healthy; fail with its logs otherwise. On an
    engine that does not run health checks itself (Podman without systemd) scaleout runs them meanwhile
    (ComposeStack.status drives them, targets/podman.py)."""
    deadline = time.monotonic() + timeout_s
    reported: set[str] = set()
    slow: set[str] = set()  # unhealthy only because its checks ran out of time: waited for until the timeout
    while True:
        by_service = {s.service: s for s in stack.status(routing=False).services}
        pending = []
        for svc in services:
            st = by_service.get(svc)
            if st is None or st.state != "running" or st.health not in ("healthy", "none"):
                pending.append(svc)
                if st is not None and st.state in ("exited", "dead", "restarting"):
                    fail_unhealthy(st, "exited" if st.state != "restarting" else "keeps exiting (restarting)")
                if st is not None and st.health == "unhealthy":
                    if not checks_timed_out(st):
                        fail_unhealthy(st, "is unhealthy (its health check keeps failing)")
                    if svc not in slow:
                        slow.add(svc)
                        stack.progress(f"note: {svc}'s health checks time out without failing (a busy engine); "
                                       f"waiting for one that passes, at most until the timeout")
            elif svc not in reported:
                reported.add(svc)
                stack.progress(f"{svc} is {'healthy' if st.health == 'healthy' else 'running (no health check)'}")
        if not pending:
            return
        if time.monotonic() >= deadline:
            st = by_service.get(pending[0])
            if st is None:
                raise UnhealthyError(f"{pending[0]} was never created")
            fail_unhealthy(st, f"not healthy after {timeout_s:.0f}s (state {st.state}, health {st.health})")
        time.sleep(health_poll_interval(len(services)))


def checks_timed_out(st: ServiceStatus) -> bool:
    """Whether Docker calls this container unhealthy only because its checks timed out (none failed by
    answering): it keeps checking, and a loaded engine (many replicas booting at once) recovers."""
    with contextlib.suppress(Exception):  # unreadable: treated as a real failure
        return ContainerView.of(docker_client().containers.get(st.container)).health_checks_timed_out
    return False


def last_words(logs: str, health: str = "") -> str:
    """The end of a failure message: the last health check's output (if any), then the last log lines."""
    text = f"\n  last health check said: {health[-300:]}" if health else ""
    return text + "\n  last log lines:\n" + ("\n".join("    " + line for line in logs.splitlines()) or "    (none)")


def container_last_words(container) -> str:
    """`last_words` of a container (None: none could be read), best effort: never an error of its own."""
    logs, health = "", ""
    if container is not None:
        with contextlib.suppress(Exception):  # logs are a courtesy in an error message, never the error
            logs = container.logs(tail=20).decode(errors="replace").rstrip()
            health = ContainerView.of(container).last_health_output
    return last_words(logs, health)


def fail_unhealthy(st: ServiceStatus, why: str) -> None:
    """Raise the UnhealthyError of a container that exited or failed its checks, with what it last said."""
    container = None
    with contextlib.suppress(Exception):  # logs are a courtesy in an error message, never the error
        container = docker_client().containers.get(st.container)
    what = {"backend": "replica", "service": "service", "balancer": "the balancer"}.get(st.role, "container")
    msg = f"{what} {st.service} {why}." + container_last_words(container)
    raise UnhealthyError(
        msg, hint="fix the backend, then `scaleout up` again; `scaleout down` removes what started"
    )
