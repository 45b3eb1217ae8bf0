"""A backend with one state bug per path prefix, and stateless controls (for tests/e2e/test_replay.py).

/session/*  the session kept in this process's memory      /disk/*   uploads written to this container's disk
/key/*      a cookie signed with a per-process key          /csrf/*   a CSRF token remembered by this process
/ok/*       stateless: timestamps, ids, hostname
(The in-process cache, which needs a store the replicas share, is tests/apps/replay_cache/app.py.)
"""

import hashlib
import hmac
import json
import os
import secrets
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SESSIONS, CSRF = set(), set()
KEY = secrets.token_bytes(16)
LOCAL = Path("/tmp/uploads")


def _sign(v):
    return hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()


class H(BaseHTTPRequestHandler):
    def _send(self, status, doc, cookie=None, location=None):
        body = json.dumps({**doc, "host": socket.gethostname(), "at": time.time(), "rid": str(uuid.uuid4())}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if cookie:
            self.send_header("Set-Cookie", cookie + "; Path=/")
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def _cookie(self, name):
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == name:
                return v
        return None

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def log_message(self, *a):
        pass

    def do_GET(self):
        p = self.path
        if p == "/healthz":
            return self._send(200, {"ok": True})
        if p == "/session/me":
            ok = self._cookie("sid") in SESSIONS
            return self._send(200 if ok else 401, {"user": "ann"} if ok else {"error": "login"})
        if p.startswith("/disk/files/"):
            f = LOCAL / p.rsplit("/", 1)[1]
            return self._send(200, {"text": f.read_text()}) if f.is_file() else self._send(404, {"error": "none"})
        if p == "/key/me":
            c = self._cookie("auth") or ""
            v, _, sig = c.partition(".")
            ok = bool(v) and hmac.compare_digest(sig, _sign(v))
            return self._send(200 if ok else 401, {"user": v} if ok else {"error": "bad signature"})
        if p == "/csrf/form":
            t = secrets.token_hex(16)
            CSRF.add(t)
            return self._send(200, {"token": t})
        if p.startswith("/ok/"):
            return self._send(200, {"item": p.rsplit("/", 1)[1], "served": time.strftime("%Y-%m-%dT%H:%M:%SZ")})
        return self._send(404, {"error": "no route"})

    def do_POST(self):
        p, body = self.path, self._body()
        if p == "/session/login":
            sid = secrets.token_hex(16)
            SESSIONS.add(sid)
            return self._send(200, {"ok": True}, cookie=f"sid={sid}")
        if p == "/disk/files":
            name = uuid.uuid4().hex
            LOCAL.mkdir(exist_ok=True)
            (LOCAL / name).write_bytes(body)
            return self._send(201, {"id": name}, location=f"/disk/files/{name}")
        if p == "/key/login":
            return self._send(200, {"ok": True}, cookie=f"auth=ann.{_sign('ann')}")
        if p == "/csrf/submit":
            t = json.loads(body or b"{}").get("token")
            return self._send(200, {"saved": True}) if t in CSRF else self._send(403, {"error": "csrf"})
        if p == "/ok/items":
            return self._send(201, {"id": str(uuid.uuid4())}, location=f"/ok/{uuid.uuid4()}")
        return self._send(404, {"error": "no route"})


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), H).serve_forever()
