"""balancer.tls on Swarm without an engine: the certificate and key as Swarm secrets named by their
content, mounted where nginx.conf reads them, HTTPS with HTTP/2 in the image's syntax, the ports, and
`export swarm` with the files beside the stack file (the key private)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import crossplane
import pytest
import yaml

from scaleout.config.load import parse_config
from scaleout.export import export_files, write_export
from scaleout.files import write_plan
from scaleout.layout import TLS_CERT, TLS_KEY
from scaleout.render import plan_for
from scaleout.render.swarm import SwarmTls, render_swarm
from scaleout.targets.swarm import SwarmStack
from tests.unit.tls.test_tls import data_home, project  # noqa: F401 (fixtures: a private authority, a scaffolded project)

STACK = ".scaleout/swarm/stack.yml"
NGINX = ".scaleout/swarm/nginx.conf"


def cfg(folder: Path, balancer: str = "  tls: local\n"):
    return parse_config(f"name: proj\nbalancer:\n{balancer}", folder, env={})


def directives(conf_text: str, tmp_path: Path) -> list[dict]:
    path = tmp_path / "nginx.conf"
    path.write_text(conf_text)
    parsed = crossplane.parse(str(path), check_ctx=True, check_args=True, single=True)
    assert parsed["status"] == "ok", parsed["errors"]

    def walk(block):
        for s in block:
            yield s
            yield from walk(s.get("block", []))

    return list(walk(parsed["config"][0]["parsed"]))


def test_certificate_and_key_are_secrets_mounted_where_nginx_reads_them(project, tmp_path):  # noqa: F811
    c = cfg(project, "  tls: local\n  port: 8443\n  http_port: 8081\n")
    plan = plan_for("swarm", c, (1, 22, 1))
    stack = yaml.safe_load(plan.text(STACK))
    cert, key = plan.files[TLS_CERT], plan.files[TLS_KEY]
    assert plan.modes[TLS_KEY] == 0o600  # written as on Compose: .scaleout/tls/, the key private

    # the secrets are made from the files the plan writes (paths relative to the stack file's folder)
    secrets = stack["secrets"]
    assert sorted(secrets) == ["tls_cert", "tls_key"]
    stack_dir = project / ".scaleout/swarm"
    assert (stack_dir / secrets["tls_cert"]["file"]).resolve() == (project / TLS_CERT).resolve()
    assert (stack_dir / secrets["tls_key"]["file"]).resolve() == (project / TLS_KEY).resolve()
    assert secrets["tls_cert"]["name"] == f"proj_tls_cert_{hashlib.sha256(cert).hexdigest()[:12]}"
    assert secrets["tls_key"]["name"] == f"proj_tls_key_{hashlib.sha256(key).hexdigest()[:12]}"

    lb = stack["services"]["lb"]
    mounted = {s["source"]: s for s in lb["secrets"]}
    assert mounted["tls_key"]["mode"] == 0o400 and mounted["tls_cert"]["mode"] == 0o444
    assert "secrets" not in stack["services"]["backend"]  # only the balancer holds the key
    conf = directives(plan.text(NGINX), tmp_path)
    ssl = {d["directive"]: d["args"][0] for d in conf if d["directive"] in ("ssl_certificate", "ssl_certificate_key")}
    assert ssl == {"ssl_certificate": mounted["tls_cert"]["target"],
                   "ssl_certificate_key": mounted["tls_key"]["target"]}

    # HTTPS on balancer.port, the redirect on http_port; nginx 1.22 takes `listen ... http2`
    assert lb["ports"] == [{"target": 443, "published": 8443, "protocol": "tcp", "mode": "host"},
                           {"target": 80, "published": 8081, "protocol": "tcp", "mode": "host"}]
    listens = [d["args"] for d in conf if d["directive"] == "listen"]
    assert ["443", "ssl", "http2", "default_server"] in listens and ["80", "default_server"] in listens
    assert ["https://$host:8443$request_uri"] in [d["args"][1:] for d in conf if d["directive"] == "return"]
    # the balancer's health check asks plain HTTP inside the container, which keeps the ping
    assert "http://127.0.0.1/_scaleout/ping" in lb["healthcheck"]["test"][1]
    assert any(d["args"] == ["=", "/_scaleout/ping"] for d in conf if d["directive"] == "location")


def test_new_nginx_takes_http2_on_and_no_redirect_port_without_http_port(project, tmp_path):  # noqa: F811
    plan = plan_for("swarm", cfg(project), (1, 26, 3))
    conf = directives(plan.text(NGINX), tmp_path)
    assert ["on"] in [d["args"] for d in conf if d["directive"] == "http2"]
    assert ["443", "ssl", "default_server"] in [d["args"] for d in conf if d["directive"] == "listen"]
    lb = yaml.safe_load(plan.text(STACK))["services"]["lb"]
    assert lb["ports"] == [{"target": 443, "published": 8080, "protocol": "tcp", "mode": "host"}]


def test_secret_names_follow_the_content(project):  # noqa: F811
    c = cfg(project)

    def names(cert: bytes, key: bytes) -> dict[str, str]:
        files = render_swarm(c, nginx_version=(1, 22, 1), tls=SwarmTls(cert, key, "../tls"))
        stack = yaml.safe_load(files["stack.yml"])
        return {k: v["name"] for k, v in stack["secrets"].items()}

    same = names(b"cert-1", b"key-1")
    assert same == names(b"cert-1", b"key-1")  # a re-deploy of the same files changes nothing
    rotated = names(b"cert-2", b"key-2")
    assert rotated["tls_cert"] != same["tls_cert"] and rotated["tls_key"] != same["tls_key"]
    assert names(b"cert-1", b"key-2")["tls_cert"] == same["tls_cert"]


def test_a_renewed_certificate_gets_new_secret_names_on_the_next_up(project):  # noqa: F811
    c = cfg(project, "  tls: local\n  tls_names: [one.test]\n")
    write_plan(project, plan_for("swarm", c, (1, 22, 1)))
    written = yaml.safe_load((project / STACK).read_text())["secrets"]
    kept = yaml.safe_load(plan_for("swarm", c, (1, 22, 1)).text(STACK))["secrets"]
    assert kept == written  # the written certificate is reused: the same secrets, nothing to roll
    changed = cfg(project, "  tls: local\n  tls_names: [two.test]\n")
    renewed = yaml.safe_load(plan_for("swarm", changed, (1, 22, 1)).text(STACK))["secrets"]
    assert renewed["tls_cert"]["name"] != kept["tls_cert"]["name"]
    assert renewed["tls_key"]["name"] != kept["tls_key"]["name"]


def test_tls_needs_the_nginx_version_and_the_files(project):  # noqa: F811
    c = cfg(project)
    with pytest.raises(ValueError, match="nginx version"):
        plan_for("swarm", c)
    with pytest.raises(ValueError, match="certificate and its key"):
        render_swarm(c, nginx_version=(1, 22, 1))


def test_plain_http_stack_has_no_secrets(project):  # noqa: F811
    plan = plan_for("swarm", parse_config("name: proj\n", project, env={}))
    stack = yaml.safe_load(plan.text(STACK))
    assert "secrets" not in stack and "secrets" not in stack["services"]["lb"]
    assert stack["services"]["lb"]["ports"][0]["target"] == 80
    assert not any(rel.startswith(".scaleout/tls/") for rel in plan.files)


def test_refused_strategy_makes_no_certificate(project, data_home):  # noqa: F811
    with pytest.raises(Exception, match="balancer.strategy least_conn"):
        plan_for("swarm", cfg(project, "  tls: local\n  strategy: least_conn\n"), (1, 22, 1))
    assert not data_home.exists()


def test_swarm_target_polls_https_against_the_local_authority(project):  # noqa: F811
    import ssl

    from scaleout.targets.runner import balancer_verify

    plain = cfg(project, "  port: 8080\n")
    assert balancer_verify(plain.balancer.tls, plain.project_dir) is True
    assert SwarmStack(cfg(project))._lb_port == 443
    write_plan(project, plan_for("swarm", cfg(project), (1, 22, 1)))
    local = cfg(project)
    assert isinstance(balancer_verify(local.balancer.tls, local.project_dir), ssl.SSLContext)


def test_export_swarm_writes_the_certificate_beside_the_stack_file(project, tmp_path):  # noqa: F811
    c = cfg(project)
    out = tmp_path / "deploy"
    notes: list[str] = []
    files = export_files("swarm", c, out=out, note=notes.append, nginx_version=(1, 22, 1))
    stack = yaml.safe_load(files["stack.yml"])
    assert {k: v["file"] for k, v in stack["secrets"].items()} == {"tls_cert": "./tls/cert.pem",
                                                                  "tls_key": "./tls/key.pem"}
    assert b"PRIVATE KEY" in files["tls/key.pem"] and b"CERTIFICATE" in files["tls/cert.pem"]
    ca_key = (Path(os.environ["XDG_DATA_HOME"]) / "scaleout" / "ca-key.pem").read_bytes()
    assert all((v if isinstance(v, bytes) else v.encode()) != ca_key for v in files.values())
    assert not any(rel.endswith("ca.pem") for rel in files)  # the leaf only
    assert any("tls/key.pem is the balancer's private key" in n and "development only" in n for n in notes), notes

    old = os.umask(0o022)
    try:
        write_export(out, files, kind="swarm")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.lstat(out / "tls/key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(out / "tls/cert.pem").st_mode) == 0o600  # every exported file is the owner's only
    assert (out / "tls/key.pem").read_bytes() == files["tls/key.pem"]
