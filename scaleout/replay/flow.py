"""The parsed flow both readers (HAR, .http) produce: steps in file order, and the answers a run records."""

from __future__ import annotations

from dataclasses import dataclass, field

from scaleout.errors import UsageError

__all__ = ["Step", "Flow", "Answer", "FlowError", "DROPPED_HEADERS", "MAX_STEPS", "MAX_FILE_BYTES"]

MAX_STEPS = 200
MAX_FILE_BYTES = 50 * 1024 * 1024

# Headers the runner owns: framing, hop-by-hop, the origin, compression and the jar's cookies.
DROPPED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "accept-encoding",
        "cookie",
    }
)


class FlowError(UsageError):
    """A flow file that cannot be replayed: the message names the file and the line or entry."""


@dataclass(frozen=True)
class Step:
    """One request. In .http files url/headers/body may hold `{{...}}`, resolved when the step is sent."""

    index: int  # counted from 1 in file order of the replayed requests
    method: str
    target: str  # path and query, or an absolute URL (rewritten to the balancer's origin when sent)
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    name: str | None = None  # `# @name login` in .http files
    where: str = ""  # "file:line" or "file entry N", for messages


@dataclass(frozen=True)
class Flow:
    source: str
    steps: tuple[Step, ...]
    skipped_other_origins: int = 0
    variables: tuple[tuple[str, str], ...] = ()
    templated: bool = False  # steps carry {{...}} to resolve at send time


@dataclass
class Answer:
    """What one step got back in one run."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    replica: str = ""
    error: str = ""  # transport failure or unresolvable template

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def set_cookie_names(self) -> tuple[str, ...]:
        names = []
        for k, v in self.headers:
            if k.lower() == "set-cookie":
                names.append(v.split("=", 1)[0].strip())
        return tuple(sorted(set(names)))
