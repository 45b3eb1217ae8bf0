"""The per-stack secret that unlocks the balancer's pin route (`X-Scaleout-Pin: SECRET:REPLICA`).

`up` makes it when there is none (kept 0600 in .scaleout/replay-secret), `down` removes it so the next `up`
makes a new one. Rendering takes it as an input; it is never made inside scaleout/render/.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from scaleout.errors import UnsafePathError
from scaleout.files import atomic_write, confined, read_beneath
from scaleout.layout import OUT_DIR

__all__ = ["SECRET_FILE", "PIN_HEADER", "ensure_secret", "read_secret", "forget_secret"]

SECRET_FILE = f"{OUT_DIR}/replay-secret"
PIN_HEADER = "X-Scaleout-Pin"
_VALID = re.compile(r"[0-9a-f]{64}")


def _path(project_dir: Path) -> Path:
    """The secret's file, never through a symbolic link (UnsafePathError)."""
    return confined(project_dir.resolve(), SECRET_FILE, what="replay secret")


def read_secret(project_dir: Path) -> str | None:
    """The saved secret, or None. Opened once, never through a link (O_NOFOLLOW on every component below the
    project, fstat on the open descriptor): a committed link to /dev/zero, to a huge file or out of the
    project, and a swap of the path between a check and the open, all give None."""
    try:
        raw = read_beneath(project_dir.resolve(), SECRET_FILE, limit=256, display=SECRET_FILE)
        text = raw.decode("ascii").strip()
    except (OSError, UnicodeDecodeError, UnsafePathError):
        return None
    return text if _VALID.fullmatch(text) else None


def current_or_new(project_dir: Path) -> str:
    """The stack's secret, or a new one not yet saved (save it with save_secret once `up` may write)."""
    return read_secret(project_dir) or secrets.token_hex(32)


def save_secret(project_dir: Path, value: str) -> None:
    if read_secret(project_dir) == value:
        return
    path = _path(project_dir)  # a linked .scaleout/ is refused: the secret is never written outside the project
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, value + "\n", mode=0o600)


def ensure_secret(project_dir: Path) -> str:
    value = current_or_new(project_dir)
    save_secret(project_dir, value)
    return value


def forget_secret(project_dir: Path) -> None:
    try:
        _path(project_dir).unlink()
    except (FileNotFoundError, UnsafePathError):
        pass  # nothing to remove, or a link: nothing is removed through it
