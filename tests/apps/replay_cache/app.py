"""A backend whose data lives in the `redis` service every replica shares (for tests/test_e2e_replay_cache.py).

/cached/value  reads go through a cache in this process's memory, written on this replica's own writes only:
               a write through another replica leaves it stale (the bug replay must name)
/direct/value  the same without the cache: the control, which must pass
Answers carry the replica's hostname, a timestamp and a request id (noise replay must not report).
"""

import json
import os
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CACHE = {}


def redis(*args):
    """One command over RESP on a short-lived connection; the reply's value (a bulk string or None)."""
    with socket.create_connection(("redis", 6379), timeout=2) as s:
        s.sendall(f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args))
        f = s.makefile("rb")
        head = f.readline()
        if head.startswith(b"$-1"):
            return None
        if head.startswith(b"$"):
            return f.read(int(head[1:]) + 2)[:-2].decode()
        return head[1:].strip().decode()


class H(BaseHTTPRequestHandler):
    def _send(self, status, doc):
        body = json.dumps({**doc, "host": socket.gethostname(), "at": time.time(), "rid": str(uuid.uuid4())}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/healthz":
            return self._send(200, {"ok": True})
        if self.path == "/cached/value":
            if "cached" not in CACHE:
                CACHE["cached"] = redis("GET", "cached") or ""
            return self._send(200, {"value": CACHE["cached"]})
        if self.path == "/direct/value":
            return self._send(200, {"value": redis("GET", "direct") or ""})
        return self._send(404, {"error": "no route"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        value = json.loads(body or b"{}").get("value", "")
        if self.path in ("/cached/value", "/direct/value"):
            key = self.path.split("/")[1]
            redis("SET", key, value)
            if key == "cached":
                CACHE["cached"] = value
            return self._send(200, {"value": value})
        return self._send(404, {"error": "no route"})


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), H).serve_forever()
