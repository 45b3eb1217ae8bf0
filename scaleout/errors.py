"""Every failure a user can cause or meet, each with its exit code.

The CLI catches only `ScaleoutError`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ExitCode",
    "ScaleoutError",
    "ConfigError",
    "UsageError",
    "RenderConflictError",
    "DockerUnavailableError",
    "ComposeUnavailableError",
    "BuildError",
    "StackError",
    "UnhealthyError",
    "PortInUseError",
    "LockedError",
    "ProbeTargetError",
    "UnsafePathError",
    "NotRunningError",
    "BalancerConfigError",
    "CertificateError",
    "TrustError",
]


class ExitCode(IntEnum):
    """Exit codes of the `scaleout` command (documented in the README)."""

    OK = 0
    CHECK_FAILED = 1  # probe verdict "fail"
    CONFIG = 2  # bad scaleout.yaml or bad command-line value
    DOCKER = 3  # engine or Compose CLI missing / not answering
    BUILD = 4  # image build failed
    UNHEALTHY = 5  # a replica or the balancer never became ready
    CONFLICT = 6  # port in use, another scaleout holds the lock, a hand-edited generated file
    NOT_RUNNING = 7  # the stack is not up
    INTERRUPTED = 130


class ScaleoutError(Exception):
    """A failure explained to the user. `str(err)` is the message; `exit_code` the process status."""

    exit_code: ExitCode = ExitCode.CHECK_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(ScaleoutError):
    """scaleout.yaml is missing, malformed or holds a value that is not allowed."""

    exit_code = ExitCode.CONFIG

    def __init__(self, problems: list[str] | str, *, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class UsageError(ScaleoutError):
    """A command-line value that is not allowed."""

    exit_code = ExitCode.CONFIG


class RenderConflictError(ScaleoutError):
    """A generated file was edited by hand, or a user file is in the way."""

    exit_code = ExitCode.CONFLICT


class DockerUnavailableError(ScaleoutError):
    exit_code = ExitCode.DOCKER


class ComposeUnavailableError(ScaleoutError):
    exit_code = ExitCode.DOCKER


class BuildError(ScaleoutError):
    exit_code = ExitCode.BUILD


class StackError(ScaleoutError):
    """The engine or Compose refused an operation on the stack."""

    exit_code = ExitCode.DOCKER


class UnhealthyError(ScaleoutError):
    exit_code = ExitCode.UNHEALTHY


class PortInUseError(ScaleoutError):
    exit_code = ExitCode.CONFLICT


class LockedError(ScaleoutError):
    exit_code = ExitCode.CONFLICT


class UnsafePathError(ScaleoutError):
    """A path in the project (a symlink, a folder that leaves it) that scaleout will not read or write through."""

    exit_code = ExitCode.CONFIG


class ProbeTargetError(ScaleoutError):
    """The probe was pointed at a target it must not or cannot load."""

    exit_code = ExitCode.CONFIG


class NotRunningError(ScaleoutError):
    exit_code = ExitCode.NOT_RUNNING


class BalancerConfigError(StackError):
    """A new nginx configuration failed `nginx -t` inside the running balancer (which kept the old one)."""

    exit_code = ExitCode.CONFIG


class CertificateError(ScaleoutError):
    """The local certificate authority's files (in the user's data folder) are damaged, incomplete or expired."""

    exit_code = ExitCode.CONFLICT


class TrustError(ScaleoutError):
    """`scaleout trust --install/--uninstall` could not change every store."""

    exit_code = ExitCode.CHECK_FAILED
