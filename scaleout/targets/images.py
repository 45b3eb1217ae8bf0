"""Image identity: whether a container runs the image a compose file names, by ID (or a normalised
reference), never by comparing name strings. Engines store names differently: Podman records
`scaleout-local/bookworm:1` as `localhost/scaleout-local/bookworm:1`, and a registry image's short name
`nginx:1.27` as `docker.io/library/nginx:1.27`, so a raw string comparison says "changed" for the same
image on every run (and a decision taken on it, such as skipping a reload, is wrong)."""

from __future__ import annotations

from typing import Any

from scaleout.targets.views import ContainerView


def normalise_ref(ref: str) -> str:
    """`nginx` -> `docker.io/library/nginx:latest`, `localhost/a/b:1` -> `docker.io/a/b:1`: one spelling per
    reference, as Docker's reference rules read it (a first part with a dot or a port, or `localhost`, is a
    registry; the local `localhost/` prefix Podman adds is dropped, as it names no registry)."""
    ref = ref.strip()
    if ref.startswith("localhost/"):
        ref = ref[len("localhost/"):]
    name, digest = (ref.split("@", 1) + [""])[:2]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    else:
        tag = "" if digest else "latest"
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first):
        name = f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"
    if name.startswith("index.docker.io/"):
        name = "docker.io/" + name[len("index.docker.io/"):]
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def same_ref(a: str, b: str) -> bool:
    return normalise_ref(a) == normalise_ref(b)


def runs_image(client: Any, container: ContainerView, ref: str | None) -> bool:
    """Whether `container` runs the image `ref` points to on this engine now: the same image ID. Not when
    the engine lacks `ref` (Compose would pull it: another image); by the normalised reference only when
    the engine cannot say (an API error while looking it up)."""
    import docker.errors

    if not ref:
        return False
    try:
        image_id = client.images.get(ref).id
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError:
        return same_ref(container.image_ref, ref)
    return bool(container.image_id) and container.image_id == image_id
