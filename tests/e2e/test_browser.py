"""A real browser through the balancer: Debian's headless Chromium driven by Playwright.

The page at / loads and the generated worker takes control; with the network cut a navigation shows
the offline page; after an offline asset changes and `scaleout up` runs again, the browser installs the
new worker and the old cache is gone. WebSockets opened by the page outlive the reloads of rescaling
(3 -> 5 -> 2) on the replicas that stay; the one on a removed replica is closed cleanly (1001). Through a
rolling update (a code change, `scaleout up`) sockets keep working until their own replica's old container
has drained, close cleanly then, and the page's reconnects reach the new version without a failed handshake. Needs
scripts/setup-browser.sh (scripts/test.sh runs it); fails without a browser (SCALEOUT_TESTS=fast leaves it out).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.helpers import Project, free_port, remove_project, run_cli, unavailable, wait_for

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


# --- WebSockets while the stack is rescaled -------------------------------------------------------

# Sockets opened by the page, each with every message it received and how it ended.
SOCKETS_JS = """
window.sockets = [];
window.openSocket = (url) => new Promise((resolve, reject) => {
  const s = { ws: new WebSocket(url), messages: [], closed: null };
  s.ws.onmessage = (e) => {
    s.messages.push(e.data);
    if (s.messages.length === 1) resolve({ index: window.sockets.push(s) - 1, hello: e.data });
  };
  s.ws.onclose = (e) => { s.closed = { code: e.code, clean: e.wasClean }; reject(new Error('closed ' + e.code)); };
});
window.echo = ([i, text]) => new Promise((resolve, reject) => {
  const s = window.sockets[i];
  const seen = s.messages.length;
  const timer = setInterval(() => {
    if (s.messages.length > seen) { clearInterval(timer); resolve(s.messages[seen]); }
    else if (s.closed) { clearInterval(timer); reject(new Error('closed ' + s.closed.code)); }
  }, 20);
  s.ws.send(text);
});
window.socketState = (i) => ({ open: window.sockets[i].ws.readyState === WebSocket.OPEN,
                               closed: window.sockets[i].closed });
