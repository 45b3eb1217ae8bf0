"""The `scaleout` command: the typer app, its global options, the command modules, and the entry point that
maps errors to exit codes. Only scaleout.cli.* imports typer."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from scaleout.cli.argv import hoist_global_options
from scaleout.cli.common import COMPLETE_VAR, State
from scaleout.console import Console
from scaleout.errors import ExitCode, ScaleoutError, UsageError

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # plain help: importing rich costs more than the rest of the start-up
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="A production-shaped, load-balanced environment on your own machine, and proof that it works.",
)


def _print_version(value: bool) -> None:
    if value:
        from scaleout import __version__

        print(f"scaleout {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    project_dir: Path = typer.Option(Path("."), "--project-dir", "-C", help="Project folder (where scaleout.yaml is)."),
    project_name: Optional[str] = typer.Option(None, "--project-name", "-p", envvar="SCALEOUT_PROJECT_NAME",
                                               help="Project name (default: `name:` in scaleout.yaml), as "
                                                    "Compose's -p. The balancer's port is --port."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Compose and build output "
                                 "(-v only before the command: after it, `down -v` is --volumes as in Compose)."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    if project_name is not None and project_name.isdigit():
        raise UsageError(f"--project-name: {project_name!r} looks like a port: -p names the project, as in Compose",
                         hint=f"for the balancer's port use `--port {project_name}`")
    ctx.obj = State(project_dir=project_dir, console=Console(quiet=quiet, verbose=verbose), project_name=project_name)


def _register_commands() -> None:
    """Every command module adds its commands; the order here is the order `--help` lists them."""
    from scaleout.cli import completion, export, ops, probe, project, replay, stack, top, trust

    for module in (project, stack, ops, completion, export, trust, probe, replay, top):
        module.register(app)


_register_commands()
_INTERRUPTED = "interrupted: the stack may be partly changed; `scaleout status` shows it, `scaleout down` removes it"


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and maps ScaleoutError to its exit code."""
    # pydantic looks for plugins of its own (an entry-point scan of every installed package, a tenth of a
    # second or more) when the config's models are defined; scaleout uses none
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ.get(COMPLETE_VAR):
        from typer.completion import completion_init

        completion_init()  # the shells' completion classes (typer registers them only with add_completion)
    try:
        _run(argv)
    finally:
        if argv is None:
            # The process ends here: the interpreter's last garbage collections would walk every object
            # pydantic, the Docker SDK and jinja2 created (half a second on a busy machine, after the work is
            # done). Frozen objects are left to the exit; atexit handlers and flushing still run.
            import gc

            gc.freeze()


def _run(argv: list[str] | None) -> None:
    try:
        args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
        # standalone_mode=False: typer returns the code of a typer.Exit (and Exit(130) for Ctrl-C)
        rv = app(args=args, prog_name="scaleout", standalone_mode=False)
    except ScaleoutError as exc:
        _err(f"error: {exc}")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        _err(_INTERRUPTED)
        sys.exit(int(ExitCode.INTERRUPTED))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err("aborted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except _click_exceptions() as exc:
        exc.show()
        sys.exit(int(ExitCode.CONFIG) if exc.exit_code == 2 else exc.exit_code)
    if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:
        if rv == ExitCode.INTERRUPTED:
            _err(_INTERRUPTED)
        sys.exit(rv)


def _click_exceptions() -> tuple[type[Exception], ...]:
    """Usage errors: typer >= 0.20 vendors click, older versions use click itself."""
    found: list[type[Exception]] = []
    try:
        from typer._click.exceptions import ClickException as vendored

        found.append(vendored)
    except ImportError:
        pass
    try:
        from click.exceptions import ClickException

        found.append(ClickException)
    except ImportError:
        pass
    return tuple(found)


if __name__ == "__main__":
    main()

