"""`scaleout probe`: load through the balancer, attribution of every response to a replica, and the
verdict -> a `ProbeResult`.

Prints nothing. The load engine lives in scaleout/probe/engine.py (protocol-level HTTP/1.1 on uvloop and
httptools, several processes; see benchmarks/RESULTS.md for why), the statistics in scaleout/probe/stats.py,
the rules of the verdict in scaleout/probe/verdict.py. `probe_project` is the whole command: which target,
which replicas to expect, the load, the cache checks, the verdict. `ProbeResult.to_dict()` is the
`--json` output; its schema is documented in docs/probe-json.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from scaleout.errors import ProbeTargetError, UsageError
from scaleout.probe.engine import ERROR_CLASSES, LoadSpec, Sample, Samples, run_load
from scaleout.probe.stats import breakdown, chi_square_p, latency_summary, percentile
from scaleout.probe.target import CheckedTarget, check_target, parse_target
from scaleout.probe.tls import TlsSpec, TlsStats
from scaleout.probe.verdict import (
    Expectation,
    Observed,
    decide,
    keys_served,
    replica_order,
    routed_replicas,
    unrouted_replicas,
)

__all__ = ["sticky_carrier", "ERROR_CLASSES", "SCHEMA", "ProbeOptions", "Sample", "Samples", "BackendStats",
           "ProbeResult", "ProbeAsk", "summarize", "observe", "judge", "check_request_line", "request_headers",
           "parse_target", "check_target", "CheckedTarget", "run_probe", "probe_project", "chi_square_p",
           "latency_summary", "percentile", "tls_settings", "check_handshake", "tls_report"]

SCHEMA = "scaleout.probe/1"  # bump on any incompatible change of the JSON (docs/probe-json.md)

ProbeOptions = LoadSpec


@dataclass
class BackendStats:
    name: str
    address: str
    count: int
    share: float
    latency_ms: dict[str, float]
    status_codes: dict[str, int]
    keys: int = 0  # distinct sticky keys this replica served


@dataclass
class ProbeResult:
    url: str
    requests: int
    ok: int
    failed: int
    rps: float
    duration_s: float
    backends: list[BackendStats]
    status_codes: dict[str, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]
    strategy: str = "round_robin"
    verdict: str = "pass"
    reasons: list[str] = field(default_factory=list)
    spread: dict[str, float | None] = field(default_factory=dict)
    sticky: dict[str, int] | None = None
    cache_checks: list[dict] = field(default_factory=list)
    load: dict = field(default_factory=dict)
    unattributed: int = 0  # answered, but without X-Upstream-Addr
    failed_rules: list[str] = field(default_factory=list)  # ids of scaleout.probe.verdict.RULES behind `reasons`
    tls: dict | None = None  # over https://: what was negotiated and checked (tls_report)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}


# --- statistics --------------------------------------------------------------------------------

def summarize(samples: Samples, duration_s: float, url: str, names: dict[str, str],
              load: dict | None = None) -> ProbeResult:
    """The report of what the load saw; `names` maps `ip:port` to replica names (unknown addresses keep the address)."""
    b = breakdown(samples)
    backends = [BackendStats(name=names.get(addr, addr), address=addr, **st) for addr, st in b["backends"].items()]
    backends.sort(key=lambda x: replica_order(x.name))
    total = b["requests"]
    return ProbeResult(
        url=url,
        requests=total,
        ok=b["ok"],
        failed=total - b["ok"],
        rps=round(total / duration_s, 1) if duration_s > 0 else 0.0,
        duration_s=round(duration_s, 3),
        backends=backends,
        status_codes=b["status_codes"],
        errors=b["errors"],
        latency_ms=b["latency_ms"],
        load=load or {},
        unattributed=b["unattributed"],
    )


def observe(result: ProbeResult, samples: Samples) -> Observed:
    """What the verdict reads from a summarized probe: per-replica counts and which replicas each key reached."""
    names = {b.address: b.name for b in result.backends}
    counts: dict[str, int] = {}
    for b in result.backends:  # a replica on two networks answers from two addresses
        counts[b.name] = counts.get(b.name, 0) + b.count
    return Observed(requests=result.requests, ok=result.ok, failed=result.failed, counts=counts,
                    errors=result.errors, status_codes=result.status_codes,
                    keys=keys_served(samples.key_answers(), names))


def judge(
    result: ProbeResult,
    samples: Samples,
    *,
    strategy: str,
    expected: list[str] | None,
    weights: dict[str, int] | None = None,
    backups: tuple[str, ...] = (),
    tolerance: float = 0.3,
    max_failed: int = 0,
    cache_checks: list[dict] | None = None,
    unrouted: tuple[str, ...] = (),
) -> ProbeResult:
    """Set the verdict of `result` by the rules of scaleout/probe/verdict.py: no failed requests, every expected
    replica served, and the spread the strategy promises (even, weighted, or sticky per key)."""
    expect = Expectation(strategy=strategy, replicas=None if expected is None else tuple(expected),
                         weights=dict(weights or {}), backups=tuple(backups), tolerance=tolerance,
                         max_failed=max_failed, unrouted=tuple(unrouted))
    v = decide(observe(result, samples), expect, cache_checks or ())
    result.strategy = strategy
    result.cache_checks = list(cache_checks or [])
    result.spread, result.sticky = v.spread, v.sticky
    result.reasons = v.reasons
    result.failed_rules = list(dict.fromkeys(f.rule for f in v.findings))
    result.verdict = v.verdict
    return result


# --- what the probe sends ------------------------------------------------------------------------

# framing and hop-by-hop headers belong to the probe's own HTTP/1.1 (RFC 7230 6.1, 3.3): a user's copy would
# break the framing of the load or reach the balancer as something else than what the probe measures
REFUSED_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te",
                             "trailer", "expect"})
TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
HOST_RE = re.compile(r"\A(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z")


def check_request_line(method: str, path: str) -> None:
    """The method and path the request line is made of: UsageError unless each is what HTTP/1.1 allows there
    (a method of upper-case ASCII letters; a path of visible ASCII, no space, tab or control character), so the
    probe never writes a malformed request line."""
    if not path.startswith("/") or not all("!" <= c <= "~" for c in path):
        bad = next((c for c in path if not "!" <= c <= "~"), None)
        what = f" (it contains {bad!r})" if bad is not None else ""
        raise UsageError(f"--path: {path!r} must start with / and hold visible ASCII only{what}: no space, tab or "
                         "control character", hint="percent-encode other characters, e.g. %20 for a space")
    if not (0 < len(method) <= 32 and method.isascii() and method.isalpha() and method.isupper()):
        raise UsageError(f"--method: {method!r} must be an HTTP method such as GET (upper-case ASCII letters, "
                         "at most 32)")


def request_headers(values: Iterable[str], host: str | None = None) -> tuple[tuple[str, str], ...]:
    """`-H 'Name: value'` options as the probe sends them, plus `--host` as the Host header; UsageError otherwise."""
    out = []
    for h in values:
        name, sep, value = h.partition(":")
        if not sep or not name:
            raise UsageError(f"--header: {h!r} must look like 'Name: value'")
        if any(c not in TCHAR for c in name):
            raise UsageError(f"--header: {name!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only, "
                             "no space before the colon)")
        low = name.lower()
        if low in REFUSED_HEADERS or low.startswith("proxy-"):
            raise UsageError(f"--header: {name} is a hop-by-hop or framing header: the probe sets the connection's "
                             "headers itself")
        if low == "host":
            raise UsageError("--header: Host is set by the probe", hint="use --host NAME to send another Host header")
        value = value.strip(" \t")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise UsageError(f"--header: the value of {name} must be Latin-1 text") from None
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
            raise UsageError(f"--header: the value of {name} contains a control character (CR, LF, NUL, tab ...)")
        out.append((name, value))
    if host is not None:
        if not HOST_RE.match(host) or (":" in host.rsplit("]", 1)[-1] and not 0 < int(host.rsplit(":", 1)[1]) < 65536):
            raise UsageError(f"--host: {host!r} must be a host name or address, with an optional :PORT")
        out.append(("Host", host))
    return tuple(out)


# --- TLS ---------------------------------------------------------------------------------------

TLS_HINT = ("pass --cacert FILE with the authority that signed the balancer's certificate (scaleout's local one: "
            ".scaleout/tls/ca.pem of the project; `scaleout trust --install` makes the system trust it), or "
            "--insecure to skip the check")


def tls_settings(url: str, *, cacert: str | None = None, insecure: bool = False, project_ca: Path | None = None,
                 host_header: str | None = None) -> TlsSpec | None:
    """How the probe speaks to `url`: None for http://. For https:// it trusts --cacert, else the project's
    local authority (`project_ca`, when it exists), else the system's store; --insecure trusts anyone. The
    name checked in the certificate (and sent as SNI) is the --host name when given, else the URL's host."""
    from scaleout.probe.tls import client_context

    if cacert is not None and insecure:
        raise UsageError("--cacert and --insecure exclude each other: one checks the certificate, the other does not")
    parts = urlsplit(url)
    if parts.scheme != "https":
        if cacert is not None or insecure:
            raise UsageError(f"--{'cacert' if cacert is not None else 'insecure'}: {url} is plain HTTP, there is no "
                             "certificate to check")
        return None
    name = parts.hostname or ""
    if host_header:
        name = urlsplit(f"//{host_header}").hostname or name
    if insecure:
        return TlsSpec(server_hostname=name, verify=False)
    if cacert is not None:
        spec = TlsSpec(server_hostname=name, cafile=str(Path(cacert).absolute()))
        try:
            client_context(spec)  # read once here: a bad file is a usage error, not a dead worker process
        except OSError as exc:  # ssl.SSLError included: no certificate in the file
            raise UsageError(f"--cacert: {cacert}: not a readable file of PEM certificates "
                             f"({getattr(exc, 'reason', None) or exc.strerror or exc})") from None
        return spec
    if project_ca is not None and project_ca.is_file():
        return TlsSpec(server_hostname=name, cafile=str(project_ca))
    return TlsSpec(server_hostname=name)


