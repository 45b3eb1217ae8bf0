"""WebSockets through a real stack, for both sample backends: the handshake reaches a replica (101, not
200), messages echo, sockets spread over the replicas, plain HTTP keeps working and keeps its keep-alive
connections to the replicas, a reload leaves open sockets alone, and an idle socket is closed after
`balancer.websocket_timeout`, not after `read_timeout`."""

from __future__ import annotations

import os
import re
import select
import time

import docker
import httpx
import pytest
import websocket

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

PORTS = {"python": 8000, "node": 3000}


def _lb(p):
    found = docker.from_env().containers.list(
        filters={"label": [f"com.docker.compose.project={p.name}", "com.docker.compose.service=lb"]})
    assert len(found) == 1, found
    return found[0]


def _upstream_connections(p, port: int) -> set[tuple[str, str]]:
    """The balancer's established TCP connections to the replicas' port (from its /proc/net/tcp)."""
    code, out = _lb(p).exec_run(["cat", "/proc/net/tcp"])
    assert code == 0, out
    established = set()
    for line in out.decode().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if state == "01" and remote.endswith(f":{port:04X}"):
            established.add((local, remote))
    return established


def _generation(p) -> int:
    """The number of the configuration the balancer serves (lb.sh counts every one it installs)."""
    return int(httpx.get(p.url + "/_scaleout/ping").headers["X-Scaleout-Config"])


def _open(url: str) -> tuple[websocket.WebSocket, str]:
    ws = websocket.create_connection(url, timeout=10)
    assert ws.getstatus() == 101
    assert ws.getheaders().get("x-upstream-addr"), "the handshake did not pass the balancer's upstream"
    return ws, ws.recv()


def _echoes(ws: websocket.WebSocket, text: str) -> bool:
    ws.send(text)
    return ws.recv() == text


def _closed_by_peer(ws: websocket.WebSocket) -> bool:
    """Whether the other end has closed the connection, without sending anything on it."""
    readable, _, _ = select.select([ws.sock], [], [], 0)
    if not readable:
        return False
    try:
        ws.recv()
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        return True
    return False


@pytest.mark.parametrize("template", sorted(PORTS))
def test_websockets_through_the_balancer(make_project, template):
    p = make_project(template)
    p.cli("up", "--replicas", "2", check=True)
    port = PORTS[template]
    ws_url = p.url.replace("http://", "ws://") + "/ws"
    names = {"hello from backend-1", "hello from backend-2"}

    # plain requests reuse the balancer's keep-alive connections to the replicas
    with httpx.Client(base_url=p.url) as http:
        for _ in range(20):
            assert http.get("/api/whoami").status_code == 200
        pool = _upstream_connections(p, port)
        for _ in range(20):
            assert http.get("/api/whoami").status_code == 200
        assert pool, "no idle keep-alive connection to a replica is left after 20 requests"
        assert pool & _upstream_connections(p, port), "the next 20 requests did not reuse them"
        # a plain GET of the WebSocket path is not diverted: the replica answers it
        r = http.get("/ws")
        assert r.status_code == 426 and r.headers["X-Backend-Id"] in ("backend-1", "backend-2")

    # handshakes reach the replicas, and sockets spread over them like requests do
    sockets, seen = [], set()
    for _ in range(12):
        ws, hello = _open(ws_url)
        assert hello in names
        sockets.append(ws)
        seen.add(hello)
        if seen == names:
            break
    assert seen == names
    payload = os.urandom(100_000)
    for i, ws in enumerate(sockets):
        assert _echoes(ws, f"message {i}: héllo")
        ws.send_binary(payload)
        assert ws.recv() == payload
        ws.ping(b"still there?")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert (opcode, frame.data) == (websocket.ABNF.OPCODE_PONG, b"still there?")

    # plain HTTP keeps working next to open sockets
    r = httpx.get(p.url + "/")
    assert r.status_code == 200 and re.search(r"backend-[12]", r.text)

    # a new websocket_timeout: the reload leaves the open sockets on the old workers, which keep them
    cfg = p.path / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("  hash_key: $cookie_session\n",
                                           "  hash_key: $cookie_session\n  websocket_timeout: 3\n", 1))
    before = _generation(p)
    p.cli("up", "--replicas", "2", check=True)
    assert _generation(p) > before
    assert all(_echoes(ws, f"after the reload {i}") for i, ws in enumerate(sockets))

    # on the new configuration an idle socket is closed after websocket_timeout (3 s, far below
    # read_timeout's 60 s), a busy one is not, and neither are the old workers' sockets (1 hour)
    idle, _ = _open(ws_url)
    busy, _ = _open(ws_url)
    opened = time.monotonic()
    time.sleep(1.5)
    assert not _closed_by_peer(idle)
    while time.monotonic() - opened < 6:
        assert _echoes(busy, "keep-alive chatter")
        time.sleep(1)
    wait_for(lambda: _closed_by_peer(idle), timeout=5, what="the idle socket to be closed")
    assert _echoes(busy, "still open")
    assert all(_echoes(ws, f"old worker {i}") for i, ws in enumerate(sockets))

    # the closing handshake passes through as well: the replica answers with the same status
    for ws in [*sockets, busy]:
        ws.send_close(websocket.STATUS_NORMAL, b"bye")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert (opcode, frame.data[:2]) == (websocket.ABNF.OPCODE_CLOSE, websocket.STATUS_NORMAL.to_bytes(2, "big"))
        ws.shutdown()
