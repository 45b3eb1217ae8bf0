"""scaleout.yaml -> a validated, immutable `Config`. The only module that reads YAML.

Every value that later reaches nginx or Compose is checked here, so rendering never has to escape
anything: names are DNS labels, paths stay inside the project, ports are numbers, nginx variables
match nginx's own syntax.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from scaleout.config.interpolation import Budget, DotenvError, InterpolationError, interpolate, parse_dotenv
from scaleout.config.services import (
    Healthcheck,
    PortMapping,
    ServiceConfig,
    ServiceName,
    VolumeMount,
    check_image,
    check_relative_path,
    env_files,
    env_map,
)
from scaleout.config.values import URL_PATH_RULE, is_url_path, refuse_zone
from scaleout.config.yamlload import MAX_BYTES, Document, decode_text, load_yaml, read_capped
from scaleout.errors import ConfigError, UsageError
from scaleout.layout import CONFIG_FILE, STRATEGIES, is_replica_name, replica_name

__all__ = [
    "CONFIG_FILE",
    "DOTENV_FILE",
    "BackendConfig",
    "BalancerConfig",
    "Config",
    "Healthcheck",
    "HealthConfig",
    "ImagesConfig",
    "LimitsConfig",
    "PortMapping",
    "ServiceConfig",
    "StaticConfig",
    "VolumeMount",
    "check_image",
    "load_config",
    "parse_config",
    "replica_name",
]
DOTENV_FILE = ".env"
MAX_REPLICAS = 32
ENV_LB_IMAGE = "SCALEOUT_LB_IMAGE"
ENV_BASE_IMAGE = "SCALEOUT_BASE_IMAGE"
DEFAULT_LB_IMAGE = "nginx:1.27"
DEFAULT_BASE_IMAGE = "python:3.12-slim"

Strategy = Literal["round_robin", "least_conn", "ip_hash", "hash", "random"]

# every pattern is used with fullmatch: `re.match` with `$` accepts a trailing newline
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# variables hash_key may use: request-derived families and a few fixed names nginx always defines
_NGINX_VAR = re.compile(
    r"\$(?:(?:cookie|arg|http)_[a-z0-9_]+|remote_addr|binary_remote_addr|request_uri|uri|args|host|"
    r"http_host|server_name|scheme|request_method|query_string)"
)
_MEMORY = re.compile(r"[0-9]{1,6}[mMgG]")
_SIZE = re.compile(r"[0-9]{1,6}[kKmM]?")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class HealthConfig(_Model):
    path: str = "/healthz"
    interval: int = Field(2, ge=1, le=300, description="seconds between checks")
    timeout: int = Field(2, ge=1, le=300, description="seconds before one check counts as failed")
    retries: int = Field(3, ge=1, le=100)
    start_period: int = Field(10, ge=0, le=3600, description="seconds of grace after start")
    command: str | None = Field(None, repr=False,
                                description="shell command run inside the replica; default probes path")
    # the command as the Compose file should carry it: ${VAR} references kept, a literal $ as $$
    command_compose: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _compose_text(cls, v: Any) -> Any:
        if isinstance(v, dict) and isinstance(v.get("command"), str) and "command_compose" not in v:
            v = {**v, "command_compose": v["command"].replace("$", "$$")}
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not is_url_path(v):
            raise ValueError(f"must be a URL path such as /healthz {URL_PATH_RULE}")
        return v

    @field_validator("command", "command_compose")
    @classmethod
    def _command(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or any(c in v for c in "\r\n\0")):
            raise ValueError("must be a non-empty, single-line shell command")
        return v


class LimitsConfig(_Model):
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


class UpdateConfig(_Model):
    """How `up` replaces running replicas whose image or settings changed (Compose target): new containers
    start beside the old ones, and an old one leaves the balancer only once its replacement is healthy and
    routed (never fewer healthy replicas than configured)."""

    parallelism: int = Field(1, ge=1, le=MAX_REPLICAS, description="replicas replaced at the same time")
    max_surge: int = Field(1, ge=1, le=MAX_REPLICAS,
                           description="new containers running beside the old ones at once (caps parallelism)")


class BackendConfig(_Model):
    build: str | None = "backend"
    dockerfile: str = "Dockerfile"
    image: str | None = None
    port: int = Field(8000, ge=1, le=65535)
    replicas: int = Field(3, ge=1, le=MAX_REPLICAS)
    health: HealthConfig = HealthConfig()
    env: dict[str, str] = Field(default_factory=dict, repr=False, description="interpolated values")
    # what the Compose file carries: ${VAR} references as written, a literal $ as $$
    env_compose: dict[str, str] = Field(default_factory=dict)
    env_file: tuple[str, ...] = ()
    # services started (and healthy) before any replica; scaleout.yaml's default: every service
    depends_on: tuple[str, ...] = ()
    weights: dict[str, int] = Field(default_factory=dict)
    backup: tuple[str, ...] = ()
    drain_seconds: int = Field(3, ge=0, le=300, description="grace for in-flight requests when shrinking")
    limits: LimitsConfig = LimitsConfig()
    update: UpdateConfig = UpdateConfig()

    @model_validator(mode="before")
    @classmethod
    def _compose_text(cls, v: Any) -> Any:
        # built without scaleout.yaml (tests, other code): each value is its own, literal, Compose text
        if isinstance(v, dict) and "env" in v and "env_compose" not in v:
            env = env_map(v["env"])
            text = {k: s.replace("$", "$$") for k, s in env.items()} if isinstance(env, dict) else env
            v = {**v, "env_compose": text}
        return v

    @field_validator("build", "dockerfile")
    @classmethod
    def _rel_path(cls, v: str | None) -> str | None:
        if v is not None:
            check_relative_path(v)
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is not None:
            check_image(v)
        return v

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, v: Any) -> Any:
        return env_map(v)

    @field_validator("env_compose", mode="before")
    @classmethod
    def _env_compose(cls, v: Any) -> Any:
        return env_map(v, compose=True)

    @field_validator("env_file", mode="before")
    @classmethod
    def _env_file(cls, v: Any) -> Any:
        return env_files(v)

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
        if set(self.env) != set(self.env_compose):
            raise ValueError("env: inconsistent Compose text")
        return self

    @property
    def builds(self) -> bool:
        return self.image is None and self.build is not None


_TLS_NAME = re.compile(r"^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_TLS_NAMES = 32


class TlsFiles(_Model):
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


class BalancerConfig(_Model):
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


class StaticConfig(_Model):
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
        if len(set(v)) != len(v):
            dup = sorted({p for p in v if v.count(p) > 1})
            raise ValueError(f"each path may appear once (repeated: {', '.join(dup)})")
        return v

    @field_validator("worker_scope", "offline_page")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and not is_url_path(v):
            raise ValueError(f"must be a URL path such as / {URL_PATH_RULE}")
        return v


class ImagesConfig(_Model):
    balancer: str = DEFAULT_LB_IMAGE
    base: str = DEFAULT_BASE_IMAGE

    @field_validator("balancer", "base")
    @classmethod
    def _image(cls, v: str) -> str:
        check_image(v)
        return v



@dataclass(frozen=True)
class Overrides:
    """Values given on the command line, applied over scaleout.yaml's by `Config.with_overrides` (None: not
    given). One value carries them from the command to every later re-read of the file (`up --watch`)."""

    replicas: int | None = None
    port: int | None = None
    strategy: str | None = None
    bind: str | None = None
    name: str | None = None
    tls: bool | None = None

    def any_given(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


class Config(_Model):
    """The whole validated project configuration. `project_dir` is where scaleout.yaml lives.

    `dotenv` holds the variables of the project's .env file: never written anywhere, passed to the
    engine's environment instead (see `engine_environment`). `warnings` are `file:line: key: message`
    lines the CLI may print (a variable used but not set)."""

    name: str
    backend: BackendConfig = BackendConfig()
    balancer: BalancerConfig = BalancerConfig()
    static: StaticConfig = StaticConfig()
    images: ImagesConfig = ImagesConfig()
    services: dict[ServiceName, ServiceConfig] = Field(default_factory=dict)
    project_dir: Path = Field(exclude=True)
    dotenv: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)
    warnings: tuple[str, ...] = Field((), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _depends_on_every_service(cls, v: Any) -> Any:
        """backend.depends_on defaults to every service (as written in scaleout.yaml)."""
        if not isinstance(v, dict) or not isinstance(v.get("services"), dict):
            return v
        backend = v.get("backend", {})
        if isinstance(backend, dict) and "depends_on" not in backend:
            v = {**v, "backend": {**backend, "depends_on": [k for k in v["services"] if isinstance(k, str)]}}
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_LABEL.fullmatch(v):
            raise ValueError("must be a DNS label: lower-case letters, digits and '-', at most 63 characters")
        return v

    @model_validator(mode="after")
    def _inside_project(self) -> Config:
        root = self.project_dir.resolve()
        problems = []
        folders = [("backend.build", self.backend.build if self.backend.builds else None),
                   ("static.dir", self.static.dir)]
        folders += [(f"services.{n}.build", s.build) for n, s in self.services.items()]
        for key, rel in folders:
            if rel is not None and not _within(root, root / rel):
                problems.append(f"{key}: {rel!r} points outside the project folder")
        for n, s in self.services.items():
            for i, m in enumerate(s.volumes):
                if m.kind == "bind" and not _within(root, root / m.source):
                    problems.append(f"services.{n}.volumes.{i}: ./{m.source} points outside the project folder")
        files = [("backend.env_file", i, rel) for i, rel in enumerate(self.backend.env_file)]
        files += [(f"services.{n}.env_file", i, rel)
                  for n, s in self.services.items() for i, rel in enumerate(s.env_file)]
        for key, i, rel in files:
            problem = _env_file_problem(root, rel)
            if problem:
                problems.append(f"{key}.{i}: {rel}: {problem}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _strategy_rules(self) -> Config:
        s = self.balancer.strategy
        if self.backend.backup and s in ("hash", "ip_hash", "random"):
            raise ValueError(f"backend.backup: backup replicas cannot be combined with strategy {s} (nginx forbids it)")
        primaries = [replica_name(i) for i in range(1, self.backend.replicas + 1)
                     if replica_name(i) not in self.backend.backup]
        if not primaries:
            raise ValueError(
                f"backend.backup: with {self.backend.replicas} replica(s) every one would be a backup; "
                "nginx needs at least one primary replica"
            )
        return self

    @model_validator(mode="after")
    def _service_rules(self) -> Config:
        problems = []
        for i, name in enumerate(self.backend.depends_on):
            if name not in self.services:
                known = ", ".join(self.services) or "none are defined"
                problems.append(f"backend.depends_on.{i}: {name!r} is not a service under services: ({known})")
        # (address, port, protocol) -> who publishes it; the balancer's port is tcp on balancer.bind
        taken: dict[tuple[int, str], list[tuple[str, str]]] = {}
        taken[(self.balancer.port, "tcp")] = [(self.balancer.bind, "balancer.port")]
        for n, s in self.services.items():
            for i, p in enumerate(s.ports):
                ip = p.host_ip or self.balancer.bind
                key = f"services.{n}.ports.{i}"
                for other_ip, other in taken.get((p.host_port, p.protocol), []):
                    if ip == other_ip or _unspecified(ip) or _unspecified(other_ip):
                        problems.append(f"{key}: host port {p.host_port}/{p.protocol} is already published by {other}")
                        break
                taken.setdefault((p.host_port, p.protocol), []).append((ip, key))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def project(self) -> str:
        """The Compose project name."""
        return self.name

    @property
    def replicas(self) -> int:
        return self.backend.replicas

    @property
    def url(self) -> str:
        host = self.balancer.bind
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self.balancer.scheme}://{host}:{self.balancer.port}"

    @property
    def named_volumes(self) -> tuple[str, ...]:
        """Every named volume the services mount (a Compose file declares them at its top level)."""
        return tuple(sorted({m.source for s in self.services.values() for m in s.volumes if m.kind == "named"}))

    def engine_environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The values the ${VAR} references scaleout writes resolve to: .env's variables under the shell's, as
        Compose orders them. A lookup only: child processes never get .env in their environment
        (targets/childenv.py resolves their files instead)."""
        return {**self.dotenv, **(os.environ if environ is None else environ)}

    def with_overrides(self, overrides: Overrides) -> Config:
        """A new Config with command-line values applied, validated like the file's."""
        # only what the file set: re-validating defaults as if written would, e.g., make the default
        # `build` collide with a configured `image`
        data = self.model_dump(mode="python", exclude_unset=True)
        flags = {"replicas": "--replicas", "port": "--port", "strategy": "--strategy", "bind": "--bind",
                 "name": "--project-name"}
        if overrides.replicas is not None:
            data.setdefault("backend", {})["replicas"] = overrides.replicas
        for key in ("port", "strategy", "bind"):
            if getattr(overrides, key) is not None:
                data.setdefault("balancer", {})[key] = getattr(overrides, key)
        if overrides.name is not None:
            data["name"] = overrides.name
        # `--tls`: the local certificate, unless the file names its own
        if overrides.tls and not data.get("balancer", {}).get("tls"):
            data.setdefault("balancer", {})["tls"] = "local"
        internal = {"project_dir": self.project_dir, "dotenv": self.dotenv, "warnings": self.warnings}
        try:
            return Config.model_validate({**data, **internal})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = err["loc"]
                if not loc:  # a rule across keys: its message names the key
                    problems.extend(_describe(err).splitlines())
                    continue
                flag = flags.get(str(loc[-1]), ".".join(map(str, loc)))
                problems.append(f"{flag}: {_describe(err)}")
            raise UsageError("\n".join(dict.fromkeys(problems))) from None


