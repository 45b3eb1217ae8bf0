"""A tiny HTTP server on 127.0.0.1 that answers like a balancer, with headers a test chooses: the
target for the probe's cache-header checks when they must fail."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html><html><head><link rel="stylesheet" href="/static/app.0123456789ab.css"></head>
<body><h1>hi</h1><script src="/static/app.abcdef012345.js" defer></script></body></html>"""
OFFLINE = """<!doctype html><html><head><link rel="stylesheet" href="/static/offline.css"></head>
<body><h1>offline</h1><a href="/">home</a></body></html>"""
IMMUTABLE = "public, max-age=31536000, immutable"


def good_routes() -> dict[str, tuple[int, dict[str, str], str]]:
    """path -> (status, headers, body) as a correct scaleout balancer answers."""
    static = {"Cache-Control": "no-cache", "ETag": '"abc"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    return {
        "/": (200, {"Content-Type": "text/html", "Cache-Control": "no-cache"}, PAGE),
        "/service-worker.js": (200, {"Content-Type": "application/javascript", "Cache-Control": "no-cache"}, "//sw"),
        "/offline.html": (200, {"Content-Type": "text/html", **static}, OFFLINE),
        "/static/offline.css": (200, {"Content-Type": "text/css", **static}, "h1{}"),
        "/static/app.0123456789ab.css": (200, {"Content-Type": "text/css", "Cache-Control": IMMUTABLE}, "body{}"),
        "/static/app.abcdef012345.js": (200, {"Content-Type": "application/javascript", "Cache-Control": IMMUTABLE},
                                        "1"),
    }


class FakeBalancer:
    """Serves `routes` (mutable while running); every response carries X-Upstream-Addr, like scaleout's nginx."""

    def __init__(self, routes=None):
        self.routes = routes if routes is not None else good_routes()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                status, headers, body = outer.routes.get(self.path.split("?")[0], (404, {}, "not found"))
                data = body.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("X-Upstream-Addr", "127.0.0.1:9")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeBalancer:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.server.shutdown()
        self.server.server_close()
