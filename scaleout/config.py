"""scaleout.yaml -> a validated, immutable `Config`. The only module that reads YAML.

Every value that later reaches nginx or Compose is checked here, so rendering never has to escape
anything: names are DNS labels, paths stay inside the project, ports are numbers, nginx variables
match nginx's own syntax.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from scaleout.errors import ConfigError, UsageError
from scaleout.layout import CONFIG_FILE, replica_name

__all__ = ["CONFIG_FILE", "Config", "load_config", "parse_config", "replica_name"]
MAX_REPLICAS = 32
ENV_LB_IMAGE = "SCALEOUT_LB_IMAGE"
ENV_BASE_IMAGE = "SCALEOUT_BASE_IMAGE"
DEFAULT_LB_IMAGE = "nginx:1.27"
DEFAULT_BASE_IMAGE = "python:3.12-slim"

STRATEGIES = ("round_robin", "least_conn", "ip_hash", "hash", "random")
Strategy = Literal["round_robin", "least_conn", "ip_hash", "hash", "random"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_REL_PATH = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._/-]*$")
_URL_PATH_CHARS = re.compile(r"^/[A-Za-z0-9._~/-]*$")


class _UrlPath:
    """A URL path: allowed characters only, and no empty, '.' or '..' segment (nothing may climb out
    of the static folder through a route)."""

    @staticmethod
    def match(v: str) -> bool:
        if not isinstance(v, str) or not _URL_PATH_CHARS.match(v):
            return False
        segments = v.strip("/").split("/")
        return v == "/" or all(seg not in ("", ".", "..") for seg in segments)


_URL_PATH = _UrlPath()
# variables hash_key may use: request-derived families and a few fixed names nginx always defines
_NGINX_VAR = re.compile(
    r"^\$(?:(?:cookie|arg|http)_[a-z0-9_]+|remote_addr|binary_remote_addr|request_uri|uri|args|host|"
    r"http_host|server_name|scheme|request_method|query_string)$"
)
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Docker image reference: [registry[:port]/]path[:tag][@digest], lower-case path components
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_SIZE = re.compile(r"^[0-9]{1,6}[kKmM]?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class HealthConfig(_Model):
    path: str = "/healthz"
    interval: int = Field(2, ge=1, le=300, description="seconds between checks")
    timeout: int = Field(2, ge=1, le=300, description="seconds before one check counts as failed")
    retries: int = Field(3, ge=1, le=100)
    start_period: int = Field(10, ge=0, le=3600, description="seconds of grace after start")
    command: str | None = Field(None, description="shell command run inside the replica; default probes path")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not _URL_PATH.match(v):
            raise ValueError("must be a URL path such as /healthz (letters, digits, . _ ~ / - only; no '.', '..' or empty segment)")
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or any(c in v for c in "\r\n\0")):
            raise ValueError("must be a non-empty, single-line shell command")
        return v


class BackendConfig(_Model):
    build: str | None = "backend"
    dockerfile: str = "Dockerfile"
    image: str | None = None
    port: int = Field(8000, ge=1, le=65535)
    replicas: int = Field(3, ge=1, le=MAX_REPLICAS)
    health: HealthConfig = HealthConfig()
    env: dict[str, str] = Field(default_factory=dict)
    weights: dict[str, int] = Field(default_factory=dict)
    backup: tuple[str, ...] = ()
    drain_seconds: int = Field(3, ge=0, le=300, description="grace for in-flight requests when shrinking")

    @field_validator("build", "dockerfile")
    @classmethod
    def _rel_path(cls, v: str | None) -> str | None:
        if v is not None:
            _check_relative_path(v)
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
        if not isinstance(v, dict):
            return v
        out = {}
        for key, value in v.items():
            if not isinstance(key, str) or not _ENV_KEY.match(key):
                raise ValueError(f"variable name {key!r} must match [A-Za-z_][A-Za-z0-9_]*")
            if isinstance(value, bool):
                value = "true" if value else "false"
            if isinstance(value, (int, float)):
                value = str(value)
            if not isinstance(value, str):
                raise ValueError(f"{key}: value must be a string, number or boolean")
            if any(ord(c) < 32 and c != "\t" for c in value):
                raise ValueError(f"{key}: value must not contain newlines or control characters")
            out[key] = value
        return out

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, int]) -> dict[str, int]:
        for name, weight in v.items():
            if not re.match(r"^backend-[1-9][0-9]*$", name):
                raise ValueError(f"{name!r} is not a replica name (backend-1, backend-2, ...)")
            if not 1 <= weight <= 100:
                raise ValueError(f"{name}: weight must be between 1 and 100 (got {weight})")
        return v

    @field_validator("backup")
    @classmethod
    def _backup(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if not re.match(r"^backend-[1-9][0-9]*$", name):
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
                _check_relative_path(v[k])
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
    retries: int = Field(3, ge=1, le=10, description="tries across replicas for a failed idempotent request")
    keepalive: int = Field(32, ge=0, le=1024, description="idle keep-alive connections to replicas per worker")
    client_max_body_size: str = "10m"

    @field_validator("bind")
    @classmethod
    def _bind(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1 (or 0.0.0.0 to expose on all interfaces)")
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
        if not _NGINX_VAR.match(v):
            raise ValueError(
                "must be one nginx variable: $cookie_NAME, $arg_NAME, $http_NAME, $remote_addr, $request_uri, $uri, $host, ..."
            )
        return v

    @field_validator("client_max_body_size")
    @classmethod
    def _size(cls, v: str) -> str:
        if not _SIZE.match(v):
            raise ValueError("must be a size such as 512k or 10m")
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
        _check_relative_path(v)
        return v

    @field_validator("routes", "service_workers")
    @classmethod
    def _paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not _URL_PATH.match(p):
                raise ValueError(f"{p!r} must be a URL path (letters, digits, . _ ~ / - only; no '.', '..' or empty segment)")
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
        if v is not None and not _URL_PATH.match(v):
            raise ValueError("must be a URL path such as / (letters, digits, . _ ~ / - only; no '.', '..' or empty segment)")
        return v


class ImagesConfig(_Model):
    balancer: str = DEFAULT_LB_IMAGE
    base: str = DEFAULT_BASE_IMAGE

    @field_validator("balancer", "base")
    @classmethod
    def _image(cls, v: str) -> str:
        check_image(v)
        return v


class Config(_Model):
    """The whole validated project configuration. `project_dir` is where scaleout.yaml lives."""

    name: str
    backend: BackendConfig = BackendConfig()
    balancer: BalancerConfig = BalancerConfig()
    static: StaticConfig = StaticConfig()
    images: ImagesConfig = ImagesConfig()
    project_dir: Path = Field(exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError("must be a DNS label: lower-case letters, digits and '-', at most 63 characters")
        return v

    @model_validator(mode="after")
    def _inside_project(self) -> Config:
        for key, rel in (("backend.build", self.backend.build if self.backend.builds else None), ("static.dir", self.static.dir)):
            if rel is None:
                continue
            target = (self.project_dir / rel).resolve()
            root = self.project_dir.resolve()
            if target != root and root not in target.parents:
                raise ValueError(f"{key}: {rel!r} points outside the project folder")
        return self

    @model_validator(mode="after")
    def _strategy_rules(self) -> Config:
        s = self.balancer.strategy
        if self.backend.backup and s in ("hash", "ip_hash", "random"):
            raise ValueError(f"backend.backup: backup replicas cannot be combined with strategy {s} (nginx forbids it)")
        primaries = [f"backend-{i}" for i in range(1, self.backend.replicas + 1) if f"backend-{i}" not in self.backend.backup]
        if not primaries:
            raise ValueError(
                f"backend.backup: with {self.backend.replicas} replica(s) every one would be a backup; "
                "nginx needs at least one primary replica"
            )
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

    def with_overrides(self, **overrides: Any) -> Config:
        """A new Config with command-line values applied, validated like the file's."""
        # only what the file set: re-validating defaults as if written would, e.g., make the default
        # `build` collide with a configured `image`
        data = self.model_dump(mode="python", exclude_unset=True)
        flags = {"replicas": "--replicas", "port": "--port", "strategy": "--strategy", "bind": "--bind"}
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "replicas":
                data.setdefault("backend", {})["replicas"] = value
            elif key in ("port", "strategy", "bind"):
                data.setdefault("balancer", {})[key] = value
            elif key == "tls":  # `--tls`: the local certificate, unless the file names its own
                if value and not data.get("balancer", {}).get("tls"):
                    data.setdefault("balancer", {})["tls"] = "local"
            else:
                raise TypeError(f"unknown override {key}")
        try:
            return Config.model_validate({**data, "project_dir": self.project_dir})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = err["loc"]
                if not loc:  # a rule across keys: its message names the key
                    problems.append(_describe(err))
                    continue
                flag = flags.get(str(loc[-1]), ".".join(map(str, loc)))
                problems.append(f"{flag}: {_describe(err)}")
            raise UsageError("\n".join(problems)) from None


