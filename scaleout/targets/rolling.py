"""Rolling update of the Compose target: replicas whose image or settings changed are replaced while the
balancer keeps at least as many healthy replicas routed as before (max unavailable 0).

Why this scheme. The replicas are the Compose services `backend-1..N`, and Compose only knows how to
*recreate* a service's container: stop the old one, then start the new one, each service at once
(24,381 of 52,594 requests failed that way with 3 replicas and a backend that takes 4 s to boot).
Compose can, however, run a second container of the same service beside the first:
`up --no-recreate --scale backend-K=2 backend-K` creates one new container with the *new* settings and
image, labelled by Compose itself (config hash, image, number), and leaves the old one alone. Once the
old one is removed, the new one simply *is* backend-K to Compose: a later `up` finds one container with
the current configuration and does nothing. So every replica boots once, as in Kubernetes' rolling
update, and no container is created behind Compose's back.

While both containers run, the service name backend-K resolves to both in Docker's DNS, so the balancer
is told about them by container name (always resolvable on the project network), through the same
`nginx -t`-guarded reload as a rescale, and without ever being recreated. First nginx is given every
replica to replace by its old container's name (before any new container runs, so no check ever reaches
a new one by the service name), and one Compose call creates all the new containers without starting
them (`up --no-start`: created containers do not run, do not resolve, and count against no surge). Then,
for each batch of `backend.update.parallelism` replicas (at most `max_surge` new containers at once):

    starting   the engine starts the batch's new containers (no Compose CLI call on this path)
    healthy    the balancer polls each new container's health.path, every 0.1 s for the first 10 s of its
               boot (then every 0.5 s), itself (`lb.sh apply DIR SECONDS POLL NAMES`, not its 1 s watcher);
               with a custom health.command, Docker's health check first (never: the update stops, see below)
    routed     the moment they pass, one `nginx -t`-guarded reload routes the new containers and drops the
               old ones (the new ones are checked once more inside it: a failing one is not installed)
    draining   the old containers finish what they have in flight for drain_seconds, in the background,
               while the next batch already starts (draining containers do not count as surge)
    replaced   the old container is stopped (SIGTERM, its grace period) and removed

At the end nginx is given the rendered configuration again (service names, which now resolve to the
new containers only) and `up` checks that every replica is routed at its new address. On the critical
path per replica there is the engine's start, the boot, at most 0.1 s of polling and one reload; after
the last one, its drain (benchmarks/RESULTS.md, section 6).

If a new container exits or never becomes healthy, the update stops there: the batch's new containers
are removed (they were never routed), and so are those created for later batches; the replicas not yet
replaced keep serving the old version, the ones already replaced keep the new version (each passed its
health check), and `up` fails with exit 5 and the new container's last log lines. Unlike Swarm's
rollback, replicas replaced in earlier batches are not turned back: the old image is no longer what the
project's tag names.

A new replica is "needed" when the image ID the running container uses differs from the one the
backend's tag names now (a rebuild), or its `com.docker.compose.config-hash` label differs from
what `compose config --hash` computes for the service now (its settings changed). Both are Compose's
own notion of a change, computed by the Compose CLI that is in use.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from scaleout.errors import ScaleoutError, StackError, UnhealthyError
from scaleout.render.common import Replica, replicas_of
from scaleout.targets.health import container_last_words
from scaleout.targets.views import ContainerView

LABEL_CONFIG_HASH = "com.docker.compose.config-hash"
LABEL_CONTAINER_NUMBER = "com.docker.compose.container-number"
ROUTE_TIMEOUT_S = 30.0  # custom health.command: Docker said healthy, the balancer's check should pass at once
SWAP_SLICE_S = 3.0  # the balancer polls a new container this long per call; its Docker state is read between
FAST_POLL_S = 10.0  # the balancer polls a new container every 0.1 s this long after its start, then every 0.5 s


def container_number(view: ContainerView) -> int:
    value = view.labels.get(LABEL_CONTAINER_NUMBER, "")
    return int(value) if value.isdigit() else 0


def is_current(view: ContainerView, want_hash: str | None, want_image: str | None) -> bool:
    """Whether a replica's container runs what the configuration asks for now (unknowns count as current)."""
    if want_image and view.image_id != want_image:
        return False
    return not (want_hash and view.labels.get(LABEL_CONFIG_HASH) != want_hash)


