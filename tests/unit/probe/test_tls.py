"""The probe over HTTPS, against the local misbehaving server speaking TLS (127.0.0.1 only), with a
certificate authority of the test's own: verification against a CA file, the system store or nothing
(--insecure), handshake counts, ALPN, TLS failures as their own error class, the handshake checked once
before the load, and the cache checks and `bench` flags over HTTPS."""

from __future__ import annotations

import json
import pickle
import socket
import ssl
from pathlib import Path

import pytest

from scaleout.config.load import parse_config
from scaleout.errors import ProbeTargetError, UsageError
from scaleout.layout import TLS_CA
from scaleout.probe.cachecheck import check_cache_headers
from scaleout.probe.engine import LoadSpec, run_load
from scaleout.probe.project import check_handshake, parse_target, run_probe, tls_settings
from scaleout.probe.samples import Samples
from scaleout.probe.tls import TlsSpec, TlsStats
from scaleout.report import probe_text
from scaleout.tls.certs import ensure_ca, issue_leaf
from tests.helpers import run_cli
from tests.helpers.probe_testserver import UPSTREAMS, Behaviour, MisbehavingServer


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Two authorities: `ca` signed the server's certificate (localhost, 127.0.0.1), `other` did not."""
    d = tmp_path_factory.mktemp("pki")
    ca, other = ensure_ca(d / "ca"), ensure_ca(d / "other")
    cert, key = issue_leaf(ca, ("localhost",), ("127.0.0.1",), "probe-tls")
    (d / "cert.pem").write_bytes(cert)
    (d / "key.pem").write_bytes(key)
    return {"ca": ca.cert_path, "other": other.cert_path, "cert": d / "cert.pem", "key": d / "key.pem"}


