"""The cache-header checks of `scaleout probe`: the worker is never cached, fingerprinted assets are
immutable, the offline page exists and revalidates, and so do its assets. Uses httpx: a handful of
requests, not load. Returns data; prints nothing."""

from __future__ import annotations

import re

from scaleout.config.model import Config
from scaleout.probe.tls import TlsSpec
from scaleout.render.common import FINGERPRINT_RE, served_by_balancer

_ASSET = re.compile(r"""(?:href|src)\s*=\s*["'](/[^"'#?]+)["']""", re.IGNORECASE)
_FINGERPRINTED = re.compile(FINGERPRINT_RE)
IMMUTABLE_MAX_AGE = "31536000"


def _cache_control(headers) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for part in (headers.get("cache-control") or "").split(","):
        k, _, v = part.strip().partition("=")
        if k:
            out[k.lower()] = v.strip('"') or None
    return out


def _never_cached(cc: dict[str, str | None]) -> bool:
    return "no-cache" in cc or "no-store" in cc or cc.get("max-age") == "0"


def _revalidated(r) -> bool:
    """Stored but checked with the server on every use: no-cache (or max-age=0) plus a validator."""
    cc = _cache_control(r.headers)
    has_validator = bool(r.headers.get("etag") or r.headers.get("last-modified"))
    return ("no-cache" in cc or cc.get("max-age") == "0") and "no-store" not in cc and has_validator


def _local_refs(html: str) -> list[str]:
    """Same-origin absolute paths referenced by href/src, in order, without duplicates."""
    return list(dict.fromkeys(a for a in _ASSET.findall(html) if not a.startswith("//")))


def _worker_verdict(r, scope: str | None) -> tuple[bool, str]:
    """A service worker script must exist, never be cached, and allow the configured scope."""
    cc_text = r.headers.get("cache-control")
    if r.status_code != 200:
        return False, f"HTTP {r.status_code}, expected 200 (the worker script is missing)"
    if not _never_cached(_cache_control(r.headers)):
        return False, f"worker script is cacheable (Cache-Control: {cc_text!r}; expected no-cache)"
    if scope and r.headers.get("service-worker-allowed") != scope:
        return False, (f"Service-Worker-Allowed is {r.headers.get('service-worker-allowed')!r}, "
                       f"expected {scope!r} (static.worker_scope)")
    return True, f"Cache-Control: {cc_text}" + (f", Service-Worker-Allowed: {scope}" if scope else "")


def check_cache_headers(url: str, config: Config, headers: dict[str, str] | None = None,
                        tls: TlsSpec | None = None, address: str | None = None) -> list[dict]:
    """One entry per path checked: {path, kind, ok, detail}. `headers`: sent with each check (probe --host);
    `tls`: over https://, trust (or not) what the load trusted, and check the same name in the certificate.
    `address`: the checked address of the URL's host to connect to (scaleout.probe.target); the Host header
    and the SNI stay the URL's name."""
    from urllib.parse import urlsplit

    import httpx

    from scaleout.probe.target import address_url, resolve_addresses

    verify: object = True
    name = urlsplit(url).hostname or ""
    extensions: dict = {"sni_hostname": name} if urlsplit(url).scheme == "https" else {}
    if tls is not None:
        from scaleout.probe.tls import client_context

        verify = client_context(tls)
        extensions = {"sni_hostname": tls.server_hostname}
    headers = dict(headers or {})
    if not any(k.lower() == "host" for k in headers):
        headers["Host"] = urlsplit(url).netloc
    url = address_url(url, address if address is not None else resolve_addresses(url)[0])

    checks: list[dict] = []
    st = config.static

    def add(path: str, kind: str, ok: bool, detail: str) -> None:
        checks.append({"path": path, "kind": kind, "ok": ok, "detail": detail})

    # trust_env=False: the checks go straight to the target, never through HTTP_PROXY & co. (the target was
    # vetted as this machine or this project's; a proxy would see, and could answer, every request)
    with httpx.Client(base_url=url, timeout=10.0, trust_env=False, headers=headers, verify=verify) as client:

        def get(path: str, kind: str):
            try:
                return client.get(path, extensions=extensions)
            except httpx.HTTPError as exc:
                add(path, kind, False, f"request failed: {type(exc).__name__}: {exc}")
                return None

        for path in st.service_workers:
            r = get(path, "service_worker")
            if r is not None:
                add(path, "service_worker", *_worker_verdict(r, st.worker_scope))

        r = get(st.offline_page, "offline_page")
        offline_refs: list[str] = []
        if r is not None:
            if r.status_code != 200:
                add(st.offline_page, "offline_page", False, f"HTTP {r.status_code}: the offline page is missing "
                    f"(expected 200 from static.offline_page in {st.dir}/)")
            else:
                ok = _revalidated(r)
                add(st.offline_page, "offline_page", ok,
                    f"Cache-Control: {r.headers.get('cache-control')}, ETag: {r.headers.get('etag')}"
                    + ("" if ok else " (expected no-cache and an ETag or Last-Modified)"))
                offline_refs = [a for a in _local_refs(r.text) if served_by_balancer(a, config)]

        for path in offline_refs:
            if _FINGERPRINTED.search(path):
                continue  # checked as immutable below if the page at / links it; its name is its version
            r = get(path, "offline_asset")
            if r is None:
                continue
            ok = r.status_code == 200 and _revalidated(r)
            add(path, "offline_asset", ok, f"HTTP {r.status_code}, Cache-Control: {r.headers.get('cache-control')}"
                + ("" if ok else " (the offline page's assets must exist and revalidate: no-cache with ETag or "
                   "Last-Modified)"))

        page = get("/", "page")
        refs = _local_refs(page.text) if page is not None and page.status_code == 200 else []
        fingerprinted = [a for a in refs if _FINGERPRINTED.search(a)]
        for path in fingerprinted + [a for a in offline_refs if _FINGERPRINTED.search(a) and a not in fingerprinted]:
            r = get(path, "fingerprinted_asset")
            if r is None:
                continue
            cc = _cache_control(r.headers)
            ok = (r.status_code == 200 and "immutable" in cc and cc.get("max-age") == IMMUTABLE_MAX_AGE
                  and "public" in cc)
            add(path, "fingerprinted_asset", ok,
                f"HTTP {r.status_code}, Cache-Control: {r.headers.get('cache-control')}"
                + ("" if ok else " (a fingerprinted asset must be public, max-age=31536000, immutable)"))
    return checks
