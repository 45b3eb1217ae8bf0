"""Fingerprinted copies of static assets, so that nobody hashes file names by hand.

For every file under a prefix route of `static.routes` (e.g. public/static/app.css served at /static/),
scaleout writes a copy named after its content, `app.<hash>.css`, into .scaleout/assets/ -- never into
the user's own folder -- and the balancer serves it there with `immutable` caching. A manifest maps each
asset to its URL ("app.css" -> "/static/app.3f2a9c0d1e4b.css"); the replicas get it as the
SCALEOUT_ASSETS environment variable (JSON) and link the hashed URLs from their pages.

Only files scaleout wrote are ever deleted, and only from .scaleout/assets/. The copies of the
previous generation are kept, so a page rendered just before a change still finds its assets.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from scaleout.config import Config
from scaleout.errors import ConfigError, ScaleoutError
from scaleout.render import ASSETS_DIR, ENV_ASSETS, FINGERPRINT_RE, atomic_write

MANIFEST = f"{ASSETS_DIR}/manifest.json"
HASH_LEN = 12
# an environment variable stays well below the kernel's per-string limit (128 KiB)
MAX_ENV_BYTES = 64 * 1024

# the rule nginx uses to recognise a fingerprinted name
_FINGERPRINTED = re.compile(FINGERPRINT_RE)
_SAFE_REL = re.compile(r"^[A-Za-z0-9._~/-]+$")
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]+$")


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


def _candidates(folder: Path) -> list[Path]:
    """Regular files below `folder` that can get a fingerprinted twin: not hidden, not already
    fingerprinted, with an extension and a URL-safe path."""
    if not folder.is_dir():
        return []
    root = folder.resolve()
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if root not in p.resolve().parents:
            continue  # a symlink out of the static folder is not ours to publish
        if _FINGERPRINTED.search(p.name) or not _SAFE_SUFFIX.match(p.suffix) or not p.stem:
            continue
        if not _SAFE_REL.match(rel.as_posix()):
            continue
        found.append(p)
    return found


def plan_assets(config: Config) -> AssetPlan:
    """Hash every asset under the prefix routes. Reads the static folder, writes nothing."""
    static_root = config.project_dir / config.static.dir
    urls: dict[str, str] = {}
    copies: dict[str, Path] = {}
    for route in prefix_routes(config):
        folder = static_root / route.strip("/")
        for src in _candidates(folder):
            rel = src.relative_to(folder).as_posix()
            if route + rel in config.static.service_workers:
                continue  # a worker's URL must never change: browsers find updates at the same URL
            data = src.read_bytes()
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


def _read_manifest(project_dir: Path) -> dict:
    try:
        data = json.loads((project_dir / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _ours(rel: object) -> bool:
    """A manifest entry that names a file scaleout may have written (and so may delete)."""
    return isinstance(rel, str) and bool(_SAFE_REL.match(rel)) and ".." not in rel.split("/") and not rel.startswith("/")


def write_assets(project_dir: Path, plan: AssetPlan) -> list[str]:
    """Write the hashed copies and the manifest into .scaleout/assets/; remove copies that scaleout
    wrote two generations ago. Returns the copies written (paths under .scaleout/assets/)."""
    out = project_dir / ASSETS_DIR
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    written = []
    for rel, src in plan.copies.items():
        dest = out / rel
        if not _ours(rel) or root not in dest.resolve().parents:
            raise ScaleoutError(f"internal: refusing to write asset copy {rel!r} outside {ASSETS_DIR}/")
        if not dest.is_file():  # a name carries its content: an existing copy is already right
            atomic_write(dest, src.read_bytes())
            written.append(rel)
    old = _read_manifest(project_dir)
    current = set(plan.copies)
    previous = sorted(r for r in old.get("files", []) if _ours(r) and r not in current)
    for rel in old.get("previous", []):
        if _ours(rel) and rel not in current and rel not in previous:
            (out / rel).unlink(missing_ok=True)
            _prune_empty(out, (out / rel).parent)
    manifest = {"assets": plan.urls, "files": sorted(current), "previous": previous}
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return written


def _prune_empty(root: Path, folder: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def fingerprint_assets(config: Config) -> AssetPlan:
    """Plan and write the fingerprinted copies of `config`'s static assets."""
    plan = plan_assets(config)
    write_assets(config.project_dir, plan)
    return plan
