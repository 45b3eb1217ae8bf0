"""`probe` (load through the balancer, judged) and `bench` (throughput at each replica count)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from scaleout.cli.common import (
    Strategy,
    TargetName,
    balancer_nginx_version,
    cacert_option,
    insecure_option,
    load_for,
    lock_wait_option,
    state_of,
    target_option,
    value_of,
)
from scaleout.errors import ExitCode, UsageError


def _parse_headers(values: list[str], host: str | None = None) -> tuple[tuple[str, str], ...]:
    """-H 'Name: value' pairs as the probe sends them, and --host as the Host header; UsageError otherwise."""
    from scaleout.probe.project import request_headers

    return request_headers(values, host)


def _check_load_shape(concurrency: int, path: str, method: str = "GET") -> None:
    """The limits `probe` and `bench` share: connections, and a request line the load engine can send."""
    from scaleout.probe.project import check_request_line

    if concurrency < 1 or concurrency > 4096:
        raise UsageError(f"--concurrency: must be between 1 and 4096 (got {concurrency})")
    check_request_line(method, path)


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
    target: Optional[TargetName] = target_option(),
    cacert: Optional[str] = cacert_option(),
    insecure: bool = insecure_option(),
) -> None:
    """Send load through the balancer, attribute every response to a replica, and judge the spread."""
    from scaleout import report
    from scaleout.probe.project import ProbeAsk, probe_project

    if requests < 1 or requests > 10_000_000:
        raise UsageError(f"--requests: must be between 1 and 10000000 (got {requests})")
    _check_load_shape(concurrency, path, method)
    if duration is not None and not 0 < duration <= 3600:
        raise UsageError(f"--duration: must be between 0 and 3600 seconds (got {duration})")
    if rate is not None and not 0 < rate <= 1_000_000:
        raise UsageError(f"--rate: must be between 0 and 1000000 requests per second (got {rate})")
    if not 0 <= workers <= 64:
        raise UsageError(f"--workers: must be between 0 and 64 (got {workers})")
    if not 0 < tolerance <= 10:
        raise UsageError("--tolerance: must be between 0 and 10")
    if sticky_keys < 0:
        raise UsageError(f"--sticky-keys: must be 0 or more (got {sticky_keys})")
    st = state_of(ctx)
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
        strategy=value_of(strategy),
        sticky_keys=sticky_keys,
        tolerance=tolerance,
        cache_check=not no_cache_check,
        allow_remote=allow_remote,
        target=value_of(target),
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
    lock_wait: float = lock_wait_option(),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    cacert: Optional[str] = cacert_option(),
    insecure: bool = insecure_option(),
) -> None:
    """Measure requests/s and p99 latency at each replica count (scale-out efficiency), plot them."""
    from scaleout import report
    from scaleout.config.sections import MAX_REPLICAS
    from scaleout.files import atomic_write, project_lock
    from scaleout.probe.bench import parse_counts, run_bench
    from scaleout.render import plan_for

    try:
        counts = parse_counts(replicas, MAX_REPLICAS)
    except ValueError as exc:
        raise UsageError(f"--replicas: {exc}") from None
    if not 0 < duration <= 600 or not 0 <= warmup <= 600:
        raise UsageError("--duration and --warmup: must be between 0 and 600 seconds")
    _check_load_shape(concurrency, path)
    from scaleout.targets import remember_strategy, remember_target, resolve_target

    st = state_of(ctx)
    con = st.console
    cfg = load_for(st)
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
        nginx_version = balancer_nginx_version(cfg)  # balancer.tls: the HTTP/2 syntax of the image's nginx
        remember_target(cfg.project_dir, "compose")
        from scaleout.replay.secret import ensure_secret

        pin = ensure_secret(cfg.project_dir)  # the stack bench leaves up keeps the replay pin route, as `up` does
        result = run_bench(
            cfg,
            counts,
            render_files=lambda c: plan_for("compose", c, nginx_version, pin=pin),
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app, in the order `--help` lists them."""
    app.command()(probe)
    app.command()(bench)
