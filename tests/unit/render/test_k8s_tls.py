"""`scaleout export k8s` with balancer.tls: a kubernetes.io/tls Secret (the project's certificate and key,
never the authority's key) that scaleout's nginx mounts to serve HTTPS with HTTP/2, or that the Ingress
terminates TLS with (`spec.tls`). Every object validated against the API schema as in test_export_k8s."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import yaml

from scaleout.config.load import parse_config
from scaleout.export import export_files, write_export
from scaleout.layout import TLS_CERT, TLS_KEY
from scaleout.render.k8s import read_static_files, render_k8s
from scaleout.tls.certs import tls_files
from tests.unit.render.test_k8s import CONFIG, _check_references, by_kind, objects
from tests.unit.render.test_k8s import project as project  # noqa: F401 (fixture)
from tests.unit.tls.test_tls import load_cert, names

TLS_CONFIG = CONFIG.replace("balancer: {port: 18080}",
                            "balancer: {port: 18443, tls: local, tls_names: [shop.example.com, 10.0.0.7],"
                            " http_port: 18081}")


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    home = tmp_path / "data-home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home / "scaleout"


def render(project: Path, text: str = TLS_CONFIG, version=(1, 22, 1), **kw):
    c = parse_config(text, project, env={})
    t = tls_files(c)
    pair = (t.files[TLS_CERT], t.files[TLS_KEY])
    return render_k8s(c, read_static_files(c), "// worker", nginx_version=version, tls=pair, **kw), pair


def test_nginx_variant_mounts_the_secret_and_serves_https(project, tmp_path):
    files, (cert, key) = render(project)
    assert sorted(files) == ["backend.yaml", "balancer.yaml", "secrets.yaml"]
    docs = objects(files)
    _check_references(docs)
    (secret,) = by_kind(docs, "Secret").values()
    assert secret["type"] == "kubernetes.io/tls" and secret["metadata"]["name"] == "shop-tls"
    assert base64.b64decode(secret["data"]["tls.crt"]) == cert
    assert base64.b64decode(secret["data"]["tls.key"]) == key
    assert "PRIVATE KEY" in files["secrets.yaml"].split("apiVersion", 1)[0]  # the header says what it holds
    assert "development only" in files["secrets.yaml"]

    pod = by_kind(docs, "Deployment")["shop-lb"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "shop-tls"
    assert volumes["tls"]["secret"]["defaultMode"] == 0o400
    paths = {i["key"]: i["path"] for i in volumes["tls"]["secret"]["items"]}
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "tls"]
    conf = by_kind(docs, "ConfigMap")["shop-nginx"]["data"]["nginx.conf"]
    # nginx reads the files where the Secret's items put them
    assert f"ssl_certificate {mount['mountPath']}/{paths['tls.crt']};" in conf
    assert f"ssl_certificate_key {mount['mountPath']}/{paths['tls.key']};" in conf
    assert "listen 443 ssl http2 default_server;" in conf  # nginx 1.22's syntax
    assert "return 308 https://$host:18443$request_uri;" in conf
    assert {"name": "https", "containerPort": 443, "protocol": "TCP"} in container["ports"]
    service = by_kind(docs, "Service")["shop-lb"]["spec"]
    assert service["ports"] == [{"name": "https", "port": 18443, "targetPort": "https", "protocol": "TCP"},
                                {"name": "http", "port": 18081, "targetPort": "http", "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/_scaleout/ping", "port": "http"}


def test_http2_on_for_new_nginx_and_no_plain_port_without_http_port(project):
    text = TLS_CONFIG.replace(", http_port: 18081", "")
    files, _ = render(project, text, version=(1, 27, 4))
    docs = objects(files)
    conf = by_kind(docs, "ConfigMap")["shop-nginx"]["data"]["nginx.conf"]
    assert "listen 443 ssl default_server;" in conf and "        http2 on;\n" in conf
    assert [p["name"] for p in by_kind(docs, "Service")["shop-lb"]["spec"]["ports"]] == ["https"]


def test_a_new_certificate_rolls_the_balancer_pods(project):
    c = parse_config(TLS_CONFIG, project, env={})
    static = read_static_files(c)

    def annotation(cert: bytes, key: bytes) -> str:
        docs = objects(render_k8s(c, static, None, nginx_version=(1, 22, 1), tls=(cert, key)))
        return by_kind(docs, "Deployment")["shop-lb"]["spec"]["template"]["metadata"]["annotations"][
            "scaleout.io/config-sha256"]

    assert annotation(b"c1", b"k1") == annotation(b"c1", b"k1")
    assert annotation(b"c2", b"k2") != annotation(b"c1", b"k1")


def test_ingress_variant_terminates_tls_at_the_ingress(project):
    files, (cert, _) = render(project, balancer="ingress", ingress_class="nginx")
    assert sorted(files) == ["backend.yaml", "balancer.yaml", "ingress.yaml", "secrets.yaml"]
    docs = objects(files)
    _check_references(docs)
    (ing,) = by_kind(docs, "Ingress").values()
    (tls,) = ing["spec"]["tls"]
    assert tls["secretName"] in by_kind(docs, "Secret")
    # the DNS names of the certificate (not its addresses: an Ingress host is a name)
    assert sorted(tls["hosts"]) == sorted(names(load_cert(cert))[0]) == ["localhost", "shop.example.com"]
    # behind the Ingress scaleout's nginx serves the static routes in plain HTTP: no redirect loop
    conf = by_kind(docs, "ConfigMap")["shop-nginx"]["data"]["nginx.conf"]
    assert "ssl" not in conf and "return 308" not in conf
    pod = by_kind(docs, "Deployment")["shop-lb"]["spec"]["template"]["spec"]
    assert "tls" not in {v["name"] for v in pod["volumes"]}
    assert [p["name"] for p in by_kind(docs, "Service")["shop-lb"]["spec"]["ports"]] == ["http"]


def test_without_tls_nothing_changes(project):
    plain = render_k8s(parse_config(CONFIG, project, env={}), read_static_files(parse_config(CONFIG, project, env={})),
                       "// worker", balancer="ingress")
    assert "secrets.yaml" not in plain and "tls:" not in plain["ingress.yaml"]
    with pytest.raises(ValueError, match="certificate and its key"):
        c = parse_config(TLS_CONFIG, project, env={})
        render_k8s(c, {}, None, nginx_version=(1, 22, 1))


def test_export_writes_the_secret_private_and_never_the_authority_key(project, tmp_path, data_home):
    c = parse_config(TLS_CONFIG, project, env={})
    notes: list[str] = []
    files = export_files("k8s", c, image="registry.example.com/shop:1", note=notes.append, nginx_version=(1, 22, 1))
    ca_key = (data_home / "ca-key.pem").read_bytes()
    ca_cert = (data_home / "ca.pem").read_bytes()
    (secret,) = [d for d in yaml.safe_load_all(files["secrets.yaml"]) if d and d["kind"] == "Secret"]
    assert base64.b64decode(secret["data"]["tls.key"]) != ca_key
    assert base64.b64decode(secret["data"]["tls.crt"]) != ca_cert  # the leaf, signed by the authority
    b64 = {base64.b64encode(ca_key).decode(), base64.b64encode(ca_cert).decode()}
    assert not any(x in text for text in files.values() for x in b64)
    assert any("PRIVATE KEY" in n and "development only" in n for n in notes), notes

    out = tmp_path / "k8s"
    old = os.umask(0o022)
    try:
        write_export(out, files, kind="k8s")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.lstat(out / "secrets.yaml").st_mode) == 0o600
    # the project's own certificate is reused while it fits: exporting again changes nothing
    from scaleout.files import Plan, write_plan

    write_plan(project, Plan(tls_files(c).files))  # as `up` leaves it in .scaleout/tls/
    again = export_files("k8s", c, image="registry.example.com/shop:1", nginx_version=(1, 22, 1))
    assert export_files("k8s", c, image="registry.example.com/shop:1", nginx_version=(1, 22, 1)) == again
