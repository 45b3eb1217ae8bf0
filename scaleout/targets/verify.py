"""The last step of `up` (first start, rescale, update) on every engine: proof that the balancer routes
exactly the replicas it was asked for before "ready" is said.

Two readings must agree: the routing its health watcher installed (templates/nginx/lb.sh writes one
`name up|down address` line per upstream server of the configuration nginx runs) lists every wanted
replica `up` and no other; and a request through the published port is answered by workers running that
configuration (the `X-Scaleout-Config` number of /_scaleout/ping equals the number lb.sh gave it). A
reload that failed or was skipped, or a balancer kept with its old configuration, fails `up` naming the
replicas that get no traffic (or still get it), instead of a success message over a smaller stack.

The watcher may need a check or two to route a replica that just turned healthy, so both are polled for
up to VERIFY_S.
"""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scaleout.errors import UnhealthyError
from scaleout.layout import ROUTING_FILE, WATCH_FALL, WATCH_INTERVAL_S

GENERATION_FILE = ROUTING_FILE.rsplit("/", 1)[0] + "/generation"  # lb.sh: the number of the installed config
VERIFY_S = WATCH_INTERVAL_S * (WATCH_FALL + 2) + 10.0


@dataclass(frozen=True)
class RoutingCheck:
    """What one reading found: the wanted replicas not routed, the names routed that are not wanted, and
    whether the served configuration is the one the routing file describes."""

    missing: tuple[str, ...]
    extra: tuple[str, ...]
    served: str | None  # X-Scaleout-Config of a request through the balancer
    installed: str | None  # the number lb.sh gave the configuration it installed

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra and self.served is not None and self.served == self.installed

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"not routed (no traffic): {', '.join(self.missing)}")
        if self.extra:
            parts.append(f"still routed though not asked for: {', '.join(self.extra)}")
        if not parts and self.served != self.installed:
            parts.append(f"nginx serves configuration {self.served or '(none)'}, but the watcher installed "
                         f"{self.installed or '(none)'}: the reload did not take")
        return "; ".join(parts)


def compare(routing: Mapping[str, bool], wanted: list[str], served: str | None, installed: str | None
            ) -> RoutingCheck:
    """One reading of the balancer's `routing` (upstream name -> routed now) against the `wanted` replica
    names (pure)."""
    missing = tuple(w for w in wanted if not routing.get(w))
    extra = tuple(n for n, up in routing.items() if n not in wanted and up)
    return RoutingCheck(missing, extra, served, installed)


def served_generation(url: str, verify: ssl.SSLContext | bool, timeout_s: float = 2.0) -> str | None:
    """The X-Scaleout-Config header of /_scaleout/ping through the published port (None: no answer)."""
    parts = urlsplit(url)
    try:
        if parts.scheme == "https":
            if isinstance(verify, ssl.SSLContext):
                context = verify
            else:
                context = ssl.create_default_context()
                if not verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=timeout_s, context=context)
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)
        try:
            conn.request("GET", "/_scaleout/ping")
            resp = conn.getresponse()
            resp.read()
            return resp.getheader("X-Scaleout-Config")
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return None


def read_generation(lb: Any) -> str | None:
    code, out = lb.exec_run(["cat", GENERATION_FILE])
    if code != 0:
        return None
    return out.decode(errors="replace").strip() or None


def verify_routing(stack: Any, wanted: list[str], timeout_s: float = VERIFY_S) -> None:
    """Poll until the balancer of `stack` (a ComposeStack) routes exactly `wanted` and serves that
    configuration; UnhealthyError naming what differs after `timeout_s`."""
    from scaleout.targets.runner import balancer_verify, engine_errors

    verify = balancer_verify(stack.config.balancer.tls, stack.dir)
    deadline = time.monotonic() + timeout_s
    while True:
        lb = stack.lb_container()
        if lb is None:
            raise UnhealthyError(f"the load balancer of {stack.config.project} is not running after `up`",
                                 hint="`scaleout logs lb` shows why it stopped")
        with engine_errors("reading the balancer's routing"):
            routing = stack.balancer.routing()
            installed = read_generation(lb)
        check = compare(routing, wanted, served_generation(stack.config.url, verify), installed)
        if check.ok:
            return
        if time.monotonic() >= deadline:
            raise UnhealthyError(
                f"the balancer does not route exactly the {len(wanted)} replica(s) asked for after "
                f"{timeout_s:.0f}s: {check.describe()}",
                hint="`scaleout logs lb` shows what its health watcher sees; `scaleout up` again reloads it")
        time.sleep(0.25)


def start_balancer(stack: Any, early: Any, replacing: Any, plan: Any) -> None:
    """Start (or recreate) the balancer of `stack` (a ComposeStack): `early` a BalancerCreation to start, else
    Compose's `up`. After a decision to recreate `replacing`, a new container must run: if Compose kept the
    old one (it saw nothing to change), the new configuration is loaded into it by a tested reload."""
    from scaleout.layout import LB_SERVICE, NGINX_CONF, WATCH_ENV

    if early is not None:
        early.start()
    else:
        stack.run_cli(["up", "-d", "--no-build", LB_SERVICE], "starting the load balancer")
    if replacing is None:
        return
    new = stack.lb_container()
    if new is None or new.id != replacing.id:
        return
    stack.progress("Compose kept the balancer's container: loading the new configuration by a reload")
    stack.balancer.reload(plan.text(NGINX_CONF), plan.text(WATCH_ENV))
