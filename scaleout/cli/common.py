"""What the command modules share: the global state, option factories, the config with command-line
values, and the enums of choices typer shows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from scaleout.console import Console
from scaleout.errors import ScaleoutError
from scaleout.layout import EXPORT_KINDS, SHELLS, STRATEGIES, TARGETS, TEMPLATE_NAMES, TRUST_STORES

if TYPE_CHECKING:
    from scaleout.config.model import Config, Overrides

COMPLETE_VAR = "_SCALEOUT_COMPLETE"


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A str Enum of one domain list, for typer's choice help and checking (the list stays the one truth)."""
    return Enum(name, [(v, v) for v in values], type=str)  # type: ignore[return-value]


Strategy = _choices("Strategy", STRATEGIES)
Template = _choices("Template", TEMPLATE_NAMES)
TargetName = _choices("TargetName", TARGETS)
TrustStore = _choices("TrustStore", TRUST_STORES)
ExportKind = _choices("ExportKind", EXPORT_KINDS)
Shell = _choices("Shell", SHELLS)


def value_of(choice: Enum | None) -> str | None:
    return None if choice is None else str(choice.value)


@dataclass
class State:
    """What the global options set, for every command of one invocation (typer's ctx.obj)."""

    project_dir: Path
    console: Console
    project_name: str | None = None


def state_of(ctx: typer.Context) -> State:
    return ctx.ensure_object(State) if ctx.obj is None else ctx.obj


def load_for(st: State, overrides: Overrides | None = None) -> Config:
    """scaleout.yaml of the project, its warnings shown, with the command line's values (and -p) applied."""
    from dataclasses import replace

    from scaleout.config.load import load_config
    from scaleout.config.model import Overrides

    cfg = load_config(st.project_dir)
    for warning in cfg.warnings:
        st.console.message(f"warning: {warning}")
    given = replace(overrides or Overrides(), name=st.project_name)
    return cfg.with_overrides(given) if given.any_given() else cfg


def target_option():
    return typer.Option(None, "--target", envvar="SCALEOUT_TARGET", case_sensitive=False,
                        help="compose (this machine) or swarm (docker stack deploy). "
                             "Default: the target of the last `up`, else compose.")


def replicas_option():
    return typer.Option(None, "--replicas", "-n", min=1, max=32, help="Number of backend replicas (1-32).")


def port_option():
    # no -p: Compose users read it as the project name (the global -p/--project-name)
    return typer.Option(None, "--port", min=1, max=65535, help="Host port of the load balancer.")


def lock_wait_option():
    return typer.Option(0.0, "--lock-wait", min=0, metavar="SECONDS",
                        help="Seconds to wait for another scaleout command holding the project lock.")


def strategy_option():
    return typer.Option(None, "--strategy", "-s", case_sensitive=False, help="Load-balancing strategy.")


def tls_option():
    return typer.Option(False, "--tls", help="HTTPS with HTTP/2 at the balancer, with a certificate from scaleout's "
                                             "local certificate authority (as balancer.tls: local).")


def balancer_nginx_version(cfg, pull: bool = True):
    """The balancer image's nginx version when rendering needs it (balancer.tls), else None. `pull`: fetch
    the image when the engine lacks it (False for commands that only write files: no registry request)."""
    if cfg.balancer.tls is None:
        return None
    from scaleout.targets.nginx_version import nginx_version_for
    from scaleout.tls.certs import check_tls_config

    check_tls_config(cfg)  # the user's own files are judged before the engine is asked anything
    return nginx_version_for(cfg, pull)


def complete_services(ctx: typer.Context, incomplete: str) -> list[str]:
    """Service names for shell completion, from scaleout.yaml alone (no engine): backend-1..N and lb."""
    from scaleout.config.load import load_config
    from scaleout.layout import LB_SERVICE, replica_name

    root = ctx.find_root().params
    try:
        cfg = load_config(root.get("project_dir") or Path("."))
    except ScaleoutError:
        return [LB_SERVICE] if LB_SERVICE.startswith(incomplete) else []
    given = set(ctx.params.get("services") or ())
    names = [replica_name(i) for i in range(1, cfg.backend.replicas + 1)] + [LB_SERVICE]
    return [n for n in names if n.startswith(incomplete) and n not in given]


def services_argument(help_text: str, required: bool = False):
    return typer.Argument(
        ... if required else None,
        metavar="SERVICE..." if required else "[SERVICE]...",
        help=help_text,
        autocompletion=complete_services,
        show_default=False,
    )


def ops_stack(ctx: typer.Context, command: str):
    from scaleout.targets.actions import compose_stack

    st = state_of(ctx)
    return compose_stack(load_for(st), command, progress=st.console.progress, log=st.console.log)


def cacert_option():
    return typer.Option(None, "--cacert", metavar="FILE",
                        help="HTTPS: trust the authorities in this PEM file (default: the project's local "
                             "authority with balancer.tls: local, else the system's).")


def insecure_option():
    return typer.Option(False, "--insecure", help="HTTPS: do not verify the certificate (the report says so).")
