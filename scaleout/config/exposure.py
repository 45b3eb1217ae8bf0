"""What the balancer may publish: rules that keep secrets out of the static folder and its routes.

nginx serves `static.routes` from `static.dir` to anyone who can reach the balancer, and `export k8s`
copies that folder into a manifest. So the folder may not be the project itself (`.`), a hidden folder
(`.git`, `.scaleout`, which holds the TLS key), nor a folder holding the project's secrets (`.env`, an env
file the config names, scaleout.yaml beside them); and no route may name a hidden file (`/.env`,
`/.git/config`). `/.well-known/` is the one hidden name the web uses in the open, and stays allowed.
Hidden files further down a folder route are denied by nginx itself (scaleout/render/nginx.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["PUBLIC_HIDDEN", "SECRET_NAMES", "hidden_route_problem", "static_dir_problems"]

PUBLIC_HIDDEN = ".well-known"  # RFC 8615: meant to be fetched by anyone
# names whose presence in a folder makes it the project's (or a repository's) root, never a public one
SECRET_NAMES = (".env", ".git", ".scaleout", "scaleout.yaml")


def hidden_route_problem(path: str) -> str | None:
    """Why a URL path of static.routes (or a worker, the offline page) may not be served, or None."""
    hidden = [seg for seg in path.split("/") if seg.startswith(".") and seg != PUBLIC_HIDDEN]
    if hidden:
        return (f"{path!r} names the hidden file or folder {hidden[0]!r}: hidden files (.env, .git/) are never "
                f"published (only /{PUBLIC_HIDDEN}/ is allowed)")
    return None


def static_dir_problems(root: Path, static_dir: str, env_files: Iterable[str]) -> list[str]:
    """Why static.dir may not be published (empty when it may). `root` is the resolved project folder;
    `env_files` the env files the config names, relative to it."""
    if any(seg.startswith(".") for seg in static_dir.split("/")):
        what = "the project folder itself" if static_dir in (".", "./") else "a hidden folder"
        return [f"static.dir: {static_dir!r} is {what}; nginx would publish everything in it "
                "(.env, env files, .git/). Use a folder of its own, such as public"]
    try:
        folder = (root / static_dir).resolve()
    except (OSError, RuntimeError):
        return []  # a link loop: reported as outside the project by the caller
    if folder == root or folder in root.parents:
        return [f"static.dir: {static_dir!r} is the project folder (or holds it); nginx would publish .env, "
                "env files and .git/. Use a folder of its own, such as public"]
    problems = []
    present = [name for name in SECRET_NAMES if (folder / name).exists() or (folder / name).is_symlink()]
    if present:
        problems.append(f"static.dir: {static_dir}/ holds {', '.join(present)}: it looks like a project or "
                        "repository root, and nginx would publish it. Use a folder of its own, such as public")
    for rel in env_files:
        try:
            env_path = (root / rel).resolve()
        except (OSError, RuntimeError):
            continue
        if env_path == folder or folder in env_path.parents:
            problems.append(f"static.dir: {static_dir}/ holds the env file {rel}, which nginx would publish; "
                            "move the env file out of the static folder")
    return problems
