"""The `scaleout` command: parse options, call the core, print. The only module importing typer."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from scaleout.errors import ExitCode, ScaleoutError, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="A production-shaped, load-balanced environment on your own machine, and proof that it works.",
)

_state = {"dir": Path("."), "quiet": False, "verbose": False, "t0": time.monotonic()}


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _progress(msg: str) -> None:
    if not _state["quiet"]:
        _err(f"==> [{time.monotonic() - _state['t0']:5.1f}s] {msg}")


def _log(line: str) -> None:
    if _state["verbose"]:
        _err(f"    | {line}")


@app.callback()
def _main(
    project_dir: Path = typer.Option(Path("."), "--project-dir", "-C", help="Project folder (where scaleout.yaml is)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Compose and build output."),
) -> None:
    _state.update(dir=project_dir, quiet=quiet, verbose=verbose, t0=time.monotonic())


def _config(**overrides):
    from scaleout.config import load_config

    cfg = load_config(_state["dir"])
    return cfg.with_overrides(**overrides) if any(v is not None for v in overrides.values()) else cfg


def _render_all(cfg) -> dict[str, str]:
    from scaleout.render import render
    from scaleout.worker import render_worker

    return render(cfg, worker=render_worker(cfg))


@app.command()
def init(
    directory: Path = typer.Argument(Path("."), help="Folder to create the project in (created if missing)."),
    template: str = typer.Option("python", "--template", "-t", help="Backend template: python or node."),
    name: Optional[str] = typer.Option(None, "--name", help="Project name (default: the folder name)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Scaffold a runnable project: scaleout.yaml, a backend with its Dockerfile, a public/ folder."""
    from scaleout.scaffold import init_project

    target = directory if directory.is_absolute() else _state["dir"] / directory
    written = init_project(target, template, name=name, force=force)
    _err(f"created {len(written)} files in {target} ({template} backend)")
    _err(f"next: cd {directory} && scaleout up --replicas 3 && scaleout probe")


