"""What the programs scaleout runs (Compose, `docker stack`) see: the one place their environment and
their interpolation values are made.

A cloned project is untrusted, and so is its `.env`: as part of a child's *process* environment,
`PYTHONPATH` (next to a `sitecustomize.py`) runs the project's code inside docker-compose v1, `LD_PRELOAD`
inside any program, `DOCKER_HOST` points the CLI at another engine (which then receives the build context),
`DOCKER_CONFIG` loads other CLI plugins. So a child gets the user's own environment plus what scaleout sets
on purpose, never `.env`'s variables. The `${VAR}` references scaleout keeps in the files it generates
still need `.env`'s values: they are resolved here (the shell first, then `.env`, as Compose orders them)
into a private copy of the file (0600, removed once the program is done), with every literal `$` written
as `$$`, so that what Compose reads is exactly what scaleout checked. Compose is also given an explicit,
empty `--env-file`, so that it reads no `.env` of its own (a committed `.scaleout/.env` could otherwise set
`DOCKER_HOST` or `COMPOSE_*` for docker-compose v1).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from scaleout.errors import StackError

# what scaleout sets for its children on purpose (unless the user's shell sets them)
CHILD_DEFAULTS = {
    "COMPOSE_PROGRESS": "plain",  # v2: line output, not a TTY animation
    "BUILDKIT_PROGRESS": "plain",
}
RUN_PREFIX = ".scaleout-run-"  # the private files made for one run, beside the file they stand for


def child_environment(extra: Mapping[str, str] | None = None,
                      environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment of a program scaleout runs: the user's (`environ`, default os.environ),
    scaleout's defaults under it, and `extra` (values scaleout chose itself, e.g. image names) over it."""
    env = dict(CHILD_DEFAULTS)
    env.update(os.environ if environ is None else environ)
    env.update(extra or {})
    return env


def resolve_text(text: str, dotenv: Mapping[str, str], environ: Mapping[str, str] | None = None,
                 *, display: str = "the generated file") -> str:
    """`text` (a generated Compose or stack file, YAML) with every `${VAR}` in its strings resolved (the
    shell first, then `dotenv`) and every literal `$` written `$$`: a file that needs no environment."""
    if "$" not in text:
        return text
    import yaml

    from scaleout.config.interpolation import InterpolationError, interpolate

    shell = os.environ if environ is None else environ

    def lookup(name: str) -> str | None:
        return shell[name] if name in shell else dotenv.get(name)

    def walk(node):
        if isinstance(node, str):
            return interpolate(node, lookup).value.replace("$", "$$") if "$" in node else node
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        return node

    try:
        data = yaml.safe_load(text)
        resolved = walk(data)
    except yaml.YAMLError as exc:
        raise StackError(f"{display}: cannot be read as YAML: {exc}") from None
    except InterpolationError as exc:
        raise StackError(f"{display}: {exc}", hint="set the variable in the shell or in .env") from None
    return yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)


def _private_file(folder: Path, suffix: str, text: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=RUN_PREFIX, suffix=suffix, dir=folder)  # 0600, never through a link
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


@contextlib.contextmanager
def resolved_file(path: Path, dotenv: Mapping[str, str], environ: Mapping[str, str] | None = None
                  ) -> Iterator[Path]:
    """A private copy of the generated file `path` with its references resolved (see `resolve_text`),
    beside it (relative paths in it mean the same), removed afterwards; `path` itself when it has none."""
    text = path.read_text(encoding="utf-8")
    resolved = resolve_text(text, dotenv, environ, display=path.name)
    if resolved is text:
        yield path
        return
    copy = _private_file(path.parent, path.suffix or ".yml", resolved)
    try:
        yield copy
    finally:
        with contextlib.suppress(OSError):
            copy.unlink()


@contextlib.contextmanager
def compose_inputs(compose_file: Path, dotenv: Mapping[str, str], environ: Mapping[str, str] | None = None
                   ) -> Iterator[tuple[Path, Path]]:
    """(the Compose file to pass with -f, an empty file to pass with --env-file) for one Compose run."""
    with resolved_file(compose_file, dotenv, environ) as file:
        empty = _private_file(compose_file.parent, ".env", "")
        try:
            yield file, empty
        finally:
            with contextlib.suppress(OSError):
                empty.unlink()
