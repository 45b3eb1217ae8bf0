"""Send a flow's steps through the balancer's published origin, each pinned to a named replica.

Every run has its own cookie jar (a browser's: cookies the answers set are sent back; a recording's stale
`Cookie` headers were dropped by the readers). Nothing is sent to a container's address.
"""

from __future__ import annotations

from collections.abc import Sequence

from scaleout.errors import ExitCode, NotRunningError, ScaleoutError
from scaleout.replay.flow import Answer, Flow, Step
from scaleout.replay.httpfile import TemplateError, resolve, target_path
from scaleout.replay.secret import PIN_HEADER

__all__ = ["Runner", "PinError"]


class PinError(ScaleoutError):
    """The balancer did not honour the pin route (an old nginx.conf, or a balancer that ignores the secret)."""

    exit_code = ExitCode.NOT_RUNNING


class Runner:
    def __init__(self, flow: Flow, origin: str, secret: str, *, timeout: float = 10.0, verify=True,
                 pins: dict[str, str] | None = None) -> None:
        """`pins`: what the pin header names for each replica (default: the replica's own name; on Swarm the
        container name of its task, which the engine's DNS resolves to that task)."""
        self.flow, self.origin, self.secret = flow, origin.rstrip("/"), secret
        self.pins = dict(pins or {})
        self.timeout, self.verify = timeout, verify
        self.addresses: dict[str, set[str]] = {}  # replica -> X-Upstream-Addr seen while pinned to it

    def _request(self, client, step: Step, replica: str, named: dict[str, Answer]) -> Answer:
        import httpx

        variables = dict(self.flow.variables)
        try:
            if self.flow.templated:
                target = target_path(resolve(step.target, variables, named))
                headers = [(k, resolve(v, variables, named)) for k, v in step.headers]
                body = resolve(step.body.decode("utf-8"), variables, named).encode() if step.body else step.body
            else:
                target, headers, body = step.target, list(step.headers), step.body
        except TemplateError as exc:
            return Answer(0, replica=replica, error=f"not sent: {exc}")
        headers.append((PIN_HEADER, f"{self.secret}:{self.pins.get(replica, replica)}"))
        try:
            resp = client.request(step.method, self.origin + target, headers=headers, content=body)
        except httpx.ConnectError as exc:
            raise NotRunningError(
                f"replay: the balancer at {self.origin} does not answer ({exc})", hint="start it with `scaleout up`"
            ) from None
        except httpx.HTTPError as exc:
            return Answer(0, replica=replica, error=type(exc).__name__)
        addr = resp.headers.get("x-upstream-addr")
        if addr:
            self.addresses.setdefault(replica, set()).add(addr.split(",")[-1].strip())
        return Answer(resp.status_code, list(resp.headers.multi_items()), resp.content, replica)

    def run(self, plan: Sequence[str], label: str = "") -> list[Answer]:
        """One run of the first len(plan) steps, step i pinned to plan[i], with a fresh cookie jar."""
        import httpx

        named: dict[str, Answer] = {}
        out: list[Answer] = []
        with httpx.Client(timeout=self.timeout, verify=self.verify, follow_redirects=False) as client:
            for step, replica in zip(self.flow.steps, plan, strict=False):  # plan may stop early
                ans = self._request(client, step, replica, named)
                out.append(ans)
                if step.name:
                    named[step.name] = ans
        return out

    def check_pinned(self) -> None:
        """PinError unless every replica's pinned requests went to one address, a different one per replica."""
        seen: dict[str, str] = {}
        for replica, addrs in self.addresses.items():
            if len(addrs) != 1:
                raise PinError(
                    f"replay: requests pinned to {replica} were served by {', '.join(sorted(addrs))}: "
                    "the balancer does not honour the pin route",
                    hint="run `scaleout up` again so the balancer gets this stack's pin secret",
                )
            addr = next(iter(addrs))
            if addr in seen:
                raise PinError(
                    f"replay: requests pinned to {seen[addr]} and to {replica} were both served by {addr}: "
                    "the balancer does not honour the pin route",
                    hint="run `scaleout up` again so the balancer gets this stack's pin secret",
                )
            seen[addr] = replica
