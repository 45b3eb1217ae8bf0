"""The project's stack on Docker Compose on this machine, its lifecycle: up (first start, rescale, the
decision to roll), down, status, the services beside the replicas.

The Compose CLI creates and removes services; the Docker SDK inspects health (through the views in
targets/views.py) and removes replicas that a smaller stack no longer has. The balancer's control channel
(reload, routing, readiness) is targets/balancer.py; waiting for health is targets/health.py.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from scaleout.config.model import Config
from scaleout.errors import (
    BuildError,
    PortInUseError,
    RenderConflictError,
    ScaleoutError,
)
from scaleout.files import Plan, report_removed, write_plan
from scaleout.layout import (
    COMPOSE_FILE,
    LABEL_COMPOSE_PROJECT,
    LABEL_PROJECT,
    LB_HTTPS_PORT,
    LB_SERVICE,
    NGINX_CONF,
    WATCH_ENV,
)
from scaleout.render.common import backend_image, replicas_of
from scaleout.targets.balancer import Balancer, BalancerCreation, routed_to
from scaleout.targets.health import wait_healthy
from scaleout.targets.runner import (
    Progress,
    compose_cli,
    docker_client,
    engine_errors,
    list_containers,
    port_free,
    quiet,
    run_compose,
)
from scaleout.targets.status import ServiceStatus, StackStatus, listing_key
from scaleout.targets.views import ContainerView


def _quietly(fn: Callable[[], object]) -> None:
    """Run `fn` in a helper thread whose result is read again in the main thread (errors included)."""
    with contextlib.suppress(ScaleoutError):
        fn()


class ComposeStack:
    """One project's Compose stack on the local engine."""

    name = "compose"

    def __init__(self, config: Config, progress: Progress = quiet, log: Progress = quiet) -> None:
        self.config = config
        self.progress = progress
        self.log = log
        self.dir = config.project_dir.resolve()
        self.compose_file = self.dir / COMPOSE_FILE
        self.balancer = Balancer(self)

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
        from scaleout.targets.podman import checked_containers

        for c in checked_containers(docker_client(), self.project_containers):
            v = ContainerView.of(c)
            address = v.address(self.config.backend.port) if v.role == "backend" else None
            if v.role == "balancer" and v.running:
                lb = c
                # a balancer that publishes its TLS port serves HTTPS there (port 80 then only redirects)
                url = v.url(LB_HTTPS_PORT, "https") or v.url(80)
            services.append(ServiceStatus(v.service, c.name, v.state, v.health, address, v.role))
        services.sort(key=lambda s: listing_key(s.role, s.service))
        if routing and lb is not None:
            lines = self.balancer.routing_lines(lb)
            for s in services:
                if s.role == "backend":
                    s.routed = routed_to(s, lines) if lines else None
        from scaleout.targets.engine import current_dict

        return StackStatus(self.config.project, url, services, current_dict())

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
        from scaleout.targets.removal import stop_and_remove
        from scaleout.targets.rolling import RollingUpdate, UpdatePlan
        from scaleout.targets.timing import Timings, summary
        from scaleout.targets.verify import verify_routing

        cfg = self.config
        wanted = [r.name for r in replicas_of(cfg)]
        clock = Timings()
        lb = self.preflight()

        # A running balancer keeps its configuration until the new one has passed `nginx -t` inside it,
        # unless Compose is about to replace it (its image, ports or mounts changed): the old container
        # cannot judge a configuration written for another nginx or for files it does not mount.
        replaced = lb is not None and self.balancer.changes(lb, plan)
        deferred = (NGINX_CONF, WATCH_ENV)
        first = plan
        if lb is not None and not replaced and all((self.dir / k).exists() for k in deferred):
            first = plan.without(deferred)
        # every path and hand edit of the whole plan is checked before the first file is written
        write_plan(self.dir, plan, force=force, dry_run=True)
        write_plan(self.dir, first, force=True, prune=False)

        if build and cfg.backend.builds:
            self.progress(f"building the backend image from {cfg.backend.build}/")
            with clock.phase("build"):
                self.run_cli(["build", wanted[0]], "building the backend image", error=BuildError)
            self.progress(f"built the backend image in {clock.seconds['build']:.1f}s")
        elif cfg.backend.builds:
            self._require_built_image()

        with clock.phase("services"):
            self.start_services(build=build, timeout_s=timeout_s)
        running = lb is not None and lb.status == "running"
        # Without a running balancer nothing is served: Compose starts (or recreates) every replica at once.
        upd = self.plan_update(wanted) if running else UpdatePlan(start=wanted)
        if upd.discard:
            with clock.phase("stop"):
                stop_and_remove(upd.discard, self.progress)
        early = None
        if upd.start:
            # One Compose call creates and starts them all (Compose starts containers in parallel), and one
            # health wait reads them all: a rescale to 32 costs about what one new replica costs.
            self.progress(f"starting {len(upd.start)} replica(s): {', '.join(upd.start)}")
            with clock.phase("start"):
                self.run_cli(["up", "-d", "--no-build", "--no-deps", *upd.start], "starting the replicas")
            # No balancer at all: its container is created while the replicas boot and started once they are
            # healthy (a Compose call costs about a second; the engine starts a created container in a tenth).
            early = BalancerCreation(self) if lb is None else None
            try:
                with clock.phase("healthy"):
                    wait_healthy(self, upd.start, timeout_s)
            except BaseException:
                if early is not None:
                    early.abandon()
                raise

        removed = [s.container for s in self.status(routing=False).replicas if s.service not in wanted]
        removed += upd.retire
        rolling = None
        if upd.roll:
            rolling = RollingUpdate(self, plan.text(NGINX_CONF), plan.text(WATCH_ENV), timeout_s)
            # its new containers are created while the balancer is reloaded and checked (unless the balancer
            # is recreated, or an interrupted update's extra containers must go first)
            if not replaced and not upd.retire:
                rolling.prepare(upd.roll)
        try:
            self._reload_and_shrink(plan, lb, early, replaced, running, removed, clock)
        except BaseException:
            if rolling is not None:
                rolling.abandon()
            raise
        if rolling is not None:
            with clock.phase("roll"):
                rolling.run(upd.roll)
            self.progress(f"rolling update of {len(upd.roll)} replica(s) done in {clock.seconds['roll']:.1f}s"
                          + (f" (the build before it took {clock.seconds['build']:.1f}s)" if "build" in clock.seconds
                             else ""))
        elif running and not upd.changes and not removed:
            self.progress("every replica already runs the current image and settings")
        with clock.phase("verify"):
            self.balancer.wait(timeout_s)
            verify_routing(self, wanted)
        status = self.status()
        status.timings = clock.to_dict()
        self.progress(f"took {summary(status.timings)}")
        return status

    def _reload_and_shrink(self, plan: Plan, lb, early, replaced: bool, running: bool, removed: list[str],
                           clock) -> None:
        """`up`'s middle: the balancer takes the new configuration (tested reload, or recreated), then the
        removed replicas, out of it, drain once and stop together."""
        from scaleout.targets.removal import stop_and_remove
        from scaleout.targets.verify import start_balancer

        cfg = self.config
        if replaced:
            self.progress("the balancer's own settings changed (image, ports or mounts): it is recreated")
        elif running:
            self.progress("testing the new nginx configuration inside the running balancer")
            with clock.phase("reload"):
                self.balancer.reload(plan.text(NGINX_CONF), plan.text(WATCH_ENV))
        # records checksums of everything, nginx.conf included; says which stale files it removed
        report_removed(write_plan(self.dir, plan, force=True), self.progress)
        self.progress("checking the load balancer" if running else "starting the load balancer")
        with clock.phase("balancer"):
            start_balancer(self, early, lb if replaced else None, plan)
        if removed:
            # the balancer no longer routes to them: they drain together, once, then stop together
            if cfg.backend.drain_seconds:
                self.progress(f"draining {len(removed)} removed container(s) for {cfg.backend.drain_seconds}s")
                with clock.phase("drain"):
                    time.sleep(cfg.backend.drain_seconds)
            with clock.phase("stop"):
                stop_and_remove(removed, self.progress)

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
        compares with a container's `com.docker.compose.config-hash` label). Empty if the CLI cannot say.
        Only after the build: Compose v1's hash includes the ID of the image the tag names."""
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

    def _remove(self, containers: list[str]) -> None:
        from scaleout.targets.removal import stop_and_remove

        stop_and_remove(containers, self.progress)

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
            wait_healthy(self, deps, timeout_s)

    # --- one service at a time (logs, exec, stop, start, restart) ----------------------------------
    def containers_by_service(self) -> dict:
        """This stack's containers (and only this stack's) by Compose service name: replicas in order,
        then the balancer, then dependency services."""
        views = [(ContainerView.of(c), c) for c in self.project_containers()]
        views.sort(key=lambda vc: listing_key(vc[0].role, vc[0].service))
        return {v.service: c for v, c in views}

    def service_containers(self) -> list[tuple[str, object]]:
        """Every container of this stack with its Compose service name, the two of a replica that is
        being replaced included (`logs -f` follows a rolling update's new containers)."""
        return [(ContainerView.of(c).service, c) for c in self.project_containers()]
