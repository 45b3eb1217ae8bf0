"""Health checks: the replicated service's Compose healthcheck as `backend.health` (an HTTP probe of
its own port becomes `path`, any other test `command`), and the other services' as written."""

from __future__ import annotations

import math
import os
import re
import shlex
from typing import Any

from scaleout.adopt.context import Context, show
from scaleout.config.values import duration_seconds, is_url_path

_HEALTH_BOUNDS = {"interval": (1, 300), "timeout": (1, 300), "retries": (1, 100), "start_period": (0, 3600)}
_LOCAL_URL = re.compile(r"^http://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(?P<port>[0-9]+))?(?P<path>/[^?#]*)?$")
_VALUE_FLAGS = frozenset({"-o", "-O", "--output", "--output-document", "-m", "--max-time", "-T", "--timeout", "-t",
                          "--tries", "--retry", "--connect-timeout"})


def _http_probe_path(argv: list[str], port: int) -> str | None:
    """The URL path when `argv` is curl or wget fetching the container's own port, else None."""
    if not argv or os.path.basename(argv[0]) not in ("curl", "wget"):
        return None
    urls = []
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg in _VALUE_FLAGS:
            skip = True
        elif not arg.startswith("-"):
            urls.append(arg)
    if len(urls) != 1:
        return None
    m = _LOCAL_URL.match(urls[0])
    if not m or int(m["port"] or 80) != port:
        return None
    path = m["path"] or "/"
    return path if is_url_path(path) else None


def _probe_argv(ctx: Context, shell: str | None, argv: list[str] | None) -> list[str] | None:
    """The probe as an argument list when it is a plain command (`|| exit 1` allowed), with variables resolved."""
    if argv is not None:
        return [ctx.resolve(a, ()) for a in argv]
    assert shell is not None
    simple = re.sub(r"\s*\|\|\s*exit(?:\s+1)?\s*$", "", shell)
    if re.search(r"[;&|<>`()\n]", simple):
        return None
    try:
        return shlex.split(ctx.resolve(simple, ()))
    except ValueError:
        return None


def health_test(ctx: Context, name: str, hc: dict[str, Any]) -> tuple[str | None, list[str] | None, bool]:
    """(shell string, argv, disabled) of a healthcheck's test."""
    keys = ("services", name, "healthcheck", "test")
    test = hc.get("test")
    if hc.get("disable") is True:
        return None, None, True
    if test is None:
        return None, None, False
    if isinstance(test, str):
        return test, None, False
    if not isinstance(test, list) or not test or not all(isinstance(t, (str, int, float)) for t in test):
        raise ctx.error(keys, f"must be a string or a list such as [CMD, curl, -f, URL] (got {show(test)!r})")
    words = [str(t) for t in test]
    if words[0] == "NONE":
        return None, None, True
    if words[0] == "CMD-SHELL" and len(words) >= 2:
        return " ".join(words[1:]), None, False
    if words[0] == "CMD" and len(words) >= 2:
        return None, words[1:], False
    raise ctx.error(keys, f"must start with CMD, CMD-SHELL or NONE (got {show(test)!r})")


def _health_timing(ctx: Context, name: str, hc: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, (lo, hi) in _HEALTH_BOUNDS.items():
        if key not in hc:
            continue
        raw = hc[key]
        resolved = ctx.resolve(raw, ("services", name, "healthcheck", key)) if isinstance(raw, str) else raw
        if key == "retries":
            value = int(resolved) if str(resolved).isdigit() else None
        else:
            secs = duration_seconds(resolved)
            value = None if secs is None else math.ceil(secs - 1e-9)
        if value is None:
            ctx.note(name, f"healthcheck.{key}", raw, f"not a {'count' if key == 'retries' else 'duration'}: "
                                                      "scaleout's default is used")
            continue
        if not lo <= value <= hi:
            clamped = min(max(value, lo), hi)
            ctx.note(name, f"healthcheck.{key}", raw, f"outside scaleout's range {lo}-{hi}: {clamped} is used")
            value = clamped
        out[key] = value
    for key in hc:
        if key not in (*_HEALTH_BOUNDS, "test", "disable"):
            ctx.note(name, f"healthcheck.{key}", hc[key], "not carried over (scaleout.yaml has no such setting)")
    return out


def _written_path(ctx: Context, test: Any, path: str) -> str:
    """backend.health.path as the Compose file writes it in the probe's URL, when a variable of .env or the
    environment sets it (kept as written: ctx.kept), else the path."""
    args = test if isinstance(test, list) else str(test or "").split()
    for arg in args:
        m = re.match(r"^['\"]?https?://[^/'\"]*(/[^?#'\"]*)?", str(arg))
        if m and ctx.given(m[1] or ""):
            return ctx.kept("backend.health.path", m[1], path)
    return path


def map_health(ctx: Context, name: str, svc: dict[str, Any], port: int) -> dict[str, Any]:
    """backend.health: an HTTP probe of the replica's own port becomes `path`, anything else `command`."""
    hc = svc.get("healthcheck")
    fallback = f"scaleout probes GET / on port {port} (safer than /healthz for an existing app): set " \
               "backend.health.path to a cheap endpoint"
    if hc is None:
        ctx.note(name, "healthcheck", "", f"none given: {fallback}")
        return {"path": "/"}
    if not isinstance(hc, dict):
        raise ctx.error(("services", name, "healthcheck"), "must be a mapping (test:, interval:, ...)")
    shell, argv, disabled = health_test(ctx, name, hc)
    timing = _health_timing(ctx, name, hc)
    if disabled:
        ctx.note(name, "healthcheck", "disabled", f"scaleout gates traffic on health: {fallback}")
        return {"path": "/", **timing}
    if shell is None and argv is None:
        ctx.note(name, "healthcheck", "no test", f"the image's own HEALTHCHECK is not read: {fallback}")
        return {"path": "/", **timing}
    probe = _probe_argv(ctx, shell, argv)
    path = _http_probe_path(probe, port) if probe else None
    if path is not None:
        return {"path": _written_path(ctx, hc.get("test"), path), **timing}
    command = shell if shell is not None else shlex.join(argv or [])
    command = command.strip()
    if not command or any(c in command for c in "\r\n\0"):
        ctx.note(name, "healthcheck.test", command, f"a multi-line command cannot be carried over: {fallback}")
        return {"path": "/", **timing}
    return {"command": command, **timing}


def service_healthcheck(ctx: Context, name: str, hc: Any) -> dict[str, Any] | None:
    if not isinstance(hc, dict):
        raise ctx.error(("services", name, "healthcheck"), "must be a mapping (test:, interval:, ...)")
    _, _, disabled = health_test(ctx, name, hc)
    if disabled:
        ctx.note(name, "healthcheck", "disabled", "not carried over: the service runs without a health check")
        return None
    out: dict[str, Any] = {}
    for key in ("test", "interval", "timeout", "retries", "start_period"):
        if key not in hc:
            continue
        value = hc[key]
        if key in ("interval", "timeout", "start_period") and duration_seconds(ctx.resolve(value, ())) is None:
            ctx.note(name, f"healthcheck.{key}", value, "not a duration such as 5s: Compose's default is used")
            continue
        if key == "test" and isinstance(value, list):
            value = [str(v) for v in value]
        out[key] = value
    for key in hc:
        if key not in ("test", "interval", "timeout", "retries", "start_period", "disable"):
            ctx.note(name, f"healthcheck.{key}", hc[key], "not carried over (scaleout.yaml has no such setting)")
    return out or None
