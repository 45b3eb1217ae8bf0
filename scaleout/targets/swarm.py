"""The project's stack on a Docker Swarm, behind the same interface as the Compose `Stack`
(up, down, status, address_map), so the CLI never branches on the target.

`docker stack deploy` creates and updates the services; the Docker SDK reads tasks, health and
addresses. The backend is one service of N tasks (endpoint_mode dnsrr); nginx resolves
`tasks.backend` through Docker's DNS per request, so every ready task gets traffic and a rescale or a
rolling update needs no nginx reload (see scaleout/export.py and the README).

The `services:` (a database, a cache) are one task each. Swarm has no `depends_on`: it starts every
service at once, so a replica may fail its health check (and be replaced) until its database is up.
`up` accepts that while the services the backend depends on are not ready yet, waits for them first,
and reports the backend ready only after them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from functools import lru_cache
from typing import Any

from scaleout.config.model import Config
from scaleout.errors import DockerUnavailableError, PortInUseError, StackError, UnhealthyError, UsageError
from scaleout.files import Plan, atomic_write, confined, report_removed, write_plan
from scaleout.layout import (
    BACKEND_SERVICE,
    LABEL_STACK_NAMESPACE,
    LB_HTTPS_PORT,
    LB_SERVICE,
    SWARM_DIR,
    SWARM_IMAGES_FILE,
    SWARM_STACK_FILE,
    WORKER_DIR,
)
from scaleout.render.envfiles import stack_deploy_notes
from scaleout.render.swarm import ENV_BACKEND_IMAGE, ENV_BALANCER_IMAGE, service_image_vars, swarm_notes
from scaleout.targets.engine import current_dict, require_swarm_mode
from scaleout.targets.health import last_words
from scaleout.targets.runner import (
    ENGINE_HINT,
    Progress,
    balancer_verify,
    docker_client,
    engine_errors,
    poll_balancer,
    port_free,
    quiet,
    run_docker,
)
from scaleout.targets.status import ServiceStatus, StackStatus, listing_key
from scaleout.targets.swarm_checks import (
    check_objects_are_ours,
    check_stack_is_ours,
    registry_problem,
    swarm_problem,
)
from scaleout.targets.swarm_converge import ServiceSnapshot, Stop, judge
from scaleout.targets.swarm_objects import namespace_objects, remove_leftovers, remove_unused_objects
from scaleout.targets.views import ContainerView, TaskView

STACK_DIR = SWARM_DIR
STACK_FILE = SWARM_STACK_FILE
IMAGES_FILE = SWARM_IMAGES_FILE
LB = LB_SERVICE
LABEL_NAMESPACE = LABEL_STACK_NAMESPACE


@lru_cache(maxsize=1)
def _deploy_has_detach() -> bool:
    try:
        r = subprocess.run(["docker", "stack", "deploy", "--help"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise DockerUnavailableError(
            "the `docker` command is not installed; scaleout runs `docker stack deploy`", hint="install the Docker CLI"
        ) from None
    except subprocess.TimeoutExpired:
        raise DockerUnavailableError(
            "`docker stack deploy --help` did not answer within 30 s", hint=ENGINE_HINT
        ) from None
    return "--detach" in r.stdout


class SwarmStack:
    """One project's stack (`docker stack deploy` namespace = project name) on a swarm manager."""

    name = "swarm"

    def __init__(
        self, config: Config, progress: Progress = quiet, log: Progress = quiet, registry: str | None = None
    ) -> None:
        self.config = config
        self.progress = progress
        self.log = log
        if registry is not None:
            from scaleout.targets.swarm_images import check_registry

            registry = check_registry(registry)
        self.registry = registry
        self.dir = config.project_dir.resolve()
        self.stack_file = self.dir / STACK_DIR / STACK_FILE

    # --- inspection -------------------------------------------------------------------------
    def _client(self):
        client = docker_client()
        require_swarm_mode()
        with engine_errors("reading the swarm state"):
            info = client.info()
        problem = swarm_problem(info)
        if problem:
            raise StackError(
                problem,
                hint="on one machine: `docker swarm init --advertise-addr 127.0.0.1`; "
                "or point DOCKER_HOST at a swarm manager",
            )
        return client

    def _services(self) -> dict[str, Any]:
        """This stack's services by their name in the stack file (backend, lb, and the services beside)."""
        with engine_errors("listing swarm services"):
            services = self._client().services.list(filters={"label": f"{LABEL_NAMESPACE}={self.config.project}"})
        prefix = f"{self.config.project}_"
        return {s.name[len(prefix) :] if s.name.startswith(prefix) else s.name: s for s in services}

    @staticmethod
    def _tasks(service, running_only: bool = True) -> list[TaskView]:
        with engine_errors(f"listing the tasks of {service.name}"):
            tasks = service.tasks(filters={"desired-state": "running"} if running_only else None)
        return [TaskView(t) for t in tasks]

    def _address(self, task: TaskView) -> str | None:
        return task.address(f"{self.config.project}_default", self.config.backend.port)

    def _health(self, task: TaskView) -> str:
        """The container's health where it runs on this node; else what the task state implies
        (a task with a health check reaches `running` only once it is healthy)."""
        if task.container_id:
            import docker.errors

            with contextlib.suppress(docker.errors.NotFound):
                return ContainerView.of(docker_client().containers.get(task.container_id)).health
        if not task.has_healthcheck:
            return "none"
        return "healthy" if task.state == "running" else "starting"

    def status(self, routing: bool = True) -> StackStatus:
        """What runs now, read from the swarm (not from the config); with `routing`, also which backend
        tasks the balancer sends traffic to (the addresses its DNS gives, see targets/swarm_routing.py)."""
        services = self._services()
        out: list[ServiceStatus] = []
        url = None
        for short, svc in services.items():
            # `lb` and `backend` are names no entry of `services:` may take
            role = {LB: "balancer", BACKEND_SERVICE: "backend"}.get(short, "service")
            for t in self._tasks(svc):
                name = f"{BACKEND_SERVICE}-{t.slot}" if role == "backend" else short
                container = f"{svc.name}.{t.slot}.{t.id}"
                address = self._address(t) if role == "backend" else None
                out.append(ServiceStatus(name, container, t.state, self._health(t), address, role))
                published = t.published_port(self._lb_port) if role == "balancer" and t.state == "running" else None
                if published:
                    url = f"{self.config.balancer.scheme}://127.0.0.1:{published}"
        out.sort(key=lambda s: (*listing_key(s.role, s.service), s.container))
        if routing:
            from scaleout.targets.swarm_routing import mark_routed

            mark_routed(out, self._routed())
        return StackStatus(self.config.project, url, out, current_dict())

    def _routed(self) -> set[str] | None:
        """The backend task addresses the balancer resolves now (None: no balancer on this node)."""
        from scaleout.targets.requests import balancer_containers
        from scaleout.targets.swarm_routing import routed_addresses

        with engine_errors("reading what the balancer routes"):
            lbs = balancer_containers(self)
            return routed_addresses(lbs[0]) if lbs else None

    @property
    def _lb_port(self) -> int:
        """The balancer's port inside its container that `balancer.port` publishes."""
        return LB_HTTPS_PORT if self.config.balancer.tls is not None else 80

    def address_map(self) -> dict[str, str]:
        """`ip:port` of every backend task -> backend-<slot>, to attribute `X-Upstream-Addr`."""
        svc = self._services().get(BACKEND_SERVICE)
        if svc is None:
            return {}
        out = {}
        for t in self._tasks(svc, running_only=False):
            addr = self._address(t)
            if addr and t.state in ("running", "starting", "shutdown", "complete"):
                out.setdefault(addr, f"{BACKEND_SERVICE}-{t.slot}")
        return out

    # --- lifecycle --------------------------------------------------------------------------
    def up(self, plan: Plan, *, build: bool = True, timeout_s: float = 180.0, force: bool = False) -> StackStatus:
        """Build and tag the images, deploy the stack, wait until every task is ready and the balancer
        answers. On a running stack this is a rescale or a rolling update (new tasks first)."""
        cfg = self.config
        write_plan(self.dir, plan, force=force, dry_run=True)
        services = self.preflight()
        report_removed(write_plan(self.dir, plan, force=force), self.progress)

        images = self._images(plan, build)
        if cfg.balancer.bind not in ("0.0.0.0", "::"):
            self.progress(
                f"note: Swarm cannot publish on {cfg.balancer.bind} only; the balancer listens on port "
                f"{cfg.balancer.port} of every interface of the manager"
            )
        for note in swarm_notes(cfg) + stack_deploy_notes(cfg, cfg.engine_environment()):
            self.progress(f"note: {note}")
        known = {t.id for s in services.values() for t in self._tasks(s, running_only=False)}
        known |= {f"update:{(s.attrs.get('UpdateStatus') or {}).get('StartedAt')}" for s in services.values()}
        extra = f", service(s) {', '.join(sorted(cfg.services))}" if cfg.services else ""
        self.progress(f"deploying stack {cfg.project}: {cfg.replicas} backend task(s), the balancer{extra}")
        self._deploy(images)
        self.wait_converged(timeout_s, known)
        self.wait_balancer(timeout_s)
        remove_unused_objects(self.stack_file, self.config.project)
        return self.status()

    def preflight(self) -> dict[str, Any]:
        """Checked before anything is written or built: a swarm manager, a registry when the swarm has
        several nodes, a free host port (unless it is this stack's own). Returns the stack's services."""
        client = self._client()
        with engine_errors("listing the swarm's nodes"):
            nodes = len(client.nodes.list())
        problem = registry_problem(nodes, self.registry)
        if problem:
            raise UsageError(
                problem,
                hint="push the images to a registry every node can pull from: "
                "`scaleout up --target swarm --registry HOST/PATH`",
            )
        binds = [
            f"services.{n}.volumes: ./{v.source}"
            for n, s in sorted(self.config.services.items())
            for v in s.volumes
            if v.kind == "bind"
        ]
        if nodes > 1 and binds:
            raise UsageError(
                f"this swarm has {nodes} nodes, and a bind mount exists only on the node that has the "
                "folder (a task scheduled elsewhere would mount an empty or missing one):\n  " + "\n  ".join(binds),
                hint="use a named volume (name:/path), or copy the files into the service's image",
            )
        services = self._services()
        check_stack_is_ours(services, self.config.project, "deploy over it")
        self._check_port(services.get(LB))
        for name, svc in sorted(self.config.services.items()):
            for p in svc.ports:
                self._check_published(services.get(name), p.host_port, f"service {name}", f"services.{name}.ports")
        return services

    def _images(self, plan: Plan, build: bool) -> dict[str, str]:
        from scaleout.targets import swarm_images

        cfg = self.config
        recorded_path = confined(self.dir, IMAGES_FILE)
        service_vars = service_image_vars(cfg)
        if build:
            if cfg.backend.builds:
                self.progress(f"building the backend image from {cfg.backend.build}/")
                backend = swarm_images.build_backend(cfg, self.log)
            else:
                backend = cfg.backend.image or ""
            worker = next(
                ((rel.rsplit("/", 1)[-1], plan.text(rel)) for rel in plan.files if rel.startswith(WORKER_DIR + "/")),
                None,
            )
            self.progress(f"building the balancer image ({cfg.images.balancer} + {cfg.static.dir}/)")
            balancer = swarm_images.build_balancer(cfg, worker, self.log)
            built = {}
            for name in service_vars:
                self.progress(f"building the image of service {name} from {cfg.services[name].build}/")
                built[name] = swarm_images.build_service(cfg, name, self.log)
            images = swarm_images.SwarmImages(backend, balancer, built)
            self.progress(f"images: {', '.join([images.backend, images.balancer, *images.services.values()])}")
            if self.registry:
                registry = self.registry

                def pushed(ref: str) -> str:
                    self.progress(f"pushing {swarm_images.registry_ref(ref, registry)}")
                    return swarm_images.push(ref, registry, self.log)

                # the user's own backend image is already where they keep it
                images = swarm_images.SwarmImages(
                    pushed(images.backend) if cfg.backend.builds else images.backend,
                    pushed(images.balancer),
                    {n: pushed(ref) for n, ref in images.services.items()},
                )
            atomic_write(recorded_path, json.dumps(images.to_dict(), indent=2) + "\n")
        else:
            try:
                images = swarm_images.SwarmImages(**json.loads(recorded_path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                raise UsageError(
                    "--no-build: no images were built for this project's swarm stack yet",
                    hint="run `scaleout up --target swarm` once with building",
                ) from None
            missing = sorted(set(service_vars) - set(images.services))
            if missing:
                raise UsageError(
                    f"--no-build: no image was built on Swarm for service(s) {', '.join(missing)} yet",
                    hint="run `scaleout up --target swarm` once with building",
                )
        return {
            ENV_BACKEND_IMAGE: images.backend,
            ENV_BALANCER_IMAGE: images.balancer,
            **{var: images.services[name] for name, var in service_vars.items()},
        }

    def _check_port(self, lb) -> None:
        self._check_published(lb, self.config.balancer.port, "the balancer", "`scaleout up --port P` or balancer.port")
        if self.config.balancer.tls is not None and self.config.balancer.http_port is not None:
            self._check_published(lb, self.config.balancer.http_port, "the balancer's redirect to HTTPS",
                                  "balancer.http_port")

    @staticmethod
    def _check_published(svc, port: int, what: str, where: str) -> None:
        """A host-mode port listens on every interface: it must be free there, unless this service has it."""
        if svc is not None:
            spec_ports = svc.attrs.get("Spec", {}).get("EndpointSpec", {}).get("Ports")
            for p in (svc.attrs.get("Endpoint") or {}).get("Ports") or spec_ports or []:
                if p.get("PublishedPort") == port:
                    return  # ours already
        if not port_free("0.0.0.0", port):
            raise PortInUseError(
                f"port {port} ({what}) is already in use on this machine",
                hint=f"stop that program, or choose another port: {where}",
            )

    def _deploy(self, images: dict[str, str]) -> None:
        from scaleout.targets.childenv import resolved_file

        # the stack file keeps ${VAR} references: resolved into a private copy, never through the
        # CLI's environment (.env is the project's, see targets.childenv); the image names are scaleout's
        with resolved_file(self.stack_file, self.config.dotenv, {**os.environ, **images}) as file:
            args = ["docker", "stack", "deploy", "-c", file.name, "--prune", "--resolve-image", "never"]
            if _deploy_has_detach():
                args.append("--detach=true")  # scaleout waits itself, with better messages
            if self.registry:
                args.append("--with-registry-auth")
            args.append(self.config.project)
            self._docker(args, images, "deploying the stack")

    def _docker(self, args: list[str], extra_env: dict[str, str], action: str) -> None:
        # the stack file's folder for its relative paths; `stack rm` in a project whose .scaleout/ is gone runs too
        cwd = self.stack_file.parent if self.stack_file.parent.is_dir() else self.dir
        run_docker(args, cwd=cwd, extra_env=extra_env, action=action, on_line=self.log)

    def wait_converged(self, timeout_s: float, known: set[str] = frozenset()) -> None:
        """Poll until every service has its tasks running (= healthy) on its current spec: first the
        services the backend depends on, then the backend's `replicas` and the balancer (the rules are
        targets/swarm_converge.py). Fail early when new tasks keep failing, with their errors and logs.
        `known` holds the task IDs (and update start times, as "update:<time>") from before the deploy."""
        cfg = self.config
        deps = [d for d in cfg.backend.depends_on if d in cfg.services]
        # dependencies first, so that a pass sees them before it judges the backend
        want = {
            **{d: 1 for d in deps},
            **{s: 1 for s in sorted(cfg.services) if s not in deps},
            BACKEND_SERVICE: cfg.replicas,
            LB: 1,
        }
        deadline = time.monotonic() + timeout_s
        reported: set[str] = set()
        forgiven: set[str] = set()
        deps_reported = False
        while True:
            services = self._services()
            snapshots = {}
            for short in want:
                svc = services.get(short)
                if svc is not None:
                    svc.reload()
                    snapshots[short] = ServiceSnapshot.of(svc.attrs, [t.attrs for t in self._tasks(svc, False)])
            verdict = judge(want, deps, snapshots, known, forgiven, BACKEND_SERVICE)
            forgiven = verdict.forgiven
            if verdict.stop is not None:
                self._fail_converging(verdict.stop, services[verdict.stop.service])
            if verdict.deps_ready and not deps_reported:
                deps_reported = True
                self.progress(f"{', '.join(deps)} ready: now waiting for the backend "
                              "(replicas that failed before are replaced by Swarm)")
            for label, t in verdict.ready:
                if t.id not in reported and t.id not in known:
                    reported.add(t.id)
                    self.progress(f"{label} is ready")
            if verdict.converged:
                return
            if time.monotonic() >= deadline:
                raise UnhealthyError(
                    f"the stack did not become ready within {timeout_s:.0f}s: {', '.join(verdict.pending)}",
                    hint="`docker stack ps " + self.config.project + " --no-trunc` shows why",
                )
            time.sleep(0.5)

    def _fail_converging(self, stop: Stop, svc) -> None:
        if stop.kind == "update":
            raise UnhealthyError(
                f"the update of {stop.service} was stopped by Swarm ({stop.update_state}): "
                f"{stop.update_message}\n" + self._logs(svc),
                hint=f"fix {stop.service}, then `scaleout up --target swarm` again",
            )
        errs = sorted({self._task_failure(t) for t in stop.failed})
        raise UnhealthyError(
            f"{len(stop.failed)} new task(s) of {stop.service} stopped before becoming ready:\n"
            + "\n".join(f"  {e}" for e in errs) + "\n" + self._logs(svc),
            hint="fix the cause, then `scaleout up --target swarm` again; "
                 "`scaleout down --target swarm` removes the stack",
        )

    def _task_failure(self, task: TaskView) -> str:
        """Why a task ended: Swarm's error, or the last health check's output where the container is local."""
        why = task.error or f"{task.state} ({task.message})"
        cid = task.container_id
        if cid:
            import docker.errors

            with contextlib.suppress(docker.errors.NotFound):
                health = (docker_client().containers.get(cid).attrs.get("State") or {}).get("Health") or {}
                if health.get("Status") == "unhealthy" and health.get("Log"):
                    # the oldest kept failure: the later ones may only show the container being stopped
                    outs = [(e.get("Output") or "").strip() for e in health["Log"] if e.get("ExitCode") != 0]
                    out = next((o for o in outs if o), "")[-200:]
                    why = f"unhealthy: the health check kept failing; it said: {out or '(nothing)'}"
        return why

    def _logs(self, svc) -> str:
        lines = ""
        with contextlib.suppress(Exception):  # logs are a courtesy in an error message, never the error
            raw = b"".join(svc.logs(stdout=True, stderr=True, tail=10))  # 10 per task: keep the last 15 in all
            lines = "\n".join(raw.decode(errors="replace").rstrip().splitlines()[-15:])
        return last_words(lines).lstrip("\n")

    def wait_balancer(self, timeout_s: float) -> None:
        """Poll the published port until nginx answers and a request reaches a backend task."""
        url = f"{self.config.balancer.scheme}://127.0.0.1:{self.config.balancer.port}"
        poll_balancer(url, timeout_s, verify=balancer_verify(self.config.balancer.tls, self.dir),
                      path=self.config.backend.health.path)

    def down(self, *, volumes: bool = False, timeout_s: float = 60.0) -> int:
        """`docker stack rm`, then wait until no task, container, network, config or secret of the stack is
        left (Swarm removes them asynchronously). Returns how many tasks were running."""
        client = self._client()
        services = self._services()
        check_stack_is_ours(services, self.config.project, "remove it")
        n = sum(len(self._tasks(s)) for s in services.values())
        leftovers = namespace_objects(client, self.config.project)
        # `stack rm` removes the whole namespace: every object in it must be one scaleout's stack file declares
        check_objects_are_ours(leftovers, self.config.project, "remove it", self.config.named_volumes)
        if services or leftovers:
            self.progress(f"removing stack {self.config.project}")
            self._docker(["docker", "stack", "rm", self.config.project], {}, "removing the stack")
        deadline = time.monotonic() + timeout_s
        while True:
            label = {"label": f"{LABEL_NAMESPACE}={self.config.project}"}
            with engine_errors("waiting for the stack's containers to stop"):
                left = client.containers.list(all=True, filters=label, sparse=True) + client.services.list(
                    filters=label
                )
            if not left:
                break
            if time.monotonic() >= deadline:
                raise StackError(f"the stack's tasks did not stop within {timeout_s:.0f}s")
            time.sleep(0.5)
        remove_leftovers(client, self.config.project, volumes, self.config.named_volumes, self.progress)
        return n