@app.command()
def render(
    replicas: Optional[int] = typer.Option(None, "--replicas", "-n", help="Number of backend replicas."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Host port of the load balancer."),
    strategy: Optional[str] = typer.Option(None, "--strategy", "-s", help="round_robin, least_conn, ip_hash, hash or random."),
    force: bool = typer.Option(False, "--force", help="Overwrite generated files that were edited by hand."),
) -> None:
    """Write .scaleout/docker-compose.yml and .scaleout/nginx/nginx.conf (deterministic, atomic)."""
    from scaleout.render import write_files

    cfg = _config(replicas=replicas, port=port, strategy=strategy)
    files = _render_all(cfg)
    changed = write_files(cfg.project_dir, files, force=force)
    for rel in sorted(files):
        _err(f"{'wrote    ' if rel in changed else 'unchanged'} {rel}")


@app.command()
def up(
    replicas: Optional[int] = typer.Option(None, "--replicas", "-n", help="Number of backend replicas."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Host port of the load balancer."),
    strategy: Optional[str] = typer.Option(None, "--strategy", "-s", help="round_robin, least_conn, ip_hash, hash or random."),
    build: bool = typer.Option(True, "--build/--no-build", help="Build the backend image first."),
    timeout: float = typer.Option(180.0, "--timeout", help="Seconds to wait for replicas and balancer."),
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for another scaleout holding the project lock."),
    force: bool = typer.Option(False, "--force", help="Overwrite generated files that were edited by hand."),
    json_out: bool = typer.Option(False, "--json", help="Print the resulting status as JSON."),
) -> None:
    """Render, build and start (or rescale) the stack; wait until every replica is healthy."""
    from scaleout import report
    from scaleout.stack import Stack, project_lock

    cfg = _config(replicas=replicas, port=port, strategy=strategy)
    if timeout <= 0:
        raise UsageError("--timeout: must be greater than 0")
    files = _render_all(cfg)
    with project_lock(cfg.project_dir, wait):
        stack = Stack(cfg, progress=_progress, log=_log)
        st = stack.up(files, build=build, timeout_s=timeout, force=force)
    if json_out:
        print(report.to_json(st.to_dict()))
    else:
        print(report.status_text(st))
        print(f"\nready: {cfg.url}/  ({len(st.replicas)} replicas, strategy {cfg.balancer.strategy})")


@app.command()
def status(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show replicas, their state and health, and the published URL."""
    from scaleout import report
    from scaleout.stack import Stack

    st = Stack(_config()).status()
    print(report.to_json(st.to_dict()) if json_out else report.status_text(st))


@app.command()
def down(
    volumes: bool = typer.Option(False, "--volumes", help="Also remove the project's volumes."),
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for another scaleout holding the project lock."),
) -> None:
    """Stop and remove the stack's containers and network (volumes only with --volumes)."""
    from scaleout.stack import Stack, project_lock

    cfg = _config()
    with project_lock(cfg.project_dir, wait):
        n = Stack(cfg, progress=_progress, log=_log).down(volumes=volumes)
    _err(f"removed project {cfg.project} ({n} container(s){', volumes too' if volumes else ''})")


def _parse_headers(values: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for h in values:
        name, sep, value = h.partition(":")
        if not sep or not name.strip() or any(c in h for c in "\r\n"):
            raise UsageError(f"--header: {h!r} must look like 'Name: value'")
        out.append((name.strip(), value.strip()))
    return tuple(out)


@app.command()
def probe(
    url: Optional[str] = typer.Option(None, "--url", help="Target (default: this project's balancer)."),
    requests: int = typer.Option(1000, "--requests", "-n", help="Number of requests."),
    concurrency: int = typer.Option(16, "--concurrency", "-c", help="Concurrent keep-alive connections."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", help="Run for this many seconds instead of a count."),
    path: str = typer.Option("/", "--path", help="Request path."),
    method: str = typer.Option("GET", "--method", "-X", help="HTTP method."),
    header: List[str] = typer.Option([], "--header", "-H", help="Extra header 'Name: value' (repeatable)."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Judge the spread for this strategy (default: the project's)."),
    sticky_keys: int = typer.Option(0, "--sticky-keys", help="Send K distinct session cookies and check each sticks to one replica."),
    tolerance: float = typer.Option(0.3, "--tolerance", help="Allowed relative deviation from the expected share."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds before one request counts as timed out."),
    no_cache_check: bool = typer.Option(False, "--no-cache-check", help="Skip the cache-header checks."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a target that is not this machine."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Send load through the balancer, attribute every response to a replica, and judge the spread."""
    from scaleout import report
    from scaleout.config import STRATEGIES, load_config
    from scaleout.probe import ProbeOptions, check_target, judge, run_probe

    if requests < 1 or requests > 10_000_000:
        raise UsageError(f"--requests: must be between 1 and 10000000 (got {requests})")
    if concurrency < 1 or concurrency > 4096:
        raise UsageError(f"--concurrency: must be between 1 and 4096 (got {concurrency})")
    if duration is not None and not 0 < duration <= 3600:
        raise UsageError(f"--duration: must be between 0 and 3600 seconds (got {duration})")
    if not path.startswith("/") or any(c in path for c in " \r\n"):
        raise UsageError(f"--path: {path!r} must start with / and contain no spaces")
    if not method.isalpha() or not method.isupper():
        raise UsageError(f"--method: {method!r} must be an HTTP method such as GET")
    if strategy is not None and strategy not in STRATEGIES:
        raise UsageError(f"--strategy: must be one of {', '.join(STRATEGIES)} (got {strategy!r})")
    if not 0 < tolerance <= 10:
        raise UsageError("--tolerance: must be between 0 and 10")
    headers = _parse_headers(header)

    cfg = None
    if url is None or (_state["dir"] / "scaleout.yaml").exists():
        if url is None:
            cfg = load_config(_state["dir"])
        else:
            try:
                cfg = load_config(_state["dir"])
            except ScaleoutError:
                cfg = None
    names: dict[str, str] = {}
    expected = None
    if cfg is not None:
        from scaleout.stack import Stack

        st = Stack(cfg).status()
        if url is None:
            if not st.running or st.url is None:
                from scaleout.errors import NotRunningError

                raise NotRunningError(f"project {cfg.project} is not running", hint="run `scaleout up` first")
            url = st.url
        names = Stack(cfg).address_map()
        expected = [s.service for s in st.replicas if s.state == "running" and s.health in ("healthy", "none")]
    assert url is not None
    check_target(url, allow_remote, {a.split(":")[0] for a in names})
    url = url.rstrip("/")
    opts = ProbeOptions(url=url, requests=requests, concurrency=concurrency, duration_s=duration, path=path,
                        method=method, headers=headers, timeout_s=timeout, sticky_keys=sticky_keys)
    if not json_out:
        _progress(f"probing {url}{path} with {concurrency} connections" + (f" for {duration}s" if duration else f", {requests} requests"))
    result, samples = run_probe(opts, names)
    strat = strategy or (cfg.balancer.strategy if cfg else "round_robin")
    judge(result, samples, strategy=strat, expected=expected,
          weights=dict(cfg.backend.weights) if cfg else None,
          backups=tuple(cfg.backend.backup) if cfg else (), tolerance=tolerance)
    if not no_cache_check and cfg is not None:
        from scaleout.cachecheck import check_cache_headers

        result.cache_checks = check_cache_headers(url, cfg)
        bad = [c for c in result.cache_checks if not c["ok"]]
        if bad:
            result.reasons.extend(f"cache headers: {c['path']}: {c['detail']}" for c in bad)
            result.verdict = "fail"
    print(report.to_json(result.to_dict()) if json_out else report.probe_text(result))
    if result.verdict != "pass":
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


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


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and maps ScaleoutError to its exit code."""
    args = _hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="scaleout", standalone_mode=False)
    except ScaleoutError as exc:
        _err(f"error: {exc}")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        _err("interrupted: the stack may be partly changed; `scaleout status` shows it, `scaleout down` removes it")
        sys.exit(int(ExitCode.INTERRUPTED))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err("aborted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except _click_exceptions() as exc:
        exc.show()
        sys.exit(int(ExitCode.CONFIG) if exc.exit_code == 2 else exc.exit_code)


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
