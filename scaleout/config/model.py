"""The validated, immutable `Config` of a project: its sections put together, the rules across them
(ports, names, paths inside the project) and the command line's typed `Overrides`.

`scaleout.config.load` turns the text of scaleout.yaml into a `Config`; this module never reads a file
other than to check that a path the config names stays inside the project.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from scaleout.config.exposure import static_dir_problems
from scaleout.config.interpolated import Interpolated
from scaleout.config.sections import BackendConfig, BalancerConfig, ImagesConfig, StaticConfig, StrictModel
from scaleout.config.services import ServiceConfig, ServiceName
from scaleout.errors import UsageError
from scaleout.layout import STRATEGIES, replica_name

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


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


class Config(StrictModel):
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
            if rel is not None and not resolves_within(root, root / rel):
                problems.append(f"{key}: {rel!r} points outside the project folder")
        for n, s in self.services.items():
            for i, m in enumerate(s.volumes):
                if m.kind == "bind" and not resolves_within(root, root / m.source):
                    problems.append(f"services.{n}.volumes.{i}: ./{m.source} points outside the project folder")
        files = [("backend.env_file", i, rel) for i, rel in enumerate(self.backend.env_file)]
        files += [(f"services.{n}.env_file", i, rel)
                  for n, s in self.services.items() for i, rel in enumerate(s.env_file)]
        for key, i, rel in files:
            problem = _env_file_problem(root, rel)
            if problem:
                problems.append(f"{key}.{i}: {rel}: {problem}")
        if not problems:  # secrets the balancer would publish (scaleout/config/exposure.py)
            problems += static_dir_problems(root, self.static.dir, [rel for _, _, rel in files])
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
                    problems.extend(describe_error(err).splitlines())
                    continue
                flag = flags.get(str(loc[-1]), ".".join(map(str, loc)))
                problems.append(f"{flag}: {describe_error(err)}")
            raise UsageError("\n".join(dict.fromkeys(problems))) from None


def resolves_within(root: Path, path: Path) -> bool:
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
    if not resolves_within(root, path):
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


def describe_error(err: dict[str, Any]) -> str:
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
    if isinstance(value, Interpolated):  # as written in the file: a value from .env is not repeated
        value = value.compose
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return "a very large number"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
