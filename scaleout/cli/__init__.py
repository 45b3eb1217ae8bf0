"""The command line: Typer commands by group, printing only."""
