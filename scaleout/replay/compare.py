"""Compare two answers to the same step with the noise masked.

Noise is what differs between two runs pinned to the same replica (dates, ids, tokens), plus values that look
like them whatever the runs showed (UUIDs, timestamps, long hex/base64 tokens). A step is always compared with
a pinned run on the SAME replica, so a field naming the replica (its hostname) is never a difference.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from scaleout.replay.flow import Answer

__all__ = ["Noise", "learn_noise", "differences"]

_VOLATILE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?"
    r"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} \d\d:\d\d:\d\d \w+"
    r"|\b1[6-9]\d{8}(?:\.\d+|\d{3})?\b"
    r"|\b[0-9a-fA-F]{16,}\b"
    r"|[A-Za-z0-9_\-+/]{24,}={0,2}"
)
_WORD = re.compile(r"\w+|[^\w\s]")


class Noise:
    """JSON paths and text tokens seen to change between runs of one replica."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.text_positions: set[int] = set()


def _json(ans: Answer) -> Any:
    ctype = (ans.header("content-type") or "").lower()
    if "json" not in ctype:
        return None
    try:
        return json.loads(ans.body)
    except ValueError:
        return None


def _flatten(doc: Any, prefix: str = "$") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(doc, dict):
        out[prefix] = "{}"
        for k, v in doc.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
    elif isinstance(doc, list):
        out[prefix] = f"[{len(doc)}]"
        for i, v in enumerate(doc):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = doc
    return out


def _mask_text(text: str) -> list[str]:
    return _WORD.findall(_VOLATILE.sub("\x00", text))


def _text(ans: Answer) -> str:
    return ans.body.decode("utf-8", "replace")


def _location(ans: Answer) -> str | None:
    loc = ans.header("location")
    if loc is None:
        return None
    parts = urlsplit(loc)
    return _VOLATILE.sub("*", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


def learn_noise(noise: Noise, a: Answer, b: Answer) -> None:
    """Record what differs between two answers from one replica."""
    ja, jb = _json(a), _json(b)
    if ja is not None and jb is not None:
        fa, fb = _flatten(ja), _flatten(jb)
        for k in set(fa) | set(fb):
            if fa.get(k) != fb.get(k):
                noise.paths.add(k)
        return
    ta, tb = _mask_text(_text(a)), _mask_text(_text(b))
    for i in range(max(len(ta), len(tb))):
        if i >= len(ta) or i >= len(tb) or ta[i] != tb[i]:
            noise.text_positions.add(i)


def _volatile(v: Any) -> bool:
    return isinstance(v, str) and bool(_VOLATILE.fullmatch(v))


def differences(expected: Answer, got: Answer, noise: Noise) -> list[str]:
    """What `got` changed against `expected` (same step, same replica), noise masked; [] when equal."""
    if expected.error or got.error:
        out: list[str] = []
        if expected.error != got.error:
            out.append(f"request failed: {got.error or 'ok'} instead of {expected.error or 'ok'}")
        return out
    out = []
    if expected.status != got.status:
        out.append(f"status {got.status} instead of {expected.status}")
    le, lg = _location(expected), _location(got)
    if le != lg:
        out.append(f"redirect to {lg or 'nowhere'} instead of {le or 'nowhere'}")
    ce = (expected.header("content-type") or "").split(";")[0].strip().lower()
    cg = (got.header("content-type") or "").split(";")[0].strip().lower()
    if ce != cg:
        out.append(f"content type {cg or 'none'} instead of {ce or 'none'}")
    se, sg = expected.set_cookie_names(), got.set_cookie_names()
    if se != sg:
        out.append(f"sets cookies {', '.join(sg) or 'none'} instead of {', '.join(se) or 'none'}")
    return out or _body_differences(expected, got, noise)


def _body_differences(expected: Answer, got: Answer, noise: Noise) -> list[str]:
    out: list[str] = []
    je, jg = _json(expected), _json(got)
    if je is not None and jg is not None:
        fe, fg = _flatten(je), _flatten(jg)
        for k in sorted(set(fe) | set(fg)):
            if k in noise.paths or any(k.startswith(p + ".") or k.startswith(p + "[") for p in noise.paths):
                continue
            ve, vg = fe.get(k, "<absent>"), fg.get(k, "<absent>")
            if ve != vg and not (_volatile(ve) and _volatile(vg)):
                out.append(f"{k} is {json.dumps(vg)[:80]} instead of {json.dumps(ve)[:80]}")
                if len(out) >= 5:
                    break
        return out
    te, tg = _mask_text(_text(expected)), _mask_text(_text(got))
    if len(te) != len(tg):
        if not any(i >= min(len(te), len(tg)) for i in noise.text_positions):
            out.append(f"body has {len(tg)} words instead of {len(te)}")
        return out
    for i, (a, b) in enumerate(zip(te, tg, strict=False)):
        if a != b and i not in noise.text_positions:
            out.append(f"body word {i + 1} is {b[:40]!r} instead of {a[:40]!r}")
            break
    return out


def links(run: list[Answer], k: int, noise: Noise) -> set[tuple[str, int, str]]:
    """(path in step k, earlier step j, path in step j) where a varying value of step k (a noise path) equals
    a value of step j in this run: a value written by j and read back by k, an id handed on."""
    if k >= len(run):
        return set()
    doc = _json(run[k])
    if doc is None:
        return set()
    mine = {p: v for p, v in _flatten(doc).items() if p in noise.paths and isinstance(v, (str, int, float))
            and not isinstance(v, bool) and str(v) not in ("", "{}", "[0]")}
    found = set()
    for j in range(k):
        other = _json(run[j])
        if other is None:
            continue
        for p2, v2 in _flatten(other).items():
            for p, v in mine.items():
                if v == v2 and not isinstance(v2, bool):
                    found.add((p, j + 1, p2))
    return found


def broken_links(expected: set[tuple[str, int, str]], run: list[Answer], k: int) -> list[str]:
    """The links of step k that held in every pinned run and do not hold in `run`."""
    out = []
    doc = _json(run[k]) if k < len(run) else None
    if doc is None:
        return out
    mine = _flatten(doc)
    for p, j, p2 in sorted(expected):
        other = _json(run[j - 1])
        theirs = _flatten(other) if other is not None else {}
        if mine.get(p, object()) != theirs.get(p2, object()):
            out.append(f"{p} is {json.dumps(mine.get(p))[:80]}, not step {j}'s {p2} "
                       f"{json.dumps(theirs.get(p2))[:80]}")
    return out
