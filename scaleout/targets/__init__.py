"""The engines a stack runs on, behind one interface (`Target`), so the CLI never branches on them:
`compose` (Docker Compose on this machine, targets/compose.py) and `swarm` (`docker stack deploy`,
targets/swarm.py). Engine access (SDK client, CLI runner, error translation) is in targets/runner.py;
typed views over `docker inspect` data in targets/views.py; what `status` reports in targets/status.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from scaleout.config.model import STRATEGIES, Config
from scaleout.errors import UnsafePathError, UsageError
from scaleout.files import Plan, atomic_write, confined
from scaleout.layout import STRATEGY_FILE, TARGET_FILE, TARGETS
from scaleout.targets.runner import Progress, quiet
from scaleout.targets.status import StackStatus

__all__ = ["TARGETS", "Target", "applied_strategy", "open_target", "remember_strategy", "remember_target",
           "resolve_target"]

ENV_TARGET = "SCALEOUT_TARGET"


class Target(Protocol):
    """What every engine offers the CLI. `up` brings the stack to what `plan` describes (first start,
    rescale or update); `status` reads what runs now from the engine."""

    name: str
    config: Config

    def preflight(self) -> object: ...

    def up(self, plan: Plan, *, build: bool = True, timeout_s: float = 180.0, force: bool = False) -> StackStatus: ...

    def status(self, routing: bool = True) -> StackStatus: ...

    def address_map(self) -> dict[str, str]: ...

    def down(self, *, volumes: bool = False) -> int: ...


def resolve_target(project_dir: Path, option: str | None) -> str:
    """--target (or SCALEOUT_TARGET), else the target this project was last brought up on, else compose."""
    value = option if option is not None else os.environ.get(ENV_TARGET) or None
    if value is None:
        value = _read_small(project_dir, TARGET_FILE)
        if value not in TARGETS:
            value = "compose"
    if value not in TARGETS:
        raise UsageError(f"--target: must be one of {', '.join(TARGETS)} (got {value!r})")
    return value


def _read_small(project_dir: Path, rel: str) -> str | None:
    try:
        path = confined(project_dir.resolve(), rel)
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 256:
            return None
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError, ValueError, UnsafePathError):
        return None


def remember_target(project_dir: Path, target: str) -> None:
    atomic_write(confined(project_dir.resolve(), TARGET_FILE), target + "\n")


def remember_strategy(project_dir: Path, strategy: str) -> None:
    """The strategy the running balancer uses (`up --strategy` may differ from scaleout.yaml), so that a
    later `probe` judges the spread against what actually runs."""
    atomic_write(confined(project_dir.resolve(), STRATEGY_FILE), strategy + "\n")


def applied_strategy(project_dir: Path) -> str | None:
    value = _read_small(project_dir, STRATEGY_FILE)
    return value if value in STRATEGIES else None


def open_target(target: str, config: Config, progress: Progress = quiet, log: Progress = quiet,
                registry: str | None = None) -> Target:
    """The stack of `config` on `target`."""
    if target == "swarm":
        from scaleout.targets.swarm import SwarmStack

        return SwarmStack(config, progress=progress, log=log, registry=registry)
    if registry is not None:
        raise UsageError("--registry: only for --target swarm (Compose runs the images on this machine)")
    from scaleout.targets.compose import ComposeStack

    return ComposeStack(config, progress=progress, log=log)
