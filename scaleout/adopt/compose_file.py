"""A user's Compose file read as untrusted input, through the same readers as scaleout.yaml: the bounded
file reader (`scaleout.files.read_capped`) and the event-by-event YAML builder (`scaleout.config.yamlload`)
in its Compose dialect, which expands anchors, aliases and merge keys within bounds and reads scalars with
YAML 1.2's core schema like Compose's Go parser (`yes`/`on` stay strings, `22:22` is not a base-60 number).
Duplicate keys are an error, as in Compose. Its `${VAR}` references are resolved by
`scaleout.config.interpolation` (in its extended mode) and its `.env` by `scaleout.config.load.read_dotenv`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleout.config.bounds import compose_max_items
from scaleout.config.yamlload import COMPOSE, MAX_BYTES, decode_text, line_of, load_yaml
from scaleout.errors import ConfigError
from scaleout.files import read_capped

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "ComposeFile", "load_compose_file"]

MAX_DEPTH = COMPOSE.max_depth  # a Compose file needs about 8 levels
MAX_NODES = COMPOSE.max_nodes  # after expanding aliases


@dataclass(frozen=True)
class ComposeFile:
    """A loaded Compose file: its data and the line of every key, for `file:line: key:` messages."""

    path: Path
    source: str  # the name shown in messages
    data: dict[str, Any]
    lines: Mapping[tuple[str, ...], int] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def where(self, *keys: object) -> str:
        """`source:line` of the deepest known key of the path `keys`."""
        line = line_of(self.lines, tuple(str(k) for k in keys))
        return f"{self.source}:{line}" if line else self.source


def load_compose_file(path: Path, source: str | None = None) -> ComposeFile:
    """Read and parse a Compose file within the bounds above and each list's and map's own
    (config.bounds.COMPOSE_BOUNDS). Raises ConfigError (exit 2)."""
    source = source or str(path)
    try:
        data = read_capped(path, display=source, limit=MAX_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{source}: not found") from None
    text = decode_text(data, display=source)
    if not text.strip():
        raise ConfigError(f"{source}: the file is empty")
    doc = load_yaml(text, display=source, dialect=COMPOSE, max_items=compose_max_items)
    if doc.data is None:
        raise ConfigError(f"{source}: the file holds no YAML document")
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{source}: a Compose file is a mapping (services:, volumes:, ...), not a "
                          f"{type(doc.data).__name__}")
    bad = [k for k in doc.data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{source}: top-level key {bad[0]!r} is not a string")
    return ComposeFile(path=path.resolve(), source=source, data=doc.data, lines=doc.lines)
