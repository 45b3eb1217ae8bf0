"""A value of scaleout.yaml that generated Compose files carry as text: the value scaleout checks and shows
(`${VAR}` resolved from the shell and `.env`), and the text it came from, written into the Compose file
(references as written, a literal `$` as `$$`), so values from `.env` never land in a generated file.

One frozen type carries both: `backend.env`, `backend.health.command`, and a service's `environment`,
`command` and `healthcheck.test` hold `Interpolated` values, one field per key of the file. A value built in
code (not read from scaleout.yaml) is its own literal text: `Interpolated.literal("x$y")` has the Compose
text `x$$y`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic_core import core_schema

__all__ = ["Interpolated", "command_text", "compose_texts", "values"]


class Interpolated:
    """`value`: what the key means once `${VAR}` is resolved; `compose`: the text the Compose file carries.
    Immutable. (Not a dataclass: pydantic would dump a dataclass as a dict, losing the type.)"""

    __slots__ = ("compose", "value")
    value: str
    compose: str

    def __init__(self, value: str, compose: str) -> None:
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "compose", compose)

    def __setattr__(self, name: str, v: Any) -> None:
        raise AttributeError(f"Interpolated is immutable ({name})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interpolated):
            return NotImplemented
        return (self.value, self.compose) == (other.value, other.compose)

    def __hash__(self) -> int:
        return hash((self.value, self.compose))

    def __repr__(self) -> str:
        # the value may come from .env: kept out of reprs and tracebacks
        return f"Interpolated(compose={self.compose!r})"

    @classmethod
    def literal(cls, value: str) -> Interpolated:
        """A value written in code: its Compose text is itself, each `$` doubled so Compose reads it as written."""
        return cls(value, value.replace("$", "$$"))

    @classmethod
    def of(cls, v: Any) -> Any:
        """`v` as an Interpolated when it is one or a string (a literal); anything else as it is, for the
        field's own rule to refuse."""
        if isinstance(v, str):
            return cls.literal(v)
        return v

    @property
    def has_references(self) -> bool:
        """Whether the Compose text keeps a `${VAR}` for the engine to resolve (is not the value, `$` doubled)."""
        return self.compose != self.value.replace("$", "$$")

    def map(self, fn: Callable[[str], str]) -> Interpolated:
        """The same change applied to the value and to its Compose text."""
        return Interpolated(fn(self.value), fn(self.compose))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        # a dump (Config.with_overrides) keeps the object, so a re-validation keeps its Compose text
        return core_schema.no_info_plain_validator_function(
            _validate, serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v))


def _validate(v: Any) -> Interpolated:
    v = Interpolated.of(v)
    if not isinstance(v, Interpolated):
        raise ValueError("must be a string")
    return v


def values(mapping: Mapping[str, Interpolated]) -> dict[str, str]:
    """{KEY: value} of an environment: what the process sees."""
    return {k: v.value for k, v in mapping.items()}


def compose_texts(mapping: Mapping[str, Interpolated]) -> dict[str, str]:
    """{KEY: Compose text} of an environment, sorted by key: what the generated file carries."""
    return {k: mapping[k].compose for k in sorted(mapping)}


def command_text(command: Interpolated | tuple[Interpolated, ...]) -> str | list[str]:
    """A command's Compose text: one string (the engine splits it) or the list of arguments."""
    return command.compose if isinstance(command, Interpolated) else [a.compose for a in command]
