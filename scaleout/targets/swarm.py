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
from scaleout.files import Plan, atomic_write, confined, write_plan
from scaleout.layout import (
    BACKEND_SERVICE,
    LABEL_STACK_NAMESPACE,
    LB_HTTPS_PORT,
    LB_SERVICE,
    SWARM_DIR,
    SWARM_IMAGES_FILE,
    SWARM_STACK_FILE,
    WORKER_DIR,
    replica_index,
)
from scaleout.render.envfiles import stack_deploy_notes
from scaleout.render.swarm import ENV_BACKEND_IMAGE, ENV_BALANCER_IMAGE, service_image_vars, swarm_notes
from scaleout.targets.compose import port_free
from scaleout.targets.runner import (
    ENGINE_HINT,
    Progress,
    balancer_verify,
    docker_client,
    engine_errors,
    poll_balancer,
    quiet,
    run_docker,
)
from scaleout.targets.stack_owner import check_stack_is_ours
from scaleout.targets.status import ServiceStatus, StackStatus
from scaleout.targets.views import ContainerView, TaskView

STACK_DIR = SWARM_DIR
STACK_FILE = SWARM_STACK_FILE
IMAGES_FILE = SWARM_IMAGES_FILE
LB = LB_SERVICE
LABEL_NAMESPACE = LABEL_STACK_NAMESPACE
MAX_FAILED_TASKS = 3  # new tasks that fail before `up` gives up instead of waiting for the timeout


def swarm_problem(info: dict[str, Any]) -> str | None:
    """Why this engine cannot deploy a stack (from `docker info`), or None."""
    swarm = info.get("Swarm") or {}
    state = swarm.get("LocalNodeState", "inactive")
    if state != "active":
        return f"this Docker engine is not part of a swarm (swarm state: {state or 'inactive'})"
    if not swarm.get("ControlAvailable"):
        return "this Docker engine is a swarm worker, not a manager: stacks are deployed from a manager"
    return None


