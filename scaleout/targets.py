"""Which engine a command works on, and the stack class and files for it, so the CLI never branches
on the target: `compose` (Docker Compose on this machine) or `swarm` (`docker stack deploy`)."""

from __future__ import annotations

import os
from pathlib import Path

from scaleout.config import Config
from scaleout.errors import UsageError
from scaleout.render import OUT_DIR, atomic_write

TARGETS = ("compose", "swarm")
ENV_TARGET = "SCALEOUT_TARGET"
TARGET_FILE = f"{OUT_DIR}/target"  # the target `up` last deployed to: later commands default to it
STRATEGY_FILE = f"{OUT_DIR}/strategy"  # the strategy of the last successful `up`


def resolve_target(project_dir: Path, option: str | None) -> str:
    """--target (or SCALEOUT_TARGET), else the target this project was last brought up on, else compose."""
    value = option if option is not None else os.environ.get(ENV_TARGET) or None
    if value is None:
        try:
            value = (project_dir / TARGET_FILE).read_text(encoding="utf-8").strip() or None
        except OSError:
            value = None
        if value not in TARGETS:
            value = "compose"
    if value not in TARGETS:
        raise UsageError(f"--target: must be one of {', '.join(TARGETS)} (got {value!r})")
    return value


def remember_target(project_dir: Path, target: str) -> None:
    atomic_write(project_dir / TARGET_FILE, target + "\n")


def remember_strategy(project_dir: Path, strategy: str) -> None:
    """The strategy the running balancer uses (`up --strategy` may differ from scaleout.yaml), so that a
    later `probe` judges the spread against what actually runs."""
    atomic_write(project_dir / STRATEGY_FILE, strategy + "\n")


def applied_strategy(project_dir: Path) -> str | None:
    from scaleout.config import STRATEGIES

    try:
        value = (project_dir / STRATEGY_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return value if value in STRATEGIES else None


def render_for(target: str, config: Config) -> dict[str, str]:
    """Every generated file `up` writes for `target`, keyed by path relative to the project folder.
    Writes the fingerprinted copies of the static assets to .scaleout/assets/ first (binary files, so
    not through render); both targets serve them and pass their map to the replicas."""
    from scaleout.fingerprint import fingerprint_assets
    from scaleout.worker import render_worker

    worker = render_worker(config)
    assets = fingerprint_assets(config).env_value()
    if target == "swarm":
        from scaleout.swarm import render_swarm_files

        return render_swarm_files(config, worker, assets)
    from scaleout.render import render

    return render(config, worker=worker, assets=assets)


def open_stack(target: str, config: Config, progress=None, log=None, registry: str | None = None):
    """The running stack of `config` on `target`: a `Stack` (Compose) or a `SwarmStack`."""
    kwargs = {k: v for k, v in (("progress", progress), ("log", log)) if v is not None}
    if target == "swarm":
        from scaleout.swarm import SwarmStack

        return SwarmStack(config, registry=registry, **kwargs)
    if registry is not None:
        raise UsageError("--registry: only for --target swarm (Compose runs the images on this machine)")
    from scaleout.stack import Stack

    return Stack(config, **kwargs)