'ready';  // the script's value: Playwright would call a function
"""


def _config_generation(p: Project) -> int:
    import httpx

    return int(httpx.get(p.url + "/_scaleout/ping").headers["X-Scaleout-Config"])


def test_websockets_survive_rescaling(stack, browser_context):
    p = stack
    page = browser_context.new_page()
    page.goto(p.url + "/")
    page.evaluate(SOCKETS_JS)
    ws_url = p.url.replace("http://", "ws://") + "/ws"

    def open_socket() -> tuple[int, str]:
        s = page.evaluate("url => openSocket(url)", ws_url)
        assert re.fullmatch(r"hello from backend-[0-9]+", s["hello"]), s
        return s["index"], s["hello"].removeprefix("hello from ")

    def echoes(i: int, text: str) -> bool:
        return page.evaluate("args => echo(args)", [i, text]) == text

    # sockets on every replica of three: backend-1 and backend-2 survive the rescales, backend-3 does not
    on: dict[int, str] = {}
    for _ in range(24):
        i, replica = open_socket()
        on[i] = replica
        if set(on.values()) == {"backend-1", "backend-2", "backend-3"}:
            break
    assert set(on.values()) == {"backend-1", "backend-2", "backend-3"}
    keepers = [i for i, r in on.items() if r in ("backend-1", "backend-2")]
    leavers = [i for i, r in on.items() if r == "backend-3"]

    # 3 -> 5: a graceful reload; every socket stays open and keeps echoing
    first = _config_generation(p)
    p.cli("up", "--replicas", "5", check=True)
    grown = _config_generation(p)
    assert grown > first
    for i, replica in on.items():
        assert page.evaluate("i => socketState(i)", i) == {"open": True, "closed": None}, replica
        assert echoes(i, f"after 3 -> 5 on {replica}")

    # 5 -> 2: another reload, then backend-3..5 stop. Sockets on backend-1 and -2 are not cut; the
    # one on backend-3 is told its replica is going away (1001), cleanly, so the page can reconnect
    p.cli("up", "--replicas", "2", check=True)
    assert _config_generation(p) > grown
    for i in keepers:
        assert page.evaluate("i => socketState(i)", i) == {"open": True, "closed": None}, on[i]
        assert echoes(i, f"after 5 -> 2 on {on[i]}")
        assert page.evaluate("i => sockets[i].messages", i) == [
            f"hello from {on[i]}", f"after 3 -> 5 on {on[i]}", f"after 5 -> 2 on {on[i]}"]
    for i in leavers:
        assert page.evaluate("i => socketState(i)", i) == {"open": False, "closed": {"code": 1001, "clean": True}}

    # new sockets open afterwards, on the two replicas left
    for n in range(4):
        i, replica = open_socket()
        assert replica in ("backend-1", "backend-2")
        assert echoes(i, f"new socket {n}")
    page.close()


# --- WebSockets while the stack is updated (a rolling update after a code change) -----------------------

# Each slot is one socket the page keeps: when it closes, the page reconnects 100 ms later (as a real app
# does), so a slot is a history of connections. Every open connection is sent a message each 100 ms; the
# time of its last echo shows how long it really worked.
SLOTS_JS = """
window.slots = [];
window.openSlot = (url) => new Promise((resolve, reject) => {
  const slot = { conns: [], sockets: [] };
  const index = window.slots.push(slot) - 1;
  const connect = () => {
    const c = { hello: null, opened: Date.now(), closed: null, echoes: 0, lastEcho: null };
    const ws = new WebSocket(url);
    slot.conns.push(c);
    slot.sockets.push(ws);
    ws.onmessage = (e) => {
      if (c.hello !== null) { c.echoes++; c.lastEcho = Date.now(); return; }
      c.hello = e.data;
      if (slot.conns.length === 1) resolve({ index, hello: e.data });
    };
    ws.onclose = (e) => {
      c.closed = { code: e.code, clean: e.wasClean, at: Date.now() };
      if (slot.conns.length === 1 && c.hello === null) reject(new Error('closed ' + e.code));
      else if (slot.conns.length < 20) setTimeout(connect, 100);
    };
  };
  connect();
});
setInterval(() => {
  for (const slot of window.slots) {
    const ws = slot.sockets[slot.sockets.length - 1];
    if (ws.readyState === WebSocket.OPEN && slot.conns[slot.conns.length - 1].hello !== null) ws.send('ping');
  }
}, 100);
window.slotHistory = () => window.slots.map((s) => s.conns.map((c, i) => (
  { ...c, open: s.sockets[i].readyState === WebSocket.OPEN })));
