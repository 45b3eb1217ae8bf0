"""Untrusted text files (scaleout.yaml, .env, env files) read and parsed with hard bounds.

A crafted scaleout.yaml must end in one `file:line: key: message` ConfigError, never a hang, a
traceback or gigabytes of memory. So:

- files are read by `scaleout.files.read_capped`: opened non-blocking, refused unless a regular file (a
  FIFO, a device such as /dev/zero, a folder), and never more than `MAX_BYTES` + 1 bytes are read;
- YAML is parsed event by event (libyaml when present), never through PyYAML's recursive composer:
  anchors and aliases are refused where they appear, before anything could expand; nesting deeper
  than `MAX_DEPTH`, more than `MAX_NODES` values, numbers longer than `MAX_NUMBER_CHARS`, duplicate
  keys, non-scalar keys and tags other than YAML's plain ones are refused with their line;
- plain scalars are read as YAML 1.1 does (`yes` is true), except that the sexagesimal `22:22`
  (base 60 in YAML 1.1, a port mapping to anyone writing Compose) and dates stay strings.

A `Dialect` says what else a file kind may hold. A user's Compose file (`COMPOSE`, read by `init --from`)
may use anchors, aliases and merge keys, as Compose does: they are expanded as the events arrive, each
alias counted with the size and height of what it stands for, so an alias bomb or a self-referring alias
stops at `max_nodes` / `max_depth` before it grows; and its scalars follow YAML 1.2's core schema like
Compose's Go parser (`yes`/`on` stay strings, `0755` is decimal, `22:22` is a string).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scaleout.errors import ConfigError

__all__ = ["COMPOSE", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "SCALEOUT", "Dialect", "Document", "decode_text",
           "line_of", "load_yaml"]

MAX_BYTES = 1 << 20  # 1 MiB: a real scaleout.yaml is a few KB
MAX_DEPTH = 32  # a real one nests 5 deep
MAX_NODES = 100_000
MAX_INT_DIGITS = 18  # fits a signed 64-bit integer, and far below Python's int/str conversion limit
MAX_NUMBER_CHARS = 40

@dataclass(frozen=True)
class Dialect:
    """What one kind of file may hold and how its scalars read."""

    max_nodes: int = MAX_NODES  # values, aliases counted as what they expand to
    max_depth: int = MAX_DEPTH
    aliases: bool = False  # anchors, aliases and merge keys
    core_schema: bool = False  # YAML 1.2 core scalars instead of YAML 1.1's
    kind: str = "a scaleout.yaml"  # what the file is not, in a message


SCALEOUT = Dialect()
# a large real Compose file has a few thousand values
COMPOSE = Dialect(max_nodes=20_000, aliases=True, core_schema=True, kind="a Compose file scaleout reads")

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "value")}
_COLLECTION_TAGS = {None, "!", f"{_TAG}map", f"{_TAG}seq"}


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
        return line_of(self.lines, path)


def line_of(lines: Mapping[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """The line of `path` in a key path -> line map, or of its nearest parent that has one."""
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("value", "path", "key", "key_line", "duplicate", "first_lines", "anchor", "nodes_before", "deepest",
                 "merges", "limit", "line")

    def __init__(self, value: dict | list, path: tuple[str, ...], anchor: str | None = None, nodes_before: int = 0,
                 depth: int = 0, limit: int | None = None, line: int = 0) -> None:
        self.value = value
        self.path = path
        self.limit = limit  # the most items it may hold (None: no bound beyond the dialect's max_nodes)
        self.line = line
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.duplicate = False  # the pending key was set before: its value is dropped
        self.first_lines: dict[Any, int] = {}
        self.anchor = anchor  # the anchor this collection defines, if any
        self.nodes_before = nodes_before  # the node count when it started (its size, once it ends)
        self.deepest = depth  # the deepest level reached inside it, aliases expanded
        self.merges: list[tuple[Any, int]] = []  # (value of a `<<` key, its line), applied at the end


@dataclass(frozen=True)
class _Anchor:
    value: Any
    path: tuple[str, ...]  # where it was defined (the lines of merged keys come from there)
    size: int  # nodes, aliases inside it expanded
    height: int  # levels of collections it adds where an alias puts it
    complete: bool = True  # False while its own collection is still open: an alias to it would be inside it


_NO_KEY = object()
_MERGE = object()  # the pending key of a frame is `<<`


def load_yaml(text: str, *, display: str, dialect: Dialect = SCALEOUT,
              max_items: Callable[[tuple[str, ...]], int] | None = None) -> Document:
    """Parse one YAML document under the bounds described in the module docstring. `max_items(path)`, when
    given, bounds each list or map by its key path: the parse stops at the first item too many."""
    import yaml

    if len(text) > MAX_BYTES:
        raise ConfigError(f"{display}: is larger than {MAX_BYTES} bytes")
    loader_cls = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    builder = _Builder(display, dialect, max_items)
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

    def __init__(self, display: str, dialect: Dialect = SCALEOUT,
                 max_items: Callable[[tuple[str, ...]], int] | None = None) -> None:
        import yaml

        self.yaml = yaml
        self.display = display
        self.dialect = dialect
        self.max_items = max_items
        self.anchors: dict[str, _Anchor] = {}
        self.defined_at: dict[int, tuple[str, ...]] = {}  # id of an anchored mapping -> where it was defined
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.lines: dict[tuple[str, ...], int] = {}
        self.duplicates: list[str] = []
        self.nodes = 0
        self.documents = 0
        self.resolver = _core_resolver() if dialect.core_schema else yaml.resolver.Resolver()
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
        anchor = getattr(event, "anchor", None)
        if not self.dialect.aliases:
            if isinstance(event, ev.AliasEvent):
                raise self.fail(event, f"YAML aliases (*{event.anchor}) are not allowed; write the value out")
            if anchor is not None:
                raise self.fail(event, f"YAML anchors (&{anchor}) are not allowed; write the value out")
        if isinstance(event, ev.AliasEvent):
            self._alias(event)
        elif isinstance(event, ev.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fail(event, "only one YAML document is allowed (remove the second '---')", ())
        elif isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
            self._start(event, anchor)
        elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
            self._end()
        elif isinstance(event, ev.ScalarEvent):
            self._count(event)
            top = self.stack[-1] if self.stack else None
            if top is not None and isinstance(top.value, dict) and top.key is _NO_KEY:
                self._key(top, event)
            else:
                value = self._scalar(event)
                self._attach(value, event)
                if anchor is not None:
                    self.anchors[anchor] = _Anchor(value, self._here(), 1, 0)

    def _start(self, event: Any, anchor: str | None) -> None:
        self._count(event)
        if event.tag not in _COLLECTION_TAGS:
            raise self.fail(event, f"YAML tag {_short_tag(event.tag)} is not allowed")
        if len(self.stack) >= self.dialect.max_depth:
            raise self.fail(event, f"nested deeper than {self.dialect.max_depth} levels")
        if self.stack and isinstance(self.stack[-1].value, dict) and self.stack[-1].key is _NO_KEY:
            raise self.fail(event, "not valid YAML for scaleout: a key must be a plain value, "
                                   "not a list or mapping")
        value: dict | list = {} if isinstance(event, self.yaml.events.MappingStartEvent) else []
        path = self._here()
        self._attach(value, event)
        if anchor is not None:
            self.anchors[anchor] = _Anchor(value, path, 0, 0, complete=False)
        limit = self.max_items(path) if self.max_items is not None else None
        self.stack.append(_Frame(value, path, anchor, self.nodes - 1, len(self.stack) + 1, limit,
                                 self.lines.get(path, event.start_mark.line + 1)))

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.merges:
            self._merge(frame)
        if self.stack:
            self.stack[-1].deepest = max(self.stack[-1].deepest, frame.deepest)
        if frame.anchor is not None:
            self.anchors[frame.anchor] = _Anchor(frame.value, frame.path, self.nodes - frame.nodes_before,
                                                 frame.deepest - len(self.stack))
            if isinstance(frame.value, dict):
                self.defined_at[id(frame.value)] = frame.path

    def _alias(self, event: Any) -> None:
        """An alias: the value its anchor stands for, counted as if written out."""
        found = self.anchors.get(event.anchor)
        if found is None:
            raise self.fail(event, f"the alias *{event.anchor} names no anchor defined before it")
        if not found.complete:
            raise self.fail(event, f"the alias *{event.anchor} refers to a node that contains it: a recursive "
                                   "structure is not allowed")
        self.nodes += found.size
        if self.nodes > self.dialect.max_nodes:
            raise self.fail(event, f"more than {self.dialect.max_nodes} values once aliases are expanded "
                                   "(an alias bomb?): not read", ())
        if len(self.stack) + found.height > self.dialect.max_depth:
            raise self.fail(event, f"nested deeper than {self.dialect.max_depth} levels once aliases are expanded")
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, dict) and top.key is _NO_KEY:
            if isinstance(found.value, (dict, list)):
                raise self.fail(event, "not valid YAML for scaleout: a key must be a plain value, "
                                       "not a list or mapping")
            self._set_key(top, found.value, event.start_mark.line + 1)
            return
        if top is not None:
            top.deepest = max(top.deepest, len(self.stack) + found.height)
            if isinstance(found.value, (dict, list)) and top.key is not _MERGE:  # bounded where it lands too
                self._check_size(found.value, self._here(), event.start_mark.line + 1)
        self._attach(found.value, event)

    def _count(self, event: Any) -> None:
        self.nodes += 1
        if self.nodes > self.dialect.max_nodes:
            raise self.fail(event, f"more than {self.dialect.max_nodes} values; this is not {self.dialect.kind}", ())

    def _key(self, top: _Frame, event: Any) -> None:
        if self.dialect.aliases and event.tag is None and event.implicit[0] and event.value == "<<":
            top.key, top.key_line, top.duplicate = _MERGE, event.start_mark.line + 1, False
            return
        self._set_key(top, self._scalar(event), event.start_mark.line + 1)

    def _set_key(self, top: _Frame, key: Any, line: int) -> None:
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
        if top.key is _MERGE:
            top.merges.append((value, top.key_line))
            top.key = _NO_KEY
            return
        if isinstance(top.value, list):
            self.lines[(*top.path, str(len(top.value)))] = line
            top.value.append(value)
            return
        if not top.duplicate:  # a duplicate is reported; the first value stays
            self.lines[(*top.path, _key_text(top.key))] = top.key_line
            top.value[top.key] = value
        top.key, top.duplicate = _NO_KEY, False

    def _check_size(self, value: dict | list, path: tuple[str, ...], line: int) -> None:
        """A whole list or map arriving at `path` at once (an alias, merged keys) within that path's bound."""
        limit = self.max_items(path) if self.max_items is not None else None
        if limit is not None and len(value) > limit:
            kind = "items" if isinstance(value, list) else "keys"
            raise ConfigError(f"{self.display}:{line}: {'.'.join(path) or 'the file'}: at most {limit} {kind} are "
                              f"allowed (it has {len(value)} once aliases and merge keys are expanded)")

    def _merge(self, frame: _Frame) -> None:
        """`<<: *a` or `<<: [*a, *b]`: the keys of those mappings that the mapping does not set itself (earlier
        ones win); each merged key keeps the line where its anchor's mapping set it."""
        target = frame.value
        for value, line in frame.merges:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    where = f"{self.display}:{line}"
                    raise ConfigError(f"{where}: {'.'.join(frame.path) or '<<'}: a merge key (<<) takes a mapping or "
                                      "a list of mappings")
                origin = self.defined_at.get(id(source))
                for key, item in source.items():
                    if key in target:
                        continue
                    target[key] = item
                    text = _key_text(key)
                    merged_line = self.lines.get((*origin, text)) if origin is not None else None
                    self.lines[(*frame.path, text)] = merged_line or line
        if frame.limit is not None and len(target) > frame.limit:
            self._check_size(target, frame.path, frame.line)

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
                "int": _core_int if self.dialect.core_schema else self.constructor.construct_yaml_int,
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


def _core_int(node: Any) -> int:
    """An integer as YAML 1.2's core schema reads it (`0o17`, `0x1f`; `010` is ten)."""
    text = str(node.value).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * int(digits, 10)


def _core_resolver() -> Any:
    """YAML 1.2 core schema scalars (what Compose's Go parser sees): only true/false are booleans, no
    base 60, no dates, a leading zero is decimal."""
    import re

    import yaml

    class CoreResolver(yaml.resolver.BaseResolver):
        pass

    add = CoreResolver.add_implicit_resolver
    add(f"{_TAG}bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    add(f"{_TAG}int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
    add(f"{_TAG}float", re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                                   r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
    add(f"{_TAG}null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
    return CoreResolver()


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
