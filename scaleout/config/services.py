"""The `services:` of scaleout.yaml (a database or cache beside the replicas), in a Compose-shaped
subset, and the rules it shares with `backend`: environment maps, env files, project-relative paths.

Everything is parsed here into small frozen objects, so renderers never split strings: a volume is a
`VolumeMount`, a published port a `PortMapping`, a health check a `Healthcheck`. Checks that need the
project folder on disk (a bind mount or env file inside the project) are in `scaleout.config.model`.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from scaleout.config.interpolated import Interpolated
from scaleout.config.values import DURATION_HELP, duration_seconds, refuse_zone

__all__ = [
    "Healthcheck",
    "PortMapping",
    "ServiceConfig",
    "ServiceName",
    "VolumeMount",
    "check_image",
    "check_relative_path",
    "check_service_name",
    "env_files",
    "env_map",
    "optional_image",
    "optional_relative_path",
]

ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
REL_PATH = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._/-]*")
SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
RESERVED_SERVICES = ("lb", "backend")  # the balancer, and the replicated service on Swarm / Kubernetes
_REPLICA_LIKE = re.compile(r"backend-[0-9]+")
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CONTAINER_PATH = re.compile(r"/[A-Za-z0-9._@+=,/-]*")
MAX_DURATION_S = 86400
# Docker image reference: [registry[:port]/]path[:tag][@digest], lower-case path components
_IMAGE = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# --- rules shared with backend --------------------------------------------------------------------

def check_relative_path(v: str) -> None:
    """A path relative to the project that cannot leave it by its spelling (links are checked on disk)."""
    if not REL_PATH.fullmatch(v):
        raise ValueError("must be a relative path inside the project (letters, digits, . _ / - only)")
    if ".." in v.split("/"):
        raise ValueError("must stay inside the project folder ('..' is not allowed)")


def check_image(v: str) -> None:
    if not _IMAGE.fullmatch(v):
        raise ValueError("must be an image reference such as nginx:1.27 or registry.example.com/team/app:tag")


def env_map(v: Any) -> Any:
    """An environment as Compose accepts it, a mapping or a list of "KEY=VALUE", as {KEY: Interpolated}.

    Numbers and booleans become strings. A value may hold any character but NUL once interpolated;
    its Compose text, written into the generated file, must be one line."""
    if isinstance(v, (list, tuple)):
        items: dict[Any, Any] = {}
        for i, item in enumerate(v):
            item = Interpolated.of(item)
            if not isinstance(item, Interpolated) or "=" not in item.value or "=" not in item.compose:
                raise ValueError(f"item {i}: must be \"KEY=VALUE\" (to pass a variable from the shell, "
                                 "write KEY=${KEY})")
            key, value = item.value.split("=", 1)
            key_text, text = item.compose.split("=", 1)
            if key_text != key:
                raise ValueError(f"item {i}: the variable name must be written as itself (no ${{...}} before '=')")
            if key in items:
                raise ValueError(f"{key}: set twice")
            items[key] = Interpolated(value, text)
        v = items
    if not isinstance(v, dict):
        return v
    out = {}
    for key, value in v.items():
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            raise ValueError(f"variable name {key!r} must match [A-Za-z_][A-Za-z0-9_]*")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        value = Interpolated.of(value)
        if not isinstance(value, Interpolated):
            raise ValueError(f"{key}: value must be a string, number or boolean (to pass a variable from "
                             "the shell, write ${" + key + "})")
        if "\0" in value.value:
            raise ValueError(f"{key}: value must not contain a NUL character")
        if any(ord(c) < 32 and c != "\t" for c in value.compose):
            raise ValueError(f"{key}: value must not contain newlines or control characters")
        out[key] = value
    return out


def env_files(v: Any) -> Any:
    """`env_file` as Compose accepts it (one path or a list) as a tuple of project-relative paths."""
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        return v
    for i, p in enumerate(v):
        if not isinstance(p, str):
            raise ValueError(f"item {i}: must be a path")
        try:
            check_relative_path(p)
        except ValueError as exc:
            raise ValueError(f"{p!r}: {exc}") from None
    if len(set(v)) != len(v):
        raise ValueError("each file may appear once")
    return tuple(v)


def optional_image(v: str | None) -> str | None:
    """An image reference or None (a field validator of backend and services)."""
    if v is not None:
        check_image(v)
    return v


def optional_relative_path(v: str | None) -> str | None:
    """A project-relative path or None (a field validator of backend and services)."""
    if v is not None:
        check_relative_path(v)
    return v


def check_service_name(v: str) -> str:
    if not SERVICE_NAME.fullmatch(v) or len(v) > 63:
        raise ValueError("a service name is lower-case letters, digits, '_' and '-', starting with a letter or "
                         "digit, at most 63 characters")
    if v in RESERVED_SERVICES:
        raise ValueError("this name is taken: scaleout names its own services lb (the balancer) and backend")
    if _REPLICA_LIKE.fullmatch(v):
        raise ValueError("this name is taken: backend-1, backend-2, ... are the replicas")
    return v


ServiceName = Annotated[str, AfterValidator(check_service_name)]


def _duration(v: Any, *, minimum: float) -> Any:
    """Seconds from a Compose duration ("5s", "1m30s", "500ms") or a number of seconds."""
    if v is None:
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        seconds = float(v)
    elif duration_seconds(v) is not None:
        seconds = duration_seconds(v)
    else:
        raise ValueError(f"must be {DURATION_HELP}, or seconds")
    if not minimum <= seconds <= MAX_DURATION_S:
        raise ValueError(f"must be between {minimum:g}s and {MAX_DURATION_S // 3600}h")
    return seconds


def _command(v: Any) -> Any:
    """A command as Compose accepts it: one string (split by the engine) or a list of arguments."""
    if v is None:
        return v
    v = Interpolated.of(v)
    if isinstance(v, Interpolated):
        if not v.value.strip() or _has_nul(v):
            raise ValueError("must be a non-empty command")
        return v
    if not isinstance(v, (list, tuple)) or not v:
        raise ValueError("must be a string or a non-empty list of strings")
    out = []
    for i, arg in enumerate(v):
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            arg = str(arg)
        arg = Interpolated.of(arg)
        if not isinstance(arg, Interpolated) or _has_nul(arg):
            raise ValueError(f"item {i}: must be a string")
        out.append(arg)
    return tuple(out)


def _has_nul(v: Interpolated) -> bool:
    return "\0" in v.value or "\0" in v.compose


# --- parsed pieces -------------------------------------------------------------------------------------

class VolumeMount(_Model):
    """One entry of `volumes`: a named volume (`data:/var/lib/x`) or a project folder (`./conf:/etc/x:ro`).
    `source` is the volume name, or the folder relative to the project (`.` for the project itself)."""

    kind: Literal["named", "bind"]
    source: str
    target: str
    read_only: bool = False

    @model_validator(mode="before")
    @classmethod
    def _short_syntax(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        parts = v.split(":")
        if len(parts) == 1:
            raise ValueError("write NAME:/path (a named volume) or ./folder:/path (a project folder)")
        if len(parts) > 3:
            raise ValueError("too many ':' (the form is SOURCE:/path[:ro])")
        source, target = parts[0], parts[1]
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise ValueError(f"the mode must be ro or rw, not {mode!r}")
        if source.startswith(("/", "~")):
            raise ValueError("host paths outside the project are not mounted; use a project folder "
                             "(./folder:/path) or a named volume (name:/path)")
        if source == "." or source == ".." or source.startswith(("./", "../")):
            rel = posixpath.normpath(source)
            return {"kind": "bind", "source": rel, "target": target, "read_only": mode == "ro"}
        return {"kind": "named", "source": source, "target": target, "read_only": mode == "ro"}

    @model_validator(mode="after")
    def _check(self) -> VolumeMount:
        if self.kind == "bind":
            if self.source != ".":
                check_relative_path(self.source)
        elif not _VOLUME_NAME.fullmatch(self.source) or len(self.source) > 64:
            raise ValueError("a volume name is letters, digits, '_', '.' and '-' "
                             "(a project folder starts with ./)")
        if not _CONTAINER_PATH.fullmatch(self.target) or ".." in self.target.split("/"):
            raise ValueError("the container path must be absolute, such as /var/lib/data "
                             "(letters, digits, . _ - / only)")
        return self

    def short_syntax(self) -> str:
        """The entry in Compose's short syntax, a bind source relative to the project folder."""
        source = self.source if self.kind == "named" else ("./" + self.source if self.source != "." else ".")
        return f"{source}:{self.target}" + (":ro" if self.read_only else "")


