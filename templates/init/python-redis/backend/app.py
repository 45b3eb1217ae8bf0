"""A dependency-free backend for scaleout that keeps its state in Redis: Python's standard library only.

The lesson of scaling out: a replica must not keep a session in its own memory, because the next
request lands on another replica. Here each visitor's counter lives in Redis, shared by every replica:
consecutive requests are served by different replicas (X-Backend-Id) and the count still goes up.

GET /            a page with the replica's name and this session's count
GET /api/count   {"backend": ..., "session": ..., "count": N}: one more visit for this session
GET /healthz     200 while the server is up (Redis is not required for health: a replica that cannot
                 reach Redis answers 503 on the pages, and the probe reports it)
Environment: PORT (default 8000), REDIS_URL (default redis://redis:6379/0), SCALEOUT_ASSETS.
"""

import json
import os
import secrets
import signal
import socket
import sys
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PORT = int(os.environ.get("PORT", "8000"))
HOSTNAME = socket.gethostname()
ASSETS = json.loads(os.environ.get("SCALEOUT_ASSETS") or "{}")
REDIS = urlsplit(os.environ.get("REDIS_URL") or "redis://redis:6379/0")


class RedisError(Exception):
    pass


def _resp(*args):
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        data = str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


def redis_command(*args):
    """One command over RESP (the Redis protocol) on a short-lived connection: small, and enough here."""
    db = (REDIS.path or "/0").strip("/") or "0"
    try:
        with socket.create_connection((REDIS.hostname or "redis", REDIS.port or 6379), timeout=2) as s:
            replies = s.makefile("rb")
            if db != "0":
                s.sendall(_resp("SELECT", db))
                replies.readline()
            s.sendall(_resp(*args))
            reply = replies.readline()
    except OSError as exc:
        raise RedisError(f"redis unreachable: {exc}") from None
    if reply.startswith(b":"):
        return int(reply[1:])
    if reply.startswith(b"+"):
        return reply[1:].strip().decode()
    raise RedisError(reply.decode(errors="replace").strip() or "no answer from redis")


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>scaleout demo: shared state</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<main>
<h1>Hello from <span id="backend">{host}</span></h1>
<p>This session has been counted <strong id="count">{count}</strong> time(s), by whichever replica served it:
the count lives in Redis, shared by every replica.</p>
<p id="sw-status">Service worker: not registered yet.</p>
</main>
<script src="{js}" defer></script>
</body>
</html>
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scaleout-demo"
    sys_version = ""
    timeout = 75
    disable_nagle_algorithm = True

    def _send(self, status, body, content_type, cookie=None):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Backend-Id", HOSTNAME)
        self.send_header("Cache-Control", "no-cache")
        if cookie:
            self.send_header("Set-Cookie", f"session={cookie}; Path=/; HttpOnly; SameSite=Lax")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _session(self):
        jar = SimpleCookie(self.headers.get("Cookie") or "")
        sid = jar["session"].value if "session" in jar else ""
        if len(sid) == 32 and all(c in "0123456789abcdef" for c in sid):
            return sid, None
        sid = secrets.token_hex(16)
        return sid, sid

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            return self._send(200, "ok\n", "text/plain; charset=utf-8")
        if path not in ("/", "/api/count"):
            return self._send(404, "not found\n", "text/plain; charset=utf-8")
        sid, new_cookie = self._session()
        try:
            count = redis_command("INCR", f"scaleout:visits:{sid}")
        except RedisError as exc:
            return self._send(503, f"{exc}\n", "text/plain; charset=utf-8")
        if path == "/api/count":
            body = json.dumps({"backend": HOSTNAME, "session": sid, "count": count}) + "\n"
            return self._send(200, body, "application/json", new_cookie)
        page = PAGE.format(host=HOSTNAME, count=count, css=ASSETS.get("app.css", "/static/app.css"),
                           js=ASSETS.get("app.js", "/static/app.js"))
        return self._send(200, page, "text/html; charset=utf-8", new_cookie)

    do_HEAD = do_GET

    def log_message(self, fmt, *args):
        print(f"{self.address_string()} {fmt % args}", flush=True)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    server = Server(("0.0.0.0", PORT), Handler)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"backend {HOSTNAME} listening on :{PORT}, state in {REDIS.geturl()}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()


if __name__ == "__main__":
    main()
