"""Whose Swarm stack is this: scaleout touches (deploys over, removes) only a stack it deployed itself."""

from __future__ import annotations

from typing import Any

from scaleout.errors import UsageError
from scaleout.layout import LABEL_PROJECT

__all__ = ["check_stack_is_ours"]


def check_stack_is_ours(services: dict[str, Any], project: str, action: str) -> None:
    """UsageError unless every service of the stack carries the io.scaleout.project label of `project`, as
    every service scaleout deploys does. Whatever .scaleout/target says (a committed file is no proof), a
    stack without it is someone else's, and `docker stack rm` would remove it."""
    foreign = sorted(s.name for s in services.values()
                     if ((s.attrs.get("Spec") or {}).get("Labels") or {}).get(LABEL_PROJECT) != project)
    if foreign:
        raise UsageError(
            f"refusing to {action}: the Swarm stack {project!r} has service(s) that scaleout did not create "
            f"(no {LABEL_PROJECT}={project} label): {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}",
            hint="it is another stack of the same name: set `name:` in scaleout.yaml to a name of its own, or "
                 f"remove that stack yourself (`docker stack rm {project}`) if you mean to")
