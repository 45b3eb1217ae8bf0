"""Unit tests (no engine): the generated worker, fingerprinted assets, the static locations of the
rendered nginx config (gixy-ng finds nothing), and the probe's cache-header checks."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scaleout.config.load import load_config
from scaleout.errors import ConfigError
from scaleout.files import write_plan
from scaleout.layout import ASSETS_DIR, COMPOSE_FILE, NGINX_CONF
from scaleout.probe.cachecheck import check_cache_headers
from scaleout.render import plan_for
from scaleout.render.assets import MANIFEST, plan_assets
from scaleout.render.compose import render
from scaleout.render.worker import render_worker
from scaleout.scaffold import init_project
from tests.helpers import ROOT
from tests.helpers.cachefake import IMMUTABLE, FakeBalancer

IMMUTABLE_HEADER = f'add_header Cache-Control "{IMMUTABLE}";'


def _project(tmp_path: Path, template: str = "python", static: dict | None = None) -> Path:
    root = tmp_path / "demo"
    init_project(root, template, name="demo")
    if static is not None:
        cfg = yaml.safe_load((root / "scaleout.yaml").read_text())
        cfg["static"].update(static)
        (root / "scaleout.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return root


def fingerprint_assets(cfg):
    """What `scaleout render` does for the assets: plan everything, write it under the ledger."""
    write_plan(cfg.project_dir, plan_for("compose", cfg))
    return plan_assets(cfg)


def _render(root: Path) -> dict[str, str]:
    cfg = load_config(root, env={})
    plan = fingerprint_assets(cfg)
    return render(cfg, worker=render_worker(cfg), assets=plan.env_value())


def _cache_name(worker: str) -> str:
    return json.loads(re.search(r"^const CACHE = (.+);$", worker, re.M).group(1))


def _locations(nginx: str) -> dict[str, str]:
    """`location <match>` -> its body, for the balancer's own static locations."""
    blocks = re.finditer(r"^ *location ([^\n]+) \{$(.*?)^ *\}$", nginx, re.M | re.S)
    return {m.group(1).strip(): m.group(2) for m in blocks}


# --- the generated worker -----------------------------------------------------------------------

def test_worker_precaches_offline_page_and_its_assets(tmp_path):
    root = _project(tmp_path)
    worker = render_worker(load_config(root, env={}))
    precache = json.loads(re.search(r"^const PRECACHE = (.+);$", worker, re.M).group(1))
    assert precache == ["/offline.html", "/static/offline.css"]
    assert json.loads(re.search(r"^const OFFLINE_PAGE = (.+);$", worker, re.M).group(1)) == "/offline.html"
    assert re.fullmatch(r"scaleout-offline-[0-9a-f]{16}", _cache_name(worker))
    # activate deletes every older cache of ours (proven in a browser by tests/e2e/test_browser.py)
    assert "caches.delete(key)" in worker and "key !== CACHE" in worker


@pytest.mark.parametrize("changed", ["offline.html", "static/offline.css"])
def test_changing_a_precached_file_changes_the_worker(tmp_path, changed):
    root = _project(tmp_path)
    before = render_worker(load_config(root, env={}))
    f = root / "public" / changed
    f.write_text(f.read_text() + "\n/* v2 */\n" if f.suffix == ".css"
                 else f.read_text().replace("offline", "offline!", 1))
    after = render_worker(load_config(root, env={}))
    assert after != before
    assert _cache_name(after) != _cache_name(before)


def test_worker_bytes_ignore_files_it_does_not_precache(tmp_path):
    root = _project(tmp_path)
    before = render_worker(load_config(root, env={}))
    (root / "public/static/app.css").write_text("body { color: red; }\n")
    assert render_worker(load_config(root, env={})) == before


def test_missing_offline_page_is_a_config_error(tmp_path):
    root = _project(tmp_path)
    (root / "public/offline.html").unlink()
    with pytest.raises(ConfigError, match=r"static.offline_page: /offline.html not found"):
        render_worker(load_config(root, env={}))


def test_own_worker_is_not_generated(tmp_path):
    root = _project(tmp_path, static={"generate_worker": False})
    cfg = load_config(root, env={})
    assert render_worker(cfg) is None
    files = render(cfg, worker=None)
    assert not any(p.startswith(".scaleout/sw/") for p in files)
    lb = yaml.safe_load(files[COMPOSE_FILE])["services"]["lb"]
    assert "/srv/scaleout-sw" not in [v["target"] for v in lb["volumes"]]


# --- fingerprinting -----------------------------------------------------------------------------