@dataclass
class UpdatePlan:
    """What `up` does with each wanted replica of a running stack."""

    start: list[str] = field(default_factory=list)  # services Compose starts (missing, or not running)
    roll: list[str] = field(default_factory=list)  # running but outdated: replaced beside the old container
    keep: list[str] = field(default_factory=list)  # running and current: left alone
    retire: list[str] = field(default_factory=list)  # running extra containers (an interrupted update): drained
    discard: list[str] = field(default_factory=list)  # stopped extra containers: removed at once

    @property
    def changes(self) -> bool:
        return bool(self.start or self.roll or self.retire or self.discard)


def plan_update(wanted: Iterable[str], by_service: dict[str, list[ContainerView]], hashes: dict[str, str],
                image_id: str | None) -> UpdatePlan:
    """Sort the wanted replicas by what they need. A service with more than one container (an update that
    was interrupted) keeps one: running before stopped, current before outdated, newest first."""
    plan = UpdatePlan()
    for svc in wanted:
        views = by_service.get(svc, [])
        if not views:
            plan.start.append(svc)
            continue
        want_hash = hashes.get(svc)

        def rank(v: ContainerView, want_hash: str | None = want_hash) -> tuple:
            return (v.running, v.ready, is_current(v, want_hash, image_id), container_number(v))

        keeper, *extras = sorted(views, key=rank, reverse=True)
        for v in extras:
            (plan.retire if v.running else plan.discard).append(v.name)
        if not keeper.running:
            plan.start.append(svc)
        elif is_current(keeper, want_hash, image_id):
            plan.keep.append(svc)
        else:
            plan.roll.append(svc)
    return plan


def batches(services: list[str], parallelism: int, max_surge: int) -> list[list[str]]:
    """Groups replaced together: each replica of a batch needs one new container beside its old one."""
    size = max(1, min(parallelism, max_surge))
    return [services[i:i + size] for i in range(0, len(services), size)]


def upstream(config, entries: dict[str, list[str]]) -> list[Replica]:
    """The upstream's servers: each replica by its service name, or, while it is being replaced, by the
    names of its containers (with the replica's weight and backup flag)."""
    out = []
    for r in replicas_of(config):
        for name in entries.get(r.name, [r.name]):
            out.append(Replica(name=name, weight=r.weight, backup=r.backup))
    return out


def parse_hashes(lines: Iterable[str]) -> dict[str, str]:
    """`compose config --hash=*` output ("service hash" per line; warnings and other lines ignored)."""
    out = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and len(parts[1]) == 64 and all(c in "0123456789abcdef" for c in parts[1]):
            out[parts[0]] = parts[1]
    return out


