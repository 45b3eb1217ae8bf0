"""balancer.tls without an engine: the local certificate authority, the project's certificate (names,
validity, key permissions, reuse), the user's own files (every refusal exits 2 and writes nothing),
the config keys, the rendered nginx and Compose files, the nginx version cache and `scaleout trust`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scaleout.config.load import parse_config
from scaleout.config.model import Overrides
from scaleout.errors import CertificateError, ConfigError
from scaleout.files import write_plan
from scaleout.layout import COMPOSE_FILE, NGINX_CONF, TLS_CA, TLS_CERT, TLS_KEY
from scaleout.render import plan_for
from scaleout.render.nginx import render_nginx
from scaleout.tls import trust as tr
from scaleout.tls.certs import LEAF_DAYS, ensure_ca, find_ca, tls_files
from tests.helpers import run_cli

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """Every test gets its own data folder: the user's real authority is never touched."""
    home = tmp_path / "data-home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home / "scaleout"


@pytest.fixture
def project(tmp_path):
    r = run_cli(["init", "proj", "--name", "proj"], tmp_path, env={"XDG_DATA_HOME": str(tmp_path / "data-home")})
    assert r.returncode == 0, r.stderr
    return tmp_path / "proj"


def cfg(project: Path, balancer: str = "  tls: local\n"):
    return parse_config(f"name: proj\nbalancer:\n{balancer}", project, env={})


def load_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def names(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(a) for a in san.get_values_for_type(x509.IPAddress)}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- the local certificate authority ---------------------------------------------------------------

def test_ca_is_made_once_private_and_can_only_sign_servers(data_home):
    ca = ensure_ca()
    assert ca.folder == data_home
    assert mode(data_home) == 0o700
    assert mode(data_home / "ca-key.pem") == 0o600
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert ca.cert.not_valid_after_utc - NOW > dt.timedelta(days=3000)
    # the second call loads the same authority: browsers that trust it keep trusting its certificates
    again = ensure_ca()
    assert again.fingerprint == ca.fingerprint
    assert (data_home / "ca.pem").read_bytes() == ca.cert_pem


def test_a_loose_folder_and_key_are_made_private_again(data_home):
    ensure_ca()
    os.chmod(data_home, 0o755)
    os.chmod(data_home / "ca-key.pem", 0o644)
    ensure_ca()
    assert mode(data_home) == 0o700 and mode(data_home / "ca-key.pem") == 0o600


def test_an_incomplete_or_damaged_authority_is_never_replaced(data_home):
    ensure_ca()
    key = (data_home / "ca-key.pem").read_bytes()
    (data_home / "ca.pem").unlink()
    with pytest.raises(CertificateError, match="ca.pem is missing"):
        ensure_ca()
    assert (data_home / "ca-key.pem").read_bytes() == key
    (data_home / "ca.pem").write_text("not a certificate\n")
    with pytest.raises(CertificateError, match="cannot be read"):
        ensure_ca()
    assert (data_home / "ca-key.pem").read_bytes() == key


def test_find_ca_creates_nothing(data_home):
    assert find_ca() is None
    assert not data_home.exists()


# --- the project's certificate -------------------------------------------------------------------------

