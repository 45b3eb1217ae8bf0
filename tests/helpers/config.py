"""Helpers for the tests of scaleout.yaml's validation messages (the `proj` fixture is in
tests/unit/config/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleout.config.load import parse_config
from scaleout.errors import ConfigError


def svc(body: str) -> str:
    """A services: block with one service `db` whose keys are the lines of `body`."""
    return "services:\n  db:\n" + "".join(f"    {line}\n" for line in body.split("\n"))


def problem(proj: Path, text: str) -> str:
    """The whole message of the ConfigError that `text` gives."""
    with pytest.raises(ConfigError) as err:
        parse_config(text, proj, env={})
    return str(err.value)
