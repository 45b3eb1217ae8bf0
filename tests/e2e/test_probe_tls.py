"""`scaleout probe` and `bench` over HTTPS on a real engine: `balancer.tls: local` is verified against the
project's copy of the local authority without any flag, another authority is refused before any load,
--insecure loads and says it did not verify, and a user's own certificate needs --cacert (the system
store does not know its authority)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.test_tls import own_certificate

pytestmark = [pytest.mark.e2e, pytest.mark.nginx_matrix]


def stranger_ca(path) -> None:
    """An authority that signed nothing the balancer serves."""
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_probe_and_bench_over_https(make_project, tmp_path):
    p = make_project(replace={"  bind: 127.0.0.1\n": "  bind: 127.0.0.1\n  tls: local\n"})
    p.env["XDG_DATA_HOME"] = str(tmp_path / "data")
    r = p.cli("up", "--replicas", "2", check=True)
    assert f"ready: https://127.0.0.1:{p.port}/" in r.stdout

    # the project's own authority is trusted without a flag; the load speaks HTTP/1.1 over TLS to nginx,
    # which offers h2 as well; the cache checks run over HTTPS too
    r = p.cli("probe", "--requests", "600", "--concurrency", "4", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "pass" and doc["ok"] == 600 and doc["url"] == f"https://127.0.0.1:{p.port}"
    assert sorted(b["name"] for b in doc["backends"]) == ["backend-1", "backend-2"]
    tls = doc["tls"]
    assert tls["verified"] is True and tls["trusted"] == str(p.path / ".scaleout/tls/ca.pem")
    assert tls["alpn"] == "http/1.1" and tls["version"] in ("TLSv1.2", "TLSv1.3") and tls["cipher"]
    assert 4 <= tls["handshakes"] <= 8, tls  # keep-alive: about one per connection
    assert doc["cache_checks"] and all(c["ok"] for c in doc["cache_checks"]), doc["cache_checks"]

    # another authority: one clear error before any load, pointing at --cacert
    stranger = tmp_path / "stranger.pem"
    stranger_ca(stranger)
    r = p.cli("probe", "--requests", "600", "--cacert", str(stranger))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"the certificate of 127.0.0.1:{p.port} is not trusted" in r.stderr and "--cacert FILE" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""

    # --insecure loads anyway, and the report says the certificate was not checked
    r = p.cli("probe", "--requests", "300", "--concurrency", "4", "--cacert", str(stranger), "--insecure")
    assert r.returncode == 2 and "exclude each other" in r.stderr
    r = p.cli("probe", "--requests", "300", "--concurrency", "4", "--insecure")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "certificate NOT verified (--insecure)" in r.stdout and "verdict: PASS" in r.stdout

    # bench measures over HTTPS as well (the stack is already at 2 replicas)
    r = p.cli("bench", "--replicas", "2", "--duration", "1", "--warmup", "0", "--no-build", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    point = json.loads(r.stdout)["points"][0]
    assert point["failed"] == 0 and point["requests"] > 0 and point["replicas_served"] == 2
    assert point["tls"]["verified"] is True and point["tls"]["handshakes"] >= 1

    # the user's own certificate: its authority is not in the system store, so --cacert names it
    own_ca = own_certificate(p.path / "certs")
    cfg = p.path / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("  tls: local\n", "  tls: {cert: certs/own.pem, key: certs/own-key.pem}\n"))
    p.cli("up", "--replicas", "2", check=True)
    r = p.cli("probe", "--requests", "300", "--no-cache-check")
    assert r.returncode == 2 and "checked against the system's trusted authorities" in r.stderr, r.stderr
    r = p.cli("probe", "--requests", "300", "--concurrency", "4", "--cacert", str(own_ca), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["tls"]["trusted"] == str(own_ca)
    p.cli("down", check=True)
