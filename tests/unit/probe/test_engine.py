"""The probe's load engine against a local server that misbehaves on purpose (127.0.0.1 only)."""

from __future__ import annotations

import socket
from collections import Counter

import pytest

from scaleout.probe.engine import LoadSpec, Samples, run_load
from scaleout.probe.project import run_probe
from tests.helpers.probe_testserver import UPSTREAMS, Behaviour, MisbehavingServer


def load(url: str, **kw) -> Samples:
    return run_load(LoadSpec(url=url, **kw))


def upstream_counts(s: Samples) -> Counter:
    out: Counter = Counter()
    for (up, _), h in s.answers().items():
        out[up] += len(h)
    return out


def statuses(s: Samples) -> set[int]:
    return {status for _, status in s.answers()}


@pytest.mark.parametrize("workers", [1, 2])
def test_every_response_is_attributed_exactly(workers):
    with MisbehavingServer() as srv:
        s = load(srv.url, requests=2999, concurrency=8, workers=workers)
    assert len(s) == 2999
    assert statuses(s) == {200} and not any(s.errors)
    assert upstream_counts(s) == Counter(srv.c.answered)
    assert sorted(upstream_counts(s)) == sorted(UPSTREAMS)
    assert srv.c.requests == 2999


def test_connection_close_after_n_requests_reconnects_without_errors():
    with MisbehavingServer(Behaviour(close_after=7)) as srv:
        s = load(srv.url, requests=500, concurrency=4)
    assert len(s) == 500 and not any(s.errors)
    assert srv.c.requests == 500  # announced closes need no retry


def test_connection_closed_silently_is_retried_once():
    with MisbehavingServer(Behaviour(silent_close_after=5)) as srv:
        s = load(srv.url, requests=300, concurrency=4)
    assert len(s) == 300 and not any(s.errors)
    assert sum(srv.c.answered.values()) == 300
    assert srv.c.requests > 300  # the requests that met a closing connection were sent again


def test_resets_are_counted_as_reset_errors():
    # one request per connection, so no reset can pass for a keep-alive race and be retried
    with MisbehavingServer(Behaviour(close_after=1, reset_every=5)) as srv:
        r, _ = run_probe(LoadSpec(url=srv.url, requests=100, concurrency=4), {})
    assert r.errors == {"connect": 0, "timeout": 0, "reset": 20, "protocol": 0, "tls": 0}
    assert r.ok == 80 and r.failed == 20


@pytest.mark.parametrize("behaviour", [Behaviour(chunked=True), Behaviour(close_delimited=True)],
                         ids=["chunked", "close-delimited"])
def test_bodies_without_content_length(behaviour):
    with MisbehavingServer(behaviour) as srv:
        s = load(srv.url, requests=120, concurrency=3)
    assert len(s) == 120 and not any(s.errors) and statuses(s) == {200}
    assert upstream_counts(s) == Counter(srv.c.answered)


def test_slow_answers_time_out():
    with MisbehavingServer(Behaviour(delay_s=1.0)) as srv:
        r, _ = run_probe(LoadSpec(url=srv.url, requests=4, concurrency=2, timeout_s=0.2), {})
    assert r.errors["timeout"] == 4 and r.ok == 0


def test_refused_connections_are_connect_errors():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        r, _ = run_probe(LoadSpec(url=f"http://127.0.0.1:{port}", requests=10, concurrency=2), {})
    assert r.errors["connect"] == 10 and r.requests == 10 and r.ok == 0


def test_method_path_headers_and_sticky_cookies_are_sent():
    with MisbehavingServer() as srv:
        s = load(srv.url, requests=30, concurrency=1, method="POST", path="/api/x?y=1",
                 headers=(("X-Test", "yes"),), sticky_keys=3)
    assert len(s) == 30 and not any(s.errors)
    assert srv.c.methods == {"POST": 30} and srv.c.paths == {"/api/x?y=1": 30}
    sent = srv.c.headers[0]
    assert sent["X-Test"] == "yes" and sent["Cookie"].startswith("session=scaleout-key-")
    assert sorted(s.keys) == [0, 1, 2]


def test_head_responses_complete_without_a_body():
    with MisbehavingServer() as srv:
        s = load(srv.url, requests=50, concurrency=2, method="HEAD")
    assert len(s) == 50 and not any(s.errors) and srv.c.methods == {"HEAD": 50}


def test_duration_mode_runs_until_the_deadline():
    with MisbehavingServer() as srv:
        s = load(srv.url, duration_s=0.5, concurrency=4, requests=1)
    assert len(s) > 10  # `requests` is ignored when a duration is given
    assert s.duration_s >= 0.5
    assert srv.c.requests == len(s)


@pytest.mark.parametrize("workers", [1, 2])
def test_open_loop_sends_exactly_the_schedule(workers):
    with MisbehavingServer() as srv:
        r, s = run_probe(LoadSpec(url=srv.url, requests=60, rate=200, concurrency=4, workers=workers), {})
    assert len(s) == 60 and r.ok == 60
    assert r.load["mode"] == "open" and r.load["latency_from"] == "intended_send"
    assert srv.c.requests == 60


def test_open_loop_latency_counts_from_the_intended_send_time():
    """A server that stalls 0.8 s: in the open loop every request scheduled during the stall shows the
    wait (no coordinated omission); the closed loop only sees the few requests that were in flight."""
    stall = Behaviour(stall_after_s=0.5, stall_for_s=0.8)
    with MisbehavingServer(stall) as srv:
        open_ = load(srv.url, requests=200, rate=100, concurrency=4, workers=1)
    with MisbehavingServer(stall) as srv:
        closed = load(srv.url, duration_s=1.6, concurrency=4, workers=1)
    assert len(open_) == 200 and not any(open_.errors)
    slow_open = open_.latency().count_at_least(0.2)
    slow_closed = closed.latency().count_at_least(0.2)
    # scheduled in [0.5 s, 1.1 s) -> waited at least 0.2 s: about 60 requests
    assert slow_open >= 40, open_.latency().counts
    assert open_.latency().high >= 0.6
    assert 1 <= slow_closed <= 4  # one stalled request per connection


def test_sticky_keys_travel_in_the_argument_or_header_that_hash_key_names():
    from scaleout.probe.project import sticky_carrier

    assert sticky_carrier("hash", "$arg_user") == ("arg", "user")
    assert sticky_carrier("hash", "$http_x_tenant") == ("header", "x-tenant")
    assert sticky_carrier("hash", "$cookie_sid") == ("cookie", "sid")
    with MisbehavingServer() as srv:
        s = load(srv.url, requests=6, concurrency=1, path="/a?b=1", sticky_keys=3, sticky_via="arg", sticky_name="user")
        assert not any(s.errors)
        assert set(srv.c.paths) == {f"/a?b=1&user=scaleout-key-{k}" for k in range(3)}
    with MisbehavingServer() as srv:
        load(srv.url, requests=3, concurrency=1, sticky_keys=3, sticky_via="header", sticky_name="x-tenant")
        sent = {h.get("x-tenant") or h.get("X-Tenant") for h in srv.c.headers}
        assert sent == {f"scaleout-key-{k}" for k in range(3)}


def test_sticky_keys_are_refused_where_the_probe_cannot_vary_the_hash():
    from scaleout.errors import UsageError
    from scaleout.probe.project import sticky_carrier

    with pytest.raises(UsageError, match="client's address"):
        sticky_carrier("ip_hash", "$cookie_session")
    with pytest.raises(UsageError, match="cannot send distinct keys"):
        sticky_carrier("hash", "$request_uri")
