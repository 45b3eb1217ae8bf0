"""The images a Swarm deployment runs. Swarm ignores `build:`, so scaleout builds them itself and tags
them by content (the image ID), so that a changed image is a changed service spec and an unchanged
one is not: a rescale never restarts tasks.

- backend: the project's Dockerfile with BASE_IMAGE, as Compose builds it.
- balancer: the nginx image with the static files (and the generated service worker) copied in,
  because a bind mount of the project folder only exists on this machine.
- services with `build:`: their folder and Dockerfile, as Compose builds them.

A swarm of several nodes pulls images from a registry: `--registry HOST/PATH` tags and pushes both.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from scaleout.config.model import Config
from scaleout.errors import BuildError, StackError, UsageError
from scaleout.files import inside
from scaleout.layout import ASSETS_DIR, LB_ASSETS_MOUNT, LB_PUBLIC_MOUNT, LB_WORKER_MOUNT
from scaleout.targets.runner import docker_client, engine_errors

Log = Callable[[str], None]
_REGISTRY = re.compile(r"^[a-zA-Z0-9.-]+(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")

BALANCER_DOCKERFILE = f"""\
# Built by scaleout for Docker Swarm: the balancer image with the project's static files inside.
ARG BALANCER_IMAGE
FROM ${{BALANCER_IMAGE}}
COPY public/ {LB_PUBLIC_MOUNT}/
COPY sw/ {LB_WORKER_MOUNT}/
COPY assets/ {LB_ASSETS_MOUNT}/
"""


@dataclass(frozen=True)
class SwarmImages:
    backend: str
    balancer: str
    services: dict[str, str] = field(default_factory=dict)  # service name -> image, for those scaleout builds

    def to_dict(self) -> dict:
        return {"backend": self.backend, "balancer": self.balancer, "services": dict(sorted(self.services.items()))}


def check_registry(registry: str) -> str:
    """A registry prefix such as registry.example.com:5000/team (no tag, no trailing slash)."""
    registry = registry.rstrip("/")
    if "://" in registry or not _REGISTRY.match(registry):
        raise UsageError(f"--registry: {registry!r} must look like HOST[:PORT]/PATH, e.g. registry.example.com/team "
                         "(no scheme, no tag; lower-case path)")
    return registry


def content_tag(image_id: str) -> str:
    """A tag derived from the image ID (sha256 of the image configuration)."""
    return image_id.split(":", 1)[-1][:16]


def _build(log: Log, what: str, **kwargs) -> str:
    """Build with the engine (Docker SDK), streaming output to `log`; returns the image ID."""
    client = docker_client()
    tail: deque[str] = deque(maxlen=15)
    image_id = None
    with engine_errors(f"building the {what} image"):
        for chunk in client.api.build(rm=True, forcerm=True, decode=True, **kwargs):
            if "stream" in chunk:
                for line in chunk["stream"].splitlines():
                    if line.strip():
                        tail.append(line)
                        log(line)
            if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
                image_id = chunk["aux"]["ID"]
            if "error" in chunk:
                text = "\n".join("    " + t for t in tail)
                raise BuildError(f"building the {what} image failed: {chunk['error'].strip()}\n  last output:\n{text}")
    if image_id is None:
        raise BuildError(f"building the {what} image produced no image ID")
    return image_id


def _tag(image_id: str, repository: str) -> str:
    tag = content_tag(image_id)
    with engine_errors(f"tagging {repository}"):
        docker_client().images.get(image_id).tag(repository, tag)
    return f"{repository}:{tag}"


def build_backend(config: Config, log: Log) -> str:
    """Build the backend like Compose does (Dockerfile + BASE_IMAGE); returns repository:content-tag."""
    b = config.backend
    assert b.build is not None
    image_id = _build(log, "backend", path=str(config.project_dir / b.build), dockerfile=b.dockerfile,
                      buildargs={"BASE_IMAGE": config.images.base}, labels={"io.scaleout.project": config.name})
    return _tag(image_id, f"scaleout/{config.name}-backend")


def build_service(config: Config, name: str, log: Log) -> str:
    """Build a service from its folder like Compose does; returns repository:content-tag."""
    svc = config.services[name]
    assert svc.build is not None
    image_id = _build(log, f"service {name}", path=str(config.project_dir / svc.build), dockerfile=svc.dockerfile,
                      labels={"io.scaleout.project": config.name})
    # a repository path component allows one separator between letters or digits (`db-`, `a___b` do not pass)
    return _tag(image_id, f"scaleout/{config.name}-{re.sub(r'[-_.]+', '-', name).strip('-')}")


def balancer_context(config: Config, worker: tuple[str, str] | None) -> bytes:
    """The balancer's build context as a tar (deterministic: sorted, fixed owners, modes and times).
    `worker` is (file name, text) of the generated service worker."""
    buf = io.BytesIO()

    def add(name: str, data: bytes | None) -> None:
        info = tarfile.TarInfo(name)
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        if data is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        else:
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))

    project_root = config.project_dir.resolve()

    def add_tree(prefix: str, folder) -> None:
        add(prefix, None)
        if folder.is_dir() and inside(project_root, folder):
            for p in sorted(folder.rglob("*")):
                if p.is_symlink() or not inside(project_root, p):
                    continue  # never publish a file from outside the project
                rel = f"{prefix}/{p.relative_to(folder).as_posix()}"
                if p.is_dir():
                    add(rel, None)
                elif p.is_file():
                    add(rel, p.read_bytes())

    with tarfile.open(fileobj=buf, mode="w") as tar:
        add("Dockerfile", BALANCER_DOCKERFILE.encode())
        add_tree("public", config.project_dir / config.static.dir)
        add("sw", None)
        if worker is not None:
            add(f"sw/{worker[0]}", worker[1].encode("utf-8"))
        # the fingerprinted copies written by scaleout.render.assets (served with `immutable`)
        add_tree("assets", config.project_dir / ASSETS_DIR)
    return buf.getvalue()


def build_balancer(config: Config, worker: tuple[str, str] | None, log: Log) -> str:
    """nginx + static files; returns repository:content-tag."""
    context = balancer_context(config, worker)
    image_id = _build(log, "balancer", fileobj=io.BytesIO(context), custom_context=True,
                      buildargs={"BALANCER_IMAGE": config.images.balancer}, labels={"io.scaleout.project": config.name})
    return _tag(image_id, f"scaleout/{config.name}-balancer")


def registry_ref(local_ref: str, registry: str) -> str:
    """scaleout/NAME-backend:TAG -> REGISTRY/NAME-backend:TAG."""
    name = local_ref.rsplit("/", 1)[-1]
    return f"{registry}/{name}"


def push(local_ref: str, registry: str, log: Log) -> str:
    """Tag `local_ref` under `registry` and push it; returns the pushed reference."""
    remote = registry_ref(local_ref, registry)
    repository, tag = remote.rsplit(":", 1)
    client = docker_client()
    with engine_errors(f"tagging {remote}"):
        client.images.get(local_ref).tag(repository, tag)
    with engine_errors(f"pushing {remote}"):
        for chunk in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "status" in chunk:
                log(f"{chunk.get('id', '')} {chunk['status']}".strip())
            if "error" in chunk:
                raise StackError(
                    f"pushing {remote} failed: {chunk['error'].strip()}",
                    hint=f"check that the registry {registry.split('/')[0]} is reachable from this machine and that "
                         "you are logged in (`docker login`); every node of the swarm pulls the images from there",
                )
    return remote
