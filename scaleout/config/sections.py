"""The sections of scaleout.yaml (backend, balancer, static, images, ...) as strict pydantic models.

Every value that later reaches nginx or Compose is checked here, so rendering never has to escape
anything: names are DNS labels, paths stay inside the project, ports are numbers, nginx variables
match nginx's own syntax. `scaleout.config.model` puts the sections together into `Config`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from scaleout.config.exposure import hidden_route_problem
from scaleout.config.interpolated import Interpolated
from scaleout.config.services import (
    check_image,
    check_relative_path,
    env_files,
    env_map,
    optional_image,
    optional_relative_path,
)
from scaleout.config.values import URL_PATH_RULE, is_url_path, refuse_zone
from scaleout.layout import is_replica_name

MAX_REPLICAS = 32
DEFAULT_LB_IMAGE = "nginx:1.27"
DEFAULT_BASE_IMAGE = "python:3.12-slim"

Strategy = Literal["round_robin", "least_conn", "ip_hash", "hash", "random"]

# every pattern is used with fullmatch: `re.match` with `$` accepts a trailing newline
# variables hash_key may use: request-derived families and a few fixed names nginx always defines
_NGINX_VAR = re.compile(
    r"\$(?:(?:cookie|arg|http)_[a-z0-9_]+|remote_addr|binary_remote_addr|request_uri|uri|args|host|"
    r"http_host|server_name|scheme|request_method|query_string)"
)
_MEMORY = re.compile(r"[0-9]{1,6}[mMgG]")
_SIZE = re.compile(r"[0-9]{1,6}[kKmM]?")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class HealthConfig(StrictModel):
    path: str = "/healthz"
    interval: int = Field(2, ge=1, le=300, description="seconds between checks")
    timeout: int = Field(2, ge=1, le=300, description="seconds before one check counts as failed")
    retries: int = Field(3, ge=1, le=100)
    start_period: int = Field(10, ge=0, le=3600, description="seconds of grace after start")
    # the value, and its Compose text: ${VAR} references kept, a literal $ as $$
    command: Interpolated | None = Field(None, repr=False,
                                         description="shell command run inside the replica; default probes path")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not is_url_path(v):
            raise ValueError(f"must be a URL path such as /healthz {URL_PATH_RULE}")
        return v

    @field_validator("command", mode="before")
    @classmethod
    def _command(cls, v: Any) -> Any:
        v = Interpolated.of(v)
        if isinstance(v, Interpolated) and (not v.value.strip() or any(
                c in text for text in (v.value, v.compose) for c in "\r\n\0")):
            raise ValueError("must be a non-empty, single-line shell command")
        return v


class LimitsConfig(StrictModel):
    """Resource limits of a container: a runaway process cannot take the whole machine."""

    memory: str | None = Field(None, description="memory limit such as 512m or 1g")
    pids: int | None = Field(None, ge=16, le=1_000_000, description="maximum number of processes")

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None and not _MEMORY.fullmatch(v):
            raise ValueError("must be a size such as 256m or 1g (at least 6m)")
        if v is not None and int(v[:-1]) * {"m": 1, "g": 1024}[v[-1].lower()] < 6:
            raise ValueError("must be at least 6m (Docker's minimum)")
        return v


class UpdateConfig(StrictModel):
    """How `up` replaces running replicas whose image or settings changed (Compose target): new containers
    start beside the old ones, and an old one leaves the balancer only once its replacement is healthy and
    routed (never fewer healthy replicas than configured)."""

    parallelism: int = Field(1, ge=1, le=MAX_REPLICAS, description="replicas replaced at the same time")
    max_surge: int = Field(1, ge=1, le=MAX_REPLICAS,
                           description="new containers running beside the old ones at once (caps parallelism)")


class BackendConfig(StrictModel):
    build: str | None = "backend"
    dockerfile: str = "Dockerfile"
    image: str | None = None
    port: int = Field(8000, ge=1, le=65535)
    replicas: int = Field(3, ge=1, le=MAX_REPLICAS)
    health: HealthConfig = HealthConfig()
    # each value with what the Compose file carries: ${VAR} references as written, a literal $ as $$
    env: dict[str, Interpolated] = Field(default_factory=dict, repr=False)
    env_file: tuple[str, ...] = ()
    # services started (and healthy) before any replica; scaleout.yaml's default: every service
    depends_on: tuple[str, ...] = ()
    weights: dict[str, int] = Field(default_factory=dict)
    backup: tuple[str, ...] = ()
    drain_seconds: int = Field(3, ge=0, le=300, description="grace for in-flight requests when shrinking")
    limits: LimitsConfig = LimitsConfig()
    update: UpdateConfig = UpdateConfig()

    # the rules shared with services
    _image = field_validator("image")(optional_image)
    _rel_path = field_validator("build", "dockerfile")(optional_relative_path)
    _env = field_validator("env", mode="before")(env_map)
    _env_file = field_validator("env_file", mode="before")(env_files)

    @field_validator("depends_on", mode="before")
    @classmethod
    def _depends_on(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            dup = sorted({n for n in v if isinstance(n, str) and v.count(n) > 1})
            if dup:
                raise ValueError(f"each service may appear once (repeated: {', '.join(dup)})")
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, int]) -> dict[str, int]:
        for name, weight in v.items():
            if not is_replica_name(name):
                raise ValueError(f"{name!r} is not a replica name (backend-1, backend-2, ...)")
            if not 1 <= weight <= 100:
                raise ValueError(f"{name}: weight must be between 1 and 100 (got {weight})")
        return v

    @field_validator("backup")
    @classmethod
    def _backup(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if not is_replica_name(name):
                raise ValueError(f"{name!r} is not a replica name (backend-1, backend-2, ...)")
        return v

    @model_validator(mode="after")
    def _build_or_image(self) -> BackendConfig:
        if self.image is not None and self.build is not None and "build" in self.model_fields_set:
            raise ValueError("set either build (a folder with a Dockerfile) or image, not both")
        return self

    @property
    def builds(self) -> bool:
        return self.image is None and self.build is not None


_TLS_NAME = re.compile(r"^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_TLS_NAMES = 32


class TlsFiles(StrictModel):
    """`balancer.tls: {cert: PATH, key: PATH}`: the user's own certificate (chain first) and key, in the project."""

    cert: str
    key: str


