"""Certificates for the balancer's TLS (`balancer.tls`), made with the `cryptography` library.

- `local`: one certificate authority per user, created once in the user's data folder
  ($XDG_DATA_HOME/scaleout, else ~/.local/share/scaleout; folder 0700, key 0600), and per project a
  certificate it signs for localhost, 127.0.0.1, ::1, `balancer.bind` and `balancer.tls_names`. The
  project's certificate is reused while it is valid for more than RENEW_DAYS, signed by the current
  authority and names exactly the same hosts; otherwise a new one is issued. Browsers trust it once
  the authority is trusted (`scaleout trust`, scaleout/tls/trust.py).
- `{cert, key}`: the user's own files (from mkcert, say), checked here and copied into .scaleout/tls/.

Either way the files nginx reads are part of the Plan (`tls_files`), so scaleout.files writes them
atomically, under the ledger, the key with mode 0600.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import ipaddress
import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleout.config.model import Config
from scaleout.config.sections import TlsFiles
from scaleout.errors import CertificateError, ConfigError, UnsafePathError
from scaleout.files import atomic_write, confined, read_project_file
from scaleout.layout import CONFIG_FILE, TLS_CA, TLS_CERT, TLS_KEY

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CA_DAYS = 3650
# 397 days: the longest lifetime that every browser accepts for a server certificate
LEAF_DAYS = 397
RENEW_DAYS = 30  # issue a new certificate when the current one has less left than this
MAX_PEM_BYTES = 64 * 1024
ENV_DATA_HOME = "XDG_DATA_HOME"


def data_dir(env: dict[str, str] | None = None) -> Path:
    """The user's scaleout data folder: $XDG_DATA_HOME/scaleout, else ~/.local/share/scaleout."""
    env = os.environ if env is None else env
    base = env.get(ENV_DATA_HOME, "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "scaleout"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _pem_cert(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _spki(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _new_key() -> Any:
    # P-256: what every browser and nginx build speaks, and fast to make
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


# --- the local certificate authority ---------------------------------------------------------------

@dataclass(frozen=True)
class LocalCA:
    """The user's local certificate authority: its certificate, key and where they live."""

    cert: Any  # cryptography.x509.Certificate
    key: Any
    folder: Path

    @property
    def cert_path(self) -> Path:
        return self.folder / CA_CERT_FILE

    @property
    def cert_pem(self) -> bytes:
        return _pem_cert(self.cert)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate, as browsers show it (AB:CD:...)."""
        from cryptography.hazmat.primitives import hashes

        return ":".join(f"{b:02X}" for b in self.cert.fingerprint(hashes.SHA256()))

    @property
    def name(self) -> str:
        from cryptography.x509.oid import NameOID

        return self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Two `up`s of different projects at once must not both create an authority."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _private_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise CertificateError(f"{folder} is not a folder (a symbolic link?): scaleout keeps its certificate "
                               "authority there", hint=f"remove {folder}, or set {ENV_DATA_HOME} elsewhere")
    if stat.S_IMODE(st.st_mode) != 0o700 and st.st_uid == os.getuid():
        os.chmod(folder, 0o700)


def _ca_subject_name() -> str:
    try:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        who = "this machine"
    return f"scaleout local CA {who}"[:64]


def _create_ca(folder: Path, now: dt.datetime) -> LocalCA:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scaleout local development CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, _ca_subject_name()),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        # path length 0: it signs server certificates, never another authority
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    # the key first, 0600 from the moment it exists; the certificate only after it, so that a half-made
    # authority is never a certificate without its key
    atomic_write(folder / CA_KEY_FILE, _pem_key(key), mode=0o600)
    atomic_write(folder / CA_CERT_FILE, _pem_cert(cert), mode=0o644)
    return LocalCA(cert, key, folder)


def _load_ca(folder: Path, now: dt.datetime) -> LocalCA:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = folder / CA_CERT_FILE, folder / CA_KEY_FILE
    hint = (f"move {folder} away (and `scaleout trust --uninstall` the old one first); the next `scaleout up` "
            "makes a new authority, which browsers must trust again")
    try:
        for path in (cert_path, key_path):
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_PEM_BYTES:
                raise CertificateError(f"{path} is not a regular file of a certificate authority", hint=hint)
        if stat.S_IMODE(os.lstat(key_path).st_mode) & 0o077:
            os.chmod(key_path, 0o600)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"the local certificate authority in {folder} cannot be read: {exc}",
                               hint=hint) from None
    except OSError as exc:
        raise CertificateError(f"the local certificate authority in {folder} cannot be read: {exc.strerror}",
                               hint=hint) from None
    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise CertificateError(f"{key_path} is not the key of {cert_path}", hint=hint)
    if cert.not_valid_after_utc - now < dt.timedelta(days=RENEW_DAYS):
        raise CertificateError(f"the local certificate authority {cert_path} expires on "
                               f"{cert.not_valid_after_utc:%Y-%m-%d}", hint=hint)
    return LocalCA(cert, key, folder)


def ensure_ca(folder: Path | None = None, now: dt.datetime | None = None) -> LocalCA:
    """The user's local certificate authority, created on first use. Never replaces an existing one:
    browsers that trust it would stop trusting every certificate it signed."""
    folder = data_dir() if folder is None else folder
    now = now or _now()
    _private_folder(folder)
    with _folder_lock(folder):
        have = [p.name for p in (folder / CA_CERT_FILE, folder / CA_KEY_FILE) if os.path.lexists(p)]
        if not have:
            return _create_ca(folder, now)
        if len(have) == 1:
            missing = CA_KEY_FILE if have == [CA_CERT_FILE] else CA_CERT_FILE
            raise CertificateError(f"the local certificate authority in {folder} is incomplete: {missing} is missing",
                                   hint=f"restore it, or move {folder / have[0]} away to make a new authority")
        return _load_ca(folder, now)


def find_ca(folder: Path | None = None) -> LocalCA | None:
    """The user's authority if it exists (for `scaleout trust`), without creating one."""
    folder = data_dir() if folder is None else folder
    if not (folder / CA_CERT_FILE).exists() and not (folder / CA_KEY_FILE).exists():
        return None
    return ensure_ca(folder)


# --- the project's certificate -----------------------------------------------------------------------

def wanted_names(config: Config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS names, IP addresses) the local certificate must name: localhost, the loopback addresses,
    the address the balancer is published on, and balancer.tls_names."""
    dns = ["localhost"]
    ips = ["127.0.0.1", "::1"]
    bind = ipaddress.ip_address(config.balancer.bind)
    if not bind.is_unspecified:
        ips.append(str(bind))
    for name in config.balancer.tls_names:
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.append(name)
    return tuple(dict.fromkeys(dns)), tuple(dict.fromkeys(ips))


def cert_names(cert: Any) -> tuple[frozenset[str], frozenset[str]]:
    """(DNS names, IP addresses) in a certificate's subjectAltName."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(), frozenset()
    return (frozenset(san.get_values_for_type(x509.DNSName)),
            frozenset(str(ip) for ip in san.get_values_for_type(x509.IPAddress)))


def issue_leaf(ca: LocalCA, dns: tuple[str, ...], ips: tuple[str, ...], project: str,
               now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A server certificate signed by `ca` for these names: (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or _now()
    key = _new_key()
    san = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scaleout local development"),
            x509.NameAttribute(NameOID.COMMON_NAME, project[:64]),
        ]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(min(now + dt.timedelta(days=LEAF_DAYS), ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return _pem_cert(cert), _pem_key(key)


def leaf_reusable(cert_pem: bytes, key_pem: bytes, ca: LocalCA, dns: tuple[str, ...], ips: tuple[str, ...],
                  now: dt.datetime | None = None) -> bool:
    """Whether the project's current certificate can stay: it parses, its key matches, `ca` signed it,
    it is valid for more than RENEW_DAYS and names exactly `dns` and `ips`."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    now = now or _now()
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return (_spki(cert.public_key()) == _spki(key.public_key())
            and cert.not_valid_before_utc <= now
            and cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_DAYS)
            and cert_names(cert) == (frozenset(dns), frozenset(ips)))


def _read_generated(root: Path, rel: str) -> bytes | None:
    """A file scaleout wrote earlier under .scaleout/, or None (missing, not a regular file, too big)."""
    path = confined(root, rel)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_PEM_BYTES:
        return None
    return path.read_bytes()


# --- the user's own certificate ----------------------------------------------------------------------

def check_user_files(cert_pem: bytes, key_pem: bytes, files: TlsFiles, now: dt.datetime | None = None) -> None:
    """The user's certificate (chain, server certificate first) and key are PEM, belong together and are
    valid now; ConfigError (exit 2) naming the key in scaleout.yaml and the file otherwise."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    now = now or _now()
    where_cert = f"{CONFIG_FILE}: balancer.tls.cert: {files.cert}"
    where_key = f"{CONFIG_FILE}: balancer.tls.key: {files.key}"
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ConfigError(f"{where_cert}: not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                          hint="point cert at the certificate file, key at its private key") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ConfigError(f"{where_key}: the private key is encrypted; nginx would ask for its passphrase "
                          "at every start",
                          hint="use an unencrypted key (mkcert makes one), kept out of version control") from None
    except ValueError:
        raise ConfigError(f"{where_key}: not a PEM private key (-----BEGIN PRIVATE KEY-----)",
                          hint="point key at the private key file, cert at the certificate") from None
    leaf = chain[0]
    if _spki(leaf.public_key()) != _spki(key.public_key()):
        raise ConfigError(f"{where_key}: this key does not belong to the certificate in {files.cert}",
                          hint="give the key that was made together with the certificate")
    if leaf.not_valid_after_utc <= now:
        raise ConfigError(f"{where_cert}: the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}",
                          hint="make a new one (e.g. mkcert), or use `balancer.tls: local`")
    if leaf.not_valid_before_utc > now:
        raise ConfigError(f"{where_cert}: the certificate is not valid before "
                          f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                          hint="check this machine's clock")


def _read_user_file(root: Path, rel: str, key: str) -> bytes:
    try:
        return read_project_file(root, rel, max_bytes=MAX_PEM_BYTES, what=f"{CONFIG_FILE}: balancer.tls.{key}:")
    except UnsafePathError as exc:
        raise ConfigError(exc.message, hint="give a regular file inside the project") from None


# --- the Plan's TLS files ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TlsPlan:
    files: dict[str, bytes]
    modes: dict[str, int]
    reused: bool  # the project's certificate stayed as it was
    ca: LocalCA | None  # with `local`


def tls_files(config: Config, now: dt.datetime | None = None, ca_folder: Path | None = None) -> TlsPlan:
    """What the balancer's TLS needs under .scaleout/tls/: the certificate, its key (0600) and, with
    `local`, a copy of the authority's certificate. With `local` this may create the user's authority
    (once) and issue a certificate; nothing in the project is written here."""
    tls = config.balancer.tls
    root = config.project_dir.resolve()
    modes = {TLS_KEY: 0o600}
    if isinstance(tls, TlsFiles):
        cert, key = _read_user_file(root, tls.cert, "cert"), _read_user_file(root, tls.key, "key")
        check_user_files(cert, key, tls, now)
        return TlsPlan({TLS_CERT: cert, TLS_KEY: key}, modes, reused=False, ca=None)
    if tls != "local":
        raise ValueError(f"tls_files: balancer.tls is {tls!r}")
    ca = ensure_ca(ca_folder, now)
    dns, ips = wanted_names(config)
    old_cert, old_key = _read_generated(root, TLS_CERT), _read_generated(root, TLS_KEY)
    if old_cert is not None and old_key is not None and leaf_reusable(old_cert, old_key, ca, dns, ips, now):
        cert, key, reused = old_cert, old_key, True
    else:
        (cert, key), reused = issue_leaf(ca, dns, ips, config.name, now), False
    return TlsPlan({TLS_CERT: cert, TLS_KEY: key, TLS_CA: ca.cert_pem}, modes, reused=reused, ca=ca)


def check_tls_config(config: Config) -> None:
    """With `balancer.tls: {cert, key}`, check the user's files now (ConfigError, exit 2)."""
    tls = config.balancer.tls
    if isinstance(tls, TlsFiles):
        root = config.project_dir.resolve()
        check_user_files(_read_user_file(root, tls.cert, "cert"), _read_user_file(root, tls.key, "key"), tls)
