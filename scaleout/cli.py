"""The `scaleout` command: parse options, call the core, print. The only module importing typer."""

from __future__ import annotations

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


def _state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State) if ctx.obj is None else ctx.obj


@app.callback()
def _main(
    ctx: typer.Context,
    project_dir: Path = typer.Option(Path("."), "--project-dir", "-C", help="Project folder (where scaleout.yaml is)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Compose and build output."),
) -> None:
    ctx.obj = State(project_dir=project_dir, console=Console(quiet=quiet, verbose=verbose))


def _config(st: State, **overrides):
    from scaleout.config import load_config

    cfg = load_config(st.project_dir)
    return cfg.with_overrides(**overrides) if any(v is not None for v in overrides.values()) else cfg


def _target_option():
    return typer.Option(None, "--target", envvar="SCALEOUT_TARGET", case_sensitive=False,
                        help="compose (this machine) or swarm (docker stack deploy). "
                             "Default: the target of the last `up`, else compose.")


def _replicas_option():
    return typer.Option(None, "--replicas", "-n", min=1, max=32, help="Number of backend replicas (1-32).")


def _port_option():
    return typer.Option(None, "--port", "-p", min=1, max=65535, help="Host port of the load balancer.")


def _strategy_option():
    return typer.Option(None, "--strategy", "-s", case_sensitive=False, help="Load-balancing strategy.")


