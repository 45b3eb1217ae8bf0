"""The running stack behind one small interface: up, down, status, reload, addresses.

Compose CLI for creating and removing services; the Docker SDK for inspecting health, reading logs,
reloading nginx and removing replicas that a smaller stack no longer has.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scaleout.config import CONFIG_FILE, Config
from scaleout.engine import compose_cli, docker_client, engine_errors, run_compose
from scaleout.errors import (
    BuildError,
    LockedError,
    NotRunningError,
    PortInUseError,
    RenderConflictError,
    UnhealthyError,
    UsageError,
)
from scaleout.render import (
    COMPOSE_FILE,
    LABEL_PROJECT,
    LB_CONF_MOUNT,
    LB_SCRIPT,
    LB_SERVICE,
    LB_STAGE_DIR,
    NGINX_CONF,
    atomic_write,
    backend_image,
    ensure_not_hand_edited,
    WATCH_ENV,
    replicas_of,
    write_files,
)

Progress = Callable[[str], None]
LABEL_COMPOSE_PROJECT = "com.docker.compose.project"
LABEL_COMPOSE_SERVICE = "com.docker.compose.service"
ROUTING_FILE = "/tmp/scaleout/routing"  # written by lb.sh: "replica up|down address" per line


def _quiet(_: str) -> None:
    pass


@dataclass
class ServiceStatus:
    service: str
    container: str
    state: str  # running, exited, restarting, ...
    health: str  # healthy, unhealthy, starting, none
    address: str | None  # ip:port on the project network (replicas)
    role: str  # backend | balancer
    routed: bool | None = None  # replicas: does the balancer send it traffic now (None: unknown)


@dataclass
class StackStatus:
    project: str
    url: str | None
    services: list[ServiceStatus] = field(default_factory=list)

    @property
    def replicas(self) -> list[ServiceStatus]:
        return [s for s in self.services if s.role == "backend"]

    @property
    def balancer(self) -> ServiceStatus | None:
        return next((s for s in self.services if s.role == "balancer"), None)

    @property
    def running(self) -> bool:
        return any(s.state == "running" for s in self.services)

    def to_dict(self) -> dict:
        return {
            "project": self.project,
            "url": self.url,
            "running": self.running,
            "replicas": [asdict(s) for s in self.replicas],
            "balancer": asdict(self.balancer) if self.balancer else None,
        }


@contextlib.contextmanager
def project_lock(project_dir: Path, wait_s: float = 0.0) -> Iterator[None]:
    """One scaleout at a time changes a project: a second `up` waits `wait_s` then fails clearly.
    The lock is taken on scaleout.yaml itself, so that taking it writes no file."""
    if wait_s < 0:
        raise UsageError(f"--wait: must be 0 or more seconds (got {wait_s:g})")
    fd = os.open(project_dir / CONFIG_FILE, os.O_RDONLY)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockedError(
                        f"another scaleout command is changing project {project_dir.name} (it holds a lock on {CONFIG_FILE})",
                        hint="wait for it to finish, or pass --wait SECONDS to queue behind it",
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def _port_free(bind: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((bind, port))
        except OSError:
            return False
    return True


class Stack:
    """One project's Compose stack on the local engine."""

    def __init__(self, config: Config, progress: Progress = _quiet, log: Progress = _quiet) -> None:
        self.config = config
        self.progress = progress
        self.log = log
        self.dir = config.project_dir
        self.compose_file = self.dir / COMPOSE_FILE

    # --- inspection -------------------------------------------------------------------------
    def _containers(self, all_: bool = True) -> list:
        """This stack's containers: the Compose project's, and labelled as scaleout's."""
        labels = [f"{LABEL_COMPOSE_PROJECT}={self.config.project}", f"{LABEL_PROJECT}={self.config.project}"]
        with engine_errors("listing containers"):
            return docker_client().containers.list(all=all_, filters={"label": labels})

    def _check_no_foreign_containers(self, action: str) -> None:
        """Refuse to share a Compose project with containers scaleout did not create (a user's own
        docker-compose.yml in the same folder has the same default project name): Compose would treat
        them as part of this stack, and `down` would remove them."""
        with engine_errors("listing containers"):
            every = docker_client().containers.list(all=True, filters={"label": f"{LABEL_COMPOSE_PROJECT}={self.config.project}"})
        foreign = sorted(c.name for c in every if c.labels.get(LABEL_PROJECT) != self.config.project)
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
        for c in self._containers():
            labels = c.labels
            svc = labels.get(LABEL_COMPOSE_SERVICE, "?")
            role = "balancer" if svc == LB_SERVICE else "backend"
            st = c.attrs.get("State", {})
            health = (st.get("Health") or {}).get("Status", "none")
            address = None
            nets = c.attrs.get("NetworkSettings", {}).get("Networks") or {}
            ips = [n.get("IPAddress") for n in nets.values() if n.get("IPAddress")]
            if role == "backend" and ips:
                address = f"{ips[0]}:{self.config.backend.port}"
            if role == "balancer" and st.get("Status") == "running":
                ports = c.attrs.get("NetworkSettings", {}).get("Ports") or {}
                for binding in ports.get("80/tcp") or []:
                    host = binding.get("HostIp") or "127.0.0.1"
                    if host in ("0.0.0.0", "::", ""):
                        host = "127.0.0.1"
                    host = f"[{host}]" if ":" in host else host
                    url = f"http://{host}:{binding.get('HostPort')}"
                    break
            services.append(ServiceStatus(svc, c.name, st.get("Status", "unknown"), health, address, role))
        services.sort(key=lambda s: (s.role != "backend", _replica_index(s.service), s.service))
        if routing and any(s.role == "balancer" and s.state == "running" for s in services):
            routed = self.routing()
            for s in services:
                if s.role == "backend":
                    s.routed = routed.get(s.service, False) if routed else None
        return StackStatus(self.config.project, url, services)

    def address_map(self) -> dict[str, str]:
        """`ip:port` of every replica -> its service name, to attribute `X-Upstream-Addr`."""
        out = {}
        for c in self._containers():
            svc = c.labels.get(LABEL_COMPOSE_SERVICE, "")
            if svc == LB_SERVICE:
                continue
            for n in (c.attrs.get("NetworkSettings", {}).get("Networks") or {}).values():
                if n.get("IPAddress"):
                    out[f"{n['IPAddress']}:{self.config.backend.port}"] = svc
        return out

    def _lb(self):
        for c in self._containers(all_=False):
            if c.labels.get(LABEL_COMPOSE_SERVICE) == LB_SERVICE:
                return c
        return None

    # --- lifecycle --------------------------------------------------------------------------
    def up(self, files: dict[str, str], *, build: bool = True, timeout_s: float = 180.0, force: bool = False) -> StackStatus:
        """Bring the stack to what `files` describe. On a running stack this is a rescale: new replicas
        become healthy before nginx reloads; removed replicas drain after it, then stop. The balancer
        is never recreated unless its own settings (port, bind, image) changed."""
        cfg = self.config
        wanted = [r.name for r in replicas_of(cfg)]
        if not force:
            ensure_not_hand_edited(self.dir, files)
        lb = self.preflight()

        # A running balancer keeps its configuration until the new one has passed `nginx -t` inside it.
        deferred = (NGINX_CONF, WATCH_ENV)
        first_files = {k: v for k, v in files.items() if k not in deferred}
        if lb is None or not all((self.dir / k).exists() for k in deferred):
            first_files = files
        write_files(self.dir, first_files, force=True)

        if build and cfg.backend.builds:
            self.progress(f"building the backend image from {cfg.backend.build}/")
            run_compose(cfg.project, self.compose_file, ["build", wanted[0]], on_line=self.log,
                        action="building the backend image", error=BuildError)
        elif cfg.backend.builds:
            self._require_built_image()

        self.progress(f"starting {len(wanted)} replica(s): {', '.join(wanted)}")
        run_compose(cfg.project, self.compose_file, ["up", "-d", "--no-build", *wanted], on_line=self.log,
                    action="starting the replicas")
        self.wait_healthy(wanted, timeout_s)

        removed = [s.container for s in self.status(routing=False).replicas if s.service not in wanted]
        if lb is not None and lb.status == "running":
            self.progress("testing the new nginx configuration inside the running balancer")
            self.reload(files[NGINX_CONF], files[WATCH_ENV])
        write_files(self.dir, files, force=True)  # records checksums of everything, nginx.conf included
        self.progress("checking the load balancer" if lb is not None and lb.status == "running" else "starting the load balancer")
        run_compose(cfg.project, self.compose_file, ["up", "-d", "--no-build", LB_SERVICE], on_line=self.log,
                    action="starting the load balancer")
        if removed:
            if cfg.backend.drain_seconds:
                self.progress(f"draining {len(removed)} removed replica(s) for {cfg.backend.drain_seconds}s")
                time.sleep(cfg.backend.drain_seconds)
            self._remove(removed)
        self.wait_balancer(timeout_s)
        return self.status()

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
        docker_client()
        compose_cli()
        self._check_no_foreign_containers("start the stack")
        lb = self._lb()
        self._check_port(lb)
        return lb

    def _check_port(self, lb) -> None:
        cfg = self.config.balancer
        if lb is not None:
            ports = lb.attrs.get("NetworkSettings", {}).get("Ports") or {}
            for b in ports.get("80/tcp") or []:
                if str(b.get("HostPort")) == str(cfg.port):
                    return  # ours already
        if not _port_free(cfg.bind, cfg.port):
            raise PortInUseError(
                f"port {cfg.port} on {cfg.bind} is already in use by another program",
                hint="stop that program, or choose another port: `scaleout up --port P` or balancer.port in scaleout.yaml",
            )

    def reload(self, nginx_text: str, watch_env: str) -> None:
        """Have the running balancer test `nginx_text` (with its replicas' current addresses and
        health, see templates/nginx/lb.sh) and, only if `nginx -t` passes, install it and reload
        gracefully. A failing config is never loaded: the old one keeps serving."""
        lb = self._lb()
        if lb is None:
            raise NotRunningError(f"the load balancer of {self.config.project} is not running", hint="run `scaleout up`")
        stage = self.dir / LB_STAGE_DIR
        atomic_write(stage / "nginx.conf", nginx_text)
        atomic_write(stage / "watch.env", watch_env)
        mount = f"{LB_CONF_MOUNT}/{Path(LB_STAGE_DIR).name}"
        try:
            with engine_errors("reloading nginx"):
                code, out = lb.exec_run(["sh", f"{LB_CONF_MOUNT}/{Path(LB_SCRIPT).name}", "apply", mount])
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        text = out.decode(errors="replace").strip()
        if code != 0:
            from scaleout.errors import BalancerConfigError

            raise BalancerConfigError(
                f"the new nginx configuration was not loaded; the running one keeps serving:\n{text}",
                hint="fix the value in scaleout.yaml that nginx names above, then run `scaleout up` again",
            )
        atomic_write(self.dir / NGINX_CONF, nginx_text)
        atomic_write(self.dir / WATCH_ENV, watch_env)
        self.progress("reloaded nginx gracefully (old workers finish their requests)")

    def routing(self) -> dict[str, bool]:
        """Replica -> whether the balancer sends it traffic now (its health watcher's view)."""
        lb = self._lb()
        if lb is None:
            return {}
        with engine_errors("reading the balancer's routing"):
            code, out = lb.exec_run(["cat", ROUTING_FILE])
        if code != 0:
            return {}
        routed = {}
        for line in out.decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                routed[parts[0]] = parts[1] == "up"
        return routed

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
                    self.progress(f"{svc} is healthy")
            if not pending:
                return
            if time.monotonic() >= deadline:
                st = by_service.get(pending[0])
                if st is None:
                    raise UnhealthyError(f"replica {pending[0]} was never created")
                self._fail_unhealthy(st, f"not healthy after {timeout_s:.0f}s (state {st.state}, health {st.health})")
            time.sleep(0.5)

    def _fail_unhealthy(self, st: ServiceStatus, why: str) -> None:
        client = docker_client()
        logs, health_out = "", ""
        with contextlib.suppress(Exception):
            c = client.containers.get(st.container)
            logs = c.logs(tail=20).decode(errors="replace").rstrip()
            probes = (c.attrs.get("State", {}).get("Health") or {}).get("Log") or []
            if probes:
                health_out = (probes[-1].get("Output") or "").strip()
        msg = f"replica {st.service} {why}."
        if health_out:
            msg += f"\n  last health check said: {health_out[-300:]}"
        msg += "\n  last log lines:\n" + ("\n".join("    " + line for line in logs.splitlines()) or "    (none)")
        raise UnhealthyError(msg, hint="fix the backend, then `scaleout up` again; `scaleout down` removes what started")

    def wait_balancer(self, timeout_s: float) -> None:
        """Poll the published URL until nginx answers and a request reaches a replica."""

        def fail_if_exited() -> None:
            if self._lb() is None:
                st = next((s for s in self.status().services if s.service == LB_SERVICE), None)
                if st is not None and st.state in ("exited", "dead"):
                    self._fail_unhealthy(st, "exited")

        poll_balancer(self.config.url, timeout_s, on_miss=fail_if_exited)

    def down(self, *, volumes: bool = False) -> int:
        """Remove containers and network (volumes only when asked). Returns how many containers went."""
        self._check_no_foreign_containers("remove the stack")
        before = len(self._containers())
        if self.compose_file.exists():
            args = ["down", "--remove-orphans", "--timeout", "10"] + (["--volumes"] if volumes else [])
            self.progress("stopping and removing containers")
            run_compose(self.config.project, self.compose_file, args, on_line=self.log, action="removing the stack")
        # whatever Compose did not know about (a deleted compose file, a renamed service): by label
        left = self._containers()
        if left:
            self._remove([c.name for c in left])
        with engine_errors("removing the network"):
            for net in docker_client().networks.list(filters={"label": f"{LABEL_COMPOSE_PROJECT}={self.config.project}"}):
                with contextlib.suppress(Exception):
                    net.remove()
        return before


def poll_balancer(url: str, timeout_s: float, on_miss: Callable[[], None] | None = None) -> None:
    """Poll `url` until the balancer answers below 500 (a request reached a replica); `on_miss` runs
    after every failed try (it may raise to stop early). Raises UnhealthyError after `timeout_s`."""
    import httpx

    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url + "/", timeout=2.0)
            if r.status_code < 500:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        if on_miss is not None:
            on_miss()
        time.sleep(0.3)
    raise UnhealthyError(f"the load balancer at {url} did not answer within {timeout_s:.0f}s (last: {last})")


def _replica_index(service: str) -> int:
    try:
        return int(service.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 10**6
