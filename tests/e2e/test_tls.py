"""balancer.tls on a real engine, with the local authority trusted only inside the test (curl --cacert,
an ssl context): HTTPS with HTTP/2 in the syntax of the balancer image's own nginx, the plain-HTTP
redirect, the cache headers and the worker over HTTPS, the certificate kept across `up`, and a user's
own certificate loaded by a graceful reload; the probe over HTTPS. scripts/test.sh runs these on both
stand-in images."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import subprocess
from pathlib import Path

import docker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scaleout.config.load import parse_config
from scaleout.render.nginx import render_nginx
from tests.e2e.test_cache import _check_headers
from tests.helpers import Project, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.nginx_matrix]


class TlsProject(Project):
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def image_nginx_version(image: str) -> tuple[int, int, int]:
    """Asked independently of scaleout: `docker run --rm IMAGE nginx -v`."""
    out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "nginx", image, "-v"], capture_output=True,
                         text=True, timeout=60, check=True).stderr
    major, minor, patch = out.strip().rsplit("/", 1)[1].split()[0].split(".")
    return int(major), int(minor), int(patch)


def balancer_ids(project: str) -> list[str]:
    containers = docker.from_env().containers.list(filters={"label": f"com.docker.compose.project={project}"})
    return [c.id for c in containers if c.labels["com.docker.compose.service"] == "lb"]


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=20)


def served_cert(port: int, cafile: Path, server_name: str = "localhost") -> bytes:
    """The certificate the balancer presents (DER), verified against `cafile`."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            ctx.wrap_socket(sock, server_hostname=server_name) as tls:
        return tls.getpeercert(binary_form=True)


