"""What a swarm must be before scaleout deploys or removes a stack there: a manager, with a registry when it
has more nodes than this one, and the stack of that name scaleout's own (scaleout touches, deploys over or
removes, only a stack it deployed itself)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from scaleout.errors import UsageError
from scaleout.layout import LABEL_PROJECT

__all__ = ["check_objects_are_ours", "check_stack_is_ours", "object_is_ours", "registry_problem", "swarm_problem"]


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


def _own_name(kind: str, name: str, project: str, volumes: Iterable[str]) -> bool:
    """The names `docker stack deploy` gives what scaleout's stack file declares (render/swarm.py)."""
    p = re.escape(project)
    patterns = {
        "network": rf"{p}_default",
        "config": rf"{p}_nginx_[0-9a-f]{{12}}",
        "secret": rf"{p}_tls_(?:cert|key)_[0-9a-f]{{12}}",
        "volume": "|".join(rf"{p}_{re.escape(v)}" for v in volumes) or r"(?!)",
    }
    return re.fullmatch(patterns[kind], name) is not None


def object_is_ours(kind: str, name: str, labels: dict[str, str] | None, project: str,
                   volumes: Iterable[str] = ()) -> bool:
    """Whether a network, config, secret or volume of the stack `project` is one scaleout's stack file
    declares: it carries the io.scaleout.project label of `project`, or has one of the names the stack file
    gives (its default network, the nginx config and TLS secrets named by their content, its named volumes)."""
    return (labels or {}).get(LABEL_PROJECT) == project or _own_name(kind, name, project, volumes)


def check_objects_are_ours(objects: Iterable[tuple[str, str, dict[str, str] | None]], project: str, action: str,
                           volumes: Iterable[str] = ()) -> None:
    """UsageError naming every (kind, name, labels) of the stack's namespace that scaleout's stack file does
    not declare: `docker stack rm` removes every network, config and secret of the namespace, also another
    stack's of the same name (one whose services are gone, or were never there)."""
    volumes = tuple(volumes)
    foreign = sorted(f"{kind} {name}" for kind, name, labels in objects
                     if not object_is_ours(kind, name, labels, project, volumes))
    if foreign:
        raise UsageError(
            f"refusing to {action}: the Swarm stack {project!r} has objects that scaleout's stack file does not "
            f"declare: {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}",
            hint="it is another stack of the same name: set `name:` in scaleout.yaml to a name of its own, or "
                 f"remove that stack yourself (`docker stack rm {project}`) if you mean to")


def swarm_problem(info: dict[str, Any]) -> str | None:
    """Why this engine cannot deploy a stack (from `docker info`), or None."""
    swarm = info.get("Swarm") or {}
    state = swarm.get("LocalNodeState", "inactive")
    if state != "active":
        return f"this Docker engine is not part of a swarm (swarm state: {state or 'inactive'})"
    if not swarm.get("ControlAvailable"):
        return "this Docker engine is a swarm worker, not a manager: stacks are deployed from a manager"
    return None


def registry_problem(nodes: int, registry: str | None) -> str | None:
    """A multi-node swarm cannot run images that exist only on the engine that built them (the
    balancer image, with the static files, is always built)."""
    if nodes > 1 and registry is None:
        return (f"this swarm has {nodes} nodes: the images scaleout builds exist only on this engine, so tasks "
                "scheduled on the other nodes could not start")
    return None
