"""`export`: deployment files for a cluster (Kubernetes manifests, a Swarm stack file)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from scaleout.cli.common import ExportKind, balancer_nginx_version, load_for, replicas_option, state_of


def export(
    ctx: typer.Context,
    kind: ExportKind = typer.Argument(
        ...,
        case_sensitive=False,
        help="k8s (Kubernetes manifests) or swarm (the stack file `up --target swarm` deploys).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write into (created if missing)."),
    balancer: Optional[str] = typer.Option(
        None, "--balancer", help="k8s: nginx (scaleout's nginx, default) or ingress (an Ingress)."
    ),
    namespace: Optional[str] = typer.Option(
        None, "--namespace", help="k8s: namespace of every object (default: default)."
    ),
    image: Optional[str] = typer.Option(
        None, "--image", help="k8s: the backend image the cluster pulls (required unless backend.image is set)."
    ),
    ingress_class: Optional[str] = typer.Option(
        None, "--ingress-class", help="k8s with --balancer ingress: spec.ingressClassName."
    ),
    replicas: Optional[int] = replicas_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite files in --out that scaleout did not write."),
) -> None:
    """Write deployment files for a cluster: Kubernetes manifests or a Swarm stack file."""
    from scaleout.config.model import Overrides
    from scaleout.export import check_out_dir, export_files, write_export

    st = state_of(ctx)
    cfg = load_for(st, Overrides(replicas=replicas))
    out_dir = check_out_dir(out if out.is_absolute() else st.project_dir / out, cfg.project_dir)
    notes: list[str] = []
    files = export_files(
        kind.value,
        cfg,
        balancer=balancer,
        namespace=namespace,
        image=image,
        ingress_class=ingress_class,
        out=out_dir,
        note=notes.append,
        # balancer.tls: asked of the balancer image on this engine, never pulled (no registry request)
        nginx_version=balancer_nginx_version(cfg, pull=False),
    )
    result = write_export(out_dir, files, kind=kind.value, force=force)
    for names, label in (
        (result.written, "wrote    "),
        (result.unchanged, "unchanged"),
        (result.removed, "removed  "),
        (result.kept, "kept (edited)"),
    ):
        for rel in names:
            st.console.message(f"{label} {out_dir / rel}")
    for line in notes:  # what the files could not carry: also written as comments in them
        st.console.message(f"note: {line}")
    st.console.message(
        f"next: kubectl apply -f {out}"
        if kind.value == "k8s"
        else "next: scaleout up --target swarm (or set the image variables named in "
        f"{out / 'stack.yml'} and docker stack deploy)"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app, in the order `--help` lists them."""
    app.command()(export)
