"""`scaleout replay` on HAR files recorded by a real Chromium (Debian's, driven by Playwright with
`record_har_path`) through the balancer of a two-replica Compose stack running tests/apps/replay/app.py:
a flow that logs in (the session kept in one process's memory) is found with the right step and depends_on;
a stateless flow passes. Fails without a browser (SCALEOUT_TESTS=fast leaves it out)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, _missing_browser
from tests.e2e.test_replay import stack  # noqa: F401  (the module's two-replica stack fixture)
from tests.helpers import unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

FLOWS = {
    # the page's own script does what a user's clicks would: a login, then a page that needs the session
    "session": ["/ok/start", ("POST", "/session/login"), ("GET", "/session/me")],
    "stateless": ["/ok/start", ("POST", "/ok/items"), ("GET", "/ok/next")],
}


def _record(stack, flow: str, har) -> None:  # noqa: F811
    missing = _missing_browser()
    if missing:
        unavailable(f"{missing}: run scripts/setup-browser.sh")
    from playwright.sync_api import sync_playwright

    first, *calls = FLOWS[flow]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(record_har_path=str(har))
            page = context.new_page()
            page.goto(stack.url + first)
            for method, path in calls:
                status = page.evaluate(
                    "async ([m, p]) => (await fetch(p, {method: m, credentials: 'same-origin'})).status",
                    [method, path])
                assert status, f"{method} {path} got no answer in the browser"
            context.close()  # writes the HAR
        finally:
            browser.close()


def _index(out: dict, method: str, path: str) -> int:
    return next(s["index"] for s in out["steps"] if s["method"] == method and s["path"] == path)


def test_chromium_har_of_a_session_bug_is_found(stack, tmp_path):  # noqa: F811
    har = tmp_path / "session.har"
    _record(stack, "session", har)
    assert json.loads(har.read_text())["log"]["entries"], "Chromium recorded no request"
    r = stack.cli("replay", str(har), "--json", timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    expected = (_index(out, "GET", "/session/me"), _index(out, "POST", "/session/login"), "session")
    assert [(f["step"], f["depends_on"], f["kind"]) for f in out["findings"]] == [expected]


def test_chromium_har_of_a_stateless_flow_passes(stack, tmp_path):  # noqa: F811
    har = tmp_path / "stateless.har"
    _record(stack, "stateless", har)
    r = stack.cli("replay", str(har), "--json", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"] == "pass" and out["findings"] == []
    assert _index(out, "POST", "/ok/items") > _index(out, "GET", "/ok/start")
