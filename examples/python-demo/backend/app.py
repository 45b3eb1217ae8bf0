"""A dependency-free backend for scaleout: Python's standard library only.

Every response names the replica that served it (X-Backend-Id header and body), so the spread
through the load balancer is visible. GET /healthz answers 200 while the server is up.
GET /ws is a WebSocket (RFC 6455, by hand): its first message says which replica it reached
("hello from backend-2"), then it echoes every message.
Environment: PORT (default 8000), CPU_WORK_MS (busy work per request, to make scaling visible),
SCALEOUT_ASSETS (JSON map of static asset -> fingerprinted URL, written by `scaleout render`),
SECRET_KEY (signs the session cookie and form tokens; every replica must share it),
SCALEOUT_DEMO_BUG (off by default; see "The demo flow" below and the README).
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8000"))
HOSTNAME = socket.gethostname()
CPU_WORK_MS = float(os.environ.get("CPU_WORK_MS", "0"))
ASSETS = json.loads(os.environ.get("SCALEOUT_ASSETS") or "{}")


def asset(name):
    return ASSETS.get(name, "/static/" + name)


# The demo flow of requests.http: log in, read the session, save a note and read it back, submit a form
# with its token, change a greeting and read it. Every answer works on any replica. SCALEOUT_DEMO_BUG
# turns on one classic bug of state kept in one process, for `scaleout replay` to find:
#   session  sessions kept in this process's memory       disk    notes written to this container's disk
#   cache    greetings cached in this process's memory    secret  a signing key made by each process
#   csrf     form tokens remembered by this process
# Several at once are a comma-separated list (`session,disk`).
DEMO_BUGS = {b.strip() for b in os.environ.get("SCALEOUT_DEMO_BUG", "").split(",") if b.strip()}
SECRET_KEY = (secrets.token_bytes(32) if "secret" in DEMO_BUGS
              else os.environ.get("SECRET_KEY", "dev-only: set SECRET_KEY").encode())
SESSIONS, FORM_TOKENS, GREETINGS = {}, set(), {}
NOTES_DIR = "/tmp/notes"


def sign(value):
    return value + "." + hmac.new(SECRET_KEY, value.encode(), hashlib.sha256).hexdigest()[:32]


def verified(token):
    """The signed value, or None when the signature is not ours."""
    value = token.rpartition(".")[0]
    return value if value and hmac.compare_digest(sign(value), token) else None


def field(body, name):
    try:
        value = json.loads(body or b"{}").get(name, "")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def demo(method, path, body, cookies):
    """(status, document, headers) for the demo flow's routes; None for any other path."""
    session = cookies.get("session", "")
    if (method, path) == ("POST", "/api/login"):
        user = re.sub(r"[^\w.-]", "", field(body, "user"))[:40] or "guest"
        if "session" in DEMO_BUGS:
            token = secrets.token_hex(16)
            SESSIONS[token] = user
        else:  # the session is in the cookie, signed with the key every replica shares
            token = sign(f"{user}:{secrets.token_hex(8)}")
        return 200, {"user": user}, [("Set-Cookie", f"session={token}; Path=/; HttpOnly; SameSite=Lax")]
    if (method, path) == ("GET", "/api/me"):
        user = SESSIONS.get(session) if "session" in DEMO_BUGS else (verified(session) or "").rpartition(":")[0]
        return (200, {"user": user}, []) if user else (401, {"error": "log in first"}, [])
    if (method, path) == ("POST", "/api/notes"):
        if "disk" in DEMO_BUGS:
            note_id = uuid.uuid4().hex
            os.makedirs(NOTES_DIR, exist_ok=True)
            with open(os.path.join(NOTES_DIR, note_id), "wb") as f:
                f.write(body)
        else:  # no store at all: the id is the note (a real app: a shared volume or an object store)
            note_id = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return 201, {"id": note_id}, [("Location", f"/api/notes/{note_id}")]
    if method == "GET" and path.startswith("/api/notes/"):
        note_id = path.rsplit("/", 1)[1]
        try:
            if "disk" in DEMO_BUGS:
                with open(os.path.join(NOTES_DIR, re.sub(r"[^0-9a-f]", "", note_id)), "rb") as f:
                    text = f.read()
            else:
                text = base64.urlsafe_b64decode(note_id + "=" * (-len(note_id) % 4))
        except (OSError, binascii.Error, ValueError):
            return 404, {"error": "no such note"}, []
        return 200, {"id": note_id, "text": text.decode("utf-8", "replace")}, []
    if (method, path) == ("GET", "/api/form"):
        token = secrets.token_hex(16)
        if "csrf" in DEMO_BUGS:
            FORM_TOKENS.add(token)
        else:
            token = sign(token)
        return 200, {"token": token}, []
    if (method, path) == ("POST", "/api/form"):
        token = field(body, "token")
        ok = token in FORM_TOKENS if "csrf" in DEMO_BUGS else verified(token) is not None
        return (200, {"saved": True}, []) if ok else (403, {"error": "invalid form token"}, [])
    if path == "/api/greeting" and method in ("GET", "POST"):
        if method == "POST":  # the greeting is kept in a cookie: the demo has no database
            greeting = re.sub(r"[^\w .,!-]", "", field(body, "greeting"))[:80]
            if "cache" in DEMO_BUGS:
                GREETINGS[session] = greeting
            return 200, {"greeting": greeting}, [("Set-Cookie", f'greeting="{greeting}"; Path=/; SameSite=Lax')]
        if "cache" in DEMO_BUGS and session in GREETINGS:
            return 200, {"greeting": GREETINGS[session]}, []
        greeting = cookies.get("greeting", "Hello")
        if "cache" in DEMO_BUGS:
            GREETINGS[session] = greeting
        return 200, {"greeting": greeting}, []
    return None


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


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
WS_MAX_MESSAGE = 1 << 20
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
WEBSOCKETS = set()  # open ones, told "going away" (1001) when the replica stops
WEBSOCKETS_LOCK = threading.Lock()


