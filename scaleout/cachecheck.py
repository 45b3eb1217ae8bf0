"""The cache-header checks of `scaleout probe`: the worker is never cached, fingerprinted assets are
immutable, the offline page exists and revalidates. Uses httpx: a handful of requests, not load."""

from __future__ import annotations

import re

from scaleout.config import Config
from scaleout.render import FINGERPRINT_RE

_ASSET = re.compile(r"""(?:href|src)\s*=\s*["'](/[^"'#?]+)["']""", re.IGNORECASE)


def _cache_control(headers) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for part in (headers.get("cache-control") or "").split(","):
        k, _, v = part.strip().partition("=")
        if k:
            out[k.lower()] = v or None
    return out


def _never_cached(cc: dict[str, str | None]) -> bool:
    return "no-cache" in cc or "no-store" in cc or cc.get("max-age") == "0"


def check_cache_headers(url: str, config: Config) -> list[dict]:
    """One entry per path checked: {path, kind, ok, detail}."""
    import httpx

    checks: list[dict] = []
    st = config.static
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for path in st.service_workers:
            r = client.get(path)
            cc = _cache_control(r.headers)
            if r.status_code != 200:
                checks.append({"path": path, "kind": "service_worker", "ok": False, "detail": f"HTTP {r.status_code}, expected 200"})
            elif not _never_cached(cc):
                checks.append({"path": path, "kind": "service_worker", "ok": False,
                               "detail": f"worker script is cacheable (Cache-Control: {r.headers.get('cache-control')!r})"})
            else:
                checks.append({"path": path, "kind": "service_worker", "ok": True, "detail": f"Cache-Control: {r.headers.get('cache-control')}"})
        r = client.get(st.offline_page)
        cc = _cache_control(r.headers)
        ok = r.status_code == 200 and "no-cache" in cc and bool(r.headers.get("etag") or r.headers.get("last-modified"))
        checks.append({"path": st.offline_page, "kind": "offline_page", "ok": ok,
                       "detail": (f"HTTP {r.status_code}" if r.status_code != 200 else
                                  f"Cache-Control: {r.headers.get('cache-control')}, ETag: {r.headers.get('etag')}")
                       + ("" if ok else " (expected 200, no-cache and an ETag or Last-Modified)")})
        page = client.get("/")
        assets = sorted({a for a in _ASSET.findall(page.text) if re.search(FINGERPRINT_RE, a)}) if page.status_code == 200 else []
        for path in assets:
            r = client.get(path)
            cc = _cache_control(r.headers)
            ok = r.status_code == 200 and "immutable" in cc and cc.get("max-age") == "31536000"
            checks.append({"path": path, "kind": "fingerprinted_asset", "ok": ok,
                           "detail": f"HTTP {r.status_code}, Cache-Control: {r.headers.get('cache-control')}"
                           + ("" if ok else " (expected public, max-age=31536000, immutable)")})
    return checks
