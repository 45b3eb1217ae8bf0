"""What the probe accepts from the command line and the environment: target URLs, extra headers, --host,
and proxy variables (never used: the probe talks to the target directly)."""

from __future__ import annotations

import json

import pytest

from scaleout.config.load import load_config
from scaleout.errors import ProbeTargetError, UsageError
from scaleout.probe.cachecheck import check_cache_headers
from scaleout.probe.engine import LoadSpec, run_load
from scaleout.probe.project import check_target, parse_target, request_headers
from scaleout.probe.samples import request_bytes
from scaleout.scaffold import init_project
from tests.helpers import run_cli
from tests.helpers.cachefake import FakeBalancer
from tests.helpers.probe_testserver import Listener, MisbehavingServer


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://[::1", "http://[::1:80/",
                                 "ftp://127.0.0.1", "127.0.0.1:8080", "http://", "http://u:p@127.0.0.1:1",
                                 "http://127.0.0.1:0"])
def test_malformed_urls_are_usage_errors(url):
    with pytest.raises(UsageError, match="--url"):
        parse_target(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://[::1"])
def test_malformed_urls_exit_2_without_a_traceback(tmp_path, url):
    r = run_cli(["probe", "--url", url, "-n", "1"], tmp_path)
    assert r.returncode == 2 and "--url" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_loopback_and_own_addresses_are_allowed_others_refused():
    assert parse_target("http://[::1]:8080/") == ("::1", 8080) and parse_target("http://localhost") == ("localhost", 80)
    check_target("http://127.0.0.1:8080", False)
    check_target("http://localhost:8080", False)
    check_target("http://[::1]:8080", False)
    check_target("http://10.9.0.7:8000", False, {"10.9.0.7"})
    check_target("http://10.9.0.7:8000", True)
    for url, own in (("http://10.9.0.7:8000", set()), ("http://10.9.0.7:8000", {"10.9.0.8"}),
                     ("http://192.0.2.1", {"10.9.0.7"})):
        with pytest.raises(ProbeTargetError, match="--allow-remote|not this machine"):
            check_target(url, False, own)


GOOD_HEADERS = [("X-A: b", ("X-A", "b")), ("X-Empty:", ("X-Empty", "")), ("Authorization: Bearer a.b-c",
                ("Authorization", "Bearer a.b-c")), ("X-Latin: caf\xe9", ("X-Latin", "caf\xe9")),
                ("x!#$%&'*+.^_`|~1: v:w", ("x!#$%&'*+.^_`|~1", "v:w")), ("Cookie: a=1", ("Cookie", "a=1"))]


def test_good_headers_pass_through():
    assert request_headers([h for h, _ in GOOD_HEADERS]) == tuple(p for _, p in GOOD_HEADERS)


@pytest.mark.parametrize("header, message", [
    ("no colon", "must look like"), (": v", "must look like"), ("X A: b", "not a header name"),
    ("X-A : b", "not a header name"), ("X(A): b", "not a header name"), ("Caf\xe9: b", "not a header name"),
    ("Connection: close", "hop-by-hop"), ("keep-alive: 5", "hop-by-hop"), ("Transfer-Encoding: chunked", "hop-by-hop"),
    ("Content-Length: 5", "hop-by-hop"), ("Upgrade: websocket", "hop-by-hop"), ("TE: trailers", "hop-by-hop"),
    ("Trailer: X", "hop-by-hop"), ("Proxy-Authorization: x", "hop-by-hop"), ("proxy-connection: x", "hop-by-hop"),
    ("Expect: 100-continue", "hop-by-hop"), ("Host: example.com", "--host"), ("HOST: example.com", "--host"),
    ("X-A: a\r\nX-B: b", "control character"), ("X-A: a\nb", "control character"), ("X-A: a\x00", "control character"),
    ("X-A: a\tb", "control character"), ("X-A: a\x7fb", "control character"), ("X-A: a\x85b", "control character"),
    ("X-A: \u20ac", "Latin-1"),
])
def test_bad_headers_are_refused(header, message):
    with pytest.raises(UsageError, match=message.replace("-", r"\-")):
        request_headers([header])


@pytest.mark.parametrize("host", ["example.test", "example.test:8080", "10.0.0.1", "[::1]:80", "a"])
def test_host_option_becomes_the_only_host_header(host):
    headers = request_headers(["X-A: b"], host)
    assert headers == (("X-A", "b"), ("Host", host))
    raw = request_bytes(LoadSpec(url="http://127.0.0.1:1", headers=headers), "127.0.0.1:1", -1).decode("latin-1")
    assert [line for line in raw.split("\r\n") if line.lower().startswith("host:")] == [f"Host: {host}"]


@pytest.mark.parametrize("host", ["a b", "a/b", "a:99999", "a:0", "", "-a", "a\r\nX: y", "[zz]"])
def test_bad_host_option_is_refused(host):
    with pytest.raises(UsageError, match="--host"):
        request_headers([], host)


def test_bad_headers_exit_2_before_any_request(tmp_path):
    with MisbehavingServer() as srv:
        for args in (["-H", "Transfer-Encoding: chunked"], ["-H", "Host: x"], ["--host", "a b"]):
            r = run_cli(["probe", "--url", srv.url, "-n", "5", *args], tmp_path)
            assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        r = run_cli(["probe", "--url", srv.url, "-n", "6", "--json", "--host", "app.example.test"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert srv.c.requests == 6 and srv.c.headers[0]["Host"] == "app.example.test"  # the refused runs sent nothing


# --- proxy variables -----------------------------------------------------------------------------

@pytest.fixture
def proxy_env(monkeypatch):
    proxy = Listener()
    env = {}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, proxy.url)
        env[var] = proxy.url
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
        env[var] = ""
    yield proxy, env
    proxy.close()


def test_cache_checks_and_load_never_use_a_proxy(tmp_path, proxy_env):
    proxy, _ = proxy_env
    init_project(tmp_path / "p", "python", name="p")
    cfg = load_config(tmp_path / "p")
    with FakeBalancer() as fake:
        checks = check_cache_headers(fake.url, cfg)
    assert checks and all(c["ok"] for c in checks), checks  # answered by the target itself
    with MisbehavingServer() as srv:
        s = run_load(LoadSpec(url=srv.url, requests=50, concurrency=2, workers=1))
    assert len(s) == 50 and srv.c.requests == 50
    assert proxy.accepted == 0


def test_the_probe_command_never_uses_a_proxy(tmp_path, proxy_env):
    proxy, env = proxy_env
    init_project(tmp_path / "p", "python", name="p")
    with FakeBalancer() as fake:
        r = run_cli(["probe", "--url", fake.url, "-n", "20", "--json"], tmp_path / "p", env)
    res = json.loads(r.stdout)
    assert res["ok"] == 20 and res["cache_checks"] and all(c["ok"] for c in res["cache_checks"]), r.stderr
    assert proxy.accepted == 0
