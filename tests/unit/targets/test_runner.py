"""The engine runner's readiness poll and health-poll pacing, without an engine: a local HTTP server
plays the balancer."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from scaleout.errors import UnhealthyError
from scaleout.targets.health import health_poll_interval
from scaleout.targets.runner import http_status, poll_balancer


class Scripted(http.server.BaseHTTPRequestHandler):
    codes: list[int] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        code = self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def balancer():
    """A server answering with the status codes given, in order (the last one from then on)."""
    servers = []

    def start(codes: list[int]) -> str:
        handler = type("Handler", (Scripted,), {"codes": list(codes)})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_poll_returns_once_a_request_reaches_a_replica(balancer):
    url = balancer([502, 503, 502, 200])
    t0 = time.monotonic()
    poll_balancer(url, 10, path="/healthz")
    # the first tries come quickly: three misses cost less than the old fixed 0.3 s pause after each
    assert time.monotonic() - t0 < 0.5


def test_poll_fails_with_the_last_answer_after_the_timeout(balancer):
    url = balancer([502])
    with pytest.raises(UnhealthyError, match="did not answer within 1s .last: HTTP 502"):
        poll_balancer(url, 1, path="/healthz")


def test_poll_without_a_listener_names_the_error_and_on_miss_may_stop_it(balancer):
    url = balancer([200])
    port = int(url.rsplit(":", 1)[1])
    closed = f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}"
    with pytest.raises(UnhealthyError, match="last: ConnectionRefusedError"):
        poll_balancer(closed, 0.5, path="/healthz")

    calls = []

    def stop():
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise RuntimeError("the balancer exited")

    with pytest.raises(RuntimeError, match="exited"):
        poll_balancer(closed, 10, on_miss=stop, path="/healthz")
    # on_miss asks the engine: not after every quick try, at most every 0.3 s
    assert calls[1] - calls[0] >= 0.29


def test_scaleouts_own_loopback_requests_never_go_through_a_proxy(balancer, monkeypatch):
    url = balancer([204])
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert http_status(url + "/", timeout_s=2) == 204


@pytest.mark.parametrize("n, low, high", [(1, 0.05, 0.15), (3, 0.1, 0.2), (32, 0.5, 0.5)])
def test_health_is_read_often_for_a_few_replicas_and_less_for_many(n, low, high):
    assert low <= health_poll_interval(n) <= high