def test_fingerprint_writes_hashed_copies_and_a_manifest(tmp_path):
    root = _project(tmp_path)
    public_before = sorted(p.relative_to(root).as_posix() for p in (root / "public").rglob("*"))
    plan = fingerprint_assets(load_config(root, env={}))
    css = (root / "public/static/app.css").read_bytes()
    digest = hashlib.sha256(css).hexdigest()[:12]
    assert plan.urls["app.css"] == f"/static/app.{digest}.css"
    assert set(plan.urls) == {"app.css", "app.js", "offline.css"}
    assert (root / ASSETS_DIR / f"static/app.{digest}.css").read_bytes() == css
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["assets"] == plan.urls
    # nothing is written into the user's own folder
    assert sorted(p.relative_to(root).as_posix() for p in (root / "public").rglob("*")) == public_before


def test_fingerprint_skips_hidden_fingerprinted_and_worker_files(tmp_path):
    root = _project(tmp_path)
    (root / "public/static/.draft.css").write_text("x")
    (root / "public/static/vendor.0123abcd.css").write_text("v")
    (root / "public/static/img").mkdir()
    (root / "public/static/img/logo.svg").write_text("<svg/>")
    (root / "public/static/sw.js").write_text("// a worker under /static/")
    (root / "scaleout.yaml").write_text((root / "scaleout.yaml").read_text().replace(
        'service_workers: ["/service-worker.js"]', 'service_workers: ["/static/sw.js"]'))
    plan = plan_assets(load_config(root, env={}))
    assert ".draft.css" not in plan.urls and "vendor.0123abcd.css" not in plan.urls
    assert "sw.js" not in plan.urls  # a worker keeps its URL
    assert re.fullmatch(r"/static/img/logo\.[0-9a-f]{12}\.svg", plan.urls["img/logo.svg"])


def test_old_copies_are_removed_only_when_scaleout_wrote_them(tmp_path):
    root = _project(tmp_path)
    css = root / "public/static/app.css"
    out = root / ASSETS_DIR / "static"
    stray = out / "mine.css"  # not written by scaleout: never deleted
    out.mkdir(parents=True)
    stray.write_text("keep me")
    urls = []
    for version in range(3):
        css.write_text(f"body {{ --v: {version}; }}\n")
        urls.append(fingerprint_assets(load_config(root, env={})).urls["app.css"])
    names = {p.name for p in out.iterdir()}
    v0, v1, v2 = (u.rsplit("/", 1)[1] for u in urls)
    assert v2 in names and v1 in names  # the current and the previous generation are served
    assert v0 not in names  # two generations back: removed, scaleout wrote it
    assert stray.read_text() == "keep me"
    assert css.read_text() == "body { --v: 2; }\n"


def test_replicas_get_the_manifest_through_compose(tmp_path):
    root = _project(tmp_path)
    files = _render(root)
    compose = yaml.safe_load(files[COMPOSE_FILE])
    manifest = json.loads((root / MANIFEST).read_text())["assets"]
    replicas = [s for name, s in compose["services"].items() if name.startswith("backend-")]
    assert replicas and all(json.loads(s["environment"]["SCALEOUT_ASSETS"]) == manifest for s in replicas)
    targets = {v["target"]: v["source"] for v in compose["services"]["lb"]["volumes"]}
    assert targets["/srv/scaleout-assets"] == "./assets"


# --- nginx: headers, add_header inheritance, gixy-ng --------------------------------------------

def test_every_static_location_sets_all_its_headers(tmp_path):
    root = _project(tmp_path, static={"worker_scope": "/"})
    locs = _locations(_render(root)[NGINX_CONF])
    worker = locs["= /service-worker.js"]
    assert 'add_header Cache-Control "no-cache" always;' in worker
    assert 'add_header Service-Worker-Allowed "/" always;' in worker
    fp = next(body for m, body in locs.items() if m.startswith("~") and "/static/" in m and "deny all" not in body)
    # no `always`: a 404 for a hashed name must not be cached for a year
    assert IMMUTABLE_HEADER in fp
    assert "try_files /public$uri /scaleout-assets$uri =404;" in fp
    for match in ("= /offline.html", "/static/"):
        assert 'add_header Cache-Control "no-cache" always;' in locs[match]
    # every location that adds a header repeats nosniff: nothing is lost to add_header inheritance
    for match, body in locs.items():
        if "add_header Cache-Control" in body:
            assert 'add_header X-Content-Type-Options "nosniff"' in body, match


