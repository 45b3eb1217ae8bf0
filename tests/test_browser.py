"""A real browser through the balancer: Debian's headless Chromium driven by Playwright.

The page at / loads and the generated worker takes control; with the network cut a navigation shows
the offline page; after an offline asset changes and `scaleout up` runs again, the browser installs the
new worker and the old cache is gone. Needs scripts/setup-browser.sh (scripts/test.sh runs it); fails
without a browser (SCALEOUT_TESTS=fast leaves it out).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import Project, free_port, remove_project, run_cli, unavailable, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = os.environ.get("SCALEOUT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WORKER = ".scaleout/sw/service-worker.js"


def _missing_browser() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is missing"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing"
    return None


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    """A fresh Chromium profile (persistent context in a new user-data dir)."""
    missing = _missing_browser()
    if missing:
        unavailable(f"{missing}: run scripts/setup-browser.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            service_workers="allow",
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, images):
    base = tmp_path_factory.mktemp("browser")
    name = f"b{uuid.uuid4().hex[:10]}"
    path = base / name
    run_cli(["init", str(path), "--name", name], base, images, check=True)
    port = free_port()
    cfg = path / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("port: 8080", f"port: {port}"))
    p = Project(path, name, port, dict(images))
    p.cli("up", "--replicas", "3", check=True)
    yield p
    p.cli("down")
    remove_project(p.name)
    shutil.rmtree(path, ignore_errors=True)


def _cache_name(p: Project) -> str:
    text = (p.path / WORKER).read_text()
    return json.loads(re.search(r"^const CACHE = (.+);$", text, re.M).group(1))


def _cache_keys(page) -> list[str]:
    return page.evaluate("caches.keys()")


def _h1_color(page) -> str:
    return page.evaluate("getComputedStyle(document.querySelector('h1')).color")


def test_worker_offline_page_and_update(stack, browser_context):
    p = stack
    page = browser_context.new_page()

    # 1. the page at / (from a replica) loads its fingerprinted assets and the worker takes control
    page.goto(p.url + "/")
    assert page.locator("#backend").inner_text().startswith("backend-")
    css = page.evaluate("document.querySelector('link[rel=stylesheet]').getAttribute('href')")
    assert re.fullmatch(r"/static/app\.[0-9a-f]{12}\.css", css), css
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    assert page.evaluate("navigator.serviceWorker.controller.scriptURL") == p.url + "/service-worker.js"
    first = _cache_name(p)
    wait_for(lambda: _cache_keys(page) == [first], timeout=30, what=f"the cache {first}")
    assert "registered" in page.locator("#sw-status").inner_text()

    # 2. network cut: a navigation shows the offline page, styled from the worker's cache
    browser_context.set_offline(True)
    try:
        page.goto(p.url + "/somewhere/else")
        assert page.locator("#offline").inner_text() == "You are offline"
        assert _h1_color(page) == "rgb(187, 0, 0)"  # #b00 from offline.css
    finally:
        browser_context.set_offline(False)

    # 3. an offline asset changes; `scaleout up` renders a worker with another content hash
    css_file = p.path / "public/static/offline.css"
    css_file.write_text(css_file.read_text().replace("color: #b00", "color: #0a0"))
    p.cli("up", "--replicas", "3", check=True)
    second = _cache_name(p)
    assert second != first

    # the next navigation makes the browser check the worker (never cached), install the new one,
    # and its activate handler deletes the old cache
    page.goto(p.url + "/")
    wait_for(lambda: _cache_keys(page) == [second], timeout=60, what=f"only the new cache {second}")
    page.wait_for_function("navigator.serviceWorker.controller !== null")

    # 4. offline again: the offline page now comes with the new stylesheet
    browser_context.set_offline(True)
    try:
        page.goto(p.url + "/another")
        assert page.locator("#offline").inner_text() == "You are offline"
        assert _h1_color(page) == "rgb(0, 170, 0)"  # #0a0
    finally:
        browser_context.set_offline(False)
    page.close()
