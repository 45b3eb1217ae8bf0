"""Untrusted text files (scaleout.yaml, .env, env files) read and parsed with hard bounds.

A crafted scaleout.yaml must end in one `file:line: key: message` ConfigError, never a hang, a
traceback or gigabytes of memory. So:

- files are read by `read_capped`: opened non-blocking, refused unless a regular file (a FIFO, a
  device such as /dev/zero, a folder), and never more than `MAX_BYTES` + 1 bytes are read;
- YAML is parsed event by event (libyaml when present), never through PyYAML's recursive composer:
  anchors and aliases are refused where they appear, before anything could expand; nesting deeper
  than `MAX_DEPTH`, more than `MAX_NODES` values, numbers longer than `MAX_NUMBER_CHARS`, duplicate
  keys, non-scalar keys and tags other than YAML's plain ones are refused with their line;
- plain scalars are read as YAML 1.1 does (`yes` is true), except that the sexagesimal `22:22`
  (base 60 in YAML 1.1, a port mapping to anyone writing Compose) and dates stay strings.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleout.errors import ConfigError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "Document", "decode_text", "load_yaml", "read_capped"]

MAX_BYTES = 1 << 20  # 1 MiB: a real scaleout.yaml is a few KB
MAX_DEPTH = 32  # a real one nests 5 deep
MAX_NODES = 100_000
MAX_INT_DIGITS = 18  # fits a signed 64-bit integer, and far below Python's int/str conversion limit
MAX_NUMBER_CHARS = 40

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "value")}
_COLLECTION_TAGS = {None, "!", f"{_TAG}map", f"{_TAG}seq"}


def read_capped(path: Path, *, display: str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; ConfigError for anything else.

    Opened with O_NONBLOCK so that a FIFO cannot block the open, then checked with fstat on the open
    descriptor (no race with a swapped path); a symlink is followed, and what it points at must be a
    regular file too, so a link to /dev/zero is refused before a single byte is read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"{display}: cannot be read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket?)"
            raise ConfigError(f"{display}: is {kind}; scaleout reads only regular files")
        if st.st_size > limit:
            raise ConfigError(f"{display}: is {st.st_size} bytes; at most {limit} bytes are allowed")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # the file grew after fstat
            raise ConfigError(f"{display}: is larger than {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"{display}: cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def decode_text(data: bytes, *, display: str) -> str:
    """UTF-8 text (a leading byte-order mark is dropped); the line of the first bad byte otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{display}:{line}: cannot be read: not valid UTF-8 (byte {exc.start}); "
                          "save it as UTF-8") from None