def _trusted(tls: TlsSpec) -> str:
    return tls.cafile or "the system's trusted authorities"


def check_handshake(url: str, tls: TlsSpec, timeout_s: float = 10.0, address: str | None = None) -> None:
    """One TLS handshake before the load, so that a certificate the probe cannot verify is one clear error
    instead of every request failing. A refused or unreachable target is left to the load, which counts it.
    `address`: the checked address to connect to (scaleout.probe.target); SNI stays `tls.server_hostname`."""
    import socket
    import ssl

    from scaleout.probe.target import resolve_addresses
    from scaleout.probe.tls import client_context

    host, port = parse_target(url)
    ctx = client_context(tls)
    if address is None:
        address = resolve_addresses(url)[0]
    try:
        sock = socket.create_connection((address, port), timeout=timeout_s)
    except OSError:
        return
    try:
        with sock, ctx.wrap_socket(sock, server_hostname=tls.server_hostname):
            return
    except ssl.SSLCertVerificationError as exc:
        raise ProbeTargetError(f"probe: the certificate of {host}:{port} is not trusted: {exc.verify_message} "
                               f"(checked against {_trusted(tls)})", hint=TLS_HINT) from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return  # closed during the handshake (a proxy without its target, say): the load counts it
    except ssl.SSLError as exc:  # the server answered, but not with TLS (plain HTTP), or no common protocol
        raise ProbeTargetError(f"probe: the TLS handshake with {host}:{port} failed: {exc.reason or exc}",
                               hint="is this port HTTPS? A plain HTTP port is probed with an http:// URL") from None
    except OSError:
        return  # reset or no answer in time: the load counts it, as over plain HTTP


