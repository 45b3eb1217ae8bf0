"""The project's stack on Docker Compose on this machine: up (first start, rescale), down, status,
routing, reload.

The Compose CLI creates and removes services; the Docker SDK inspects health (through the views in
targets/views.py), reads logs, reloads nginx and removes replicas that a smaller stack no longer has.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from scaleout.config.model import Config
from scaleout.errors import (
    BalancerConfigError,
    BuildError,
    NotRunningError,
    PortInUseError,
    RenderConflictError,
    ScaleoutError,
    UnhealthyError,
)
from scaleout.files import Plan, atomic_write, confined, write_plan
from scaleout.layout import (
    COMPOSE_FILE,
    LABEL_COMPOSE_PROJECT,
    LABEL_PROJECT,
    LB_CONF_MOUNT,
    LB_HTTPS_PORT,
    LB_SCRIPT,
    LB_SERVICE,
    LB_STAGE_DIR,
    NGINX_CONF,
    ROUTING_FILE,
    WATCH_ENV,
    replica_index,
)
from scaleout.render.common import backend_image, replicas_of
from scaleout.targets.runner import (
    Progress,
    balancer_verify,
    compose_cli,
    docker_client,
    engine_errors,
    list_containers,
    poll_balancer,
    quiet,
    run_compose,
)
from scaleout.targets.status import ServiceStatus, StackStatus
from scaleout.targets.views import ContainerView


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


def routed_to(s: ServiceStatus, lines: list[list[str]]) -> bool:
    """Whether the balancer's routing (`name up|down address` lines) sends this container traffic: by its
    container name (a replica being replaced), else by its service name at this container's address
    (a service that has two containers resolves to both; the balancer routes the one it answered from)."""
    by_name = {parts[0]: parts for parts in lines}
    entry = by_name.get(s.container) or by_name.get(s.service)
    if entry is None or entry[1] != "up":
        return False
    return entry[0] == s.container or len(entry) < 3 or s.address is None or entry[2] == s.address


def _quietly(fn: Callable[[], object]) -> None:
    """Run `fn` in a helper thread whose result is read again in the main thread (errors included)."""
    with contextlib.suppress(ScaleoutError):
        fn()


def health_poll_interval(n_services: int) -> float:
    """Seconds between two health reads of `n_services` containers (each read inspects every one): often for
    a few, so that `up` goes on within a tenth of a second of the engine's verdict; less often for many."""
    return min(0.5, 0.08 + 0.02 * n_services)


class BalancerCreation:
    """The balancer's container, created by Compose in a background thread (`up --no-start`) while the
    replicas become healthy, then started through the engine: the balancer still starts only after every
    replica is healthy, but the Compose call no longer waits in line. Abandoned (a replica failed, Ctrl-C),
    the never-started container is removed, so that what is left is what started."""

    def __init__(self, stack: ComposeStack) -> None:
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