class WebSocketError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code  # the close status to send: 1002 protocol error, 1007 bad UTF-8, 1009 too big


def unmask(data, mask):
    """XOR with the 4-byte mask, repeated; as one big integer, which is fast in pure Python."""
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class WebSocket:
    """The server side of one WebSocket: reads masked frames, writes unmasked ones."""

    def __init__(self, rfile, wfile):
        self.rfile, self.wfile = rfile, wfile
        self.write_lock = threading.Lock()  # the stop signal's thread may close while a reply is being sent
        self.closing = False

    def send(self, opcode, payload=b""):
        """One unfragmented frame. Nothing may follow our close frame: later sends are dropped."""
        n = len(payload)
        if n < 126:
            header = bytes([0x80 | opcode, n])
        elif n < 1 << 16:
            header = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
        with self.write_lock:
            if self.closing:
                return
            self.closing = opcode == CLOSE
            self.wfile.write(header + payload)

    def close(self, code):
        """Start the closing handshake; the peer answers with its own close frame."""
        try:
            self.send(CLOSE, code.to_bytes(2, "big"))
        except OSError:
            pass

    def _read(self, n):
        data = self.rfile.read(n)
        if len(data) < n:
            raise ConnectionError("the peer closed the connection")
        return data

    def _frame(self):
        b0, b1 = self._read(2)
        fin, opcode, length = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
        if length == 126:
            length = int.from_bytes(self._read(2), "big")
        elif length == 127:
            length = int.from_bytes(self._read(8), "big")
        if b0 & 0x70 or not b1 & 0x80:  # no extension was agreed; every client frame is masked
            raise WebSocketError(1002)
        if opcode >= CLOSE and (not fin or length > 125):
            raise WebSocketError(1002)
        if length > WS_MAX_MESSAGE:
            raise WebSocketError(1009)
        mask = self._read(4)
        return fin, opcode, unmask(self._read(length), mask)

    def receive(self):
        """The next message as (TEXT or BINARY, payload); None once the connection is closing or gone.
        Pings are answered on the way; fragmented messages are put back together."""
        kind, message = None, b""
        try:
            while True:
                fin, opcode, data = self._frame()
                if opcode == PING:
                    self.send(PONG, data)
                    continue
                if opcode == PONG:
                    continue
                if opcode == CLOSE:
                    if len(data) == 1:
                        raise WebSocketError(1002)
                    self.send(CLOSE, data[:2])  # the answer echoes the peer's status code (unless we began)
                    return None
                if opcode not in (CONTINUATION, TEXT, BINARY) or (opcode == CONTINUATION) != (kind is not None):
                    raise WebSocketError(1002)  # unknown opcode, or a fragment out of order
                kind = kind or opcode
                message += data
                if len(message) > WS_MAX_MESSAGE:
                    raise WebSocketError(1009)
                if fin:
                    if kind == TEXT:
                        try:
                            message.decode("utf-8")
                        except UnicodeDecodeError:
                            raise WebSocketError(1007) from None
                    return kind, message
        except WebSocketError as exc:
            self.close(exc.code)
        except (ConnectionError, TimeoutError):
            pass
        return None


