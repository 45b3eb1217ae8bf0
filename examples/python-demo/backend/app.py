"""A dependency-free backend for scaleout: Python's standard library only.

Every response names the replica that served it (X-Backend-Id header and body), so the spread
through the load balancer is visible. GET /healthz answers 200 while the server is up.
Environment: PORT (default 8000), CPU_WORK_MS (busy work per request, to make scaling visible),
SCALEOUT_ASSETS (JSON map of static asset -> fingerprinted URL, written by `scaleout render`).
"""

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8000"))
HOSTNAME = socket.gethostname()
CPU_WORK_MS = float(os.environ.get("CPU_WORK_MS", "0"))
ASSETS = json.loads(os.environ.get("SCALEOUT_ASSETS") or "{}")


def asset(name):
    return ASSETS.get(name, "/static/" + name)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>scaleout demo</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<main>
<h1>Hello from <span id="backend">{host}</span></h1>
<p>Reload the page: the load balancer sends each request to another replica.</p>
<p id="sw-status">Service worker: not registered yet.</p>
</main>
<script src="{js}" defer></script>
</body>
</html>
"""


class InFlight:
    """Counts the requests being answered, so that shutdown can wait for them: handler threads are
    daemon threads, and the process exiting would cut a response in half."""

    def __init__(self):
        self.count = 0
        self.cond = threading.Condition()

    def __call__(self, method):
        def tracked(handler):
            with self.cond:
                self.count += 1
            try:
                return method(handler)
            finally:
                with self.cond:
                    self.count -= 1
                    self.cond.notify_all()

        return tracked

    def wait_idle(self, timeout):
        with self.cond:
            self.cond.wait_for(lambda: self.count == 0, timeout)


IN_FLIGHT = InFlight()


def burn(ms):
    end = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < end:
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive connections from the balancer
    server_version = "scaleout-demo"
    sys_version = ""
    timeout = 75  # close idle keep-alive connections eventually
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def _send(self, status, body, content_type):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Backend-Id", HOSTNAME)
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    @IN_FLIGHT
    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            return self._send(200, "ok\n", "text/plain; charset=utf-8")
        if CPU_WORK_MS > 0:
            burn(CPU_WORK_MS)
        if path == "/":
            page = PAGE.format(host=HOSTNAME, css=asset("app.css"), js=asset("app.js"))
            return self._send(200, page, "text/html; charset=utf-8")
        if path == "/api/whoami":
            return self._send(200, json.dumps({"backend": HOSTNAME}) + "\n", "application/json")
        return self._send(404, "not found\n", "text/plain; charset=utf-8")

    do_HEAD = do_GET

    @IN_FLIGHT
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(min(length, 1 << 20))
        return self._send(200, json.dumps({"backend": HOSTNAME, "received": length}) + "\n", "application/json")

    def log_message(self, fmt, *args):  # one short line per request on stdout
        print(f"{self.address_string()} {fmt % args}", flush=True)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # listen backlog (the stdlib default is 5): a burst of new connections from nginx (after a reload, or
    # without keep-alive on Swarm and Kubernetes) would otherwise drop SYNs and cost a connect timeout
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # clients that hang up early (health checks, load tools) are normal, not errors
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    server = Server(("0.0.0.0", PORT), Handler)

    def stop(signum, frame):
        # Finish in-flight requests, then exit: Docker sends SIGTERM on `stop`.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"backend {HOSTNAME} listening on :{PORT}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    IN_FLIGHT.wait_idle(timeout=5)


if __name__ == "__main__":
    main()