@dataclass
class Document:
    """A YAML document as plain data (dicts, lists, str, int, float, bool, None) and, for every key
    path (keys and list indexes as strings), the 1-based line it starts on."""

    data: Any
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def line_of(self, path: tuple[str, ...]) -> int | None:
        """The line of `path`, or of its nearest parent that has one."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("value", "path", "key", "key_line", "duplicate", "first_lines", "limit", "line")

    def __init__(self, value: dict | list, path: tuple[str, ...], limit: int | None = None, line: int = 0) -> None:
        self.value = value
        self.path = path
        self.limit = limit  # the most items it may hold (None: no bound beyond MAX_NODES)
        self.line = line
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.duplicate = False  # the pending key was set before: its value is dropped
        self.first_lines: dict[Any, int] = {}


_NO_KEY = object()


def load_yaml(text: str, *, display: str, max_items: Callable[[tuple[str, ...]], int] | None = None) -> Document:
    """Parse one YAML document under the bounds described in the module docstring. `max_items(path)`, when
    given, bounds each list or map by its key path: the parse stops at the first item too many."""
    import yaml

    if len(text) > MAX_BYTES:
        raise ConfigError(f"{display}: is larger than {MAX_BYTES} bytes")
    loader_cls = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    builder = _Builder(display, max_items)
    try:
        loader = loader_cls(text)
        try:
            while loader.check_event():
                builder.feed(loader.get_event())
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display}:{mark.line + 1}" if mark is not None else display
        problem = exc.problem or exc.context or "cannot be parsed"
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        # libyaml counts bytes of the UTF-8 text, PyYAML characters
        pos = exc.position
        before = text.encode("utf-8", "surrogatepass")[:pos] if loader_cls is not yaml.SafeLoader else text[:pos]
        line = (before.count(b"\n") if isinstance(before, bytes) else before.count("\n")) + 1
        char = exc.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        raise ConfigError(f"{display}:{line}: not valid YAML: character {shown} is not allowed") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "cannot be parsed"
        raise ConfigError(f"{display}: not valid YAML: {first}") from None
    if builder.duplicates:
        raise ConfigError(builder.duplicates)
    return Document(builder.root, builder.lines)


class _Builder:
    """Turns parser events into plain data, checking every bound as it goes (no recursion)."""

    def __init__(self, display: str, max_items: Callable[[tuple[str, ...]], int] | None = None) -> None:
        import yaml

        self.yaml = yaml
        self.display = display
        self.max_items = max_items
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.lines: dict[tuple[str, ...], int] = {}
        self.duplicates: list[str] = []
        self.nodes = 0
        self.documents = 0
        self.resolver = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()

    # -- errors ------------------------------------------------------------------------------------
    def fail(self, event: Any, message: str, path: tuple[str, ...] | None = None) -> ConfigError:
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        where = f"{self.display}:{line}" if line else self.display
        key = ".".join(path if path is not None else self._here())
        if len(key) > 120:
            key = key[:117] + "..."
        return ConfigError(f"{where}: {key}: {message}" if key else f"{where}: {message}")

    def _here(self) -> tuple[str, ...]:
        """The key path of the value the next event would be."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, str(len(top.value)))
        if top.key is _NO_KEY:
            return top.path
        return (*top.path, _key_text(top.key))

    # -- events --------------------------------------------------------------------------------------
    def feed(self, event: Any) -> None:
        ev = self.yaml.events
        if isinstance(event, ev.AliasEvent):
            raise self.fail(event, f"YAML aliases (*{event.anchor}) are not allowed; write the value out")
        if getattr(event, "anchor", None) is not None:
            raise self.fail(event, f"YAML anchors (&{event.anchor}) are not allowed; write the value out")
        if isinstance(event, ev.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fail(event, "only one YAML document is allowed (remove the second '---')", ())
        elif isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
            self._count(event)
            if event.tag not in _COLLECTION_TAGS:
                raise self.fail(event, f"YAML tag {_short_tag(event.tag)} is not allowed")
            if len(self.stack) >= MAX_DEPTH:
                raise self.fail(event, f"nested deeper than {MAX_DEPTH} levels")
            if self.stack and isinstance(self.stack[-1].value, dict) and self.stack[-1].key is _NO_KEY:
                raise self.fail(event, "not valid YAML for scaleout: a key must be a plain value, "
                                       "not a list or mapping")
            value: dict | list = {} if isinstance(event, ev.MappingStartEvent) else []
            path = self._here()
            self._attach(value, event)
            limit = self.max_items(path) if self.max_items is not None else None
            self.stack.append(_Frame(value, path, limit, self.lines.get(path, event.start_mark.line + 1)))
        elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
            self.stack.pop()
        elif isinstance(event, ev.ScalarEvent):
            self._count(event)
            top = self.stack[-1] if self.stack else None
            if top is not None and isinstance(top.value, dict) and top.key is _NO_KEY:
                self._key(top, event)
            else:
                self._attach(self._scalar(event), event)

    def _count(self, event: Any) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(event, f"more than {MAX_NODES} values; this is not a scaleout.yaml", ())

    def _key(self, top: _Frame, event: Any) -> None:
        key = self._scalar(event)
        line = event.start_mark.line + 1
        top.duplicate = key in top.first_lines
        if top.duplicate:
            path = (*top.path, _key_text(key))
            self.duplicates.append(
                f"{self.display}:{line}: {'.'.join(path)}: duplicate key (first set on line {top.first_lines[key]}); "
                "remove one of them")
        else:
            top.first_lines[key] = line
        top.key, top.key_line = key, line

    def _attach(self, value: Any, event: Any) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        line = event.start_mark.line + 1
        if top.limit is not None and len(top.value) >= top.limit and (isinstance(top.value, list) or not top.duplicate):
            key = ".".join(top.path) or "the file"
            kind = "items" if isinstance(top.value, list) else "keys"
            raise ConfigError(f"{self.display}:{top.line}: {key}: at most {top.limit} {kind} are allowed")
        if isinstance(top.value, list):
            self.lines[(*top.path, str(len(top.value)))] = line
            top.value.append(value)
            return
        if not top.duplicate:  # a duplicate is reported; the first value stays
            self.lines[(*top.path, _key_text(top.key))] = top.key_line
            top.value[top.key] = value
        top.key, top.duplicate = _NO_KEY, False

    def _scalar(self, event: Any) -> Any:
        yaml = self.yaml
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.nodes.ScalarNode, event.value, event.implicit)
        if tag == f"{_TAG}merge":
            raise self.fail(event, "merge keys (<<) are not allowed; write the keys out")
        if tag not in _PLAIN_TAGS:
            raise self.fail(event, f"YAML tag {_short_tag(tag)} is not allowed")
        text = event.value
        kind = tag[len(_TAG):]
        if kind in ("str", "timestamp", "value"):
            return text
        node = yaml.nodes.ScalarNode(tag, text, event.start_mark, event.end_mark)
        if kind in ("int", "float"):
            if ":" in text:  # YAML 1.1's base 60: nobody means 22:22 to be 1342
                return text
            if len(text) > MAX_NUMBER_CHARS:
                raise self.fail(event, f"number is {len(text)} characters long; at most {MAX_NUMBER_CHARS} are allowed")
            if kind == "int":
                digits = text.replace("_", "").lstrip("+-")
                for prefix in ("0x", "0o", "0b"):
                    digits = digits[2:] if digits.startswith(prefix) else digits
                if len(digits.lstrip("0")) > MAX_INT_DIGITS:
                    raise self.fail(event, f"integer has more than {MAX_INT_DIGITS} digits")
        try:
            value = {
                "int": self.constructor.construct_yaml_int,
                "float": self.constructor.construct_yaml_float,
                "bool": self.constructor.construct_yaml_bool,
                "null": self.constructor.construct_yaml_null,
            }[kind](node)
        except (ValueError, KeyError, IndexError, yaml.constructor.ConstructorError):
            # an explicit !!int on text that is not a number, or Python's int/str conversion limit
            raise self.fail(event, f"{text[:40]!r} is not a valid {kind}") from None
        if kind == "int" and abs(value) >= 10**MAX_INT_DIGITS:
            raise self.fail(event, f"integer has more than {MAX_INT_DIGITS} digits")
        return value


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _short_tag(tag: str | None) -> str:
    if tag and tag.startswith(_TAG):
        return "!!" + tag[len(_TAG):]
    return str(tag)
