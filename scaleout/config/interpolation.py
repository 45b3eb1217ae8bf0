"""Compose-style variable interpolation and the `.env` file, with Compose's documented rules.

Interpolation (https://docs.docker.com/reference/compose-file/interpolation/): `$VAR`, `${VAR}`,
`${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:?message}` (unset or empty:
error), `${VAR?message}` (unset: error), `$$` for a literal `$`; an unset variable without default
becomes "" with a warning; a `$` that starts no reference (`cost $5`) is kept as written, as Compose
v2 does. Not supported, because Compose v1.29 (which scaleout also drives) does not read them and
scaleout writes references into the Compose file for the engine to resolve: `${VAR:+x}`, `${VAR+x}`,
and a `$` or `{` inside a default or message (nesting).

The *extended* mode reads a user's own Compose file (`init --from`) the way Compose v2 does: also
`${VAR:+alt}` and `${VAR+alt}`, and references nested in defaults, alternatives and messages
(`${A:-${B:-x}}`), at most `MAX_NESTING` levels deep, each default resolved only when it is used.

Each interpolated string also yields its *Compose text*: the references exactly as written and every
literal `$` as `$$`, so that values coming from `.env` never need to be written into generated files.

`.env` (https://docs.docker.com/compose/how-tos/environment-variables/variable-interpolation/#env-file):
KEY=VALUE lines, `#` comment lines and blank lines ignored, an `export ` prefix tolerated; unquoted values
are trimmed and end at ` #`; single-quoted values are literal (`\\'` is a quote); double-quoted values
know `\\n \\r \\t \\\\ \\" \\$`; quoted values may span lines; unquoted and double-quoted values are
interpolated (the shell first, then the lines above). The file is untrusted: bounded, and every
problem is a ConfigError with its line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Budget", "Interpolated", "InterpolationError", "interpolate", "parse_dotenv"]

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
MAX_VALUE_CHARS = 256 * 1024  # one interpolated value
MAX_NESTING = 16  # `${A:-${B:-...}}` levels in extended mode; a real file nests two or three
MAX_TOTAL_CHARS = 8 * 1024 * 1024  # everything one config interpolates: `${BIG}` x 100,000 stays cheap


class InterpolationError(ValueError):
    """A reference that cannot be resolved or is not valid; `str()` is the message without location."""


@dataclass
class Budget:
    """Characters interpolation may still produce for one config (a hostile file cannot make gigabytes)."""

    left: int = MAX_TOTAL_CHARS

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise InterpolationError(f"interpolated values exceed {MAX_TOTAL_CHARS} characters in total")


@dataclass(frozen=True)
class Interpolated:
    value: str
    compose: str  # references as written, literal `$` as `$$`
    unset: tuple[str, ...] = ()  # variables used without a value and without a default
    variables: tuple[str, ...] = field(default=())  # every variable looked up


def interpolate(text: str, lookup: Callable[[str], str | None], budget: Budget | None = None, *,
                extended: bool = False, nesting: int = 0) -> Interpolated:
    """Resolve the references in `text`; InterpolationError for a required variable that is missing
    or a reference that is not valid. `extended`: Compose v2's whole syntax (module docstring)."""
    out: list[str] = []
    compose: list[str] = []
    unset: list[str] = []
    used: list[str] = []
    size = 0
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            compose.append(text[i:])
            break
        out.append(text[i:j])
        compose.append(text[i:j])
        nxt = text[j + 1] if j + 1 < n else ""
        if nxt == "$":
            out.append("$")
            compose.append("$$")
            i = j + 2
            continue
        if nxt == "{":
            end = _closing_brace(text, j + 2) if extended else text.find("}", j + 2)
            if end < 0:
                raise InterpolationError(f"{_shown(text[j:])}: '${{' is never closed with '}}' "
                                         "(write $$ for a literal $)")
            raw = text[j:end + 1]
            if extended:
                name, value, missing = _braced_extended(raw, text[j + 2:end], lookup, budget, nesting)
            else:
                name, value, missing = _braced(raw, text[j + 2:end], lookup)
            i = end + 1
        else:
            m = _NAME.match(text, j + 1)
            if not m:  # kept as written, as Compose does
                out.append("$")
                compose.append("$$")
                i = j + 1
                continue
            name = m.group(0)
            raw = "$" + name
            value = lookup(name)
            missing = value is None
            value = value or ""
            i = m.end()
        used.append(name)
        if missing:
            unset.append(name)
        out.append(value)
        compose.append(raw)
        size += len(value)
        if size > MAX_VALUE_CHARS:
            raise InterpolationError(f"the value is longer than {MAX_VALUE_CHARS} characters once interpolated")
    result = "".join(out)
    if budget is not None:
        budget.spend(len(result))
    return Interpolated(result, "".join(compose), tuple(dict.fromkeys(unset)), tuple(dict.fromkeys(used)))


