"""What the balancer may publish: rules that keep secrets out of the static folder and its routes.

nginx serves `static.routes` from `static.dir` to anyone who can reach the balancer, and `export k8s`
copies that folder into a manifest. So the folder may not be the project itself (`.`), a hidden folder
(`.git`, `.scaleout`, which holds the TLS key), nor a folder holding the project's secrets (`.env`, an env
file the config names, scaleout.yaml beside them); and no route may name a hidden file (`/.env`,
`/.git/config`). `/.well-known/` is the one hidden name the web uses in the open, and stays allowed.
Hidden files further down a folder route are denied by nginx itself (scaleout/render/nginx.py).

A file anywhere under static.dir whose name says it holds a secret (`SECRET_FILE_PATTERNS`: env files such
as `.env.production` or `app.env`, private keys and certificates such as `id_rsa` or `*.pem`, credential
files such as `.npmrc`, `.netrc`, `.htpasswd`, and `.git`, `.ssh`, `.aws` folders) makes static.dir refused,
whether the config names it or not and however deep it is: the folder reaches the balancer container and
`export k8s` whole, so denying its URL is not enough. The message names the file; move it out of static.dir.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PUBLIC_HIDDEN", "SECRET_FILE_PATTERNS", "SECRET_NAMES", "hidden_route_problem", "secret_files",
           "static_dir_problems"]

PUBLIC_HIDDEN = ".well-known"  # RFC 8615: meant to be fetched by anyone
# names whose presence in a folder makes it the project's (or a repository's) root, never a public one
SECRET_NAMES = (".env", ".git", ".scaleout", "scaleout.yaml")


# names (matched case-insensitively, on the file or folder name alone) that hold secrets and never belong
# in a published folder; documented in the README (static.dir)
SECRET_FILE_PATTERNS = (
    ".env", ".env.*", "*.env", ".envrc",  # environment files
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",  # keys and certificates with their keys
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_*_sk",  # SSH private keys (never the .pub)
    ".npmrc", ".pypirc", ".netrc", ".htpasswd", ".git-credentials", ".dockercfg",  # credentials
    ".git", ".ssh", ".aws", ".docker", ".gnupg",  # folders of credentials or history
)
MAX_SCANNED = 20_000  # entries of static.dir looked at; a larger folder is refused when it is copied
MAX_FOLDER_DEPTH = 64  # folders within folders under static.dir; a real site nests a handful


def _is_secret(name: str) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, pattern) for pattern in SECRET_FILE_PATTERNS)


class _TooDeep(Exception):
    pass


def secret_files(folder: Path, limit: int = MAX_SCANNED, max_depth: int = MAX_FOLDER_DEPTH) -> list[str]:
    """The paths (relative to `folder`, POSIX) of the entries below it whose names say they hold secrets.
    Links are listed by their own name and never followed; at most `limit` entries are looked at, without
    recursion. A folder nested deeper than `max_depth` raises _TooDeep."""
    found: list[str] = []
    seen = 0
    pending: list[tuple[Path, tuple[str, ...]]] = [(folder, ())]
    while pending and seen < limit:
        path, rel = pending.pop()
        try:
            with os.scandir(path) as it:
                head = zip(range(limit - seen), it, strict=False)  # a folder of a million entries: not all read
                entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for _, e in head)
        except OSError:
            continue
        for name, is_dir in entries:
            seen += 1
            if _is_secret(name):
                found.append("/".join((*rel, name)))
            elif is_dir:  # one line for .git/, not one per object
                if len(rel) + 1 >= max_depth:
                    raise _TooDeep("/".join((*rel, name)))
                pending.append((path / name, (*rel, name)))
    return sorted(found)


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
    if not problems:  # named env files get their own message above
        try:
            secrets = secret_files(folder) if folder.is_dir() else []
        except _TooDeep as deep:
            return [f"static.dir: {static_dir}/{str(deep)[:80]}...: folders nested deeper than {MAX_FOLDER_DEPTH} "
                    "levels are not published (a crafted tree?); flatten it"]
        if secrets:
            shown = ", ".join(f"{static_dir}/{rel}" for rel in secrets[:5]) + (" ..." if len(secrets) > 5 else "")
            problems.append(f"static.dir: {shown}: the name says it holds a secret (an env file, a private key or "
                            "certificate, credentials), and everything in static.dir is published; move it out "
                            f"of {static_dir}/ (the rule and the names: README, static.dir)")
    return problems
