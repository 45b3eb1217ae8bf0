"""balancer.tls on Swarm and Kubernetes renders byte-for-byte to tests/golden/tls/ (`--update-golden`
rewrites them). The certificate is made here from fixed inputs (Ed25519 signs deterministically), so the
secret names and the Secret's data are stable; rendering never checks it. Outputs are parsed too."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import crossplane
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from scaleout.config.load import load_config
from scaleout.render.assets import plan_assets
from scaleout.render.k8s import read_static_files, render_k8s
from scaleout.render.swarm import SwarmTls, render_swarm
from scaleout.render.worker import render_worker
from tests.helpers import ROOT

EXAMPLE = ROOT / "examples" / "python-demo"
GOLDEN = ROOT / "tests" / "golden" / "tls"
TLS_KEYS = "  tls: local\n  tls_names: [shop.example.com]\n  http_port: 8081\n"


def fixed_certificate() -> tuple[bytes, bytes]:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "golden")])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(start).not_valid_after(start + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.DNSName("shop.example.com")]), critical=False)
            .sign(key, None))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def rendered(tmp_path: Path) -> dict[str, str]:
    project = tmp_path / "python-demo"
    shutil.copytree(EXAMPLE, project)
    cfg_file = project / "scaleout.yaml"
    text = cfg_file.read_text()
    assert "  port: 8080\n" in text
    cfg_file.write_text(text.replace("  port: 8080\n", "  port: 8443\n" + TLS_KEYS, 1))
    cfg = load_config(project, env={})  # golden files never depend on SCALEOUT_* variables
    cert, key = fixed_certificate()
    out = {}
    swarm = render_swarm(cfg, plan_assets(cfg).env_value(), nginx_version=(1, 22, 1),
                         tls=SwarmTls(cert, key, "../tls"))
    out.update({f"swarm/{rel}": text for rel, text in swarm.items()})
    worker, static = render_worker(cfg), read_static_files(cfg)
    for balancer, version in (("nginx", (1, 26, 3)), ("ingress", (1, 26, 3))):
        files = render_k8s(cfg, static, worker, balancer=balancer, image="registry.example.com/shop:1",
                           nginx_version=version, tls=(cert, key))
        out.update({f"k8s-{balancer}/{rel}": text for rel, text in files.items()})
    return out


@pytest.fixture
def files(request, tmp_path) -> dict[str, str]:
    out = rendered(tmp_path)
    if request.config.getoption("--update-golden"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, text in out.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text)
    return out


def test_tls_renders_match_golden(files):
    golden = {p.relative_to(GOLDEN).as_posix(): p.read_text() for p in GOLDEN.rglob("*") if p.is_file()}
    assert sorted(files) == sorted(golden)
    for rel, text in files.items():
        assert text == golden[rel], f"tls/{rel} differs from its golden file (pytest --update-golden)"


def test_golden_tls_output_parses():
    stack = yaml.safe_load((GOLDEN / "swarm" / "stack.yml").read_text())
    assert sorted(stack["secrets"]) == ["tls_cert", "tls_key"]
    for conf in (GOLDEN / "swarm" / "nginx.conf",):
        parsed = crossplane.parse(str(conf), check_ctx=True, check_args=True, single=True)
        assert parsed["status"] == "ok", parsed["errors"]
    for variant in ("k8s-nginx", "k8s-ingress"):
        docs = [d for f in sorted((GOLDEN / variant).glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
        assert [d["type"] for d in docs if d["kind"] == "Secret"] == ["kubernetes.io/tls"]
        from tests.unit.render.test_k8s import _check_references, load_object

        for d in docs:
            load_object(d)
        _check_references(docs)
