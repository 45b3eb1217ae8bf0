"""A user's Compose file read as untrusted input: a bounded YAML loader, key lines for messages,
Compose's variable interpolation and its `.env` file.

The loader refuses what could exhaust memory or time before building any Python object: files over
1 MiB or not regular (a FIFO, /dev/zero behind a link), nesting deeper than `MAX_DEPTH`, aliases that
expand past `MAX_NODES` nodes or refer to themselves. Duplicate keys are an error, as in Compose.
Scalars follow YAML 1.2's core schema like Compose's Go parser: `yes`/`on` stay strings and `22:22`
is not a base-60 number.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from scaleout.errors import ConfigError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "ComposeFile", "interpolate", "load_compose_file", "read_dotenv",
           "read_bounded"]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32  # a Compose file needs about 8 levels
MAX_NODES = 20_000  # after expanding aliases; a large real Compose file has a few thousand

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Resolver(BaseResolver):
    """YAML 1.2 core schema scalars (what Compose's Go parser sees)."""


_Resolver.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                list("tTfF"))
_Resolver.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                list("-+0123456789"))
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
_Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                                ["~", "n", "N", ""])
_Resolver.add_implicit_resolver(_MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"])


class _Constructor(SafeConstructor):
    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)  # YAML 1.2: a leading zero is still decimal


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)


class _Loader(Reader, Scanner, Parser, Composer, _Constructor, _Resolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


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
        path = tuple(str(k) for k in keys)
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                return f"{self.source}:{self.lines[path[:n]]}"
        return self.source


def read_bounded(path: Path, what: str, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; never blocks on a FIFO or reads a device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"{what}: not found") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot be read ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what}: not a regular file")
        if st.st_size > max_bytes:
            raise ConfigError(f"{what}: larger than {max_bytes // 1024} KiB: not read")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ConfigError(f"{what}: larger than {max_bytes // 1024} KiB: not read")
    return data


def _decode(data: bytes, source: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    if "\0" in text:
        raise ConfigError(f"{source}: contains a NUL character: not a Compose file")
    return text


def _yaml_error(exc: yaml.YAMLError, source: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return ConfigError(f"{where}: not valid YAML: {context + ' ' if context else ''}{problem}")


def _check_events(text: str, source: str) -> None:
    """Nesting depth and node count on the event stream, before any node is built (the composer
    recurses, so a deep document must be refused before it reaches it)."""
    depth = 0
    count = 0
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(f"{source}:{event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels: "
                                      "not a Compose file scaleout reads")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            count += 1
            if count > 2 * MAX_NODES:
                raise ConfigError(f"{source}:{event.start_mark.line + 1}: more than {MAX_NODES} YAML nodes: "
                                  "not a Compose file scaleout reads")
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Aliases expanded: at most MAX_NODES nodes and MAX_DEPTH levels, no alias inside itself, no
    duplicate key in a mapping."""
    seen: dict[int, tuple[int, int]] = {}  # node -> (expanded size, expanded height)
    on_path: set[int] = set()

    def deeper(node: yaml.Node) -> ConfigError:
        return ConfigError(f"{source}:{node.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels once "
                           "aliases are expanded")

    def size(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in on_path:
            raise ConfigError(f"{source}:{node.start_mark.line + 1}: an alias refers to a node that contains it: "
                              "a recursive structure is not a Compose file")
        if key in seen:
            if depth + seen[key][1] > MAX_DEPTH:
                raise deeper(node)
            return seen[key]
        if depth > MAX_DEPTH:
            raise deeper(node)
        on_path.add(key)
        total, height = 1, 0
        if isinstance(node, yaml.MappingNode):
            _check_keys(node, source)
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        for child in children:
            child_size, child_height = size(child, depth + 1)
            total += child_size
            height = max(height, child_height + 1)
            if total > MAX_NODES:
                raise ConfigError(f"{source}:{node.start_mark.line + 1}: more than {MAX_NODES} YAML nodes once "
                                  "aliases are expanded (an alias bomb?): not read")
        on_path.discard(key)
        seen[key] = (total, height)
        return seen[key]

    size(root, 0)


def _check_keys(node: yaml.MappingNode, source: str) -> None:
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(f"{source}:{line}: a mapping key must be a plain value, not a {key_node.id}")
        k = str(key_node.value)
        if k in seen:
            raise ConfigError(f"{source}:{line}: duplicate key {k!r} (first on line {seen[k]})",
                              hint="Compose refuses duplicate keys too: keep one")
        seen[k] = line


def _key_lines(root: yaml.Node) -> dict[tuple[str, ...], int]:
    """Key path -> 1-based line, following merge keys (explicit keys win, as in the data)."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...], depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if isinstance(node, yaml.MappingNode):
            merged: list[yaml.Node] = []
            for k, v in node.value:
                if k.tag == _MERGE_TAG:
                    merged.extend(v.value if isinstance(v, yaml.SequenceNode) else [v])
                    continue
                key_path = (*path, str(k.value))
                lines[key_path] = k.start_mark.line + 1
                walk(v, key_path, depth + 1)
            for m in merged:
                if isinstance(m, yaml.MappingNode):
                    for k, v in m.value:
                        key_path = (*path, str(k.value))
                        if k.tag != _MERGE_TAG and key_path not in lines:
                            lines[key_path] = k.start_mark.line + 1
                            walk(v, key_path, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)), depth + 1)

    walk(root, (), 0)
    return lines


