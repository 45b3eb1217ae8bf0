"""The stack's lifecycle: `up`, `watch`, `status`, `down`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from scaleout.cli.common import (
    State,
    Strategy,
    TargetName,
    balancer_nginx_version,
    load_for,
    lock_wait_option,
    port_option,
    replicas_option,
    state_of,
    strategy_option,
    target_option,
    tls_option,
    value_of,
)
from scaleout.errors import UsageError

if TYPE_CHECKING:
    from scaleout.config.model import Overrides


def up(
    ctx: typer.Context,
    replicas: Optional[int] = replicas_option(),
    port: Optional[int] = port_option(),
    strategy: Optional[Strategy] = strategy_option(),
    tls: bool = tls_option(),
    build: bool = typer.Option(True, "--build/--no-build", help="Build the backend image first."),
    timeout: float = typer.Option(
        180.0, "--timeout", "--wait-timeout", min=0.001, help="Seconds to wait for replicas and balancer."
    ),
    wait: bool = typer.Option(
        False,
        "--wait",
        help="Accepted as in Compose: `up` always waits until every replica is healthy and the balancer answers.",
    ),
    lock_wait: float = lock_wait_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite generated files that were edited by hand."),
    json_out: bool = typer.Option(False, "--json", help="Print the resulting status as JSON."),
    target: Optional[TargetName] = target_option(),
    registry: Optional[str] = typer.Option(
        None, "--registry", help="swarm: push the built images to HOST/PATH (needed on a multi-node swarm)."
    ),
    watch_: bool = typer.Option(
        False,
        "--watch",
        help="Then keep watching the backend folder: rebuild and roll out every change (as `scaleout watch`).",
    ),
) -> None:
    """Render, build and start, rescale or update the stack (a rolling update when the backend changed);
    wait until every replica is healthy."""
    from scaleout import report
    from scaleout.config.model import Overrides
    from scaleout.files import project_lock
    from scaleout.render import plan_for
    from scaleout.targets import open_target, remember_strategy, remember_target, resolve_target

    st = state_of(ctx)
    con = st.console
    overrides = Overrides(replicas=replicas, port=port, strategy=value_of(strategy), tls=tls or None)
    cfg = load_for(st, overrides)
    tgt = resolve_target(cfg.project_dir, value_of(target))
    with project_lock(cfg.project_dir, lock_wait):
        stack = open_target(tgt, cfg, progress=con.progress, log=con.log, registry=registry)
        stack.preflight()  # engine, CLI, port: before anything is written or built
        pin = _pin(tgt, cfg)
        plan = plan_for(tgt, cfg, balancer_nginx_version(cfg), pin=pin)  # checks the project before any write
        if pin is not None:
            from scaleout.replay.secret import save_secret

            save_secret(cfg.project_dir, pin)
        remember_target(cfg.project_dir, tgt)  # before up: a half-started stack is still where `down` looks
        status = stack.up(plan, build=build, timeout_s=timeout, force=force)
        remember_strategy(cfg.project_dir, cfg.balancer.strategy)
    if json_out:
        con.print(report.to_json(status.to_dict()))
    else:
        con.print(report.status_text(status))
        n = len(status.replicas)
        con.print(f"\nready: {cfg.url}/  ({n} replica{'s' if n != 1 else ''}, strategy {cfg.balancer.strategy})")
        if status.timings:
            from scaleout.targets.timing import summary

            con.print(f"took {summary(status.timings)}")
        if cfg.balancer.http_port is not None:
            host = cfg.url.split("://", 1)[1].rsplit(":", 1)[0]
            con.print(f"plain HTTP on http://{host}:{cfg.balancer.http_port}/ redirects there")
        if cfg.balancer.tls == "local":
            from scaleout.tls.certs import data_dir

            con.print(
                f"certificate from scaleout's local authority ({data_dir() / 'ca.pem'}); "
                "`scaleout trust` shows how to make browsers trust it"
            )
    if watch_:
        _watch_and_roll(st, tgt, overrides, timeout, lock_wait, registry)  # every rebuild with the same flags


def _pin(tgt: str, cfg) -> str | None:
    """The replay pin secret (made on first `up`) on Compose and Swarm."""
    if tgt not in ("compose", "swarm"):
        return None
    from scaleout.replay.secret import current_or_new

    return current_or_new(cfg.project_dir)


def _watch_and_roll(
    st: State, tgt: str, overrides: Overrides | None, timeout: float, lock_wait: float, registry: str | None
) -> None:
    """The watch loop of `watch` and `up --watch`: each change is built and rolled out by `up`."""
    from scaleout.files import project_lock
    from scaleout.render import plan_for
    from scaleout.targets import open_target, remember_strategy
    from scaleout.watch import watch_backend

    con = st.console
    cfg = load_for(st, overrides)
    if not cfg.backend.builds:
        raise UsageError(
            "watch: backend.image is set in scaleout.yaml: there is no backend folder to watch and build",
            hint="set backend.build to the folder with the backend's Dockerfile",
        )

    def deploy() -> None:
        now = load_for(st, overrides)  # scaleout.yaml may have changed meanwhile
        with project_lock(now.project_dir, lock_wait):
            stack = open_target(tgt, now, progress=con.progress, log=con.log, registry=registry)
            stack.preflight()
            pin = _pin(tgt, now)
            plan = plan_for(tgt, now, balancer_nginx_version(now), pin=pin)
            if pin is not None:
                from scaleout.replay.secret import save_secret

                save_secret(now.project_dir, pin)
            status = stack.up(plan, build=True, timeout_s=timeout)
            remember_strategy(now.project_dir, now.balancer.strategy)
        n = len(status.replicas)
        con.message(f"ready: {now.url}/  ({n} replica{'s' if n != 1 else ''})")

    watch_backend(
        cfg.project_dir.resolve() / cfg.backend.build,
        cfg.backend.dockerfile,
        deploy,
        progress=con.progress,
        message=con.message,
    )


def watch(
    ctx: typer.Context,
    timeout: float = typer.Option(180.0, "--timeout", min=0.001, help="Seconds to wait for each new replica."),
    lock_wait: float = lock_wait_option(),
    target: Optional[TargetName] = target_option(),
) -> None:
    """Watch the backend folder (honouring .dockerignore); on every change rebuild and roll it out replica
    by replica. A failed build or update leaves the running version serving. Ctrl-C stops watching (exit 0)
    and leaves the stack running; during a build or update it exits 130 after putting the balancer back."""
    from scaleout.errors import NotRunningError
    from scaleout.targets import open_target, resolve_target

    st = state_of(ctx)
    cfg = load_for(st)
    tgt = resolve_target(cfg.project_dir, value_of(target))
    if not open_target(tgt, cfg).status(routing=False).running:
        raise NotRunningError(
            f"the stack of {cfg.project} is not running", hint="`scaleout up --watch` starts it, then watches"
        )
    _watch_and_roll(st, tgt, None, timeout, lock_wait, None)


def status(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    target: Optional[TargetName] = target_option(),
) -> None:
    """Show replicas, their state and health, and the published URL."""
    from scaleout import report
    from scaleout.targets import open_target, resolve_target

    st = state_of(ctx)
    cfg = load_for(st)
    status = open_target(resolve_target(cfg.project_dir, value_of(target)), cfg).status()
    st.console.print(report.to_json(status.to_dict()) if json_out else report.status_text(status))


def down(
    ctx: typer.Context,
    volumes: bool = typer.Option(False, "--volumes", "-v", help="Also remove the project's volumes."),
    lock_wait: float = lock_wait_option(),
    target: Optional[TargetName] = target_option(),
) -> None:
    """Stop and remove the stack's containers and network (volumes only with --volumes)."""
    from scaleout.files import project_lock
    from scaleout.targets import open_target, resolve_target

    st = state_of(ctx)
    con = st.console
    cfg = load_for(st)
    with project_lock(cfg.project_dir, lock_wait):
        stack = open_target(resolve_target(cfg.project_dir, value_of(target)), cfg, progress=con.progress, log=con.log)
        n = stack.down(volumes=volumes)
        from scaleout.replay.secret import forget_secret

        forget_secret(cfg.project_dir)  # the next `up` makes a new pin secret
    con.message(f"removed project {cfg.project} ({n} container(s){', volumes too' if volumes else ''})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app, in the order `--help` lists them."""
    app.command()(up)
    app.command()(watch)
    app.command()(status)
    app.command()(down)