class PortMapping(_Model):
    """One entry of `ports`. `host_ip` None means "the address balancer.bind names": a service is never
    published on every interface unless its entry says 0.0.0.0."""

    host_ip: str | None = None
    host_port: int = Field(ge=1, le=65535)
    container_port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"

    @model_validator(mode="before")
    @classmethod
    def _short_syntax(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            raise ValueError(f"write \"HOST:CONTAINER\" (e.g. \"{v}:{v}\"), quoted")
        if not isinstance(v, str):
            return v
        text, protocol = v, "tcp"
        if "/" in text:
            text, protocol = text.rsplit("/", 1)
            if protocol not in ("tcp", "udp"):
                raise ValueError("the protocol must be tcp or udp")
        parts = text.rsplit(":", 2)
        if len(parts) < 2:
            raise ValueError("write HOST:CONTAINER or IP:HOST:CONTAINER, e.g. \"5432:5432\"")
        ip = parts[0] if len(parts) == 3 else None
        if ip is not None:
            ip = ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip
            refuse_zone(ip)
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                raise ValueError(f"{ip!r} is not an IP address") from None
        host, container = parts[-2], parts[-1]
        for label, port in (("host", host), ("container", container)):
            if not port.isascii() or not port.isdigit() or len(port) > 5:
                raise ValueError(f"the {label} port must be a number (ranges are not supported)")
        return {"host_ip": ip, "host_port": int(host), "container_port": int(container), "protocol": protocol}

    @field_validator("host_ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is not None:
            refuse_zone(v)
            try:
                return str(ipaddress.ip_address(v))
            except ValueError:
                raise ValueError("must be an IP address") from None
        return v

    def short_syntax(self, default_ip: str) -> str:
        """IP:HOST:CONTAINER/PROTOCOL as Compose reads it; `default_ip` (balancer.bind) when none was given."""
        ip = self.host_ip or default_ip
        host = f"[{ip}]" if ":" in ip else ip
        return f"{host}:{self.host_port}:{self.container_port}/{self.protocol}"


def _healthcheck_test(v: Any) -> Any:
    if v is None:
        return v
    v = Interpolated.of(v)
    if isinstance(v, Interpolated):
        if not v.value.strip() or _has_nul(v):
            raise ValueError("must be a non-empty command")
        return (Interpolated.literal("CMD-SHELL"), v)
    if not isinstance(v, (list, tuple)) or not v:
        raise ValueError('must be a string, or a list such as ["CMD", "pg_isready"] or ["CMD-SHELL", "..."]')
    v = tuple(Interpolated.of(a) for a in v)
    if not all(isinstance(a, Interpolated) for a in v):
        raise ValueError('must be a string, or a list such as ["CMD", "pg_isready"] or ["CMD-SHELL", "..."]')
    if any(_has_nul(a) for a in v):
        raise ValueError("must not contain a NUL character")
    head = v[0].value
    if head == "NONE" and len(v) == 1:
        return v
    if head == "CMD" and len(v) >= 2:
        return v
    if head == "CMD-SHELL" and len(v) == 2:
        return v
    raise ValueError('must start with "CMD" (then the program and its arguments), "CMD-SHELL" (then one '
                     'shell command) or be ["NONE"]')


class Healthcheck(_Model):
    """A service's container health check, Compose's shape. `test` is normalized: a string becomes
    ("CMD-SHELL", string), each argument a value with its Compose text."""

    test: tuple[Interpolated, ...] | None = Field(None, repr=False)
    interval: float | None = Field(None, description="seconds (written as a Compose duration, e.g. 1m30s)")
    timeout: float | None = Field(None, description="seconds")
    start_period: float | None = Field(None, description="seconds")
    retries: int | None = Field(None, ge=0, le=1000)
    disable: bool = False

    @field_validator("test", mode="before")
    @classmethod
    def _test(cls, v: Any) -> Any:
        return _healthcheck_test(v)

    @field_validator("interval", "timeout", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> Any:
        return _duration(v, minimum=0.001)

    @field_validator("start_period", mode="before")
    @classmethod
    def _start_period(cls, v: Any) -> Any:
        return _duration(v, minimum=0)

    @model_validator(mode="after")
    def _disable(self) -> Healthcheck:
        if self.disable and self.test is not None and not self._none():
            raise ValueError("disable: true and a test cannot both be set (remove one)")
        return self

    def _none(self) -> bool:
        return self.test is not None and tuple(a.value for a in self.test) == ("NONE",)

    @property
    def disabled(self) -> bool:
        return self.disable or self._none()


class ServiceConfig(_Model):
    """One entry of `services:`. `environment` and `command` hold each value with its Compose text
    (`${VAR}` references as written), so values from .env never land in a generated file."""

    image: str | None = None
    build: str | None = None
    dockerfile: str = "Dockerfile"
    command: Interpolated | tuple[Interpolated, ...] | None = Field(None, repr=False)
    environment: dict[str, Interpolated] = Field(default_factory=dict, repr=False)
    env_file: tuple[str, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    healthcheck: Healthcheck | None = None

    # the rules shared with backend
    _image = field_validator("image")(optional_image)
    _paths = field_validator("build", "dockerfile")(optional_relative_path)
    _environment = field_validator("environment", mode="before")(env_map)
    _env_file = field_validator("env_file", mode="before")(env_files)

    @field_validator("command", mode="before")
    @classmethod
    def _command(cls, v: Any) -> Any:
        return _command(v)

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, v: tuple[VolumeMount, ...]) -> tuple[VolumeMount, ...]:
        targets = [m.target.rstrip("/") or "/" for m in v]
        dup = sorted({t for t in targets if targets.count(t) > 1})
        if dup:
            raise ValueError(f"two volumes are mounted at {', '.join(dup)}")
        return v

    @model_validator(mode="after")
    def _shape(self) -> ServiceConfig:
        if (self.image is None) == (self.build is None):
            raise ValueError("set image (such as postgres:16) or build (a folder with a Dockerfile), one of them")
        if "dockerfile" in self.model_fields_set and self.build is None:
            raise ValueError("dockerfile: only with build")
        return self

    @property
    def builds(self) -> bool:
        return self.build is not None
