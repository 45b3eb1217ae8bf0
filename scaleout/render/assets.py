"""Fingerprinted copies of static assets, so that nobody hashes file names by hand.

For every file under a prefix route of `static.routes` (e.g. public/static/app.css served at /static/),
scaleout writes a copy named after its content, `app.<hash>.css`, into .scaleout/assets/ -- never into
the user's own folder -- and the balancer serves it there with `immutable` caching. A manifest maps each
asset to its URL ("app.css" -> "/static/app.3f2a9c0d1e4b.css"); the replicas get it as the
SCALEOUT_ASSETS environment variable (JSON) and link the hashed URLs from their pages.

The copies and the manifest are part of the plan that scaleout.files writes: only files recorded in
the ledger (with unchanged bytes) are ever deleted. The copies of the previous generation are kept, so a
page rendered just before a change still finds its assets. A route folder, or a file in it, whose real
path leaves the project is never read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from scaleout.config.model import Config
from scaleout.errors import ConfigError, UnsafePathError
from scaleout.files import inside, read_project_file
from scaleout.layout import ASSETS_DIR, ASSETS_MANIFEST, ENV_ASSETS
from scaleout.render.common import FINGERPRINT_RE

MANIFEST = ASSETS_MANIFEST
MAX_ASSET_BYTES = 64 * 1024 * 1024
HASH_LEN = 12
# an environment variable stays well below the kernel's per-string limit (128 KiB)
MAX_ENV_BYTES = 64 * 1024

# the rule nginx uses to recognise a fingerprinted name
_FINGERPRINTED = re.compile(FINGERPRINT_RE)
_SAFE_REL = re.compile(r"[A-Za-z0-9._~/-]+")
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]+")


@dataclass(frozen=True)
class AssetPlan:
    """What fingerprinting produces: URLs for the pages, and the copies to write."""

    urls: dict[str, str] = field(default_factory=dict)  # name -> URL of the hashed copy
    copies: dict[str, Path] = field(default_factory=dict)  # path under ASSETS_DIR -> source file

    def env_value(self) -> str:
        """The SCALEOUT_ASSETS value: compact JSON, keys sorted (deterministic)."""
        return json.dumps(self.urls, sort_keys=True, separators=(",", ":"))


def prefix_routes(config: Config) -> list[str]:
    """The static routes that are folders (end with /): the only places fingerprinted assets live."""
    workers = set(config.static.service_workers)
    return [r for r in config.static.routes if r.endswith("/") and r not in workers]


def fingerprinted_name(name: str, data: bytes) -> str:
    """`app.css` -> `app.<first 12 hex of sha256>.css`."""
    digest = hashlib.sha256(data).hexdigest()[:HASH_LEN]
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{digest}.{suffix}"


def _candidates(folder: Path, project_root: Path, route: str) -> list[Path]:
    """Regular files below `folder` that can get a fingerprinted twin: not hidden, not already
    fingerprinted, with an extension and a URL-safe path, and really inside the project."""
    if not folder.is_dir():
        return []
    if not inside(project_root, folder):
        raise UnsafePathError(
            f"static.routes: the folder behind {route} ({folder}) leads outside the project folder "
            "(a symbolic link?); scaleout does not publish files from outside the project",
            hint="replace the link with a real folder inside the project",
        )
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or p.is_symlink() or not p.is_file():
            continue
        if not inside(project_root, p):
            continue  # reached through a linked folder inside the route: not ours to publish
        if _FINGERPRINTED.search(p.name) or not _SAFE_SUFFIX.fullmatch(p.suffix) or not p.stem:
            continue
        if not _SAFE_REL.fullmatch(rel.as_posix()):
            continue
        found.append(p)
    return found


def _read_asset(project_root: Path, src: Path) -> bytes:
    """A static file's bytes, its size checked on the open file before one byte is read."""
    return read_project_file(project_root, src.relative_to(project_root).as_posix(), max_bytes=MAX_ASSET_BYTES,
                             what="static.routes: the static file")


def plan_assets(config: Config) -> AssetPlan:
    """Hash every asset under the prefix routes. Reads the static folder, writes nothing."""
    project_root = config.project_dir.resolve()
    static_root = project_root / config.static.dir
    urls: dict[str, str] = {}
    copies: dict[str, Path] = {}
    for route in prefix_routes(config):
        folder = static_root / route.strip("/")
        for src in _candidates(folder, project_root, route):
            rel = src.relative_to(folder).as_posix()
            if route + rel in config.static.service_workers:
                continue  # a worker's URL must never change: browsers find updates at the same URL
            data = _read_asset(project_root, src)
            hashed = str(PurePosixPath(rel).parent / fingerprinted_name(src.name, data)).removeprefix("./")
            url = route + hashed
            key = rel if rel not in urls else route + rel
            urls[key] = url
            copies[url.lstrip("/")] = src
    plan = AssetPlan(urls=dict(sorted(urls.items())), copies=dict(sorted(copies.items())))
    size = len(plan.env_value().encode())
    if size > MAX_ENV_BYTES:
        raise ConfigError(
            f"static.routes: {len(urls)} assets under {', '.join(prefix_routes(config))} make a manifest of "
            f"{size // 1024} KiB, too large for the {ENV_ASSETS} variable (limit {MAX_ENV_BYTES // 1024} KiB)",
            hint="serve large collections (images, fonts) from a route of their own that is not a folder route, "
            "or fingerprint them with your bundler (names like app.1a2b3c4d.css are served as they are)",
        )
    return plan


def _read_previous(project_dir: Path) -> list[str]:
    """The copies the last render wrote (its manifest's `files`): kept one more generation."""
    try:
        path = project_dir / MANIFEST
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 4 * 1024 * 1024:
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    files = data.get("files", []) if isinstance(data, dict) else []
    return [r for r in files if _ours(r)] if isinstance(files, list) else []


def _ours(rel: object) -> bool:
    """A manifest entry that can name a copy scaleout wrote (the ledger decides what may be removed)."""
    return isinstance(rel, str) and bool(_SAFE_REL.fullmatch(rel)) and ".." not in rel.split("/") \
        and not rel.startswith("/")


def asset_files(config: Config, plan: AssetPlan) -> tuple[dict[str, bytes], frozenset[str]]:
    """The files to write under .scaleout/assets/ (path relative to the project -> bytes) and the
    previous generation's copies to keep. Reads the sources; writes nothing."""
    files: dict[str, bytes] = {}
    project_root = config.project_dir.resolve()
    for rel, src in plan.copies.items():
        files[f"{ASSETS_DIR}/{rel}"] = _read_asset(project_root, src)
    current = sorted(plan.copies)
    previous = sorted(r for r in _read_previous(config.project_dir) if r not in plan.copies)
    manifest = {"assets": plan.urls, "files": current, "previous": previous}
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return files, frozenset(f"{ASSETS_DIR}/{r}" for r in previous)
