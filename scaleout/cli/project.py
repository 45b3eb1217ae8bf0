"""`init` (scaffold or adopt a Compose project) and `render`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from scaleout.cli.common import (
    State,
    Strategy,
    Template,
    balancer_nginx_version,
    load_for,
    lock_wait_option,
    port_option,
    replicas_option,
    state_of,
    strategy_option,
    tls_option,
    value_of,
)
from scaleout.errors import UsageError


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
    st = state_of(ctx)
    if from_file is not None:
        if template is not None:
            raise UsageError("--template: not with --from (the backend is the Compose file's service)")
        _adopt(st, from_file, directory, service=service, name=name, force=force)
        return
    if service is not None:
        raise UsageError("--service: only with --from FILE")
    from scaleout.scaffold import init_project

    directory = directory or Path(".")
    chosen = template.value if template is not None else "python"
    target = directory if directory.is_absolute() else st.project_dir / directory
    written = init_project(target, chosen, name=name or st.project_name, force=force, trusted=st.project_dir)
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


def render(
    ctx: typer.Context,
    replicas: Optional[int] = replicas_option(),
    port: Optional[int] = port_option(),
    strategy: Optional[Strategy] = strategy_option(),
    tls: bool = tls_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite generated files that were edited by hand."),
    lock_wait: float = lock_wait_option(),
) -> None:
    """Write .scaleout/docker-compose.yml and .scaleout/nginx/nginx.conf (deterministic, atomic)."""
    from scaleout.config.model import Overrides
    from scaleout.files import project_lock, report_removed, write_plan
    from scaleout.render import plan_for
    from scaleout.replay.secret import current_or_new, save_secret

    st = state_of(ctx)
    cfg = load_for(st, Overrides(replicas=replicas, port=port, strategy=value_of(strategy), tls=tls or None))
    with project_lock(cfg.project_dir, lock_wait):
        # the replay pin route as `up` renders it, so that `render` and `up` write the same nginx.conf
        pin = current_or_new(cfg.project_dir)
        # everything computed (and refused) before anything is written
        plan = plan_for("compose", cfg, balancer_nginx_version(cfg, pull=False), pin=pin)
        result = write_plan(cfg.project_dir.resolve(), plan, force=force)
        save_secret(cfg.project_dir, pin)
    for rel in sorted(plan.files):
        st.console.message(f"{'wrote    ' if rel in result.written else 'unchanged'} {rel}")
    report_removed(result, st.console.message)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app, in the order `--help` lists them."""
    app.command()(init)
    app.command()(render)