def own_certificate(folder: Path) -> Path:
    """A CA of the test's own and a certificate for localhost signed by it (as mkcert makes them)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-own-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "own")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=20))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir()
    (folder / "own.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "own-key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    (folder / "own-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return folder / "own-ca.pem"


TLS_KEYS = "  tls: local\n  tls_names: [app.test]\n  http_port: {http_port}\n"


def test_https_http2_redirect_headers_and_certificate_reuse(make_project, tmp_path, monkeypatch):
    http_port = free_port()
    plain = make_project()
    p = TlsProject(plain.path, plain.name, plain.port, {**plain.env, "XDG_DATA_HOME": str(tmp_path / "data")})
    # a running plain-HTTP stack turns to HTTPS: the balancer is recreated with the certificate mounted
    # (its old container could not test a configuration that reads files it does not have)
    p.cli("up", "--replicas", "2", check=True)
    assert curl("-o", "/dev/null", "-w", "%{http_code}", f"{plain.url}/").stdout == "200"
    cfg = p.path / "scaleout.yaml"
    tls_keys = TLS_KEYS.format(http_port=http_port)
    cfg.write_text(cfg.read_text().replace("  bind: 127.0.0.1\n", "  bind: 127.0.0.1\n" + tls_keys))
    r = p.cli("up", "--replicas", "2", check=True)
    assert "it is recreated" in r.stderr
    assert f"ready: https://127.0.0.1:{p.port}/" in r.stdout
    ca = p.path / ".scaleout/tls/ca.pem"
    assert ca.read_bytes() == (tmp_path / "data/scaleout/ca.pem").read_bytes()

    # the HTTP/2 syntax is the one the image's own nginx takes
    version = image_nginx_version(p.env["SCALEOUT_LB_IMAGE"])
    conf = (p.path / ".scaleout/nginx/nginx.conf").read_text()
    if version >= (1, 25, 1):
        assert "        http2 on;\n" in conf and "listen 443 ssl default_server;" in conf
    else:
        assert "listen 443 ssl http2 default_server;" in conf and "http2 on;" not in conf

    # HTTPS with HTTP/2, for the loopback address and for a name from tls_names
    for args in ([f"https://127.0.0.1:{p.port}/"],
                 ["--resolve", f"app.test:{p.port}:127.0.0.1", f"https://app.test:{p.port}/"]):
        r = curl("--cacert", str(ca), "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", *args)
        assert r.returncode == 0 and r.stdout == "2 200", r.stdout + r.stderr
    # the certificate is checked, not waved through: without the authority curl refuses it
    r = curl("-o", "/dev/null", f"https://127.0.0.1:{p.port}/")
    assert r.returncode == 60, r.stderr
    # a TLS 1.2 cipher without forward secrecy is refused
    r = curl("--cacert", str(ca), "--tls-max", "1.2", "--ciphers", "AES128-SHA", "-o", "/dev/null",
             f"https://127.0.0.1:{p.port}/")
    assert r.returncode == 35, r.stdout + r.stderr

    # plain HTTP on http_port redirects to the same path over HTTPS
    r = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", f"http://127.0.0.1:{http_port}/a/b?c=1")
    assert r.stdout == f"308 https://127.0.0.1:{p.port}/a/b?c=1", r.stdout + r.stderr
    r = curl("--cacert", str(ca), "-L", "-o", "/dev/null", "-w", "%{http_code} %{url_effective}",
             f"http://127.0.0.1:{http_port}/offline.html")
    assert r.stdout == f"200 https://127.0.0.1:{p.port}/offline.html", r.stdout + r.stderr

    # the worker and every cache header, over HTTPS (curl reads the authority from CURL_CA_BUNDLE)
    monkeypatch.setenv("CURL_CA_BUNDLE", str(ca))
    _check_headers(p, 2)
    status = p.cli("status", "--json", check=True).stdout
    assert f'"url": "https://127.0.0.1:{p.port}"' in status
    # the probe loads HTTPS, verified against the project's authority (tests/e2e/test_probe_tls.py for more)
    r = p.cli("probe", "--requests", "20")
    assert r.returncode == 0 and f"verified against {ca}" in r.stdout, r.stdout + r.stderr

    # rescaling keeps the certificate (same bytes on disk and on the wire) and reloads over TLS
    cert_file = p.path / ".scaleout/tls/cert.pem"
    before = cert_file.read_bytes()
    assert served_cert(p.port, ca) == x509.load_pem_x509_certificate(before).public_bytes(serialization.Encoding.DER)
    lb_before = balancer_ids(p.name)
    p.cli("up", "--replicas", "3", check=True)
    assert cert_file.read_bytes() == before
    r = curl("--cacert", str(ca), "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
             f"https://127.0.0.1:{p.port}/")
    assert r.stdout == "2 200", r.stdout + r.stderr

    # the user's own certificate: checked, copied, and loaded by a graceful reload of the same balancer
    own_ca = own_certificate(p.path / "certs")
    cfg = p.path / "scaleout.yaml"
    cfg.write_text(cfg.read_text().replace("  tls: local\n  tls_names: [app.test]\n",
                                           "  tls: {cert: certs/own.pem, key: certs/own-key.pem}\n"))
    r = p.cli("up", "--replicas", "3", check=True)
    assert "reloaded nginx gracefully" in r.stderr
    assert balancer_ids(p.name) == lb_before
    own = (p.path / "certs/own.pem").read_bytes()
    assert served_cert(p.port, own_ca) == x509.load_pem_x509_certificate(own).public_bytes(serialization.Encoding.DER)
    r = curl("--cacert", str(own_ca), "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
             f"https://localhost:{p.port}/")
    assert r.stdout == "2 200", r.stdout + r.stderr

    # and back to plain HTTP: the certificate files go with it
    cfg.write_text(cfg.read_text().replace("  tls: {cert: certs/own.pem, key: certs/own-key.pem}\n", "")
                   .replace(f"  http_port: {http_port}\n", ""))
    p.cli("up", "--replicas", "2", check=True)
    assert curl("-o", "/dev/null", "-w", "%{http_code}", f"{plain.url}/").stdout == "200"
    assert not (p.path / ".scaleout/tls").exists()
    p.cli("down", check=True)


@pytest.fixture
def checker(docker_engine, images, tmp_path, monkeypatch):
    """A balancer container of the image under test, with a certificate where nginx.conf expects it."""
    from scaleout.tls.certs import ensure_ca, issue_leaf
    from tests.helpers.nginx_check import NginxChecker

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    c = NginxChecker(docker_engine, images["SCALEOUT_LB_IMAGE"])
    cert, key = issue_leaf(ensure_ca(), ("localhost",), ("127.0.0.1",), "check")
    c.container.exec_run(["mkdir", "-p", "/etc/scaleout/tls"])
    for name, data in (("cert.pem", cert), ("key.pem", key)):
        c.container.put_archive("/etc/scaleout/tls", _tar(name, data))
    yield c
    c.close()


def nginx_t(checker, text: str) -> tuple[bool, str]:
    """`nginx -t` on `text` in the checker's container, through the docker CLI: it waits for the exit
    code, where the SDK's exec_run can report one (or the output) before the process has finished."""
    checker.container.put_archive("/etc/scaleout/nginx", _tar("tls-check.conf", text.encode()))
    cmd = ["docker", "exec", checker.container.id, "nginx", "-t", "-c", "/etc/scaleout/nginx/tls-check.conf"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r.returncode == 0, r.stdout + r.stderr


def _tar(name: str, data: bytes) -> bytes:
    import io
    import tarfile
    import time

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_each_http2_syntax_against_this_image(checker, images, tmp_path, monkeypatch):
    """Why the version is asked: `http2 on;` is unknown before nginx 1.25.1, and `listen ... http2` is
    deprecated after it. scaleout's choice passes cleanly; the other one fails or warns."""
    from scaleout.targets.nginx_version import balancer_nginx_version

    (tmp_path / "proj").mkdir()
    cfg = parse_config("name: proj\nbalancer:\n  tls: local\n  http_port: 8081\n", tmp_path / "proj", env=images)
    asked = balancer_nginx_version(cfg)
    assert asked == image_nginx_version(images["SCALEOUT_LB_IMAGE"])
    ok, out = nginx_t(checker, render_nginx(cfg, nginx_version=asked))
    assert ok and "syntax is ok" in out and "deprecated" not in out and "warn" not in out, out
    other = (1, 22, 1) if asked >= (1, 25, 1) else (1, 26, 3)
    ok, out = nginx_t(checker, render_nginx(cfg, nginx_version=other))
    if asked >= (1, 25, 1):
        assert ok and "deprecated" in out, out
    else:
        assert not ok and 'unknown directive "http2"' in out, out
