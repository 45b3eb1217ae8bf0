"""The `scaleout` command: parse options, call the core, print. The only module importing typer."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from scaleout.console import Console
from scaleout.errors import ExitCode, ScaleoutError, UsageError

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # plain help: importing rich costs more than the rest of the start-up
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="A production-shaped, load-balanced environment on your own machine, and proof that it works.",
)


class Strategy(str, Enum):
    round_robin = "round_robin"
    least_conn = "least_conn"
    ip_hash = "ip_hash"
    hash = "hash"
    random = "random"


class Template(str, Enum):
    python = "python"
    node = "node"
    python_redis = "python-redis"
    node_redis = "node-redis"


class TargetName(str, Enum):
    compose = "compose"
    swarm = "swarm"


class TrustStore(str, Enum):
    system = "system"
    nss = "nss"


class ExportKind(str, Enum):
    k8s = "k8s"
    swarm = "swarm"


def _value(choice: Enum | None) -> str | None:
    return None if choice is None else str(choice.value)


@dataclass
class State:
    """What the global options set, for every command of one invocation (typer's ctx.obj)."""

    project_dir: Path
    console: Console
    project_name: str | None = None


def _state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State) if ctx.obj is None else ctx.obj


def _print_version(value: bool) -> None:
    if value:
        from scaleout import __version__

        print(f"scaleout {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    project_dir: Path = typer.Option(Path("."), "--project-dir", "-C", help="Project folder (where scaleout.yaml is)."),
    project_name: Optional[str] = typer.Option(None, "--project-name", "-p", envvar="SCALEOUT_PROJECT_NAME",
                                               help="Project name (default: `name:` in scaleout.yaml), as "
                                                    "Compose's -p. The balancer's port is --port."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Compose and build output "
                                 "(-v only before the command: after it, `down -v` is --volumes as in Compose)."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    if project_name is not None and project_name.isdigit():
        raise UsageError(f"--project-name: {project_name!r} looks like a port: -p names the project, as in Compose",
                         hint=f"for the balancer's port use `--port {project_name}`")
    ctx.obj = State(project_dir=project_dir, console=Console(quiet=quiet, verbose=verbose), project_name=project_name)


def _config(st: State, **overrides):
    from scaleout.config.model import load_config

    cfg = load_config(st.project_dir)
    for warning in cfg.warnings:
        st.console.message(f"warning: {warning}")
    overrides["name"] = st.project_name
    return cfg.with_overrides(**overrides) if any(v is not None for v in overrides.values()) else cfg


def _target_option():
    return typer.Option(None, "--target", envvar="SCALEOUT_TARGET", case_sensitive=False,
                        help="compose (this machine) or swarm (docker stack deploy). "
                             "Default: the target of the last `up`, else compose.")


def _replicas_option():
    return typer.Option(None, "--replicas", "-n", min=1, max=32, help="Number of backend replicas (1-32).")


def _port_option():
    # no -p: Compose users read it as the project name (the global -p/--project-name)
    return typer.Option(None, "--port", min=1, max=65535, help="Host port of the load balancer.")


def _lock_wait_option():
    return typer.Option(0.0, "--lock-wait", min=0, metavar="SECONDS",
                        help="Seconds to wait for another scaleout command holding the project lock.")


def _strategy_option():
    return typer.Option(None, "--strategy", "-s", case_sensitive=False, help="Load-balancing strategy.")


def _tls_option():
    return typer.Option(False, "--tls", help="HTTPS with HTTP/2 at the balancer, with a certificate from scaleout's "
                                             "local certificate authority (as balancer.tls: local).")


def _nginx_version(cfg):
    """The balancer image's nginx version when rendering needs it (balancer.tls), else None."""
    if cfg.balancer.tls is None:
        return None
    from scaleout.targets.nginx_version import nginx_version_for
    from scaleout.tls.certs import check_tls_config

    check_tls_config(cfg)  # the user's own files are judged before the engine is asked anything
    return nginx_version_for(cfg)


@app.command()
def init(
    ctx: typer.Context,
    directory: Optional[Path] = typer.Argument(
        None, help="Folder to create the project in (created if missing). With --from: where scaleout.yaml goes "
                   "(default: the Compose file's folder)."),
    template: Optional[Template] = typer.Option(None, "--template", "-t", case_sensitive=False,
                                                help="Backend template (default: python)."),
    name: Optional[str] = typer.Option(None, "--name", help="Project name (default: the folder name)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    from_file: Optional[Path] = typer.Option(
        None, "--from", help="Adopt an existing Compose file: one service becomes the replicated backend, the others "
                             "services of scaleout.yaml. Only scaleout.yaml is written."),
    service: Optional[str] = typer.Option(
        None, "--service", help="With --from: the service to replicate (default: the only one with a build, "
                                "else the only one publishing ports)."),
) -> None:
    """Scaffold a runnable project (scaleout.yaml, a backend with its Dockerfile, a public/ folder), or adopt a
    Compose project with --from."""
    st = _state(ctx)
    if from_file is not None:
        if template is not None:
            raise UsageError("--template: not with --from (the backend is the Compose file's service)")
        _adopt(st, from_file, directory, service=service, name=name, force=force)
        return
    if service is not None:
        raise UsageError("--service: only with --from FILE")
    from scaleout.scaffold import init_project

    directory = directory or Path(".")
    chosen = (template or Template.python).value
    target = directory if directory.is_absolute() else st.project_dir / directory
    written = init_project(target, chosen, name=name or st.project_name, force=force)
    st.console.message(f"created {len(written)} files in {target} ({chosen} backend)")
    st.console.message(f"next: cd {directory} && scaleout up --replicas 3 && scaleout probe")


def _adopt(st: State, from_file: Path, directory: Optional[Path], *, service: Optional[str], name: Optional[str],
           force: bool) -> None:
    """init --from: write scaleout.yaml for a Compose project; the notes go to stderr."""
    from scaleout.adopt import adopt, write_adoption

    compose = from_file if from_file.is_absolute() else st.project_dir / from_file
    target = None
    if directory is not None:
        target = directory if directory.is_absolute() else st.project_dir / directory
    adoption = adopt(compose, service=service, project_dir=target, name=name, source=str(from_file))
    path = write_adoption(adoption, force=force)
    for note in adoption.notes:
        st.console.message(f"note: {note}")
    st.console.message(f"wrote {path} from {from_file}: service {adoption.service} is the replicated backend"
                       + (f", {len(adoption.data.get('services', {}))} other service(s)"
                          if adoption.data.get("services") else ""))
    st.console.message(f"next: cd {adoption.project_dir} && scaleout up && scaleout probe")


@app.command()
def render(
    ctx: typer.Context,
    replicas: Optional[int] = _replicas_option(),
    port: Optional[int] = _port_option(),
    strategy: Optional[Strategy] = _strategy_option(),
    tls: bool = _tls_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite generated files that were edited by hand."),
    lock_wait: float = _lock_wait_option(),
) -> None:
    """Write .scaleout/docker-compose.yml and .scaleout/nginx/nginx.conf (deterministic, atomic)."""
    from scaleout.files import project_lock, write_plan
    from scaleout.render import plan_for

    st = _state(ctx)
    cfg = _config(st, replicas=replicas, port=port, strategy=_value(strategy), tls=tls or None)
    with project_lock(cfg.project_dir, lock_wait):
        # everything computed (and refused) before anything is written
        plan = plan_for("compose", cfg, _nginx_version(cfg))
        result = write_plan(cfg.project_dir.resolve(), plan, force=force)
    for rel in sorted(plan.files):
        st.console.message(f"{'wrote    ' if rel in result.written else 'unchanged'} {rel}")


@app.command()
def up(
    ctx: typer.Context,
    replicas: Optional[int] = _replicas_option(),
    port: Optional[int] = _port_option(),
    strategy: Optional[Strategy] = _strategy_option(),
    tls: bool = _tls_option(),
    build: bool = typer.Option(True, "--build/--no-build", help="Build the backend image first."),
    timeout: float = typer.Option(
        180.0, "--timeout", "--wait-timeout", min=0.001, help="Seconds to wait for replicas and balancer."
    ),
    wait: bool = typer.Option(
        False,
        "--wait",
        help="Accepted as in Compose: `up` always waits until every replica is healthy and the balancer answers.",
    ),
    lock_wait: float = _lock_wait_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite generated files that were edited by hand."),
    json_out: bool = typer.Option(False, "--json", help="Print the resulting status as JSON."),
    target: Optional[TargetName] = _target_option(),
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
    from scaleout.files import project_lock
    from scaleout.render import plan_for
    from scaleout.targets import open_target, remember_strategy, remember_target, resolve_target

    st = _state(ctx)
    con = st.console
    cfg = _config(st, replicas=replicas, port=port, strategy=_value(strategy), tls=tls or None)
    tgt = resolve_target(cfg.project_dir, _value(target))
    with project_lock(cfg.project_dir, lock_wait):
        stack = open_target(tgt, cfg, progress=con.progress, log=con.log, registry=registry)
        stack.preflight()  # engine, CLI, port: before anything is written or built
        plan = plan_for(tgt, cfg, _nginx_version(cfg))
        remember_target(cfg.project_dir, tgt)  # before up: a half-started stack is still where `down` looks
        status = stack.up(plan, build=build, timeout_s=timeout, force=force)
        remember_strategy(cfg.project_dir, cfg.balancer.strategy)
    if json_out:
        con.print(report.to_json(status.to_dict()))
    else:
        con.print(report.status_text(status))
        n = len(status.replicas)
        con.print(f"\nready: {cfg.url}/  ({n} replica{'s' if n != 1 else ''}, strategy {cfg.balancer.strategy})")
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
        _watch_and_roll(
            st, tgt, {"replicas": replicas, "port": port, "strategy": _value(strategy)}, timeout, lock_wait, registry
        )


def _watch_and_roll(
    st: State, tgt: str, overrides: dict, timeout: float, lock_wait: float, registry: str | None
) -> None:
    """The watch loop of `watch` and `up --watch`: each change is built and rolled out by `up`."""
    from scaleout.files import project_lock
    from scaleout.render import plan_for
    from scaleout.targets import open_target, remember_strategy
    from scaleout.watch import watch_backend

    con = st.console
    cfg = _config(st, **overrides)
    if not cfg.backend.builds:
        raise UsageError(
            "watch: backend.image is set in scaleout.yaml: there is no backend folder to watch and build",
            hint="set backend.build to the folder with the backend's Dockerfile",
        )

    def deploy() -> None:
        now = _config(st, **overrides)  # scaleout.yaml may have changed meanwhile
        with project_lock(now.project_dir, lock_wait):
            stack = open_target(tgt, now, progress=con.progress, log=con.log, registry=registry)
            stack.preflight()
            status = stack.up(plan_for(tgt, now, _nginx_version(now)), build=True, timeout_s=timeout)
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


@app.command()
def watch(
    ctx: typer.Context,
    timeout: float = typer.Option(180.0, "--timeout", min=0.001, help="Seconds to wait for each new replica."),
    lock_wait: float = _lock_wait_option(),
    target: Optional[TargetName] = _target_option(),
) -> None:
    """Watch the backend folder (honouring .dockerignore); on every change rebuild and roll it out replica
    by replica. A failed build or update leaves the running version serving. Ctrl-C stops watching (exit 0)
    and leaves the stack running; during a build or update it exits 130 after putting the balancer back."""
    from scaleout.errors import NotRunningError
    from scaleout.targets import open_target, resolve_target

    st = _state(ctx)
    cfg = _config(st)
    tgt = resolve_target(cfg.project_dir, _value(target))
    if not open_target(tgt, cfg).status(routing=False).running:
        raise NotRunningError(
            f"the stack of {cfg.project} is not running", hint="`scaleout up --watch` starts it, then watches"
        )
    _watch_and_roll(st, tgt, {}, timeout, lock_wait, None)


@app.command()
def status(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    target: Optional[TargetName] = _target_option(),
) -> None:
    """Show replicas, their state and health, and the published URL."""
    from scaleout import report
    from scaleout.targets import open_target, resolve_target

    st = _state(ctx)
    cfg = _config(st)
    status = open_target(resolve_target(cfg.project_dir, _value(target)), cfg).status()
    st.console.print(report.to_json(status.to_dict()) if json_out else report.status_text(status))


@app.command()
def down(
    ctx: typer.Context,
    volumes: bool = typer.Option(False, "--volumes", "-v", help="Also remove the project's volumes."),
    lock_wait: float = _lock_wait_option(),
    target: Optional[TargetName] = _target_option(),
) -> None:
    """Stop and remove the stack's containers and network (volumes only with --volumes)."""
    from scaleout.files import project_lock
    from scaleout.targets import open_target, resolve_target

    st = _state(ctx)
    con = st.console
    cfg = _config(st)
    with project_lock(cfg.project_dir, lock_wait):
        stack = open_target(resolve_target(cfg.project_dir, _value(target)), cfg, progress=con.progress, log=con.log)
        n = stack.down(volumes=volumes)
    con.message(f"removed project {cfg.project} ({n} container(s){', volumes too' if volumes else ''})")


def _complete_services(ctx: typer.Context, incomplete: str) -> list[str]:
    """Service names for shell completion, from scaleout.yaml alone (no engine): backend-1..N and lb."""
    from scaleout.config.model import load_config
    from scaleout.layout import LB_SERVICE, replica_name

    root = ctx.find_root().params
    try:
        cfg = load_config(root.get("project_dir") or Path("."))
    except ScaleoutError:
        return [LB_SERVICE] if LB_SERVICE.startswith(incomplete) else []
    given = set(ctx.params.get("services") or ())
    names = [replica_name(i) for i in range(1, cfg.backend.replicas + 1)] + [LB_SERVICE]
    return [n for n in names if n.startswith(incomplete) and n not in given]


def _services_argument(help_text: str, required: bool = False):
    return typer.Argument(
        ... if required else None,
        metavar="SERVICE..." if required else "[SERVICE]...",
        help=help_text,
        autocompletion=_complete_services,
        show_default=False,
    )


def _ops_stack(ctx: typer.Context, command: str):
    from scaleout.targets.actions import compose_stack

    st = _state(ctx)
    return compose_stack(_config(st), command, progress=st.console.progress, log=st.console.log)


@app.command()
def logs(
    ctx: typer.Context,
    services: Optional[List[str]] = _services_argument("backend-N, lb or a dependency service (default: all)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until Ctrl-C."),
    since: Optional[str] = typer.Option(
        None,
        "--since",
        help="Lines since a time: a duration back from now (10m, "
        "1h30m), a date such as 2024-05-01T12:00:00Z, or a Unix timestamp.",
    ),
    tail: str = typer.Option(
        "all", "--tail", "-n", help="Lines from the end of each container's log (a number or all)."
    ),
    timestamps: bool = typer.Option(False, "--timestamps", "-t", help="Show the engine's timestamp of each line."),
    no_color: bool = typer.Option(False, "--no-color", help="No colours (also: NO_COLOR set, or not a terminal)."),
    no_prefix: bool = typer.Option(False, "--no-log-prefix", help="Do not prefix lines with the service name."),
) -> None:
    """Output of the stack's containers, merged in time order, each line prefixed with its service."""
    import os
    import time

    from scaleout import report
    from scaleout.targets.actions import select
    from scaleout.targets.logs import follow as follow_logs
    from scaleout.targets.logs import parse_since, parse_tail, read_history
    from scaleout.targets.runner import engine_errors

    since_s = parse_since(since) if since is not None else None
    lines_per_container = parse_tail(tail)
    st = _state(ctx)
    stack = _ops_stack(ctx, "logs")
    chosen = select(stack, services or [], "logs")
    out = st.console.out
    color = not no_color and not os.environ.get("NO_COLOR") and out.isatty()
    printer = report.LogPrinter(list(chosen), color=color, timestamps=timestamps, prefix=not no_prefix)
    started = time.time()
    try:
        with engine_errors("reading logs"):
            history = read_history(chosen, since=since_s, tail=lines_per_container)
        out.write("".join(printer.format(ln) + "\n" for ln in history))
        out.flush()
        if follow:

            def emit(ln) -> None:
                out.write(printer.format(ln) + "\n")
                out.flush()

            wanted = set(services or [])

            def rescan():
                return [(s, c) for s, c in stack.service_containers() if not wanted or s in wanted]

            with engine_errors("following logs"):
                follow_logs(chosen, history, started, emit, rescan=rescan)
    except KeyboardInterrupt:
        return  # Ctrl-C is how `logs -f` ends: nothing was changed
    except BrokenPipeError:
        # the reader went away (`scaleout logs | head`): stop quietly, and keep Python from failing to flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())


@app.command("exec", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
def exec_(
    ctx: typer.Context,
    service: str = typer.Argument(
        ..., metavar="SERVICE", help="backend-N, lb or a dependency service.", autocompletion=_complete_services
    ),
    command: List[str] = typer.Argument(None, metavar="[--] COMMAND [ARGS]...", help="What to run in it."),
    no_tty: bool = typer.Option(
        False, "--no-TTY", "-T", help="No pseudo-terminal (default: one when stdin is a terminal)."
    ),
    user: Optional[str] = typer.Option(None, "--user", "-u", help="Run as this user."),
    workdir: Optional[str] = typer.Option(None, "--workdir", "-w", help="Working directory inside the container."),
    env: List[str] = typer.Option([], "--env", "-e", metavar="NAME=VALUE", help="Environment variable (repeatable)."),
) -> None:
    """Run a command in one running service's container; exits with the command's exit code."""
    from scaleout.targets.actions import exec_command

    argv = list(command or [])
    if argv[:1] == ["--"]:
        argv = argv[1:]
    stack = _ops_stack(ctx, "exec")
    code = exec_command(
        stack, service, argv, tty=not no_tty and sys.stdin.isatty(), user=user, workdir=workdir, env=env
    )
    raise typer.Exit(code)


@app.command()
def stop(
    ctx: typer.Context,
    services: List[str] = _services_argument("Services to stop, e.g. backend-2.", required=True),
) -> None:
    """Stop replicas (or the balancer) without removing them, for failure drills: the balancer routes
    around a stopped replica. `scaleout start` or `scaleout up` brings them back."""
    from scaleout.targets.actions import select
    from scaleout.targets.actions import stop as stop_services

    stack = _ops_stack(ctx, "stop")
    stop_services(stack, select(stack, services, "stop"))


@app.command()
def start(
    ctx: typer.Context,
    services: List[str] = _services_argument("Stopped services to start, e.g. backend-2.", required=True),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, help="Seconds to wait until they are healthy."),
) -> None:
    """Start stopped services; wait until they are healthy and the balancer routes to them again."""
    from scaleout.targets.actions import select
    from scaleout.targets.actions import start as start_services

    stack = _ops_stack(ctx, "start")
    start_services(stack, select(stack, services, "start"), timeout_s=timeout)


@app.command()
def restart(
    ctx: typer.Context,
    services: List[str] = _services_argument("Services to restart, e.g. backend-2.", required=True),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, help="Seconds to wait until they are healthy."),
) -> None:
    """Restart services; wait until they are healthy and the balancer routes to them again. Replicas
    restart one at a time, each out of the balancer while it is down."""
    from scaleout.targets.actions import restart as restart_services
    from scaleout.targets.actions import select

    stack = _ops_stack(ctx, "restart")
    restart_services(stack, select(stack, services, "restart"), timeout_s=timeout)


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command()
def completion(shell: Shell = typer.Argument(..., case_sensitive=False, help="bash, zsh or fish.")) -> None:
    """Print the shell completion script: `eval "$(scaleout completion bash)"`, or save it where your shell
    loads completions from."""
    from typer.completion import get_completion_script

    print(get_completion_script(prog_name="scaleout", complete_var=_COMPLETE_VAR, shell=shell.value))


@app.command()
def export(
    ctx: typer.Context,
    kind: ExportKind = typer.Argument(
        ...,
        case_sensitive=False,
        help="k8s (Kubernetes manifests) or swarm (the stack file `up --target swarm` deploys).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write into (created if missing)."),
    balancer: Optional[str] = typer.Option(
        None, "--balancer", help="k8s: nginx (scaleout's nginx, default) or ingress (an Ingress)."
    ),
    namespace: Optional[str] = typer.Option(
        None, "--namespace", help="k8s: namespace of every object (default: default)."
    ),
    image: Optional[str] = typer.Option(
        None, "--image", help="k8s: the backend image the cluster pulls (required unless backend.image is set)."
    ),
    ingress_class: Optional[str] = typer.Option(
        None, "--ingress-class", help="k8s with --balancer ingress: spec.ingressClassName."
    ),
    replicas: Optional[int] = _replicas_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite files in --out that scaleout did not write."),
) -> None:
    """Write deployment files for a cluster: Kubernetes manifests or a Swarm stack file."""
    from scaleout.export import check_out_dir, export_files, write_export

    st = _state(ctx)
    cfg = _config(st, replicas=replicas)
    out_dir = check_out_dir(out if out.is_absolute() else st.project_dir / out, cfg.project_dir)
    notes: list[str] = []
    files = export_files(
        kind.value,
        cfg,
        balancer=balancer,
        namespace=namespace,
        image=image,
        ingress_class=ingress_class,
        out=out_dir,
        note=notes.append,
        nginx_version=_nginx_version(cfg),  # balancer.tls: asked of the balancer image on this engine
    )
    result = write_export(out_dir, files, kind=kind.value, force=force)
    for names, label in (
        (result.written, "wrote    "),
        (result.unchanged, "unchanged"),
        (result.removed, "removed  "),
        (result.kept, "kept (edited)"),
    ):
        for rel in names:
            st.console.message(f"{label} {out_dir / rel}")
    for line in notes:  # what the files could not carry: also written as comments in them
        st.console.message(f"note: {line}")
    st.console.message(
        f"next: kubectl apply -f {out}"
        if kind == ExportKind.k8s
        else "next: scaleout up --target swarm (or set the image variables named in "
        f"{out / 'stack.yml'} and docker stack deploy)"
    )


@app.command()
def trust(
    ctx: typer.Context,
    install: bool = typer.Option(False, "--install", help="Perform the steps (the system store needs root)."),
    uninstall: bool = typer.Option(False, "--uninstall", help="Undo them."),
    only: Optional[TrustStore] = typer.Option(
        None, "--only", case_sensitive=False, help="One store only: system (update-ca-certificates) or nss (browsers)."
    ),
) -> None:
    """Trust scaleout's local certificate authority on this machine: print the steps, or perform (--install)
    or undo (--uninstall) them."""
    from scaleout.errors import TrustError
    from scaleout.tls import trust as tr
    from scaleout.tls.certs import data_dir, ensure_ca, find_ca

    if install and uninstall:
        raise UsageError("trust: --install and --uninstall exclude each other")
    con = _state(ctx).console
    stores = (only.value,) if only is not None else tr.STORES
    home = Path.home()
    as_root = tr._is_root()
    if uninstall:
        steps = tr.uninstall_steps(home, stores)
        if not steps:
            con.print("nothing to undo: no store holds scaleout's local certificate authority")
            return
    else:
        ca = ensure_ca() if install else find_ca()
        if ca is None:
            con.print(
                f"no local certificate authority yet; `scaleout trust --install` or `scaleout up --tls` makes "
                f"one in {data_dir()}"
            )
            return
        con.print(f"local certificate authority: {ca.cert_path}\n  {ca.name}\n  SHA-256 {ca.fingerprint}")
        steps = tr.install_steps(ca.cert_path, home, stores)
        if not install:
            con.print("\nTo trust it (`scaleout trust --install` runs these; `--uninstall` undoes them):")
            for step in steps:
                con.print(f"  {step.what}:" + (f"  [cannot run here: {step.missing}]" if step.missing else ""))
                for line in step.shell(as_root):
                    con.print(f"    {line}")
            con.print(
                "Tools with their own list: Node `NODE_EXTRA_CA_CERTS="
                f"{ca.cert_path}`, Python requests/httpx "
                f"`SSL_CERT_FILE={ca.cert_path}`, curl `--cacert {ca.cert_path}`."
            )
            con.print(f"Keep {ca.cert_path.parent}/ private: its key makes certificates this machine trusts.")
            return
    outcomes = tr.perform(steps, undo=uninstall, as_root=as_root)
    for o in outcomes:
        con.print(f"{o.status:8} {o.step.what}" + (f": {o.detail}" if o.detail else ""))
    if any(o.status != "done" for o in outcomes):
        raise TrustError(
            "trust: not every store was " + ("cleaned" if uninstall else "changed") + " (see above)",
            hint="run what a skipped line says, or choose one store with --only",
        )


def _parse_headers(values: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for h in values:
        name, sep, value = h.partition(":")
        if not sep or not name.strip() or any(c in h for c in "\r\n"):
            raise UsageError(f"--header: {h!r} must look like 'Name: value'")
        out.append((name.strip(), value.strip()))
    return tuple(out)


def _cacert_option():
    return typer.Option(None, "--cacert", metavar="FILE",
                        help="HTTPS: trust the authorities in this PEM file (default: the project's local "
                             "authority with balancer.tls: local, else the system's).")


def _insecure_option():
    return typer.Option(False, "--insecure", help="HTTPS: do not verify the certificate (the report says so).")


def _parse_headers(values: list[str], host: str | None = None) -> tuple[tuple[str, str], ...]:
    """-H 'Name: value' pairs as the probe sends them, and --host as the Host header; UsageError otherwise."""
    from scaleout.probe.project import request_headers

    return request_headers(values, host)


@app.command()
def probe(
    ctx: typer.Context,
    url: Optional[str] = typer.Option(None, "--url", help="Target (default: this project's balancer)."),
    requests: int = typer.Option(1000, "--requests", "-n", help="Number of requests."),
    concurrency: int = typer.Option(16, "--concurrency", "-c", help="Concurrent keep-alive connections."),
    duration: Optional[float] = typer.Option(
        None, "--duration", "-d", help="Run for this many seconds instead of a count."
    ),
    rate: Optional[float] = typer.Option(
        None,
        "--rate",
        help="Open loop: send this many requests per second on a "
        "fixed schedule; latency counts from each request's intended send time.",
    ),
    workers: int = typer.Option(0, "--workers", help="Load processes (0: automatic, one per core up to 4)."),
    progress: Optional[bool] = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: on a terminal)."
    ),
    path: str = typer.Option("/", "--path", help="Request path."),
    method: str = typer.Option("GET", "--method", "-X", help="HTTP method."),
    header: List[str] = typer.Option(
        [],
        "--header",
        "-H",
        metavar="'NAME: VALUE'",
        help="Extra header (repeatable; not Host, hop-by-hop or framing headers).",
    ),
    host: Optional[str] = typer.Option(None, "--host", help="Send this Host header instead of the URL's host."),
    strategy: Optional[Strategy] = typer.Option(
        None, "--strategy", case_sensitive=False, help="Judge the spread for this strategy (default: the deployed one)."
    ),
    sticky_keys: int = typer.Option(
        0,
        "--sticky-keys",
        help="Send K distinct keys (as the cookie, argument or header "
        "hash_key names) and check each sticks to one replica.",
    ),
    tolerance: float = typer.Option(0.3, "--tolerance", help="Allowed relative deviation from the expected share."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds before one request counts as timed out."),
    no_cache_check: bool = typer.Option(False, "--no-cache-check", help="Skip the cache-header checks."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a target that is not this machine."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    target: Optional[TargetName] = _target_option(),
    cacert: Optional[str] = _cacert_option(),
    insecure: bool = _insecure_option(),
) -> None:
    """Send load through the balancer, attribute every response to a replica, and judge the spread."""
    from scaleout import report
    from scaleout.probe.project import ProbeAsk, probe_project

    if requests < 1 or requests > 10_000_000:
        raise UsageError(f"--requests: must be between 1 and 10000000 (got {requests})")
    if concurrency < 1 or concurrency > 4096:
        raise UsageError(f"--concurrency: must be between 1 and 4096 (got {concurrency})")
    if duration is not None and not 0 < duration <= 3600:
        raise UsageError(f"--duration: must be between 0 and 3600 seconds (got {duration})")
    if rate is not None and not 0 < rate <= 1_000_000:
        raise UsageError(f"--rate: must be between 0 and 1000000 requests per second (got {rate})")
    if not 0 <= workers <= 64:
        raise UsageError(f"--workers: must be between 0 and 64 (got {workers})")
    if not path.startswith("/") or any(c in path for c in " \r\n"):
        raise UsageError(f"--path: {path!r} must start with / and contain no spaces")
    if not method.isalpha() or not method.isupper():
        raise UsageError(f"--method: {method!r} must be an HTTP method such as GET")
    if not 0 < tolerance <= 10:
        raise UsageError("--tolerance: must be between 0 and 10")
    if sticky_keys < 0:
        raise UsageError(f"--sticky-keys: must be 0 or more (got {sticky_keys})")
    st = _state(ctx)
    ask = ProbeAsk(
        url=url,
        requests=requests,
        concurrency=concurrency,
        duration_s=duration,
        rate=rate,
        workers=workers,
        path=path,
        method=method,
        headers=_parse_headers(header, host),
        timeout_s=timeout,
        strategy=_value(strategy),
        sticky_keys=sticky_keys,
        tolerance=tolerance,
        cache_check=not no_cache_check,
        allow_remote=allow_remote,
        target=_value(target),
        cacert=cacert,
        insecure=insecure,
    )
    show_bar = progress if progress is not None else sys.stderr.isatty()
    bar = report.ProgressBar(sys.stderr, duration) if show_bar else None
    try:
        result = probe_project(
            st.project_dir, ask, announce=None if json_out else st.console.progress, tick=bar.update if bar else None
        )
    finally:
        if bar:
            bar.close()
    st.console.print(report.to_json(result.to_dict()) if json_out else report.probe_text(result))
    if result.verdict != "pass":
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


@app.command()
def bench(
    ctx: typer.Context,
    replicas: str = typer.Option("1,2,4", "--replicas", "-n", help="Replica counts to measure, e.g. 1,2,4."),
    duration: float = typer.Option(5.0, "--duration", "-d", help="Seconds of load per replica count."),
    warmup: float = typer.Option(1.0, "--warmup", help="Seconds of unmeasured load before each measurement."),
    concurrency: int = typer.Option(32, "--concurrency", "-c", help="Concurrent keep-alive connections."),
    path: str = typer.Option("/", "--path", help="Request path."),
    workers: int = typer.Option(0, "--workers", help="Load processes (0: automatic)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="SVG file to write (default: .scaleout/bench.svg)."),
    build: bool = typer.Option(True, "--build/--no-build", help="Build the backend image first."),
    timeout: float = typer.Option(180.0, "--timeout", help="Seconds to wait for replicas at each size."),
    lock_wait: float = _lock_wait_option(),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    cacert: Optional[str] = _cacert_option(),
    insecure: bool = _insecure_option(),
) -> None:
    """Measure requests/s and p99 latency at each replica count (scale-out efficiency), plot them."""
    from scaleout import report
    from scaleout.config.model import MAX_REPLICAS
    from scaleout.files import atomic_write, project_lock
    from scaleout.probe.bench import parse_counts, run_bench
    from scaleout.render import plan_for

    try:
        counts = parse_counts(replicas, MAX_REPLICAS)
    except ValueError as exc:
        raise UsageError(f"--replicas: {exc}") from None
    if not 0 < duration <= 600 or not 0 <= warmup <= 600:
        raise UsageError("--duration and --warmup: must be between 0 and 600 seconds")
    if concurrency < 1 or concurrency > 4096:
        raise UsageError(f"--concurrency: must be between 1 and 4096 (got {concurrency})")
    if not path.startswith("/") or any(c in path for c in " \r\n"):
        raise UsageError(f"--path: {path!r} must start with / and contain no spaces")
    from scaleout.targets import remember_strategy, remember_target, resolve_target

    st = _state(ctx)
    con = st.console
    cfg = _config(st)
    if cfg.balancer.tls is None and (cacert is not None or insecure):
        raise UsageError("--cacert/--insecure: this project's balancer serves plain HTTP (no balancer.tls)")
    if cacert is not None:
        from scaleout.probe.project import tls_settings

        tls_settings("https://localhost", cacert=cacert, insecure=insecure)  # a bad file: refused before `up`
    if resolve_target(cfg.project_dir, None) != "compose":
        raise UsageError(
            "bench: measures the Compose stack on this machine, but this project was last brought up on Swarm",
            hint="`scaleout down`, then `scaleout up --target compose`, then bench",
        )
    with project_lock(cfg.project_dir, lock_wait):
        nginx_version = _nginx_version(cfg)  # balancer.tls: the HTTP/2 syntax of the image's nginx
        remember_target(cfg.project_dir, "compose")
        result = run_bench(
            cfg,
            counts,
            render_files=lambda c: plan_for("compose", c, nginx_version),
            duration_s=duration,
            warmup_s=warmup,
            concurrency=concurrency,
            path=path,
            workers=workers,
            build=build,
            timeout_s=timeout,
            progress=con.progress,
            log=con.log,
            cacert=cacert,
            insecure=insecure,
        )
        remember_strategy(cfg.project_dir, cfg.balancer.strategy)  # what now runs, for a later `probe`
    out = plot if plot is not None else cfg.project_dir / ".scaleout" / "bench.svg"
    out = out if out.is_absolute() else Path.cwd() / out
    atomic_write(out, report.bench_svg(result))
    result.plot = str(out)
    con.print(report.to_json(result.to_dict()) if json_out else report.bench_text(result))
    con.progress(
        f"the stack is left at {counts[-1]} replica(s); `scaleout up --replicas N` changes it, "
        "`scaleout down` removes it"
    )


_INTERRUPTED = "interrupted: the stack may be partly changed; `scaleout status` shows it, `scaleout down` removes it"
_COMPLETE_VAR = "_SCALEOUT_COMPLETE"
# Global options that mean the same wherever they are: hoisted in front of the command.
_GLOBAL_FLAGS = {"-q", "--quiet", "--verbose"}
_GLOBAL_WITH_VALUE = {"-C", "--project-dir", "--project-name"}
# Only before the command, because after it Compose users mean something else: `down -v` removes volumes,
# and `-p` was this tool's port flag once (it is the project name in Compose).
_FRONT_FLAGS = {"-v"}
_FRONT_WITH_VALUE = {"-p"}
# Commands whose arguments after the first positional one belong to a command run elsewhere.
_PASS_THROUGH = {"exec": {"-u", "--user", "-w", "--workdir", "-e", "--env"}}


def _hoist_global_options(argv: list[str]) -> list[str]:
    """Accept the global options after the command too (`scaleout up -q` as `scaleout -q up`), except
    the short ones that would mislead there (see _FRONT_FLAGS), which get a message instead."""
    front: list[str] = []
    rest: list[str] = []
    command: str | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        has_value = i + 1 < len(argv)
        if a == "--":
            rest.extend(argv[i:])
            break
        if command is None:
            if a in _GLOBAL_WITH_VALUE | _FRONT_WITH_VALUE and has_value:
                front.extend(argv[i : i + 2])
                i += 1
            elif a.startswith("-"):
                front.append(a)
            else:
                command = a
                rest.append(a)
        elif command in _PASS_THROUGH and not a.startswith("-"):
            rest.extend(argv[i:])  # the service name, then the command to run in it: untouched
            break
        elif a in _GLOBAL_FLAGS:
            front.append(a)
        elif a in _GLOBAL_WITH_VALUE and has_value:
            front.extend(argv[i : i + 2])
            i += 1
        elif a.startswith(("--project-dir=", "--project-name=")):
            front.append(a)
        elif a == "-p" or (a.startswith("-p") and a[2:].isdigit()):
            raise UsageError(
                f"{a} after the command: -p is the project name (as in Compose), a global option that "
                "goes before the command (`scaleout -p NAME up`)",
                hint="the balancer's host port is --port, e.g. `scaleout up --port 8081`",
            )
        elif a in _FRONT_FLAGS and command != "down":
            raise UsageError(
                "-v after the command: -v means --volumes for `down` (as in Compose), and verbose only "
                "before the command",
                hint=f"`scaleout -v {command} ...` or `scaleout {command} --verbose`",
            )
        elif command == "up" and a == "--wait" and has_value and _is_number(argv[i + 1]):
            raise UsageError(
                "up --wait takes no value: it waits until every replica is healthy (as in Compose), which "
                "`up` always does",
                hint="seconds to wait for health: --wait-timeout S (or --timeout S); "
                "for another scaleout holding the project lock: --lock-wait S",
            )
        else:
            if command in _PASS_THROUGH and a in _PASS_THROUGH[command] and has_value:
                rest.append(a)  # its value may look like a positional argument
                i += 1
                a = argv[i]
            rest.append(a)
        i += 1
    return front + rest


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and maps ScaleoutError to its exit code."""
    # pydantic looks for plugins of its own (an entry-point scan of every installed package, a tenth of a
    # second or more) when the config's models are defined; scaleout uses none
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ.get(_COMPLETE_VAR):
        from typer.completion import completion_init

        completion_init()  # the shells' completion classes (typer registers them only with add_completion)
    try:
        _run(argv)
    finally:
        if argv is None:
            # The process ends here: the interpreter's last garbage collections would walk every object
            # pydantic, the Docker SDK and jinja2 created (half a second on a busy machine, after the work is
            # done). Frozen objects are left to the exit; atexit handlers and flushing still run.
            import gc

            gc.freeze()


def _run(argv: list[str] | None) -> None:
    try:
        args = _hoist_global_options(list(sys.argv[1:] if argv is None else argv))
        # standalone_mode=False: typer returns the code of a typer.Exit (and Exit(130) for Ctrl-C)
        rv = app(args=args, prog_name="scaleout", standalone_mode=False)
    except ScaleoutError as exc:
        _err(f"error: {exc}")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        _err(_INTERRUPTED)
        sys.exit(int(ExitCode.INTERRUPTED))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err("aborted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except _click_exceptions() as exc:
        exc.show()
        sys.exit(int(ExitCode.CONFIG) if exc.exit_code == 2 else exc.exit_code)
    if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:
        if rv == ExitCode.INTERRUPTED:
            _err(_INTERRUPTED)
        sys.exit(rv)


def _click_exceptions() -> tuple[type[Exception], ...]:
    """Usage errors: typer >= 0.20 vendors click, older versions use click itself."""
    found: list[type[Exception]] = []
    try:
        from typer._click.exceptions import ClickException as vendored

        found.append(vendored)
    except ImportError:
        pass
    try:
        from click.exceptions import ClickException

        found.append(ClickException)
    except ImportError:
        pass
    return tuple(found)


if __name__ == "__main__":
    main()