@app.command()
def init(
    ctx: typer.Context,
    directory: Path = typer.Argument(Path("."), help="Folder to create the project in (created if missing)."),
    template: Template = typer.Option(Template.python, "--template", "-t", case_sensitive=False,
                                      help="Backend template."),
    name: Optional[str] = typer.Option(None, "--name", help="Project name (default: the folder name)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Scaffold a runnable project: scaleout.yaml, a backend with its Dockerfile, a public/ folder."""
    from scaleout.scaffold import init_project

    st = _state(ctx)
    target = directory if directory.is_absolute() else st.project_dir / directory
    written = init_project(target, template.value, name=name, force=force)
    st.console.message(f"created {len(written)} files in {target} ({template.value} backend)")
    st.console.message(f"next: cd {directory} && scaleout up --replicas 3 && scaleout probe")


@app.command()
def render(
    ctx: typer.Context,
    replicas: Optional[int] = _replicas_option(),
    port: Optional[int] = _port_option(),
    strategy: Optional[Strategy] = _strategy_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite generated files that were edited by hand."),
    wait: float = typer.Option(0.0, "--wait", min=0, help="Seconds to wait for another scaleout holding the project lock."),
) -> None:
    """Write .scaleout/docker-compose.yml and .scaleout/nginx/nginx.conf (deterministic, atomic)."""
    from scaleout.files import project_lock, write_plan
    from scaleout.render import plan_for

    st = _state(ctx)
    cfg = _config(st, replicas=replicas, port=port, strategy=_value(strategy))
    with project_lock(cfg.project_dir, wait):
        plan = plan_for("compose", cfg)  # everything computed (and refused) before anything is written
        result = write_plan(cfg.project_dir.resolve(), plan, force=force)
    for rel in sorted(plan.files):
        st.console.message(f"{'wrote    ' if rel in result.written else 'unchanged'} {rel}")


@app.command()
def up(
    ctx: typer.Context,
    replicas: Optional[int] = _replicas_option(),
    port: Optional[int] = _port_option(),
    strategy: Optional[Strategy] = _strategy_option(),
    build: bool = typer.Option(True, "--build/--no-build", help="Build the backend image first."),
    timeout: float = typer.Option(180.0, "--timeout", min=0.001, help="Seconds to wait for replicas and balancer."),
    wait: float = typer.Option(0.0, "--wait", min=0, help="Seconds to wait for another scaleout holding the project lock."),
    force: bool = typer.Option(False, "--force", help="Overwrite generated files that were edited by hand."),
    json_out: bool = typer.Option(False, "--json", help="Print the resulting status as JSON."),
    target: Optional[TargetName] = _target_option(),
    registry: Optional[str] = typer.Option(None, "--registry",
                                           help="swarm: push the built images to HOST/PATH (needed on a multi-node swarm)."),
) -> None:
    """Render, build and start (or rescale) the stack; wait until every replica is healthy."""
    from scaleout import report
    from scaleout.files import project_lock
    from scaleout.render import plan_for
    from scaleout.targets import open_target, remember_strategy, remember_target, resolve_target

    st = _state(ctx)
    con = st.console
    cfg = _config(st, replicas=replicas, port=port, strategy=_value(strategy))
    tgt = resolve_target(cfg.project_dir, _value(target))
    with project_lock(cfg.project_dir, wait):
        stack = open_target(tgt, cfg, progress=con.progress, log=con.log, registry=registry)
        stack.preflight()  # engine, CLI, port: before anything is written or built
        plan = plan_for(tgt, cfg)
        remember_target(cfg.project_dir, tgt)  # before up: a half-started stack is still where `down` looks
        status = stack.up(plan, build=build, timeout_s=timeout, force=force)
        remember_strategy(cfg.project_dir, cfg.balancer.strategy)
    if json_out:
        con.print(report.to_json(status.to_dict()))
    else:
        con.print(report.status_text(status))
        n = len(status.replicas)
        con.print(f"\nready: {cfg.url}/  ({n} replica{'s' if n != 1 else ''}, strategy {cfg.balancer.strategy})")


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
    volumes: bool = typer.Option(False, "--volumes", help="Also remove the project's volumes."),
    wait: float = typer.Option(0.0, "--wait", min=0, help="Seconds to wait for another scaleout holding the project lock."),
    target: Optional[TargetName] = _target_option(),
) -> None:
    """Stop and remove the stack's containers and network (volumes only with --volumes)."""
    from scaleout.files import project_lock
    from scaleout.targets import open_target, resolve_target

    st = _state(ctx)
    con = st.console
    cfg = _config(st)
    with project_lock(cfg.project_dir, wait):
        stack = open_target(resolve_target(cfg.project_dir, _value(target)), cfg, progress=con.progress, log=con.log)
        n = stack.down(volumes=volumes)
    con.message(f"removed project {cfg.project} ({n} container(s){', volumes too' if volumes else ''})")


@app.command()
def export(
    ctx: typer.Context,
    kind: ExportKind = typer.Argument(..., case_sensitive=False,
                                      help="k8s (Kubernetes manifests) or swarm (the stack file `up --target swarm` deploys)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write into (created if missing)."),
    balancer: Optional[str] = typer.Option(None, "--balancer", help="k8s: nginx (scaleout's nginx, default) or ingress (an Ingress)."),
    namespace: Optional[str] = typer.Option(None, "--namespace", help="k8s: namespace of every object (default: default)."),
    image: Optional[str] = typer.Option(None, "--image", help="k8s: the backend image the cluster pulls "
                                        "(required unless backend.image is set)."),
    ingress_class: Optional[str] = typer.Option(None, "--ingress-class", help="k8s with --balancer ingress: spec.ingressClassName."),
    replicas: Optional[int] = _replicas_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite files in --out that scaleout did not write."),
) -> None:
    """Write deployment files for a cluster: Kubernetes manifests or a Swarm stack file."""
    from scaleout.export import check_out_dir, export_files, write_export

    st = _state(ctx)
    cfg = _config(st, replicas=replicas)
    files = export_files(kind.value, cfg, balancer=balancer, namespace=namespace, image=image,
                         ingress_class=ingress_class)
    out_dir = check_out_dir(out if out.is_absolute() else st.project_dir / out, cfg.project_dir)
    result = write_export(out_dir, files, kind=kind.value, force=force)
    for names, label in ((result.written, "wrote    "), (result.unchanged, "unchanged"), (result.removed, "removed  "),
                         (result.kept, "kept (edited)")):
        for rel in names:
            st.console.message(f"{label} {out_dir / rel}")
    st.console.message(f"next: kubectl apply -f {out}" if kind == ExportKind.k8s else
                       "next: scaleout up --target swarm (or set the image variables named in "
                       f"{out / 'stack.yml'} and docker stack deploy)")


def _parse_headers(values: list[str], host: str | None = None) -> tuple[tuple[str, str], ...]:
    """-H 'Name: value' pairs as the probe sends them, and --host as the Host header; UsageError otherwise."""
    from scaleout.probe import request_headers

    return request_headers(values, host)


@app.command()
def probe(
    ctx: typer.Context,
    url: Optional[str] = typer.Option(None, "--url", help="Target (default: this project's balancer)."),
    requests: int = typer.Option(1000, "--requests", "-n", help="Number of requests."),
    concurrency: int = typer.Option(16, "--concurrency", "-c", help="Concurrent keep-alive connections."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d",
                                             help="Run for this many seconds instead of a count."),
    rate: Optional[float] = typer.Option(None, "--rate", help="Open loop: send this many requests per second on a "
                                         "fixed schedule; latency counts from each request's intended send time."),
    workers: int = typer.Option(0, "--workers", help="Load processes (0: automatic, one per core up to 4)."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                            help="Progress bar on stderr (default: on a terminal)."),
    path: str = typer.Option("/", "--path", help="Request path."),
    method: str = typer.Option("GET", "--method", "-X", help="HTTP method."),
    header: List[str] = typer.Option([], "--header", "-H", metavar="'NAME: VALUE'",
                                     help="Extra header (repeatable; not Host, hop-by-hop or framing headers)."),
    host: Optional[str] = typer.Option(None, "--host", help="Send this Host header instead of the URL's host."),
    strategy: Optional[Strategy] = typer.Option(None, "--strategy", case_sensitive=False,
                                                help="Judge the spread for this strategy (default: the deployed one)."),
    sticky_keys: int = typer.Option(0, "--sticky-keys", help="Send K distinct keys (as the cookie, argument or header "
                                    "hash_key names) and check each sticks to one replica."),
    tolerance: float = typer.Option(0.3, "--tolerance", help="Allowed relative deviation from the expected share."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds before one request counts as timed out."),
    no_cache_check: bool = typer.Option(False, "--no-cache-check", help="Skip the cache-header checks."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a target that is not this machine."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    target: Optional[TargetName] = _target_option(),
) -> None:
    """Send load through the balancer, attribute every response to a replica, and judge the spread."""
    from scaleout import report
    from scaleout.probe import ProbeAsk, probe_project

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
    ask = ProbeAsk(url=url, requests=requests, concurrency=concurrency, duration_s=duration, rate=rate,
                   workers=workers, path=path, method=method, headers=_parse_headers(header, host),
                   timeout_s=timeout, strategy=_value(strategy), sticky_keys=sticky_keys, tolerance=tolerance,
                   cache_check=not no_cache_check, allow_remote=allow_remote, target=_value(target))
    show_bar = progress if progress is not None else sys.stderr.isatty()
    bar = report.ProgressBar(sys.stderr, duration) if show_bar else None
    try:
        result = probe_project(st.project_dir, ask, announce=None if json_out else st.console.progress,
                               tick=bar.update if bar else None)
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
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for another scaleout holding the project lock."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Measure requests/s and p99 latency at each replica count (scale-out efficiency), plot them."""
    from scaleout import report
    from scaleout.bench import parse_counts, run_bench
    from scaleout.config import MAX_REPLICAS
    from scaleout.files import atomic_write, project_lock
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
    if resolve_target(cfg.project_dir, None) != "compose":
        raise UsageError("bench: measures the Compose stack on this machine, but this project was last brought up "
                         "on Swarm", hint="`scaleout down`, then `scaleout up --target compose`, then bench")
    with project_lock(cfg.project_dir, wait):
        remember_target(cfg.project_dir, "compose")
        result = run_bench(cfg, counts, render_files=lambda c: plan_for("compose", c), duration_s=duration,
                           warmup_s=warmup, concurrency=concurrency, path=path, workers=workers, build=build,
                           timeout_s=timeout, progress=con.progress, log=con.log)
        remember_strategy(cfg.project_dir, cfg.balancer.strategy)  # what now runs, for a later `probe`
    out = plot if plot is not None else cfg.project_dir / ".scaleout" / "bench.svg"
    out = out if out.is_absolute() else Path.cwd() / out
    atomic_write(out, report.bench_svg(result))
    result.plot = str(out)
    con.print(report.to_json(result.to_dict()) if json_out else report.bench_text(result))
    con.progress(f"the stack is left at {counts[-1]} replica(s); `scaleout up --replicas N` changes it, "
                 "`scaleout down` removes it")


_INTERRUPTED = "interrupted: the stack may be partly changed; `scaleout status` shows it, `scaleout down` removes it"
_GLOBAL_FLAGS = {"-q", "--quiet", "-v", "--verbose"}
_GLOBAL_WITH_VALUE = {"-C", "--project-dir"}


def _hoist_global_options(argv: list[str]) -> list[str]:
    """Accept the global options after the command too (`scaleout up -q` as `scaleout -q up`)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i:])
            break
        if a in _GLOBAL_FLAGS:
            front.append(a)
        elif a in _GLOBAL_WITH_VALUE and i + 1 < len(argv):
            front.extend(argv[i:i + 2])
            i += 1
        elif a.startswith("--project-dir="):
            front.append(a)
        else:
            rest.append(a)
        i += 1
    return front + rest


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and maps ScaleoutError to its exit code."""
    args = _hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
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
