"""The rendered WebSocket handling in the balancer image itself: the variants pass `nginx -t`, and a replica
gets the Upgrade/Connection headers only for a WebSocket handshake (never for an h2c upgrade)."""

from __future__ import annotations

import json
import uuid

import pytest

from scaleout.config.model import Overrides
from scaleout.render.nginx import render_nginx
from scaleout.render.swarm import swarm_nginx
from tests.helpers import wait_for
from tests.unit.render.test_websocket import cfg

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("balancer", ["websocket_timeout: 1", "websocket_timeout: 86400, read_timeout: 3600"])
def test_rendered_variants_pass_nginx_t(nginx_checker, balancer):
    for conf in (render_nginx(cfg(balancer)), swarm_nginx(cfg(balancer))):
        ok, out = nginx_checker.check(conf)
        assert ok, out


# What a replica receives, seen by a header-echoing stand-in behind the rendered nginx.conf, in one
# container of the balancer image.
ECHO_SERVER = """
import http.server, json
class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 8000), Echo).serve_forever()
"""


def test_replicas_get_upgrade_headers_only_for_websocket_handshakes(docker_engine, images, tmp_path):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "nginx.conf").write_text(render_nginx(cfg().with_overrides(Overrides(replicas=1))))
    (conf_dir / "echo.py").write_text(ECHO_SERVER)
    command = "python3 /conf/echo.py & exec nginx -c /conf/nginx.conf -g 'daemon off;'"
    container = docker_engine.containers.run(
        images["SCALEOUT_LB_IMAGE"], ["sh", "-c", command], detach=True,
        extra_hosts={"backend-1": "127.0.0.1"}, name=f"scaleout-ws-headers-{uuid.uuid4().hex[:8]}",
        volumes={str(conf_dir): {"bind": "/conf", "mode": "ro"}}, labels={"io.scaleout.test": "ws-headers"},
    )
    try:
        def seen(*headers: str) -> dict[str, str] | None:
            args = [a for h in headers for a in ("-H", h)]
            code, out = container.exec_run(["curl", "-s", "--max-time", "5", *args, "http://127.0.0.1/anything"])
            return json.loads(out) if code == 0 and out.startswith(b"{") else None

        plain = wait_for(seen, timeout=20, what="nginx and the echo server")
        assert "connection" not in plain and "upgrade" not in plain  # HTTP/1.1 keep-alive to the replica
        for upgrade in ("websocket", "WebSocket"):
            got = seen(f"Upgrade: {upgrade}", "Connection: Upgrade", "Sec-WebSocket-Version: 13")
            assert (got["upgrade"], got["connection"]) == (upgrade, "upgrade"), got
        smuggled = seen("Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings", "HTTP2-Settings: AAMAAABkAAQAAP__")
        assert "upgrade" not in smuggled and "connection" not in smuggled, smuggled
    finally:
        container.remove(force=True)
