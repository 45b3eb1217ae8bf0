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

    check_project_files(config)
    worker = render_worker(config)
    assets = fingerprint_assets(config).env_value()
    if target == "swarm":
        from scaleout.swarm import render_swarm_files

        return render_swarm_files(config, worker, assets)
    from scaleout.render import render

    return render(config, worker=worker, assets=assets)


def check_project_files(config: Config) -> None:
    """The folders scaleout.yaml names exist (before anything is written or built)."""
    from scaleout.config import CONFIG_FILE
    from scaleout.errors import ConfigError

    problems = []
    static = config.project_dir / config.static.dir
    if not static.is_dir():
        problems.append(f"{CONFIG_FILE}: static.dir: folder {config.static.dir}/ does not exist in the project")
    if config.backend.builds:
        context = config.project_dir / config.backend.build
        if not context.is_dir():
            problems.append(f"{CONFIG_FILE}: backend.build: folder {config.backend.build}/ does not exist in the project")
        elif not (context / config.backend.dockerfile).is_file():
            problems.append(f"{CONFIG_FILE}: backend.dockerfile: {config.backend.build}/{config.backend.dockerfile} does not exist")
    if problems:
        raise ConfigError(problems, hint="create it, or point the key at an existing folder (or set backend.image)")


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
