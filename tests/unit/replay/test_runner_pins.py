"""The runner's pin header names what the target resolves: the replica's own name by default (Compose), or the
name given in `pins` (Swarm: the task's container). A stand-in balancer on 127.0.0.1 answers with the address
of the name it was pinned to, as nginx's X-Upstream-Addr does."""

from __future__ import annotations

import http.server
import threading

from scaleout.replay.flow import Flow, Step
from scaleout.replay.runner import Runner

SECRET = "cd" * 32
ADDRESSES = {"stack_backend.1.aaaaaaaaaaaaaaaaaaaaaaaaa": "10.0.0.5:8000",
             "stack_backend.2.bbbbbbbbbbbbbbbbbbbbbbbbb": "10.0.0.6:8000",
             "backend-1": "172.18.0.3:8000", "backend-2": "172.18.0.4:8000"}


def _balancer():
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            pin = self.headers.get("X-Scaleout-Pin", "")
            seen.append(pin)
            self.send_response(200)
            self.send_header("X-Upstream-Addr", ADDRESSES.get(pin.partition(":")[2], "10.9.9.9:8000"))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def _flow() -> Flow:
    return Flow("flow.http", (Step(1, "GET", "/a"), Step(2, "GET", "/b")))


def test_pins_name_the_swarm_task_and_default_to_the_replica():
    server, seen = _balancer()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        pins = {"backend-1": "stack_backend.1.aaaaaaaaaaaaaaaaaaaaaaaaa",
                "backend-2": "stack_backend.2.bbbbbbbbbbbbbbbbbbbbbbbbb"}
        swarm = Runner(_flow(), origin, SECRET, pins=pins)
        answers = swarm.run(["backend-2", "backend-1"])
        assert [a.replica for a in answers] == ["backend-2", "backend-1"]
        assert seen == [f"{SECRET}:{pins['backend-2']}", f"{SECRET}:{pins['backend-1']}"]
        swarm.check_pinned()  # one address per replica, a different one each
        assert swarm.addresses == {"backend-1": {"10.0.0.5:8000"}, "backend-2": {"10.0.0.6:8000"}}
        seen.clear()
        Runner(_flow(), origin, SECRET).run(["backend-1", "backend-2"])
        assert seen == [f"{SECRET}:backend-1", f"{SECRET}:backend-2"]
    finally:
        server.shutdown()
