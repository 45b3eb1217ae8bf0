"""A real browser on an HTTPS origin that is not localhost: Chromium, whose NSS database (in a
temporary HOME) trusts the local authority through `scaleout trust --install --only nss`, reaches
https://app.test:PORT/ (a name from balancer.tls_names, mapped to 127.0.0.1) over HTTP/2; the
generated worker registers there and serves the offline page when the network is gone.
Browsers register service workers only in a secure context: on any host but localhost that means a
certificate the browser trusts, so this is what a team member's machine sees with `tls: local`."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, _missing_browser
from tests.helpers import Project, free_port, remove_project, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
HOST = "app.test"


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory, images):
    base = tmp_path_factory.mktemp("tls-browser")
    home = base / "home"
    home.mkdir()
    name = f"s{uuid.uuid4().hex[:10]}"
    path = base / name
    env = {**images, "XDG_DATA_HOME": str(base / "data")}
    run_cli(["init", str(path), "--name", name], base, env, check=True)
    port = free_port()
    cfg = path / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("port: 8080", f"port: {port}\n  tls: local\n  tls_names: [{HOST}]"))
    p = Project(path, name, port, env)
    p.cli("up", "--replicas", "2", check=True)
    # the browser's own trust store, in the temporary HOME: nothing on this machine is changed
    r = run_cli(["trust", "--install", "--only", "nss"], path, {**env, "HOME": str(home)}, check=True)
    assert "done" in r.stdout
    yield p, home
    p.cli("down")
    remove_project(p.name)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def trusting_browser(tls_stack):
    missing = _missing_browser()
    if missing:
        msg = f"{missing}: run scripts/setup-browser.sh"
        if os.environ.get("CI"):
            pytest.fail(msg + " -- browser tests must run in CI")
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    _, home = tls_stack
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(home / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            # no --ignore-certificate-errors: the certificate must be trusted for real
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"],
            env={**os.environ, "HOME": str(home)},
            service_workers="allow",
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


def test_worker_registers_on_an_https_origin_that_is_not_localhost(tls_stack, trusting_browser):
    p, _ = tls_stack
    origin = f"https://{HOST}:{p.port}"
    page = trusting_browser.new_page()
    response = page.goto(origin + "/")
    assert response is not None and response.status == 200
    assert page.evaluate("window.isSecureContext") is True
    assert page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
    assert page.locator("#backend").inner_text().startswith("backend-")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    assert page.evaluate("navigator.serviceWorker.controller.scriptURL") == origin + "/service-worker.js"

    trusting_browser.set_offline(True)
    try:
        page.goto(origin + "/somewhere/else")
        assert page.locator("#offline").inner_text() == "You are offline"
    finally:
        trusting_browser.set_offline(False)
    page.close()
