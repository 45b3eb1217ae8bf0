"""`trust`: make this machine trust scaleout's local certificate authority (print, perform or undo)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from scaleout.cli.common import TrustStore, state_of
from scaleout.errors import UsageError


def trust(
    ctx: typer.Context,
    install: bool = typer.Option(False, "--install", help="Perform the steps (the system store needs root)."),
    uninstall: bool = typer.Option(False, "--uninstall", help="Undo them."),
    only: Optional[TrustStore] = typer.Option(
        None, "--only", case_sensitive=False, help="One store only: system (update-ca-certificates) or nss (browsers)."
    ),
) -> None:
    """Trust scaleout's local certificate authority on this machine: print the steps, or perform (--install)
    or undo (--uninstall) them."""
    from scaleout.errors import TrustError
    from scaleout.tls import trust as tr
    from scaleout.tls.certs import data_dir, ensure_ca, find_ca

    if install and uninstall:
        raise UsageError("trust: --install and --uninstall exclude each other")
    con = state_of(ctx).console
    stores = (only.value,) if only is not None else tr.STORES
    home = Path.home()
    as_root = tr.is_root()
    if uninstall:
        steps = tr.uninstall_steps(home, stores)
        if not steps:
            con.print("nothing to undo: no store holds scaleout's local certificate authority")
            return
    else:
        ca = ensure_ca() if install else find_ca()
        if ca is None:
            con.print(
                f"no local certificate authority yet; `scaleout trust --install` or `scaleout up --tls` makes "
                f"one in {data_dir()}"
            )
            return
        con.print(f"local certificate authority: {ca.cert_path}\n  {ca.name}\n  SHA-256 {ca.fingerprint}")
        steps = tr.install_steps(ca.cert_path, home, stores)
        if not install:
            con.print("\nTo trust it (`scaleout trust --install` runs these; `--uninstall` undoes them):")
            for step in steps:
                con.print(f"  {step.what}:" + (f"  [cannot run here: {step.missing}]" if step.missing else ""))
                for line in step.shell(as_root):
                    con.print(f"    {line}")
            con.print(
                "Tools with their own list: Node `NODE_EXTRA_CA_CERTS="
                f"{ca.cert_path}`, Python requests/httpx "
                f"`SSL_CERT_FILE={ca.cert_path}`, curl `--cacert {ca.cert_path}`."
            )
            con.print(f"Keep {ca.cert_path.parent}/ private: its key makes certificates this machine trusts.")
            return
    outcomes = tr.perform(steps, undo=uninstall, as_root=as_root)
    for o in outcomes:
        con.print(f"{o.status:8} {o.step.what}" + (f": {o.detail}" if o.detail else ""))
    if any(o.status != "done" for o in outcomes):
        raise TrustError(
            "trust: not every store was " + ("cleaned" if uninstall else "changed") + " (see above)",
            hint="run what a skipped line says, or choose one store with --only",
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app, in the order `--help` lists them."""
    app.command()(trust)