def _check_relative_path(v: str) -> None:
    if not _REL_PATH.match(v) or v.startswith("/"):
        raise ValueError("must be a relative path inside the project (letters, digits, . _ / - only)")
    if ".." in Path(v).parts:
        raise ValueError("must stay inside the project folder ('..' is not allowed)")


def check_image(v: str) -> None:
    if not _IMAGE.match(v):
        raise ValueError("must be an image reference such as nginx:1.27 or registry.example.com/team/app:tag")


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
    if err["type"] == "literal_error" and err["loc"][-1] == "strategy":
        return f"must be one of {', '.join(STRATEGIES)} (got {err['input']!r})"
    if err["type"] in ("missing",):
        return "is required"
    if "input" in err and err["type"] not in ("model_type", "dict_type") and not isinstance(err["input"], (dict, list)):
        shown = repr(err["input"])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{msg[0].lower()}{msg[1:]} (got {shown})"
    return f"{msg[0].lower()}{msg[1:]}"


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path in a YAML document to its 1-based line number, for error messages."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key_path = (*path, str(k.value))
                lines[key_path] = k.start_mark.line + 1
                walk(v, key_path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    if root is not None:
        walk(root, ())
    return lines


def parse_config(text: str, project_dir: Path, source: str = CONFIG_FILE, env: dict[str, str] | None = None) -> Config:
    """Validate the text of a scaleout.yaml. Raises ConfigError with one `file:line: key: problem` per line."""
    env = os.environ if env is None else env
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must be a mapping of keys (name, backend, balancer, ...), not a {type(data).__name__}")
    data = dict(data)
    data.setdefault("name", default_name(project_dir))
    images = data.get("images")
    if images is None or isinstance(images, dict):
        images = dict(images or {})
        if env.get(ENV_LB_IMAGE):
            images["balancer"] = env[ENV_LB_IMAGE]
        if env.get(ENV_BASE_IMAGE):
            images["base"] = env[ENV_BASE_IMAGE]
        data["images"] = images
    if "project_dir" in data:
        raise ConfigError(f"{source}: project_dir: unknown key")
    try:
        return Config.model_validate({**data, "project_dir": project_dir})
    except ValidationError as exc:
        lines = _key_lines(text)
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            line = None
            for n in range(len(loc), 0, -1):
                if loc[:n] in lines:
                    line = lines[loc[:n]]
                    break
            desc = _describe(err)
            if not loc:  # a rule across keys: its message starts with the key it is about
                key_path = tuple(desc.split(":", 1)[0].split("."))
                line = lines.get(key_path) or lines.get(key_path[:1])
                where = f"{source}:{line}" if line else source
                problems.append(f"{where}: {desc}")
                continue
            where = f"{source}:{line}" if line else source
            problems.append(f"{where}: {'.'.join(loc)}: {desc}")
        raise ConfigError(problems) from None


def load_config(project_dir: Path | str = ".", env: dict[str, str] | None = None) -> Config:
    """Read and validate `scaleout.yaml` in `project_dir`."""
    project_dir = Path(project_dir).resolve()
    path = project_dir / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found", hint="run `scaleout init` to create a project, or cd into one") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    return parse_config(text, project_dir, source=str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path), env=env)
