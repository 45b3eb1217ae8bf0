"""From the text of scaleout.yaml (and the project's .env) to a `Config`: the bounded YAML reader,
`${VAR}` interpolation with the Compose text kept beside each value, and messages with file and line.
The only module that reads scaleout.yaml.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scaleout.config.bounds import max_items
from scaleout.config.interpolated import Interpolated
from scaleout.config.interpolation import Budget, DotenvError, InterpolationError, interpolate, parse_dotenv
from scaleout.config.model import Config, default_name, describe_error, resolves_within
from scaleout.config.yamlload import MAX_BYTES, Document, decode_text, load_yaml
from scaleout.errors import ConfigError
from scaleout.files import read_capped
from scaleout.layout import CONFIG_FILE

DOTENV_FILE = ".env"
ENV_LB_IMAGE = "SCALEOUT_LB_IMAGE"
ENV_BASE_IMAGE = "SCALEOUT_BASE_IMAGE"

# --- from text to Config ---------------------------------------------------------------------------------

# nginx variables, not Compose references: taken as written
_NOT_INTERPOLATED = {("balancer", "hash_key")}
# keys whose strings the model holds as `Interpolated` (the value with its Compose text, references kept)
_COMPOSE_TEXT = (
    ("backend", "env"),
    ("backend", "health", "command"),
    ("services", "*", "environment"),
    ("services", "*", "command"),
    ("services", "*", "healthcheck", "test"),
)
# values written into generated files as scaleout resolved them (an image reference, a volume, a published
# port: Compose cannot take them as references) and sent to registries: one whose value came from .env or the
# environment would put that value into a file others may read, or into a request; refused. A variable named
# *_IMAGE (REDIS_IMAGE) may choose an image: an image reference is what it holds by name, not a secret
_IMAGE_KEYS = (("images", "*"), ("backend", "image"), ("services", "*", "image"))
_WRITTEN_RESOLVED = (*_IMAGE_KEYS, ("services", "*", "volumes", "*"), ("services", "*", "ports", "*"))
_INTERNAL_TOP = ("project_dir", "dotenv", "warnings")


def _matches(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(path) == len(pattern) and all(p == "*" or p == q for p, q in zip(pattern, path, strict=True))


class _Interpolation:
    """Walks the document's values (never its keys), resolving references; the strings under _COMPOSE_TEXT
    become `Interpolated` (value and Compose text); collects every problem and warning with its line."""

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
            if any(_matches(path, pattern) for pattern in _IMAGE_KEYS):
                # an image override (REDIS_IMAGE, as the scaffolds offer) names an image: that is its purpose
                given = [n for n in given if not n.endswith("_IMAGE")]
            if given and any(_matches(path, pattern) for pattern in _WRITTEN_RESOLVED):
                self.problems.append(
                    f"{self.where(path)}: takes its value from ${{{given[0]}}} (.env or the environment), and scaleout "
                    "writes this key resolved into generated files: write the value itself here (a default, as in "
                    f"${{{given[0]}:-value}}, is used only while {given[0]} is unset)")
            if any(_matches(path[:len(pattern)], pattern) for pattern in _COMPOSE_TEXT):
                return Interpolated(result.value, result.compose), result.compose
            return result.value, result.compose
        if isinstance(node, dict):
            values, texts = {}, {}
            for key, child in node.items():
                values[key], texts[key] = self.walk(child, (*path, _key_str(key)))
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
    if stat.S_ISLNK(st.st_mode) and not resolves_within(root, path):
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
    # every list and map bounded while parsing: before any check that compares items with each other
    doc = load_yaml(text, display=source, max_items=max_items)
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
        # a dict key's own error ends in "[key]"
        loc = tuple(str(p) for p in err["loc"] if p != "[key]")
        desc = describe_error(err)
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
