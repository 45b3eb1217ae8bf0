"""The generated service worker: what it precaches and the content hash that names its cache."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from scaleout.config.model import Config
from scaleout.errors import ConfigError
from scaleout.files import inside, read_project_file
from scaleout.render.common import served_by_balancer
from scaleout.render.templates import template_env

CACHE_PREFIX = "scaleout-offline-"
MAX_OFFLINE_PAGE_BYTES = 4 * 1024 * 1024  # the page is scanned for the files it references
MAX_PRECACHED_BYTES = 64 * 1024 * 1024  # each file the worker precaches (the same bound as an asset's)
_REF = re.compile(r"""(?:href|src)\s*=\s*["']([^"'#?]+)["']""", re.IGNORECASE)


def _public_file(project_root: Path, static_root: Path, url_path: str) -> Path | None:
    """The file behind a URL path in the static folder, if it is a regular file inside the project."""
    rel = PurePosixPath(url_path.lstrip("/"))
    if ".." in rel.parts:
        return None
    p = static_root / rel
    return p if p.is_file() and inside(project_root, p) else None


def precache_files(config: Config) -> dict[str, bytes]:
    """URL path -> bytes of the offline page and the local files it references."""
    project_root = config.project_dir.resolve()
    static_root = project_root / config.static.dir
    page = config.static.offline_page
    if not served_by_balancer(page, config):
        raise ConfigError(
            f"static.offline_page: {page} is not one of static.routes, "
            f"so nginx would not serve it from {config.static.dir}/",
            hint="add it to static.routes, or set static.generate_worker: false to bring your own worker",
        )
    page_file = _public_file(project_root, static_root, page)
    if page_file is None:
        raise ConfigError(
            f"static.offline_page: {page} not found in {config.static.dir}/",
            hint="create the page, or set static.generate_worker: false to bring your own worker",
        )
    files = {page: _read(project_root, page_file, MAX_OFFLINE_PAGE_BYTES, "static.offline_page:")}
    html = files[page].decode("utf-8", errors="replace")
    for ref in _REF.findall(html):
        if not ref.startswith("/") or ref.startswith("//"):
            continue  # only same-origin absolute paths are precached
        # only what nginx serves from the static folder: anything else would go to a replica, and one
        # failed fetch makes `cache.addAll` reject, so the worker would never install
        f = _public_file(project_root, static_root, ref) if served_by_balancer(ref, config) else None
        if f is not None:
            files[ref] = _read(project_root, f, MAX_PRECACHED_BYTES, f"static.offline_page: {page} references")
    return dict(sorted(files.items()))


def _read(project_root: Path, path: Path, max_bytes: int, what: str) -> bytes:
    """The bytes of a file in the static folder, its size checked before it is read."""
    return read_project_file(project_root, path.relative_to(project_root).as_posix(), max_bytes=max_bytes, what=what)


def cache_name(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for path, data in sorted(files.items()):
        h.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
    return CACHE_PREFIX + h.hexdigest()[:16]


def render_worker(config: Config) -> str | None:
    """The worker script's text, or None when the project brings its own worker."""
    if not (config.static.generate_worker and config.static.service_workers):
        return None
    files = precache_files(config)
    return template_env().get_template("sw/service-worker.js.j2").render(
        static_dir=config.static.dir,
        cache_name=cache_name(files),
        cache_prefix=CACHE_PREFIX,
        offline_page=config.static.offline_page,
        precache=list(files),
    )
