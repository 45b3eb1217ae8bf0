"""The env files scaleout.yaml names (`backend.env_file`, `services.*.env_file`), read from disk. The
only disk reads of the exports besides the static files: rendering stays pure, callers pass the data in.

Compose reads an env file with the `.env` rules (quotes, `${VAR}`, `export`, comments after a value);
`docker stack deploy` reads it as plain `KEY=VALUE` lines and passes every character after the `=` on.
`stack_deploy_notes` says which values Swarm would therefore get differently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from scaleout.config.interpolation import DotenvError, InterpolationError, parse_dotenv
from scaleout.config.model import Config
from scaleout.config.yamlload import MAX_BYTES, decode_text
from scaleout.errors import ConfigError
from scaleout.files import inside, read_capped

_WHITESPACE = re.compile(r"\s")


def env_file_paths(config: Config) -> list[str]:
    """Every env file the config names, once, in order (the backend's first)."""
    rels = list(config.backend.env_file) + [f for _, s in sorted(config.services.items()) for f in s.env_file]
    return list(dict.fromkeys(rels))


def read_env_text(config: Config, rel: str) -> str:
    """The text of one env file (inside the project, a regular file of at most 1 MiB, UTF-8)."""
    root = config.project_dir.resolve()
    path = root / rel
    if not inside(root, path):
        raise ConfigError(f"{rel}: leads outside the project folder (a link?); env files must be inside it")
    try:
        return decode_text(read_capped(path, display=rel, limit=MAX_BYTES), display=rel)
    except FileNotFoundError:
        raise ConfigError(f"{rel}: the env file does not exist (create it, or remove it from env_file)") from None


def parse_env_file(text: str, rel: str, environ: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """KEY -> (value, line) as Compose reads the file: the parser of `.env`, `${VAR}` from `environ`."""
    try:
        entries, _ = parse_dotenv(text, display=rel, environ=environ)
    except DotenvError as exc:
        raise ConfigError(str(exc)) from None
    except InterpolationError as exc:
        raise ConfigError(f"{rel}: {exc}") from None
    return {k: (e.value, e.line) for k, e in entries.items()}


def read_env_files(config: Config, environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The variables of every env file, by project-relative path, as Compose reads them."""
    return {rel: {k: v for k, (v, _) in parse_env_file(read_env_text(config, rel), rel, environ).items()}
            for rel in env_file_paths(config)}


def stack_deploy_env(text: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """An env file as `docker stack deploy` reads it (the Docker CLI's parser): leading whitespace and
    `#` lines skipped, the name up to the first `=`, the rest verbatim. Also the lines it refuses."""
    values: dict[str, str] = {}
    refused: list[tuple[int, str]] = []
    for n, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.removesuffix("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not name or _WHITESPACE.search(name):
            refused.append((n, name))
        elif sep:
            values[name] = value
    return values, refused


def stack_deploy_notes(config: Config, environ: Mapping[str, str]) -> list[str]:
    """One line per env-file value that `docker stack deploy` would read differently from Compose."""
    notes = []
    for rel in env_file_paths(config):
        text = read_env_text(config, rel)
        compose = parse_env_file(text, rel, environ)
        cli, refused = stack_deploy_env(text)
        for line, name in refused:
            notes.append(f"env file {rel}:{line}: `docker stack deploy` refuses this line "
                         f"({'no name' if not name else 'a space in the name'}); write KEY=value")
        differ = [(line, key) for key, (value, line) in compose.items() if key in cli and cli[key] != value]
        for line, key in sorted(differ):
            notes.append(f"env file {rel}:{line}: {key}: `docker stack deploy` passes the text after '=' as it is "
                         "(quotes, ${VAR} and ' #' comments included), so Swarm gets another value than Compose; "
                         "write KEY=value without quotes or references")
    return notes
