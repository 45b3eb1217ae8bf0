"""Which nginx the balancer image runs, asked of the image itself (`nginx -v` in a throw-away
container), never guessed from its tag: a tag says nothing about a locally built or retagged image.
Answers are cached per image ID in .scaleout/nginx-version.json, so only a new image costs a container.

Rendering takes the version as data (see scaleout/render/nginx.py: HTTP/2 syntax changed in 1.25.1).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from scaleout.config.model import Config
from scaleout.errors import ConfigError, UnsafePathError
from scaleout.files import atomic_write, confined
from scaleout.layout import CONFIG_FILE, NGINX_VERSION_FILE
from scaleout.targets.runner import docker_client, engine_errors

Version = tuple[int, int, int]
MAX_CACHED = 16
_VERSION = re.compile(r"\b(?:nginx|openresty)/(\d+)\.(\d+)\.(\d+)")


def parse_nginx_version(output: str) -> Version | None:
    """The version in `nginx -v` output ("nginx version: nginx/1.22.1"), or None."""
    m = _VERSION.search(output)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def _read_cache(root: Path) -> dict[str, dict[str, str]]:
    try:
        path = confined(root, NGINX_VERSION_FILE)
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 64 * 1024:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnsafePathError):
        return {}
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, dict):
        return {}
    return {k: v for k, v in images.items() if isinstance(k, str) and isinstance(v, dict)
            and isinstance(v.get("version"), str)}


def _write_cache(root: Path, cache: dict[str, dict[str, str]]) -> None:
    kept = dict(list(cache.items())[-MAX_CACHED:])
    atomic_write(confined(root, NGINX_VERSION_FILE), json.dumps({"images": kept}, indent=2) + "\n")


def _ask_image(client, image: str) -> str:
    """What `nginx -v` prints in a throw-away container of `image` (removed whatever happens)."""
    import docker.errors

    with engine_errors(f"asking the balancer image {image} for its nginx version"):
        container = client.containers.create(image, ["-v"], entrypoint=["nginx"], network_disabled=True)
        try:
            try:
                container.start()
            except docker.errors.APIError as exc:  # no nginx on the image's PATH
                raise ConfigError(f"{CONFIG_FILE}: images.balancer: {image} cannot run `nginx -v` "
                                  f"({(exc.explanation or str(exc)).strip()[:200]})",
                                  hint="the balancer image must contain nginx (and sh and curl for its health watcher)"
                                  ) from None
            container.wait(timeout=60)
            return container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)


def balancer_nginx_version(config: Config, pull: bool = True) -> Version:
    """The nginx version of `config.images.balancer`, from the cache when this image ID was asked before.
    `pull`: fetch an image the engine lacks (`up`); without it (`render`, `export`) a missing image is a
    ConfigError: those commands send no request to the registry an image reference names."""
    root = config.project_dir.resolve()
    image = config.images.balancer
    client = docker_client()
    import docker.errors

    with engine_errors(f"looking for the balancer image {image}"):
        try:
            image_id = client.images.get(image).id
        except docker.errors.ImageNotFound:
            if not pull:
                raise ConfigError(
                    f"{CONFIG_FILE}: images.balancer: {image} is not on this engine, and this command does not pull "
                    "images (it would send a request to the registry the reference names); with balancer.tls the "
                    "rendered config depends on the image's nginx version",
                    hint=f"pull or build it first (`docker pull {image}`), or run `scaleout up`, which pulls it",
                ) from None
            image_id = client.images.pull(image).id
    cache = _read_cache(root)
    hit = cache.get(image_id)
    version = parse_nginx_version(f"nginx/{hit['version']}") if hit else None
    if version is None:
        output = _ask_image(client, image)
        version = parse_nginx_version(output)
        if version is None:
            raise ConfigError(f"{CONFIG_FILE}: images.balancer: {image} answered `nginx -v` with "
                              f"{output.strip()[:200]!r}, not a version",
                              hint="the balancer image must contain nginx")
        cache.pop(image_id, None)
        cache[image_id] = {"image": image, "version": ".".join(map(str, version))}
        _write_cache(root, cache)
    return version


def nginx_version_for(config: Config, pull: bool = True) -> Version | None:
    """The balancer's nginx version when rendering depends on it (balancer.tls: the HTTP/2 syntax);
    None otherwise, so that a plain-HTTP render never needs an engine. `pull`: as balancer_nginx_version."""
    return balancer_nginx_version(config, pull) if config.balancer.tls is not None else None