def registry_problem(nodes: int, registry: str | None) -> str | None:
    """A multi-node swarm cannot run images that exist only on the engine that built them (the
    balancer image, with the static files, is always built)."""
    if nodes > 1 and registry is None:
        return (f"this swarm has {nodes} nodes: the images scaleout builds exist only on this engine, so tasks "
                "scheduled on the other nodes could not start")
    return None


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
        """What runs now, read from the swarm (not from the config)."""
        del routing  # nginx resolves every ready task per request: routing is the tasks' health
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
        order = {"backend": 0, "balancer": 1, "service": 2}
        out.sort(key=lambda s: (order[s.role], replica_index(s.service), s.service, s.container))
        return StackStatus(self.config.project, url, out)

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
        write_plan(self.dir, plan, force=force)

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
        self._remove_old_configs()
        self._remove_old_secrets()
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
        services the backend depends on, then the backend's `replicas` and the balancer. Fail early when
        new tasks keep failing, with their errors and logs. `known` holds the task IDs (and update start
        times, as "update:<time>") from before the deploy.

        Swarm starts everything at once: backend tasks that fail while a dependency is not ready yet
        (a replica that cannot reach its database) are forgiven, and the backend is reported ready only
        after its dependencies."""
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
            pending = []
            ready_now: set[str] = set()
            for short, n in want.items():
                waiting_for_deps = short == BACKEND_SERVICE and not all(d in ready_now for d in deps)
                svc = services.get(short)
                if svc is None:
                    pending.append(f"{short} (not created)")
                    continue
                svc.reload()
                status = svc.attrs.get("UpdateStatus") or {}
                update = status.get("State")
                new_update = f"update:{status.get('StartedAt')}" not in known  # not a rollback of an earlier deploy
                if (
                    new_update
                    and update in ("rollback_started", "rollback_completed", "rollback_paused", "paused")
                    and not waiting_for_deps
                ):
                    raise UnhealthyError(
                        f"the update of {short} was stopped by Swarm ({update}): "
                        f"{(svc.attrs.get('UpdateStatus') or {}).get('Message', '')}\n" + self._logs(svc),
                        hint=f"fix {short}, then `scaleout up --target swarm` again",
                    )
                tasks = self._tasks(svc, running_only=False)
                # a task started by this deploy that has ended already: it crashed or never became healthy
                failed = [
                    t
                    for t in tasks
                    if t.id not in known
                    and t.desired_state != "running"
                    and t.state in ("failed", "rejected", "complete", "shutdown", "orphaned")
                ]
                if waiting_for_deps:
                    forgiven |= {t.id for t in failed}
                failed = [t for t in failed if t.id not in forgiven]
                if len(failed) >= MAX_FAILED_TASKS:
                    errs = sorted({self._task_failure(t) for t in failed})
                    raise UnhealthyError(
                        f"{len(failed)} new task(s) of {short} stopped before becoming ready:\n"
                        + "\n".join(f"  {e}" for e in errs)
                        + "\n"
                        + self._logs(svc),
                        hint="fix the cause, then `scaleout up --target swarm` again; "
                        "`scaleout down --target swarm` removes the stack",
                    )
                live = [t for t in tasks if t.desired_state == "running"]
                ready = [t for t in live if t.state == "running"]
                if waiting_for_deps:
                    pending.append(f"{short} (waiting for {', '.join(d for d in deps if d not in ready_now)})")
                    continue
                if short == BACKEND_SERVICE and deps and not deps_reported:
                    deps_reported = True
                    self.progress(
                        f"{', '.join(deps)} ready: now waiting for the backend "
                        "(replicas that failed before are replaced by Swarm)"
                    )
                for t in ready:
                    label = f"{short}-{t.slot}" if short == BACKEND_SERVICE else short
                    if t.id not in reported and t.id not in known:
                        reported.add(t.id)
                        self.progress(f"{label} is ready")
                if len(ready) != n or len(live) != n or update == "updating":
                    pending.append(f"{short} ({len(ready)}/{n} ready)")
                else:
                    ready_now.add(short)
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise UnhealthyError(
                    f"the stack did not become ready within {timeout_s:.0f}s: {', '.join(pending)}",
                    hint="`docker stack ps " + self.config.project + " --no-trunc` shows why",
                )
            time.sleep(0.5)

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
        return "  last log lines:\n" + ("\n".join("    " + line for line in lines.splitlines()) or "    (none)")

    def wait_balancer(self, timeout_s: float) -> None:
        """Poll the published port until nginx answers and a request reaches a backend task."""
        url = f"{self.config.balancer.scheme}://127.0.0.1:{self.config.balancer.port}"
        poll_balancer(url, timeout_s, verify=balancer_verify(self.config.balancer.tls, self.dir),
                      path=self.config.backend.health.path)

    def _remove_old_configs(self) -> None:
        """Earlier nginx.conf versions (configs are immutable, one per content hash) once unused."""
        import docker.errors
        import yaml

        try:
            current = yaml.safe_load(self.stack_file.read_text(encoding="utf-8"))["configs"]["nginx_conf"]["name"]
        except (OSError, KeyError, TypeError, yaml.YAMLError):
            return
        with engine_errors("listing swarm configs"):
            configs = docker_client().configs.list(filters={"label": f"{LABEL_NAMESPACE}={self.config.project}"})
        for c in configs:
            if c.name != current:
                with contextlib.suppress(docker.errors.APIError):  # still in use by a stopping task: next time
                    c.remove()

    def _remove_old_secrets(self) -> None:
        """Earlier TLS certificates and keys (secrets are immutable, one per content hash) once unused."""
        import docker.errors
        import yaml

        try:
            current = {s["name"] for s in (yaml.safe_load(self.stack_file.read_text(encoding="utf-8"))
                                           .get("secrets") or {}).values()}
        except (OSError, AttributeError, KeyError, TypeError, yaml.YAMLError):
            return
        with engine_errors("listing swarm secrets"):
            secrets = docker_client().secrets.list(filters={"label": f"{LABEL_NAMESPACE}={self.config.project}"})
        for s in secrets:
            if s.name not in current:
                with contextlib.suppress(docker.errors.APIError):  # still in use by a stopping task: next time
                    s.remove()

    def down(self, *, volumes: bool = False, timeout_s: float = 60.0) -> int:
        """`docker stack rm`, then wait until no task, container, network, config or secret of the stack is
        left (Swarm removes them asynchronously). Returns how many tasks were running."""
        client = self._client()
        services = self._services()
        check_stack_is_ours(services, self.config.project, "remove it")
        n = sum(len(self._tasks(s)) for s in services.values())
        label = {"label": f"{LABEL_NAMESPACE}={self.config.project}"}
        with engine_errors("listing the stack's networks"):
            leftovers = (client.networks.list(filters=label) or client.configs.list(filters=label)
                         or client.secrets.list(filters=label))
        if services or leftovers:
            self.progress(f"removing stack {self.config.project}")
            self._docker(["docker", "stack", "rm", self.config.project], {}, "removing the stack")
        deadline = time.monotonic() + timeout_s
        while True:
            with engine_errors("waiting for the stack's containers to stop"):
                left = client.containers.list(all=True, filters=label, sparse=True) + client.services.list(
                    filters=label
                )
            if not left:
                break
            if time.monotonic() >= deadline:
                raise StackError(f"the stack's tasks did not stop within {timeout_s:.0f}s")
            time.sleep(0.5)
        import docker.errors

        with engine_errors("removing the stack's networks, configs and secrets"):
            for obj in (client.networks.list(filters=label) + client.configs.list(filters=label)
                        + client.secrets.list(filters=label)):
                with contextlib.suppress(docker.errors.NotFound):
                    obj.remove()
        if volumes:
            with engine_errors("removing the stack's volumes"):
                for v in client.volumes.list(filters=label):
                    with contextlib.suppress(docker.errors.NotFound):
                        v.remove()
        return n