def close_websockets(wait_s=1.0):
    """Tell every open WebSocket that this replica goes away (1001), and give the peers a moment to
    answer, so that they see a clean close and reconnect (through the balancer, to another replica)."""
    with WEBSOCKETS_LOCK:
        open_now = list(WEBSOCKETS)
    for ws in open_now:
        ws.close(1001)
    deadline = time.monotonic() + wait_s
    while WEBSOCKETS and time.monotonic() < deadline:
        time.sleep(0.05)

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

    def _send(self, status, body, content_type, headers=()):
        data = body.encode("utf-8")
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
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
        if path == "/ws":
            return self._websocket()
        if CPU_WORK_MS > 0:
            burn(CPU_WORK_MS)
        if path == "/":
            page = PAGE.format(host=HOSTNAME, css=asset("app.css"), js=asset("app.js"))
            return self._send(200, page, "text/html; charset=utf-8")
        if path == "/api/whoami":
            return self._send(200, json.dumps({"backend": HOSTNAME}) + "\n", "application/json")
        if self._demo(path, b""):
            return None
        return self._send(404, "not found\n", "text/plain; charset=utf-8")

    do_HEAD = do_GET

    def _demo(self, path, body):
        """Answer a route of the demo flow; False for any other path."""
        try:
            cookies = {k: m.value for k, m in SimpleCookie(self.headers.get("Cookie") or "").items()}
        except CookieError:
            cookies = {}
        answer = demo(self.command, path, body, cookies)
        if answer is None:
            return False
        status, doc, headers = answer
        # what changes on every answer (when, which replica, which request): replay masks it as noise
        doc = {**doc, "backend": HOSTNAME, "at": datetime.now(timezone.utc).isoformat(),
               "request_id": str(uuid.uuid4())}
        self._send(status, json.dumps(doc) + "\n", "application/json", headers)
        return True

    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        try:
            key_ok = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            key_ok = False
        upgrade = self.headers.get("Upgrade", "").lower() == "websocket"
        if self.command != "GET" or not upgrade or self.headers.get("Sec-WebSocket-Version") != "13" or not key_ok:
            return self._send(426, "this is a WebSocket endpoint (RFC 6455, version 13)\n", "text/plain; charset=utf-8",
                              [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")])
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("X-Backend-Id", HOSTNAME)
        self.end_headers()
        self.close_connection = True  # no HTTP after a WebSocket
        self.connection.settimeout(None)  # idle sockets are the balancer's to close (balancer.websocket_timeout)
        ws = WebSocket(self.rfile, self.wfile)
        with WEBSOCKETS_LOCK:
            WEBSOCKETS.add(ws)
        try:
            ws.send(TEXT, f"hello from {HOSTNAME}".encode())
            while (message := ws.receive()) is not None:
                ws.send(*message)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            with WEBSOCKETS_LOCK:
                WEBSOCKETS.discard(ws)

    @IN_FLIGHT
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20))
        if self._demo(self.path.split("?", 1)[0], body):
            return None
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
        def finish():
            close_websockets()
            server.shutdown()

        threading.Thread(target=finish, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"backend {HOSTNAME} listening on :{PORT}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    IN_FLIGHT.wait_idle(timeout=5)


if __name__ == "__main__":
    main()