def _tls_value(v: Any) -> Any:
    """balancer.tls: off (false or null), `local`, or a mapping {cert, key} of paths in the project."""
    if v is None or v is False:
        return None
    if v == "local" or isinstance(v, TlsFiles):
        return v
    if isinstance(v, dict):
        unknown = sorted(str(k) for k in v if k not in ("cert", "key"))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}: a mapping takes cert and key only")
        missing = [k for k in ("cert", "key") if k not in v]
        if missing:
            raise ValueError(f"{' and '.join(missing)} missing: give both cert and key (paths in the project)")
        for k in ("cert", "key"):
            if not isinstance(v[k], str):
                raise ValueError(f"{k}: must be a path in the project, such as certs/dev.pem")
            try:
                check_relative_path(v[k])
            except ValueError as exc:
                raise ValueError(f"{k}: {exc} (got {v[k]!r})") from None
            if v[k].split("/")[0] == ".scaleout":
                raise ValueError(f"{k}: .scaleout/ holds scaleout's generated files; "
                                 "keep your own certificate elsewhere")
        if v["cert"] == v["key"]:
            raise ValueError("cert and key must be two files")
        return TlsFiles(cert=v["cert"], key=v["key"])
    raise ValueError(
        "must be `local` (a certificate from scaleout's local certificate authority), "
        "a mapping {cert: PATH, key: PATH} of your own files, or false"
    )