def tls_report(tls: TlsSpec | None, stats: TlsStats | None) -> dict | None:
    """The `tls` section of the JSON: what was negotiated, how many new TLS connections, whether the
    certificate was verified (false only with --insecure) and against what."""
    if tls is None:
        return None
    stats = stats or TlsStats()
    return {"verified": tls.verify, "trusted": (tls.cafile or "system") if tls.verify else None,
            "server_name": tls.server_hostname, "version": stats.version or None, "cipher": stats.cipher or None,
            "alpn": stats.alpn or None, "handshakes": stats.handshakes}


def load_shape(opts: ProbeOptions, workers: int) -> dict:
    """The `load` section of the JSON: what was asked for, so a result can be reproduced."""
    return {
        "mode": "open" if opts.rate else "closed",
        "requests": None if opts.duration_s else opts.requests,
        "duration_s": opts.duration_s,
        "concurrency": opts.concurrency,
        "rate": opts.rate,
        "workers": workers,
        "method": opts.method,
        "path": opts.path,
        "latency_from": "intended_send" if opts.rate else "send",
    }


def sticky_carrier(strategy: str, hash_key: str) -> tuple[str, str]:
    """How `--sticky-keys` sends its keys so that the balancer hashes them: ("cookie"|"arg"|"header", name).
    Raises UsageError where the probe cannot vary what the balancer hashes."""
    from scaleout.errors import UsageError

    if strategy == "ip_hash":
        raise UsageError(
            "--sticky-keys: ip_hash hashes the client's address, and the probe sends from one address",
            hint="run the probe without --sticky-keys: it then checks that this one client sticks to one replica",
        )
    if strategy != "hash":
        return "cookie", "session"
    for prefix, via in (("$cookie_", "cookie"), ("$arg_", "arg"), ("$http_", "header")):
        if hash_key.startswith(prefix):
            name = hash_key[len(prefix):]
            return via, name.replace("_", "-") if via == "header" else name
    raise UsageError(
        f"--sticky-keys: hash_key {hash_key} is not a cookie ($cookie_NAME), query argument ($arg_NAME) or header "
        "($http_NAME), so the probe cannot send distinct keys"
    )