class ComposeStack:
    """One project's Compose stack on the local engine."""

    name = "compose"

    def __init__(self, config: Config, progress: Progress = quiet, log: Progress = quiet) -> None:
        self.config = config
        self.progress = progress
        self.log = log
        self.dir = config.project_dir.resolve()
        self.compose_file = self.dir / COMPOSE_FILE

    # --- inspection -------------------------------------------------------------------------
    def project_containers(self, all_: bool = True) -> list:
        """This stack's containers: the Compose project's, and labelled as scaleout's."""
        labels = [f"{LABEL_COMPOSE_PROJECT}={self.config.project}", f"{LABEL_PROJECT}={self.config.project}"]
        return list_containers({"label": labels}, all_=all_)

    def _check_no_foreign_containers(self, action: str) -> None:
        """Refuse to share a Compose project with containers scaleout did not create (a user's own
        docker-compose.yml in the same folder has the same default project name): Compose would treat
        them as part of this stack, and `down` would remove them."""
        every = list_containers({"label": f"{LABEL_COMPOSE_PROJECT}={self.config.project}"})
        foreign = sorted(c.name for c in every if ContainerView.of(c).scaleout_project != self.config.project)
        if foreign:
            raise RenderConflictError(
                f"refusing to {action}: Compose project {self.config.project!r} already has containers that scaleout "
                f"did not create: {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}",
                hint="set `name:` in scaleout.yaml to a project name of its own (it is also the Compose project name)",
            )

    def status(self, routing: bool = True) -> StackStatus:
        """What runs now, read from the engine (not from the config); with `routing`, also which
        replicas the balancer sends traffic to."""
        services = []
        url = None
        lb = None
        for c in self.project_containers():
            v = ContainerView.of(c)
            address = v.address(self.config.backend.port) if v.role == "backend" else None
            if v.role == "balancer" and v.running:
                lb = c
                # a balancer that publishes its TLS port serves HTTPS there (port 80 then only redirects)
                url = v.url(LB_HTTPS_PORT, "https") or v.url(80)
            services.append(ServiceStatus(v.service, c.name, v.state, v.health, address, v.role))
        order = {"backend": 0, "balancer": 1, "service": 2}
        services.sort(key=lambda s: (order.get(s.role, 3), replica_index(s.service), s.service))
        if routing and lb is not None:
            lines = self._routing_lines(lb)
            for s in services:
                if s.role == "backend":
                    s.routed = routed_to(s, lines) if lines else None
        return StackStatus(self.config.project, url, services)

    def address_map(self) -> dict[str, str]:
        """`ip:port` of every replica -> its service name, to attribute `X-Upstream-Addr`."""
        out = {}
        for c in self.project_containers():
            v = ContainerView.of(c)
            if v.role != "backend":
                continue
            for ip in v.ip_addresses:
                out[f"{ip}:{self.config.backend.port}"] = v.service
        return out

    def containers(self, service: str) -> list:
        """This stack's containers of one Compose service, in any state."""
        return [c for c in self.project_containers() if ContainerView.of(c).service == service]

    def lb_container(self):
        for c in self.project_containers(all_=False):
            if ContainerView.of(c).service == LB_SERVICE:
                return c
        return None

    # --- lifecycle --------------------------------------------------------------------------
    def up(self, plan: Plan, *, build: bool = True, timeout_s: float = 180.0, force: bool = False) -> StackStatus:
        """Bring the stack to what `plan` describes. On a running stack: new replicas become healthy
        before nginx reloads; removed replicas drain after it, then stop; replicas whose image or settings
        changed are replaced by a rolling update (targets/rolling.py) that never leaves fewer healthy
        replicas routed. The balancer is never recreated unless its own settings (port, bind, image)
        changed. Nothing changed: no container changes."""
        from scaleout.targets.rolling import RollingUpdate, UpdatePlan

        cfg = self.config
        wanted = [r.name for r in replicas_of(cfg)]
        lb = self.preflight()

        # A running balancer keeps its configuration until the new one has passed `nginx -t` inside it,
        # unless Compose is about to replace it (its image, ports or mounts changed): the old container
        # cannot judge a configuration written for another nginx or for files it does not mount.
        replaced = lb is not None and self._balancer_changes(lb, plan)
        deferred = (NGINX_CONF, WATCH_ENV)
        first = plan
        if lb is not None and not replaced and all((self.dir / k).exists() for k in deferred):
            first = plan.without(deferred)
        # every path and hand edit of the whole plan is checked before the first file is written
        write_plan(self.dir, plan, force=force, dry_run=True)
        write_plan(self.dir, first, force=True, prune=False)

        if build and cfg.backend.builds:
            self.progress(f"building the backend image from {cfg.backend.build}/")
            self.run_cli(["build", wanted[0]], "building the backend image", error=BuildError)
        elif cfg.backend.builds:
            self._require_built_image()

        self.start_services(build=build, timeout_s=timeout_s)
        running = lb is not None and lb.status == "running"
        # Without a running balancer nothing is served: Compose starts (or recreates) every replica at once.
        upd = self.plan_update(wanted) if running else UpdatePlan(start=wanted)
        if upd.discard:
            self._remove(upd.discard)
        early = None
        if upd.start:
            self.progress(f"starting {len(upd.start)} replica(s): {', '.join(upd.start)}")
            self.run_cli(["up", "-d", "--no-build", "--no-deps", *upd.start], "starting the replicas")
            # No balancer at all: its container is created while the replicas boot and started once they are
            # healthy (a Compose call costs about a second; the engine starts a created container in a tenth).
            early = BalancerCreation(self) if lb is None else None
            try:
                self.wait_healthy(upd.start, timeout_s)
            except BaseException:
                if early is not None:
                    early.abandon()
                raise

        removed = [s.container for s in self.status(routing=False).replicas if s.service not in wanted]
        removed += upd.retire
        if replaced:
            self.progress("the balancer's own settings changed (image, ports or mounts): it is recreated")
        elif running:
            self.progress("testing the new nginx configuration inside the running balancer")
            self.reload(plan.text(NGINX_CONF), plan.text(WATCH_ENV))
        write_plan(self.dir, plan, force=True)  # records checksums of everything, nginx.conf included
        self.progress("checking the load balancer" if running else "starting the load balancer")
        if early is not None:
            early.start()
        else:
            self.run_cli(["up", "-d", "--no-build", LB_SERVICE], "starting the load balancer")
        if removed:
            if cfg.backend.drain_seconds:
                self.progress(f"draining {len(removed)} removed container(s) for {cfg.backend.drain_seconds}s")
                time.sleep(cfg.backend.drain_seconds)
            self._remove(removed)
        if upd.roll:
            RollingUpdate(self, plan.text(NGINX_CONF), plan.text(WATCH_ENV), timeout_s).run(upd.roll)
        elif running and not upd.changes and not removed:
            self.progress("every replica already runs the current image and settings")
        self.wait_balancer(timeout_s)
        return self.status()

    def plan_update(self, wanted: list[str]):
        """What each wanted replica of the running stack needs: start, rolling replacement, nothing."""
        from scaleout.targets.rolling import plan_update

        by_service: dict[str, list[ContainerView]] = {}
        for c in self.project_containers():
            v = ContainerView.of(c)
            if v.role == "backend":
                by_service.setdefault(v.service, []).append(v)
        if not any(by_service.get(svc) for svc in wanted):
            return plan_update(wanted, by_service, {}, None)
        hashes = self._expected_hashes()
        upd = plan_update(wanted, by_service, hashes, self._image_id())
        if not hashes and upd.keep:
            # the CLI cannot say whether settings changed: Compose decides (recreating what changed at once)
            self.progress("note: this Compose CLI cannot hash services (`config --hash`): only a new image "
                          "is rolled out replica by replica; changed settings are applied by Compose directly")
            upd.start += upd.keep
            upd.keep = []
        return upd

    def _expected_hashes(self) -> dict[str, str]:
        """Compose's config hash of every service as the compose file describes it now (what Compose
        compares with a container's `com.docker.compose.config-hash` label). Empty if the CLI cannot say."""
        from scaleout.targets.rolling import parse_hashes

        lines: list[str] = []
        r = run_compose(self.config.project, self.compose_file, ["config", "--hash=*"], on_line=lines.append,
                        action="hashing the services", check=False)
        return parse_hashes(lines) if r.returncode == 0 else {}

    def _image_id(self) -> str | None:
        """The image ID the replicas' image name points to now (after a build)."""
        import docker.errors

        with engine_errors("looking for the backend image"):
            try:
                return docker_client().images.get(backend_image(self.config)).id
            except docker.errors.ImageNotFound:
                return None

    def _balancer_changes(self, lb, plan: Plan) -> bool:
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
        return v.image_ref != svc.get("image") or have_ports != want_ports or v.bind_targets != want_binds

    def run_cli(self, args: list[str], action: str, *, error=None, check: bool = True):
        kwargs = {"error": error} if error is not None else {}
        return run_compose(self.config.project, self.compose_file, args, on_line=self.log, action=action,
                           check=check, dotenv=self.config.dotenv, **kwargs)

    def _require_built_image(self) -> None:
        """With --no-build, scaleout's own backend image must exist: Compose would otherwise pull a
        same-named image from a registry."""
        import docker.errors

        image = backend_image(self.config)
        with engine_errors("looking for the backend image"):
            try:
                docker_client().images.get(image)
                return
            except docker.errors.ImageNotFound:
                pass
        raise BuildError(f"--no-build: the backend image {image} has not been built on this engine",
                         hint="run `scaleout up` without --no-build once")

    def preflight(self):
        """Everything `up` needs from this machine, checked before anything is written or built: an
        engine, a Compose CLI, a free host port (unless it is this stack's own). Returns the balancer."""
        # `docker compose version` is a process start: it runs beside the engine's ping (the answer is cached;
        # an error is raised again by the second call)
        cli = threading.Thread(target=_quietly, args=(compose_cli,), daemon=True)
        cli.start()
        try:
            docker_client()
        finally:
            cli.join()
        compose_cli()
        self._check_no_foreign_containers("start the stack")
        lb = self.lb_container()
        self._check_port(lb)
        return lb

    def _check_port(self, lb) -> None:
        cfg = self.config.balancer
        ours = {b.host_port for p in (80, LB_HTTPS_PORT) for b in ContainerView.of(lb).published(p)} if lb else set()
        for port, key in ((cfg.port, "balancer.port"), (cfg.http_port, "balancer.http_port")):
            if port is None or port in ours:
                continue
            if not port_free(cfg.bind, port):
                raise PortInUseError(
                    f"port {port} on {cfg.bind} ({key}) is already in use by another program",
                    hint="stop that program, or choose another port: `scaleout up --port P` or "
                         f"{key} in scaleout.yaml",
                )

    def reload(self, nginx_text: str, watch_env: str, *, record: bool = True, quiet: bool = False,
               once_healthy: tuple[list[str], float, float] | None = None) -> bool:
        """Have the running balancer test `nginx_text` (with its replicas' current addresses and
        health, see templates/nginx/lb.sh) and, only if `nginx -t` passes, install it and reload
        gracefully. A failing config is never loaded: the old one keeps serving. With `record`, the
        project's copy of the files becomes the new one (a rolling update's interim configurations
        are not recorded: the balancer restarts from the rendered files). With `once_healthy`
        (names, seconds, poll interval) the balancer first polls those upstream names' health path and
        installs nothing unless all pass within the seconds: False then, True once installed."""
        lb = self.lb_container()
        if lb is None:
            raise NotRunningError(f"the load balancer of {self.config.project} is not running",
                                  hint="run `scaleout up`")
        stage = confined(self.dir, LB_STAGE_DIR)
        atomic_write(confined(self.dir, f"{LB_STAGE_DIR}/nginx.conf"), nginx_text)
        atomic_write(confined(self.dir, f"{LB_STAGE_DIR}/watch.env"), watch_env)
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
            atomic_write(confined(self.dir, NGINX_CONF), nginx_text)
            atomic_write(confined(self.dir, WATCH_ENV), watch_env)
        if not quiet:
            self.progress("reloaded nginx gracefully (old workers finish their requests)")
        return True

    def _routing_lines(self, lb=None) -> list[list[str]]:
        """The balancer's routing file: `name up|down address` per upstream server (of `lb`, else of the
        running balancer)."""
        lb = lb or self.lb_container()
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
        return {parts[0]: parts[1] == "up" for parts in self._routing_lines()}

    def routing_addresses(self) -> dict[str, str]:
        """Upstream name -> the address the balancer routes it to, for those it routes."""
        return {p[0]: p[2] for p in self._routing_lines() if p[1] == "up" and len(p) >= 3}

    def _remove(self, containers: list[str]) -> None:
        client = docker_client()
        for name in containers:
            self.progress(f"stopping removed replica {name}")
            with engine_errors(f"removing {name}"):
                c = client.containers.get(name)
                c.stop(timeout=10)
                c.remove()

    def wait_healthy(self, services: list[str], timeout_s: float) -> None:
        """Poll until every service's container is running and healthy; fail with its logs otherwise."""
        deadline = time.monotonic() + timeout_s
        reported: set[str] = set()
        while True:
            by_service = {s.service: s for s in self.status(routing=False).services}
            pending = []
            for svc in services:
                st = by_service.get(svc)
                if st is None or st.state != "running" or st.health not in ("healthy", "none"):
                    pending.append(svc)
                    if st is not None and st.state in ("exited", "dead", "restarting"):
                        self._fail_unhealthy(st, "exited" if st.state != "restarting" else "keeps exiting (restarting)")
                    if st is not None and st.health == "unhealthy":
                        self._fail_unhealthy(st, "is unhealthy (its health check keeps failing)")
                elif svc not in reported:
                    reported.add(svc)
                    self.progress(f"{svc} is {'healthy' if st.health == 'healthy' else 'running (no health check)'}")
            if not pending:
                return
            if time.monotonic() >= deadline:
                st = by_service.get(pending[0])
                if st is None:
                    raise UnhealthyError(f"{pending[0]} was never created")
                self._fail_unhealthy(st, f"not healthy after {timeout_s:.0f}s (state {st.state}, health {st.health})")
            time.sleep(health_poll_interval(len(services)))

    def _fail_unhealthy(self, st: ServiceStatus, why: str) -> None:
        client = docker_client()
        logs, health_out = "", ""
        with contextlib.suppress(Exception):  # logs are a courtesy in an error message, never the error
            c = client.containers.get(st.container)
            logs = c.logs(tail=20).decode(errors="replace").rstrip()
            health_out = ContainerView.of(c).last_health_output
        what = {"backend": "replica", "service": "service", "balancer": "the balancer"}.get(st.role, "container")
        msg = f"{what} {st.service} {why}."
        if health_out:
            msg += f"\n  last health check said: {health_out[-300:]}"
        msg += "\n  last log lines:\n" + ("\n".join("    " + line for line in logs.splitlines()) or "    (none)")
        raise UnhealthyError(
            msg, hint="fix the backend, then `scaleout up` again; `scaleout down` removes what started"
        )

    def wait_balancer(self, timeout_s: float) -> None:
        """Poll the published URL until nginx answers and a request reaches a replica."""

        def fail_if_exited() -> None:
            if self.lb_container() is None:
                st = next((s for s in self.status().services if s.service == LB_SERVICE), None)
                if st is not None and st.state in ("exited", "dead"):
                    self._fail_unhealthy(st, "exited")

        poll_balancer(self.config.url, timeout_s, on_miss=fail_if_exited,
                      verify=balancer_verify(self.config.balancer.tls, self.dir), path=self.config.backend.health.path)

    def down(self, *, volumes: bool = False) -> int:
        """Remove containers and network (volumes only when asked). Returns how many containers went."""
        self._check_no_foreign_containers("remove the stack")
        before = len(self.project_containers())
        if self.compose_file.exists():
            args = ["down", "--remove-orphans", "--timeout", "10"] + (["--volumes"] if volumes else [])
            self.progress("stopping and removing containers")
            self.run_cli(args, "removing the stack")
        # whatever Compose did not know about (a deleted compose file, a renamed service): by label
        left = self.project_containers()
        if left:
            self._remove([c.name for c in left])
        with engine_errors("removing the network"):
            for net in docker_client().networks.list(
                filters={"label": f"{LABEL_COMPOSE_PROJECT}={self.config.project}"}
            ):
                with contextlib.suppress(Exception):
                    net.remove()
        return before

    # --- services beside the replicas ---------------------------------------------------------
    def start_services(self, *, build: bool, timeout_s: float) -> None:
        """Build (when they have a folder) and start the services, then wait until those the backend
        depends on are healthy (or running, without a health check), before any replica starts.
        Compose recreates only a service whose settings changed; a rescale leaves them alone."""
        cfg = self.config
        names = sorted(cfg.services)
        if not names:
            return
        built = [n for n in names if cfg.services[n].build is not None]
        if build and built:
            self.progress(f"building service image(s): {', '.join(built)}")
            self.run_cli(["build", *built], "building the services' images", error=BuildError)
        self.progress(f"starting service(s): {', '.join(names)}")
        self.run_cli(["up", "-d", "--no-build", *names], "starting the services")
        deps = list(cfg.backend.depends_on)
        if deps:
            self.progress(f"waiting for {', '.join(deps)} before starting any replica")
            self.wait_healthy(deps, timeout_s)

    # --- one service at a time (logs, exec, stop, start, restart) ----------------------------------
    def containers_by_service(self) -> dict:
        """This stack's containers (and only this stack's) by Compose service name: replicas in order,
        then the balancer, then dependency services."""
        views = [(ContainerView.of(c), c) for c in self.project_containers()]
        order = {"backend": 0, "balancer": 1, "service": 2}
        views.sort(key=lambda vc: (order.get(vc[0].role, 3), replica_index(vc[0].service), vc[0].service))
        return {v.service: c for v, c in views}

    def service_containers(self) -> list[tuple[str, object]]:
        """Every container of this stack with its Compose service name, the two of a replica that is
        being replaced included (`logs -f` follows a rolling update's new containers)."""
        return [(ContainerView.of(c).service, c) for c in self.project_containers()]