class RollingUpdate:
    """Replaces `services` of a running Compose stack batch by batch (see the module docstring). `stack`
    is the ComposeStack; `nginx_text`/`watch_env` are the rendered files nginx ends with."""

    def __init__(self, stack, nginx_text: str, watch_env: str, timeout_s: float) -> None:
        self.stack = stack
        self.config = stack.config
        self.progress = stack.progress
        self.final = (nginx_text, watch_env)
        self.timeout_s = timeout_s
        self.entries: dict[str, list[str]] = {}  # replica -> container names nginx routes to meanwhile
        self.draining: list = []  # threads that stop and remove old containers once they have drained
        self.errors: list[ScaleoutError] = []  # from those threads
        self.created: dict[str, str] = {}  # replica -> its new container, created and not started yet
        self.reloaded = False
        self.replaced: list[str] = []
        self.client = None  # the Docker SDK client, made on first use
        self.old: dict[str, str] = {}  # replica -> its running container, once `prepare` read them
        self.creating = None  # the Future of `prepare`'s Compose call

    # --- engine ---------------------------------------------------------------------------------
    def _views(self, services: Iterable[str]) -> dict[str, list[ContainerView]]:
        wanted = set(services)
        out: dict[str, list[ContainerView]] = {svc: [] for svc in wanted}
        for v in (ContainerView.of(c) for c in self.stack.project_containers()):
            if v.service in wanted:
                out[v.service].append(v)
        return out

    def _apply(self, once_healthy: tuple[list[str], float, float] | None = None) -> bool:
        """Have the balancer route to `self.entries` (`nginx -t` first; the files on disk stay the rendered
        ones: this configuration only lives while the update runs). With `once_healthy`, only once the
        balancer's own check passes for those names (see ComposeStack.reload): whether it was installed."""
        from scaleout.render.nginx import render_nginx, render_watch_env
        from scaleout.replay.secret import read_secret

        servers = upstream(self.config, self.entries)
        version = None
        if self.config.balancer.tls is not None:  # the HTTPS server's HTTP/2 syntax depends on it (cached)
            from scaleout.targets.nginx_version import nginx_version_for

            version = nginx_version_for(self.config)
        done = self.stack.balancer.reload(render_nginx(self.config, nginx_version=version, replicas=servers,
                                             pin=read_secret(self.config.project_dir)),
                                 render_watch_env(self.config, servers), record=False, quiet=True,
                                 once_healthy=once_healthy)
        self.reloaded = self.reloaded or done
        return done

    def _remove(self, names: list[str]) -> None:
        """Stop (SIGTERM: a replica finishes its in-flight requests) and remove, all at once."""
        from scaleout.targets.removal import stop_and_remove

        stop_and_remove(names)

    def _inspect(self, name: str):
        from scaleout.targets.runner import docker_client, engine_errors

        if self.client is None:  # one client for the update: each new one pings the engine first
            self.client = docker_client()
        with engine_errors(f"inspecting {name}"):
            return self.client.containers.get(name)

    # --- steps ----------------------------------------------------------------------------------
    def prepare(self, services: list[str]) -> None:
        """Begin creating the new containers (one Compose call, in a thread) while `up` still reloads and
        checks the balancer: created containers neither run nor resolve, so nothing routes to them, and
        `run` then only waits for the call. `abandon` removes them if `up` fails before `run`."""
        self.old = self._old_containers(services)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="create")
        self.creating = pool.submit(self._create, services, self.old)
        pool.shutdown(wait=False)

    def abandon(self) -> None:
        """`up` failed between `prepare` and `run`: whatever was created goes (best effort)."""
        if self.creating is not None:
            with contextlib.suppress(ScaleoutError):
                self.creating.result()
            self.creating = None
        with contextlib.suppress(ScaleoutError):
            self._discard(list(self.created.values()))

    def run(self, services: list[str]) -> None:
        upd = self.config.backend.update
        groups = batches(services, upd.parallelism, upd.max_surge)
        self.progress(f"rolling update of {len(services)} replica(s) ({', '.join(services)}), "
                      f"{len(groups[0])} at a time; the old containers serve until their replacement is routed")
        try:
            old = self.old or self._old_containers(services)
            # Each replica's old container is named in nginx before any new container runs: from then
            # on the service name resolves to both, and the balancer must keep checking the old one.
            # Creating the new containers starts none of them: both happen at once.
            for svc in services:
                self.entries[svc] = [old[svc]]
            with ThreadPoolExecutor(max_workers=1) as pool:
                creating, self.creating = self.creating, None
                pinned = pool.submit(self._apply)
                try:
                    if creating is not None:
                        creating.result()  # begun by `prepare`
                    else:
                        self._create(services, old)
                finally:
                    pinned.result()
            for group in groups:
                self._batch(group, old)
            self._reap()
        except BaseException:
            with contextlib.suppress(ScaleoutError):
                self._reap()  # old containers already out of nginx go in any case
            self._discard(list(self.created.values()))  # created for later batches, never started
            if self.reloaded:
                with contextlib.suppress(ScaleoutError):  # the update's own error is the one to report
                    self._finish(check=False)
            raise
        if self.reloaded:
            self._finish(check=True)

    def _old_containers(self, services: list[str]) -> dict[str, str]:
        old = {}
        for svc, views in self._views(services).items():
            running = [v for v in views if v.running]
            if len(running) != 1:
                raise StackError(f"replica {svc}: expected one running container to replace, found {len(running)}",
                                 hint="run `scaleout up` again")
            old[svc] = running[0].name
        return old

    def _create(self, services: list[str], old: dict[str, str]) -> None:
        """One Compose call creates every new container (not started: nothing runs, nothing resolves yet),
        so that each batch then only has to start its own, at once, through the engine."""
        args = ["up", "--no-start", "--no-deps", "--no-build", "--no-recreate"]
        for svc in services:
            args += ["--scale", f"{svc}=2"]
        wrong = []
        try:
            self.stack.run_cli([*args, *services], "creating the new replicas")
        finally:  # whatever Compose created is known, so that a failure removes it
            for svc, views in self._views(services).items():
                fresh = [v.name for v in views if v.name != old[svc]]
                if len(fresh) == 1:
                    self.created[svc] = fresh[0]
                else:
                    self._discard(fresh)
                    wrong.append(f"{svc}: {len(fresh)}")
        if wrong:
            raise StackError(f"Compose did not create one new container beside each old one ({', '.join(wrong)})",
                             hint="run `scaleout up -v` to see Compose's output")

    def _batch(self, group: list[str], old: dict[str, str]) -> None:
        from scaleout.targets.runner import engine_errors

        new = {svc: self.created.pop(svc) for svc in group}
        # With the default health check (an HTTP GET of health.path) the balancer's own check is as strict
        # as Docker's: the balancer polls the new container's health path often right after its start
        # and, the moment it passes, routes it and drops the old one in a single reload, a Docker health
        # interval sooner. A custom health.command runs only inside the container, and the balancer counts
        # any HTTP answer: Docker decides first.
        by_balancer = self.config.backend.health.command is None
        try:
            for svc, name in new.items():
                self.progress(f"{svc}: starting the new version beside {old[svc]}")
                c = self._inspect(name)
                with engine_errors(f"starting {name}"):
                    c.start()
            started = time.monotonic()
            if not by_balancer:
                self._wait_healthy(new)
            for svc in group:
                self.entries[svc] = [new[svc]]
            self._swap(new, started, report_healthy=by_balancer)
        except BaseException:
            for svc in group:
                self.entries[svc] = [old[svc]]
            with contextlib.suppress(ScaleoutError):  # the update's own error is the one to report
                self._apply()  # an interrupted swap may have been installed: back to the old containers
            self._discard(list(new.values()))
            raise
        drain = self.config.backend.drain_seconds
        for svc in group:
            self.progress(f"{svc}: {old[svc]} is out of the balancer, draining for {drain}s")
            self._drain(svc, old[svc])

    def _swap(self, new: dict[str, str], started: float, report_healthy: bool) -> None:
        """Until the balancer routes every new container instead of its old one: lb.sh polls the new ones'
        health path (every 0.1 s for the first seconds of a boot, then every 0.5 s) and installs the
        configuration the moment all pass. Between its polls (a few seconds each) their Docker state is
        checked: one that exits, turns unhealthy or is not healthy before the timeout stops the update."""
        path = self.config.backend.health.path
        deadline = time.monotonic() + (self.timeout_s if report_healthy else ROUTE_TIMEOUT_S)
        while True:
            now = time.monotonic()
            poll = 0.1 if now - started < FAST_POLL_S else 0.5
            if self._apply(once_healthy=(list(new.values()), min(SWAP_SLICE_S, max(1.0, deadline - now)), poll)):
                break
            for svc, name in new.items():
                c = self._inspect(name)
                v = ContainerView.of(c)
                if v.state in ("exited", "dead") or v.health == "unhealthy":
                    why = "exited" if v.state in ("exited", "dead") else "is unhealthy (its health check keeps failing)"
                    self._fail(svc, c, why)
                if time.monotonic() >= deadline:
                    why = (f"was not healthy after {self.timeout_s:.0f}s (state {v.state}, health {v.health})"
                           if report_healthy else
                           f"passes Docker's health check but not the balancer's after {ROUTE_TIMEOUT_S:.0f}s: "
                           f"it must answer {path} on its port to other containers")
                    self._fail(svc, c, why)
        for svc, name in new.items():
            if report_healthy:
                self.progress(f"{svc}: {name} is healthy (the balancer's check of {path} passes)")
            self.progress(f"{svc}: routed to {name}")

    def _discard(self, names: list[str]) -> None:
        self._remove(names)
        for svc in [s for s, n in self.created.items() if n in names]:
            del self.created[svc]

    def _drain(self, svc: str, name: str) -> None:
        """Stop and remove an old container once its drain time is over, in the background: the next
        batch starts meanwhile, and stopping (the replica's own shutdown) takes time of its own."""
        import threading

        deadline = time.monotonic() + self.config.backend.drain_seconds

        def drain() -> None:
            try:
                time.sleep(max(0.0, deadline - time.monotonic()))
                self._remove([name])
                self.replaced.append(svc)
                self.progress(f"{svc}: replaced ({name} stopped and removed)")
            except ScaleoutError as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=drain, name=f"drain {name}")
        thread.start()
        self.draining.append(thread)

    def _reap(self) -> None:
        """Wait until every draining old container is stopped and removed; the first error, if any."""
        while self.draining:
            self.draining.pop(0).join()
        if self.errors:
            raise self.errors[0]

    def _wait_healthy(self, new: dict[str, str]) -> None:
        """Until every new container is running and healthy; the first one that exits or turns unhealthy
        (or the timeout) stops the update with its last log lines."""
        from scaleout.targets.podman import health_driver
        from scaleout.targets.runner import docker_client

        deadline = time.monotonic() + self.timeout_s
        pending = dict(new)
        driver = health_driver(docker_client())  # an engine that runs no checks itself: scaleout runs them
        while pending:
            for svc, name in list(pending.items()):
                c = self._inspect(name)
                if driver is not None:
                    driver.drive([c])
                    c = self._inspect(name)
                v = ContainerView.of(c)
                if v.ready:
                    self.progress(f"{svc}: {name} is healthy")
                    del pending[svc]
                elif v.state in ("exited", "dead") or v.health == "unhealthy":
                    why = "exited" if v.state in ("exited", "dead") else "is unhealthy (its health check keeps failing)"
                    self._fail(svc, c, why)
                elif time.monotonic() >= deadline:
                    self._fail(svc, c, f"not healthy after {self.timeout_s:.0f}s (state {v.state}, health {v.health})")
            if pending:
                time.sleep(0.25)

    def _fail(self, svc: str, container, why: str) -> None:
        msg = (f"rolling update stopped: the new container of {svc} ({container.name}) {why}; "
               "the replicas not yet replaced keep serving the running version." + container_last_words(container))
        raise UnhealthyError(msg, hint="fix the backend, then `scaleout up` again")

    def _finish(self, check: bool) -> None:
        """Back to the rendered configuration (service names: each now resolves to one container)."""
        self.entries.clear()
        self.stack.balancer.reload(*self.final, quiet=True)
        if not check:
            return
        want = self.replaced
        addresses = {s.service: s.address for s in self.stack.status(routing=False).replicas}
        deadline = time.monotonic() + ROUTE_TIMEOUT_S
        while True:
            routing = self.stack.balancer.routing_addresses()
            wrong = [n for n in want if routing.get(n) != addresses.get(n)]
            if not wrong:
                return
            if time.monotonic() >= deadline:
                raise UnhealthyError(f"after the rolling update the balancer does not route {', '.join(wrong)} "
                                     "at its new address", hint="`scaleout status` shows what runs")
            time.sleep(0.2)

