"""VS Code REST Client / JetBrains HTTP Client `.http` files.

`###` separates requests; a request is a request line (`METHOD URL [HTTP/1.1]`), headers, a blank line and a
body. `@name = value` lines define file variables used as `{{name}}`; `# @name login` names a request whose
answer later requests use: `{{login.response.body.$.a.b[0]}}`, `{{login.response.headers.Location}}`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from scaleout.replay.flow import DROPPED_HEADERS, MAX_FILE_BYTES, MAX_STEPS, Answer, Flow, FlowError, Step

__all__ = ["read_http", "resolve", "TemplateError"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_REQUEST_LINE = re.compile(r"^(?:({})\s+)?(\S+)(?:\s+HTTP/[\d.]+)?\s*$".format("|".join(_METHODS)))
_FILE_VAR = re.compile(r"^@([A-Za-z_][\w-]*)\s*=\s*(.*?)\s*$")
_NAME = re.compile(r"^(?:#|//)\s*@name\s+([A-Za-z_][\w-]*)\s*$")
_HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*:\s*(.*)$")
_REF = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_PATH_TOKEN = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


class TemplateError(Exception):
    """A `{{...}}` reference that cannot be resolved when its step is sent."""


def read_http(path: Path) -> Flow:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FlowError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        lines = path.read_text(encoding="utf-8").splitlines()
    except FlowError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError(f"{path}: cannot read: {exc}") from None
    variables: dict[str, str] = {}
    steps: list[Step] = []
    names: set[str] = set()
    block: list[tuple[int, str]] = []

    def flush() -> None:
        step = _parse_block(path, block, len(steps) + 1, variables, names)
        block.clear()
        if step is not None:
            steps.append(step)
            if step.name:
                names.add(step.name)
            if len(steps) > MAX_STEPS:
                raise FlowError(f"{step.where}: more than {MAX_STEPS} requests; split the flow")

    for n, line in enumerate(lines, 1):
        if line.startswith("###"):
            flush()
            continue
        block.append((n, line))
    flush()
    if not steps:
        raise FlowError(f"{path}: no requests (a request line looks like `GET /path`)")
    return Flow(str(path), tuple(steps), 0, tuple(variables.items()), True)


def _parse_block(path, block, index, variables, names) -> Step | None:
    name = None
    i = 0
    # leading comments, blank lines, file variables, `# @name`
    while i < len(block):
        n, line = block[i]
        s = line.strip()
        m = _FILE_VAR.match(s)
        if m:
            variables[m.group(1)] = m.group(2)
            i += 1
            continue
        m = _NAME.match(s)
        if m:
            name = m.group(1)
            if name in names:
                raise FlowError(f"{path}:{n}: request name {name!r} is used twice")
            i += 1
            continue
        if not s or s.startswith("#") or s.startswith("//"):
            i += 1
            continue
        break
    if i >= len(block):
        if name:
            raise FlowError(f"{path}:{block[-1][0]}: `# @name {name}` is not followed by a request")
        return None
    n, line = block[i]
    where = f"{path}:{n}"
    m = _REQUEST_LINE.match(line.strip())
    if not m:
        raise FlowError(f"{where}: not a request line: {line.strip()[:80]!r} (expected `METHOD URL`)")
    method, target = (m.group(1) or "GET"), m.group(2)
    if not target.startswith(("/", "http://", "https://", "{{")):
        raise FlowError(f"{where}: the URL must start with /, http:// or https:// (got {target[:80]!r})")
    _check_refs(path, n, target, variables, names)
    headers, target, i = _headers(path, block, i + 1, target, variables, names)
    body_lines = [(bn, bl) for bn, bl in block[i + 1 :]]
    while body_lines and not body_lines[-1][1].strip():
        body_lines.pop()
    body = None
    if body_lines:
        if body_lines[0][1].lstrip().startswith("<"):
            raise FlowError(f"{path}:{body_lines[0][0]}: bodies read from files (`< file`) are not supported")
        for bn, bl in body_lines:
            _check_refs(path, bn, bl, variables, names)
        body = "\n".join(bl for _, bl in body_lines).encode("utf-8")
    return Step(index, method, _shown_target(target, variables), tuple(headers), body, name, where)


def _shown_target(target: str, variables: Mapping[str, str]) -> str:
    """The target with the file's variables filled in and an absolute URL's origin dropped, as reports show it
    (`/api/me`, not `{{base}}/api/me`); references to earlier answers stay, resolved when the step is sent."""
    for _ in range(8):  # variables may name variables; a loop of them is left as it is
        filled = _REF.sub(lambda m: variables.get(m.group(1), m.group(0)) if "." not in m.group(1) else m.group(0),
                          target)
        if filled == target:
            break
        target = filled
    origin = re.match(r"https?://[^/?#]*", target)
    if origin and "{{" not in origin.group(0):
        rest = target[origin.end():]
        return rest if rest.startswith("/") else "/" + rest
    return target


def _headers(path, block, i, target, variables, names):
    headers = []
    while i < len(block) and block[i][1].strip():
        hn, hl = block[i]
        s = hl.strip()
        i += 1
        if s.startswith("#") or s.startswith("//"):
            continue
        if s.startswith("?") or s.startswith("&"):  # continued query string
            target += s
            continue
        hm = _HEADER.match(s)
        if not hm:
            raise FlowError(f"{path}:{hn}: not a header line (expected `Name: value`): {s[:80]!r}")
        _check_refs(path, hn, hm.group(2), variables, names)
        if hm.group(1).lower() not in DROPPED_HEADERS:
            headers.append((hm.group(1), hm.group(2)))
    return headers, target, i


def _check_refs(path, line_no, text, variables, names) -> None:
    for m in _REF.finditer(text):
        ref = m.group(1)
        head = ref.split(".", 1)[0]
        if head.startswith("$"):
            raise FlowError(f"{path}:{line_no}: dynamic variable {{{{{ref}}}}} is not supported")
        if "." in ref:
            if head not in names:
                raise FlowError(f"{path}:{line_no}: {{{{{ref}}}}} names no earlier `# @name {head}` request")
            parts = ref.split(".", 3)
            if len(parts) < 4 or parts[1] != "response" or parts[2] not in ("body", "headers"):
                raise FlowError(
                    f"{path}:{line_no}: {{{{{ref}}}}}: expected NAME.response.body.$.path "
                    "or NAME.response.headers.Header"
                )
            if parts[2] == "body" and parts[3] != "*" and not _valid_path(parts[3]):
                raise FlowError(f"{path}:{line_no}: {{{{{ref}}}}}: JSON path must look like $.a.b[0]")
        elif ref not in variables:
            raise FlowError(f"{path}:{line_no}: {{{{{ref}}}}} is not defined (define it with `@{ref} = value`)")


def _valid_path(expr: str) -> bool:
    if not expr.startswith("$"):
        return False
    rest = expr[1:]
    pos = 0
    while pos < len(rest):
        m = _PATH_TOKEN.match(rest, pos)
        if not m:
            return False
        pos = m.end()
    return True


def _json_path(doc: Any, expr: str) -> Any:
    for m in _PATH_TOKEN.finditer(expr[1:]):
        key = m.group(1) or m.group(3)
        if key is not None:
            if not isinstance(doc, dict) or key not in doc:
                raise TemplateError(f"no field {key!r}")
            doc = doc[key]
        else:
            idx = int(m.group(2))
            if not isinstance(doc, list) or idx >= len(doc):
                raise TemplateError(f"no item [{idx}]")
            doc = doc[idx]
    return doc


def resolve(text: str, variables: Mapping[str, str], named: Mapping[str, Answer]) -> str:
    """`text` with every `{{...}}` replaced; TemplateError when an earlier answer lacks the value."""

    def one(m: re.Match, depth: int = 0) -> str:
        ref = m.group(1)
        if "." not in ref:
            value = variables[ref]
            return _REF.sub(lambda mm: one(mm, depth + 1), value) if depth < 8 else value
        name, _, kind, expr = ref.split(".", 3)
        ans = named.get(name)
        if ans is None:
            raise TemplateError(f"{{{{{ref}}}}}: request {name!r} has not run")
        if kind == "headers":
            value = ans.header(expr)
            if value is None:
                raise TemplateError(f"{{{{{ref}}}}}: the answer of {name!r} has no {expr} header")
            return value
        if expr == "*":
            return ans.body.decode("utf-8", "replace")
        try:
            doc = json.loads(ans.body)
        except ValueError:
            raise TemplateError(f"{{{{{ref}}}}}: the answer of {name!r} is not JSON") from None
        try:
            value = _json_path(doc, expr)
        except TemplateError as exc:
            raise TemplateError(f"{{{{{ref}}}}}: {exc} in the answer of {name!r}") from None
        return value if isinstance(value, str) else json.dumps(value)

    return _REF.sub(one, text)


def target_path(target: str) -> str:
    """The path and query of a resolved request target (absolute URLs lose their origin)."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return target
