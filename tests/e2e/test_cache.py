"""Cache headers through a real balancer (curl), with 1, 3 and 5 replicas; the probe's cache checks
pass there and fail, naming the path, where headers are wrong; a project that brings its own worker
still gets the headers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest

from tests.helpers import Project, free_port, remove_project, run_cli
from tests.helpers.cachefake import FakeBalancer

pytestmark = pytest.mark.e2e

IMMUTABLE = "public, max-age=31536000, immutable"
FINGERPRINTED = re.compile(r"""(?:href|src)="(/static/[^"]+\.[0-9a-f]{12}\.[a-z]+)\"""")


def _new_project(base, images, static_yaml: str | None = None) -> Project:
    name = f"c{uuid.uuid4().hex[:10]}"
    path = base / name
    port = free_port()
    run_cli(["init", str(path), "--name", name], base, images, check=True)
    cfg = path / "scaleout.yaml"
    text = cfg.read_text().replace("port: 8080", f"port: {port}")
    if static_yaml is not None:
        text = re.sub(r"^static:\n(?:  .*\n|\n)*?(?=images:)", static_yaml, text, flags=re.M)
    cfg.write_text(text)
    return Project(path, name, port, dict(images))


@pytest.fixture(scope="module")
def stack(tmp_path_factory, images):
    """One project for the module, started with one replica; removed by label afterwards."""
    p = _new_project(tmp_path_factory.mktemp("cache"), images)
    yield p
    p.cli("down")
    remove_project(p.name)


def curl(url: str, *extra: str) -> tuple[int, dict[str, str], str]:
    """GET with curl: (status, headers with lower-case names, body)."""
    out = subprocess.run(["curl", "-sS", "-D", "-", *extra, url], capture_output=True, text=True, timeout=20,
                         check=True).stdout
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def _check_headers(p: Project, replicas: int) -> None:
    # the page at / comes from the replicas; each one links the same fingerprinted assets
    linked = set()
    for _ in range(2 * replicas):
        status, headers, body = curl(p.url + "/")
        assert status == 200 and headers["cache-control"] == "no-cache"
        linked.add(tuple(FINGERPRINTED.findall(body)))
    assert len(linked) == 1, linked
    assets = linked.pop()
    manifest = json.loads((p.path / ".scaleout/assets/manifest.json").read_text())["assets"]
    assert list(assets) == [manifest["app.css"], manifest["app.js"]]  # SCALEOUT_ASSETS reached every replica
    for path in assets:
        status, headers, _ = curl(p.url + path)
        assert status == 200, path
        assert headers["cache-control"] == IMMUTABLE, (path, headers)
        assert headers["x-content-type-options"] == "nosniff", (path, headers)

    status, headers, body = curl(p.url + "/service-worker.js")
    assert status == 200
    assert headers["cache-control"] == "no-cache"
    assert headers["x-content-type-options"] == "nosniff"
    assert "javascript" in headers["content-type"]
    assert "const CACHE = \"scaleout-offline-" in body

    status, headers, body = curl(p.url + "/offline.html")
    assert status == 200 and 'id="offline"' in body
    assert headers["cache-control"] == "no-cache" and headers["x-content-type-options"] == "nosniff"
    assert headers.get("etag") and headers.get("last-modified")
    # revalidation works: the validator earns a 304 that still carries the headers
    status, again, _ = curl(p.url + "/offline.html", "-H", f"If-None-Match: {headers['etag']}")
    assert status == 304 and again["cache-control"] == "no-cache"

    status, headers, _ = curl(p.url + "/static/offline.css")
    assert status == 200 and headers["cache-control"] == "no-cache" and headers.get("etag")
    # a hashed name that does not exist is a plain 404, never cached for a year
    status, headers, _ = curl(p.url + "/static/app.0123456789ab.css")
    assert status == 404 and "immutable" not in headers.get("cache-control", "")


@pytest.mark.nginx_matrix
def test_headers_with_1_3_5_replicas(stack):
    p = stack
    for replicas in (1, 3, 5):
        p.cli("up", "--replicas", str(replicas), check=True)
        _check_headers(p, replicas)
        r = p.cli("probe", "--json", "--requests", "300", "--concurrency", "4")
        res = json.loads(r.stdout)
        assert r.returncode == 0 and res["verdict"] == "pass", r.stdout + r.stderr
        kinds = {c["kind"] for c in res["cache_checks"]}
        assert kinds == {"service_worker", "offline_page", "offline_asset", "fingerprinted_asset"}
        assert all(c["ok"] for c in res["cache_checks"]), res["cache_checks"]
        assert len(res["backends"]) == replicas


def test_rendered_config_of_the_running_stack_passes_gixy(stack):
    conf = stack.path / ".scaleout/nginx/nginx.conf"
    assert conf.is_file()
    r = subprocess.run([sys.executable, "-m", "gixy", "-f", "json", str(conf)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stdout + r.stderr


def test_probe_fails_when_the_offline_page_goes_missing(stack):
    p = stack
    if not p.cli("status", "--json", check=True).stdout.count('"running": true'):
        p.cli("up", "--replicas", "1", check=True)
    page = p.path / "public/offline.html"
    saved = page.read_bytes()
    page.unlink()  # the balancer serves the folder live: the page is gone at once
    try:
        r = p.cli("probe", "--requests", "100", "--concurrency", "4")
        assert r.returncode == 1, r.stdout + r.stderr
        assert "cache headers: /offline.html: HTTP 404" in r.stdout
        r = p.cli("probe", "--requests", "100", "--concurrency", "4", "--no-cache-check")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "cache " not in r.stdout
    finally:
        page.write_bytes(saved)


@pytest.mark.parametrize(
    "breakage, path",
    [
        ("worker", "/service-worker.js"),
        ("asset", "/static/app.abcdef012345.js"),
        ("offline", "/offline.html"),
    ],
)
def test_probe_names_the_path_with_wrong_headers(make_project, breakage, path):
    p = make_project()  # scaffolded, not started: its config tells the probe what to check
    with FakeBalancer() as fake:
        args = ["probe", "--url", fake.url, "--requests", "50", "--concurrency", "2"]
        r = p.cli(*args)
        assert r.returncode == 0, r.stdout + r.stderr  # the fake answers like a correct balancer
        if breakage == "worker":
            status, headers, body = fake.routes[path]
            fake.routes[path] = (status, {**headers, "Cache-Control": "public, max-age=86400"}, body)
        elif breakage == "asset":
            fake.routes[path] = (200, {"Cache-Control": "public, max-age=600"}, "1")
        else:
            del fake.routes[path]
        r = p.cli(*args)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"cache headers: {path}:" in r.stdout
        assert "verdict: FAIL" in r.stdout
        r = p.cli(*args, "--no-cache-check")
        assert r.returncode == 0 and "verdict: PASS" in r.stdout, r.stdout + r.stderr


OWN_WORKER = """static:
  dir: public
  routes: ["/static/", "/offline.html", "/service-worker.js"]
  service_workers: ["/service-worker.js"]
  worker_scope: /
  generate_worker: false
  offline_page: /offline.html

