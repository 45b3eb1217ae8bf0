"""The command line before typer sees it: global options accepted after the command too, and the
short options that mean something else there in Compose refused with a message."""

from __future__ import annotations

from scaleout.errors import UsageError

# Global options that mean the same wherever they are: hoisted in front of the command.
_GLOBAL_FLAGS = {"-q", "--quiet", "--verbose"}
_GLOBAL_WITH_VALUE = {"-C", "--project-dir", "--project-name"}
# Only before the command, because after it Compose users mean something else: `down -v` removes volumes,
# and `-p` was this tool's port flag once (it is the project name in Compose).
_FRONT_FLAGS = {"-v"}
_FRONT_WITH_VALUE = {"-p"}
# Commands whose arguments after the first positional one belong to a command run elsewhere.
_PASS_THROUGH = {"exec": {"-u", "--user", "-w", "--workdir", "-e", "--env"}}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Accept the global options after the command too (`scaleout up -q` as `scaleout -q up`), except
    the short ones that would mislead there (see _FRONT_FLAGS), which get a message instead."""
    front: list[str] = []
    rest: list[str] = []
    command: str | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        has_value = i + 1 < len(argv)
        if a == "--":
            rest.extend(argv[i:])
            break
        if command is None:
            if a in _GLOBAL_WITH_VALUE | _FRONT_WITH_VALUE and has_value:
                front.extend(argv[i : i + 2])
                i += 1
            elif a.startswith("-"):
                front.append(a)
            else:
                command = a
                rest.append(a)
        elif command in _PASS_THROUGH and not a.startswith("-"):
            rest.extend(argv[i:])  # the service name, then the command to run in it: untouched
            break
        elif a in _GLOBAL_FLAGS:
            front.append(a)
        elif a in _GLOBAL_WITH_VALUE and has_value:
            front.extend(argv[i : i + 2])
            i += 1
        elif a.startswith(("--project-dir=", "--project-name=")):
            front.append(a)
        elif a == "-p" or (a.startswith("-p") and a[2:].isdigit()):
            raise UsageError(
                f"{a} after the command: -p is the project name (as in Compose), a global option that "
                "goes before the command (`scaleout -p NAME up`)",
                hint="the balancer's host port is --port, e.g. `scaleout up --port 8081`",
            )
        elif a in _FRONT_FLAGS and command != "down":
            raise UsageError(
                "-v after the command: -v means --volumes for `down` (as in Compose), and verbose only "
                "before the command",
                hint=f"`scaleout -v {command} ...` or `scaleout {command} --verbose`",
            )
        elif command == "up" and a == "--wait" and has_value and _is_number(argv[i + 1]):
            raise UsageError(
                "up --wait takes no value: it waits until every replica is healthy (as in Compose), which "
                "`up` always does",
                hint="seconds to wait for health: --wait-timeout S (or --timeout S); "
                "for another scaleout holding the project lock: --lock-wait S",
            )
        else:
            if command in _PASS_THROUGH and a in _PASS_THROUGH[command] and has_value:
                rest.append(a)  # its value may look like a positional argument
                i += 1
                a = argv[i]
            rest.append(a)
        i += 1
    return front + rest


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