def server_context(pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    return ctx


def https_server(pki, behaviour: Behaviour | None = None) -> MisbehavingServer:
    return MisbehavingServer(behaviour, tls=server_context(pki))


# --- the engine ------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2])
def test_load_over_tls_counts_every_handshake_and_speaks_http11(pki, workers):
    # a new connection every 25 requests: the handshakes are the server's own count of TLS connections
    with https_server(pki, Behaviour(close_after=25)) as srv:
        s = run_load(LoadSpec(url=srv.url, requests=3000, concurrency=8, workers=workers,
                              tls=TlsSpec("127.0.0.1", str(pki["ca"]))))
    assert len(s) == 3000 and not any(s.error_counts().values())
    assert {status for _, status in s.answers()} == {200}
    assert sorted({up for up, _ in s.answers()}) == sorted(UPSTREAMS)
    assert s.workers == workers
    assert s.tls.handshakes == srv.c.handshakes
    # 120 closes, plus at most one partly used connection per slot (requests do not split evenly)
    assert 3000 // 25 <= s.tls.handshakes <= 3000 // 25 + 8
    # the server offers h2 first (as nginx with HTTP/2 does): the engine asked for HTTP/1.1 only
    assert srv.c.alpn == {"http/1.1"} and s.tls.alpn == "http/1.1"
    assert s.tls.version.startswith("TLSv1.") and s.tls.cipher


@pytest.mark.parametrize("tls", [TlsSpec("127.0.0.1", "other"), TlsSpec("wrong.test", "ca")],
                         ids=["unknown-authority", "wrong-name"])
def test_an_unverified_certificate_is_a_tls_error_not_a_connect_error(pki, tls):
    tls = TlsSpec(tls.server_hostname, str(pki[tls.cafile]))
    with https_server(pki) as srv:
        r, _ = run_probe(LoadSpec(url=srv.url, requests=20, concurrency=2, tls=tls), {})
    assert r.errors == {"connect": 0, "timeout": 0, "reset": 0, "protocol": 0, "tls": 20}
    assert r.ok == 0 and srv.c.requests == 0
    assert r.tls["handshakes"] == 0 and r.tls["verified"] is True
    assert f"tls: no TLS connection succeeded (certificate of {tls.server_hostname} checked against" in probe_text(r)


def test_insecure_loads_an_untrusted_server_and_says_it_did_not_verify(pki):
    with https_server(pki) as srv:
        r, _ = run_probe(LoadSpec(url=srv.url, requests=200, concurrency=4,
                                  tls=TlsSpec("127.0.0.1", verify=False)), {})
    assert r.ok == 200 and r.failed == 0
    assert r.tls["verified"] is False and r.tls["trusted"] is None
    assert r.tls["handshakes"] == srv.c.handshakes == 4


def test_tls_stats_travel_between_processes_and_merge():
    a, b = Samples(), Samples()
    a.tls = TlsStats(handshakes=3, version="TLSv1.3", cipher="X", alpn="http/1.1")
    b.tls = TlsStats(handshakes=4)
    back = pickle.loads(pickle.dumps(a))  # how a worker's Samples reach the parent
    assert back.tls == a.tls
    merged = Samples()
    merged.extend(b)
    merged.extend(back)
    assert merged.tls == TlsStats(handshakes=7, version="TLSv1.3", cipher="X", alpn="http/1.1")
    assert pickle.loads(pickle.dumps(Samples())).tls is None  # plain HTTP: no tls section


# --- settings and the handshake before the load -----------------------------------------------------

def test_settings_trust_cacert_then_the_project_authority_then_the_system(pki, tmp_path):
    url = "https://127.0.0.1:8443"
    assert parse_target(url) == ("127.0.0.1", 8443) and parse_target("https://localhost") == ("localhost", 443)
    assert tls_settings("http://127.0.0.1:8080") is None
    assert tls_settings(url, cacert=str(pki["ca"])) == TlsSpec("127.0.0.1", str(pki["ca"]))
    project_ca = tmp_path / "ca.pem"
    assert tls_settings(url, project_ca=project_ca) == TlsSpec("127.0.0.1")  # not written yet: the system's
    project_ca.write_bytes(pki["ca"].read_bytes())
    assert tls_settings(url, project_ca=project_ca) == TlsSpec("127.0.0.1", str(project_ca))
    assert tls_settings(url, cacert=str(pki["other"]), project_ca=project_ca).cafile == str(pki["other"])
    assert tls_settings(url, insecure=True, project_ca=project_ca) == TlsSpec("127.0.0.1", None, False)
    # --host names the site: its name is the one the certificate must carry
    assert tls_settings(url, host_header="app.test:8443").server_hostname == "app.test"
    assert tls_settings("https://[::1]:8443").server_hostname == "::1"


@pytest.mark.parametrize("kw, expect", [
    ({"cacert": "CA", "insecure": True}, "--cacert and --insecure exclude each other"),
    ({"url": "http://127.0.0.1:8080", "insecure": True}, "--insecure: http://127.0.0.1:8080 is plain HTTP"),
    ({"url": "http://127.0.0.1:8080", "cacert": "CA"}, "--cacert: http://127.0.0.1:8080 is plain HTTP"),
    ({"cacert": "missing.pem"}, "missing.pem: not a readable file of PEM certificates (No such file"),
    ({"cacert": "junk.pem"}, "junk.pem: not a readable file of PEM certificates (NO_CERTIFICATE_OR_CRL_FOUND)"),
])
def test_bad_tls_settings_are_usage_errors(pki, tmp_path, monkeypatch, kw, expect):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    kw = {k: str(pki["ca"]) if v == "CA" else v for k, v in kw.items()}
    with pytest.raises(UsageError) as err:
        tls_settings(kw.pop("url", "https://127.0.0.1:8443"), **kw)
    assert expect in str(err.value)


def test_the_handshake_before_the_load_explains_an_untrusted_certificate(pki):
    with https_server(pki) as srv:
        check_handshake(srv.url, TlsSpec("127.0.0.1", str(pki["ca"])))  # trusted: no error
        with pytest.raises(ProbeTargetError) as err:
            check_handshake(srv.url, TlsSpec("127.0.0.1", str(pki["other"])))
    msg = str(err.value)
    assert f"the certificate of 127.0.0.1:{srv.port} is not trusted" in msg
    assert f"checked against {pki['other']}" in msg
    assert "--cacert FILE" in msg and "--insecure" in msg and "scaleout trust" in msg
    assert err.value.exit_code == 2


class PlainPort:
    """A plain-HTTP port: answers the first bytes it reads like nginx (400), or says nothing at all."""

    def __init__(self, answer: bool) -> None:
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conns = []
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conns.append(conn)  # kept open (the silent case): the client must give up by itself
            if self.answer:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()


def test_the_handshake_before_the_load_names_a_plain_http_port(pki):
    port = PlainPort(answer=True)
    with pytest.raises(ProbeTargetError) as err:
        check_handshake(f"https://127.0.0.1:{port.port}", TlsSpec("127.0.0.1", str(pki["ca"])), 5)
    port.sock.close()
    assert f"TLS handshake with 127.0.0.1:{port.port} failed: WRONG_VERSION_NUMBER" in str(err.value)
    assert "is this port HTTPS" in str(err.value)


def test_a_silent_port_is_left_to_the_load(pki):
    port = PlainPort(answer=False)
    check_handshake(f"https://127.0.0.1:{port.port}", TlsSpec("127.0.0.1", str(pki["ca"])), 0.5)  # no error
    port.sock.close()


def test_a_refused_connection_is_left_to_the_load(pki):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check_handshake(f"https://127.0.0.1:{port}", TlsSpec("127.0.0.1", str(pki["ca"])), 2)  # no error raised


# --- the command -----------------------------------------------------------------------------------

def probe_cli(url: str, cwd: Path, *extra: str, env: dict | None = None):
    return run_cli(["probe", "--url", url, "--requests", "300", "--concurrency", "4", *extra], cwd,
                   env={"DOCKER_HOST": "unix:///nonexistent.sock", **(env or {})}, timeout=120)


def test_probe_command_over_https_with_cacert_passes_and_reports_tls(pki, tmp_path):
    with https_server(pki) as srv:
        r = probe_cli(srv.url, tmp_path, "--cacert", str(pki["ca"]), "--json")
        text = probe_cli(srv.url, tmp_path, "--cacert", str(pki["ca"]))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "pass" and doc["ok"] == 300 and doc["url"] == srv.url
    assert doc["tls"]["verified"] is True and doc["tls"]["trusted"] == str(pki["ca"])
    assert doc["tls"]["alpn"] == "http/1.1" and doc["tls"]["server_name"] == "127.0.0.1"
    assert doc["tls"]["handshakes"] == 4  # one per connection: keep-alive carried the rest
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"certificate of 127.0.0.1 verified against {pki['ca']}" in text.stdout
    assert srv.c.handshakes == 4 + 1 + 4 + 1  # each run: the check before the load, then the load's


def test_probe_command_with_the_wrong_authority_fails_before_any_load(pki, tmp_path):
    with https_server(pki) as srv:
        r = probe_cli(srv.url, tmp_path, "--cacert", str(pki["other"]))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "is not trusted" in r.stderr and "--cacert FILE" in r.stderr and "Traceback" not in r.stderr
    assert srv.c.requests == 0 and srv.c.handshake_failures == 1  # one handshake, then nothing


def test_probe_command_insecure_passes_and_says_unverified(pki, tmp_path):
    with https_server(pki) as srv:
        r = probe_cli(srv.url, tmp_path, "--insecure")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "certificate NOT verified (--insecure)" in r.stdout
    assert srv.c.requests == 300


def test_probe_in_a_tls_project_trusts_its_local_authority_by_default(pki, tmp_path):
    proj = tmp_path / "proj"
    r = run_cli(["init", "proj", "--name", "proj"], tmp_path, env={"XDG_DATA_HOME": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr
    cfg = proj / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("  port: 8080\n", "  port: 8080\n  tls: local\n", 1))
    with https_server(pki) as srv:
        untrusted = probe_cli(srv.url, proj, "--no-cache-check")  # no ca.pem yet: the system store refuses
        (proj / TLS_CA).parent.mkdir(parents=True)
        (proj / TLS_CA).write_bytes(pki["ca"].read_bytes())
        r = probe_cli(srv.url, proj, "--no-cache-check", "--json")
    assert untrusted.returncode == 2 and "the system's trusted authorities" in untrusted.stderr, untrusted.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["tls"]["trusted"] == str(proj / TLS_CA)


def test_cache_checks_over_https_trust_what_the_load_trusts(pki, tmp_path):
    config = parse_config("name: proj\n", tmp_path, env={})
    with https_server(pki) as srv:
        good = check_cache_headers(srv.url, config, tls=TlsSpec("127.0.0.1", str(pki["ca"])))
        answered = srv.c.requests
        bad = check_cache_headers(srv.url, config, tls=TlsSpec("127.0.0.1", str(pki["other"])))
        assert srv.c.requests == answered  # not one request over an unverified connection
        insecure = check_cache_headers(srv.url, config, tls=TlsSpec("127.0.0.1", verify=False))
        assert srv.c.requests == 2 * answered > 0
        # the name checked is the probe's (--host), not the URL's address
        by_name = check_cache_headers(srv.url, config, tls=TlsSpec("localhost", str(pki["ca"])))
        wrong_name = check_cache_headers(srv.url, config, tls=TlsSpec("wrong.test", str(pki["ca"])))
    assert not any("request failed" in c["detail"] for c in by_name)
    assert wrong_name and all("Hostname mismatch" in c["detail"] for c in wrong_name), wrong_name
    # the test server answers every path with 200 and no cache headers: checks fail on headers, not transport
    assert good and not any("request failed" in c["detail"] for c in good)
    assert insecure and not any("request failed" in c["detail"] for c in insecure)
    assert bad and all("CERTIFICATE_VERIFY_FAILED" in c["detail"] for c in bad)
    assert srv.c.alpn == {"http/1.1"}


def test_probe_refuses_tls_flags_for_a_plain_url(tmp_path):
    r = probe_cli("http://127.0.0.1:9", tmp_path, "--insecure")
    assert r.returncode == 2 and "is plain HTTP" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("tls, flags, expect", [
    ("", ["--insecure"], "this project's balancer serves plain HTTP"),
    ("  tls: local\n", ["--cacert", "nope.pem"], "--cacert: nope.pem: not a readable file"),
    ("  tls: local\n", ["--cacert", "x.pem", "--insecure"], "exclude each other"),
])
def test_bench_checks_its_tls_flags_before_the_engine(tmp_path, tls, flags, expect):
    r = run_cli(["init", "proj", "--name", "proj"], tmp_path, env={"XDG_DATA_HOME": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr
    proj = tmp_path / "proj"
    cfg = proj / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("  port: 8080\n", "  port: 8080\n" + tls, 1))
    r = run_cli(["bench", *flags], proj, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert r.returncode == 2 and expect in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (proj / ".scaleout").exists()
