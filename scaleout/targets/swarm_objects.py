"""The Swarm stack's configs, secrets, networks and volumes: what `up` leaves behind once unused, what
`down` lists before `docker stack rm` (every one must be this project's) and removes after it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterable

from scaleout.layout import LABEL_STACK_NAMESPACE
from scaleout.targets.runner import docker_client, engine_errors
from scaleout.targets.swarm_checks import object_is_ours


def _label(project: str) -> dict[str, str]:
    return {"label": f"{LABEL_STACK_NAMESPACE}={project}"}


def remove_unused_objects(stack_file: Path, project: str) -> None:
    """Earlier nginx.conf versions, TLS certificates and keys (configs and secrets are immutable, one per
    content hash) once the stack file names them no more; one still used by a stopping task goes next time."""
    import docker.errors
    import yaml

    try:
        data = yaml.safe_load(stack_file.read_text(encoding="utf-8"))
        current = {data["configs"]["nginx_conf"]["name"]}
        current |= {o["name"] for kind in ("configs", "secrets") for o in (data.get(kind) or {}).values()}
    except (OSError, AttributeError, KeyError, TypeError, yaml.YAMLError):
        return
    with engine_errors("listing swarm configs and secrets"):
        objects = docker_client().configs.list(filters=_label(project)) + docker_client().secrets.list(
            filters=_label(project))
    for obj in objects:
        if obj.name not in current:
            with contextlib.suppress(docker.errors.APIError):
                obj.remove()


def namespace_objects(client: Any, project: str) -> list[tuple[str, str, dict[str, str] | None]]:
    """(kind, name, labels) of every network, config and secret in the stack's namespace."""
    with engine_errors("listing the stack's networks, configs and secrets"):
        return [(kind, o.name, (o.attrs.get("Spec") or o.attrs).get("Labels"))
                for kind, listing in (("network", client.networks), ("config", client.configs),
                                      ("secret", client.secrets))
                for o in listing.list(filters=_label(project))]


def remove_leftovers(client: Any, project: str, volumes: bool, named_volumes: Iterable[str],
                     progress: Callable[[str], None]) -> None:
    """After `stack rm`: the networks, configs and secrets left; with `volumes`, the volumes of this
    project's scaleout.yaml (`stack rm` never removes volumes; any other of the namespace is kept, and said)."""
    import docker.errors

    label = _label(project)
    with engine_errors("removing the stack's networks, configs and secrets"):
        for obj in (client.networks.list(filters=label) + client.configs.list(filters=label)
                    + client.secrets.list(filters=label)):
            with contextlib.suppress(docker.errors.NotFound):
                obj.remove()
    if not volumes:
        return
    named = list(named_volumes)
    with engine_errors("removing the stack's volumes"):
        for v in client.volumes.list(filters=label):
            if not object_is_ours("volume", v.name, v.attrs.get("Labels"), project, named):
                progress(f"kept volume {v.name}: not a volume of this project's scaleout.yaml")
                continue
            with contextlib.suppress(docker.errors.NotFound):
                v.remove()
