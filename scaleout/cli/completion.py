"""`completion`: the shell completion script."""

from __future__ import annotations

import typer

from scaleout.cli.common import COMPLETE_VAR, Shell


def completion(shell: Shell = typer.Argument(..., case_sensitive=False, help="bash, zsh or fish.")) -> None:
    """Print the shell completion script: `eval "$(scaleout completion bash)"`, or save it where your shell
    loads completions from."""
    from typer.completion import get_completion_script

    print(get_completion_script(prog_name="scaleout", complete_var=COMPLETE_VAR, shell=shell.value))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app, in the order `--help` lists them."""
    app.command()(completion)
