"""HAR 1.2 reader (Chromium's devtools export, sanitized or not)."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from urllib.parse import urlsplit

from scaleout.replay.flow import DROPPED_HEADERS, MAX_FILE_BYTES, MAX_STEPS, Flow, FlowError, Step

__all__ = ["read_har"]

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _load(path: Path):
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FlowError(f"{path}: {size} bytes; a flow file may hold at most {MAX_FILE_BYTES}")
        return json.loads(path.read_text(encoding="utf-8"))
    except FlowError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise FlowError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None


def read_har(path: Path, origin: str | None = None) -> Flow:
    """The HAR's requests to `origin` (default: the first entry's origin) as steps; others are counted."""
    doc = _load(path)
    log = doc.get("log") if isinstance(doc, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise FlowError(f"{path}: not a HAR file (no log.entries list)")
    steps: list[Step] = []
    skipped = 0
    want = origin.lower() if origin else None
    for n, entry in enumerate(entries, 1):
        where = f"{path} entry {n}"
        req = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(req, dict):
            raise FlowError(f"{where}: no request object")
        url, method = req.get("url"), req.get("method")
        if not isinstance(url, str) or not isinstance(method, str):
            raise FlowError(f"{where}: request.url and request.method must be strings")
        method = method.upper()
        if method not in _METHODS:
            raise FlowError(f"{where}: method {method!r} is not replayed (allowed: {', '.join(sorted(_METHODS))})")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            skipped += 1  # data:, blob:, chrome-extension: ...
            continue
        if want is None:
            want = _origin(url)
        if _origin(url) != want:
            skipped += 1
            continue
        headers, body = _headers(req, where), _body(req, where)
        if body is not None:
            mime = req["postData"].get("mimeType")
            if isinstance(mime, str) and mime and not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", mime))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        steps.append(Step(len(steps) + 1, method, target, tuple(headers), body, None, where))
        if len(steps) > MAX_STEPS:
            raise FlowError(f"{where}: more than {MAX_STEPS} requests to {want}; record a shorter flow")
    if not steps:
        raise FlowError(f"{path}: no requests to replay ({skipped} to other origins left out)")
    return Flow(str(path), tuple(steps), skipped)


def _headers(req: dict, where: str) -> list[tuple[str, str]]:
    headers = []
    for h in req.get("headers") or []:
        if not isinstance(h, dict) or not isinstance(h.get("name"), str):
            raise FlowError(f"{where}: request.headers must be {{name, value}} objects")
        name = h["name"]
        if name.startswith(":") or name.lower() in DROPPED_HEADERS:
            continue
        headers.append((name, str(h.get("value", ""))))
    return headers


def _body(req: dict, where: str) -> bytes | None:
    post = req.get("postData")
    if not isinstance(post, dict) or post.get("text") is None:
        return None
    text = post["text"]
    if not isinstance(text, str):
        raise FlowError(f"{where}: request.postData.text must be a string")
    if post.get("encoding") != "base64":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FlowError(f"{where}: request.postData.text is not valid base64") from None
