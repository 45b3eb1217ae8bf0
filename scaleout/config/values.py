"""Rules for single values that several readers share: a Compose duration, a URL path, a published address.
Pure functions, one definition each (scaleout.yaml's loader, `init --from` and `logs --since` all use these)."""

from __future__ import annotations

import re

# every pattern is used with fullmatch: `re.match` with `$` accepts a trailing newline
DURATION = re.compile(r"(?:[0-9]{1,9}(?:\.[0-9]{1,9})?(?:ns|us|µs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_HELP = "a duration such as 5s, 1m30s or 500ms (units: ns us ms s m h)"

_URL_PATH_CHARS = re.compile(r"/[A-Za-z0-9._~/-]*")
URL_PATH_RULE = "(letters, digits, . _ ~ / - only; no '.', '..' or empty segment)"


def duration_seconds(text: object) -> float | None:
    """Seconds in a Compose duration ("30s", "1m30s", "500ms"), or None when `text` is not one."""
    if not isinstance(text, str) or not DURATION.fullmatch(text):
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def is_url_path(v: object) -> bool:
    """A URL path: allowed characters only, and no empty, '.' or '..' segment (nothing may climb out
    of the static folder through a route)."""
    if not isinstance(v, str) or not _URL_PATH_CHARS.fullmatch(v):
        return False
    segments = v.strip("/").split("/")
    return v == "/" or all(seg not in ("", ".", "..") for seg in segments)


def refuse_zone(v: str) -> None:
    """ValueError for an address with an IPv6 zone (`fe80::1%eth0`): Docker cannot publish on one, and its
    text would reach the Compose file as written, where Compose interpolates `$` (`::1%${HOME}`): what
    scaleout checked must be what Compose reads."""
    if "%" in v:
        raise ValueError(f"{v!r}: an IPv6 zone (%...) cannot be published on; give a plain address such as ::1")
