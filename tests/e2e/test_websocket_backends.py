"""The Node sample backend's WebSocket endpoint, in the stand-in image (Debian's node-express), through the
same frame-by-frame tests as the Python one (tests/unit/templates/test_websocket_backends.py)."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from tests.helpers import ROOT, free_port, wait_for
from tests.unit.templates.test_websocket_backends import (  # noqa: F401  (the tests and their fixture)
    Backend,
    _answers,
    connect,
    test_a_bad_key_gets_no_upgrade,
    test_a_plain_get_is_told_to_upgrade,
    test_a_stopping_replica_says_going_away,
    test_fragments_are_joined_and_pings_answered_in_between,
    test_handshake_then_hello_then_echo,
    test_protocol_errors_close_with_the_matching_status,
    test_the_closing_handshake_echoes_the_status,
)

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def node_backend(client, image: str):
    port = free_port()
    server_js = ROOT / "templates/init/node/backend/server.js"
    container = client.containers.run(
        image, ["node", "/app/server.js"], detach=True, hostname="backend-7", working_dir="/app",
        environment={"PORT": "3000"}, ports={"3000/tcp": ("127.0.0.1", port)},
        volumes={str(server_js): {"bind": "/app/server.js", "mode": "ro"}},
        name=f"scaleout-ws-node-{uuid.uuid4().hex[:8]}", labels={"io.scaleout.test": "websocket-backend"},
    )
    try:
        wait_for(lambda: _answers(port), timeout=30, what="the node backend")

        def alive() -> bool:
            container.reload()
            return container.status == "running"

        yield Backend(port, "backend-7", lambda: container.kill(signal="SIGTERM"), alive)
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


@pytest.fixture
def backend(docker_engine, images):
    with node_backend(docker_engine, images["SCALEOUT_BASE_IMAGE"]) as b:
        yield b