VARIANTS = {
    "python-default": ("python", None),
    "node-default": ("node", None),
    "worker-scope": ("python", {"worker_scope": "/", "service_workers": ["/static/sw.js"]}),
    "own-worker": ("python", {"generate_worker": False, "worker_scope": "/app/"}),
    "two-prefix-routes": ("python", {"routes": ["/static/", "/assets/", "/offline.html", "/service-worker.js"]}),
    "no-prefix-route": ("python", {"routes": ["/offline.html", "/service-worker.js"]}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gixy_finds_nothing(tmp_path, variant):
    template, static = VARIANTS[variant]
    root = _project(tmp_path, template, static)
    if variant == "worker-scope":
        (root / "public/static/sw.js").write_text("// placeholder\n")
    conf = tmp_path / "nginx.conf"
    conf.write_text(_render(root)[NGINX_CONF])
    r = subprocess.run([sys.executable, "-m", "gixy", "-f", "json", str(conf)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout) == [], r.stdout


# --- the probe's cache-header checks ------------------------------------------------------------

def _failures(checks: list[dict]) -> dict[str, str]:
    return {c["path"]: c["detail"] for c in checks if not c["ok"]}


@pytest.fixture
def cfg(tmp_path):
    return load_config(_project(tmp_path), env={})


def test_cache_check_passes_a_correct_balancer(cfg):
    with FakeBalancer() as fake:
        checks = check_cache_headers(fake.url, cfg)
    assert _failures(checks) == {}
    assert {c["kind"] for c in checks} == {"service_worker", "offline_page", "offline_asset", "fingerprinted_asset"}
    assert sum(c["kind"] == "fingerprinted_asset" for c in checks) == 2


def test_cache_check_names_a_cacheable_worker(cfg):
    with FakeBalancer() as fake:
        status, headers, body = fake.routes["/service-worker.js"]
        fake.routes["/service-worker.js"] = (status, {**headers, "Cache-Control": "max-age=3600"}, body)
        bad = _failures(check_cache_headers(fake.url, cfg))
    assert list(bad) == ["/service-worker.js"]
    assert "cacheable" in bad["/service-worker.js"]


def test_cache_check_names_an_asset_that_is_not_immutable(cfg):
    with FakeBalancer() as fake:
        fake.routes["/static/app.abcdef012345.js"] = (200, {"Cache-Control": "public, max-age=600"}, "1")
        bad = _failures(check_cache_headers(fake.url, cfg))
    assert list(bad) == ["/static/app.abcdef012345.js"]
    assert "immutable" in bad["/static/app.abcdef012345.js"]


def test_cache_check_names_a_missing_offline_page(cfg):
    with FakeBalancer() as fake:
        del fake.routes["/offline.html"]
        bad = _failures(check_cache_headers(fake.url, cfg))
    assert list(bad) == ["/offline.html"]
    assert "HTTP 404" in bad["/offline.html"] and "missing" in bad["/offline.html"]


def test_cache_check_wants_validators_on_the_offline_page(cfg):
    with FakeBalancer() as fake:
        fake.routes["/offline.html"] = (200, {"Cache-Control": "no-cache"}, "<h1>offline</h1>")
        bad = _failures(check_cache_headers(fake.url, cfg))
    assert list(bad) == ["/offline.html"]


def test_cache_check_wants_service_worker_allowed_when_scoped(tmp_path):
    cfg = load_config(_project(tmp_path, static={"worker_scope": "/"}), env={})
    with FakeBalancer() as fake:
        bad = _failures(check_cache_headers(fake.url, cfg))
        assert "Service-Worker-Allowed" in bad["/service-worker.js"]
        status, headers, body = fake.routes["/service-worker.js"]
        fake.routes["/service-worker.js"] = (status, {**headers, "Service-Worker-Allowed": "/"}, body)
        assert _failures(check_cache_headers(fake.url, cfg)) == {}


def test_worker_precaches_only_what_the_balancer_serves(tmp_path):
    """A file the offline page links that nginx would pass to a replica is not precached: one failed
    fetch would make cache.addAll reject and the worker never install."""
    import shutil

    from scaleout.config.load import load_config
    from scaleout.render.worker import precache_files

    shutil.copytree(ROOT / "examples" / "python-demo", tmp_path / "p")
    public = tmp_path / "p" / "public"
    (public / "favicon.ico").write_bytes(b"\0icon")
    page = public / "offline.html"
    page.write_text(page.read_text().replace("</head>", '<link rel="icon" href="/favicon.ico">\n</head>'))
    files = precache_files(load_config(tmp_path / "p", env={}))
    assert "/offline.html" in files and "/static/offline.css" in files
    assert "/favicon.ico" not in files


def test_offline_page_must_be_a_static_route(tmp_path):
    import shutil

    from scaleout.config.load import load_config
    from scaleout.errors import ConfigError
    from scaleout.render.worker import precache_files

    shutil.copytree(ROOT / "examples" / "python-demo", tmp_path / "p")
    cfg = tmp_path / "p" / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace('routes: ["/static/", "/offline.html",', 'routes: ["/static/",'))
    with pytest.raises(ConfigError, match="not one of static.routes"):
        precache_files(load_config(tmp_path / "p", env={}))