window.echoLast = ([i, text]) => new Promise((resolve, reject) => {
  const s = window.slots[i], ws = s.sockets[s.sockets.length - 1];
  const prev = ws.onmessage;
  ws.onmessage = (e) => { prev(e); if (e.data === text) { ws.onmessage = prev; resolve(e.data); } };
  setTimeout(() => reject(new Error('no echo of ' + text)), 5000);
  ws.send(text);
});
'ready';
"""


def _run_timed(p: Project, *args: str, timeout: float = 300) -> tuple[int, list[tuple[float, str]], str]:
    """Run the CLI and note the wall-clock time (ms, as the page's Date.now()) each stderr line arrived."""
    import subprocess
    import sys
    import time

    from tests.helpers import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT), **p.env}
    proc = subprocess.Popen([sys.executable, "-m", "scaleout", *args], cwd=p.path, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append((time.time() * 1000, line.rstrip("\n")))
    code = proc.wait(timeout=timeout)
    return code, lines, "\n".join(text for _, text in lines)


def _first(lines: list[tuple[float, str]], pattern: str) -> float:
    found = [t for t, text in lines if re.search(pattern, text)]
    assert found, f"no line matching {pattern!r}"
    return found[0]


def test_websockets_through_a_rolling_update(stack, browser_context):
    """Sockets on the replicas not replaced yet keep working; those on a replaced replica close cleanly
    (1001) only when its old container stops after its drain, and the page's reconnects reach the new
    version; not one handshake fails on the way."""
    p = stack
    p.cli("up", "--replicas", "3", check=True)  # whatever the tests before left
    from scaleout.config.load import load_config

    drain_s = load_config(p.path).backend.drain_seconds
    assert drain_s >= 1  # the window the assertions below look at
    page = browser_context.new_page()
    page.goto(p.url + "/")
    page.evaluate(SLOTS_JS)
    ws_url = p.url.replace("http://", "ws://") + "/ws"
    on: dict[int, str] = {}
    for _ in range(24):
        s = page.evaluate("url => openSlot(url)", ws_url)
        on[s["index"]] = re.fullmatch(r"hello from (backend-[0-9]+)", s["hello"]).group(1)
        if set(on.values()) == {"backend-1", "backend-2", "backend-3"}:
            break
    assert set(on.values()) == {"backend-1", "backend-2", "backend-3"}

    # a code change: every replica is replaced, one at a time, while the sockets are held
    app = p.path / "backend" / "app.py"
    original = app.read_text()
    app.write_text(original.replace('f"hello from {HOSTNAME}"', 'f"hello from {HOSTNAME} v2"'))
    code, lines, text = _run_timed(p, "up")
    assert code == 0, text

    # the page reconnected every slot to the new version
    def reconnected() -> bool:
        return all(h[-1]["open"] and (h[-1]["hello"] or "").endswith(" v2") and h[-1]["echoes"] > 0
                   for h in page.evaluate("slotHistory()"))

    wait_for(reconnected, timeout=30, what="every slot reconnected to a v2 replica")
    history = page.evaluate("slotHistory()")
    old_conns = []  # (replica, connection) of every connection to the old version
    for i, conns in enumerate(history):
        assert conns[0]["hello"] == f"hello from {on[i]}"
        assert len(conns) >= 2, conns
        for c in conns:
            assert c["hello"] is not None, f"a handshake failed during the update: {conns}"
            m = re.fullmatch(r"hello from (backend-[0-9]+)( v2)?", c["hello"])
            assert m, c
            if m.group(2):  # the new version: never closed
                assert c["open"] and c["closed"] is None, conns
            else:  # the old version: closed by its replica, going away, cleanly
                assert c["closed"] is not None, conns
                assert (c["closed"]["code"], c["closed"]["clean"]) == (1001, True), conns
                old_conns.append((m.group(1), c))
        assert page.evaluate("args => echoLast(args)", [i, f"after the update {i}"]) == f"after the update {i}"

    # ... and only once its old container's drain was over, no later than that container's removal
    assert "rolling update of 3 replica(s)" in text, text
    drained = {r: _first(lines, rf"{r}: \S+ is out of the balancer, draining") for r in ("backend-1", "backend-2",
                                                                                           "backend-3")}
    replaced = {r: _first(lines, rf"{r}: replaced") for r in drained}
    for r, c in old_conns:
        assert drained[r] + drain_s * 1000 - 500 <= c["closed"]["at"] <= replaced[r] + 500, (
            r, c["closed"]["at"] - drained[r], replaced[r] - drained[r])
    # every first socket kept echoing until its replica closed it: none was cut by the reloads of the
    # replicas replaced before its own, and those on the replica replaced last outlived the others' update
    for conns in history:
        first = conns[0]
        assert first["lastEcho"] is not None and first["closed"]["at"] - first["lastEcho"] < 1000, first
    last = max(drained, key=drained.get)
    assert any(on[i] == last and h[0]["lastEcho"] > min(replaced.values()) for i, h in enumerate(history))
    page.close()
