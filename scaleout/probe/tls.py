"""TLS for the probe: how an https:// target is spoken to (settings every worker process turns into its own
ssl.SSLContext: a context cannot be pickled), and what the TLS of a run negotiated."""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class TlsSpec:
    """How an https:// target is spoken to. Settings, not an ssl.SSLContext: every worker process builds
    its own context from them (client_context)."""

    server_hostname: str  # sent as SNI and matched against the certificate's names
    cafile: str | None = None  # the authorities to trust; None: the system's store
    verify: bool = True  # False only when the user asked (--insecure)


@dataclass
class TlsStats:
    """What the TLS of one run looked like: new TLS connections, and what the first one negotiated."""

    handshakes: int = 0
    version: str = ""
    cipher: str = ""
    alpn: str = ""

    def merge(self, other: TlsStats) -> None:
        self.handshakes += other.handshakes
        self.version = self.version or other.version
        self.cipher = self.cipher or other.cipher
        self.alpn = self.alpn or other.alpn


def client_context(tls: TlsSpec) -> ssl.SSLContext:
    """The client side of TLS for the probe: verified against `tls.cafile` (or the system's store) unless
    the user turned verification off, offering only HTTP/1.1 by ALPN (the engine speaks nothing else,
    and nginx with HTTP/2 would otherwise choose h2). OSError or ssl.SSLError for an unreadable cafile."""
    if tls.verify:
        ctx = ssl.create_default_context(cafile=tls.cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def negotiated(stats: TlsStats, transport) -> None:
    """Note what a new TLS connection agreed on (the first one's: every connection asks the same)."""
    stats.handshakes += 1
    if not stats.version:
        obj = transport.get_extra_info("ssl_object")
        if obj is not None:
            cipher = obj.cipher()
            stats.version, stats.cipher = obj.version() or "", cipher[0] if cipher else ""
            stats.alpn = obj.selected_alpn_protocol() or ""
