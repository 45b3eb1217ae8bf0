"""`scaleout top`: a live per-replica view of the traffic the balancer records (scaleout/top/)."""

from __future__ import annotations

import json
import os
import sys
import time

import typer

from scaleout.cli.common import load_for, state_of

_HIDE, _SHOW, _HOME_CLEAR = "\x1b[?25l", "\x1b[?25h", "\x1b[H\x1b[2J"


def top(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Print one frame and exit."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per interval (schema scaleout.top/1)."),
    interval: float = typer.Option(1.0, "--interval", min=0.2, max=60.0, help="Seconds between frames."),
    span: float = typer.Option(10.0, "--window", min=1.0, max=3600.0,
                               help="Seconds of traffic the rates, counts and percentiles cover."),
) -> None:
    """Live per-replica view of real traffic from the balancer's request record, like `docker stats`."""
    from scaleout.errors import NotRunningError, UsageError
    from scaleout.targets import open_target, resolve_target
    from scaleout.targets.requests import RecordReader, balancer_containers, namer
    from scaleout.targets.runner import engine_errors
    from scaleout.top.view import frame, text
    from scaleout.top.window import Window

    st = state_of(ctx)
    cfg = load_for(st)
    if not cfg.balancer.request_log:
        raise UsageError("top: the balancer's request record is off (balancer.request_log: false in scaleout.yaml)",
                         hint="set balancer.request_log: true and run `scaleout up`")
    stack = open_target(resolve_target(cfg.project_dir, None), cfg)
    out = sys.stdout
    live = not once and not json_out and out.isatty()
    color = live and not os.environ.get("NO_COLOR")
    window = Window(span_s=span)
    reader = RecordReader(since=time.time() - window.span_s)
    try:
        if live:
            out.write(_HIDE)
        while True:
            now = time.time()
            with engine_errors("reading the balancer's request record"):
                lbs = balancer_containers(stack)
                if not lbs:
                    raise NotRunningError(f"project {cfg.project}: the balancer is not running"
                                          + (" on this swarm node" if stack.name == "swarm" else ""),
                                          hint="run `scaleout up` first")
                window.add(reader.read(lbs), namer(stack.address_map()))
                status = stack.status()  # last: the state shown is as fresh as the frame
            f = frame(status, window, now)
            if json_out:
                out.write(json.dumps(f) + "\n")
            else:
                out.write((_HOME_CLEAR if live else "") + text(f, color=color) + "\n")
            out.flush()
            if once:
                return
            time.sleep(max(0.0, interval - (time.time() - now)))
    except KeyboardInterrupt:
        return
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    finally:
        if live:
            out.write(_SHOW)
            out.flush()


def register(app: typer.Typer) -> None:
    app.command()(top)