def load_compose_file(path: Path, source: str | None = None) -> ComposeFile:
    """Read and parse a Compose file within the bounds above. Raises ConfigError (exit 2)."""
    source = source or str(path)
    text = _decode(read_bounded(path, source), source)
    if not text.strip():
        raise ConfigError(f"{source}: the file is empty")
    _check_events(text, source)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ConfigError(f"{source}: the file holds no YAML document")
        _check_nodes(root, source)
        data = loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a Compose file is a mapping (services:, volumes:, ...), not a "
                          f"{type(data).__name__}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{source}: top-level key {bad[0]!r} is not a string")
    return ComposeFile(path=path.resolve(), source=source, data=data, lines=_key_lines(root))


# --- interpolation -------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A ${VAR?message} whose variable is unset, or a reference Compose could not parse."""


def _braced_end(text: str, start: int) -> int:
    """Index of the `}` that closes the `${` opened just before `start`."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed '${{' in {text!r}")


def _expand(body: str, env: Mapping[str, str]) -> str:
    m = _NAME.match(body)
    if not m:
        raise InterpolationError(f"invalid variable reference ${{{body}}}")
    name, rest = m.group(0), body[m.end():]
    value = env.get(name)
    if rest == "":
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            unset = value is None or (op.startswith(":") and value == "")
            if op.endswith("-"):
                return interpolate(arg, env) if unset else str(value)
            if op.endswith("?"):
                if unset:
                    raise InterpolationError(f"{name} is not set: {interpolate(arg, env) or 'required'}")
                return str(value)
            return "" if unset else interpolate(arg, env)
    raise InterpolationError(f"invalid variable reference ${{{body}}}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt}, nested defaults, and $$ for a literal $."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _braced_end(text, i + 2)
            out.append(_expand(text[i + 2:end], env))
            i = end + 1
        else:
            m = _NAME.match(text, i + 1)
            if m:
                out.append(env.get(m.group(0)) or "")
                i = m.end()
            else:
                out.append("$")
                i += 1
    return "".join(out)


def read_dotenv(path: Path, source: str) -> dict[str, str]:
    """The variables of a Compose `.env` file (KEY=VALUE lines, `export`, comments, quotes); {} if absent."""
    if not os.path.lexists(path):
        return {}
    text = _decode(read_bounded(path, source), source)
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _NAME.fullmatch(key):
            continue  # Compose rejects such a line; here it only means the variable is unknown
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
            if raw.strip().partition("=")[2].strip().startswith('"'):
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
        env[key] = value
    return env