def _within(root: Path, path: Path) -> bool:
    """Whether `path`, links resolved, is `root` or inside it (a link loop is not)."""
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a link loop, before Python 3.13
        return False
    return target == root or root in target.parents


def _unspecified(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_unspecified


def _env_file_problem(root: Path, rel: str) -> str | None:
    """Why an env file cannot be used, or None: it must exist, inside the project, as a regular file."""
    path = root / rel
    try:
        os.lstat(path)
    except FileNotFoundError:
        return "the file does not exist (create it, or remove it from env_file)"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not _within(root, path):
        return "leads outside the project folder (a link?); env files must be inside it"
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return None


def default_name(folder: Path) -> str:
    """The project name derived from a folder name, made into a DNS label."""
    name = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")[:63].strip("-")
    return name or "scaleout"


def _describe(err: dict[str, Any]) -> str:
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "literal_error" and err["loc"] and err["loc"][-1] == "strategy":
        return f"must be one of {', '.join(STRATEGIES)} (got {err['input']!r})"
    if err["type"] in ("missing",):
        return "is required"
    if "input" in err and err["type"] not in ("model_type", "dict_type") and not isinstance(err["input"], (dict, list)):
        return f"{_lower_first(msg)} (got {_shown(err['input'])})"
    return _lower_first(msg)


def _lower_first(msg: str) -> str:
    """pydantic's "Input should be ..." reads as "input should be ..." after a key; "KEY: ..." stays."""
    return msg[0].lower() + msg[1:] if msg[:1].isupper() and msg[1:2].islower() else msg


def _shown(value: Any) -> str:
    """A short repr for a message (a huge integer's repr would itself raise ValueError)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return "a very large number"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


# --- from text to Config ---------------------------------------------------------------------------------

# nginx variables, not Compose references: taken as written
_NOT_INTERPOLATED = {("balancer", "hash_key")}
# values whose Compose text (references kept) the model holds beside the interpolated value
_COMPOSE_TEXT = {
    ("backend", "env"): "env_compose",
    ("backend", "health", "command"): "command_compose",
    ("services", "*", "environment"): "environment_compose",
    ("services", "*", "command"): "command_compose",
    ("services", "*", "healthcheck", "test"): "test_compose",
}
# values written into generated files as scaleout resolved them (an image reference, a volume, a published
# port: Compose cannot take them as references) and sent to registries: one whose value came from .env or the
# environment would put that value into a file others may read, or into a request; refused
_WRITTEN_RESOLVED = (("images", "*"), ("backend", "image"), ("services", "*", "image"),
                     ("services", "*", "volumes", "*"), ("services", "*", "ports", "*"))
# model fields that are not keys of scaleout.yaml, shown as the key they come from
_INTERNAL_FIELDS = {"env_compose": "env", "command_compose": "command", "environment_compose": "environment",
                    "test_compose": "test"}
_INTERNAL_TOP = ("project_dir", "dotenv", "warnings")


def _matches(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(path) == len(pattern) and all(p == "*" or p == q for p, q in zip(pattern, path, strict=True))


class _Interpolation:
    """Walks the document's values (never its keys), resolving references; keeps the Compose text of
    the values in _COMPOSE_TEXT; collects every problem and warning with its line."""

    def __init__(self, doc: Document, source: str, lookup: Any, budget: Budget) -> None:
        self.doc, self.source, self.lookup, self.budget = doc, source, lookup, budget
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def where(self, path: tuple[str, ...]) -> str:
        line = self.doc.line_of(path)
        return f"{self.source}:{line}: {'.'.join(path)}" if line else f"{self.source}: {'.'.join(path)}"

    def walk(self, node: Any, path: tuple[str, ...]) -> tuple[Any, Any]:
        """(value, Compose text) of a subtree."""
        if isinstance(node, str):
            if path in _NOT_INTERPOLATED:
                return node, node.replace("$", "$$")
            try:
                result = interpolate(node, self.lookup, self.budget)
            except InterpolationError as exc:
                self.problems.append(f"{self.where(path)}: {exc}")
                return node, node
            for name in result.unset:
                self.warnings.append(f"{self.where(path)}: variable {name} is not set; using an empty string")
            given = [n for n in result.variables if self.lookup(n) is not None]
            if given and any(_matches(path, pattern) for pattern in _WRITTEN_RESOLVED):
                self.problems.append(
                    f"{self.where(path)}: takes its value from ${{{given[0]}}} (.env or the environment), and scaleout "
                    "writes this key resolved into generated files: write the value itself here (a default, as in "
                    f"${{{given[0]}:-value}}, is used only while {given[0]} is unset)")
            return result.value, result.compose
        if isinstance(node, dict):
            values, texts = {}, {}
            for key, child in node.items():
                child_path = (*path, _key_str(key))
                if any(_matches(child_path, (*pattern[:-1], field)) for pattern, field in _COMPOSE_TEXT.items()):
                    self.problems.append(f"{self.where(child_path)}: unknown key")
                    continue
                values[key], texts[key] = self.walk(child, child_path)
                for pattern, field in _COMPOSE_TEXT.items():
                    if _matches(child_path, pattern):
                        values[field] = texts[key]
            return values, texts
        if isinstance(node, list):
            pairs = [self.walk(child, (*path, str(i))) for i, child in enumerate(node)]
            return [v for v, _ in pairs], [t for _, t in pairs]
        return node, node


def _key_str(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _dotenv_display(source: str) -> str:
    parent = Path(source).parent
    return DOTENV_FILE if str(parent) in ("", ".") else str(parent / DOTENV_FILE)


def read_dotenv(project_dir: Path, environ: Mapping[str, str], display: str = DOTENV_FILE,
                budget: Budget | None = None) -> tuple[dict[str, str], list[str]]:
    """The variables of the project's .env (none if there is no file) and its warnings.

    Untrusted input: a link leading outside the project, a FIFO or device, more than 1 MiB, bad UTF-8
    or a line that is not KEY=VALUE is a ConfigError naming the file and line."""
    root = project_dir.resolve()
    path = root / DOTENV_FILE
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        raise ConfigError(f"{display}: cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode) and not _within(root, path):
        raise ConfigError(f"{display}: is a link leading outside the project folder; scaleout does not follow it",
                          hint="put the variables in a .env file inside the project")
    try:
        data = read_capped(path, display=display, limit=MAX_BYTES)
    except FileNotFoundError:  # a dangling link
        raise ConfigError(f"{display}: is a link to a file that does not exist") from None
    text = decode_text(data, display=display)
    try:
        entries, warnings = parse_dotenv(text, display=display, environ=environ, budget=budget)
    except DotenvError as exc:
        raise ConfigError(str(exc)) from None
    except InterpolationError as exc:  # the budget
        raise ConfigError(f"{display}: {exc}") from None
    return {k: e.value for k, e in entries.items()}, warnings


def parse_config(text: str, project_dir: Path, source: str = CONFIG_FILE, env: Mapping[str, str] | None = None,
                 dotenv: Mapping[str, str] | None = None) -> Config:
    """Validate the text of a scaleout.yaml. Raises ConfigError with one `file:line: key: problem` per line.

    `env` is the shell's environment (default os.environ); `dotenv` the .env variables (default: read
    from project_dir/.env). Both feed interpolation, the shell first, as in Compose."""
    env = os.environ if env is None else env
    budget = Budget()
    dotenv_warnings: list[str] = []
    if dotenv is None:
        dotenv, dotenv_warnings = read_dotenv(Path(project_dir), env, _dotenv_display(source), budget)
    doc = load_yaml(text, display=source)
    data = doc.data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must be a mapping of keys (name, backend, balancer, ...), "
                          f"not a {type(data).__name__}")
    for key in _INTERNAL_TOP:
        if key in data:
            line = doc.lines.get((key,))
            raise ConfigError(f"{source}:{line}: {key}: unknown key" if line else f"{source}: {key}: unknown key")

    def lookup(name: str) -> str | None:
        value = env.get(name)
        return value if value is not None else dotenv.get(name)

    interp = _Interpolation(doc, source, lookup, budget)
    try:
        data, _ = interp.walk(data, ())
    except InterpolationError as exc:  # the budget for the whole file
        raise ConfigError(f"{source}: {exc}") from None
    if interp.problems:
        raise ConfigError(list(dict.fromkeys(interp.problems)))
    data.setdefault("name", default_name(project_dir))
    images = data.get("images")
    if images is None or isinstance(images, dict):
        images = dict(images or {})
        if env.get(ENV_LB_IMAGE):
            images["balancer"] = env[ENV_LB_IMAGE]
        if env.get(ENV_BASE_IMAGE):
            images["base"] = env[ENV_BASE_IMAGE]
        data["images"] = images
    internal = {"project_dir": project_dir, "dotenv": dict(dotenv),
                "warnings": tuple(dotenv_warnings + interp.warnings)}
    try:
        return Config.model_validate({**data, **internal})
    except ValidationError as exc:
        raise ConfigError(_problems(exc, doc, source)) from None


def _problems(exc: ValidationError, doc: Document, source: str) -> list[str]:
    """One `file:line: key.path: message` per problem, in order, without repeats."""
    problems = []
    for err in exc.errors():
        # a dict key's own error ends in "[key]"; internal fields are shown as the key they come from
        # (a service may be named like one: a name right under services: is left alone)
        raw = [str(p) for p in err["loc"] if p != "[key]"]
        loc = tuple(p if i and raw[i - 1] == "services" else _INTERNAL_FIELDS.get(p, p) for i, p in enumerate(raw))
        desc = _describe(err)
        if not loc:  # rules across keys: each line of the message starts with the key it is about
            for line_text in desc.splitlines():
                key_path = tuple(line_text.split(":", 1)[0].split("."))
                line = doc.line_of(key_path)
                problems.append(f"{source}:{line}: {line_text}" if line else f"{source}: {line_text}")
            continue
        line = doc.line_of(loc)
        where = f"{source}:{line}" if line else source
        problems.append(f"{where}: {'.'.join(loc)}: {desc}")
    return list(dict.fromkeys(problems))


def load_config(project_dir: Path | str = ".", env: Mapping[str, str] | None = None) -> Config:
    """Read and validate `scaleout.yaml` in `project_dir` (at most 1 MiB, a regular file, UTF-8)."""
    project_dir = Path(project_dir).resolve()
    path = project_dir / CONFIG_FILE
    cwd = Path.cwd()
    source = str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)
    try:
        data = read_capped(path, display=source, limit=MAX_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found",
                          hint="run `scaleout init` to create a project, or cd into one") from None
    text = decode_text(data, display=source)
    return parse_config(text, project_dir, source=source, env=env)