class BalancerConfig(StrictModel):
    port: int = Field(8080, ge=1, le=65535)
    tls: Literal["local"] | TlsFiles | None = Field(None, description="off, local, or {cert, key}")
    tls_names: tuple[str, ...] = Field((), description="more host names or addresses in the local certificate")
    http_port: int | None = Field(None, ge=1, le=65535, description="plain HTTP port that redirects to HTTPS")
    bind: str = "127.0.0.1"
    strategy: Strategy = "round_robin"
    hash_key: str = Field("$cookie_session", description="nginx variable hashed by the hash strategy")
    max_fails: int = Field(2, ge=0, le=100)
    fail_timeout: int = Field(5, ge=1, le=3600, description="seconds")
    connect_timeout_ms: int = Field(500, ge=50, le=60000)
    read_timeout: int = Field(60, ge=1, le=3600, description="seconds")
    websocket_timeout: int = Field(
        3600, ge=1, le=86400,
        description="seconds an upgraded connection (WebSocket) may carry no traffic; also how long a reload "
        "lets old nginx workers keep one",
    )
    retries: int = Field(3, ge=1, le=10, description="tries across replicas for a failed idempotent request")
    keepalive: int = Field(32, ge=0, le=1024, description="idle keep-alive connections to replicas per worker")
    client_max_body_size: str = "10m"
    request_log: bool = Field(True, description="one line per request for `scaleout top` and `logs --requests`")
    limits: LimitsConfig = LimitsConfig(memory="256m", pids=1024)

    @field_validator("bind")
    @classmethod
    def _bind(cls, v: str) -> str:
        refuse_zone(v)
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1 "
                             "(or 0.0.0.0 to expose on all interfaces)") from None
        return v

    @field_validator("tls", mode="before")
    @classmethod
    def _tls(cls, v: Any) -> Any:
        return _tls_value(v)

    @field_validator("tls_names", mode="before")
    @classmethod
    def _tls_names(cls, v: Any) -> Any:
        if not isinstance(v, (list, tuple)):
            raise ValueError("must be a list of host names or IP addresses, such as [app.test]")
        if len(v) > MAX_TLS_NAMES:
            raise ValueError(f"at most {MAX_TLS_NAMES} names")
        out = []
        for name in v:
            if not isinstance(name, str):
                raise ValueError(f"{name!r} is not a host name")
            try:
                ip = ipaddress.ip_address(name)
            except ValueError:
                ip = None
            if ip is not None:
                if ip.is_unspecified:
                    raise ValueError(f"{name} is not an address a browser connects to")
                out.append(str(ip))
            elif len(name) <= 253 and _TLS_NAME.match(name) and not name.replace(".", "").isdigit():
                out.append(name)
            else:
                raise ValueError(f"{name!r} must be a lower-case host name (a-z 0-9 - and dots; *.name for a wildcard) "
                                 "or an IP address")
        if len(set(out)) != len(out):
            repeated = sorted({n for n in out if out.count(n) > 1})
            raise ValueError(f"each name may appear once (repeated: {', '.join(repeated)})")
        return tuple(out)

    @field_validator("tls_names")
    @classmethod
    def _names_need_local(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if v and "tls" in info.data and info.data["tls"] != "local":
            raise ValueError("only with balancer.tls: local (your own certificate names its hosts itself)")
        return v

    @field_validator("http_port")
    @classmethod
    def _http_port(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and "tls" in info.data:
            if info.data["tls"] is None:
                raise ValueError("only with balancer.tls: it is the plain HTTP port that redirects to HTTPS")
            if v == info.data.get("port"):
                raise ValueError(f"must differ from balancer.port ({v})")
        return v

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @field_validator("hash_key")
    @classmethod
    def _hash_key(cls, v: str) -> str:
        if not _NGINX_VAR.fullmatch(v):
            raise ValueError(
                "must be one nginx variable: $cookie_NAME, $arg_NAME, $http_NAME, $remote_addr, $request_uri, "
                "$uri, $host, ..."
            )
        return v

    @field_validator("client_max_body_size", mode="before")
    @classmethod
    def _size_number(cls, v: Any) -> Any:
        # a bare number is bytes to nginx; `0` must meet the rule below rather than a type error
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("client_max_body_size")
    @classmethod
    def _size(cls, v: str) -> str:
        if not _SIZE.fullmatch(v):
            raise ValueError("must be a size such as 512k or 10m")
        if int(v.rstrip("kKmM")) == 0:
            # nginx reads 0 as "no limit": an accident here would let one client fill the disk
            raise ValueError("0 would turn the limit off; set a size such as 100m (at most 999999m)")
        return v


class StaticConfig(StrictModel):
    dir: str = "public"
    routes: tuple[str, ...] = ("/static/", "/offline.html", "/service-worker.js", "/manifest.json")
    service_workers: tuple[str, ...] = ("/service-worker.js",)
    worker_scope: str | None = Field(None, description="wider scope sent as Service-Worker-Allowed")
    generate_worker: bool = True
    offline_page: str = "/offline.html"

    @field_validator("dir")
    @classmethod
    def _dir(cls, v: str) -> str:
        check_relative_path(v)
        return v

    @field_validator("routes", "service_workers")
    @classmethod
    def _paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not is_url_path(p):
                raise ValueError(f"{p!r} must be a URL path {URL_PATH_RULE}")
            if p == "/":
                raise ValueError("'/' cannot be a static route: it belongs to the replicas")
            if p.startswith("/_scaleout/"):
                raise ValueError(f"{p!r}: /_scaleout/ is reserved for scaleout's own endpoints")
            if hidden_route_problem(p):
                raise ValueError(hidden_route_problem(p))
        if len(set(v)) != len(v):
            dup = sorted({p for p in v if v.count(p) > 1})
            raise ValueError(f"each path may appear once (repeated: {', '.join(dup)})")
        return v

    @field_validator("worker_scope", "offline_page")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and not is_url_path(v):
            raise ValueError(f"must be a URL path such as / {URL_PATH_RULE}")
        if v is not None and hidden_route_problem(v):
            raise ValueError(hidden_route_problem(v))
        return v


class ImagesConfig(StrictModel):
    balancer: str = DEFAULT_LB_IMAGE
    base: str = DEFAULT_BASE_IMAGE

    @field_validator("balancer", "base")
    @classmethod
    def _image(cls, v: str) -> str:
        check_image(v)
        return v
