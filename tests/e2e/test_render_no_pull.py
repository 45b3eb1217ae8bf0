"""`render` and `export` send no request to a registry: with balancer.tls they ask the balancer image for
its nginx version, and an image the engine does not have is a usage error (exit 2, saying why), never a
pull. The "registry" here is a listener on 127.0.0.1 that counts the connections the engine makes to it."""

from __future__ import annotations

import pytest

from tests.helpers.probe_testserver import Listener

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("args", [["render"], ["export", "k8s", "--out", "k8s-out"]])
def test_render_and_export_never_pull_the_balancer_image(make_project, docker_engine, args):
    registry = Listener()
    port = registry.url.rsplit(":", 1)[1]
    image = f"127.0.0.1:{port}/scaleout-hostile/nginx:1"
    try:
        p = make_project(replace={"  bind: 127.0.0.1": "  bind: 127.0.0.1\n  tls: local"})
        p.env["SCALEOUT_LB_IMAGE"] = image
        r = p.cli(*args, timeout=60)
    finally:
        registry.close()
    assert r.returncode == 2, (r.returncode, r.stdout + r.stderr)
    assert "images.balancer" in r.stderr and "does not pull" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert registry.accepted == 0  # no request reached the registry the reference names
    assert not (p.path / ".scaleout" / "docker-compose.yml").exists()
    assert not (p.path / "k8s-out").exists()
