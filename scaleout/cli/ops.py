"""Commands on the running containers, as in Compose: `logs`, `exec`, `stop`, `start`, `restart`."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from scaleout.cli.common import complete_services, ops_stack, services_argument, state_of


def logs(
    ctx: typer.Context,
    services: Optional[List[str]] = services_argument("backend-N, lb or a dependency service (default: all)."),
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
    requests: bool = typer.Option(False, "--requests", help="The balancer's request record: one line per request "
                                  "with the replica that served it."),
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
    st = state_of(ctx)
    stack = ops_stack(ctx, "logs")
    chosen = select(stack, ["lb"] if requests else services or [], "logs")
    out = st.console.out
    color = not no_color and not os.environ.get("NO_COLOR") and out.isatty()
    printer = report.LogPrinter(list(chosen), color=color, timestamps=timestamps, prefix=not no_prefix)
    if requests:
        from scaleout.targets.requests import RequestPrinter

        printer = RequestPrinter(stack, timestamps=timestamps)
    started = time.time()
    try:
        with engine_errors("reading logs"):
            history = read_history(chosen, since=since_s, tail=lines_per_container)
        out.write("".join(text + "\n" for ln in history if (text := printer.format(ln)) is not None))
        out.flush()
        if follow:

            def emit(ln) -> None:
                if (text := printer.format(ln)) is not None:
                    out.write(text + "\n")
                    out.flush()

            wanted = set(services or [])

            def rescan():
                return [(s, c) for s, c in stack.service_containers()
                        if (s == "lb" if requests else not wanted or s in wanted)]

            with engine_errors("following logs"):
                follow_logs(chosen, history, started, emit, rescan=rescan)
    except KeyboardInterrupt:
        return  # Ctrl-C is how `logs -f` ends: nothing was changed
    except BrokenPipeError:
        # the reader went away (`scaleout logs | head`): stop quietly, and keep Python from failing to flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())


def exec_(
    ctx: typer.Context,
    service: str = typer.Argument(
        ..., metavar="SERVICE", help="backend-N, lb or a dependency service.", autocompletion=complete_services
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
    stack = ops_stack(ctx, "exec")
    code = exec_command(
        stack, service, argv, tty=not no_tty and sys.stdin.isatty(), user=user, workdir=workdir, env=env
    )
    raise typer.Exit(code)


def stop(
    ctx: typer.Context,
    services: List[str] = services_argument("Services to stop, e.g. backend-2.", required=True),
) -> None:
    """Stop replicas (or the balancer) without removing them, for failure drills: the balancer routes
    around a stopped replica. `scaleout start` or `scaleout up` brings them back."""
    from scaleout.targets.actions import select
    from scaleout.targets.actions import stop as stop_services

    stack = ops_stack(ctx, "stop")
    stop_services(stack, select(stack, services, "stop"))


def start(
    ctx: typer.Context,
    services: List[str] = services_argument("Stopped services to start, e.g. backend-2.", required=True),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, help="Seconds to wait until they are healthy."),
) -> None:
    """Start stopped services; wait until they are healthy and the balancer routes to them again."""
    from scaleout.targets.actions import select
    from scaleout.targets.actions import start as start_services

    stack = ops_stack(ctx, "start")
    start_services(stack, select(stack, services, "start"), timeout_s=timeout)


def restart(
    ctx: typer.Context,
    services: List[str] = services_argument("Services to restart, e.g. backend-2.", required=True),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, help="Seconds to wait until they are healthy."),
) -> None:
    """Restart services; wait until they are healthy and the balancer routes to them again. Replicas
    restart one at a time, each out of the balancer while it is down."""
    from scaleout.targets.actions import restart as restart_services
    from scaleout.targets.actions import select

    stack = ops_stack(ctx, "restart")
    restart_services(stack, select(stack, services, "restart"), timeout_s=timeout)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app, in the order `--help` lists them."""
    app.command()(logs)
    app.command("exec", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})(exec_)
    app.command()(stop)
    app.command()(start)
    app.command()(restart)
