"""The probe and bench connect only to the addresses they checked: the target's name is resolved once, every
address is checked, and the load (every worker, every new connection), the TLS handshake check and the cache
checks go to exactly those addresses, while the Host header and the SNI stay the name. The resolver here is
a fake whose answer changes after the first lookup (a DNS rebinding): its second answer is another loopback
address with a listener of its own, which must never see a connection."""

from __future__ import annotations

import socket
import ssl

import pytest

from scaleout.config.load import load_config
from scaleout.errors import ProbeTargetError
from scaleout.probe.cachecheck import check_cache_headers
from scaleout.probe.project import ProbeAsk, probe_project
from scaleout.probe.target import address_url, check_target
from scaleout.scaffold import init_project
from scaleout.tls.certs import ensure_ca, issue_leaf
from tests.helpers.cachefake import FakeBalancer
from tests.helpers.probe_testserver import Listener, MisbehavingServer

NAME = "rebind.scaleout.test"
REAL_GETADDRINFO = socket.getaddrinfo


def decoy_at(port: int) -> Listener:
    """A listener on 127.0.0.2 at the target's port: where the rebound name points after the check."""
    return Listener("127.0.0.2", port)


@pytest.fixture
def rebinding(monkeypatch):
    """socket.getaddrinfo answering NAME with 127.0.0.1 once, then with 127.0.0.2 (or `first`, when set)."""
    state = {"lookups": 0, "first": "127.0.0.1"}

    def fake(host, port, *args, **kwargs):
        if host != NAME:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        state["lookups"] += 1
        addr = state["first"] if state["lookups"] == 1 else "127.0.0.2"
        return REAL_GETADDRINFO(addr, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return state


def test_check_resolves_once_and_returns_the_addresses_it_checked(rebinding):
    t = check_target(f"http://{NAME}:8080", False)
    assert t.addresses == ("127.0.0.1",) and t.host == NAME and t.port == 8080 and rebinding["lookups"] == 1
    assert address_url(f"https://{NAME}:8443/x?y=1", "::1") == "https://[::1]:8443/x?y=1"


def test_a_foreign_first_answer_is_refused_before_any_connection(rebinding, tmp_path):
    rebinding["first"] = "192.0.2.7"
    with pytest.raises(ProbeTargetError, match="not this machine"):
        probe_project(tmp_path, ProbeAsk(url=f"http://{NAME}:8080", requests=5, cache_check=False))
    assert rebinding["lookups"] == 1


@pytest.mark.parametrize("workers, requests", [(1, 300), (2, 2400)])
def test_the_load_connects_only_to_the_checked_address(rebinding, tmp_path, workers, requests):
    from tests.helpers.probe_testserver import Behaviour

    # a new connection every 10 requests: every reconnect of every worker would be a chance to rebind
    with MisbehavingServer(Behaviour(close_after=10)) as srv:
        decoy = decoy_at(srv.port)
        try:
            result = probe_project(tmp_path, ProbeAsk(url=f"http://{NAME}:{srv.port}", requests=requests,
                                                      concurrency=4, workers=workers, cache_check=False))
        finally:
            decoy.close()
    assert result.ok == requests and srv.c.requests == requests, result.errors
    assert decoy.accepted == 0 and rebinding["lookups"] == 1
    assert {h["Host"] for h in srv.c.headers} == {f"{NAME}:{srv.port}"}  # the name, not the address


@pytest.fixture(scope="module")
def named_pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = ensure_ca(d / "ca")
    cert, key = issue_leaf(ca, (NAME,), (), "rebind")
    (d / "cert.pem").write_bytes(cert)
    (d / "key.pem").write_bytes(key)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ca.cert_path, ctx


def test_over_tls_the_sni_and_host_stay_the_name(rebinding, tmp_path, named_pki):
    cafile, ctx = named_pki
    with MisbehavingServer(tls=ctx) as srv:
        decoy = decoy_at(srv.port)
        try:
            result = probe_project(tmp_path, ProbeAsk(url=f"https://{NAME}:{srv.port}", requests=60,
                                                      concurrency=3, cache_check=False, cacert=str(cafile)))
        finally:
            decoy.close()
    assert result.ok == 60, result.errors
    assert result.tls["server_name"] == NAME and srv.c.sni == {NAME}  # the certificate was checked for the name
    assert {h["Host"] for h in srv.c.headers} == {f"{NAME}:{srv.port}"}
    assert decoy.accepted == 0 and rebinding["lookups"] == 1
    # handshake check + the load's connections, all on the checked address
    assert srv.c.handshakes == result.tls["handshakes"] + 1


def test_the_cache_checks_go_to_the_checked_address_with_the_name_as_host(rebinding, tmp_path):
    init_project(tmp_path / "p", "python", name="p")
    cfg = load_config(tmp_path / "p")
    with FakeBalancer() as fake:
        port = int(fake.url.rsplit(":", 1)[1])
        decoy = decoy_at(port)
        try:
            url = f"http://{NAME}:{port}"
            target = check_target(url, False)
            checks = check_cache_headers(url, cfg, address=target.addresses[0])
        finally:
            decoy.close()
    assert checks and all(c["ok"] for c in checks), checks
    assert decoy.accepted == 0 and rebinding["lookups"] == 1


def test_bench_checks_its_target_and_loads_only_the_checked_address(rebinding, tmp_path, monkeypatch):
    from scaleout.probe import bench
    from scaleout.targets import compose

    init_project(tmp_path / "p", "python", name="p")
    cfg = load_config(tmp_path / "p")
    urls = {}

    class FakeStack:
        def __init__(self, c, **_kw) -> None:
            self.c = c

        def up(self, _plan, **_kw):
            return type("Status", (), {"url": urls["url"]})()

        def address_map(self) -> dict[str, str]:
            return {}

    monkeypatch.setattr(compose, "ComposeStack", FakeStack)
    with MisbehavingServer() as srv:
        decoy = decoy_at(srv.port)
        try:
            urls["url"] = f"http://{NAME}:{srv.port}"
            result = bench.run_bench(cfg, [1], render_files=lambda _c: None, duration_s=0.3, warmup_s=0,
                                     concurrency=2, workers=1)
            rebinding["first"] = "192.0.2.7"
            rebinding["lookups"] = 0
            with pytest.raises(ProbeTargetError, match="not this machine"):
                bench.run_bench(cfg, [1], render_files=lambda _c: None, duration_s=0.3, warmup_s=0,
                                concurrency=2, workers=1)
        finally:
            decoy.close()
    assert result.points[0].requests > 0 and result.points[0].failed == 0
    assert decoy.accepted == 0
