"""The project folder the config tests validate against."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """A project folder with a service folder (db/, with a Dockerfile) and three env files."""
    p = tmp_path / "proj"
    (p / "db").mkdir(parents=True)
    (p / "db" / "Dockerfile").write_text("FROM x\n")
    for name, text in (("ok.env", "A=1\n"), ("app.env", "A=1\n"), ("db.env", "B=2\n")):
        (p / name).write_text(text)
    return p
