"""Which target the probe and bench may load, and the addresses they then connect to.

The host of the URL is resolved once, every address it resolved to is checked (loopback, or one of this
project's own containers, unless the user allowed remote targets), and from then on every connection of
the load, the TLS handshake check and the cache checks goes to exactly those addresses: a name whose DNS
answer changes after the check cannot move the load elsewhere. The name itself stays what is sent as the
Host header and as TLS SNI (and checked in the certificate).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from scaleout.errors import ProbeTargetError, UsageError

__all__ = ["CheckedTarget", "parse_target", "resolve_addresses", "foreign_addresses", "check_target",
           "address_url"]

REMOTE_HINT = "pass --allow-remote if you really mean to send load to another host"


@dataclass(frozen=True)
class CheckedTarget:
    """A URL whose host was resolved and checked: connect to `addresses`, never to `host` again."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def parse_target(url: str) -> tuple[str, int]:
    """(host, port) of an http:// or https:// URL, or a UsageError: checked before anything is resolved or sent."""
    hint = "write it as http://HOST[:PORT] or https://HOST[:PORT], e.g. http://127.0.0.1:8080"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--url: {url!r} is not a valid URL ({exc})", hint=hint) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url: {url!r} must be an http:// or https:// URL with a host", hint=hint)
    if port == 0:
        raise UsageError(f"--url: {url!r}: port 0 cannot be connected to")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"--url: {url!r}: credentials in the URL are not supported",
                         hint="send them as a header with -H 'Authorization: ...'")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve_addresses(url: str) -> tuple[str, ...]:
    """Every address the URL's host resolves to, in the resolver's order without duplicates (one lookup,
    no connection)."""
    import socket

    host, port = parse_target(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ProbeTargetError(f"--url: cannot resolve {host}: {exc.strerror}") from None
    except UnicodeError:
        raise UsageError(f"--url: {host!r} is not a valid host name") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ProbeTargetError(f"--url: {host} resolves to no address")
    return addresses


def foreign_addresses(addresses: Iterable[str], own_addresses: Iterable[str] = ()) -> list[str]:
    """The addresses that are neither loopback nor one of this project's containers."""
    import ipaddress

    own = set(own_addresses)
    return [a for a in addresses if not (ipaddress.ip_address(a.split("%")[0]).is_loopback or a in own)]


def check_target(url: str, allow_remote: bool, own_addresses: Iterable[str] = ()) -> CheckedTarget:
    """Resolve `url`'s host once and refuse it unless every address is loopback or one of this project's
    own containers (or `allow_remote`). Runs before any connection to the target; the result's
    addresses are the only ones the load, the handshake check and the cache checks connect to."""
    host, port = parse_target(url)
    addresses = resolve_addresses(url)
    if not allow_remote:
        foreign = foreign_addresses(addresses, own_addresses)
        if foreign:
            raise ProbeTargetError(
                f"--url: {host} ({foreign[0]}) is not this machine: the probe only loads loopback or this "
                "project's containers", hint=REMOTE_HINT)
    return CheckedTarget(url=url, host=host, port=port, addresses=addresses)


def address_url(url: str, address: str) -> str:
    """`url` with its host replaced by `address` (what a client connects to; Host and SNI are set apart)."""
    parts = urlsplit(url)
    host = f"[{address.replace('%', '%25')}]" if ":" in address else address
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, parts.query, parts.fragment))