def _name_of(raw: str, inner: str) -> tuple[str, str]:
    """The variable's name at the start of a `${...}` body, and what follows it."""
    m = _NAME.match(inner)
    if not m:
        raise InterpolationError(f"{_shown(raw)}: not a variable reference (a name is [A-Za-z_][A-Za-z0-9_]*; "
                                 "write $$ for a literal $)")
    return m.group(0), inner[m.end():]


def _braced(raw: str, inner: str, lookup: Callable[[str], str | None]) -> tuple[str, str, bool]:
    """(name, value, unset-without-default) of one `${...}`."""
    name, rest = _name_of(raw, inner)
    value = lookup(name)
    if rest == "":
        return name, value or "", value is None
    for op in (":-", ":?", "-", "?"):
        if rest.startswith(op):
            arg = rest[len(op):]
            break
    else:
        if rest[:2] in (":+",) or rest[:1] == "+":
            raise InterpolationError(f"{_shown(raw)}: ${{VAR:+value}} / ${{VAR+value}} are not supported "
                                     "(docker-compose 1.29 does not know them)")
        raise InterpolationError(f"{_shown(raw)}: only ${{VAR}}, ${{VAR:-default}}, ${{VAR-default}}, "
                                 "${VAR:?message} and ${VAR?message} are supported")
    if "$" in arg or "{" in arg:
        raise InterpolationError(f"{_shown(raw)}: a default or message cannot contain '$' or '{{' "
                                 "(nested references are not supported)")
    if op == ":-":
        return name, value if value else arg, False
    if op == "-":
        return name, arg if value is None else value, False
    if (op == ":?" and not value) or (op == "?" and value is None):
        state = "not set" if value is None else "empty"
        raise InterpolationError(f"required variable {name} is {state}: {arg or 'set it in the shell or in .env'}")
    return name, value or "", False


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` that closes the `${` opened just before `start`, nested `${...}` skipped; -1 if none."""
    depth, i, n = 1, start, len(text)
    while i < n:
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


_EXTENDED_OPS = (":-", ":?", ":+", "-", "?", "+")


def _braced_extended(raw: str, inner: str, lookup: Callable[[str], str | None], budget: Budget | None,
                     nesting: int) -> tuple[str, str, bool]:
    """(name, value, unset-without-default) of one `${...}` in Compose v2's syntax; the argument of an
    operator is itself interpolated, and only when it is used."""
    name, rest = _name_of(raw, inner)
    value = lookup(name)
    if rest == "":
        return name, value or "", value is None
    op = next((o for o in _EXTENDED_OPS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(f"{_shown(raw)}: not a variable reference Compose knows "
                                 "(${VAR}, ${VAR:-x}, ${VAR-x}, ${VAR:?x}, ${VAR?x}, ${VAR:+x}, ${VAR+x})")
    unset = value is None or (op.startswith(":") and value == "")

    def arg() -> str:
        if nesting + 1 > MAX_NESTING:
            raise InterpolationError(f"{_shown(raw)}: references nested deeper than {MAX_NESTING} levels")
        return interpolate(rest[len(op):], lookup, budget, extended=True, nesting=nesting + 1).value

    if op.endswith("-"):
        return name, arg() if unset else str(value), False
    if op.endswith("?"):
        if unset:
            state = "not set" if value is None else "empty"
            message = arg() or "set it in the shell or in .env"
            raise InterpolationError(f"required variable {name} is {state}: {message}")
        return name, str(value), False
    return name, "" if unset else arg(), False


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


# ---------------------------------------------------------------------------------------------------
# .env

_ASSIGN = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*")
_DQ_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$$"}


@dataclass(frozen=True)
class DotenvEntry:
    value: str
    line: int


def parse_dotenv(text: str, *, display: str, environ: Mapping[str, str],
                 budget: Budget | None = None) -> tuple[dict[str, DotenvEntry], list[str]]:
    """The variables of a .env file, each with the line it is set on, and warnings (variables referenced
    but not set). Every problem raises DotenvError with `display:line: message`; values are looked up
    in `environ` first, then in the lines above (as Compose does)."""
    text = text.replace("\r\n", "\n")
    found: dict[str, DotenvEntry] = {}
    warnings: list[str] = []

    def lookup(name: str) -> str | None:
        if name in environ:
            return environ[name]
        entry = found.get(name)
        return entry.value if entry is not None else None

    pos, line, n = 0, 1, len(text)
    while pos < n:
        eol = text.find("\n", pos)
        eol = n if eol < 0 else eol
        current = text[pos:eol]
        start_line = line
        stripped = current.strip(" \t")
        if not stripped or stripped.startswith("#"):
            pos, line = eol + 1, line + 1
            continue
        m = _ASSIGN.match(current)
        if not m:
            raise DotenvError(f"{display}:{line}: expected KEY=VALUE (a name is [A-Za-z_][A-Za-z0-9_]*)")
        key = m.group(1)
        vstart = pos + m.end()
        quote = text[vstart] if vstart < n else ""
        if quote in ("'", '"'):
            close = _closing_quote(text, vstart + 1, quote)
            if close < 0:
                raise DotenvError(f"{display}:{line}: {key}: the {quote} opened here is never closed")
            body = text[vstart + 1:close]
            line += body.count("\n")
            eol = text.find("\n", close)
            eol = n if eol < 0 else eol
            tail = text[close + 1:eol].strip(" \t")
            if tail and not tail.startswith("#"):
                raise DotenvError(f"{display}:{line}: {key}: unexpected text after the closing quote: {_shown(tail)}")
            if quote == "'":
                value = body.replace("\\'", "'")
            else:
                value = _expand(_unescape_double(body), lookup, budget, f"{display}:{start_line}: {key}", warnings)
        else:
            raw = text[vstart:eol]
            cut = re.search(r"[ \t]#", raw)
            raw = (raw[:cut.start()] if cut else raw).strip(" \t")
            if raw.startswith("#") and text[vstart - 1] in " \t":  # `KEY= # comment`; `KEY=#x` is "#x"
                raw = ""
            value = _expand(raw, lookup, budget, f"{display}:{line}: {key}", warnings)
        if "\0" in value:
            raise DotenvError(f"{display}:{start_line}: {key}: a value cannot contain a NUL character")
        if key in found:
            raise DotenvError(f"{display}:{start_line}: {key}: set twice (first on line {found[key].line}); "
                              "remove one of them")
        found[key] = DotenvEntry(value, start_line)
        pos, line = eol + 1, line + 1
    return found, warnings


class DotenvError(ValueError):
    """A problem in a .env file; `str()` is `file:line: message`."""


def _closing_quote(text: str, i: int, quote: str) -> int:
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            i += 2
            continue
        if c == quote:
            return i
        i += 1
    return -1


def _unescape_double(body: str) -> str:
    """A double-quoted body as a template: escapes resolved, an escaped `$` kept literal (as `$$`)."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n and body[i + 1] in _DQ_ESCAPES:
            out.append(_DQ_ESCAPES[body[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _expand(template: str, lookup: Callable[[str], str | None], budget: Budget | None, where: str,
            warnings: list[str]) -> str:
    try:
        result = interpolate(template, lookup, budget)
    except InterpolationError as exc:
        raise DotenvError(f"{where}: {exc}") from None
    warnings.extend(f"{where}: variable {name} is not set; using an empty string" for name in result.unset)
    return result.value