def test_leaf_names_validity_and_signature(project, data_home):
    c = cfg(project, "  tls: local\n  bind: 192.168.7.9\n  tls_names: [app.test, '*.dev.test', 10.1.2.3]\n")
    plan = tls_files(c)
    cert = load_cert(plan.files[TLS_CERT])
    ca = ensure_ca()
    cert.verify_directly_issued_by(ca.cert)
    assert names(cert) == ({"localhost", "app.test", "*.dev.test"}, {"127.0.0.1", "::1", "192.168.7.9", "10.1.2.3"})
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=LEAF_DAYS) <= life <= dt.timedelta(days=LEAF_DAYS, hours=2)
    assert LEAF_DAYS <= 398  # what browsers accept for a server certificate
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH])
    key = serialization.load_pem_private_key(plan.files[TLS_KEY], password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert plan.files[TLS_CA] == ca.cert_pem
    assert plan.modes[TLS_KEY] == 0o600


def test_bind_on_every_interface_is_not_a_name(project):
    cert = load_cert(tls_files(cfg(project, "  tls: local\n  bind: 0.0.0.0\n")).files[TLS_CERT])
    assert names(cert) == ({"localhost"}, {"127.0.0.1", "::1"})


def test_key_is_written_0600_and_the_certificate_is_reused(project):
    c = cfg(project)
    root = project.resolve()
    write_plan(root, plan_for("compose", c, (1, 22, 1)))
    assert mode(root / TLS_KEY) == 0o600
    first = (root / TLS_CERT).read_bytes(), (root / TLS_KEY).read_bytes()
    # a later render (or `up`) keeps the certificate: same bytes, nothing rewritten
    result = write_plan(root, plan_for("compose", c, (1, 22, 1)))
    assert TLS_CERT in result.unchanged and TLS_KEY in result.unchanged
    assert ((root / TLS_CERT).read_bytes(), (root / TLS_KEY).read_bytes()) == first
    # a key made readable by others becomes private again on the next write
    os.chmod(root / TLS_KEY, 0o644)
    write_plan(root, plan_for("compose", c, (1, 22, 1)))
    assert mode(root / TLS_KEY) == 0o600


@pytest.mark.parametrize("change", ["names", "near_expiry", "other_ca", "foreign_key"])
def test_certificate_is_issued_again_when_it_no_longer_fits(project, data_home, change):
    c = cfg(project)
    root = project.resolve()
    write_plan(root, plan_for("compose", c, (1, 22, 1)))
    before = (root / TLS_CERT).read_bytes()
    now = None
    if change == "names":
        c = cfg(project, "  tls: local\n  tls_names: [app.test]\n")
    elif change == "near_expiry":
        now = NOW + dt.timedelta(days=LEAF_DAYS - 20)
    elif change == "other_ca":
        for f in ("ca.pem", "ca-key.pem"):
            (data_home / f).unlink()
    elif change == "foreign_key":
        other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        (root / TLS_KEY).write_bytes(other)
    plan = tls_files(c, now=now)
    assert plan.reused is False
    assert plan.files[TLS_CERT] != before
    after = load_cert(plan.files[TLS_CERT])
    after.verify_directly_issued_by(ensure_ca().cert)
    if change == "names":
        assert "app.test" in names(after)[0]


def test_a_valid_certificate_is_reused_without_rewriting(project):
    c = cfg(project)
    write_plan(project.resolve(), plan_for("compose", c, (1, 22, 1)))
    assert tls_files(c).reused is True
    assert tls_files(c, now=NOW + dt.timedelta(days=300)).reused is True  # 97 days left: still fine


# --- the user's own certificate ------------------------------------------------------------------------

def make_own(folder: Path, *, days: int = 30, start_days: int = -1, encrypted: bool = False,
             mismatched: bool = False) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mkcert-like")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW + dt.timedelta(days=start_days)).not_valid_after(NOW + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    if mismatched:
        key = ec.generate_private_key(ec.SECP256R1())
    enc = serialization.BestAvailableEncryption(b"secret") if encrypted else serialization.NoEncryption()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dev.pem").write_bytes(cert_pem)
    (folder / "dev-key.pem").write_bytes(key_pem)
    return cert_pem, key_pem


OWN = "  tls: {cert: certs/dev.pem, key: certs/dev-key.pem}\n"


def test_own_files_are_copied_with_a_private_key(project, data_home):
    cert_pem, key_pem = make_own(project / "certs")
    c = cfg(project, OWN + "  http_port: 8081\n")
    root = project.resolve()
    plan = plan_for("compose", c, (1, 26, 3))
    assert plan.files[TLS_CERT] == cert_pem and plan.files[TLS_KEY] == key_pem
    assert TLS_CA not in plan.files
    write_plan(root, plan)
    assert mode(root / TLS_KEY) == 0o600
    assert not data_home.exists()  # no local authority is made for a user's own certificate


def _render_fails(project: Path, yaml_balancer: str, expect: str, command: str = "render") -> str:
    text = (project / "scaleout.yaml").read_text().replace("  port: 8080\n", "  port: 8080\n" + yaml_balancer, 1)
    (project / "scaleout.yaml").write_text(text)
    # no engine: every one of these is refused before one is needed
    r = run_cli([command], project, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (project / ".scaleout").exists()  # nothing written
    return r.stderr


@pytest.mark.parametrize("case, expect", [
    ("not_pem", "balancer.tls.cert: certs/dev.pem: not a PEM certificate"),
    ("key_not_pem", "balancer.tls.key: certs/dev-key.pem: not a PEM private key"),
    ("mismatched", "does not belong to the certificate"),
    ("expired", "the certificate expired on"),
    ("not_yet", "is not valid before"),
    ("encrypted", "the private key is encrypted"),
    ("missing", "balancer.tls.cert: certs/dev.pem: cannot be read"),
    ("folder", "is a folder; scaleout reads only regular files"),
    ("link_out", "leads outside the project"),
])
def test_own_files_are_checked_before_anything_is_written(project, tmp_path, case, expect):
    certs = project / "certs"
    if case == "mismatched":
        make_own(certs, mismatched=True)
    elif case == "expired":
        make_own(certs, days=-1, start_days=-30)
    elif case == "not_yet":
        make_own(certs, start_days=2)
    elif case == "encrypted":
        make_own(certs, encrypted=True)
    else:
        make_own(certs)
    if case == "not_pem":
        (certs / "dev.pem").write_text("hello\n")
    elif case == "key_not_pem":
        (certs / "dev-key.pem").write_text("hello\n")
    elif case == "missing":
        (certs / "dev.pem").unlink()
    elif case == "folder":
        (certs / "dev.pem").unlink()
        (certs / "dev.pem").mkdir()
    elif case == "link_out":
        outside = tmp_path / "outside.pem"
        outside.write_bytes((certs / "dev.pem").read_bytes())
        (certs / "dev.pem").unlink()
        (certs / "dev.pem").symlink_to(outside)
    _render_fails(project, OWN, expect)


@pytest.mark.parametrize("balancer, expect", [
    ("  tls: {cert: ../dev.pem, key: k.pem}\n", "balancer.tls: cert: must stay inside the project folder"),
    ("  tls: {cert: /etc/ssl/dev.pem, key: k.pem}\n", "balancer.tls: cert: must be a relative path"),
    ("  tls: {cert: .scaleout/tls/cert.pem, key: k.pem}\n", ".scaleout/ holds scaleout's generated files"),
    ("  tls: {cert: a.pem}\n", "key missing"),
    ("  tls: {cert: a.pem, key: b.pem, ca: c.pem}\n", "unknown key(s) ca"),
    ("  tls: yes-please\n", "must be `local`"),
    ("  tls_names: [app.test]\n", "balancer.tls_names: only with balancer.tls: local"),
    ("  tls: local\n  tls_names: ['App.Test']\n", "must be a lower-case host name"),
    ("  tls: local\n  tls_names: [0.0.0.0]\n", "is not an address a browser connects to"),
    ("  tls: local\n  tls_names: [a.test, a.test]\n", "each name may appear once"),
    ("  http_port: 8081\n", "balancer.http_port: only with balancer.tls"),
    ("  tls: local\n  http_port: 8080\n", "balancer.http_port: must differ from balancer.port"),
    ("  tls: local\n  http_port: 70000\n", "balancer.http_port:"),
])
def test_bad_tls_keys_exit_2_with_the_line(project, balancer, expect):
    err = _render_fails(project, balancer, expect)
    assert "scaleout.yaml:" in err  # file:line: key: problem


def test_tls_flag_means_local_unless_the_file_names_its_own(project):
    plain = parse_config("name: proj\n", project, env={})
    assert plain.with_overrides(Overrides(tls=True)).balancer.tls == "local"
    assert plain.with_overrides(Overrides(tls=None)).balancer.tls is None
    own = cfg(project, OWN)
    assert own.with_overrides(Overrides(tls=True)).balancer.tls == own.balancer.tls


# --- rendering: nginx syntax by version, ports and mounts ---------------------------------------------

@pytest.mark.parametrize("version, new_syntax", [((1, 22, 1), False), ((1, 25, 0), False), ((1, 25, 1), True),
                                                 ((1, 26, 3), True), ((1, 27, 4), True)])
def test_http2_syntax_follows_the_nginx_version(project, version, new_syntax):
    conf = render_nginx(cfg(project, "  tls: local\n  port: 8443\n"), nginx_version=version)
    assert ("listen 443 ssl default_server;" in conf and "http2 on;" in conf) is new_syntax
    assert ("listen 443 ssl http2 default_server;" in conf and "http2 on;" not in conf) is (not new_syntax)
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "Strict-Transport-Security" not in conf.replace("# No Strict-Transport-Security", "")
    # TLS 1.2: forward secrecy (ECDHE) and AEAD ciphers only
    ciphers = conf.split("ssl_ciphers ", 1)[1].split(";")[0].split(":")
    assert ciphers and all(c.startswith("ECDHE-") and ("-GCM-" in c or "CHACHA20-POLY1305" in c) for c in ciphers)
    assert "return 308 https://$host:8443$request_uri;" in conf


def test_tls_needs_the_version_and_plain_http_does_not(project):
    with pytest.raises(ValueError, match="nginx version"):
        render_nginx(cfg(project))
    plain = parse_config("name: proj\n", project, env={})
    assert render_nginx(plain) == render_nginx(plain, nginx_version=(1, 26, 3))
    assert "ssl" not in render_nginx(plain)


def test_redirect_to_443_has_no_port(project):
    conf = render_nginx(cfg(project, "  tls: local\n  port: 443\n"), nginx_version=(1, 22, 1))
    assert "return 308 https://$host$request_uri;" in conf


def test_compose_publishes_https_and_the_redirect_and_mounts_the_certificate(project):
    c = cfg(project, "  tls: local\n  port: 8443\n  http_port: 8081\n  bind: 127.0.0.1\n")
    lb = yaml.safe_load(plan_for("compose", c, (1, 22, 1)).text(COMPOSE_FILE))["services"]["lb"]
    assert lb["ports"] == ["127.0.0.1:8443:443", "127.0.0.1:8081:80"]
    assert {"type": "bind", "source": "./tls", "target": "/etc/scaleout/tls", "read_only": True} in lb["volumes"]
    without_redirect = yaml.safe_load(plan_for("compose", cfg(project), (1, 22, 1)).text(COMPOSE_FILE))
    assert without_redirect["services"]["lb"]["ports"] == ["127.0.0.1:8080:443"]
    plan = plan_for("compose", c, (1, 22, 1))
    assert "ssl_certificate /etc/scaleout/tls/cert.pem;" in plan.text(NGINX_CONF)


def test_tls_config_passes_gixy_but_for_hsts(project, tmp_path):
    import json
    import subprocess
    import sys

    conf = tmp_path / "nginx.conf"
    conf.write_text(plan_for("compose", cfg(project, "  tls: local\n  http_port: 8081\n"), (1, 26, 3)).text(NGINX_CONF))
    r = subprocess.run([sys.executable, "-m", "gixy", "-f", "json", str(conf)], capture_output=True, text=True,
                       timeout=120)
    # the one finding is the HSTS header, left out on purpose: a browser would pin every port of
    # localhost to HTTPS (see the template)
    assert [f["plugin"] for f in json.loads(r.stdout)] == ["hsts_header"], r.stdout


def test_url_and_probe_scheme(project):
    assert cfg(project).url == "https://127.0.0.1:8080"
    assert parse_config("name: proj\n", project, env={}).url == "http://127.0.0.1:8080"


# --- the nginx version cache ---------------------------------------------------------------------------

class FakeContainer:
    def __init__(self, out: bytes):
        self.out, self.removed = out, False

    def start(self):
        pass

    def wait(self, timeout):
        return {"StatusCode": 0}

    def logs(self, stdout, stderr):
        return self.out

    def remove(self, force):
        self.removed = True


class FakeClient:
    def __init__(self, image_id: str, out: bytes):
        self.image_id, self.out, self.created = image_id, out, []
        client = self

        class Images:
            def get(self, ref):
                return type("Img", (), {"id": client.image_id})()

        class Containers:
            def create(self, image, cmd, entrypoint, network_disabled):
                assert cmd == ["-v"] and entrypoint == ["nginx"]
                c = FakeContainer(client.out)
                client.created.append(c)
                return c

        self.images, self.containers = Images(), Containers()


def test_nginx_version_is_asked_once_per_image_id(project, monkeypatch):
    from scaleout.targets import nginx_version as nv

    fake = FakeClient("sha256:aaa", b"nginx version: nginx/1.22.1\n")
    monkeypatch.setattr(nv, "docker_client", lambda: fake)
    c = cfg(project)
    assert nv.balancer_nginx_version(c) == (1, 22, 1)
    assert nv.balancer_nginx_version(c) == (1, 22, 1)
    assert len(fake.created) == 1 and fake.created[0].removed
    # the same tag on another image (a rebuilt or retagged image) is asked again
    fake.image_id, fake.out = "sha256:bbb", b"nginx version: nginx/1.26.3\n"
    assert nv.balancer_nginx_version(c) == (1, 26, 3)
    assert len(fake.created) == 2
    assert nv.nginx_version_for(parse_config("name: proj\n", project, env={})) is None


def test_an_image_without_nginx_version_is_a_config_error(project, monkeypatch):
    from scaleout.targets import nginx_version as nv

    monkeypatch.setattr(nv, "docker_client", lambda: FakeClient("sha256:ccc", b"sh: nginx: not found\n"))
    with pytest.raises(ConfigError, match="images.balancer"):
        nv.balancer_nginx_version(cfg(project))


@pytest.mark.parametrize("out, version", [("nginx version: nginx/1.22.1", (1, 22, 1)),
                                          ("nginx version: openresty/1.25.3.1", (1, 25, 3)),
                                          ("nginx version: nginx/1.27.4 (Ubuntu)", (1, 27, 4)), ("bash: nginx", None)])
def test_parse_nginx_version(out, version):
    from scaleout.targets.nginx_version import parse_nginx_version

    assert parse_nginx_version(out) == version


# --- scaleout trust ------------------------------------------------------------------------------------

def test_trust_steps_name_every_store(tmp_path):
    home = tmp_path / "home"
    for profile in ("abc.default-release", "snapprof"):
        base = home / (".mozilla/firefox" if profile.startswith("abc") else "snap/firefox/common/.mozilla/firefox")
        (base / profile).mkdir(parents=True)
        (base / profile / "cert9.db").write_bytes(b"")
    (home / ".mozilla/firefox/no-db-profile").mkdir()
    ca = tmp_path / "ca.pem"
    steps = tr.install_steps(ca, home, system_dir=tmp_path / "store", which=lambda name: f"/usr/bin/{name}")
    assert [s.store for s in steps] == ["system", "nss", "nss", "nss"]
    assert steps[0].commands[0] == ("install", "-m", "0644", str(ca), str(tmp_path / "store" / tr.SYSTEM_FILE))
    assert steps[0].shell(as_root=False)[1] == "sudo update-ca-certificates"
    chromium = steps[1]
    assert ("certutil", "-d", f"sql:{home}/.pki/nssdb", "-N", "--empty-password") in chromium.commands
    assert any("abc.default-release" in s.what for s in steps) and any("snapprof" in s.what for s in steps)
    missing = tr.install_steps(ca, home, stores=("nss",), which=lambda name: None)
    assert all(s.missing == tr.NSS_HINT for s in missing)


def test_trust_system_store_with_a_stand_in_updater(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    updater = bin_dir / "update-ca-certificates"
    updater.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    updater.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    store = tmp_path / "store"
    store.mkdir()
    ca = ensure_ca()
    steps = tr.install_steps(ca.cert_path, tmp_path, stores=("system",), system_dir=store)
    assert [o.status for o in tr.perform(steps, as_root=True)] == ["done"]
    assert (store / tr.SYSTEM_FILE).read_bytes() == ca.cert_pem
    assert calls.read_text() == "\n"
    # not root: nothing runs, the line says what to type
    skipped = tr.perform(steps, as_root=False)[0]
    assert skipped.status == "skipped" and "sudo install -m 0644" in skipped.detail
    undo = tr.uninstall_steps(tmp_path, stores=("system",), system_dir=store)
    assert [o.status for o in tr.perform(undo, undo=True, as_root=True)] == ["done"]
    assert not (store / tr.SYSTEM_FILE).exists()
    assert calls.read_text() == "\n--fresh\n"
    assert tr.uninstall_steps(tmp_path, stores=("system",), system_dir=store) == []


def _nss_nicknames(db: Path) -> str:
    import subprocess

    return subprocess.run(["certutil", "-d", f"sql:{db}", "-L"], capture_output=True, text=True, check=True).stdout


def test_trust_install_and_uninstall_in_browser_databases(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_DATA_HOME": str(tmp_path / "data")}
    r = run_cli(["trust"], tmp_path, env=env)
    assert r.returncode == 0 and "no local certificate authority yet" in r.stdout
    assert not (tmp_path / "data").exists()

    r = run_cli(["trust", "--install", "--only", "nss"], tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "done" in r.stdout
    db = home / ".pki" / "nssdb"
    assert tr.NICKNAME in _nss_nicknames(db)
    assert mode(tmp_path / "data" / "scaleout" / "ca-key.pem") == 0o600
    # twice is fine
    assert run_cli(["trust", "--install", "--only", "nss"], tmp_path, env=env).returncode == 0

    r = run_cli(["trust"], tmp_path, env=env)
    assert r.returncode == 0
    assert "SHA-256" in r.stdout and f"certutil -d sql:{db} -A -t C,, -n 'scaleout local CA'" in r.stdout

    r = run_cli(["trust", "--uninstall", "--only", "nss"], tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert tr.NICKNAME not in _nss_nicknames(db)
    r = run_cli(["trust", "--install", "--uninstall"], tmp_path, env=env)
    assert r.returncode == 2 and "exclude each other" in r.stderr
