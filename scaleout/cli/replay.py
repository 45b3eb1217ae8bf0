"""`replay`: run a recorded flow (HAR or .http) across replicas; name the step whose answer needs an earlier
step's replica (see docs/replay.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from scaleout.cli.common import load_for, state_of
from scaleout.errors import ExitCode, NotRunningError

SCHEMA = "scaleout.replay/1"


def _read_flow(path: Path):
    from scaleout.replay.flow import FlowError
    from scaleout.replay.har import read_har
    from scaleout.replay.httpfile import read_http

    if not path.is_file():
        raise FlowError(f"{path}: no such file")
    if path.suffix.lower() in (".har", ".json"):
        return read_har(path)
    if path.suffix.lower() in (".http", ".rest"):
        return read_http(path)
    raise FlowError(f"{path}: expected a .har file (browser devtools export) or an .http file")


def to_dict(flow, verdict, replicas) -> dict:
    runs = verdict.runs
    steps = []
    for i, step in enumerate(flow.steps):
        steps.append({
            "index": step.index,
            "method": step.method,
            "path": step.target,
            "runs": {label: {"replica": ans[i].replica, "status": ans[i].status, **({"error": ans[i].error}
                                                                                    if ans[i].error else {})}
                     for label, ans in runs.items() if i < len(ans)},
        })
    return {
        "schema": SCHEMA,
        "verdict": "pass" if verdict.passed else "fail",
        "replicas": list(replicas),
        "skipped_other_origins": flow.skipped_other_origins,
        "steps": steps,
        "findings": [
            {"step": f.step, "depends_on": f.depends_on, "kind": f.kind, "detail": f.detail,
             "changes": f.changes, "replicas": list(f.replicas), "fix": f.fix()}
            for f in verdict.findings
        ],
        "failing_everywhere": verdict.failing_everywhere,
        "replica_differences": verdict.drift,
    }


def replay(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A HAR file (browser devtools: Save all as HAR) or an .http file."),
    parallel: int = typer.Option(1, "--parallel", min=1, max=16, help="Also run K mixed copies at once."),
    json_out: bool = typer.Option(False, "--json", help=f"Print JSON (schema {SCHEMA}, docs/replay.md)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait for each answer."),
) -> int:
    """Replay a recorded flow through the balancer with steps pinned to different replicas; exit 1 when a
    step's answer depends on the replica that served an earlier step."""
    from scaleout.replay.judge import judge
    from scaleout.replay.runner import Runner
    from scaleout.replay.secret import SECRET_FILE, read_secret
    from scaleout.targets import open_target, resolve_target

    st = state_of(ctx)
    con = st.console
    cfg = load_for(st)
    flow = _read_flow(file)
    tgt = resolve_target(cfg.project_dir, None)
    status = open_target(tgt, cfg).status()
    running = [s for s in status.replicas if s.state == "running"]
    # what the pin header names: the replica's name on Compose (backend-1), its task's container on Swarm
    pins = {s.service: s.container if tgt == "swarm" else s.service for s in running}
    replicas = sorted(pins)
    secret = read_secret(cfg.project_dir)
    if not status.running:
        raise NotRunningError("replay: the stack is not up", hint="start it with `scaleout up --replicas 2`")
    if secret is None:
        raise NotRunningError(f"replay: the stack runs without the pin route (no {SECRET_FILE})",
                              hint="run `scaleout up` again: it makes the secret and gives it to the balancer")
    if len(replicas) < 2:
        con.message(f"replay: {len(replicas)} replica running: nothing to compare; "
                    "run `scaleout up --replicas 2` (or more)")
        return int(ExitCode.CONFIG)
    verify = True
    if cfg.balancer.tls == "local":
        from scaleout.tls.certs import data_dir

        verify = str(data_dir() / "ca.pem")
    runner = Runner(flow, cfg.url, secret, timeout=timeout, verify=verify, pins=pins)
    if flow.skipped_other_origins:
        con.message(f"replay: {flow.skipped_other_origins} request(s) to other origins left out")
    con.message(f"replay: {len(flow.steps)} step(s) from {file} on {', '.join(replicas)}")
    verdict = judge(flow.steps, replicas, runner.run, progress=lambda m: con.message(f"replay: {m}"),
                    parallel=parallel)
    runner.check_pinned()
    out = to_dict(flow, verdict, replicas)
    if json_out:
        con.print(json.dumps(out, indent=2))
    else:
        for n in verdict.failing_everywhere:
            s = flow.steps[n - 1]
            con.print(f"step {n} ({s.method} {s.target}) fails the same way on every replica "
                      "(not a replica finding; a stale token in a recording?)")
        for f in verdict.findings:
            con.print(f"FINDING step {f.step} depends on step {f.depends_on} [{f.kind}]: {f.detail}")
            con.print(f"  fix: {f.fix()}")
        con.print("replay: pass, no step depends on the replica of an earlier one" if verdict.passed
                  else f"replay: fail, {len(verdict.findings)} finding(s)")
    return int(ExitCode.OK if verdict.passed else ExitCode.CHECK_FAILED)


def register(app: typer.Typer) -> None:
    app.command()(replay)