"""


def test_own_worker_still_gets_the_headers(tmp_path, images):
    p = _new_project(tmp_path, images, OWN_WORKER)
    own = "// my own worker\nself.addEventListener('fetch', () => {});\n"
    (p.path / "public/service-worker.js").write_text(own)
    try:
        p.cli("up", "--replicas", "1", check=True)
        assert not (p.path / ".scaleout/sw").exists()
        status, headers, body = curl(p.url + "/service-worker.js")
        assert status == 200 and body == own
        assert headers["cache-control"] == "no-cache"
        assert headers["service-worker-allowed"] == "/"
        assert headers["x-content-type-options"] == "nosniff"
        r = p.cli("probe", "--json", "--requests", "100", "--concurrency", "4")
        res = json.loads(r.stdout)
        assert r.returncode == 0 and all(c["ok"] for c in res["cache_checks"]), r.stdout + r.stderr
    finally:
        p.cli("down")
        remove_project(p.name)


def test_node_backend_links_fingerprinted_assets(make_project):
    p = make_project("node")
    p.cli("up", "--replicas", "1", check=True)
    manifest = json.loads((p.path / ".scaleout/assets/manifest.json").read_text())["assets"]
    status, _, body = curl(p.url + "/")
    assert status == 200
    assert FINGERPRINTED.findall(body) == [manifest["app.css"], manifest["app.js"]]
    for path in FINGERPRINTED.findall(body):
        status, headers, _ = curl(p.url + path)
        assert status == 200 and headers["cache-control"] == IMMUTABLE
    p.cli("down", check=True)