def run_probe(opts: ProbeOptions, names: dict[str, str],
              progress: Callable[[int, int | None], None] | None = None) -> tuple[ProbeResult, Samples]:
    """Send the load and summarize it (the verdict is set by `judge`)."""
    samples = run_load(opts, progress)
    result = summarize(samples, samples.duration_s, opts.url, names, load_shape(opts, samples.workers))
    result.tls = tls_report(opts.tls, samples.tls)
    return result, samples


@dataclass(frozen=True)
class ProbeAsk:
    """What the user asked `scaleout probe` for: the command's options, already checked one by one."""

    url: str | None = None  # None: this project's balancer
    requests: int = 1000
    concurrency: int = 16
    duration_s: float | None = None
    rate: float | None = None
    workers: int = 0
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()  # a ("Host", ...) pair only when --host asked for it
    timeout_s: float = 10.0
    strategy: str | None = None  # None: what the last `up` deployed
    sticky_keys: int = 0
    tolerance: float = 0.3
    cache_check: bool = True
    allow_remote: bool = False
    target: str | None = None  # compose | swarm; None: the last `up`'s
    cacert: str | None = None  # https://: trust this file's authorities (default: the project's, else the system's)
    insecure: bool = False  # https://: do not verify the certificate


def project_ca(cfg) -> Path | None:
    """The copy of the local authority's certificate that `up` wrote with `balancer.tls: local`."""
    from scaleout.layout import TLS_CA

    return cfg.project_dir / TLS_CA if cfg is not None and cfg.balancer.tls == "local" else None


def _checked_tls(target: CheckedTarget, ask: ProbeAsk, cfg) -> TlsSpec | None:
    """The TLS settings for the target (None over plain HTTP), after one handshake that verified them."""
    host_header = next((v for k, v in ask.headers if k.lower() == "host"), None)
    tls = tls_settings(target.url, cacert=ask.cacert, insecure=ask.insecure, project_ca=project_ca(cfg),
                       host_header=host_header)
    if tls is not None:
        check_handshake(target.url, tls, ask.timeout_s, target.addresses[0])
    return tls


