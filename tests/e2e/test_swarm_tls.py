"""balancer.tls on a real single-node swarm: the certificate and key reach nginx as Swarm secrets, HTTPS
with HTTP/2 answers (checked against the local authority only), plain HTTP redirects, a new certificate is
rolled out under new secret names, and `down` leaves no secret behind. One short loop: Swarm is slow."""

from __future__ import annotations

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.e2e.test_swarm import NS, _services, swarm, swarm_project  # noqa: F401 (fixtures)
from tests.e2e.test_tls import curl, served_cert
from tests.helpers import free_port
from tests.unit.tls.test_tls import names

pytestmark = pytest.mark.e2e


def _secrets(client, project: str) -> set[str]:
    return {s.name for s in client.secrets.list(filters={"label": f"{NS}={project}"})}


def _lb_secrets(client, project: str) -> dict[str, dict]:
    spec = _services(client, project)["lb"].attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    return {s["File"]["Name"]: s for s in spec.get("Secrets") or []}


def test_swarm_https_http2_secret_rotation_and_down(swarm_project, swarm, tmp_path):  # noqa: F811
    http_port = free_port()
    p = swarm_project()
    p.env["XDG_DATA_HOME"] = str(tmp_path / "data")

    r = p.cli("up", "--target", "swarm", "--tls", "--replicas", "2", timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ready: https://127.0.0.1:{p.port}/" in r.stdout
    ca = p.path / ".scaleout/tls/ca.pem"
    first = _secrets(swarm, p.name)
    assert len(first) == 2 and all(n.startswith(f"{p.name}_tls_") for n in first), first
    mounted = _lb_secrets(swarm, p.name)
    assert sorted(mounted) == ["/etc/scaleout/tls/cert.pem", "/etc/scaleout/tls/key.pem"]
    assert mounted["/etc/scaleout/tls/key.pem"]["File"]["Mode"] == 0o400
    assert {s["SecretName"] for s in mounted.values()} == first
    r = curl("--cacert", str(ca), "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
             f"https://127.0.0.1:{p.port}/")
    assert r.returncode == 0 and r.stdout == "2 200", r.stdout + r.stderr
    r = curl("-o", "/dev/null", f"https://127.0.0.1:{p.port}/")  # checked, not waved through
    assert r.returncode == 60, r.stderr

    # another name: a new certificate, so new secrets; the balancer rolls over to them
    cfg = p.path / "scaleout.yaml"
    tls_keys = f"  tls: local\n  tls_names: [two.test]\n  http_port: {http_port}\n"
    cfg.write_text(cfg.read_text().replace("  bind: 127.0.0.1\n", "  bind: 127.0.0.1\n" + tls_keys))
    r = p.cli("up", "--target", "swarm", "--replicas", "2", timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    second = _secrets(swarm, p.name)
    assert len(second) == 2 and not second & first, (first, second)  # the old ones removed once unused
    served = x509.load_der_x509_certificate(served_cert(p.port, ca, "two.test"))
    assert "two.test" in names(served)[0]
    assert served.public_bytes(Encoding.PEM) == (p.path / ".scaleout/tls/cert.pem").read_bytes()
    r = curl("--cacert", str(ca), "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
             "--resolve", f"two.test:{p.port}:127.0.0.1", f"https://two.test:{p.port}/")
    assert r.returncode == 0 and r.stdout == "2 200", r.stdout + r.stderr
    r = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", f"http://127.0.0.1:{http_port}/a?b=1")
    assert r.stdout == f"308 https://127.0.0.1:{p.port}/a?b=1", r.stdout + r.stderr

    r = p.cli("down", "--target", "swarm")
    assert r.returncode == 0, r.stderr
    assert _services(swarm, p.name) == {}
    assert _secrets(swarm, p.name) == set()
    assert subprocess.run(["docker", "secret", "ls", "-q", "--filter", f"label={NS}={p.name}"],
                          capture_output=True, text=True, timeout=30).stdout.strip() == ""
