"""`scaleout init`: a runnable project from templates/init/<template>/ plus the shared public/ folder."""

from __future__ import annotations

import os
from pathlib import Path

from scaleout.config.load import parse_config
from scaleout.config.model import default_name
from scaleout.errors import RenderConflictError, UsageError
from scaleout.files import atomic_write, check_no_links, confined
from scaleout.render.templates import templates_dir

TEMPLATES = {
    "python": {"port": 8000, "base_image": "python:3.12-slim", "redis": False},
    "node": {"port": 3000, "base_image": "node:20-slim", "redis": False},
    # the lesson of scaling out: the session's state lives in a service every replica shares
    "python-redis": {"port": 8000, "base_image": "python:3.12-slim", "redis": True},
    "node-redis": {"port": 3000, "base_image": "node:20-slim", "redis": True},
}


def scaffold_files(name: str, template: str) -> dict[str, bytes]:
    """Relative path -> content of every file `init` writes for `template`."""
    if template not in TEMPLATES:
        raise UsageError(f"--template: must be one of {', '.join(TEMPLATES)} (got {template!r})")
    root = templates_dir() / "init"
    files: dict[str, bytes] = {}
    for base, prefix in ((root / "common", ""), (root / template, "")):
        for p in sorted(base.rglob("*")):
            # an installer may byte-compile the template's app.py next to it
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
                rel = prefix + p.relative_to(base).as_posix()
                if rel == "gitignore":
                    rel = ".gitignore"
                files[rel] = p.read_bytes()
    from scaleout.render.templates import template_env

    text = template_env().get_template("init/scaleout.yaml.j2").render(name=name, **TEMPLATES[template])
    files["scaleout.yaml"] = text.encode("utf-8")
    return dict(sorted(files.items()))


def init_project(target: Path, template: str = "python", *, name: str | None = None, force: bool = False,
                 trusted: Path | None = None) -> list[str]:
    """Write a new project into `target`. Refuses to overwrite any existing file unless `force`, and
    refuses (even with `force`) a symbolic link on the way to any file it writes: the folder may be a
    cloned repository whose `public/static` leads elsewhere (`trusted`, default the current folder: where the
    user works, whose own path may hold links). Everything is checked before the first write."""
    check_no_links(target, what="init", trusted=trusted)
    target = target.resolve()
    name = name or default_name(target)
    files = scaffold_files(name, template)
    # the scaffolded config must itself be valid
    parse_config(files["scaleout.yaml"].decode(), target, env={})
    paths = {rel: confined(target, rel) for rel in files}  # UnsafePathError before anything is written
    existing = [rel for rel, path in paths.items() if os.path.lexists(path)]
    if existing and not force:
        raise RenderConflictError(
            f"{target}: would overwrite existing file(s): {', '.join(existing)}",
            hint="choose an empty folder, or pass --force to overwrite them",
        )
    for rel, data in files.items():
        atomic_write(confined(target, rel), data.decode("utf-8"))
    return list(files)