def still_unrouted(stack, before: list[str]) -> list[str]:
    """Those of `before` (replicas not routed when the load began) that the balancer still does not route
    after it: not a rescale that was under way when the probe began."""
    if not before or stack is None:
        return []
    return [n for n in unrouted_replicas(stack.status().replicas) if n in before]


def probe_project(project_dir: Path, ask: ProbeAsk, announce: Callable[[str], None] | None = None,
                  tick: Callable[[int, int | None], None] | None = None) -> ProbeResult:
    """The whole `scaleout probe`: find the target and the replicas the balancer routes to now, refuse a
    target that is not this machine or this project's, send the load, check the cache headers, judge.
    `announce` gets one line before the load starts; `tick` the progress of the load."""
    from scaleout.config.load import load_config
    from scaleout.errors import DockerUnavailableError, NotRunningError, ScaleoutError
    from scaleout.targets import applied_strategy, open_target, resolve_target

    check_request_line(ask.method, ask.path)
    url = ask.url
    if url is not None:
        parse_target(url)  # a malformed URL is a usage error before a project or an engine is read
    cfg = None
    if url is None:
        cfg = load_config(project_dir)
    elif (project_dir / "scaleout.yaml").exists():
        try:
            cfg = load_config(project_dir)
        except ScaleoutError:
            cfg = None  # --url needs no project
    strategy = ask.strategy
    if strategy is None and cfg is not None:
        strategy = applied_strategy(cfg.project_dir)  # what the last `up` deployed (--strategy included)
    strategy = strategy or (cfg.balancer.strategy if cfg else "round_robin")
    hash_key = cfg.balancer.hash_key if cfg else "$cookie_session"
    via, key_name = sticky_carrier(strategy, hash_key) if ask.sticky_keys else ("cookie", "session")

    names: dict[str, str] = {}
    expected = None
    unrouted: list[str] = []
    stack = None
    if cfg is not None:
        stack = open_target(resolve_target(cfg.project_dir, ask.target), cfg)
        try:
            running = stack.status()
            names = stack.address_map()
        except DockerUnavailableError:
            if url is None:
                raise
            running = None  # --url without an engine: responses keep their addresses as names
        if url is None:
            if running is None or not running.running or running.url is None:
                raise NotRunningError(f"project {cfg.project} is not running", hint="run `scaleout up` first")
            url = running.url
        if running is not None and running.running:
            expected = routed_replicas(running.replicas)
            unrouted = unrouted_replicas(running.replicas)
    assert url is not None
    url = url.rstrip("/")
    # the project's containers are known now (none without a project): a replica's own address is allowed,
    # loopback too, nothing else; resolved once, and every connection below goes to the addresses checked
    target = check_target(url, ask.allow_remote, {a.rsplit(":", 1)[0] for a in names})
    tls = _checked_tls(target, ask, cfg)
    opts = ProbeOptions(url=url, addresses=target.addresses, requests=ask.requests, concurrency=ask.concurrency,
                        duration_s=ask.duration_s, path=ask.path, method=ask.method, headers=ask.headers,
                        timeout_s=ask.timeout_s, sticky_keys=ask.sticky_keys, rate=ask.rate, workers=ask.workers,
                        sticky_via=via, sticky_name=key_name, tls=tls)
    if announce is not None:
        shape = f" at {ask.rate:g} req/s" if ask.rate else ""
        announce(f"probing {url}{ask.path} with {ask.concurrency} connections{shape}"
                 + (f" for {ask.duration_s}s" if ask.duration_s else f", {ask.requests} requests"))
    result, samples = run_probe(opts, names, tick)
    checks: list[dict] = []
    if ask.cache_check and cfg is not None:
        from scaleout.probe.cachecheck import check_cache_headers

        checks = check_cache_headers(url, cfg, {k: v for k, v in ask.headers if k.lower() == "host"}, tls,
                                     address=target.addresses[0])
    unrouted = still_unrouted(stack, unrouted)
    return judge(result, samples, strategy=strategy, expected=expected, unrouted=tuple(unrouted),
                 weights=dict(cfg.backend.weights) if cfg else None,
                 backups=tuple(cfg.backend.backup) if cfg else (), tolerance=ask.tolerance, cache_checks=checks)
