"""The balancer of a Compose stack: its creation beside booting replicas, and its control channel (the
configuration tested and installed inside the running container by templates/nginx/lb.sh, the routing
its health watcher writes, the readiness of the published URL).

The lifecycle (targets/compose.py) decides what changes; this module is how the balancer is told and
how scaleout reads what it does.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from pathlib import Path

from scaleout.errors import BalancerConfigError, NotRunningError, ScaleoutError
from scaleout.files import Plan, atomic_write, confined
from scaleout.layout import (
    COMPOSE_FILE,
    LB_CONF_MOUNT,
    LB_HTTPS_PORT,
    LB_SCRIPT,
    LB_SERVICE,
    LB_STAGE_DIR,
    NGINX_CONF,
    ROUTING_FILE,
    WATCH_ENV,
)
from scaleout.targets.health import RunningStack, fail_unhealthy
from scaleout.targets.runner import balancer_verify, docker_client, engine_errors, poll_balancer, run_compose
from scaleout.targets.status import ServiceStatus
from scaleout.targets.views import ContainerView


def routed_to(s: ServiceStatus, lines: list[list[str]]) -> bool:
    """Whether the balancer's routing (`name up|down address` lines) sends this container traffic: by its
    container name (a replica being replaced), else by its service name at this container's address
    (a service that has two containers resolves to both; the balancer routes the one it answered from)."""
    by_name = {parts[0]: parts for parts in lines}
    entry = by_name.get(s.container) or by_name.get(s.service)
    if entry is None or entry[1] != "up":
        return False
    return entry[0] == s.container or len(entry) < 3 or s.address is None or entry[2] == s.address


class BalancerCreation:
    """The balancer's container, created by Compose in a background thread (`up --no-start`) while the
    replicas become healthy, then started through the engine: the balancer still starts only after every
    replica is healthy, but the Compose call no longer waits in line. Abandoned (a replica failed, Ctrl-C),
    the never-started container is removed, so that what is left is what started."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self.created: list = []  # the balancer's container(s), looked up while the replicas boot
        self.thread = threading.Thread(target=self._create, name="scaleout-create-balancer", daemon=True)
        self.thread.start()

    def _create(self) -> None:
        try:
            run_compose(self.stack.config.project, self.stack.compose_file, ["up", "--no-start", "--no-build",
                        LB_SERVICE], on_line=self.lines.append, action="creating the load balancer",
                        dotenv=self.stack.config.dotenv)
            self.created = self.stack.containers(LB_SERVICE)
        except BaseException as exc:  # handed to the main thread by start()
            self.error = exc

    def _join(self) -> None:
        self.thread.join()
        for line in self.lines:  # Compose's output, shown in order rather than amid the health reports
            self.stack.log(line)
        self.lines = []

    def start(self) -> None:
        """Wait for the creation, then start the balancer's container (or remove it, if it cannot start)."""
        self._join()
        try:
            if self.error is not None:
                raise self.error
            if not self.created:  # nothing to start by hand: Compose's own start is the way that surely works
                self.stack.run_cli(["up", "-d", "--no-build", LB_SERVICE], "starting the load balancer")
                return
            with engine_errors("starting the load balancer"):
                for c in self.created:
                    c.start()
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Wait for the creation, then remove the container if it was never started."""
        self._join()
        # best effort, on the way out of another error that must stay the one reported
        with contextlib.suppress(ScaleoutError), engine_errors("removing the unstarted load balancer"):
            for c in self.stack.containers(LB_SERVICE):
                if c.status == "created":
                    c.remove(force=True)


class Balancer:
    """The control channel of one stack's running balancer."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack

    def changes(self, lb, plan: Plan) -> bool:
        """Whether the running balancer differs from the one `plan` describes in what makes Compose
        recreate it and what its nginx configuration depends on: image, published ports, mounts."""
        import yaml

        try:
            svc = yaml.safe_load(plan.text(COMPOSE_FILE))["services"][LB_SERVICE]
            want_ports = {(int(p.rsplit(":", 2)[-2]), int(p.rsplit(":", 1)[-1])) for p in svc["ports"]}
            want_binds = {v["target"] for v in svc["volumes"] if v.get("type") == "bind"}
        except (KeyError, TypeError, ValueError, yaml.YAMLError):
            return False
        v = ContainerView.of(lb)
        have_ports = {(b.host_port, port) for port in (80, LB_HTTPS_PORT) for b in v.published(port)}
        from scaleout.targets.images import runs_image

        with engine_errors("looking for the balancer image"):
            same_image = runs_image(docker_client(), v, svc.get("image"))
        return not same_image or have_ports != want_ports or v.bind_targets != want_binds

    def reload(self, nginx_text: str, watch_env: str, *, record: bool = True, quiet: bool = False,
               once_healthy: tuple[list[str], float, float] | None = None) -> bool:
        """Have the running balancer test `nginx_text` (with its replicas' current addresses and
        health, see templates/nginx/lb.sh) and, only if `nginx -t` passes, install it and reload
        gracefully. A failing config is never loaded: the old one keeps serving. With `record`, the
        project's copy of the files becomes the new one (a rolling update's interim configurations
        are not recorded: the balancer restarts from the rendered files). With `once_healthy`
        (names, seconds, poll interval) the balancer first polls those upstream names' health path and
        installs nothing unless all pass within the seconds: False then, True once installed."""
        lb = self.stack.lb_container()
        if lb is None:
            raise NotRunningError(f"the load balancer of {self.stack.config.project} is not running",
                                  hint="run `scaleout up`")
        stage = confined(self.stack.dir, LB_STAGE_DIR)
        atomic_write(confined(self.stack.dir, f"{LB_STAGE_DIR}/nginx.conf"), nginx_text, mode=0o600)
        atomic_write(confined(self.stack.dir, f"{LB_STAGE_DIR}/watch.env"), watch_env)
        mount = f"{LB_CONF_MOUNT}/{Path(LB_STAGE_DIR).name}"
        cmd = ["sh", f"{LB_CONF_MOUNT}/{Path(LB_SCRIPT).name}", "apply", mount]
        if once_healthy is not None:
            names, seconds, poll = once_healthy
            cmd += [str(max(1, round(seconds))), f"{poll:g}", *names]
        try:
            with engine_errors("reloading nginx"):
                code, out = lb.exec_run(cmd)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        text = out.decode(errors="replace").strip()
        if code == 3 and once_healthy is not None:
            return False
        if code != 0:
            raise BalancerConfigError(
                f"the new nginx configuration was not loaded; the running one keeps serving:\n{text}",
                hint="fix the value in scaleout.yaml that nginx names above, then run `scaleout up` again",
            )
        if record:
            atomic_write(confined(self.stack.dir, NGINX_CONF), nginx_text, mode=0o600)
            atomic_write(confined(self.stack.dir, WATCH_ENV), watch_env)
        if not quiet:
            self.stack.progress("reloaded nginx gracefully (old workers finish their requests)")
        return True

    def routing_lines(self, lb=None) -> list[list[str]]:
        """The balancer's routing file: `name up|down address` per upstream server (of `lb`, else of the
        running balancer)."""
        lb = lb or self.stack.lb_container()
        if lb is None:
            return []
        with engine_errors("reading the balancer's routing"):
            code, out = lb.exec_run(["cat", ROUTING_FILE])
        if code != 0:
            return []
        return [line.split() for line in out.decode(errors="replace").splitlines() if len(line.split()) >= 2]

    def routing(self) -> dict[str, bool]:
        """Upstream name (a replica, or a container during a rolling update) -> whether the balancer sends
        it traffic now (its health watcher's view)."""
        return {parts[0]: parts[1] == "up" for parts in self.routing_lines()}

    def routing_addresses(self) -> dict[str, str]:
        """Upstream name -> the address the balancer routes it to, for those it routes."""
        return {p[0]: p[2] for p in self.routing_lines() if p[1] == "up" and len(p) >= 3}

    def wait(self, timeout_s: float) -> None:
        """Poll the published URL until nginx answers and a request reaches a replica."""

        def fail_if_exited() -> None:
            if self.stack.lb_container() is None:
                st = next((s for s in self.stack.status().services if s.service == LB_SERVICE), None)
                if st is not None and st.state in ("exited", "dead"):
                    fail_unhealthy(st, "exited")

        poll_balancer(self.stack.config.url, timeout_s, on_miss=fail_if_exited,
                      verify=balancer_verify(self.stack.config.balancer.tls, self.stack.dir),
                      path=self.stack.config.backend.health.path)
